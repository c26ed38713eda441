//! The `compute:` section of stack.yaml: web groups (launch template + Auto
//! Scaling group + target group each) behind one Application Load Balancer.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The compute tier: an Application Load Balancer and the web groups behind it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// The Application Load Balancer in front of every group.
    #[serde(default)]
    pub load_balancer: LoadBalancerSpec,
    /// Web groups by name (lowercase letters, digits and hyphens, e.g. `web`):
    /// each is a launch template, an Auto Scaling group across the zones and
    /// a target group of the load balancer.
    pub groups: BTreeMap<String, GroupSpec>,
}

/// The Application Load Balancer.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// `internet-facing` (default: in the public subnets) or `internal` (in
    /// the private subnets). Changing it replaces the load balancer (a new
    /// one is created first and the listeners move to it).
    #[serde(default)]
    pub scheme: Scheme,
    /// ACM (or IAM) certificate ARN, in the stack's region. When set, a
    /// listener on 443 (HTTPS) serves the groups and the listener on 80
    /// redirects to it.
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// TLS policy of the HTTPS listener (default
    /// `ELBSecurityPolicy-TLS13-1-2-2021-06`). Only with `certificate_arn`.
    #[serde(default)]
    pub ssl_policy: Option<String>,
}

/// Load balancer scheme.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Scheme {
    /// Reachable from the internet, in the public subnets.
    #[default]
    #[serde(rename = "internet-facing")]
    InternetFacing,
    /// Reachable from inside the VPC only, in the private subnets.
    #[serde(rename = "internal")]
    Internal,
}

impl Scheme {
    /// The ELBv2 API's value.
    pub fn api(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
}

/// One web group: identical instances from one launch template, in an Auto
/// Scaling group spanning every zone, registered in one target group.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The machine image: an AMI id (`ami-0123456789abcdef0`), or
    /// `{name: "al2023-ami-2023.*-x86_64", owners: [amazon]}`, resolved to
    /// the newest matching image at plan time (a newer image rolls the group).
    #[schemars(schema_with = "ami_schema")]
    pub ami: Ami,
    /// EC2 instance type, e.g. `t3.micro`. Changing it rolls the group.
    pub instance_type: String,
    /// User data script run at first boot (at most 16 KB). It may name the
    /// stack's values: `${backend.api.url}`, `${frontend.domain}`,
    /// `${database.endpoint}`, `${database.port}`, `${database.secret_arn}`,
    /// `${tables.NAME.name}` (`.arn`, `.stream_arn`); the shell's own
    /// `${VAR}` stays as written. Changing it (or a value it names) rolls the group.
    #[serde(default)]
    pub user_data: Option<String>,
    /// File holding the user data, relative to stack.yaml (instead of `user_data`).
    #[serde(default)]
    pub user_data_file: Option<String>,
    /// Tables of `data:` the instances may read and write (item actions on
    /// exactly these tables and their indexes, through the instance role).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Whether the instances may read the database's managed secret (its
    /// user and password).
    #[serde(default)]
    pub database: bool,
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Instances wanted now. When absent, the scaling policies own the
    /// number (a policy moving it is not drift); when set, apply restores it.
    #[serde(default)]
    pub desired: Option<u32>,
    /// Subnets the instances run in: `public` or `private`. Default:
    /// `private` when the network has NAT, else `public`.
    #[serde(default)]
    pub subnets: Option<SubnetTier>,
    /// Port the instances serve on (default 80). Must be open from `alb` in
    /// the `web` security group. Changing it replaces the target group.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Protocol from the load balancer to the instances: `HTTP` (default) or
    /// `HTTPS`. Changing it replaces the target group.
    #[serde(default)]
    pub protocol: TargetProtocol,
    /// Health check of the group and of its target group.
    #[serde(default)]
    pub health_check: HealthCheckSpec,
    /// Target tracking scaling policies. Absent: keep average CPU at 50%;
    /// `{}`: no policy.
    #[serde(default)]
    #[schemars(with = "ScalingSpec")]
    pub scaling: Option<ScalingSpec>,
    /// Scheduled changes of min / max / desired (e.g. scale down at night).
    #[serde(default)]
    pub scheduled: Vec<ScheduledSpec>,
    /// How a change of image, type or user data rolls the instances.
    #[serde(default)]
    pub refresh: RefreshSpec,
    /// Listener rule: requests whose path matches one of these go to this
    /// group (e.g. `["/api/*"]`). With several groups, exactly one group
    /// may have neither `path_patterns` nor `host_headers`: it gets every
    /// other request.
    #[serde(default)]
    pub path_patterns: Vec<String>,
    /// Listener rule: requests for one of these host names go to this group
    /// (e.g. `["api.example.com"]`). Combined with `path_patterns`, both must match.
    #[serde(default)]
    pub host_headers: Vec<String>,
    /// Priority of this group's listener rule (1 to 50000, lower first).
    /// Default: by group name, 10, 20, 30...
    #[serde(default)]
    pub priority: Option<u16>,
    /// Root volume (always encrypted, deleted with the instance).
    #[serde(default)]
    pub root_volume: RootVolumeSpec,
}

fn default_port() -> u16 {
    80
}

/// The schema of `ami`: a string, or a mapping with exactly the look-up's
/// keys. One schema with two types (rather than `anyOf`) lets a mistake in
/// the mapping (`owner:` for `owners:`) be reported key by key.
fn ami_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "An AMI id (`ami-0123456789abcdef0`); `{ssm: PARAMETER}`: the image AWS publishes under that SSM parameter (`/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`), read at plan time; or `{name, owners}`: the newest available image whose name matches, from these owners, found at plan time.",
        "type": ["string", "object"],
        "properties": {
            "ssm": { "type": "string", "description": "SSM parameter holding an AMI id, e.g. `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`." },
            "name": { "type": "string", "description": "Image name pattern (`*` and `?` wildcards)." },
            "owners": { "type": "array", "items": { "type": "string" }, "description": "`amazon`, `aws-marketplace`, `self` or 12-digit account ids." }
        },
        "dependentRequired": { "name": ["owners"], "owners": ["name"] },
        "minProperties": 1,
        "additionalProperties": false
    })
}

/// An AMI id or a name filter.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Ami {
    /// An AMI id, e.g. `ami-0123456789abcdef0`.
    Id(String),
    /// The image an SSM parameter names (AWS's latest images).
    Ssm(AmiSsm),
    /// The newest image matching a name pattern, from these owners.
    Lookup(AmiLookup),
}

/// An AMI found at plan time through the SSM parameter AWS keeps it under:
/// a new image there shows as a new template version and an instance
/// refresh.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmiSsm {
    /// The parameter's name, e.g.
    /// `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64`.
    pub ssm: String,
}

/// An AMI found by name at plan time.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmiLookup {
    /// Image name pattern (`*` and `?` wildcards), e.g. `amzn2-ami-hvm-*-x86_64-gp2`.
    pub name: String,
    /// Who may own the image: `amazon`, `aws-marketplace`, `self` or
    /// 12-digit account ids. Required: a name alone could match anyone's image.
    pub owners: Vec<String>,
}

/// Which subnets of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubnetTier {
    Public,
    Private,
}

impl SubnetTier {
    pub fn name(self) -> &'static str {
        match self {
            SubnetTier::Public => "public",
            SubnetTier::Private => "private",
        }
    }
}

/// Protocol from the load balancer to the instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TargetProtocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

impl TargetProtocol {
    pub fn api(self) -> &'static str {
        match self {
            TargetProtocol::Http => "HTTP",
            TargetProtocol::Https => "HTTPS",
        }
    }
}

/// Health checks.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// What makes the Auto Scaling group replace an instance: `ELB`
    /// (default: failing the load balancer's check, or EC2's status checks)
    /// or `EC2` (EC2 status checks only).
    #[serde(default, rename = "type")]
    pub kind: HealthCheckType,
    /// Seconds after launch before health checks count (default 300).
    #[serde(default = "default_grace")]
    pub grace_period: u32,
    /// Path the load balancer requests on each instance (default `/`).
    #[serde(default = "default_path")]
    pub path: String,
    /// HTTP codes meaning healthy: `200`, `200,302` or `200-399` (default `200-399`).
    #[serde(default = "default_matcher")]
    pub matcher: String,
    /// Seconds between checks, 5 to 300 (default 30).
    #[serde(default = "default_interval")]
    pub interval: u32,
    /// Seconds without answer that fail a check, 2 to 120, below `interval` (default 5).
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Consecutive successes before an instance is healthy, 2 to 10 (default 3).
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures before an instance is unhealthy, 2 to 10 (default 3).
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheckSpec {
    fn default() -> Self {
        HealthCheckSpec {
            kind: HealthCheckType::default(),
            grace_period: default_grace(),
            path: default_path(),
            matcher: default_matcher(),
            interval: default_interval(),
            timeout: default_timeout(),
            healthy_threshold: default_threshold(),
            unhealthy_threshold: default_threshold(),
        }
    }
}

fn default_grace() -> u32 {
    300
}
fn default_path() -> String {
    "/".into()
}
fn default_matcher() -> String {
    "200-399".into()
}
fn default_interval() -> u32 {
    30
}
fn default_timeout() -> u32 {
    5
}
fn default_threshold() -> u32 {
    3
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum HealthCheckType {
    #[default]
    #[serde(rename = "ELB")]
    Elb,
    #[serde(rename = "EC2")]
    Ec2,
}

impl HealthCheckType {
    pub fn api(self) -> &'static str {
        match self {
            HealthCheckType::Elb => "ELB",
            HealthCheckType::Ec2 => "EC2",
        }
    }
}

/// Target tracking policies: the group adds or removes instances to keep
/// each metric at its target.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingSpec {
    /// Average CPU utilization of the group, in percent (e.g. 50).
    #[serde(default)]
    pub cpu_target: Option<f64>,
    /// Load balancer requests per instance per minute (e.g. 1000).
    #[serde(default)]
    pub requests_per_target: Option<f64>,
}

/// A scheduled action: at each `recurrence`, set the given sizes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledSpec {
    /// Action name, unique in the group.
    pub name: String,
    /// Cron expression in five fields (minute hour day month weekday), e.g. `0 20 * * 1-5`.
    pub recurrence: String,
    /// New minimum size.
    #[serde(default)]
    pub min: Option<u32>,
    /// New maximum size.
    #[serde(default)]
    pub max: Option<u32>,
    /// New desired capacity.
    #[serde(default)]
    pub desired: Option<u32>,
    /// IANA time zone of `recurrence` (default UTC), e.g. `Europe/Paris`.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// Instance refresh preferences.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshSpec {
    /// Percentage of the group that must stay in service while instances
    /// are replaced, 0 to 100 (default 90).
    #[serde(default = "default_min_healthy")]
    pub min_healthy_percentage: u32,
    /// Seconds a new instance needs before it counts as in service (default:
    /// the health check grace period).
    #[serde(default)]
    pub instance_warmup: Option<u32>,
}

impl Default for RefreshSpec {
    fn default() -> Self {
        RefreshSpec { min_healthy_percentage: default_min_healthy(), instance_warmup: None }
    }
}

fn default_min_healthy() -> u32 {
    90
}

/// The instances' root volume.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootVolumeSpec {
    /// Size in GiB (default: the image's size).
    #[serde(default)]
    pub size: Option<u32>,
    /// Volume type: `gp3` (default), `gp2`, `io1`, `io2`, `st1`, `sc1` or `standard`.
    #[serde(default = "default_volume_type")]
    pub r#type: String,
}

impl Default for RootVolumeSpec {
    fn default() -> Self {
        RootVolumeSpec { size: None, r#type: default_volume_type() }
    }
}

fn default_volume_type() -> String {
    "gp3".into()
}
