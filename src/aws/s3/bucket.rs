//! The site bucket: private (public access blocked), owner-enforced,
//! encrypted, versioned. Never taken over when this stack did not create it;
//! emptied (every version) before it is deleted.

use std::sync::OnceLock;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ObjectIdentifier, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{BUCKETS, VISIBLE, bucket_tags, delete_objects, in_buckets, put_tags, s3_tags, when_visible};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext, StepReporter};
use crate::engine::resource::Props;

/// Stands for the caller's account id in a derived bucket name until the
/// provider knows it (validation makes no network call; the provider
/// substitutes it from STS). `{` cannot appear in a bucket name.
pub const ACCOUNT_PLACEHOLDER: &str = "{account}";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketProps {
    /// The name; may hold [`ACCOUNT_PLACEHOLDER`].
    pub bucket: String,
    /// All four public-access-block settings on.
    pub block_public_access: bool,
    pub object_ownership: String,
    /// Default encryption algorithm (`AES256` keeps ETags equal to MD5s).
    pub encryption: String,
    pub versioning: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for BucketProps {
    const KIND: &'static str = "s3.bucket";
}

/// The kind; it keeps the account id it read, which a derived bucket name
/// holds (see [`ACCOUNT_PLACEHOLDER`]), for `normalize`.
#[derive(Default)]
pub struct Bucket {
    account: OnceLock<String>,
}

/// `arn:<partition>:s3:::<bucket>`.
fn bucket_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:s3:::{name}")
}

/// The regional endpoint name CloudFront reaches the bucket by.
fn regional_domain_name(name: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("{name}.s3.{region}.{suffix}")
}

/// The bucket with the attributes others reference.
async fn current(aws: &Aws, address: String, props: BucketProps) -> Result<Current<BucketProps>> {
    let (_, partition) = aws.identity().await?;
    let name = props.bucket.clone();
    Ok(Current::new(address, &name, props)
        .with("name", &name)
        .with("arn", bucket_arn(partition, &name))
        .with("regional_domain_name", regional_domain_name(&name, &aws.region)))
}

/// The settings of a live bucket.
async fn read(aws: &Aws, name: String, tags: Tags) -> Result<BucketProps> {
    let (pab, own, enc, ver) = tokio::try_join!(
        async {
            match aws.s3.get_public_access_block().bucket(&name).send().await.aws() {
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
            match aws.s3.get_bucket_ownership_controls().bucket(&name).send().await.aws() {
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
            match aws.s3.get_bucket_encryption().bucket(&name).send().await.aws() {
                Ok(o) => Ok(o
                    .server_side_encryption_configuration()
                    .and_then(|c| c.rules().first())
                    .and_then(|r| r.apply_server_side_encryption_by_default())
                    .map(|d| d.sse_algorithm().as_str().to_string())
                    .unwrap_or_else(|| "none".into())),
                Err(e) if e.is("ServerSideEncryptionConfigurationNotFoundError") => Ok("none".into()),
                Err(e) => Err(anyhow!(e).context("reading the default encryption")),
            }
        },
        async {
            aws.s3
                .get_bucket_versioning()
                .bucket(&name)
                .send()
                .await
                .aws()
                .map(|o| o.status() == Some(&BucketVersioningStatus::Enabled))
                .map_err(|e| anyhow!(e).context("reading the versioning"))
        },
    )?;
    Ok(BucketProps {
        bucket: name,
        block_public_access: pab,
        object_ownership: own,
        encryption: enc,
        versioning: ver,
        tags,
    })
}

/// Applies every setting that differs from `old` (all of them without one).
async fn configure(aws: &Aws, name: &str, p: &BucketProps, old: Option<&BucketProps>) -> Result<()> {
    if old.is_none_or(|o| o.block_public_access != p.block_public_access) {
        let on = p.block_public_access;
        let conf = PublicAccessBlockConfiguration::builder()
            .block_public_acls(on)
            .ignore_public_acls(on)
            .block_public_policy(on)
            .restrict_public_buckets(on)
            .build();
        when_visible("blocking public access", || async {
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
        when_visible("setting object ownership", || async {
            aws.s3.put_bucket_ownership_controls().bucket(name).ownership_controls(conf.clone()).send().await.aws()
        })
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
        when_visible("setting default encryption", || async {
            aws.s3
                .put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(conf.clone())
                .send()
                .await
                .aws()
        })
        .await?;
    }
    if old.is_none_or(|o| o.versioning != p.versioning) {
        let status = if p.versioning { BucketVersioningStatus::Enabled } else { BucketVersioningStatus::Suspended };
        let conf = VersioningConfiguration::builder().status(status).build();
        when_visible("setting versioning", || async {
            aws.s3.put_bucket_versioning().bucket(name).versioning_configuration(conf.clone()).send().await.aws()
        })
        .await?;
    }
    Ok(())
}

/// Creates the bucket `name` for `address`, or adopts it when an earlier
/// attempt of this stack made it; refuses any other existing bucket.
async fn create_bucket(
    aws: &Aws, address: &str, name: &str, p: &BucketProps, t: &Tags, rep: &dyn StepReporter,
) -> Result<()> {
    let help = "set `frontend.bucket_name` to another name (bucket names are global to AWS)";
    // Never take over a bucket this stack did not create: destroy empties it.
    match aws.s3.head_bucket().bucket(name).send().await.aws() {
        Ok(_) => {
            let have = bucket_tags(aws, name).await.map_err(|e| anyhow!(e))?;
            if tags::owner(aws, &have) != Some(address) {
                bail!(
                    "bucket {name} already exists in this account and does not belong to {address} of stack {}; {help}",
                    aws.stack
                );
            }
        }
        Err(e) if e.status == Some(404) || e.not_found() => {
            let mut conf = CreateBucketConfiguration::builder().set_tags(Some(s3_tags(t)?));
            // us-east-1 is the default location and must not be named.
            if aws.region != "us-east-1" {
                conf = conf.location_constraint(BucketLocationConstraint::from(aws.region.as_str()));
            }
            let conf = conf.build();
            // OperationAborted: a conflicting operation on this name is
            // still in progress (a bucket of this name just deleted).
            let r = retry_on(&["OperationAborted"], &format!("creating bucket {name}"), VISIBLE, rep, || async {
                aws.s3
                    .create_bucket()
                    .bucket(name)
                    .object_ownership(ObjectOwnership::from(p.object_ownership.as_str()))
                    .create_bucket_configuration(conf.clone())
                    .send()
                    .await
                    .aws()
            })
            .await;
            let code = |e: &anyhow::Error, c: &str| e.downcast_ref::<AwsError>().is_some_and(|a| a.is(c));
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
    Ok(())
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
            .or_absent()
        {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(removed),
            Err(e) => return Err(anyhow!(e).context(format!("listing the objects of {name}"))),
        };
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(page.delete_markers().iter().map(|m| (m.key(), m.version_id())))
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
            rep.status(&format!("emptying the bucket: {removed} object versions deleted"));
        }
        if page.is_truncated() != Some(true) {
            return Ok(removed);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}

#[async_trait]
impl Kind for Bucket {
    type Props = BucketProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["bucket"],
            weight: 2,
            // Its content is a build artefact, published again on apply.
            holds_data: false,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        // A derived name holds the account id, known once the stack was read.
        if let (Some(Value::String(b)), Some(account)) = (props.get_mut("bucket"), self.account.get()) {
            *b = b.replace(ACCOUNT_PLACEHOLDER, account);
        }
    }

    /// Storage and requests, nothing at rest.
    fn cost(&self, _props: &BucketProps, prices: &Prices) -> Option<Cost> {
        Some(prices.usage(&[
            (&["s3", "standard", "gb_month"], "per GB-month"),
            (&["s3", "standard", "get_per_10k"], "per 10K GETs"),
        ]))
    }

    /// A bucket without its public access block may be made public by a
    /// policy or an ACL.
    fn widens(&self, before: Option<&BucketProps>, after: &BucketProps) -> Vec<String> {
        if !after.block_public_access && before.is_none_or(|b| b.block_public_access) {
            vec!["its public access block is off: a bucket policy or ACL may make it public".into()]
        } else {
            Vec::new()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<BucketProps>>> {
        let (account, _) = aws.identity().await?;
        let _ = self.account.set(account.clone());
        in_buckets(aws, address, str::to_string, |name, owner| async move {
            let props = read(aws, name, owner.tags).await?;
            Ok(Some(current(aws, owner.address, props).await?))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired<BucketProps>, ctx: &StepContext<'_>) -> Result<Current<BucketProps>> {
        aws.forget(BUCKETS);
        let mut p = d.props.clone();
        let (account, _) = aws.identity().await?;
        p.bucket = p.bucket.replace(ACCOUNT_PLACEHOLDER, account);
        let name = p.bucket.clone();
        let t = aws.tags_for(&d.address, &p.tags);
        create_bucket(aws, &d.address, &name, &p, &t, ctx).await?;
        // Tags again, separately: endpoints that ignore tags in CreateBucket
        // would otherwise leave a bucket this stack can never find.
        put_tags(aws, &name, &t).await?;
        configure(aws, &name, &p, None).await?;
        current(aws, d.address.clone(), p).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<BucketProps>, l: &Current<BucketProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<BucketProps>> {
        let mut p = d.props.clone();
        p.bucket = l.id.clone();
        configure(aws, &l.id, &p, Some(&l.props)).await?;
        if p.tags != l.props.tags {
            put_tags(aws, &l.id, &aws.tags_for(&d.address, &p.tags)).await?;
        }
        Ok(l.clone().with_props(p))
    }

    async fn delete(&self, aws: &Aws, l: &Current<BucketProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.forget(BUCKETS);
        let name = &l.id;
        // Objects written while emptying (a racing deploy) make the delete
        // fail with BucketNotEmpty: empty again, a bounded number of times.
        for attempt in 1..=5 {
            let removed = empty_bucket(aws, name, ctx).await?;
            match aws.s3.delete_bucket().bucket(name).send().await.aws().or_absent() {
                Ok(_) => {
                    return Ok(
                        (removed > 0).then(|| format!("emptied {name} ({removed} object versions) before deleting it"))
                    );
                }
                Err(e) if e.is("BucketNotEmpty") && attempt < 5 => {
                    ctx.status("bucket not empty yet; emptying again");
                }
                Err(e) => return Err(anyhow!(e).context(format!("deleting bucket {name}"))),
            }
        }
        unreachable!("the last attempt returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(block_public_access: bool) -> BucketProps {
        BucketProps {
            bucket: "webapp-site".into(),
            block_public_access,
            object_ownership: "BucketOwnerEnforced".into(),
            encryption: "AES256".into(),
            versioning: true,
            tags: Tags::new(),
        }
    }

    #[test]
    fn turning_the_public_access_block_off_widens_access() {
        assert_eq!(Bucket::default().widens(Some(&bucket(true)), &bucket(false)).len(), 1);
        assert_eq!(Bucket::default().widens(None, &bucket(false)).len(), 1);
        assert!(Bucket::default().widens(None, &bucket(true)).is_empty());
        assert!(Bucket::default().widens(Some(&bucket(false)), &bucket(true)).is_empty());
    }
}
