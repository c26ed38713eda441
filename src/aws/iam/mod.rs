//! IAM: the roles of the stack's functions and instances, and the instance
//! profiles that give instances theirs, one file per kind.
//! What the kinds of the service share lives here: the stack's role path,
//! role ARNs, tag conversions and the tag API, policy document decoding.
//!
//! IAM is global: roles are read under the stack's path
//! (`/infra/<stack>/<region>/`), so the same stack deployed in two regions
//! never sees (and deletes) the other's roles.

pub mod instance_profile;
pub mod role;

use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde_json::{Value, json};

use super::Aws;
use super::errors::{AwsError, AwsResultExt};
use super::tags::{TagApi, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(role::Role), Box::new(instance_profile::InstanceProfile)]
}

/// What a plan reads of IAM, once, for the role and instance profile kinds
/// ([`inventory`]).
pub struct Inventory {
    /// The roles under the stack's path.
    pub roles: Vec<aws_sdk_iam::types::Role>,
    /// The instance profiles under the stack's path.
    pub profiles: Vec<aws_sdk_iam::types::InstanceProfile>,
    /// The account's role details (tags, policies, the profiles each role
    /// is in), where they are cheaper than reading role by role.
    pub details: Option<Vec<aws_sdk_iam::types::RoleDetail>>,
}

/// Cache key of the plan's [`Inventory`] ([`Aws::cached`]).
const INVENTORY: &str = "iam.inventory";

/// The roles and profiles under the stack's path, listed side by side, and
/// the account's role details when two or more of them would otherwise be
/// read one by one (`role::details`). Read once a plan and shared; a write
/// to a role or a profile drops it ([`forget_inventory`]).
pub async fn inventory(aws: &Aws) -> Result<std::sync::Arc<Inventory>> {
    aws.cached(INVENTORY, || async {
        let path = stack_path(aws);
        let (roles, profiles) =
            tokio::try_join!(async { crate::aws::find::paginated!(aws.iam.list_roles().path_prefix(&path)) }, async {
                crate::aws::find::paginated!(aws.iam.list_instance_profiles().path_prefix(&path))
            },)?;
        // The prefix filter may be ignored by some implementations.
        let roles: Vec<_> = roles.into_iter().filter(|r| r.path() == path).collect();
        let profiles: Vec<_> = profiles.into_iter().filter(|p| p.path() == path).collect();
        let details = if roles.len() + profiles.len() >= 2 { role::details(aws).await? } else { None };
        Ok(Inventory { roles, profiles, details })
    })
    .await
}

/// Drops the plan's [`Inventory`]: a role or a profile was written.
pub fn forget_inventory(aws: &Aws) {
    aws.forget(INVENTORY);
}

/// How long a just-created role may take to be visible to IAM's own calls.
pub const VISIBLE: Duration = Duration::from_secs(60);

/// The stack's role path, from the stack and region (the model builds the same).
pub fn stack_path(aws: &Aws) -> String {
    format!("/infra/{}/{}/", aws.stack, aws.region)
}

/// The ARN of the role `name` under `path` (IAM ARNs have no region).
pub async fn role_arn(aws: &Aws, path: &str, name: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:iam::{account}:role{path}{name}"))
}

/// IAM tags as a map.
pub fn tag_map(t: &[Tag]) -> Tags {
    t.iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()
}

/// A map as IAM tags.
pub fn tag_list(t: &Tags) -> Vec<Tag> {
    t.iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

/// Decodes the URL encoding IAM applies to policy documents.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("-"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document as JSON, whether the API returned it URL-encoded
/// (real IAM) or plain.
pub fn policy_json(doc: &str) -> Value {
    serde_json::from_str(doc).or_else(|_| serde_json::from_str(&percent_decode(doc))).unwrap_or_else(|_| json!(doc))
}

/// Tags of a role, by its name.
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, id: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.iam.tag_role().role_name(id).set_tags(Some(tag_list(tags))).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, id: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.iam.untag_role().role_name(id).set_tag_keys(Some(keys.to_vec())).send().await.aws().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_iam_documents() {
        assert_eq!(percent_decode("%7B%22a%22%3A%20%22b%2Bc%22%7D"), r#"{"a": "b+c"}"#);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(policy_json(r#"{"x":1}"#), json!({"x": 1}));
        assert_eq!(policy_json("%7B%22x%22%3A1%7D"), json!({"x": 1}));
    }
}
