//! DynamoDB: tables (with their indexes, stream, point-in-time recovery,
//! TTL, encryption key and deletion protection).
//!
//! What the service's kinds share lives here: the tag conversions and the
//! tag API (DynamoDB tags a table by its ARN).

pub mod table;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::Tag;

use super::Aws;
use super::errors::{AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(table::Table)]
}

/// A map as DynamoDB tags.
pub fn tag_list(t: &Tags) -> Result<Vec<Tag>, aws_sdk_dynamodb::error::BuildError> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Every tag of the resource `arn` (ListTagsOfResource, page by page).
pub async fn tags_of(aws: &Aws, arn: &str) -> Result<Tags, AwsError> {
    let mut out = Tags::new();
    let mut token: Option<String> = None;
    loop {
        let page =
            aws.dynamodb.list_tags_of_resource().resource_arn(arn).set_next_token(token.clone()).send().await.aws()?;
        for t in page.tags() {
            out.insert(t.key().to_string(), t.value().to_string());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Tags of any DynamoDB resource, by ARN (TagResource / UntagResource).
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        // Key and value are both set: building cannot fail.
        let tags = tag_list(tags).map_err(|e| AwsError {
            code: None,
            message: e.to_string(),
            status: None,
            no_response: false,
        })?;
        aws.dynamodb.tag_resource().resource_arn(arn).set_tags(Some(tags)).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.dynamodb.untag_resource().resource_arn(arn).set_tag_keys(Some(keys.to_vec())).send().await.aws().map(|_| ())
    }
}
