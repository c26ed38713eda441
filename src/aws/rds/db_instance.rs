//! The DB instance.
//!
//! It is created with `ManageMasterUserPassword`: RDS generates the master
//! password and keeps it in a Secrets Manager secret it owns. The tool never
//! sees the password, so it cannot leak it; it only reports the secret's ARN.
//!
//! Deleting it takes a final snapshot with a unique, timestamped identifier
//! (unless `--skip-final-backup`) and keeps the automated backups.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_rds::types::DbInstance as Instance;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{LONG, Tagging, VISIBLE, adopt, tag_list, tag_map, timestamp};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{self, owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on, retry_when, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::FieldChange;
use crate::engine::provider::{Finding, KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Live, Props, Resource};
use crate::engine::value::{Ref, sort_set};

/// A setting the file may leave to AWS (the engine version, the windows...):
/// `None` when the file does not pin it (absent from the desired props, so
/// not compared); as read, `Some(None)` (`null`) when AWS has none.
pub type Setting<T> = Option<Option<T>>;

fn yes() -> bool {
    true
}

/// A [`Setting`] present in the props (`null` included) is `Some`.
fn setting<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Setting<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The value of a setting, pinned or read.
fn value<T>(s: &Setting<T>) -> Option<&T> {
    s.as_ref().and_then(Option::as_ref)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DbInstanceProps {
    pub identifier: String,
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "setting")]
    pub engine_version: Setting<String>,
    pub instance_class: String,
    pub storage_gb: i32,
    pub storage_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "setting")]
    pub iops: Setting<i32>,
    pub multi_az: bool,
    pub storage_encrypted: bool,
    pub publicly_accessible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "setting")]
    pub db_name: Setting<String>,
    pub username: String,
    pub manage_master_password: bool,
    pub subnet_group: Ref,
    pub security_group_ids: Vec<Ref>,
    pub backup_retention_days: i32,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "setting")]
    pub backup_window: Setting<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "setting")]
    pub maintenance_window: Setting<String>,
    pub deletion_protection: bool,
    /// `null`: the engine's default group. Explicit in the desired props, so
    /// that removing a custom group from the file reverts to the default.
    #[serde(default)]
    pub parameter_group: Option<String>,
    pub copy_tags_to_snapshot: bool,
    /// RDS applies new minor versions in the maintenance window (then the
    /// file's `engine_version` is a floor, not an exact version).
    #[serde(default = "yes")]
    pub auto_minor_version_upgrade: bool,
    /// Users may sign in with IAM credentials (short-lived tokens) as well
    /// as passwords.
    #[serde(default)]
    pub iam_auth: bool,
    /// Database logs published to CloudWatch Logs (`postgresql`, `upgrade`;
    /// `error`, `slowquery`...), sorted.
    #[serde(default)]
    pub log_exports: Vec<String>,
    /// Seconds between Enhanced Monitoring samples; 0: off.
    #[serde(default)]
    pub monitoring_interval: i32,
    /// The role RDS sends Enhanced Monitoring metrics with (`None` when off).
    #[serde(default)]
    pub monitoring_role_arn: Option<Ref>,
    /// Behaviour, not state (never compared: `normalize` drops it; absent
    /// from what is read): apply changes now (default) or in the next
    /// maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_immediately: Option<bool>,
    /// Behaviour: wait for `available` after the create (a resource of the
    /// stack reads the endpoint, known only then). Default: no.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until_available: Option<bool>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for DbInstanceProps {
    const KIND: &'static str = "rds.db_instance";
}

pub struct DbInstance;

/// Identifier of a final snapshot of instance `id`: letters, digits and
/// single hyphens, starting with a letter, at most 255 characters.
pub fn final_snapshot_id(id: &str, stamp: &str) -> String {
    format!("{id}-final-{stamp}")
}

/// The props of an instance as read; pending modifications count as done
/// (they were asked for: with `apply_immediately: false` they wait for the
/// window).
fn read(db: &Instance, tags: Tags) -> DbInstanceProps {
    let pending = db.pending_modified_values();
    let mut security_group_ids: Vec<Ref> = db
        .vpc_security_groups()
        .iter()
        .filter(|g| g.status() != Some("removing"))
        .filter_map(|g| g.vpc_security_group_id().map(Ref::from))
        .collect();
    security_group_ids.sort();
    let parameter_group = db
        .db_parameter_groups()
        .first()
        .and_then(|g| g.db_parameter_group_name())
        // The engine's default group stands for "none chosen".
        .filter(|n| !n.starts_with("default."))
        .map(str::to_string);
    DbInstanceProps {
        identifier: db.db_instance_identifier().unwrap_or_default().into(),
        engine: db.engine().unwrap_or_default().into(),
        engine_version: Some(pending.and_then(|p| p.engine_version()).or(db.engine_version()).map(str::to_string)),
        instance_class: pending
            .and_then(|p| p.db_instance_class())
            .or(db.db_instance_class())
            .unwrap_or_default()
            .into(),
        storage_gb: pending.and_then(|p| p.allocated_storage()).or(db.allocated_storage()).unwrap_or_default(),
        storage_type: pending.and_then(|p| p.storage_type()).or(db.storage_type()).unwrap_or_default().into(),
        iops: Some(pending.and_then(|p| p.iops()).or(db.iops())),
        multi_az: pending.and_then(|p| p.multi_az()).or(db.multi_az()).unwrap_or(false),
        storage_encrypted: db.storage_encrypted().unwrap_or(false),
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        db_name: Some(db.db_name().map(str::to_string)),
        username: db.master_username().unwrap_or_default().into(),
        manage_master_password: db.master_user_secret().is_some(),
        subnet_group: pending
            .and_then(|p| p.db_subnet_group_name())
            .or(db.db_subnet_group().and_then(|g| g.db_subnet_group_name()))
            .unwrap_or_default()
            .into(),
        security_group_ids,
        backup_retention_days: pending
            .and_then(|p| p.backup_retention_period())
            .or(db.backup_retention_period())
            .unwrap_or_default(),
        backup_window: Some(db.preferred_backup_window().map(str::to_string)),
        maintenance_window: Some(db.preferred_maintenance_window().map(|w| w.to_ascii_lowercase())),
        deletion_protection: db.deletion_protection().unwrap_or(false),
        parameter_group,
        copy_tags_to_snapshot: db.copy_tags_to_snapshot().unwrap_or(false),
        auto_minor_version_upgrade: db.auto_minor_version_upgrade().unwrap_or(true),
        iam_auth: db.iam_database_authentication_enabled().unwrap_or(false),
        log_exports: {
            let mut l: Vec<String> = db.enabled_cloudwatch_logs_exports().to_vec();
            l.sort();
            l
        },
        monitoring_interval: db.monitoring_interval().unwrap_or(0),
        // RDS may keep the role of a monitoring turned off: it stands for nothing then.
        monitoring_role_arn: db
            .monitoring_role_arn()
            .filter(|_| db.monitoring_interval().unwrap_or(0) > 0)
            .map(Ref::from),
        apply_immediately: None,
        wait_until_available: None,
        tags,
    }
}

/// The instance at `address` with `props`, and the attributes others read.
fn current(address: String, db: &Instance, props: DbInstanceProps) -> Current<DbInstanceProps> {
    let endpoint = db.endpoint();
    let port = endpoint
        .and_then(|e| e.port())
        .or(db.db_instance_port().filter(|p| *p > 0))
        .unwrap_or_else(|| engine_port(db.engine().unwrap_or_default()));
    Current::new(address, db.db_instance_identifier().unwrap_or_default(), props)
        .with("arn", db.db_instance_arn())
        .with("endpoint", endpoint.and_then(|e| e.address()))
        .with("port", port)
        .with("secret_arn", db.master_user_secret().and_then(|s| s.secret_arn()))
        .with("status", db.db_instance_status())
}

/// The monitoring role's ARN, when monitoring is on.
fn monitoring_role(p: &DbInstanceProps) -> Result<Option<String>> {
    p.monitoring_role_arn.as_ref().filter(|_| p.monitoring_interval > 0).map(|r| r.get().cloned()).transpose()
}

/// RDS refusing a monitoring role IAM has not yet shown it (a role made a
/// moment ago): the same answer as a role without the permissions, so it
/// is retried up to the step's timeout (as terraform-provider-aws does).
fn role_not_visible(e: &crate::aws::errors::AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValue") && e.message.contains("ENHANCED_MONITORING")
}

fn engine_port(engine: &str) -> i32 {
    if engine.contains("postgres") { 5432 } else { 3306 }
}

fn major(version: &str, engine: &str) -> String {
    let mut parts = version.split('.');
    let first = parts.next().unwrap_or_default();
    // PostgreSQL 10+ majors are one number; MySQL/MariaDB and old
    // PostgreSQL majors are two (8.0, 10.11, 9.6).
    if engine.contains("postgres") && first.parse::<u32>().is_ok_and(|m| m >= 10) {
        first.to_string()
    } else {
        format!("{first}.{}", parts.next().unwrap_or_default())
    }
}

/// How a live version stands against the file's `engine_version`: a major
/// (`16`) pins the major, a full version (`16.4`) a minimum within its major.
#[derive(Debug, PartialEq, Eq)]
enum Pin {
    /// The live version is what the file asks for (RDS's automatic minor
    /// upgrades included): nothing to change.
    Met,
    /// The file asks for a newer version: an upgrade (a major one when the
    /// majors differ).
    Upgrade,
    /// The file asks for an older major: RDS cannot downgrade.
    Older,
}

/// Dot-separated numbers compared as numbers (`16.10` > `16.9`); a
/// non-numeric part compares as text.
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| v.split(['.', '-']).map(|p| p.to_string()).collect::<Vec<_>>();
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

fn pin(engine: &str, wanted: &str, live: &str) -> Pin {
    let (mw, ml) = (major(wanted, engine), major(live, engine));
    if mw == ml {
        // `16` (a major) is met by any 16.x; `16.4` by 16.4 and later.
        return if wanted == mw || version_cmp(live, wanted).is_ge() { Pin::Met } else { Pin::Upgrade };
    }
    if version_cmp(&mw, &ml).is_gt() { Pin::Upgrade } else { Pin::Older }
}

/// The instances named `id` (every one, without): one paginated describe
/// (RDS returns the tags with it; it has no tag filter).
async fn instances(aws: &Aws, id: Option<&str>) -> Result<Vec<Instance>> {
    Ok(paginated!(aws.rds.describe_db_instances().set_db_instance_identifier(id.map(str::to_string)))
        .or_absent()?
        .unwrap_or_default())
}

async fn describe(aws: &Aws, id: &str) -> Result<Option<Instance>> {
    Ok(instances(aws, Some(id)).await?.into_iter().next())
}

/// Waits for `available`, reporting the instance's status as it goes.
async fn wait_available(aws: &Aws, id: &str, rep: &dyn StepReporter) -> Result<Instance> {
    wait_for("the database to become available", LONG, rep, || async {
        let Some(db) = describe(aws, id).await? else {
            return Ok(None);
        };
        let status = db.db_instance_status().unwrap_or("unknown").to_string();
        match status.as_str() {
            "available" => Ok(Some(db)),
            "failed" | "incompatible-parameters" | "incompatible-network"
            | "incompatible-option-group" | "storage-full" | "inaccessible-encryption-credentials" => {
                bail!("database {id} is {status}; see the RDS console or `aws rds describe-events --source-identifier {id} --source-type db-instance`")
            }
            _ => {
                rep.status(&format!("status {status}"));
                Ok(None)
            }
        }
    })
    .await
}

async fn wait_gone(aws: &Aws, id: &str, rep: &dyn StepReporter) -> Result<()> {
    wait_for("the database to be deleted", LONG, rep, || async {
        Ok(match describe(aws, id).await? {
            None => Some(()),
            Some(db) => {
                rep.status(&format!("status {}", db.db_instance_status().unwrap_or("unknown")));
                None
            }
        })
    })
    .await
}

/// The version RDS creates for `engine` at `version` (a major: its newest
/// minor offered), or an error naming the newest minor of each major it
/// offers.
async fn offered(aws: &Aws, engine: &str, version: &str) -> Result<String> {
    async fn versions(aws: &Aws, engine: &str, v: Option<&str>) -> Result<Vec<String>> {
        let out = aws
            .rds
            .describe_db_engine_versions()
            .engine(engine)
            .set_engine_version(v.map(str::to_string))
            .send()
            .await
            .aws()
            .context("listing the engine versions RDS offers")?;
        Ok(out.db_engine_versions().iter().filter_map(|v| v.engine_version().map(str::to_string)).collect())
    }
    if let Some(v) = versions(aws, engine, Some(version)).await?.into_iter().max_by(|a, b| version_cmp(a, b)) {
        return Ok(v);
    }
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    for v in versions(aws, engine, None).await? {
        let m = major(&v, engine);
        if newest.get(&m).is_none_or(|n| version_cmp(&v, n).is_gt()) {
            newest.insert(m, v);
        }
    }
    let mut choices: Vec<&String> = newest.values().collect();
    choices.sort_by(|a, b| version_cmp(a, b));
    bail!(
        "RDS does not offer {engine} {version} (retired or unknown); offered now: {} (a major such as \"{}\" follows RDS's minor upgrades)",
        choices.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
        choices.last().map(|c| major(c, engine)).unwrap_or_default()
    )
}

/// Fails unless RDS offers `class` for `engine` `version` in this region
/// (Multi-AZ too, when asked), naming the classes it does offer: RDS
/// accepts a CreateDBInstance it cannot place only to fail it, and some
/// classes (db.t2.*, older generations) are not offered for newer versions.
async fn orderable(aws: &Aws, engine: &str, version: &str, class: &str, multi_az: bool) -> Result<()> {
    let options = |class: Option<&str>| {
        aws.rds
            .describe_orderable_db_instance_options()
            .engine(engine)
            .engine_version(version)
            .set_db_instance_class(class.map(str::to_string))
            .vpc(true)
    };
    let listed = paginated!(options(Some(class))).context("listing the instance classes RDS offers")?;
    let fits = |o: &aws_sdk_rds::types::OrderableDbInstanceOption| !multi_az || o.multi_az_capable() == Some(true);
    if listed.iter().any(fits) {
        return Ok(());
    }
    let all = paginated!(options(None)).context("listing the instance classes RDS offers")?;
    let mut classes: Vec<&str> = all.iter().filter(|o| fits(o)).filter_map(|o| o.db_instance_class()).collect();
    classes.sort_by_key(|c| (class_family(c) != class_family(class), class_size(c) != class_size(class), *c));
    classes.dedup();
    let what = if multi_az { format!("{engine} {version} with Multi-AZ") } else { format!("{engine} {version}") };
    let why = if listed.is_empty() { "is not offered" } else { "is offered only without Multi-AZ" };
    if classes.is_empty() {
        bail!("instance class {class} {why} for {what} in {}, and RDS lists no class that is", aws.region);
    }
    bail!(
        "instance class {class} {why} for {what} in {}; offered: {}{}",
        aws.region,
        classes.iter().take(8).copied().collect::<Vec<_>>().join(", "),
        if classes.len() > 8 { format!(" and {} more", classes.len() - 8) } else { String::new() }
    )
}

/// `db.t3` of `db.t3.micro`: classes of the same family are named first,
/// then those of the same size (`micro`).
fn class_family(class: &str) -> &str {
    class.rsplit_once('.').map_or(class, |(f, _)| f)
}

fn class_size(class: &str) -> &str {
    class.rsplit_once('.').map_or("", |(_, s)| s)
}

/// The default parameter group of the instance's engine and version.
async fn default_parameter_group(aws: &Aws, engine: &str, version: Option<&str>) -> Result<String> {
    let out = aws
        .rds
        .describe_db_engine_versions()
        .engine(engine)
        .set_engine_version(version.map(str::to_string))
        .default_only(version.is_none())
        .send()
        .await
        .aws()
        .context("looking up the engine's default parameter group")?;
    let family = out.db_engine_versions().iter().find_map(|v| v.db_parameter_group_family()).with_context(|| {
        format!("RDS reports no parameter group family for {engine} {}", version.unwrap_or("(default)"))
    })?;
    Ok(format!("default.{family}"))
}

#[async_trait]
impl Kind for DbInstance {
    type Props = DbInstanceProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["identifier", "engine", "db_name", "username", "storage_encrypted"],
            holds_data: true,
            weight: 100,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        if let Some(o) = props.as_object_mut() {
            o.remove("apply_immediately");
            o.remove("wait_until_available");
            if let Some(Value::String(w)) = o.get_mut("maintenance_window") {
                *w = w.to_ascii_lowercase();
            }
        }
        sort_set(props, "security_group_ids");
        sort_set(props, "log_exports");
    }

    fn protected(&self, p: &DbInstanceProps) -> bool {
        p.deletion_protection
    }

    fn annotate(&self, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        instance_notes(desired, fields)
    }

    /// The file's `engine_version` against RDS: a new database's version
    /// must be one RDS offers (else the valid ones are named, before any
    /// change); a live one that already meets the pin (RDS upgrades minors
    /// itself) is taken as desired, with a note, and an older major is
    /// refused: RDS never downgrades.
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        for r in desired.iter_mut().filter(|r| r.kind == DbInstanceProps::KIND) {
            let (Some(wanted), Some(engine), Some(id)) = (
                r.props.get("engine_version").and_then(Value::as_str).map(str::to_string),
                r.props.get("engine").and_then(Value::as_str).map(str::to_string),
                r.props.get("identifier").and_then(Value::as_str).map(str::to_string),
            ) else {
                continue;
            };
            // Another engine is a replacement: a new database, as if none ran.
            let db = describe(aws, &id).await?.filter(|db| db.engine() == Some(engine.as_str()));
            let live = db.as_ref().and_then(|db| db.engine_version().map(str::to_string));
            let class = r.props.get("instance_class").and_then(Value::as_str).unwrap_or_default().to_string();
            let multi_az = r.props.get("multi_az").and_then(Value::as_bool).unwrap_or(false);
            // A class or Multi-AZ the running database does not have yet is
            // checked against what RDS offers for the version it will run.
            let placed = db.as_ref().is_some_and(|db| {
                db.db_instance_class() == Some(class.as_str()) && (!multi_az || db.multi_az() == Some(true))
            });
            let Some(live) = live else {
                let version =
                    offered(aws, &engine, &wanted).await.with_context(|| format!("{}: engine_version", r.address))?;
                orderable(aws, &engine, &version, &class, multi_az)
                    .await
                    .with_context(|| format!("{}: instance_class", r.address))?;
                continue;
            };
            let runs = match pin(&engine, &wanted, &live) {
                Pin::Met if live != wanted => {
                    r.props["engine_version"] = Value::String(live.clone());
                    aws.note(format!(
                        "{}: runs {engine} {live}, which meets engine_version \"{wanted}\" in the file (RDS applies minor upgrades itself and cannot downgrade): nothing to change",
                        r.address
                    ));
                    live.clone()
                }
                Pin::Met => live.clone(),
                Pin::Upgrade => {
                    offered(aws, &engine, &wanted).await.with_context(|| format!("{}: engine_version", r.address))?
                }
                Pin::Older => bail!(
                    "{}: the file asks for {engine} {wanted}, but the database runs {live}, and RDS cannot go back to an older major version; set `engine_version: \"{}\"` (or restore a snapshot into a new database)",
                    r.address,
                    major(&live, &engine)
                ),
            };
            if !placed || runs != live {
                orderable(aws, &engine, &runs, &class, multi_az)
                    .await
                    .with_context(|| format!("{}: instance_class", r.address))?;
            }
        }
        Ok(())
    }

    /// The instance's hours (its engine, class and Multi-AZ), its storage
    /// and provisioned IOPS above what the storage type includes, and the
    /// master password's secret when RDS manages it.
    fn cost(&self, p: &DbInstanceProps, prices: &Prices) -> Option<Cost> {
        let az = if p.multi_az { "multi_az" } else { "single_az" };
        let gb = f64::from(p.storage_gb);
        let mut bill = prices
            .bill()
            .hourly(
                &format!("{} {} ({})", p.engine, p.instance_class, if p.multi_az { "Multi-AZ" } else { "Single-AZ" }),
                (1.0, 1.0),
                &["rds", "instances", &p.engine, az, &p.instance_class],
            )
            .monthly(
                &format!("{} storage", p.storage_type),
                (gb, gb),
                "GB-month",
                &["rds", "storage", az, &p.storage_type],
            );
        let iops = f64::from(p.iops.flatten().unwrap_or(0));
        // gp3 includes 3,000 IOPS below 400 GB and 12,000 from 400 GB (RDS
        // User Guide, "gp3 storage"); io1 bills every provisioned IOPS.
        let (included, path) = match p.storage_type.as_str() {
            "gp3" => (if p.storage_gb < 400 { 3000.0 } else { 12000.0 }, "gp3_iops"),
            "io1" | "io2" => (0.0, "io1_iops"),
            _ => (f64::INFINITY, ""),
        };
        if iops > included {
            let extra = iops - included;
            bill = bill.monthly("provisioned IOPS", (extra, extra), "IOPS-month", &["rds", "storage", az, path]);
        }
        if p.manage_master_password {
            bill =
                bill.monthly("master password secret", (1.0, 1.0), "secret-month", &["secretsmanager", "secret_month"]);
        }
        Some(bill.done())
    }

    /// A database turning publicly accessible gets a public address.
    fn widens(&self, before: Option<&DbInstanceProps>, after: &DbInstanceProps) -> Vec<String> {
        if after.publicly_accessible && !before.is_some_and(|b| b.publicly_accessible) {
            vec!["publicly accessible: its endpoint resolves to a public address".into()]
        } else {
            Vec::new()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DbInstanceProps>>> {
        Ok(owned(
            aws,
            address,
            instances(aws, None).await?,
            |db| tag_map(db.tag_list()),
            |db, owner| Some(current(owner.address, &db, read(&db, owner.tags))),
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<DbInstanceProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<DbInstanceProps>> {
        let p = &d.props;
        let subnet_group = p.subnet_group.get()?;
        let security_groups = Ref::all(&p.security_group_ids)?;
        let t = aws.tags_for(&d.address, &p.tags);
        let monitoring_role = monitoring_role(p)?;
        let sent = retry_when(
            // The subnet group or security group may not be visible yet, nor
            // (IAM is eventually consistent) the monitoring role to RDS.
            |e| {
                matches!(e.code.as_deref(), Some("DBSubnetGroupNotFoundFault" | "InvalidVPCNetworkStateFault"))
                    || role_not_visible(e)
            },
            "creating the database",
            VISIBLE,
            ctx,
            || async {
                aws.rds
                    .create_db_instance()
                    .db_instance_identifier(&p.identifier)
                    .engine(&p.engine)
                    .set_engine_version(value(&p.engine_version).cloned())
                    .db_instance_class(&p.instance_class)
                    .allocated_storage(p.storage_gb)
                    .storage_type(&p.storage_type)
                    .set_iops(value(&p.iops).copied())
                    .multi_az(p.multi_az)
                    .storage_encrypted(p.storage_encrypted)
                    .publicly_accessible(p.publicly_accessible)
                    .set_db_name(value(&p.db_name).cloned())
                    .master_username(&p.username)
                    .manage_master_user_password(p.manage_master_password)
                    .db_subnet_group_name(subnet_group)
                    .set_vpc_security_group_ids(Some(security_groups.clone()))
                    .backup_retention_period(p.backup_retention_days)
                    .set_preferred_backup_window(value(&p.backup_window).cloned())
                    .set_preferred_maintenance_window(value(&p.maintenance_window).cloned())
                    .deletion_protection(p.deletion_protection)
                    .set_db_parameter_group_name(p.parameter_group.clone())
                    .copy_tags_to_snapshot(p.copy_tags_to_snapshot)
                    .auto_minor_version_upgrade(p.auto_minor_version_upgrade)
                    .enable_iam_database_authentication(p.iam_auth)
                    .set_enable_cloudwatch_logs_exports((!p.log_exports.is_empty()).then(|| p.log_exports.clone()))
                    .monitoring_interval(p.monitoring_interval)
                    .set_monitoring_role_arn(monitoring_role.clone())
                    .set_tags(Some(tag_list(&t)))
                    .send()
                    .await
                    .aws()
            },
        )
        .await;
        let db = match sent {
            Ok(out) => out.db_instance().cloned(),
            // A retried create whose first attempt went through.
            Err(e) => {
                let mine = async {
                    Ok(instances(aws, Some(&p.identifier))
                        .await?
                        .into_iter()
                        .find(|db| find::owner(aws, Some(&d.address), tag_map(db.tag_list())).is_some()))
                };
                Some(adopt(e, "DBInstanceAlreadyExists", "an RDS instance", &p.identifier, aws, mine).await?)
            }
        };
        let db = if p.wait_until_available == Some(true) {
            // A resource of the stack reads the endpoint, known once available.
            wait_available(aws, &p.identifier, ctx).await?
        } else {
            match db {
                Some(db) => db,
                None => {
                    describe(aws, &p.identifier).await?.context("the database vanished right after its creation")?
                }
            }
        };
        // The create response predates the tags and some defaults: what was
        // asked for is what the instance is becoming.
        Ok(current(d.address.clone(), &db, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<DbInstanceProps>, l: &Current<DbInstanceProps>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<DbInstanceProps>> {
        let (p, old) = (&d.props, &l.props);
        let has = |f: &str| changed.iter().any(|c| c == f);
        if has("storage_gb") && p.storage_gb < old.storage_gb {
            bail!(
                "storage_gb {} → {}: RDS cannot shrink storage. Keep {} GiB, or restore a snapshot into a new, smaller database",
                old.storage_gb,
                p.storage_gb,
                old.storage_gb
            );
        }
        let parameter_group = if has("parameter_group") {
            match &p.parameter_group {
                Some(g) => Some(g.clone()),
                None => {
                    Some(default_parameter_group(aws, &p.engine, value(&old.engine_version).map(String::as_str)).await?)
                }
            }
        } else {
            None
        };
        let modifiable = [
            "engine_version",
            "instance_class",
            "storage_gb",
            "storage_type",
            "iops",
            "multi_az",
            "publicly_accessible",
            "subnet_group",
            "security_group_ids",
            "backup_retention_days",
            "backup_window",
            "maintenance_window",
            "deletion_protection",
            "parameter_group",
            "copy_tags_to_snapshot",
            "auto_minor_version_upgrade",
            "manage_master_password",
            "iam_auth",
            "log_exports",
            "monitoring_interval",
            "monitoring_role_arn",
        ];
        if modifiable.iter().any(|f| has(f)) {
            let major_upgrade = has("engine_version")
                && match (value(&old.engine_version), value(&p.engine_version)) {
                    (Some(a), Some(b)) => major(a, &p.engine) != major(b, &p.engine),
                    _ => false,
                };
            let storage = has("storage_gb") || has("storage_type") || has("iops");
            let subnet_group = has("subnet_group").then(|| p.subnet_group.get().cloned()).transpose()?;
            let security_groups = has("security_group_ids").then(|| Ref::all(&p.security_group_ids)).transpose()?;
            // Only what changed (a setting the file does not pin is never changed).
            let pick = |f: &str, s: &Setting<String>| value(s).filter(|_| has(f)).cloned();
            // The interval and its role go together (RDS wants a role with
            // any interval but 0).
            let monitoring = has("monitoring_interval") || has("monitoring_role_arn");
            let monitoring_role = monitoring_role(p)?.filter(|_| monitoring);
            retry_when(
                // Busy: backing up, another modification, still creating; or
                // a new monitoring role not visible to RDS yet.
                |e| {
                    matches!(e.code.as_deref(), Some("InvalidDBInstanceState" | "InvalidDBInstanceStateFault"))
                        || role_not_visible(e)
                },
                "modifying the database",
                LONG,
                ctx,
                || async {
                    aws.rds
                        .modify_db_instance()
                        .db_instance_identifier(&l.id)
                        .apply_immediately(p.apply_immediately.unwrap_or(true))
                        .set_engine_version(pick("engine_version", &p.engine_version))
                        .set_allow_major_version_upgrade(major_upgrade.then_some(true))
                        .set_db_instance_class(has("instance_class").then(|| p.instance_class.clone()))
                        // Storage settings go together: RDS validates them as a set.
                        .set_allocated_storage(storage.then_some(p.storage_gb))
                        .set_storage_type(storage.then(|| p.storage_type.clone()))
                        .set_iops(value(&p.iops).copied().filter(|_| storage))
                        .set_multi_az(has("multi_az").then_some(p.multi_az))
                        .set_publicly_accessible(has("publicly_accessible").then_some(p.publicly_accessible))
                        .set_db_subnet_group_name(subnet_group.clone())
                        .set_vpc_security_group_ids(security_groups.clone())
                        .set_backup_retention_period(has("backup_retention_days").then_some(p.backup_retention_days))
                        .set_preferred_backup_window(pick("backup_window", &p.backup_window))
                        .set_preferred_maintenance_window(pick("maintenance_window", &p.maintenance_window))
                        .set_deletion_protection(has("deletion_protection").then_some(p.deletion_protection))
                        .set_db_parameter_group_name(parameter_group.clone())
                        .set_copy_tags_to_snapshot(has("copy_tags_to_snapshot").then_some(p.copy_tags_to_snapshot))
                        .set_auto_minor_version_upgrade(
                            has("auto_minor_version_upgrade").then_some(p.auto_minor_version_upgrade),
                        )
                        .set_manage_master_user_password(
                            has("manage_master_password").then_some(p.manage_master_password),
                        )
                        .set_enable_iam_database_authentication(has("iam_auth").then_some(p.iam_auth))
                        .set_cloudwatch_logs_export_configuration(has("log_exports").then(|| {
                            let added = p.log_exports.iter().filter(|l| !old.log_exports.contains(l)).cloned();
                            let removed = old.log_exports.iter().filter(|l| !p.log_exports.contains(l)).cloned();
                            aws_sdk_rds::types::CloudwatchLogsExportConfiguration::builder()
                                .set_enable_log_types(Some(added.collect()))
                                .set_disable_log_types(Some(removed.collect()))
                                .build()
                        }))
                        .set_monitoring_interval(monitoring.then_some(p.monitoring_interval))
                        .set_monitoring_role_arn(monitoring_role.clone())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        let arn = l.attr("arn").unwrap_or_default();
        tags::sync(&Tagging, aws, arn, &old.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn verify(&self, aws: &Aws, l: &Current<DbInstanceProps>, _all: &[Live]) -> Result<Vec<Finding>> {
        let out = aws
            .rds
            .describe_db_instances()
            .db_instance_identifier(&l.id)
            .send()
            .await
            .aws()
            .with_context(|| format!("reading database {}", l.id))?;
        let Some(db) = out.db_instances().first() else {
            return Ok(vec![Finding::new(&l.address, "available", false, "not found")]);
        };
        let status = db.db_instance_status().unwrap_or("unknown");
        let mut found = vec![Finding::new(&l.address, "available", status == "available", status)];
        if l.props.multi_az {
            let multi = db.multi_az().unwrap_or(false);
            let standby = db.secondary_availability_zone().map(|az| format!(", standby in {az}")).unwrap_or_default();
            let detail = if multi { format!("Multi-AZ{standby}") } else { "single-AZ".to_string() };
            found.push(Finding::new(&l.address, "Multi-AZ", multi, detail));
        }
        Ok(found)
    }

    async fn delete(&self, aws: &Aws, l: &Current<DbInstanceProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let Some(db) = describe(aws, &l.id).await? else {
            return Ok(None);
        };
        if db.db_instance_status() == Some("deleting") {
            // An earlier run asked already (and took its snapshot then).
            wait_gone(aws, &l.id, ctx).await?;
            return Ok(None);
        }
        if db.deletion_protection() == Some(true) {
            bail!(
                "{} ({}) has deletion protection on in AWS. To delete it, set `deletion_protection: false` for it in the stack file and run `infra apply` first",
                l.address,
                l.id
            );
        }
        let snapshot = (!ctx.options.skip_final_backup).then(|| final_snapshot_id(&l.id, &timestamp()));
        if let Some(s) = &snapshot {
            ctx.status(&format!("taking final snapshot {s}"));
        }
        let deleted = retry_on(
            &["InvalidDBInstanceState", "InvalidDBInstanceStateFault"],
            "deleting the database",
            LONG,
            ctx,
            || async {
                aws.rds
                    .delete_db_instance()
                    .db_instance_identifier(&l.id)
                    .skip_final_snapshot(snapshot.is_none())
                    .set_final_db_snapshot_identifier(snapshot.clone())
                    // Automated backups stay for their retention period.
                    .delete_automated_backups(false)
                    .send()
                    .await
                    .aws()
                    .or_absent()
            },
        )
        .await?;
        if deleted.is_none() {
            // Deleted by someone else meanwhile: nothing of ours to report.
            return Ok(None);
        }
        wait_gone(aws, &l.id, ctx).await?;
        Ok(Some(match snapshot {
            Some(s) => format!("final snapshot {s} kept (restore with `aws rds restore-db-instance-from-db-snapshot`)"),
            None => "no final snapshot (--skip-final-backup); automated backups kept for their retention period".into(),
        }))
    }
}

/// What an in-place change of the instance does beyond the diff.
fn instance_notes(desired: &Value, fields: &[FieldChange]) -> Vec<String> {
    let top = |f: &FieldChange| f.path.split('.').next().unwrap_or_default().to_string();
    let field = |name: &str| fields.iter().find(|f| top(f) == name);
    let multi_az = desired.get("multi_az").and_then(Value::as_bool) == Some(true);
    let engine = desired.get("engine").and_then(Value::as_str).unwrap_or("");
    let mut notes = Vec::new();
    if fields.iter().any(|f| f.forces_replacement) {
        return notes;
    }
    if field("instance_class").is_some() {
        notes.push(if multi_az {
            "DOWNTIME: changing the instance class restarts the database (with Multi-AZ: a failover of about a minute or two)".into()
        } else {
            "DOWNTIME: changing the instance class restarts the database (several minutes without Multi-AZ)".into()
        });
    }
    if let Some(f) = field("engine_version") {
        let (a, b) = (
            f.old.as_ref().and_then(Value::as_str).unwrap_or(""),
            f.new.as_ref().and_then(Value::as_str).unwrap_or(""),
        );
        notes.push(if major(a, engine) != major(b, engine) {
            format!("DOWNTIME: major engine upgrade {a} → {b}: the database is down while it upgrades (Multi-AZ does not help); take a snapshot and test first")
        } else {
            format!("DOWNTIME: engine upgrade {a} → {b} restarts the database")
        });
    }
    let shrink = field("storage_gb").and_then(|f| {
        let (a, b) = (f.old.as_ref().and_then(Value::as_i64)?, f.new.as_ref().and_then(Value::as_i64)?);
        (b < a).then_some((a, b))
    });
    if let Some((a, b)) = shrink {
        notes.push(format!("storage cannot shrink ({a} → {b} GiB): RDS refuses it; this update will fail"));
    } else if ["storage_gb", "storage_type", "iops"].iter().any(|f| field(f).is_some()) {
        notes.push("storage change: no downtime, but I/O may be slower while RDS optimizes the volume, and the next storage change must wait 6 hours".into());
    }
    if let Some(f) = field("backup_retention_days") {
        let zero = |v: &Option<Value>| v.as_ref().and_then(Value::as_i64) == Some(0);
        if zero(&f.old) != zero(&f.new) {
            notes
                .push("DOWNTIME: turning automated backups on or off (retention to or from 0) causes an outage".into());
        }
    }
    if let Some(f) = field("multi_az") {
        notes.push(if f.new.as_ref().and_then(Value::as_bool) == Some(true) {
            "adding a standby: no downtime, I/O may be slower while it is created".into()
        } else {
            "removing the standby: no automatic failover from now on".into()
        });
    }
    if field("parameter_group").is_some() {
        notes.push(
            "REBOOT needed: the new parameter group applies at the next reboot (infra does not reboot the database)"
                .into(),
        );
    }
    if field("subnet_group").is_some() || field("publicly_accessible").is_some() {
        notes.push("DOWNTIME: moving the database's network restarts it".into());
    }
    let deferrable = ["instance_class", "engine_version", "storage_gb", "storage_type", "iops", "multi_az"];
    if desired.get("apply_immediately").and_then(Value::as_bool) == Some(false)
        && deferrable.iter().any(|f| field(f).is_some())
    {
        notes.push("deferred to the next maintenance window (apply_immediately: false)".into());
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(path: &str, old: Value, new: Value) -> FieldChange {
        FieldChange { path: path.into(), old: Some(old), new: Some(new), forces_replacement: false }
    }

    #[test]
    fn versions_pin_a_major_or_a_minimum_and_never_go_back() {
        assert_eq!(pin("postgres", "16", "16.9"), Pin::Met, "a major pin follows minor upgrades");
        assert_eq!(pin("postgres", "16.4", "16.9"), Pin::Met, "a full version is a minimum");
        assert_eq!(pin("postgres", "16.9", "16.9"), Pin::Met);
        assert_eq!(pin("postgres", "16.10", "16.9"), Pin::Upgrade, "numbers, not text");
        assert_eq!(pin("postgres", "17", "16.9"), Pin::Upgrade);
        assert_eq!(pin("postgres", "15.4", "16.9"), Pin::Older);
        assert_eq!(pin("mysql", "8.0", "8.0.42"), Pin::Met);
        assert_eq!(pin("mysql", "8.4.4", "8.0.42"), Pin::Upgrade);
        assert_eq!(version_cmp("16.10", "16.9"), std::cmp::Ordering::Greater);
    }

    #[test]
    fn notes_mark_downtime_and_reboots() {
        let d = json!({"engine": "postgres", "multi_az": true, "apply_immediately": true});
        let n = instance_notes(&d, &[change("instance_class", json!("db.t3.micro"), json!("db.t3.small"))]);
        assert_eq!(n.len(), 1);
        assert!(n[0].starts_with("DOWNTIME") && n[0].contains("failover"), "{n:?}");

        let n = instance_notes(&d, &[change("engine_version", json!("15.4"), json!("16.3"))]);
        assert!(n[0].contains("major engine upgrade"), "{n:?}");
        let n = instance_notes(&d, &[change("engine_version", json!("16.2"), json!("16.3"))]);
        assert!(!n[0].contains("major"), "{n:?}");

        let n = instance_notes(&d, &[change("parameter_group", Value::Null, json!("pg"))]);
        assert!(n[0].starts_with("REBOOT"), "{n:?}");

        let n = instance_notes(&d, &[change("backup_retention_days", json!(0), json!(7))]);
        assert!(n[0].contains("outage"), "{n:?}");
        let n = instance_notes(&d, &[change("backup_retention_days", json!(7), json!(14))]);
        assert!(n.is_empty(), "{n:?}");

        let n = instance_notes(&d, &[change("storage_gb", json!(50), json!(20))]);
        assert!(n[0].contains("cannot shrink"), "{n:?}");

        let lazy = json!({"engine": "mysql", "multi_az": false, "apply_immediately": false});
        let n = instance_notes(&lazy, &[change("instance_class", json!("db.t3.micro"), json!("db.t3.small"))]);
        assert!(n.iter().any(|s| s.contains("maintenance window")), "{n:?}");

        let n = instance_notes(&d, &[change("tags.Team", json!("a"), json!("b"))]);
        assert!(n.is_empty());
    }

    #[test]
    fn major_versions() {
        assert_eq!(major("16.3", "postgres"), "16");
        assert_eq!(major("9.6.24", "postgres"), "9.6");
        assert_eq!(major("8.0.39", "mysql"), "8.0");
        assert_eq!(major("10.11.6", "mariadb"), "10.11");
    }

    #[test]
    fn final_snapshot_ids_are_valid_and_unique_per_second() {
        let id = final_snapshot_id("shop-db", "20240131-235959");
        assert_eq!(id, "shop-db-final-20240131-235959");
        // DBSnapshotIdentifier: a letter first, letters/digits/hyphens, no
        // "--", no trailing hyphen, at most 255 (the longest stack name fits).
        let longest = final_snapshot_id(&format!("{}-db", "a".repeat(24)), "20240131-235959");
        assert!(longest.len() <= 255 && !longest.contains("--") && !longest.ends_with('-'));
        let t = timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t.chars().all(|c| c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn read_props_keep_the_shape_of_before_and_fit_the_kind() {
        use crate::aws::kind::DynKind;
        use aws_sdk_rds::types::{
            DbParameterGroupStatus, DbSubnetGroup, Endpoint, MasterUserSecret, VpcSecurityGroupMembership,
        };
        let sg = |id: &str, status: &str| {
            VpcSecurityGroupMembership::builder().vpc_security_group_id(id).status(status).build()
        };
        let db = Instance::builder()
            .db_instance_identifier("shop-db")
            .engine("postgres")
            .engine_version("16.3")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .storage_type("gp3")
            .multi_az(true)
            .storage_encrypted(true)
            .publicly_accessible(false)
            .master_username("app")
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:secret").build())
            .db_subnet_group(DbSubnetGroup::builder().db_subnet_group_name("shop-db").build())
            .vpc_security_groups(sg("sg-2", "active"))
            .vpc_security_groups(sg("sg-1", "active"))
            .vpc_security_groups(sg("sg-0", "removing"))
            .backup_retention_period(7)
            .preferred_maintenance_window("Sun:04:30-Sun:05:30")
            .deletion_protection(true)
            .db_parameter_groups(
                DbParameterGroupStatus::builder().db_parameter_group_name("default.postgres16").build(),
            )
            .copy_tags_to_snapshot(true)
            .iam_database_authentication_enabled(true)
            .enabled_cloudwatch_logs_exports("upgrade")
            .enabled_cloudwatch_logs_exports("postgresql")
            .monitoring_interval(60)
            .monitoring_role_arn("arn:monitoring")
            .endpoint(Endpoint::builder().address("db.host").port(5432).build())
            .db_instance_arn("arn:db")
            .db_instance_status("available")
            .build();
        let l = current("data.database".into(), &db, read(&db, Tags::new())).into_live().unwrap();
        // What AWS has none of is `null`; the behaviour switches are absent.
        assert_eq!(
            l.props,
            json!({
                "auto_minor_version_upgrade": true,
                "identifier": "shop-db", "engine": "postgres", "engine_version": "16.3",
                "instance_class": "db.t3.micro", "storage_gb": 20, "storage_type": "gp3",
                "iops": null, "multi_az": true, "storage_encrypted": true,
                "publicly_accessible": false, "db_name": null, "username": "app",
                "manage_master_password": true, "subnet_group": "shop-db",
                "security_group_ids": ["sg-1", "sg-2"], "backup_retention_days": 7,
                "backup_window": null, "maintenance_window": "sun:04:30-sun:05:30",
                "deletion_protection": true, "parameter_group": null,
                "monitoring_interval": 60, "monitoring_role_arn": "arn:monitoring",
                "copy_tags_to_snapshot": true, "tags": {},
                "iam_auth": true, "log_exports": ["postgresql", "upgrade"]
            })
        );
        assert_eq!(
            serde_json::Value::Object(l.attrs.clone()),
            json!({
                "id": "shop-db", "arn": "arn:db", "endpoint": "db.host", "port": 5432,
                "secret_arn": "arn:secret", "status": "available"
            })
        );
        assert!(DynKind::protected(&DbInstance, &l.props));
        let back = Current::<DbInstanceProps>::from_live(&l).unwrap();
        assert_eq!(back.props.engine_version, Some(Some("16.3".to_string())));
        assert_eq!(back.props.iops, Some(None));
        assert_eq!(back.props.apply_immediately, None);
        // A desired database: unpinned settings absent, behaviour dropped before comparing.
        let mut desired = json!({
            "engine_version": null, "apply_immediately": false, "wait_until_available": true,
            "maintenance_window": "Sun:04:30-Sun:05:30", "security_group_ids": ["b", "a", "a"]
        });
        DynKind::normalize(&DbInstance, &mut desired);
        assert_eq!(
            desired,
            json!({
                "engine_version": null, "maintenance_window": "sun:04:30-sun:05:30",
                "security_group_ids": ["a", "b"]
            })
        );
    }
}
