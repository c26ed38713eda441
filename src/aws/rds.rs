//! RDS: the DB subnet group and the DB instance.
//!
//! The instance is created with `ManageMasterUserPassword`: RDS generates the
//! master password and keeps it in a Secrets Manager secret it owns. The tool
//! never sees the password, so it cannot leak it; it only reports the
//! secret's ARN.
//!
//! Deleting an instance takes a final snapshot with a unique, timestamped
//! identifier (unless `--skip-final-backup`) and keeps the automated backups.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_rds::types::{DbInstance, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::{AwsError, AwsResultExt};
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, retry_on, wait_for};
use crate::engine::plan::FieldChange;
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(SubnetGroup), Box::new(Instance)]
}

/// Creating, modifying or deleting an instance: 15+ minutes on AWS, more for
/// big storage or Multi-AZ conversions.
const LONG: Duration = Duration::from_secs(90 * 60);
/// How long a just-created resource may take to become visible to other calls.
const VISIBLE: Duration = Duration::from_secs(120);

fn tag_map(t: &[Tag]) -> Tags {
    t.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn tag_list(t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn make_live(kind: &str, address: &str, id: &str, props: Value, attrs: Value) -> Live {
    let mut a: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    a.insert("id".into(), json!(id));
    Live {
        address: address.into(),
        kind: kind.into(),
        id: id.into(),
        props,
        attrs: a,
    }
}

fn parse<T: for<'de> Deserialize<'de>>(v: &Value, what: &str) -> Result<T> {
    serde_json::from_value(v.clone())
        .with_context(|| format!("internal error: bad properties for {what}"))
}

fn gone(e: &AwsError) -> bool {
    e.not_found() || e.is("DBSubnetGroupNotFoundFault")
}

/// Applies a tag change to an RDS resource.
async fn retag(aws: &Aws, arn: &str, old: &Value, new: &Value) -> Result<()> {
    let (set, remove) = tags::delta(&tags::from_props(old), &tags::from_props(new));
    if !set.is_empty() {
        aws.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tag_list(&set)))
            .send()
            .await
            .aws()
            .context("tagging")?;
    }
    if !remove.is_empty() {
        aws.rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .aws()
            .context("untagging")?;
    }
    Ok(())
}

/// A unique, sortable suffix for final backups: `20240131-235959`.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[year][month][day]-[hour][minute][second]"
    ))
    .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Identifier of a final snapshot of instance `id`: letters, digits and
/// single hyphens, starting with a letter, at most 255 characters.
pub fn final_snapshot_id(id: &str, stamp: &str) -> String {
    format!("{id}-final-{stamp}")
}

// ---------------------------------------------------------------- DB subnet group

#[derive(Serialize, Deserialize)]
struct SubnetGroupProps {
    name: String,
    description: String,
    subnet_ids: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

struct SubnetGroup;

impl SubnetGroup {
    /// The stack's subnet groups: one paginated describe, then the tags of
    /// those named like ours (RDS returns no tags with the describe).
    async fn find(&self, aws: &Aws, name: Option<&str>) -> Result<Vec<Live>> {
        let prefix = format!("{}-", aws.stack);
        let groups: Vec<_> = aws
            .rds
            .describe_db_subnet_groups()
            .set_db_subnet_group_name(name.map(str::to_string))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .or_else(|e| if gone(&e) { Ok(Vec::new()) } else { Err(e) })?;
        let reads = groups
            .into_iter()
            .filter(|g| {
                g.db_subnet_group_name()
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .map(|g| async move {
                let arn = g.db_subnet_group_arn().unwrap_or_default().to_string();
                let t = aws
                    .rds
                    .list_tags_for_resource()
                    .resource_name(&arn)
                    .send()
                    .await
                    .aws();
                let all = match t {
                    Ok(t) => tag_map(t.tag_list()),
                    Err(e) if gone(&e) => return Ok(None),
                    Err(e) => return Err(anyhow::Error::from(e)),
                };
                let Some(addr) = tags::owner(aws, &all).map(str::to_string) else {
                    return Ok(None);
                };
                let name = g.db_subnet_group_name().unwrap_or_default().to_string();
                let mut subnet_ids: Vec<String> = g
                    .subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier().map(str::to_string))
                    .collect();
                subnet_ids.sort();
                let p = SubnetGroupProps {
                    name: name.clone(),
                    description: g.db_subnet_group_description().unwrap_or_default().into(),
                    subnet_ids,
                    tags: tags::visible(all),
                };
                Ok(Some(make_live(
                    "rds.db_subnet_group",
                    &addr,
                    &name,
                    json!(p),
                    json!({ "arn": arn, "name": name }),
                )))
            });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[async_trait]
impl Kind for SubnetGroup {
    fn name(&self) -> &'static str {
        "rds.db_subnet_group"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name"],
            weight: 1,
            service: "rds",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        if let Some(Value::Array(a)) = props.get_mut("subnet_ids") {
            a.sort_by_key(|v| v.to_string());
            a.dedup();
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: SubnetGroupProps = parse(&d.props, &d.address)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let created = retry_on(
            &["InvalidSubnet"],
            "creating the DB subnet group",
            VISIBLE,
            rep,
            || async {
                aws.rds
                    .create_db_subnet_group()
                    .db_subnet_group_name(&p.name)
                    .db_subnet_group_description(&p.description)
                    .set_subnet_ids(Some(p.subnet_ids.clone()))
                    .set_tags(Some(tag_list(&t)))
                    .send()
                    .await
                    .aws()
            },
        )
        .await;
        if let Err(e) = created {
            // A retried create whose first attempt went through: adopt it if it is ours.
            let exists = e
                .downcast_ref::<AwsError>()
                .is_some_and(|e| e.is("DBSubnetGroupAlreadyExists"));
            let mine = if exists {
                self.find(aws, Some(&p.name))
                    .await?
                    .into_iter()
                    .find(|l| l.address == d.address)
            } else {
                None
            };
            match (exists, mine) {
                (_, Some(l)) => return Ok(l),
                (true, None) => bail!(
                    "a DB subnet group named {} already exists and is not part of stack {}; delete or rename it",
                    p.name,
                    aws.stack
                ),
                (false, _) => return Err(e),
            }
        }
        self.find(aws, Some(&p.name))
            .await?
            .into_iter()
            .next()
            .context("the DB subnet group vanished right after its creation")
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: SubnetGroupProps = parse(&d.props, &d.address)?;
        if changed
            .iter()
            .any(|c| c == "subnet_ids" || c == "description")
        {
            aws.rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&p.name)
                .db_subnet_group_description(&p.description)
                .set_subnet_ids(Some(p.subnet_ids.clone()))
                .send()
                .await
                .aws()
                .context("modifying the DB subnet group")?;
        }
        let arn = l
            .attr("arn")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        retag(aws, &arn, &l.props, &d.props).await?;
        let mut out = l.clone();
        out.props = json!(p);
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        // Still in use while the instance in it is being deleted.
        retry_on(
            &[
                "InvalidDBSubnetGroupStateFault",
                "InvalidDBSubnetGroupState",
            ],
            "deleting the DB subnet group",
            LONG,
            rep,
            || async {
                match aws
                    .rds
                    .delete_db_subnet_group()
                    .db_subnet_group_name(&l.id)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if gone(&e) => Ok(()),
                    other => other.map(|_| ()),
                }
            },
        )
        .await?;
        Ok(None)
    }
}

// ---------------------------------------------------------------- DB instance

#[derive(Serialize, Deserialize, Clone)]
struct InstanceProps {
    identifier: String,
    engine: String,
    #[serde(default)]
    engine_version: Option<String>,
    instance_class: String,
    storage_gb: i32,
    storage_type: String,
    #[serde(default)]
    iops: Option<i32>,
    multi_az: bool,
    storage_encrypted: bool,
    publicly_accessible: bool,
    #[serde(default)]
    db_name: Option<String>,
    username: String,
    manage_master_password: bool,
    subnet_group: String,
    security_group_ids: Vec<String>,
    backup_retention_days: i32,
    #[serde(default)]
    backup_window: Option<String>,
    #[serde(default)]
    maintenance_window: Option<String>,
    deletion_protection: bool,
    #[serde(default)]
    parameter_group: Option<String>,
    copy_tags_to_snapshot: bool,
    #[serde(default)]
    tags: Tags,
}

/// Behaviour switches that ride along in the desired props (never compared).
#[derive(Deserialize, Default)]
struct Behaviour {
    #[serde(default = "yes")]
    apply_immediately: bool,
    #[serde(default)]
    wait_until_available: bool,
}

fn yes() -> bool {
    true
}

/// The live shape of an instance; pending modifications count as done (they
/// were asked for: with `apply_immediately: false` they wait for the window).
fn instance_live(db: &DbInstance, address: &str) -> Live {
    let pending = db.pending_modified_values();
    let id = db.db_instance_identifier().unwrap_or_default().to_string();
    let mut security_group_ids: Vec<String> = db
        .vpc_security_groups()
        .iter()
        .filter(|g| g.status() != Some("removing"))
        .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
        .collect();
    security_group_ids.sort();
    let parameter_group = db
        .db_parameter_groups()
        .first()
        .and_then(|g| g.db_parameter_group_name())
        // The engine's default group stands for "none chosen".
        .filter(|n| !n.starts_with("default."))
        .map(str::to_string);
    let p = InstanceProps {
        identifier: id.clone(),
        engine: db.engine().unwrap_or_default().into(),
        engine_version: pending
            .and_then(|p| p.engine_version())
            .or(db.engine_version())
            .map(str::to_string),
        instance_class: pending
            .and_then(|p| p.db_instance_class())
            .or(db.db_instance_class())
            .unwrap_or_default()
            .into(),
        storage_gb: pending
            .and_then(|p| p.allocated_storage())
            .or(db.allocated_storage())
            .unwrap_or_default(),
        storage_type: pending
            .and_then(|p| p.storage_type())
            .or(db.storage_type())
            .unwrap_or_default()
            .into(),
        iops: pending.and_then(|p| p.iops()).or(db.iops()),
        multi_az: pending
            .and_then(|p| p.multi_az())
            .or(db.multi_az())
            .unwrap_or(false),
        storage_encrypted: db.storage_encrypted().unwrap_or(false),
        publicly_accessible: db.publicly_accessible().unwrap_or(false),
        db_name: db.db_name().map(str::to_string),
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
        backup_window: db.preferred_backup_window().map(str::to_string),
        maintenance_window: db
            .preferred_maintenance_window()
            .map(|w| w.to_ascii_lowercase()),
        deletion_protection: db.deletion_protection().unwrap_or(false),
        parameter_group,
        copy_tags_to_snapshot: db.copy_tags_to_snapshot().unwrap_or(false),
        tags: tags::visible(tag_map(db.tag_list())),
    };
    let endpoint = db.endpoint();
    let attrs = json!({
        "arn": db.db_instance_arn(),
        "endpoint": endpoint.and_then(|e| e.address()),
        "port": endpoint.and_then(|e| e.port()).or(db.db_instance_port().filter(|p| *p > 0)).unwrap_or_else(|| engine_port(&p.engine)),
        "secret_arn": db.master_user_secret().and_then(|s| s.secret_arn()),
        "status": db.db_instance_status(),
    });
    let attrs = Value::Object(
        attrs
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect(),
    );
    make_live("rds.db_instance", address, &id, json!(p), attrs)
}

fn engine_port(engine: &str) -> i32 {
    if engine.contains("postgres") {
        5432
    } else {
        3306
    }
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

struct Instance;

impl Instance {
    /// Every instance of the stack: one paginated describe (RDS returns the
    /// tags with it; it has no tag filter), kept if tagged with this stack.
    async fn find(&self, aws: &Aws, id: Option<&str>) -> Result<Vec<Live>> {
        let dbs: Vec<DbInstance> = match aws
            .rds
            .describe_db_instances()
            .set_db_instance_identifier(id.map(str::to_string))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
        {
            Ok(v) => v,
            Err(e) if gone(&e) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(dbs
            .iter()
            .filter_map(|db| {
                let all = tag_map(db.tag_list());
                let addr = tags::owner(aws, &all)?;
                Some(instance_live(db, addr))
            })
            .collect())
    }

    async fn describe(&self, aws: &Aws, id: &str) -> Result<Option<DbInstance>> {
        match aws
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .aws()
        {
            Ok(o) => Ok(o.db_instances().first().cloned()),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for `available`, reporting the instance's status as it goes.
    async fn wait_available(
        &self,
        aws: &Aws,
        id: &str,
        rep: &dyn StepReporter,
    ) -> Result<DbInstance> {
        wait_for("the database to become available", LONG, rep, || async {
            let Some(db) = self.describe(aws, id).await? else {
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

    /// The default parameter group of the instance's engine and version.
    async fn default_parameter_group(
        &self,
        aws: &Aws,
        engine: &str,
        version: Option<&str>,
    ) -> Result<String> {
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
        let family = out
            .db_engine_versions()
            .iter()
            .find_map(|v| v.db_parameter_group_family())
            .with_context(|| {
                format!(
                    "RDS reports no parameter group family for {engine} {}",
                    version.unwrap_or("(default)")
                )
            })?;
        Ok(format!("default.{family}"))
    }
}

#[async_trait]
impl Kind for Instance {
    fn name(&self) -> &'static str {
        "rds.db_instance"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &[
                "identifier",
                "engine",
                "db_name",
                "username",
                "storage_encrypted",
            ],
            create_before_destroy: false,
            holds_data: true,
            weight: 100,
            service: "rds",
        }
    }
    fn normalize(&self, props: &mut Value) {
        if let Some(o) = props.as_object_mut() {
            o.remove("apply_immediately");
            o.remove("wait_until_available");
            if let Some(Value::String(w)) = o.get_mut("maintenance_window") {
                *w = w.to_ascii_lowercase();
            }
            if let Some(Value::Array(a)) = o.get_mut("security_group_ids") {
                a.sort_by_key(|v| v.to_string());
                a.dedup();
            }
        }
    }
    fn annotate(&self, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        instance_notes(desired, fields)
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: InstanceProps = parse(&d.props, &d.address)?;
        let b: Behaviour = parse(&d.props, &d.address)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let sent = retry_on(
            // The subnet group or security group may not be visible yet.
            &["DBSubnetGroupNotFoundFault", "InvalidVPCNetworkStateFault"],
            "creating the database",
            VISIBLE,
            rep,
            || async {
                aws.rds
                    .create_db_instance()
                    .db_instance_identifier(&p.identifier)
                    .engine(&p.engine)
                    .set_engine_version(p.engine_version.clone())
                    .db_instance_class(&p.instance_class)
                    .allocated_storage(p.storage_gb)
                    .storage_type(&p.storage_type)
                    .set_iops(p.iops)
                    .multi_az(p.multi_az)
                    .storage_encrypted(p.storage_encrypted)
                    .publicly_accessible(p.publicly_accessible)
                    .set_db_name(p.db_name.clone())
                    .master_username(&p.username)
                    .manage_master_user_password(p.manage_master_password)
                    .db_subnet_group_name(&p.subnet_group)
                    .set_vpc_security_group_ids(Some(p.security_group_ids.clone()))
                    .backup_retention_period(p.backup_retention_days)
                    .set_preferred_backup_window(p.backup_window.clone())
                    .set_preferred_maintenance_window(p.maintenance_window.clone())
                    .deletion_protection(p.deletion_protection)
                    .set_db_parameter_group_name(p.parameter_group.clone())
                    .copy_tags_to_snapshot(p.copy_tags_to_snapshot)
                    .set_tags(Some(tag_list(&t)))
                    .send()
                    .await
                    .aws()
            },
        )
        .await;
        let db = match sent {
            Ok(out) => out.db_instance().cloned(),
            Err(e) => {
                // A retried create whose first attempt went through: adopt it if it is ours.
                let exists = e
                    .downcast_ref::<AwsError>()
                    .is_some_and(|e| e.is("DBInstanceAlreadyExists"));
                if !exists {
                    return Err(e);
                }
                let mine = self
                    .find(aws, Some(&p.identifier))
                    .await?
                    .into_iter()
                    .any(|l| l.address == d.address);
                if !mine {
                    bail!(
                        "an RDS instance named {} already exists and is not part of stack {}; delete or rename it",
                        p.identifier,
                        aws.stack
                    );
                }
                self.describe(aws, &p.identifier).await?
            }
        };
        let db = if b.wait_until_available {
            // A resource of the stack reads the endpoint, known once available.
            self.wait_available(aws, &p.identifier, rep).await?
        } else {
            match db {
                Some(db) => db,
                None => self
                    .describe(aws, &p.identifier)
                    .await?
                    .context("the database vanished right after its creation")?,
            }
        };
        let mut l = instance_live(&db, &d.address);
        // The create response predates the tags and some defaults: what was
        // asked for is what the instance is becoming.
        l.props = json!(p);
        Ok(l)
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: InstanceProps = parse(&d.props, &d.address)?;
        let b: Behaviour = parse(&d.props, &d.address)?;
        let old: InstanceProps = parse(&l.props, &l.address)?;
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
                None => Some(
                    self.default_parameter_group(aws, &p.engine, old.engine_version.as_deref())
                        .await?,
                ),
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
            "manage_master_password",
        ];
        if modifiable.iter().any(|f| has(f)) {
            let major_upgrade = has("engine_version")
                && match (&old.engine_version, &p.engine_version) {
                    (Some(a), Some(b)) => major(a, &p.engine) != major(b, &p.engine),
                    _ => false,
                };
            let storage = has("storage_gb") || has("storage_type") || has("iops");
            retry_on(
                // Busy: backing up, another modification, still creating.
                &["InvalidDBInstanceState", "InvalidDBInstanceStateFault"],
                "modifying the database",
                LONG,
                rep,
                || async {
                    aws.rds
                        .modify_db_instance()
                        .db_instance_identifier(&l.id)
                        .apply_immediately(b.apply_immediately)
                        .set_engine_version(if has("engine_version") {
                            p.engine_version.clone()
                        } else {
                            None
                        })
                        .set_allow_major_version_upgrade(major_upgrade.then_some(true))
                        .set_db_instance_class(
                            has("instance_class").then(|| p.instance_class.clone()),
                        )
                        // Storage settings go together: RDS validates them as a set.
                        .set_allocated_storage(storage.then_some(p.storage_gb))
                        .set_storage_type(storage.then(|| p.storage_type.clone()))
                        .set_iops(if storage { p.iops } else { None })
                        .set_multi_az(has("multi_az").then_some(p.multi_az))
                        .set_publicly_accessible(
                            has("publicly_accessible").then_some(p.publicly_accessible),
                        )
                        .set_db_subnet_group_name(
                            has("subnet_group").then(|| p.subnet_group.clone()),
                        )
                        .set_vpc_security_group_ids(
                            has("security_group_ids").then(|| p.security_group_ids.clone()),
                        )
                        .set_backup_retention_period(
                            has("backup_retention_days").then_some(p.backup_retention_days),
                        )
                        .set_preferred_backup_window(if has("backup_window") {
                            p.backup_window.clone()
                        } else {
                            None
                        })
                        .set_preferred_maintenance_window(if has("maintenance_window") {
                            p.maintenance_window.clone()
                        } else {
                            None
                        })
                        .set_deletion_protection(
                            has("deletion_protection").then_some(p.deletion_protection),
                        )
                        .set_db_parameter_group_name(parameter_group.clone())
                        .set_copy_tags_to_snapshot(
                            has("copy_tags_to_snapshot").then_some(p.copy_tags_to_snapshot),
                        )
                        .set_manage_master_user_password(
                            has("manage_master_password").then_some(p.manage_master_password),
                        )
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        let arn = l
            .attr("arn")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        retag(aws, &arn, &l.props, &d.props).await?;
        let mut out = l.clone();
        out.props = json!(p);
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let Some(db) = self.describe(aws, &l.id).await? else {
            return Ok(None);
        };
        if db.db_instance_status() == Some("deleting") {
            // An earlier run asked already (and took its snapshot then).
            self.wait_gone(aws, &l.id, rep).await?;
            return Ok(None);
        }
        if db.deletion_protection() == Some(true) {
            bail!(
                "{} ({}) has deletion protection on in AWS. To delete it, set `deletion_protection: false` for it in the stack file and run `infra apply` first",
                l.address,
                l.id
            );
        }
        let snapshot = (!o.skip_final_backup).then(|| final_snapshot_id(&l.id, &timestamp()));
        if let Some(s) = &snapshot {
            rep.status(&format!("taking final snapshot {s}"));
        }
        let r = retry_on(
            &["InvalidDBInstanceState", "InvalidDBInstanceStateFault"],
            "deleting the database",
            LONG,
            rep,
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
            },
        )
        .await;
        if let Err(e) = r {
            if e.downcast_ref::<AwsError>().is_some_and(gone) {
                // Deleted by someone else meanwhile: nothing of ours to report.
                return Ok(None);
            }
            return Err(e);
        }
        self.wait_gone(aws, &l.id, rep).await?;
        Ok(Some(match snapshot {
            Some(s) => format!("final snapshot {s} kept (restore with `aws rds restore-db-instance-from-db-snapshot`)"),
            None => "no final snapshot (--skip-final-backup); automated backups kept for their retention period".into(),
        }))
    }
}

impl Instance {
    async fn wait_gone(&self, aws: &Aws, id: &str, rep: &dyn StepReporter) -> Result<()> {
        wait_for("the database to be deleted", LONG, rep, || async {
            Ok(match self.describe(aws, id).await? {
                None => Some(()),
                Some(db) => {
                    rep.status(&format!(
                        "status {}",
                        db.db_instance_status().unwrap_or("unknown")
                    ));
                    None
                }
            })
        })
        .await
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
        let (a, b) = (
            f.old.as_ref().and_then(Value::as_i64)?,
            f.new.as_ref().and_then(Value::as_i64)?,
        );
        (b < a).then_some((a, b))
    });
    if let Some((a, b)) = shrink {
        notes.push(format!(
            "storage cannot shrink ({a} → {b} GiB): RDS refuses it; this update will fail"
        ));
    } else if ["storage_gb", "storage_type", "iops"]
        .iter()
        .any(|f| field(f).is_some())
    {
        notes.push("storage change: no downtime, but I/O may be slower while RDS optimizes the volume, and the next storage change must wait 6 hours".into());
    }
    if let Some(f) = field("backup_retention_days") {
        let zero = |v: &Option<Value>| v.as_ref().and_then(Value::as_i64) == Some(0);
        if zero(&f.old) != zero(&f.new) {
            notes.push("DOWNTIME: turning automated backups on or off (retention to or from 0) causes an outage".into());
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
        notes.push("REBOOT needed: the new parameter group applies at the next reboot (infra does not reboot the database)".into());
    }
    if field("subnet_group").is_some() || field("publicly_accessible").is_some() {
        notes.push("DOWNTIME: moving the database's network restarts it".into());
    }
    let deferrable = [
        "instance_class",
        "engine_version",
        "storage_gb",
        "storage_type",
        "iops",
        "multi_az",
    ];
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

    fn change(path: &str, old: Value, new: Value) -> FieldChange {
        FieldChange {
            path: path.into(),
            old: Some(old),
            new: Some(new),
            forces_replacement: false,
        }
    }

    #[test]
    fn notes_mark_downtime_and_reboots() {
        let d = json!({"engine": "postgres", "multi_az": true, "apply_immediately": true});
        let n = instance_notes(
            &d,
            &[change(
                "instance_class",
                json!("db.t3.micro"),
                json!("db.t3.small"),
            )],
        );
        assert_eq!(n.len(), 1);
        assert!(
            n[0].starts_with("DOWNTIME") && n[0].contains("failover"),
            "{n:?}"
        );

        let n = instance_notes(
            &d,
            &[change("engine_version", json!("15.4"), json!("16.3"))],
        );
        assert!(n[0].contains("major engine upgrade"), "{n:?}");
        let n = instance_notes(
            &d,
            &[change("engine_version", json!("16.2"), json!("16.3"))],
        );
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
        let n = instance_notes(
            &lazy,
            &[change(
                "instance_class",
                json!("db.t3.micro"),
                json!("db.t3.small"),
            )],
        );
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
}
