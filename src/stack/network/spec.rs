//! The network tier's part of `stack.yaml`: the VPC, its zones and
//! subnets, NAT, VPC endpoints and security groups.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Security groups every stack has, with the tiers they protect.
pub const BUILTIN_GROUPS: &[&str] = &["alb", "web", "functions", "database"];

/// Port the database listens on when the stack has none (PostgreSQL's).
pub const DEFAULT_DB_PORT: u16 = 5432;
/// Port the web instances serve on behind the load balancer.
pub const DEFAULT_WEB_PORT: u16 = 80;

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
    /// VPC flow logs to CloudWatch Logs: on by default (every accepted and
    /// rejected connection, for incident response; CIS AWS 3.9).
    #[serde(default)]
    pub flow_logs: FlowLogs,
    /// Strip the VPC's default security group of every rule (default true;
    /// CIS AWS 5.4): anything launched without a group then reaches nothing.
    #[serde(default = "yes")]
    pub restrict_default_security_group: bool,
    /// Network ACLs (default true): one per subnet tier, admitting from
    /// outside the VPC only what the stack's security groups admit from a
    /// CIDR block (the load balancer's ports, by default) and the answers to
    /// the subnets' own connections (ephemeral ports 1024-65535); the VPC's
    /// default ACL stripped of its entries (CIS AWS 5.1, 5.2). ICMP rules
    /// of security groups are not carried over.
    #[serde(default = "yes")]
    pub network_acls: bool,
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

/// VPC flow logs.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowLogs {
    /// Log the VPC's traffic (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `ALL` (default), `ACCEPT` or `REJECT`.
    #[serde(default)]
    pub traffic: Traffic,
    /// Days CloudWatch Logs keeps the records (default 365; one of the
    /// values CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180,
    /// 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653).
    #[serde(default = "year")]
    pub retention_days: u32,
}

impl Default for FlowLogs {
    fn default() -> Self {
        FlowLogs { enabled: true, traffic: Traffic::All, retention_days: 365 }
    }
}

fn year() -> u32 {
    365
}

/// Which connections flow logs record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Traffic {
    #[default]
    All,
    Accept,
    Reject,
}

impl Traffic {
    pub fn api(self) -> &'static str {
        match self {
            Traffic::All => "ALL",
            Traffic::Accept => "ACCEPT",
            Traffic::Reject => "REJECT",
        }
    }
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
