//! The bucket policy: this stack's distribution, and only it, may read the
//! bucket. It has no tags: it is found through its bucket, at the bucket's
//! address + `_policy` ([`address_of`]).

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{in_buckets, when_visible};
use crate::aws::Aws;
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::kind::{Current, Desired, Kind};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketPolicyProps {
    /// The bucket's name.
    pub bucket: Ref,
    pub bucket_arn: Ref,
    /// The only distribution that may read.
    pub distribution_arn: Ref,
    /// The policy holds exactly the statements below (no others added by hand).
    pub only_managed_statements: bool,
}

impl Props for BucketPolicyProps {
    const KIND: &'static str = "s3.bucket_policy";
}

pub struct BucketPolicy;

/// Address of a bucket's policy: the bucket's address + `_policy`
/// (`web.bucket` -> `web.bucket_policy`).
pub fn address_of(bucket_address: &str) -> String {
    format!("{bucket_address}_policy")
}

fn policy_id(bucket: &str) -> String {
    format!("{bucket}/policy")
}

const READ_SID: &str = "AllowCloudFrontRead";
const TLS_SID: &str = "DenyInsecureTransport";
/// The bucket policy: this distribution, and only it (by `AWS:SourceArn`),
/// may read objects, and every request without TLS is denied, whoever
/// makes it (S3 User Guide, "Security best practices for Amazon S3":
/// enforce encryption of data in transit; Security Hub S3.5). An
/// S3-compatible endpoint served over plain HTTP is the tests' to
/// accommodate, never the product's.
pub fn policy_document(bucket_arn: &str, distribution_arn: &str) -> Value {
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
            tls_only(bucket_arn),
        ],
    })
}

/// The statement that denies every request to `bucket_arn` and its objects
/// made without TLS.
pub fn tls_only(bucket_arn: &str) -> Value {
    json!({
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    })
}

/// Reads our statement back from a live policy document.
fn parse_policy(bucket: &str, doc: &str) -> BucketPolicyProps {
    let v: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let statements: Vec<Value> = match &v["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => vec![],
    };
    let ours = statements.iter().find(|s| s["Sid"] == READ_SID);
    let bucket_arn =
        ours.and_then(|s| s["Resource"].as_str()).map(|r| r.trim_end_matches("/*").to_string()).unwrap_or_default();
    let distribution_arn =
        ours.and_then(|s| s["Condition"]["StringEquals"]["AWS:SourceArn"].as_str()).unwrap_or_default().to_string();
    let only = v == policy_document(&bucket_arn, &distribution_arn);
    BucketPolicyProps {
        bucket: bucket.into(),
        bucket_arn: bucket_arn.into(),
        distribution_arn: distribution_arn.into(),
        only_managed_statements: only,
    }
}

#[async_trait]
impl Kind for BucketPolicy {
    type Props = BucketPolicyProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["bucket"], ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<BucketPolicyProps>>> {
        in_buckets(aws, address, address_of, |name, owner| async move {
            let got = aws
                .s3
                .get_bucket_policy()
                .bucket(&name)
                .send()
                .await
                .aws()
                .or_absent()
                .with_context(|| format!("reading the policy of {name}"))?;
            Ok(got.map(|out| {
                let p = parse_policy(&name, out.policy().unwrap_or_default());
                Current::new(owner.address, policy_id(&name), p)
            }))
        })
        .await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<BucketPolicyProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<BucketPolicyProps>> {
        let mut p = d.props.clone();
        let bucket = p.bucket.get()?.clone();
        let doc = policy_document(p.bucket_arn.get()?, p.distribution_arn.get()?).to_string();
        when_visible("setting the bucket policy", || async {
            aws.s3.put_bucket_policy().bucket(&bucket).policy(&doc).send().await.aws()
        })
        .await?;
        p.only_managed_statements = true;
        Ok(Current::new(d.address.clone(), policy_id(&bucket), p))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<BucketPolicyProps>, _l: &Current<BucketPolicyProps>, _changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<BucketPolicyProps>> {
        self.create(aws, d, ctx).await
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<BucketPolicyProps>, _ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        let bucket = l.props.bucket.get()?;
        aws.s3
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .aws()
            .or_absent()
            .with_context(|| format!("deleting the policy of {bucket}"))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_and_detects_foreign_statements() {
        let arn = "arn:aws:s3:::b";
        let dist = "arn:aws:cloudfront::123456789012:distribution/E1";
        let doc = policy_document(arn, dist).to_string();
        let p = parse_policy("b", &doc);
        assert_eq!(p.bucket_arn.get().unwrap(), arn);
        assert_eq!(p.distribution_arn.get().unwrap(), dist);
        assert!(p.only_managed_statements);
        let mut v = policy_document(arn, dist);
        v["Statement"].as_array_mut().unwrap().push(json!({"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}));
        assert!(!parse_policy("b", &v.to_string()).only_managed_statements);
    }
}
