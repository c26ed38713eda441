//! API Gateway REST APIs: the API with its routes, its deployments and its
//! stages, the API keys of `auth: api_key` routes and their usage plan, one
//! file per kind. What the kinds of the service share lives
//! here: the stack's APIs (listed once per read, see [`apis`]), ARNs, patch
//! operations, throttling, the tag API.

pub mod api_key;
pub mod deployment;
pub mod rest_api;
pub mod stage;
pub mod usage_plan;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_apigateway::types::{Op, PatchOperation, RestApi};

use super::Aws;
use super::errors::AwsError;
use super::find::paginated;
use super::tags::{self, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![
        Box::new(rest_api::RestApiKind),
        Box::new(deployment::Deployment),
        Box::new(stage::Stage),
        Box::new(api_key::ApiKeyKind),
        Box::new(usage_plan::UsagePlanKind),
    ]
}

/// Control-plane calls are throttled hard (DeleteRestApi: one per 30 s per
/// account); throttled calls are retried this long.
pub const THROTTLED: Duration = Duration::from_secs(5 * 60);

pub fn throttled(e: &AwsError) -> bool {
    e.throttled()
}

pub fn patch(op: Op, path: &str, value: Option<String>) -> PatchOperation {
    PatchOperation::builder().op(op).path(path).set_value(value).build()
}

/// The ARN of the API `id` (API Gateway ARNs have no account).
pub async fn api_arn(aws: &Aws, id: &str) -> Result<String> {
    let (_, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:apigateway:{}::/restapis/{id}", aws.region))
}

/// API Gateway tags (APIs and stages are listed with theirs) as a map.
pub fn tag_map(t: Option<&HashMap<String, String>>) -> Tags {
    t.map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

pub fn api_tags(a: &RestApi) -> Tags {
    tag_map(a.tags())
}

/// Cache key of the stack's APIs ([`Aws::cached`]).
const APIS: &str = "apigateway.apis";

/// The APIs of this stack: one paginated GetRestApis (it returns tags).
pub async fn list_apis(aws: &Aws) -> Result<Vec<RestApi>> {
    let apis = paginated!(aws.apigateway.get_rest_apis().limit(500))?;
    Ok(apis.into_iter().filter(|a| tags::owner(aws, &api_tags(a)).is_some()).collect())
}

/// [`list_apis`], listed once per read and shared by the API, deployment
/// and stage kinds; creating or deleting an API drops it ([`forget_apis`]).
pub async fn apis(aws: &Aws) -> Result<Arc<Vec<RestApi>>> {
    aws.cached(APIS, || list_apis(aws)).await
}

/// Drops the shared listing: an API was created, changed or deleted.
pub fn forget_apis(aws: &Aws) {
    aws.forget(APIS);
}

super::tags::arn_tag_api!(
    /// Tags of an API or stage, by its ARN.
    Tagging,
    apigateway,
    resource_arn
);
