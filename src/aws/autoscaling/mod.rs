//! EC2 Auto Scaling: the web groups (with their scaling policies and
//! scheduled actions), one file per kind.
//!
//! What the kinds share lives here: the tag filter, tag conversions, the
//! tag API, and the error Auto Scaling answers for a missing group.

pub mod group;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{Filter, Tag, TagDescription};

use super::errors::{AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};
use super::{ADDRESS_TAG, Aws, STACK_TAG};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(group::Group)]
}

/// The describe filter for this stack's groups (at `address`, when given).
pub fn filters(aws: &Aws, address: Option<&str>) -> Vec<Filter> {
    let mut f = vec![Filter::builder().name(format!("tag:{STACK_TAG}")).values(&aws.stack).build()];
    if let Some(a) = address {
        f.push(Filter::builder().name(format!("tag:{ADDRESS_TAG}")).values(a).build());
    }
    f
}

/// A group's tags as a map.
pub fn tag_map(t: &[TagDescription]) -> Tags {
    t.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// A map as the tags of the group named `group`.
pub fn tag_list(group: &str, t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                // The launch template tags instances and volumes.
                .propagate_at_launch(false)
                .build()
        })
        .collect()
}

/// "AutoScalingGroup name not found": Auto Scaling answers a missing group
/// with a ValidationError rather than a NotFound code.
pub fn group_missing(e: &AwsError) -> bool {
    e.not_found() || (e.is("ValidationError") && e.message.contains("not found"))
}

/// Tags of a group (CreateOrUpdateTags / DeleteTags), by the group's name.
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, group: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.autoscaling.create_or_update_tags().set_tags(Some(tag_list(group, tags))).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, group: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.autoscaling
            .delete_tags()
            .set_tags(Some(
                keys.iter()
                    .map(|k| Tag::builder().resource_id(group).resource_type("auto-scaling-group").key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .aws()
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_group_errors() {
        let e = AwsError {
            code: Some("ValidationError".into()),
            message: "AutoScalingGroup name not found - null".into(),
            status: Some(400),
            no_response: false,
        };
        assert!(group_missing(&e));
    }
}
