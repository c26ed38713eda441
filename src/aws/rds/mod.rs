//! RDS: the DB subnet group and the DB instance, one file per kind.
//!
//! What both kinds share lives here: the tag conversions and tag API (RDS
//! tags a resource by its ARN), the adoption of a resource a lost create
//! answer made, the timestamp of final backups.

pub mod db_instance;
pub mod db_subnet_group;

use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_rds::types::Tag;

use super::Aws;
use super::errors::{AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(db_subnet_group::DbSubnetGroup), Box::new(db_instance::DbInstance)]
}

/// Creating, modifying or deleting an instance: 15+ minutes on AWS, more for
/// big storage or Multi-AZ conversions.
pub const LONG: Duration = Duration::from_secs(90 * 60);
/// How long a just-created resource may take to become visible to other calls.
pub const VISIBLE: Duration = Duration::from_secs(120);

/// RDS tags as a map.
pub fn tag_map(t: &[Tag]) -> Tags {
    t.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// A map as RDS tags.
pub fn tag_list(t: &Tags) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags of any RDS resource, by ARN (AddTagsToResource / RemoveTagsFromResource).
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, arn: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.rds.add_tags_to_resource().resource_name(arn).set_tags(Some(tag_list(tags))).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.rds
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .aws()
            .map(|_| ())
    }
}

/// After a create refused with the code `exists` (the name is taken): the
/// resource an earlier attempt of this very create made (its answer lost),
/// when `mine` finds it at this address; else an error saying the name
/// belongs to something else. Any other error is returned as it is.
pub async fn adopt<T>(
    err: anyhow::Error, exists: &str, what: &str, name: &str, aws: &Aws,
    mine: impl std::future::Future<Output = Result<Option<T>>>,
) -> Result<T> {
    if !err.downcast_ref::<AwsError>().is_some_and(|e| e.is(exists)) {
        return Err(err);
    }
    match mine.await? {
        Some(found) => Ok(found),
        None => bail!("{what} named {name} already exists and is not part of stack {}; delete or rename it", aws.stack),
    }
}

/// A unique, sortable suffix for final backups: `20240131-235959`.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!("[year][month][day]-[hour][minute][second]"))
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_subnet_group_is_not_found() {
        let e = |code: &str| AwsError {
            code: Some(code.into()),
            message: String::new(),
            status: Some(400),
            no_response: false,
        };
        assert!(e("DBSubnetGroupNotFoundFault").not_found());
        assert!(e("DBInstanceNotFound").not_found());
        assert!(!e("InvalidDBSubnetGroupStateFault").not_found());
    }
}
