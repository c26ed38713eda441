//! Lambda: functions, their stream mappings (event source mappings) and the
//! invoke permissions granted to API Gateway, one file per kind. What the
//! kinds of the service share lives here: the stack's functions (listed once
//! per read, see [`functions`]), ARNs, the tag API, the waits.

pub mod event_source_mapping;
pub mod function;
pub mod package;
pub mod permission;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_lambda::types::FunctionConfiguration;

use super::Aws;
use super::errors::{Absent, AwsResultExt};
use super::find::paginated;
use super::tags::Tags;

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![
        Box::new(function::Function),
        Box::new(event_source_mapping::EventSourceMapping),
        Box::new(permission::Permission),
    ]
}

/// A just-created role is not usable by Lambda for some seconds (IAM
/// propagation); creates that depend on it are retried this long.
pub const IAM_PROPAGATION: Duration = Duration::from_secs(120);
/// Updates and state transitions of a function (VPC functions take minutes).
pub const SETTLE: Duration = Duration::from_secs(15 * 60);

/// The ARN of `resource` (`function:<name>`, `event-source-mapping:<uuid>`).
pub async fn arn(aws: &Aws, resource: &str) -> Result<String> {
    aws.arn("lambda", resource).await
}

pub async fn function_arn(aws: &Aws, name: &str) -> Result<String> {
    arn(aws, &format!("function:{name}")).await
}

/// Every tag of the Lambda resource with ARN `arn` (none once it is gone).
pub async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags> {
    let t = aws.lambda.list_tags().resource(arn).send().await.aws().or_absent()?;
    Ok(t.and_then(|t| t.tags).unwrap_or_default().into_iter().collect())
}

/// A function that may be the stack's: its configuration, every tag it has
/// and its reserved concurrency.
#[derive(Clone, Debug)]
pub struct Listed {
    pub config: FunctionConfiguration,
    pub tags: Tags,
    pub reserved: Option<i32>,
}

/// Cache key of the stack's functions ([`Aws::cached`]).
const FUNCTIONS: &str = "lambda.functions";

/// The functions that may be this stack's: one paginated ListFunctions (it
/// has no tag filter), narrowed by the stack's name prefix, then one
/// GetFunction each, side by side (no batch API): it returns the tags and
/// the reserved concurrency, which ListTags and GetFunctionConcurrency
/// would read in two. `find::owned` keeps the stack's.
pub async fn list_functions(aws: &Aws) -> Result<Vec<Listed>> {
    let prefix = format!("{}-", aws.stack);
    let all = paginated!(aws.lambda.list_functions())?;
    let reads = all.into_iter().filter(|f| f.function_name().is_some_and(|n| n.starts_with(&prefix))).map(
        |config| async move {
            let name = config.function_name().unwrap_or_default();
            // Gone since the listing: not the stack's any more.
            let Some(got) = aws.lambda.get_function().function_name(name).send().await.aws().or_absent()? else {
                return Ok::<_, anyhow::Error>(None);
            };
            let tags = got.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
            let reserved = got.concurrency().and_then(|c| c.reserved_concurrent_executions());
            Ok(Some(Listed { config, tags, reserved }))
        },
    );
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

/// [`list_functions`], listed once per read and shared by the function and
/// permission kinds; writes to functions drop it ([`forget_functions`]).
pub async fn functions(aws: &Aws) -> Result<Arc<Vec<Listed>>> {
    aws.cached(FUNCTIONS, || list_functions(aws)).await
}

/// Drops the shared listing: a function was created, changed or deleted.
pub fn forget_functions(aws: &Aws) {
    aws.forget(FUNCTIONS);
}

super::tags::arn_tag_api!(
    /// Tags of a function or mapping, by its ARN.
    Tagging,
    lambda,
    resource
);
