//! Every address of the stack's resources, in one place: each tier's
//! expansion names its own resources here, and what one tier references in
//! another (a subnet, the API's stage, a table) comes from here too, never
//! from the other tier's code.
//!
//! An address is stable, readable and tag-safe (letters, digits and
//! `. - _ : / @`): it is written to the `infra:address` tag, so renaming one
//! replaces the resource.

// The network tier.
pub const VPC: &str = "network.vpc";
pub const IGW: &str = "network.igw";
pub const PUBLIC_ROUTE_TABLE: &str = "network.route_table.public";
pub const FLOW_LOG: &str = "network.flow_log";
pub const FLOW_LOG_GROUP: &str = "network.flow_log.log_group";
pub const FLOW_LOG_ROLE: &str = "network.flow_log.role";
pub const DEFAULT_SECURITY_GROUP: &str = "network.sg.default";
pub const DEFAULT_NETWORK_ACL: &str = "network.acl.default";
pub fn network_acl(tier: &str) -> String {
    format!("network.acl.{tier}")
}

/// A subnet: `tier` is `public` or `private`.
pub fn subnet(tier: &str, az: &str) -> String {
    format!("network.subnet.{tier}.{az}")
}
pub fn private_route_table(az: &str) -> String {
    format!("network.route_table.private.{az}")
}
pub fn nat_eip(az: &str) -> String {
    format!("network.eip.nat.{az}")
}
pub fn nat(az: &str) -> String {
    format!("network.nat.{az}")
}
pub fn endpoint(service: &str) -> String {
    format!("network.endpoint.{service}")
}
pub fn security_group(name: &str) -> String {
    format!("network.sg.{name}")
}

// The compute tier.
pub const LOAD_BALANCER: &str = "compute.lb";
pub const HTTP_LISTENER: &str = "compute.listener.http";
pub const HTTPS_LISTENER: &str = "compute.listener.https";
pub fn target_group(group: &str) -> String {
    format!("compute.tg.{group}")
}
pub fn launch_template(group: &str) -> String {
    format!("compute.lt.{group}")
}
pub fn auto_scaling_group(group: &str) -> String {
    format!("compute.asg.{group}")
}
pub fn instance_role(group: &str) -> String {
    format!("compute.role.{group}")
}
pub fn instance_profile(group: &str) -> String {
    format!("compute.instance_profile.{group}")
}

// Shared by the tiers: the bucket the stack's access logs go to (the load
// balancer's, CloudFront's, the site bucket's).
pub const LOG_BUCKET: &str = "logs.bucket";
pub const LOG_BUCKET_POLICY: &str = "logs.bucket_policy";

// The frontend tier.
pub const BUCKET: &str = "frontend.bucket";
pub const OAC: &str = "frontend.oac";
pub const DISTRIBUTION: &str = "frontend.distribution";
/// The provider finds the policy and the site through their bucket, at
/// addresses derived from the bucket's (see `aws::s3::{bucket_policy, site}`).
pub const BUCKET_POLICY: &str = "frontend.bucket_policy";
pub const SITE: &str = "frontend.site";
pub const SPA_FUNCTION: &str = "frontend.spa_function";

// The data tier.
pub const DB_SUBNET_GROUP: &str = "data.db_subnet_group";
pub const DATABASE: &str = "data.database";
/// The role RDS sends the database's Enhanced Monitoring metrics with.
pub const DB_MONITORING_ROLE: &str = "data.monitoring_role";
pub fn table(name: &str) -> String {
    format!("data.table.{name}")
}

// The backend tier.
pub const API: &str = "backend.api";
/// The API keys of `auth: api_key` routes (`backend.api_key.<client>`) and
/// their usage plan.
pub const API_KEY_PREFIX: &str = "backend.api_key.";
pub const USAGE_PLAN: &str = "backend.usage_plan";
/// The Cognito user pool of `auth: jwt` routes, when the stack makes it.
pub const USER_POOL: &str = "backend.user_pool";
pub const DEPLOYMENT: &str = "backend.deployment";
pub const STAGE: &str = "backend.stage";
pub const API_LOG_GROUP: &str = "backend.log_group.api";
pub fn function(name: &str) -> String {
    format!("backend.function.{name}")
}
pub fn role(name: &str) -> String {
    format!("backend.role.{name}")
}
pub fn log_group(name: &str) -> String {
    format!("backend.log_group.{name}")
}
pub fn stream(name: &str) -> String {
    format!("backend.stream.{name}")
}
pub fn permission(name: &str) -> String {
    format!("backend.permission.{name}")
}
