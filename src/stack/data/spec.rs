//! The `data:` section of stack.yaml: one optional RDS database and any
//! number of DynamoDB tables. Types only; checks are in `validate_data.rs`,
//! expansion into resources in `model/data.rs`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The data tier.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// A relational database on RDS (one instance, Multi-AZ by default).
    #[serde(default)]
    pub database: Option<Database>,
    /// DynamoDB tables by name (the AWS table is named `<stack>-<name>`).
    #[serde(default)]
    pub tables: BTreeMap<String, Table>,
}

/// Database engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    Mysql,
    Mariadb,
}

impl Engine {
    /// The logs RDS can publish for the engine (RDS User Guide, "Publishing
    /// database logs to Amazon CloudWatch Logs").
    pub fn log_types(self) -> &'static [&'static str] {
        match self {
            Engine::Postgres => &["postgresql", "upgrade", "iam-db-auth-error"],
            Engine::Mysql | Engine::Mariadb => &["audit", "error", "general", "slowquery", "iam-db-auth-error"],
        }
    }

    /// The logs published unless the file says: errors, without the general
    /// query log's volume.
    pub fn default_log_exports(self) -> &'static [&'static str] {
        match self {
            Engine::Postgres => &["postgresql", "upgrade"],
            Engine::Mysql | Engine::Mariadb => &["error", "slowquery"],
        }
    }

    /// The RDS API's engine name.
    pub fn api(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
        }
    }
    /// The port the engine listens on by default (and the one RDS uses here).
    pub fn port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql | Engine::Mariadb => 3306,
        }
    }
}

/// EBS volume type of the database's storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorageType {
    /// General purpose SSD, baseline 3,000 IOPS (the default).
    #[default]
    Gp3,
    /// Previous-generation general purpose SSD.
    Gp2,
    /// Provisioned IOPS SSD (needs `iops`).
    Io1,
    /// Provisioned IOPS SSD, higher durability (needs `iops`).
    Io2,
}

impl StorageType {
    pub fn api(self) -> &'static str {
        match self {
            StorageType::Gp3 => "gp3",
            StorageType::Gp2 => "gp2",
            StorageType::Io1 => "io1",
            StorageType::Io2 => "io2",
        }
    }
}

fn yes() -> bool {
    true
}
fn default_class() -> String {
    "db.t3.micro".into()
}
fn default_storage() -> u32 {
    20
}
fn default_username() -> String {
    "dbadmin".into()
}
fn default_monitoring_interval() -> u8 {
    60
}

fn default_retention() -> u8 {
    7
}

/// The RDS database. Its master password is generated and kept by AWS
/// Secrets Manager (`ManageMasterUserPassword`): it is never in this file,
/// a plan, an output or a log; applications read it from the secret whose
/// ARN is the `database_secret_arn` output.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// `postgres`, `mysql` or `mariadb`. Changing it replaces the database
    /// (after a final snapshot).
    pub engine: Engine,
    /// Engine version (quote it): a major (`"16"`, `"8.0"`) follows RDS's
    /// minor upgrades; a full version (`"16.4"`) is a minimum within its
    /// major. Checked at plan time against the versions RDS offers.
    /// Absent: the engine's default version in the region, never upgraded by
    /// infra. Raising the major upgrades in place (a reboot; noted in the
    /// plan); an older major than the running one is refused (RDS cannot
    /// downgrade).
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Instance class (default `db.t3.micro`). Changing it resizes in place
    /// (downtime: a reboot, or a failover with Multi-AZ).
    #[serde(default = "default_class")]
    pub instance_class: String,
    /// Allocated storage in GiB (default 20; 100 or more for io1/io2). It
    /// can only grow.
    #[serde(default = "default_storage")]
    pub storage_gb: u32,
    /// `gp3` (default), `gp2`, `io1` or `io2`.
    #[serde(default)]
    pub storage_type: StorageType,
    /// Provisioned IOPS: required for io1/io2; for gp3 only at 400 GiB or more.
    #[serde(default)]
    pub iops: Option<u32>,
    /// A standby in another Availability Zone with automatic failover (default true).
    #[serde(default = "yes")]
    pub multi_az: bool,
    /// Name of a database created in the instance (default: none; the
    /// engine's default database only). Fixed at creation.
    #[serde(default)]
    pub db_name: Option<String>,
    /// Master user name (default `dbadmin`). Fixed at creation. Its password
    /// is managed by AWS Secrets Manager.
    #[serde(default = "default_username")]
    pub username: String,
    /// Days automated backups are kept, 0 to 35 (default 7; 0 disables
    /// automated backups and point-in-time restore).
    #[serde(default = "default_retention")]
    pub backup_retention_days: u8,
    /// Daily backup window in UTC, `hh:mm-hh:mm`, at least 30 minutes (default: chosen by AWS).
    #[serde(default)]
    pub backup_window: Option<String>,
    /// Weekly maintenance window in UTC, `ddd:hh:mm-ddd:hh:mm` (e.g.
    /// `sun:04:30-sun:05:30`), at least 30 minutes, not overlapping the
    /// backup window (default: chosen by AWS).
    #[serde(default)]
    pub maintenance_window: Option<String>,
    /// Apply changes now (default true) rather than in the next maintenance window.
    #[serde(default = "yes")]
    pub apply_immediately: bool,
    /// Let RDS apply new minor versions in the maintenance window (default
    /// true): `engine_version` is then a floor (`"16.4"`) or a major
    /// (`"16"`), and a newer minor found live is not drift.
    #[serde(default = "yes")]
    pub auto_minor_version_upgrade: bool,
    /// Let users sign in with IAM credentials (short-lived tokens from
    /// `rds generate-db-auth-token`) besides passwords (default true).
    #[serde(default = "yes")]
    pub iam_auth: bool,
    /// Database logs published to CloudWatch Logs. Default: the engine's
    /// error and upgrade logs (`[postgresql, upgrade]`; MySQL and MariaDB
    /// `[error, slowquery]`); `[]` publishes none.
    #[serde(default)]
    pub log_exports: Option<Vec<String>>,
    /// Seconds between Enhanced Monitoring samples of the database host's
    /// operating system (CPU, memory, processes, file systems, into the
    /// `RDSOSMetrics` log group, with a role the stack makes for RDS): 1, 5,
    /// 10, 15, 30 or 60 (default 60); 0 turns it off.
    #[serde(default = "default_monitoring_interval")]
    pub monitoring_interval: u8,
    /// Refuse to delete the database (in infra and in AWS) while true.
    /// Default: the stack's `protect`.
    #[serde(default)]
    pub deletion_protection: Option<bool>,
    /// Name of an existing DB parameter group of the engine's family.
    /// Absent: the engine's default group. A change takes effect at the next reboot.
    #[serde(default)]
    pub parameter_group: Option<String>,
}

/// A DynamoDB key attribute.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyAttr {
    /// Attribute name.
    pub name: String,
    /// `S` (string), `N` (number) or `B` (binary).
    #[serde(rename = "type")]
    pub kind: AttrType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum AttrType {
    S,
    N,
    B,
}

impl AttrType {
    pub fn api(self) -> &'static str {
        match self {
            AttrType::S => "S",
            AttrType::N => "N",
            AttrType::B => "B",
        }
    }
}

/// Read and write capacity units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub read: u32,
    pub write: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDemand {
    OnDemand,
}

/// `on_demand` (default), or `{ provisioned: { read: 5, write: 5 } }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Billing {
    /// Pay per request.
    OnDemand(OnDemand),
    /// Fixed capacity.
    Provisioned(Provisioned),
}

/// `{ provisioned: { read: N, write: N } }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provisioned {
    pub provisioned: Capacity,
}

impl Default for Billing {
    fn default() -> Self {
        Billing::OnDemand(OnDemand::OnDemand)
    }
}

/// What a stream record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamView {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
}

impl StreamView {
    pub fn api(self) -> &'static str {
        match self {
            StreamView::KeysOnly => "KEYS_ONLY",
            StreamView::NewImage => "NEW_IMAGE",
            StreamView::OldImage => "OLD_IMAGE",
            StreamView::NewAndOldImages => "NEW_AND_OLD_IMAGES",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// Every attribute.
    All,
    /// The table's and the index's keys only.
    KeysOnly,
}

/// Attributes an index holds: `all`, `keys_only`, or `{ include: [a, b] }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum IndexProjection {
    Simple(Projection),
    Include(Include),
}

/// `{ include: [attribute, ...] }`: the keys plus these attributes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub include: Vec<String>,
}

impl Default for IndexProjection {
    fn default() -> Self {
        IndexProjection::Simple(Projection::All)
    }
}

/// A global secondary index. Adding or removing one is done in place
/// (AWS builds a new index in the background; the apply waits for it).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Index name (3 to 255 of letters, digits, `_ - .`).
    pub name: String,
    pub partition_key: KeyAttr,
    #[serde(default)]
    pub sort_key: Option<KeyAttr>,
    /// Default `all`.
    #[serde(default)]
    pub projection: IndexProjection,
    /// Capacity of the index when the table is provisioned (default: the table's).
    #[serde(default)]
    pub provisioned: Option<Capacity>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EncryptionMode {
    /// A key AWS owns and manages for DynamoDB (free; the default).
    #[default]
    AwsOwned,
}

/// Encryption at rest (always on): `aws_owned` (default), or
/// `{ kms_key: <key ARN> }` for a customer-managed KMS key.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Encryption {
    Mode(EncryptionMode),
    Key(KmsKey),
}

/// `{ kms_key: <key ARN> }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KmsKey {
    /// ARN of a customer-managed KMS key.
    pub kms_key: String,
}

impl Default for Encryption {
    fn default() -> Self {
        Encryption::Mode(EncryptionMode::AwsOwned)
    }
}

/// A DynamoDB table.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Partition (hash) key. Changing it replaces the table (after a backup).
    pub partition_key: KeyAttr,
    /// Sort (range) key. Changing it replaces the table (after a backup).
    #[serde(default)]
    pub sort_key: Option<KeyAttr>,
    /// `on_demand` (default) or `{ provisioned: { read: N, write: N } }`.
    #[serde(default)]
    pub billing: Billing,
    /// Change stream: `keys_only`, `new_image`, `old_image`,
    /// `new_and_old_images`, or absent/null for none. Changing the view type
    /// disables the stream, then enables a new one (new stream ARN).
    #[serde(default)]
    pub stream: Option<StreamView>,
    /// Continuous backups for point-in-time restore (default true).
    #[serde(default = "yes")]
    pub point_in_time_recovery: bool,
    /// Numeric attribute holding each item's expiry time (epoch seconds);
    /// absent: no TTL. AWS allows one TTL change per hour.
    #[serde(default)]
    pub ttl_attribute: Option<String>,
    /// Refuse to delete the table (in infra and in AWS) while true.
    /// Default: the stack's `protect`.
    #[serde(default)]
    pub deletion_protection: Option<bool>,
    /// Encryption at rest key.
    #[serde(default)]
    pub encryption: Encryption,
    /// Global secondary indexes.
    #[serde(default)]
    pub indexes: Vec<Index>,
}
