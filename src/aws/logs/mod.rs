//! CloudWatch Logs: the log groups of the stack's functions and API, one
//! file per kind. What the kinds of the service share lives here: the name
//! prefixes the stack's groups have, their ARNs, the tag API.

pub mod log_group;

use anyhow::Result;

use super::Aws;
use super::errors::{AwsError, AwsResultExt};
use super::tags::Tags;

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(log_group::LogGroup)]
}

/// Name prefixes of the groups a stack may own (the API has no tag filter).
/// Lambda writes to `/aws/lambda/<function>`, API Gateway's access log is
/// `/aws/apigateway/<stack>-access`; the stack's other groups live under
/// `/infra/<stack>/`. Every one holds the stack's name: one DescribeLogGroups
/// by that name (`logGroupNamePattern`, a substring) lists them all, kept by
/// these prefixes.
pub fn prefixes(aws: &Aws) -> [String; 3] {
    [format!("/aws/lambda/{}-", aws.stack), format!("/aws/apigateway/{}-", aws.stack), format!("/infra/{}/", aws.stack)]
}

/// The ARN of the group `name` (without the `:*` DescribeLogGroups adds).
pub async fn group_arn(aws: &Aws, name: &str) -> Result<String> {
    aws.arn("logs", &format!("log-group:{name}")).await
}

/// Every tag of the group with ARN `arn`.
pub async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    Ok(aws
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .aws()?
        .tags
        .unwrap_or_default()
        .into_iter()
        .collect())
}

super::tags::arn_tag_api!(
    /// Tags of a log group, by its ARN.
    Tagging,
    logs,
    resource_arn
);
