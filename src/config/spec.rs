//! The Rust types of `stack.yaml`. They are the single source of truth: the
//! published JSON Schema is generated from them (`infra schema`), and the
//! loader checks a file against that schema before deserializing it, so every
//! unknown key or wrong type is reported at once with its location.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole stack: one highly available AWS web application.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Stack name: prefixes every AWS name and is written to the `infra:stack`
    /// tag by which the stack's resources are found. Lowercase letters, digits
    /// and hyphens, at most 24 characters. `--stack` overrides it.
    pub stack: String,
    /// AWS region (e.g. `us-east-1`). `--region` overrides it; without either
    /// the AWS environment (AWS_REGION, profile) decides.
    #[serde(default)]
    pub region: Option<String>,
    /// Accept a region this version of infra does not know (newer than the tool).
    #[serde(default)]
    pub allow_unknown_region: bool,
    /// Tags added to every resource that takes tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The network tier: VPC, subnets, gateways, routes and security groups.
    pub network: Network,
    /// The frontend tier: the site's S3 bucket, CloudFront, and site publishing.
    // Schema without `null`: errors inside the section are then located.
    #[serde(default)]
    #[schemars(with = "super::spec_frontend::Frontend")]
    pub frontend: Option<super::spec_frontend::Frontend>,
    /// The compute tier: web groups behind an Application Load Balancer.
    /// (The schema is the section's own, not "it or null", so a mistake
    /// inside it is reported key by key.)
    #[serde(default)]
    #[schemars(with = "super::spec_compute::Compute")]
    pub compute: Option<super::spec_compute::Compute>,
    /// The backend tier: Lambda functions behind an API Gateway REST API.
    #[serde(default)]
    pub backend: Option<super::spec_backend::Backend>,
    /// The data tier: an RDS database and DynamoDB tables.
    #[serde(default)]
    pub data: Option<super::spec_data::Data>,
    /// Named overlays merged over this file with `-e NAME`; each is deployed
    /// as its own stack named `<stack>-<NAME>` unless it sets `stack`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Map<String, serde_json::Value>>")]
    pub environments: BTreeMap<String, serde_json::Value>,
}

/// How many Availability Zones, or which.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Azs {
    /// The first N zones of the region.
    Count(u8),
    /// These zones, by name (e.g. `[us-east-1a, us-east-1b]`).
    Names(Vec<String>),
}

impl Default for Azs {
    fn default() -> Self {
        Azs::Count(2)
    }
}

/// NAT for the private subnets' outbound traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NatMode {
    /// No NAT: private subnets have no route to the internet.
    #[default]
    None,
    /// One NAT gateway in the first AZ shared by every private subnet (cheaper, one AZ's fate).
    Single,
    /// One NAT gateway per AZ (highly available).
    PerAz,
}

/// The network tier.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The VPC's IPv4 CIDR block, /16 to /28 (e.g. `10.0.0.0/16`).
    pub cidr: String,
    /// Availability Zones: a count (default 2) or a list of names. At least two,
    /// unless `single_az: true`.
    #[serde(default)]
    pub azs: Azs,
    /// Explicit opt-out of high availability: allow a single AZ.
    #[serde(default)]
    pub single_az: bool,
    /// NAT gateways: `none` (default), `single` or `per_az`.
    #[serde(default)]
    pub nat: NatMode,
    /// Public subnet CIDRs, one per AZ in order. Derived from `cidr` when absent.
    #[serde(default)]
    pub public_subnets: Option<Vec<String>>,
    /// Private subnet CIDRs, one per AZ in order. Derived from `cidr` when absent.
    #[serde(default)]
    pub private_subnets: Option<Vec<String>>,
    /// VPC endpoints, so that what runs in the private subnets reaches AWS
    /// services without NAT: `auto` (default: with `nat: none`, those the
    /// stack needs, e.g. DynamoDB and Secrets Manager for VPC functions that
    /// declare `tables` or `database`), `none`, or
    /// `{ auto: true|false, services: [ssm, logs, ...] }` to add more.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Security groups by tier name. `alb`, `web`, `functions` and `database`
    /// always exist with safe default rules; listing one here replaces its
    /// rules; other names add groups.
    #[serde(default)]
    pub security_groups: BTreeMap<String, SecurityGroupSpec>,
}

/// Which VPC endpoints the network gets.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Endpoints {
    /// `auto` or `none`.
    Mode(EndpointMode),
    /// The automatic ones (unless `auto: false`) and these.
    Listed(EndpointList),
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints::Mode(EndpointMode::Auto)
    }
}

impl Endpoints {
    /// Whether the stack adds the endpoints it needs by itself.
    pub fn auto(&self) -> bool {
        match self {
            Endpoints::Mode(m) => *m == EndpointMode::Auto,
            Endpoints::Listed(l) => l.auto,
        }
    }
    /// The services listed in the file.
    pub fn listed(&self) -> &[String] {
        match self {
            Endpoints::Mode(_) => &[],
            Endpoints::Listed(l) => &l.services,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointMode {
    /// The endpoints the stack needs when its private subnets have no NAT.
    Auto,
    /// No endpoints.
    None,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointList {
    /// Also add the endpoints the stack needs without NAT (default true).
    #[serde(default = "yes")]
    pub auto: bool,
    /// AWS services by endpoint name: `s3` and `dynamodb` (gateway
    /// endpoints, free), or interface endpoints such as `secretsmanager`,
    /// `ssm`, `ssmmessages`, `ec2messages`, `logs`, `kms`, `sts`, `sqs`.
    #[serde(default)]
    pub services: Vec<String>,
}

fn yes() -> bool {
    true
}

/// One security group's rules.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupSpec {
    /// Group description (changing it replaces the group).
    #[serde(default)]
    pub description: Option<String>,
    /// Inbound rules. Absent: the tier's default rules.
    #[serde(default)]
    pub ingress: Option<Vec<RuleSpec>>,
    /// Outbound rules. Absent: all traffic to anywhere (AWS's default).
    #[serde(default)]
    pub egress: Option<Vec<RuleSpec>>,
}

/// A security group rule: a port (range) and a source, either CIDR blocks or
/// other groups of the stack.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// First port (or the only one). Omit with protocol `all`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Last port of a range (defaults to `port`).
    #[serde(default)]
    pub to_port: Option<u16>,
    /// `tcp` (default), `udp`, `icmp` or `all`.
    #[serde(default)]
    pub protocol: Protocol,
    /// IPv4 CIDR blocks allowed (e.g. `[0.0.0.0/0]`).
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Security groups of this stack allowed, by name (e.g. `[alb]`).
    #[serde(default)]
    pub from: Vec<String>,
    /// Rule description.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Icmp,
    All,
}

impl Protocol {
    /// The EC2 API's IpProtocol value.
    pub fn api(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "-1",
        }
    }
}

/// The JSON Schema of stack.yaml, generated from these types.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(StackFile)).unwrap_or_default();
    if let Some(o) = schema.as_object_mut() {
        o.insert(
            "$id".into(),
            serde_json::Value::String("https://infra.dev/schema/stack.schema.json".into()),
        );
    }
    schema
}
