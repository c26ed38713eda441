//! S3: the site bucket (private, owner-enforced, encrypted, versioned), its
//! policy (only this stack's CloudFront distribution may read), and the
//! published site (the objects themselves, diffed by MD5 against ETags), one
//! file per kind.
//!
//! S3 has no tag-filtered listing: buckets are listed once (filtered to the
//! stack's region) and their tags read concurrently, once per run, shared by
//! the three kinds ([`in_buckets`]). The policy and the site have no tags of
//! their own: they are found through their bucket, at an address derived
//! from the bucket's ([`bucket_policy::address_of`], [`site::address_of`]).
//!
//! What the kinds share lives here: the client and its addressing style, the
//! bucket listing, tag conversions, batch deletes.

pub mod bucket;
pub mod bucket_policy;
pub mod site;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use aws_types::SdkConfig;
use futures::{StreamExt, TryStreamExt};

use super::errors::{AwsError, AwsResultExt};
use super::find::{Owned, owned_then, paginated};
use super::kind::Current;
use super::tags::Tags;
use super::{Aws, retry_on};
use crate::engine::provider::Quiet;

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(bucket::Bucket::default()), Box::new(bucket_policy::BucketPolicy), Box::new(site::Site)]
}

/// Environment variable forcing (`true`) or refusing (`false`) path-style
/// S3 addressing (`https://host/bucket/key`), the same switch as Terraform's
/// and Pulumi's `s3_use_path_style`. Unset: path style exactly when the
/// endpoint (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL) is an IP address or
/// `localhost`, where virtual-host names (`bucket.host`) cannot resolve:
/// emulators and most self-hosted S3-compatible stores.
pub const PATH_STYLE_ENV: &str = "AWS_S3_USE_PATH_STYLE";

/// The S3 client: the shared configuration plus the addressing style.
pub fn client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| sdk.endpoint_url().map(str::to_string));
    let forced = std::env::var(PATH_STYLE_ENV).ok();
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style(forced.as_deref(), endpoint.as_deref()))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn path_style(forced: Option<&str>, endpoint: Option<&str>) -> bool {
    match forced.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("true" | "1" | "yes") => return true,
        Some("false" | "0" | "no") => return false,
        _ => {}
    }
    let Some(url) = endpoint else { return false };
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok()
}

/// How long a just-created bucket may take to be visible to other calls.
const VISIBLE: Duration = Duration::from_secs(120);
/// Concurrent uploads (and concurrent bucket tag reads).
const CONCURRENCY: usize = 8;

/// Cache key ([`Aws::cached`]) of the region's buckets and their tags:
/// listing every bucket and reading each one's tags is the costly part of a
/// read, and the bucket, policy and site kinds all need it. Dropped when a
/// bucket is created or deleted (so the outputs shown after an apply list
/// again).
pub const BUCKETS: &str = "s3.buckets";

/// A bucket of the region, with all its tags.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub tags: Tags,
}

/// The region's buckets whose tags could be read, by name (cached, see
/// [`BUCKETS`]).
pub async fn buckets(aws: &Aws) -> Result<Arc<Vec<Listed>>> {
    aws.cached(BUCKETS, || discover(aws)).await
}

async fn discover(aws: &Aws) -> Result<Vec<Listed>> {
    let (lock_bucket, buckets) = tokio::join!(aws.lock_bucket_name(), async {
        paginated!(aws.s3.list_buckets().bucket_region(&aws.region)).context("listing S3 buckets")
    });
    let (lock_bucket, buckets) = (lock_bucket.ok(), buckets?);
    let names: Vec<String> = buckets
        .iter()
        // Older endpoints ignore the region filter but still say where each bucket is.
        .filter(|b| b.bucket_region().is_none_or(|r| r == aws.region))
        .filter_map(|b| b.name().map(str::to_string))
        // The stack lock's bucket is never a stack's: skip reading its tags.
        .filter(|n| Some(n.as_str()) != lock_bucket.as_deref())
        .collect();
    let found: Vec<Option<Listed>> = futures::stream::iter(names)
        .map(|name| async move {
            match bucket_tags(aws, &name).await {
                Ok(tags) => Ok(Some(Listed { name, tags })),
                // Deleted meanwhile, in another region, or not readable: not ours.
                Err(e)
                    if e.not_found()
                        || e.status == Some(301)
                        || e.status == Some(403)
                        || e.is("PermanentRedirect")
                        || e.is("AuthorizationHeaderMalformed") =>
                {
                    Ok(None)
                }
                Err(e) => Err(anyhow!(e).context(format!("reading the tags of bucket {name}"))),
            }
        })
        .buffer_unordered(CONCURRENCY * 2)
        .try_collect()
        .await?;
    let mut found: Vec<Listed> = found.into_iter().flatten().collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The resources of a kind that lives in the stack's buckets (the bucket
/// itself, its policy, its site), one per bucket at most: `at` gives its
/// address from the bucket's, `build` reads it from the bucket's name and
/// its owner (that address, the bucket's visible tags). With `address`,
/// only the one there.
pub async fn in_buckets<P, F, Fut>(
    aws: &Aws, address: Option<&str>, at: fn(&str) -> String, build: F,
) -> Result<Vec<Current<P>>>
where
    F: Fn(String, Owned) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Current<P>>>>,
{
    let listed = buckets(aws).await?;
    let build = &build;
    owned_then(
        aws,
        None,
        listed.iter(),
        |b| b.tags.clone(),
        |b, mut owner| async move {
            owner.address = at(&owner.address);
            if address.is_some_and(|a| a != owner.address) {
                return Ok(None);
            }
            build(b.name.clone(), owner).await
        },
    )
    .await
}

/// A bucket's tags; no tag set is an empty map.
async fn bucket_tags(aws: &Aws, name: &str) -> Result<Tags, AwsError> {
    match aws.s3.get_bucket_tagging().bucket(name).send().await.aws() {
        Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
        Err(e) if e.is("NoSuchTagSet") => Ok(Tags::new()),
        Err(e) => Err(e),
    }
}

/// A map as S3 tags.
fn s3_tags(t: &Tags) -> Result<Vec<Tag>> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| anyhow!(e))).collect()
}

/// Replaces the bucket's whole tag set (S3 has no per-key tag calls): the
/// user's and ours, see [`Aws::tags_for`].
async fn put_tags(aws: &Aws, name: &str, t: &Tags) -> Result<()> {
    let tagging = Tagging::builder().set_tag_set(Some(s3_tags(t)?)).build()?;
    when_visible("tagging the bucket", || async {
        aws.s3.put_bucket_tagging().bucket(name).tagging(tagging.clone()).send().await.aws()
    })
    .await?;
    Ok(())
}

/// `op` on a bucket, again while S3 does not see the just-created bucket yet.
async fn when_visible<T, F, Fut>(what: &str, op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AwsError>>,
{
    retry_on(&["NoSuchBucket"], what, VISIBLE, &Quiet, op).await
}

/// DeleteObjects in batches of 1,000 (the API's maximum); returns how many.
async fn delete_objects(aws: &Aws, bucket: &str, ids: Vec<ObjectIdentifier>) -> Result<usize> {
    let n = ids.len();
    for chunk in ids.chunks(1000) {
        let del = Delete::builder().set_objects(Some(chunk.to_vec())).quiet(true).build()?;
        let out = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(del)
            .send()
            .await
            .aws()
            .with_context(|| format!("deleting objects of {bucket}"))?;
        if let Some(e) = out.errors().first() {
            bail!(
                "deleting {} from {bucket}: {}: {}",
                e.key().unwrap_or_default(),
                e.code().unwrap_or_default(),
                e.message().unwrap_or_default()
            );
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_for_ip_and_localhost_endpoints_or_when_asked() {
        assert!(path_style(None, Some("http://127.0.0.1:5000")));
        assert!(path_style(None, Some("http://localhost:4566/")));
        assert!(path_style(None, Some("http://[::1]:9000")));
        assert!(!path_style(None, Some("https://s3.example.com")));
        assert!(!path_style(None, None));
        assert!(path_style(Some("true"), None));
        assert!(!path_style(Some("false"), Some("http://127.0.0.1:5000")));
    }
}
