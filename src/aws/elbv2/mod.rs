//! Elastic Load Balancing v2: the Application Load Balancer, the target
//! groups of the web groups, and the listeners (their rules are properties
//! of the listener, so drift in a rule shows as an update of its listener),
//! one file per kind.
//!
//! ELBv2 has no tag filter on its describe calls: a read lists the region's
//! load balancers (or target groups) and asks for their tags in batches of
//! 20, the API's maximum ([`tags_of`]); `find::owned` keeps those of this
//! stack.

pub mod listener;
pub mod load_balancer;
pub mod target_group;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::Tag;

use super::Aws;
use super::errors::{Absent, AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(load_balancer::LoadBalancer), Box::new(target_group::TargetGroup), Box::new(listener::Listener)]
}

/// How long something just created may take to be visible to other calls.
pub const VISIBLE: Duration = Duration::from_secs(120);

/// A map as ELBv2 tags.
pub fn tag_list(t: &Tags) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn tag_map(t: &[Tag]) -> Tags {
    t.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// The part of an ARN after `marker` (`loadbalancer/` -> `app/name/id`),
/// which CloudWatch metrics and scaling policies use as identifiers.
pub fn arn_suffix(arn: &str, marker: &str) -> String {
    arn.split_once(marker).map(|(_, s)| s.to_string()).unwrap_or_default()
}

/// The tags of each of `arns`, from `describe_tags` in batches of 20 (run
/// concurrently); an ARN gone since it was listed has none.
pub async fn tags_of(aws: &Aws, arns: Vec<String>) -> Result<HashMap<String, Tags>> {
    let batches = arns.chunks(20).map(|chunk| async move {
        let r = aws.elbv2.describe_tags().set_resource_arns(Some(chunk.to_vec())).send().await.aws();
        let descs = match r {
            Ok(o) => o.tag_descriptions().to_vec(),
            // One of them vanished since it was listed: ask one by one.
            Err(e) if e.not_found() => {
                let mut v = Vec::new();
                for arn in chunk {
                    if let Some(o) = aws.elbv2.describe_tags().resource_arns(arn).send().await.aws().or_absent()? {
                        v.extend(o.tag_descriptions().iter().cloned());
                    }
                }
                v
            }
            Err(e) => return Err(anyhow!(e).context("reading load balancing tags")),
        };
        Ok::<_, anyhow::Error>(descs)
    });
    Ok(futures::future::try_join_all(batches)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|d| Some((d.resource_arn()?.to_string(), tag_map(d.tags()))))
        .collect())
}

/// The tags `tags_of` read for `arn`.
pub fn tags_at(tags: &HashMap<String, Tags>, arn: Option<&str>) -> Tags {
    arn.and_then(|a| tags.get(a)).cloned().unwrap_or_default()
}

/// Tags of any ELBv2 resource (AddTags / RemoveTags), by ARN.
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, id: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.elbv2.add_tags().resource_arns(id).set_tags(Some(tag_list(tags))).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, id: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.elbv2.remove_tags().resource_arns(id).set_tag_keys(Some(keys.to_vec())).send().await.aws().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_suffixes() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/webapp-alb/50dc6c495c0c9188";
        assert_eq!(arn_suffix(lb, ":loadbalancer/"), "app/webapp-alb/50dc6c495c0c9188");
    }
}
