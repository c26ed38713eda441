//! Semantic checks of the `data:` section: everything RDS or DynamoDB would
//! reject mid-apply (often after minutes of waiting), and the limits moto
//! does not enforce, reported up front with the YAML path and what to do.

use std::collections::{BTreeMap, BTreeSet};

use crate::stack::data::spec::{
    AttrType, Billing, Capacity, Database, Encryption, IndexProjection, KeyAttr, StorageType, Table,
};
use crate::stack::diagnostics::PathError;
use crate::stack::limits as rules;
use crate::stack::names::{db_identifier, table_name};
use crate::stack::network::spec::Protocol;
use crate::stack::spec::StackFile;
use crate::stack::yaml::PathSeg;

/// At most this many global secondary indexes per table (the DynamoDB default quota).
pub const MAX_INDEXES: usize = 20;
/// At most this many projected non-key attributes, summed over a table's indexes (a hard limit).
pub const MAX_PROJECTED: usize = 100;

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn at(base: &[PathSeg], k: &str) -> Vec<PathSeg> {
    let mut p = base.to_vec();
    p.push(key(k));
    p
}

/// Checks `spec.data` (if any) of stack `stack` spread over `az_count` zones.
pub fn validate(spec: &StackFile, stack: &str, az_count: usize, errs: &mut Vec<PathError>) {
    let Some(data) = &spec.data else { return };
    let base = vec![key("data")];
    if let Some(db) = &data.database {
        database(spec, db, stack, az_count, &at(&base, "database"), errs);
    }
    let tables = at(&base, "tables");
    for (name, t) in &data.tables {
        table(t, name, stack, &at(&tables, name), errs);
    }
}

fn database(spec: &StackFile, db: &Database, stack: &str, az_count: usize, p: &[PathSeg], errs: &mut Vec<PathError>) {
    let engine = db.engine.api();
    if az_count == 1 {
        errs.push(
            PathError::new(
                p.to_vec(),
                "RDS needs a DB subnet group spanning at least two Availability Zones, and this stack has one",
            )
            .help("use `network.azs: 2` (a database is worth the second zone), or remove `data.database`"),
        );
    }
    for (what, r) in [
        ("identifier", rules::validate_rds_identifier(&db_identifier(stack))),
        ("subnet group", rules::validate_db_subnet_group_name(&db_identifier(stack))),
    ] {
        if let Err(e) = r {
            errs.push(
                PathError::new(p.to_vec(), format!("the database {what} derived from the stack name is invalid: {e}"))
                    .help("use a stack name of lowercase letters, digits and single hyphens"),
            );
        }
    }
    if let Some(v) = &db.engine_version
        && let Err(e) = engine_version(v)
    {
        errs.push(PathError::new(at(p, "engine_version"), e).help(
            "quote it (`engine_version: \"16.3\"`); `aws rds describe-db-engine-versions --engine ENGINE` lists them",
        ));
    }
    for (i, l) in db.log_exports.iter().flatten().enumerate() {
        let types = db.engine.log_types();
        if !types.contains(&l.as_str()) {
            let mut lp = at(p, "log_exports");
            lp.push(PathSeg::Index(i));
            errs.push(
                PathError::new(lp, format!("{} cannot publish a `{l}` log", db.engine.api()))
                    .help(format!("its logs are {}", types.join(", "))),
            );
        }
    }
    // The intervals RDS accepts (ModifyDBInstance, `MonitoringInterval`).
    if ![0, 1, 5, 10, 15, 30, 60].contains(&db.monitoring_interval) {
        errs.push(
            PathError::new(
                at(p, "monitoring_interval"),
                format!("RDS cannot sample every {} seconds", db.monitoring_interval),
            )
            .help("use 1, 5, 10, 15, 30 or 60 seconds, or 0 to turn Enhanced Monitoring off"),
        );
    }
    if let Err(e) = rules::validate_db_instance_class_shape(&db.instance_class) {
        errs.push(PathError::new(at(p, "instance_class"), e).help("e.g. `db.t3.micro`, `db.m7g.large`"));
    } else if db.instance_class == "db.serverless" {
        errs.push(
            PathError::new(at(p, "instance_class"), "db.serverless is for Aurora clusters, not RDS instances")
                .help("use a provisioned class such as `db.t3.micro`"),
        );
    }
    let (min_gb, iops_range, ratio) = match db.storage_type {
        StorageType::Gp2 => (20, None, 0),
        StorageType::Gp3 => (20, Some((12_000, 64_000)), 0),
        StorageType::Io1 => (100, Some((1_000, 256_000)), 50),
        StorageType::Io2 => (100, Some((1_000, 256_000)), 1_000),
    };
    if !(min_gb..=65_536).contains(&db.storage_gb) {
        errs.push(
            PathError::new(
                at(p, "storage_gb"),
                format!(
                    "{} GiB is out of range: {} storage takes {min_gb} to 65536 GiB",
                    db.storage_gb,
                    db.storage_type.api()
                ),
            )
            .help(format!("use at least {min_gb}")),
        );
    }
    match (db.storage_type, db.iops, iops_range) {
        (StorageType::Io1 | StorageType::Io2, None, _) => errs.push(
            PathError::new(p.to_vec(), format!("{} storage needs `iops`", db.storage_type.api()))
                .help("add `iops: 3000` (or use `storage_type: gp3`)"),
        ),
        (StorageType::Gp2, Some(_), _) => errs.push(
            PathError::new(at(p, "iops"), "gp2 storage has no provisioned IOPS (they follow the size)")
                .help("remove `iops`, or use `storage_type: gp3` or `io1`"),
        ),
        (StorageType::Gp3, Some(_), _) if db.storage_gb < 400 => errs.push(
            PathError::new(
                at(p, "iops"),
                format!(
                    "gp3 IOPS can only be set from 400 GiB of storage (this is {} GiB, with a baseline of 3000 IOPS)",
                    db.storage_gb
                ),
            )
            .help("remove `iops`, or raise `storage_gb` to 400"),
        ),
        (t, Some(iops), Some((lo, hi))) => {
            if !(lo..=hi).contains(&iops) {
                errs.push(
                    PathError::new(at(p, "iops"), format!("{iops} IOPS is out of range for {}: {lo} to {hi}", t.api()))
                        .help(format!("use a value between {lo} and {hi}")),
                );
            } else if ratio > 0 && iops > ratio * db.storage_gb {
                errs.push(
                    PathError::new(
                        at(p, "iops"),
                        format!(
                            "{} allows at most {ratio} IOPS per GiB: {iops} IOPS needs {} GiB or more",
                            t.api(),
                            iops.div_ceil(ratio)
                        ),
                    )
                    .help("lower `iops` or raise `storage_gb`"),
                );
            }
        }
        _ => {}
    }
    if let Some(n) = &db.db_name
        && let Err(e) = rules::validate_db_name(n, engine)
    {
        errs.push(PathError::new(at(p, "db_name"), e).help("e.g. `db_name: app`"));
    }
    if let Err(e) = rules::validate_master_username(&db.username, engine) {
        errs.push(PathError::new(at(p, "username"), e).help("e.g. `username: app_admin`"));
    }
    if db.backup_retention_days > 35 {
        errs.push(
            PathError::new(
                at(p, "backup_retention_days"),
                format!("{} days: RDS keeps automated backups 0 to 35 days", db.backup_retention_days),
            )
            .help("use at most 35 (take manual snapshots for longer retention)"),
        );
    }
    let backup = db.backup_window.as_deref().map(|w| (w, daily_window(w)));
    let maint = db.maintenance_window.as_deref().map(|w| (w, weekly_window(w)));
    if let Some((_, Err(e))) = &backup {
        errs.push(PathError::new(at(p, "backup_window"), e.clone()).help("write it like \"03:00-04:00\" (UTC)"));
    }
    if let Some((_, Err(e))) = &maint {
        errs.push(
            PathError::new(at(p, "maintenance_window"), e.clone()).help("write it like \"sun:04:30-sun:05:30\" (UTC)"),
        );
    }
    if let (Some((b, Ok(bw))), Some((m, Ok(mw)))) = (&backup, &maint)
        && overlaps(*bw, *mw)
    {
        errs.push(
            PathError::new(
                at(p, "maintenance_window"),
                format!("the maintenance window {m} overlaps the daily backup window {b}"),
            )
            .help("move one of them; RDS requires them not to overlap"),
        );
    }
    if let Some(g) = &db.parameter_group
        && let Err(e) = parameter_group_name(g)
    {
        errs.push(PathError::new(at(p, "parameter_group"), e).help("give the name of an existing DB parameter group"));
    }

    // The database's security group must let its clients reach the engine's port.
    if let Some(sg) = spec.network.security_groups.get("database")
        && let Some(ingress) = &sg.ingress
    {
        let port = db.engine.port();
        let open = ingress.iter().any(|r| match r.protocol {
            Protocol::All => true,
            Protocol::Tcp => r.port.is_some_and(|a| (a..=r.to_port.unwrap_or(a)).contains(&port)),
            _ => false,
        });
        if !open {
            errs.push(
                PathError::new(
                    vec![key("network"), key("security_groups"), key("database"), key("ingress")],
                    format!("the database ({engine}) listens on port {port}, but no ingress rule of the `database` group allows it"),
                )
                .help(format!("use `port: {port}` in the rule (or drop `ingress:` to get the default rule)")),
            );
        }
    }
}

/// Shape of an engine version: digits first, then letters, digits, `.` `-` `_`.
fn engine_version(v: &str) -> Result<(), String> {
    let ok = v.chars().next().is_some_and(|c| c.is_ascii_digit())
        && v.len() <= 64
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok { Ok(()) } else { Err(format!("`{v}` is not an engine version (versions look like 16.3 or 8.0.39)")) }
}

/// DB parameter group name: 1 to 255 letters, digits, hyphens (and the
/// periods of AWS's `default.<family>` groups), starting with a letter, not
/// ending with a hyphen, no `--`. Per the RDS API reference,
/// CreateDBParameterGroup, `DBParameterGroupName`.
fn parameter_group_name(s: &str) -> Result<(), String> {
    let ok = (1..=255).contains(&s.len())
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a DB parameter group name: 1 to 255 letters, digits and hyphens, starting with a letter, not ending with a hyphen, without \"--\""
        ))
    }
}

fn hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

const DAY: u32 = 24 * 60;
const WEEK: u32 = 7 * DAY;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `hh:mm-hh:mm` (UTC, may cross midnight, at least 30 minutes) as
/// (start minute of the day, length in minutes). Per the RDS API reference,
/// CreateDBInstance, `PreferredBackupWindow`.
pub fn daily_window(w: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{w}` is not a daily window `hh:mm-hh:mm` (UTC, 24-hour clock)");
    let (a, b) = w.split_once('-').ok_or_else(bad)?;
    let (a, b) = (hhmm(a).ok_or_else(bad)?, hhmm(b).ok_or_else(bad)?);
    let len = (b + DAY - a) % DAY;
    if len < 30 {
        return Err(format!("the window {w} lasts {len} minutes; RDS requires at least 30"));
    }
    Ok((a, len))
}

/// `ddd:hh:mm-ddd:hh:mm` (UTC, at least 30 minutes) as (start minute of the
/// week, length). Per the RDS API reference, `PreferredMaintenanceWindow`.
pub fn weekly_window(w: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{w}` is not a weekly window `ddd:hh:mm-ddd:hh:mm` (days mon..sun, UTC)");
    let lower = w.to_ascii_lowercase();
    let (a, b) = lower.split_once('-').ok_or_else(bad)?;
    let point = |s: &str| -> Option<u32> {
        let (d, t) = s.split_once(':')?;
        let day = DAYS.iter().position(|x| *x == d)? as u32;
        Some(day * DAY + hhmm(t)?)
    };
    let (a, b) = (point(a).ok_or_else(bad)?, point(b).ok_or_else(bad)?);
    let len = (b + WEEK - a) % WEEK;
    if len < 30 {
        return Err(format!("the window {w} lasts {len} minutes; RDS requires at least 30"));
    }
    Ok((a, len))
}

/// Whether the daily window `b` (every day) overlaps the weekly window `m`.
pub fn overlaps(b: (u32, u32), m: (u32, u32)) -> bool {
    let hit = |s1: u32, l1: u32, s2: u32, l2: u32| {
        // Intervals on a circle of a week: compare both unrolled.
        let (e1, e2) = (s1 + l1, s2 + l2);
        (s1 < e2 && s2 < e1) || (s1 + WEEK < e2 && s2 < e1 + WEEK) || (s2 + WEEK < e1 && s1 < e2 + WEEK)
    };
    (0..7).any(|d| hit(d * DAY + b.0, b.1, m.0, m.1))
}

fn name_ok(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn table(t: &Table, name: &str, stack: &str, p: &[PathSeg], errs: &mut Vec<PathError>) {
    if !name_ok(name) {
        errs.push(PathError {
            path: p.to_vec(),
            message: format!(
                "table name `{name}` must be lowercase letters, digits, `-` or `_`, starting with a letter"
            ),
            help: Some("rename it, e.g. `orders`".into()),
            at_key: true,
        });
    } else if let Err(e) = rules::validate_dynamodb_table_name(&table_name(stack, name)) {
        errs.push(PathError { path: p.to_vec(), message: e, help: Some("use a shorter name".into()), at_key: true });
    }

    // Every key attribute, with its type: the same name must have one type.
    let mut types: BTreeMap<String, (AttrType, Vec<PathSeg>)> = BTreeMap::new();
    let mut key_attr = |k: &KeyAttr, kp: Vec<PathSeg>, errs: &mut Vec<PathError>| {
        if k.name.is_empty() || k.name.len() > 255 {
            errs.push(
                PathError::new(at(&kp, "name"), "a key attribute name is 1 to 255 bytes").help("name the attribute"),
            );
        }
        match types.get(k.name.as_str()) {
            Some((t, first)) if *t != k.kind => errs.push(
                PathError::new(
                    at(&kp, "type"),
                    format!(
                        "attribute `{}` is type {} here but {} at {}",
                        k.name,
                        k.kind.api(),
                        t.api(),
                        crate::stack::diagnostics::path_string(first)
                    ),
                )
                .help("an attribute has one type across the table and its indexes"),
            ),
            Some(_) => {}
            None => {
                types.insert(k.name.clone(), (k.kind, kp));
            }
        }
    };
    key_attr(&t.partition_key, at(p, "partition_key"), errs);
    if let Some(s) = &t.sort_key {
        key_attr(s, at(p, "sort_key"), errs);
        if s.name == t.partition_key.name {
            errs.push(
                PathError::new(at(p, "sort_key"), "the sort key is the partition key")
                    .help("use another attribute, or remove `sort_key`"),
            );
        }
    }

    let provisioned = matches!(t.billing, Billing::Provisioned(_));
    let capacity = |c: &Capacity, cp: Vec<PathSeg>, errs: &mut Vec<PathError>| {
        for (k, v) in [("read", c.read), ("write", c.write)] {
            if v == 0 {
                errs.push(
                    PathError::new(at(&cp, k), "capacity units start at 1")
                        .help("use at least 1, or `billing: on_demand`"),
                );
            }
        }
    };
    if let Billing::Provisioned(b) = &t.billing {
        capacity(&b.provisioned, at(&at(p, "billing"), "provisioned"), errs);
    }

    if t.indexes.len() > MAX_INDEXES {
        errs.push(
            PathError::new(
                at(p, "indexes"),
                format!(
                    "{} indexes: DynamoDB allows {MAX_INDEXES} global secondary indexes per table by default",
                    t.indexes.len()
                ),
            )
            .help("drop some, or raise the quota with AWS first"),
        );
    }
    let mut seen = BTreeSet::new();
    let mut projected = 0;
    for (i, ix) in t.indexes.iter().enumerate() {
        let mut ip = at(p, "indexes");
        ip.push(PathSeg::Index(i));
        let ok = (3..=255).contains(&ix.name.len())
            && ix.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            errs.push(
                PathError::new(
                    at(&ip, "name"),
                    format!("index name `{}` must be 3 to 255 letters, digits, `_`, `-` or `.`", ix.name),
                )
                .help("rename it, e.g. `by_status`"),
            );
        }
        if !seen.insert(ix.name.as_str()) {
            errs.push(
                PathError::new(at(&ip, "name"), format!("index `{}` is listed twice", ix.name))
                    .help("give each index its own name"),
            );
        }
        key_attr(&ix.partition_key, at(&ip, "partition_key"), errs);
        if let Some(s) = &ix.sort_key {
            key_attr(s, at(&ip, "sort_key"), errs);
            if s.name == ix.partition_key.name {
                errs.push(
                    PathError::new(at(&ip, "sort_key"), "the index's sort key is its partition key")
                        .help("use another attribute, or remove `sort_key`"),
                );
            }
        }
        if let IndexProjection::Include(inc) = &ix.projection {
            if inc.include.is_empty() {
                errs.push(
                    PathError::new(at(&ip, "projection"), "`include` lists no attribute")
                        .help("list attributes, or use `projection: keys_only`"),
                );
            }
            if inc.include.iter().any(|a| a.is_empty() || a.len() > 255) {
                errs.push(
                    PathError::new(at(&ip, "projection"), "projected attribute names are 1 to 255 bytes")
                        .help("fix the names"),
                );
            }
            projected += inc.include.len();
        }
        match (&ix.provisioned, provisioned) {
            (Some(c), true) => capacity(c, at(&ip, "provisioned"), errs),
            (Some(_), false) => errs.push(
                PathError::new(at(&ip, "provisioned"), "an on-demand table's indexes are on demand too")
                    .help("remove it, or make the table `billing: { provisioned: ... }`"),
            ),
            _ => {}
        }
    }
    if projected > MAX_PROJECTED {
        errs.push(
            PathError::new(
                at(p, "indexes"),
                format!("{projected} projected attributes in all: DynamoDB allows {MAX_PROJECTED} per table"),
            )
            .help("use `projection: all` for indexes that need many attributes"),
        );
    }

    if let Some(ttl) = &t.ttl_attribute {
        if ttl.is_empty() || ttl.len() > 255 {
            errs.push(
                PathError::new(at(p, "ttl_attribute"), "an attribute name is 1 to 255 bytes")
                    .help("name the attribute"),
            );
        } else if let Some((kind, _)) = types.get(ttl.as_str())
            && *kind != AttrType::N
        {
            errs.push(
                PathError::new(
                    at(p, "ttl_attribute"),
                    format!("`{ttl}` is a key attribute of type {}; TTL reads a Number (epoch seconds)", kind.api()),
                )
                .help("use a numeric attribute for TTL"),
            );
        }
    }

    if let Encryption::Key(k) = &t.encryption
        && !kms_key_arn(&k.kms_key)
    {
        errs.push(
            PathError::new(at(&at(p, "encryption"), "kms_key"), format!("`{}` is not a KMS key ARN", k.kms_key))
                .help("use the key's ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (`aws kms describe-key --key-id ALIAS` shows it)"),
        );
    }
}

/// `arn:<partition>:kms:<region>:<account>:key/<id>`: the form DynamoDB
/// reports back, so the file and the live table compare equal.
fn kms_key_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "kms"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].strip_prefix("key/").is_some_and(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Overrides, check_document as check, yaml};

    fn errors(data: &str) -> Vec<String> {
        errors_with(data, "")
    }

    fn errors_with(data: &str, network_extra: &str) -> Vec<String> {
        let text =
            format!("stack: shop\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{network_extra}data:\n{data}");
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        match check(&root, &Overrides::default(), ".".into()) {
            Ok(_) => vec![],
            Err(d) => d.into_iter().map(|d| format!("{} | {}", d.message, d.help.unwrap_or_default())).collect(),
        }
    }

    fn one(data: &str, needle: &str) {
        let e = errors(data);
        assert!(e.iter().any(|m| m.contains(needle)), "no error containing {needle:?} in {e:#?}");
    }

    #[test]
    fn a_full_valid_section_passes() {
        let e = errors(
            r#"
  database:
    engine: postgres
    engine_version: "16.3"
    instance_class: db.t3.micro
    storage_gb: 20
    multi_az: true
    db_name: app
    username: app_admin
    backup_retention_days: 7
    backup_window: "03:00-04:00"
    maintenance_window: "sun:04:30-sun:05:30"
    parameter_group: shop-pg16
  tables:
    orders:
      partition_key: { name: pk, type: S }
      sort_key: { name: sk, type: S }
      billing: { provisioned: { read: 5, write: 5 } }
      stream: new_and_old_images
      ttl_attribute: expires_at
      indexes:
        - { name: by_status, partition_key: { name: status, type: S }, projection: { include: [total] }, provisioned: { read: 1, write: 1 } }
    sessions:
      partition_key: { name: id, type: S }
      encryption: { kms_key: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
"#,
        );
        assert!(e.is_empty(), "{e:#?}");
    }

    #[test]
    fn database_limits() {
        one("  database: { engine: postgres, storage_gb: 10 }\n", "10 GiB is out of range");
        one("  database: { engine: postgres, storage_type: io1, storage_gb: 100 }\n", "io1 storage needs `iops`");
        one(
            "  database: { engine: postgres, storage_type: io1, storage_gb: 100, iops: 9000 }\n",
            "at most 50 IOPS per GiB",
        );
        one("  database: { engine: postgres, iops: 12000 }\n", "from 400 GiB");
        one("  database: { engine: postgres, storage_type: gp2, iops: 1000 }\n", "gp2 storage has no provisioned IOPS");
        one("  database: { engine: mysql, username: a_very_long_admin_name }\n", "master username");
        one("  database: { engine: postgres, db_name: postgres }\n", "already used");
        one("  database: { engine: postgres, instance_class: t3.micro }\n", "does not start with \"db.\"");
        one("  database: { engine: postgres, instance_class: db.serverless }\n", "Aurora");
        one("  database: { engine: postgres, backup_retention_days: 40 }\n", "0 to 35 days");
        one("  database: { engine: postgres, engine_version: v16 }\n", "not an engine version");
        one("  database: { engine: postgres, parameter_group: my--pg }\n", "parameter group name");
        one("  database: { engine: oracle }\n", "is not allowed here");
    }

    #[test]
    fn windows() {
        assert_eq!(daily_window("03:00-04:00"), Ok((180, 60)));
        assert_eq!(daily_window("23:45-00:15"), Ok((1425, 30)));
        assert!(daily_window("03:00-03:10").unwrap_err().contains("at least 30"));
        assert!(daily_window("3:00-4:00").is_err());
        assert!(daily_window("25:00-26:00").is_err());
        assert_eq!(weekly_window("sun:23:30-mon:00:30"), Ok((6 * DAY + 1410, 60)));
        assert!(weekly_window("sun:04:30").is_err());
        assert!(weekly_window("fun:04:30-fun:05:30").is_err());
        // Daily 03:00-04:00 against Tuesday 03:30-05:00: overlap.
        assert!(overlaps((180, 60), (DAY + 210, 90)));
        assert!(!overlaps((180, 60), (DAY + 240, 60)));
        // Backup across midnight into Monday against Sunday 23:50 - Monday 00:10.
        assert!(overlaps((1425, 30), (6 * DAY + 1430, 20)));
        one(
            "  database: { engine: postgres, backup_window: \"04:00-05:00\", maintenance_window: \"sun:04:30-sun:05:30\" }\n",
            "overlaps the daily backup window",
        );
        one("  database: { engine: postgres, backup_window: \"04:00-04:10\" }\n", "at least 30");
    }

    #[test]
    fn database_needs_two_zones_and_its_port_open() {
        let e = errors_with("  database: { engine: postgres }\n", "  azs: 1\n  single_az: true\n");
        assert!(e.iter().any(|m| m.contains("at least two Availability Zones")), "{e:#?}");
        let e = errors_with(
            "  database: { engine: mysql }\n",
            "  security_groups:\n    database:\n      ingress:\n        - { port: 5432, from: [web] }\n",
        );
        assert!(e.iter().any(|m| m.contains("listens on port 3306")), "{e:#?}");
        let e = errors_with(
            "  database: { engine: mysql }\n",
            "  security_groups:\n    database:\n      ingress:\n        - { port: 3306, from: [web] }\n",
        );
        assert!(e.is_empty(), "{e:#?}");
    }

    #[test]
    fn table_limits() {
        one("  tables:\n    Orders:\n      partition_key: { name: pk, type: S }\n", "must be lowercase");
        one(
            "  tables:\n    o:\n      partition_key: { name: pk, type: S }\n      sort_key: { name: pk, type: S }\n",
            "the sort key is the partition key",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      indexes:\n        - { name: by_pk, partition_key: { name: pk, type: N } }\n",
            "attribute `pk` is type N here but S at data.tables.orders.partition_key",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      indexes:\n        - { name: ix, partition_key: { name: a, type: S } }\n",
            "3 to 255",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      indexes:\n        - { name: ixa, partition_key: { name: a, type: S } }\n        - { name: ixa, partition_key: { name: b, type: S } }\n",
            "listed twice",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      indexes:\n        - { name: ixa, partition_key: { name: a, type: S }, provisioned: { read: 1, write: 1 } }\n",
            "on-demand table's indexes",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      billing: { provisioned: { read: 0, write: 1 } }\n",
            "start at 1",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      ttl_attribute: pk\n",
            "TTL reads a Number",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      encryption: { kms_key: alias/mine }\n",
            "not a KMS key ARN",
        );
        one(
            "  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n      stream: all_images\n",
            "is not allowed here",
        );
        let many: String = (0..21)
            .map(|i| format!("        - {{ name: ix{i:02}, partition_key: {{ name: a, type: S }} }}\n"))
            .collect();
        one(
            &format!("  tables:\n    orders:\n      partition_key: {{ name: pk, type: S }}\n      indexes:\n{many}"),
            "21 indexes",
        );
    }
}
