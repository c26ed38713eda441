//! S3: the site bucket (private, owner-enforced, encrypted, versioned), its
//! policy (only this stack's CloudFront distribution may read), and the
//! published site (the objects themselves, diffed by MD5 against ETags).
//!
//! S3 has no tag-filtered listing: buckets are listed once (filtered to the
//! stack's region) and their tags read concurrently, once per run, shared by
//! the three kinds.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete,
    ObjectIdentifier, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use aws_types::SdkConfig;
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::{AwsError, AwsResultExt};
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, retry_on, wait_for};
use crate::engine::provider::{KindInfo, Quiet, StepReporter};
use crate::engine::resource::{Live, Resource};
use crate::model::frontend::{self as fe, ACCOUNT_PLACEHOLDER, SITE_KIND};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    let shared = Arc::new(Shared::default());
    vec![
        Box::new(Bucket(shared.clone())),
        Box::new(BucketPolicy(shared.clone())),
        Box::new(Site(shared)),
    ]
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
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
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
/// CloudFront's limit of paths in one invalidation; beyond it, `/*`.
const MAX_INVALIDATION_PATHS: usize = 3000;
/// Longest wait for CloudFront to finish an invalidation (with `--wait`).
const INVALIDATION_WAIT: Duration = Duration::from_secs(30 * 60);

/// The account id, shared by the kinds of this module.
#[derive(Default)]
pub struct Shared {
    account: OnceLock<String>,
}

/// Cache key ([`Aws::cached`]) of the stack's buckets: listing every bucket
/// and reading each one's tags is the costly part of a read, and the bucket,
/// policy and site kinds all need it. Dropped when a bucket is created or
/// deleted (so the outputs shown after an apply list again).
const BUCKETS: &str = "s3.buckets";

impl Shared {
    /// The stack's buckets (in its region).
    async fn buckets(&self, aws: &Aws) -> Result<Arc<Vec<Found>>> {
        let (account, _) = aws.identity().await?;
        let _ = self.account.set(account.clone());
        aws.cached(BUCKETS, || discover(aws)).await
    }
}

#[derive(Clone, Debug)]
struct Found {
    name: String,
    address: String,
    tags: Tags,
}

async fn discover(aws: &Aws) -> Result<Vec<Found>> {
    let lock_bucket = aws.lock_bucket_name().await.ok();
    let buckets: Vec<_> = aws
        .s3
        .list_buckets()
        .bucket_region(&aws.region)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws()
        .context("listing S3 buckets")?;
    let names: Vec<String> = buckets
        .iter()
        // Older endpoints ignore the region filter but still say where each bucket is.
        .filter(|b| b.bucket_region().is_none_or(|r| r == aws.region))
        .filter_map(|b| b.name().map(str::to_string))
        // The stack lock's bucket is never a stack's: skip reading its tags.
        .filter(|n| Some(n.as_str()) != lock_bucket.as_deref())
        .collect();
    let found: Vec<Option<Found>> = futures::stream::iter(names)
        .map(|name| async move {
            let t = match bucket_tags(aws, &name).await {
                Ok(t) => t,
                // Deleted meanwhile, in another region, or not readable: not ours.
                Err(e)
                    if e.not_found()
                        || e.status == Some(301)
                        || e.status == Some(403)
                        || e.is("PermanentRedirect")
                        || e.is("AuthorizationHeaderMalformed") =>
                {
                    return Ok(None);
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!("reading the tags of bucket {name}")));
                }
            };
            Ok::<_, anyhow::Error>(tags::owner(aws, &t).map(|a| Found {
                name: name.clone(),
                address: a.to_string(),
                tags: t.clone(),
            }))
        })
        .buffer_unordered(CONCURRENCY * 2)
        .try_collect()
        .await?;
    let mut found: Vec<Found> = found.into_iter().flatten().collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A bucket's tags; no tag set is an empty map.
async fn bucket_tags(aws: &Aws, name: &str) -> Result<Tags, AwsError> {
    match aws.s3.get_bucket_tagging().bucket(name).send().await.aws() {
        Ok(out) => Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()),
        Err(e) if e.is("NoSuchTagSet") => Ok(Tags::new()),
        Err(e) => Err(e),
    }
}

fn s3_tags(t: &Tags) -> Result<Vec<Tag>> {
    t.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| anyhow!(e))
        })
        .collect()
}

async fn put_tags(aws: &Aws, name: &str, t: &Tags) -> Result<()> {
    let tagging = Tagging::builder().set_tag_set(Some(s3_tags(t)?)).build()?;
    retry_on(
        &["NoSuchBucket"],
        "tagging the bucket",
        VISIBLE,
        &Quiet,
        || async {
            aws.s3
                .put_bucket_tagging()
                .bucket(name)
                .tagging(tagging.clone())
                .send()
                .await
                .aws()
        },
    )
    .await?;
    Ok(())
}

/// `arn:<partition>:s3:::<bucket>`.
fn bucket_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:s3:::{name}")
}

/// The regional endpoint name CloudFront reaches the bucket by.
fn regional_domain_name(name: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{name}.s3.{region}.{suffix}")
}

fn ignore_not_found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn props<T: for<'de> Deserialize<'de>>(d: &Resource) -> Result<T> {
    serde_json::from_value(d.props.clone())
        .with_context(|| format!("internal error: bad properties for {}", d.address))
}

// ---------------------------------------------------------------- bucket

#[derive(Clone, Debug, Serialize, Deserialize)]
struct BucketProps {
    bucket: String,
    /// All four public-access-block settings on.
    block_public_access: bool,
    object_ownership: String,
    /// Default encryption algorithm (`AES256` keeps ETags equal to MD5s).
    encryption: String,
    versioning: bool,
    #[serde(default)]
    tags: Tags,
}

struct Bucket(Arc<Shared>);

impl Bucket {
    /// The bucket name with the account placeholder resolved.
    fn resolve_name(&self, raw: &str, account: &str) -> String {
        raw.replace(ACCOUNT_PLACEHOLDER, account)
    }

    async fn live(&self, aws: &Aws, address: &str, name: &str, t: Tags) -> Result<Live> {
        let (_, partition) = aws.identity().await?;
        let (pab, own, enc, ver) = tokio::try_join!(
            async {
                match aws
                    .s3
                    .get_public_access_block()
                    .bucket(name)
                    .send()
                    .await
                    .aws()
                {
                    Ok(o) => Ok(o.public_access_block_configuration().is_some_and(|c| {
                        c.block_public_acls() == Some(true)
                            && c.ignore_public_acls() == Some(true)
                            && c.block_public_policy() == Some(true)
                            && c.restrict_public_buckets() == Some(true)
                    })),
                    Err(e) if e.is("NoSuchPublicAccessBlockConfiguration") => Ok(false),
                    Err(e) => Err(anyhow!(e).context("reading the public access block")),
                }
            },
            async {
                match aws
                    .s3
                    .get_bucket_ownership_controls()
                    .bucket(name)
                    .send()
                    .await
                    .aws()
                {
                    Ok(o) => Ok(o
                        .ownership_controls()
                        .and_then(|c| c.rules().first())
                        .map(|r| r.object_ownership().as_str().to_string())
                        .unwrap_or_default()),
                    // No controls: S3's legacy default.
                    Err(e) if e.is("OwnershipControlsNotFoundError") => Ok("ObjectWriter".into()),
                    Err(e) => Err(anyhow!(e).context("reading the ownership controls")),
                }
            },
            async {
                match aws
                    .s3
                    .get_bucket_encryption()
                    .bucket(name)
                    .send()
                    .await
                    .aws()
                {
                    Ok(o) => Ok(o
                        .server_side_encryption_configuration()
                        .and_then(|c| c.rules().first())
                        .and_then(|r| r.apply_server_side_encryption_by_default())
                        .map(|d| d.sse_algorithm().as_str().to_string())
                        .unwrap_or_else(|| "none".into())),
                    Err(e) if e.is("ServerSideEncryptionConfigurationNotFoundError") => {
                        Ok("none".into())
                    }
                    Err(e) => Err(anyhow!(e).context("reading the default encryption")),
                }
            },
            async {
                aws.s3
                    .get_bucket_versioning()
                    .bucket(name)
                    .send()
                    .await
                    .aws()
                    .map(|o| o.status() == Some(&BucketVersioningStatus::Enabled))
                    .map_err(|e| anyhow!(e).context("reading the versioning"))
            },
        )?;
        let p = BucketProps {
            bucket: name.to_string(),
            block_public_access: pab,
            object_ownership: own,
            encryption: enc,
            versioning: ver,
            tags: tags::visible(t),
        };
        Ok(Live {
            address: address.to_string(),
            kind: "s3.bucket".into(),
            id: name.to_string(),
            props: json!(p),
            attrs: bucket_attrs(name, partition, &aws.region),
        })
    }

    /// Applies every setting that differs from `old` (all of them without one).
    async fn configure(
        &self,
        aws: &Aws,
        name: &str,
        p: &BucketProps,
        old: Option<&BucketProps>,
    ) -> Result<()> {
        let codes = &["NoSuchBucket"];
        if old.is_none_or(|o| o.block_public_access != p.block_public_access) {
            let on = p.block_public_access;
            let conf = PublicAccessBlockConfiguration::builder()
                .block_public_acls(on)
                .ignore_public_acls(on)
                .block_public_policy(on)
                .restrict_public_buckets(on)
                .build();
            retry_on(codes, "blocking public access", VISIBLE, &Quiet, || async {
                aws.s3
                    .put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(conf.clone())
                    .send()
                    .await
                    .aws()
            })
            .await?;
        }
        if old.is_none_or(|o| o.object_ownership != p.object_ownership) {
            let conf = OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::from(p.object_ownership.as_str()))
                        .build()?,
                )
                .build()?;
            retry_on(
                codes,
                "setting object ownership",
                VISIBLE,
                &Quiet,
                || async {
                    aws.s3
                        .put_bucket_ownership_controls()
                        .bucket(name)
                        .ownership_controls(conf.clone())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        if old.is_none_or(|o| o.encryption != p.encryption) {
            let conf = ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::from(p.encryption.as_str()))
                                .build()?,
                        )
                        .build(),
                )
                .build()?;
            retry_on(
                codes,
                "setting default encryption",
                VISIBLE,
                &Quiet,
                || async {
                    aws.s3
                        .put_bucket_encryption()
                        .bucket(name)
                        .server_side_encryption_configuration(conf.clone())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        if old.is_none_or(|o| o.versioning != p.versioning) {
            let status = if p.versioning {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            let conf = VersioningConfiguration::builder().status(status).build();
            retry_on(codes, "setting versioning", VISIBLE, &Quiet, || async {
                aws.s3
                    .put_bucket_versioning()
                    .bucket(name)
                    .versioning_configuration(conf.clone())
                    .send()
                    .await
                    .aws()
            })
            .await?;
        }
        Ok(())
    }
}

fn bucket_attrs(name: &str, partition: &str, region: &str) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert("id".into(), json!(name));
    a.insert("name".into(), json!(name));
    a.insert("arn".into(), json!(bucket_arn(partition, name)));
    a.insert(
        "regional_domain_name".into(),
        json!(regional_domain_name(name, region)),
    );
    a
}

#[async_trait]
impl Kind for Bucket {
    fn name(&self) -> &'static str {
        "s3.bucket"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["bucket"],
            weight: 2,
            service: "s3",
            // Its content is a build artefact, published again on apply.
            holds_data: false,
            create_before_destroy: false,
        }
    }
    fn normalize(&self, props: &mut Value) {
        // A derived name holds the account id, known once the stack was read.
        if let (Some(Value::String(b)), Some(account)) =
            (props.get_mut("bucket"), self.0.account.get())
        {
            *b = b.replace(ACCOUNT_PLACEHOLDER, account);
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let found = self.0.buckets(aws).await?.to_vec();
        let reads = found
            .into_iter()
            .map(|f| async move { self.live(aws, &f.address, &f.name, f.tags).await });
        futures::future::try_join_all(reads).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        aws.forget(BUCKETS);
        let mut p: BucketProps = props(d)?;
        let (account, _) = aws.identity().await?;
        p.bucket = self.resolve_name(&p.bucket, account);
        let name = p.bucket.clone();
        let t = tags::for_create(aws, &d.address, &d.props);
        let help = "set `frontend.bucket_name` to another name (bucket names are global to AWS)";

        // Never take over a bucket this stack did not create: destroy empties it.
        match aws.s3.head_bucket().bucket(&name).send().await.aws() {
            Ok(_) => {
                let have = bucket_tags(aws, &name).await.map_err(|e| anyhow!(e))?;
                if tags::owner(aws, &have) != Some(d.address.as_str()) {
                    bail!(
                        "bucket {name} already exists in this account and does not belong to {} of stack {}; {help}",
                        d.address,
                        aws.stack
                    );
                }
            }
            Err(e) if e.status == Some(404) || e.not_found() => {
                let mut conf = CreateBucketConfiguration::builder().set_tags(Some(s3_tags(&t)?));
                // us-east-1 is the default location and must not be named.
                if aws.region != "us-east-1" {
                    conf = conf
                        .location_constraint(BucketLocationConstraint::from(aws.region.as_str()));
                }
                let conf = conf.build();
                // OperationAborted: a conflicting operation on this name is
                // still in progress (a bucket of this name just deleted).
                let r = retry_on(
                    &["OperationAborted"],
                    &format!("creating bucket {name}"),
                    VISIBLE,
                    rep,
                    || async {
                        aws.s3
                            .create_bucket()
                            .bucket(&name)
                            .object_ownership(ObjectOwnership::from(p.object_ownership.as_str()))
                            .create_bucket_configuration(conf.clone())
                            .send()
                            .await
                            .aws()
                    },
                )
                .await;
                let code = |e: &anyhow::Error, c: &str| {
                    e.downcast_ref::<AwsError>().is_some_and(|a| a.is(c))
                };
                match r {
                    Ok(_) => {}
                    // A retried create of ours.
                    Err(e) if code(&e, "BucketAlreadyOwnedByYou") => {}
                    Err(e) if code(&e, "BucketAlreadyExists") => {
                        bail!("bucket name {name} is taken by another AWS account; {help}")
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.status == Some(403) => {
                bail!("bucket {name} exists and belongs to another AWS account; {help}")
            }
            Err(e) if e.status == Some(301) => {
                bail!("bucket {name} already exists in another region; {help}")
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("checking whether bucket {name} exists")));
            }
        }
        // Tags again, separately: endpoints that ignore tags in CreateBucket
        // would otherwise leave a bucket this stack can never find.
        put_tags(aws, &name, &t).await?;
        self.configure(aws, &name, &p, None).await?;
        let (_, partition) = aws.identity().await?;
        Ok(Live {
            address: d.address.clone(),
            kind: self.name().into(),
            id: name.clone(),
            props: json!(p),
            attrs: bucket_attrs(&name, partition, &aws.region),
        })
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let mut p: BucketProps = props(d)?;
        p.bucket = l.id.clone();
        let old: BucketProps = serde_json::from_value(l.props.clone())?;
        self.configure(aws, &l.id, &p, Some(&old)).await?;
        if p.tags != old.tags {
            put_tags(aws, &l.id, &tags::for_create(aws, &d.address, &d.props)).await?;
        }
        Ok(Live {
            props: json!(p),
            ..l.clone()
        })
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        aws.forget(BUCKETS);
        let name = &l.id;
        // Objects written while emptying (a racing deploy) make the delete
        // fail with BucketNotEmpty: empty again, a bounded number of times.
        for attempt in 1..=5 {
            let removed = empty_bucket(aws, name, rep).await?;
            match ignore_not_found(aws.s3.delete_bucket().bucket(name).send().await.aws()) {
                Ok(_) => {
                    return Ok((removed > 0).then(|| {
                        format!("emptied {name} ({removed} object versions) before deleting it")
                    }));
                }
                Err(e) if e.is("BucketNotEmpty") && attempt < 5 => {
                    rep.status("bucket not empty yet; emptying again");
                }
                Err(e) => return Err(anyhow!(e).context(format!("deleting bucket {name}"))),
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// Deletes every object version and delete marker; returns how many.
async fn empty_bucket(aws: &Aws, name: &str, rep: &dyn StepReporter) -> Result<usize> {
    let mut removed = 0;
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = match aws
            .s3
            .list_object_versions()
            .bucket(name)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .aws()
        {
            Ok(p) => p,
            Err(e) if e.not_found() => return Ok(removed),
            Err(e) => return Err(anyhow!(e).context(format!("listing the objects of {name}"))),
        };
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(k, v)| {
                ObjectIdentifier::builder()
                    .set_key(k.map(str::to_string))
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        removed += delete_objects(aws, name, ids).await?;
        if removed > 0 {
            rep.status(&format!(
                "emptying the bucket: {removed} object versions deleted"
            ));
        }
        if page.is_truncated() != Some(true) {
            return Ok(removed);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

/// DeleteObjects in batches of 1,000 (the API's maximum); returns how many.
async fn delete_objects(aws: &Aws, bucket: &str, ids: Vec<ObjectIdentifier>) -> Result<usize> {
    let n = ids.len();
    for chunk in ids.chunks(1000) {
        let del = Delete::builder()
            .set_objects(Some(chunk.to_vec()))
            .quiet(true)
            .build()?;
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

// ---------------------------------------------------------------- bucket policy

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PolicyProps {
    bucket: String,
    bucket_arn: String,
    distribution_arn: String,
    /// The policy holds exactly the statements below (no others added by hand).
    only_managed_statements: bool,
}

const READ_SID: &str = "AllowCloudFrontRead";
/// The bucket policy: this distribution, and only it (by `AWS:SourceArn`),
/// may read objects. Nothing else is granted, and nothing is denied: a
/// deny of plain-HTTP requests would also lock the tool out of
/// S3-compatible endpoints served over HTTP, and the bucket holds only
/// public build artefacts.
fn policy_document(bucket_arn: &str, distribution_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": READ_SID,
                "Effect": "Allow",
                "Principal": { "Service": "cloudfront.amazonaws.com" },
                "Action": "s3:GetObject",
                "Resource": format!("{bucket_arn}/*"),
                "Condition": { "StringEquals": { "AWS:SourceArn": distribution_arn } },
            },
        ],
    })
}

/// Reads our statement back from a live policy document.
fn parse_policy(bucket: &str, doc: &str) -> PolicyProps {
    let v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let statements: Vec<Value> = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => vec![],
    };
    let ours = statements.iter().find(|s| s["Sid"] == READ_SID);
    let bucket_arn = ours
        .and_then(|s| s["Resource"].as_str())
        .map(|r| r.trim_end_matches("/*").to_string())
        .unwrap_or_default();
    let distribution_arn = ours
        .and_then(|s| s["Condition"]["StringEquals"]["AWS:SourceArn"].as_str())
        .unwrap_or_default()
        .to_string();
    let only = v == policy_document(&bucket_arn, &distribution_arn);
    PolicyProps {
        bucket: bucket.to_string(),
        bucket_arn,
        distribution_arn,
        only_managed_statements: only,
    }
}

/// Address of a bucket's policy: the bucket's address + `_policy`
/// (`frontend.bucket` -> `frontend.bucket_policy`).
fn policy_address(bucket_address: &str) -> String {
    format!("{bucket_address}_policy")
}

struct BucketPolicy(Arc<Shared>);

#[async_trait]
impl Kind for BucketPolicy {
    fn name(&self) -> &'static str {
        "s3.bucket_policy"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["bucket"],
            weight: 1,
            service: "s3",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let found = self.0.buckets(aws).await?.to_vec();
        let reads = found.into_iter().map(|f| async move {
            match aws
                .s3
                .get_bucket_policy()
                .bucket(&f.name)
                .send()
                .await
                .aws()
            {
                Ok(out) => {
                    let p = parse_policy(&f.name, out.policy().unwrap_or_default());
                    Ok(Some(Live {
                        address: policy_address(&f.address),
                        kind: "s3.bucket_policy".into(),
                        id: format!("{}/policy", f.name),
                        props: json!(p),
                        attrs: Map::new(),
                    }))
                }
                Err(e) if e.is("NoSuchBucketPolicy") || e.not_found() => Ok(None),
                Err(e) => Err(anyhow!(e).context(format!("reading the policy of {}", f.name))),
            }
        });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let mut p: PolicyProps = props(d)?;
        let doc = policy_document(&p.bucket_arn, &p.distribution_arn).to_string();
        retry_on(
            &["NoSuchBucket"],
            "setting the bucket policy",
            VISIBLE,
            &Quiet,
            || async {
                aws.s3
                    .put_bucket_policy()
                    .bucket(&p.bucket)
                    .policy(&doc)
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        p.only_managed_statements = true;
        Ok(Live {
            address: d.address.clone(),
            kind: self.name().into(),
            id: format!("{}/policy", p.bucket),
            props: json!(p),
            attrs: Map::new(),
        })
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        _l: &Live,
        _changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        self.create(aws, d, rep).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let bucket = l.props["bucket"].as_str().unwrap_or_default();
        ignore_not_found(
            aws.s3
                .delete_bucket_policy()
                .bucket(bucket)
                .send()
                .await
                .aws(),
        )
        .with_context(|| format!("deleting the policy of {bucket}"))?;
        Ok(None)
    }
}

// ---------------------------------------------------------------- site

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SiteProps {
    bucket: String,
    /// Where to invalidate changed paths (absent in live props).
    #[serde(default)]
    distribution_id: Option<String>,
    /// Local directory the files are read from (absent in live props).
    #[serde(default)]
    source: Option<String>,
    /// Object key -> hex MD5 (desired) or ETag (live).
    files: BTreeMap<String, String>,
}

struct Site(Arc<Shared>);

impl Site {
    /// Uploads what differs from `have`, deletes what is gone, then
    /// invalidates exactly those paths in one CloudFront invalidation.
    async fn publish(
        &self,
        aws: &Aws,
        d: &Resource,
        have: &BTreeMap<String, String>,
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: SiteProps = props(d)?;
        let source = p
            .source
            .clone()
            .ok_or_else(|| anyhow!("internal error: the site has no source directory"))?;
        let delta = fe::SiteDelta::new(Some(&json!(p.files)), Some(&json!(have)));
        let total = delta.upload.len();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let jobs: Vec<(String, String)> = delta
            .upload
            .iter()
            .map(|k| (k.clone(), p.files.get(k).cloned().unwrap_or_default()))
            .collect();
        let (source_dir, bucket, done) = (&source, &p.bucket, &done);
        futures::stream::iter(jobs)
            .map(|(key, want)| async move {
                upload(aws, bucket, source_dir, &key, &want).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 25 == 0 || n == total {
                    rep.status(&format!("uploaded {n}/{total} files"));
                }
                Ok::<_, anyhow::Error>(())
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let gone: Vec<ObjectIdentifier> = delta
            .delete
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<_, _>>()?;
        if !gone.is_empty() {
            delete_objects(aws, &p.bucket, gone).await?;
        }

        let changed: Vec<&String> = delta.upload.iter().chain(&delta.delete).collect();
        if let (Some(dist), false) = (&p.distribution_id, changed.is_empty() || have.is_empty()) {
            invalidate(aws, dist, &invalidation_paths(&changed), rep).await?;
        }
        Ok(Live {
            address: d.address.clone(),
            kind: SITE_KIND.into(),
            id: site_id(&p.bucket),
            props: json!({ "bucket": p.bucket, "files": p.files }),
            attrs: Map::new(),
        })
    }
}

fn site_id(bucket: &str) -> String {
    format!("{bucket}/site")
}

/// Uploads one file with its content type and caching, after checking it
/// is still the file the plan was made from.
async fn upload(aws: &Aws, bucket: &str, source: &str, key: &str, md5_hex: &str) -> Result<()> {
    let path = std::path::Path::new(source).join(key);
    let bytes = tokio::fs::read(&path)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    let digest = Md5::digest(&bytes);
    if hex::encode(&digest[..]) != md5_hex {
        bail!(
            "{} changed since the plan was made; run apply again to publish the current build",
            path.display()
        );
    }
    let (content_type, cache_control) = fe::object_headers(key);
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&digest[..]);
    retry_on(&["NoSuchBucket"], "uploading", VISIBLE, &Quiet, || async {
        aws.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.clone()))
            .content_type(&content_type)
            .cache_control(cache_control)
            .content_md5(&md5_b64)
            .send()
            .await
            .aws()
    })
    .await
    .with_context(|| format!("uploading {key}"))?;
    Ok(())
}

/// CloudFront paths for changed keys: URL-encoded, `/` for the root
/// document too, and `/*` when there are more than one invalidation takes.
fn invalidation_paths(keys: &[&String]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for k in keys {
        if k.as_str() == "index.html" {
            paths.push("/".into());
        }
        paths.push(format!("/{}", encode_path(k)));
    }
    paths.sort();
    paths.dedup();
    if paths.len() > MAX_INVALIDATION_PATHS {
        return vec!["/*".into()];
    }
    paths
}

/// Percent-encodes everything but unreserved characters and `/`
/// (`*` would be a wildcard).
fn encode_path(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn invalidate(aws: &Aws, dist: &str, paths: &[String], rep: &dyn StepReporter) -> Result<()> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    // Same reference for the SDK's retries of this call: CloudFront then
    // returns the same invalidation instead of making a second one.
    let mut h = sha2::Sha256::new();
    sha2::Digest::update(&mut h, paths.join("\n").as_bytes());
    let reference = format!(
        "infra-{}-{}",
        crate::engine::plan::now_rfc3339(),
        hex::encode(&sha2::Digest::finalize(h)[..8])
    );
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(paths.len() as i32)
                .set_items(Some(paths.to_vec()))
                .build()?,
        )
        .caller_reference(reference)
        .build()?;
    let out = aws
        .cloudfront
        .create_invalidation()
        .distribution_id(dist)
        .invalidation_batch(batch)
        .send()
        .await
        .aws()
        .with_context(|| {
            format!(
                "invalidating {} path(s) in distribution {dist}",
                paths.len()
            )
        })?;
    let id = out
        .invalidation()
        .map(|i| i.id().to_string())
        .unwrap_or_default();
    rep.status(&format!("invalidation {id}: {} path(s)", paths.len()));
    if aws.wait_deployed() && !id.is_empty() {
        wait_for(
            "the invalidation to complete",
            INVALIDATION_WAIT,
            rep,
            || async {
                let o = aws
                    .cloudfront
                    .get_invalidation()
                    .distribution_id(dist)
                    .id(&id)
                    .send()
                    .await
                    .aws()?;
                Ok(o.invalidation()
                    .is_some_and(|i| i.status() == "Completed")
                    .then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Every current object of a bucket, key -> ETag (an MD5 for single-part uploads).
async fn list_files(aws: &Aws, bucket: &str) -> Result<BTreeMap<String, String>> {
    let pages: Vec<_> = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut files = BTreeMap::new();
    for page in pages {
        let page = match page.aws() {
            Ok(p) => p,
            Err(e) if e.not_found() => return Ok(BTreeMap::new()),
            Err(e) => return Err(anyhow!(e).context(format!("listing the objects of {bucket}"))),
        };
        for o in page.contents() {
            if let Some(k) = o.key() {
                let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_string();
                files.insert(k.to_string(), etag);
            }
        }
    }
    Ok(files)
}

#[async_trait]
impl Kind for Site {
    fn name(&self) -> &'static str {
        SITE_KIND
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["bucket"],
            weight: 2,
            service: "s3",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        // Only the bucket and the files are compared: the local directory and
        // the distribution to invalidate are how to publish, not what.
        if let Some(o) = props.as_object_mut() {
            o.remove("source");
            o.remove("distribution_id");
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let found = self.0.buckets(aws).await?.to_vec();
        let mut out = Vec::new();
        // Only the frontend's bucket holds a published site.
        for f in found.iter().filter(|f| f.address == fe::BUCKET) {
            let files = list_files(aws, &f.name).await?;
            if files.is_empty() {
                continue;
            }
            out.push(Live {
                address: fe::SITE.into(),
                kind: SITE_KIND.into(),
                id: site_id(&f.name),
                props: json!({ "bucket": f.name, "files": files }),
                attrs: Map::new(),
            });
        }
        Ok(out)
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        self.publish(aws, d, &BTreeMap::new(), rep).await
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let have: BTreeMap<String, String> =
            serde_json::from_value(l.props["files"].clone()).unwrap_or_default();
        self.publish(aws, d, &have, rep).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let bucket = l.props["bucket"].as_str().unwrap_or_default();
        let files = list_files(aws, bucket).await?;
        let ids: Vec<ObjectIdentifier> = files
            .keys()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<_, _>>()?;
        let n = delete_objects(aws, bucket, ids).await?;
        Ok((n > 0).then(|| format!("unpublished {n} file(s) from {bucket}")))
    }
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

    #[test]
    fn policy_round_trips_and_detects_foreign_statements() {
        let arn = "arn:aws:s3:::b";
        let dist = "arn:aws:cloudfront::123456789012:distribution/E1";
        let doc = policy_document(arn, dist).to_string();
        let p = parse_policy("b", &doc);
        assert_eq!(p.bucket_arn, arn);
        assert_eq!(p.distribution_arn, dist);
        assert!(p.only_managed_statements);
        let mut v = policy_document(arn, dist);
        v["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}));
        assert!(!parse_policy("b", &v.to_string()).only_managed_statements);
    }

    #[test]
    fn invalidation_paths_are_encoded_and_bounded() {
        let keys = ["index.html".to_string(), "a b/c*.js".to_string()];
        let refs: Vec<&String> = keys.iter().collect();
        assert_eq!(
            invalidation_paths(&refs),
            vec!["/", "/a%20b/c%2A.js", "/index.html"]
        );
        let many: Vec<String> = (0..3001).map(|i| format!("f{i}")).collect();
        let refs: Vec<&String> = many.iter().collect();
        assert_eq!(invalidation_paths(&refs), vec!["/*"]);
    }
}
