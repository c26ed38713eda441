//! The AWS names the stack gives its resources, derived from the stack name
//! (and region, account) in one place: the checks verify them against AWS's
//! limits, the expansions write them into props.

use super::compute::spec::Scheme;

/// Name of the load balancer for a stack and scheme. The scheme is part of
/// the name because changing it means a new load balancer, created while the
/// old one still exists (names are unique per region).
pub fn lb_name(stack: &str, scheme: Scheme) -> String {
    match scheme {
        Scheme::InternetFacing => format!("{stack}-alb"),
        Scheme::Internal => format!("{stack}-alb-int"),
    }
}

/// Name of a group's launch template and Auto Scaling group.
pub fn group_name(stack: &str, group: &str) -> String {
    format!("{stack}-{group}")
}

/// The RDS instance identifier of a stack's database.
pub fn db_identifier(stack: &str) -> String {
    format!("{stack}-db")
}

/// The DynamoDB table name of table `name`.
pub fn table_name(stack: &str, name: &str) -> String {
    format!("{stack}-{name}")
}

/// The bucket name used when `bucket_name` is absent. It holds the account
/// id and region, so it is unique across AWS without a random part, and the
/// same stack always finds the same name.
pub fn derived_bucket_name(stack: &str, account: &str, region: &str) -> String {
    format!("{stack}-site-{account}-{region}")
}

/// Lambda function name of function `name`.
pub fn function_name(stack: &str, name: &str) -> String {
    format!("{stack}-{name}")
}

/// Execution role name: IAM is global, so the region keeps the same stack
/// deployed in two regions from sharing (and deleting) one role.
pub fn role_name(stack: &str, name: &str, region: &str) -> String {
    format!("{stack}-{name}-{region}")
}

/// The role (and instance profile) of a web group's instances: `-ec2-`
/// keeps it apart from a function's role of the same name, and the region
/// from the same stack's in another region (IAM is global).
pub fn instance_role(stack: &str, group: &str, region: &str) -> String {
    format!("{stack}-{group}-ec2-{region}")
}

/// IAM path of the stack's roles: listing roles under it is the batched
/// read, and the region in it keeps stacks of the same name in two regions
/// apart (IAM is global).
pub fn role_path(stack: &str, region: &str) -> String {
    format!("/infra/{stack}/{region}/")
}

/// Log groups of the stack's own making (flow logs...): under a prefix the
/// logs kind reads (`aws::logs::prefixes`).
pub fn log_group(stack: &str, name: &str) -> String {
    format!("/infra/{stack}/{name}")
}

/// The role VPC flow logs deliver with.
pub fn flow_log_role(stack: &str, region: &str) -> String {
    format!("{stack}-flow-logs-{region}")
}

/// The database's Enhanced Monitoring role: IAM is global, hence the
/// region (at most 24 + 16 + 14 = 54 characters, inside IAM's 64).
pub fn db_monitoring_role(stack: &str, region: &str) -> String {
    format!("{stack}-rds-monitoring-{region}")
}

/// The CloudFront Function of the site's client-side routes: unique per
/// account, hence the region (at most 24 + 1 + 14 + 4 = 43 characters, inside
/// CloudFront's 64, of letters, digits and hyphens).
pub fn spa_function(stack: &str, region: &str) -> String {
    format!("{stack}-{region}-spa")
}
