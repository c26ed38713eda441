//! Tags: the user's (in props), plus ours (`infra:stack`, `infra:address`),
//! which are set at creation, never shown as props, and never removed.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use async_trait::async_trait;

use super::errors::AwsError;
use super::{ADDRESS_TAG, Aws, STACK_TAG};

pub type Tags = BTreeMap<String, String>;

/// Live tags as props: ours removed.
/// The strings of a resource's props that may name another resource (an id,
/// an ARN), for the order of deletes: all but those in tag maps (`tags`,
/// `instance_tags`), which are the user's labels. A `Name` tag equal to
/// another resource's identifier is no use of it.
pub fn mentions(props: &serde_json::Value) -> Vec<&str> {
    fn walk<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "tags" | "instance_tags"))
                .for_each(|(_, x)| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(props, &mut out);
    out
}

pub fn visible(all: Tags) -> Tags {
    all.into_iter().filter(|(k, _)| !k.starts_with("infra:") && !k.starts_with("aws:")).collect()
}

/// (stack, address) of a tagged resource, if it is ours and of this stack.
pub fn owner<'a>(aws: &Aws, all: &'a Tags) -> Option<&'a str> {
    (all.get(STACK_TAG).map(String::as_str) == Some(aws.stack.as_str()))
        .then(|| all.get(ADDRESS_TAG).map(String::as_str))
        .flatten()
}

/// Tags to set (added or changed) and keys to remove, from `old` to `new`.
pub fn delta(old: &Tags, new: &Tags) -> (Tags, Vec<String>) {
    let set = new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let remove = old.keys().filter(|k| !new.contains_key(*k) && !k.starts_with("infra:")).cloned().collect();
    (set, remove)
}

/// How one service tags and untags a resource: the only part of a tag
/// change that differs between services (see [`sync`]).
#[async_trait]
pub trait TagApi: Sync {
    /// Adds or overwrites `tags` on the resource `id`.
    async fn tag(&self, aws: &Aws, id: &str, tags: &Tags) -> Result<(), AwsError>;
    /// Removes the tags named `keys` from the resource `id`.
    async fn untag(&self, aws: &Aws, id: &str, keys: &[String]) -> Result<(), AwsError>;
}

/// Moves the user's tags on `id` from `old` to `new` (live and desired
/// props); our own `infra:` tags are never touched.
pub async fn sync(api: &dyn TagApi, aws: &Aws, id: &str, old: &Tags, new: &Tags) -> Result<()> {
    let (set, remove) = delta(old, new);
    if !set.is_empty() {
        api.tag(aws, id, &set).await.context("tagging")?;
    }
    if !remove.is_empty() {
        api.untag(aws, id, &remove).await.context("untagging")?;
    }
    Ok(())
}

/// Declares `$name`, the [`TagApi`] of a service whose TagResource takes the
/// resource's ARN and a map of tags and whose UntagResource takes the ARN and
/// the keys (Lambda, CloudWatch Logs, API Gateway): between those services
/// only the client and the name of the ARN's setter differ, so the two calls
/// are written once here.
macro_rules! arn_tag_api {
    ($(#[$doc:meta])* $name:ident, $client:ident, $arn:ident) => {
        $(#[$doc])*
        pub struct $name;

        #[async_trait::async_trait]
        impl $crate::aws::tags::TagApi for $name {
            async fn tag(
                &self,
                aws: &$crate::aws::Aws,
                id: &str,
                tags: &$crate::aws::tags::Tags,
            ) -> Result<(), $crate::aws::errors::AwsError> {
                use $crate::aws::errors::AwsResultExt as _;
                aws.$client
                    .tag_resource()
                    .$arn(id)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()
                    .map(|_| ())
            }

            async fn untag(
                &self,
                aws: &$crate::aws::Aws,
                id: &str,
                keys: &[String],
            ) -> Result<(), $crate::aws::errors::AwsError> {
                use $crate::aws::errors::AwsResultExt as _;
                aws.$client.untag_resource().$arn(id).set_tag_keys(Some(keys.to_vec())).send().await.aws().map(|_| ())
            }
        }
    };
}
pub(crate) use arn_tag_api;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_are_not_mentions_of_other_resources() {
        let props = serde_json::json!({
            "role_arn": "arn:aws:iam::1:role/r",
            "tags": { "Name": "webapp-db" },
            "instances": { "instance_tags": { "Name": "sg-1" }, "security_group_ids": ["sg-2"] }
        });
        let mut m = mentions(&props);
        m.sort_unstable();
        assert_eq!(m, ["arn:aws:iam::1:role/r", "sg-2"]);
    }
}
