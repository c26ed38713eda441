//! CloudFront: the origin access control (how the distribution signs its
//! requests to the private bucket) and the distribution itself, one file per
//! kind; and invalidations, which the site kind (`s3::site`) makes.
//!
//! CloudFront is global: besides `infra:stack` and `infra:address`, the
//! distribution carries `infra:region`, so the same stack name deployed in
//! two regions keeps two distributions apart. Origin access controls take no
//! tags; ownership is written in their description.
//!
//! Every change goes through the ETag protocol ([`if_match`]): read the
//! config and its ETag, send the change with `IfMatch`, and start over when
//! another writer got in between (PreconditionFailed).

pub mod distribution;
pub mod function;
pub mod origin_access_control;

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{InvalidationBatch, Paths, Tag, TagKeys, Tags as CfTags};
use sha2::{Digest, Sha256};

use super::errors::{AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};
use super::{ADDRESS_TAG, STACK_TAG};
use super::{Aws, wait_for};
use crate::engine::provider::StepContext;

/// Tag naming the region of a stack's global (CloudFront) resources.
pub const REGION_TAG: &str = "infra:region";

/// CloudFront's limit of paths in one invalidation; beyond it, `/*`.
pub const MAX_INVALIDATION_PATHS: usize = 3000;
/// Longest wait for CloudFront to finish an invalidation (with `--wait`).
const INVALIDATION_WAIT: Duration = Duration::from_secs(30 * 60);
/// Attempts of a read-modify-write cycle that loses the ETag race.
const ETAG_ATTEMPTS: usize = 5;

/// A CloudFront list of `items` of type `$ty`: every list in the API
/// carries its `quantity` beside its items, and they must agree.
macro_rules! list {
    ($ty:ident, $items:expr) => {{
        let items: Vec<_> = $items;
        $ty::builder().quantity(items.len() as i32).set_items(Some(items)).build()?
    }};
}
use list;

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![
        Box::new(origin_access_control::OriginAccessControl),
        Box::new(function::Function),
        Box::new(distribution::Distribution),
    ]
}

/// A change through the ETag protocol: `read` gives the ETag of the current
/// state and what to send (`None`: the resource is gone), `write` sends it
/// with `IfMatch`; both again when another writer got in between
/// (PreconditionFailed). `what` names the change in the final error.
pub async fn if_match<S, T, R, RF, W, WF>(what: &str, mut read: R, mut write: W) -> Result<Option<T>>
where
    R: FnMut() -> RF,
    RF: std::future::Future<Output = Result<Option<(String, S)>>>,
    W: FnMut(String, S) -> WF,
    WF: std::future::Future<Output = Result<T, AwsError>>,
{
    for attempt in 1..=ETAG_ATTEMPTS {
        let Some((etag, input)) = read().await? else {
            return Ok(None);
        };
        match write(etag, input).await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is("PreconditionFailed") && attempt < ETAG_ATTEMPTS => continue,
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        }
    }
    unreachable!("the last attempt returns")
}

/// CloudFront tags as a map.
fn tag_map(t: Option<&CfTags>) -> Tags {
    t.map(|t| t.items())
        .unwrap_or_default()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
        .collect()
}

/// A map as CloudFront tags.
fn cf_tags(t: &Tags) -> CfTags {
    let items: Vec<Tag> = t
        .iter()
        // Cannot fail: the one required field, the key, is set.
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    CfTags::builder().set_items(Some(items)).build()
}

/// The description (or comment) that marks an untaggable resource (origin
/// access control) or one whose tags cost a call per item to list (function)
/// as ours.
pub(crate) fn description(aws: &Aws, address: &str) -> String {
    format!("infra stack={} region={} address={address}", aws.stack, aws.region)
}

/// The address written in a description, if it belongs to this stack and region.
fn owner<'a>(stack: &str, region: &str, description: &'a str) -> Option<&'a str> {
    let mut words = description.split_whitespace();
    if words.next() != Some("infra") {
        return None;
    }
    let (mut stack_, mut region_, mut address) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("stack", v)) => stack_ = Some(v),
            Some(("region", v)) => region_ = Some(v),
            Some(("address", v)) => address = Some(v),
            _ => {}
        }
    }
    (stack_ == Some(stack) && region_ == Some(region)).then_some(address).flatten()
}

/// The description's owner as the tags a taggable resource would carry
/// (none when it is not this stack's in this region), for `find::owned`.
pub(crate) fn owner_tags(aws: &Aws, description: &str) -> Tags {
    owner(&aws.stack, &aws.region, description)
        .map(|address| {
            Tags::from([(STACK_TAG.to_string(), aws.stack.clone()), (ADDRESS_TAG.to_string(), address.to_string())])
        })
        .unwrap_or_default()
}

/// Tags of a CloudFront resource, addressed by the ARN CloudFront reports
/// for it.
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.cloudfront.tag_resource().resource(arn).tags(cf_tags(tags)).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.cloudfront
            .untag_resource()
            .resource(arn)
            .tag_keys(TagKeys::builder().set_items(Some(keys.to_vec())).build())
            .send()
            .await
            .aws()
            .map(|_| ())
    }
}

/// Invalidates `paths` in distribution `dist`; with `apply --wait`
/// (`ctx.options.wait`), until CloudFront reports it completed.
pub async fn invalidate(aws: &Aws, dist: &str, paths: &[String], ctx: &StepContext<'_>) -> Result<()> {
    // Same reference for the SDK's retries of this call: CloudFront then
    // returns the same invalidation instead of making a second one.
    let mut h = Sha256::new();
    h.update(paths.join("\n").as_bytes());
    let reference = format!("infra-{}-{}", crate::engine::plan::now_rfc3339(), hex::encode(&h.finalize()[..8]));
    let batch = InvalidationBatch::builder().paths(list!(Paths, paths.to_vec())).caller_reference(reference).build()?;
    let out = aws
        .cloudfront
        .create_invalidation()
        .distribution_id(dist)
        .invalidation_batch(batch)
        .send()
        .await
        .aws()
        .with_context(|| format!("invalidating {} path(s) in distribution {dist}", paths.len()))?;
    let id = out.invalidation().map(|i| i.id().to_string()).unwrap_or_default();
    ctx.reporter.status(&format!("invalidation {id}: {} path(s)", paths.len()));
    if ctx.options.wait && !id.is_empty() {
        wait_for("the invalidation to complete", INVALIDATION_WAIT, ctx, || async {
            let o = aws.cloudfront.get_invalidation().distribution_id(dist).id(&id).send().await.aws()?;
            Ok(o.invalidation().is_some_and(|i| i.status() == "Completed").then_some(()))
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_read_from_the_description() {
        let d = "infra stack=shop region=us-east-1 address=web.oac";
        assert_eq!(owner("shop", "us-east-1", d), Some("web.oac"));
        assert_eq!(owner("shop", "eu-west-1", d), None, "same stack, other region");
        assert_eq!(owner("shop2", "us-east-1", d), None);
        assert_eq!(owner("shop", "us-east-1", "stack=shop region=us-east-1 address=x"), None);
    }
}
