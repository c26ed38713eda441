//! EC2: the networking (VPC, subnets, internet gateway, route tables with
//! their routes and subnet associations, Elastic IPs, NAT gateways and
//! security groups with their rules) and the web groups' launch templates
//! (with the plan-time image look-ups), one file per kind. Untaggable parts
//! (routes, associations, rules) are properties of their taggable parent, so
//! drift in them shows as an update of the parent.
//!
//! What every EC2 kind shares lives here: the tag filter, tag conversions,
//! the tag API, deterministic client tokens.

pub mod default_network_acl;
pub mod default_security_group;
pub mod eip;
pub mod flow_log;
pub mod internet_gateway;
pub mod launch_template;
pub mod nat_gateway;
pub mod network_acl;
pub mod route_table;
pub mod security_group;
pub mod subnet;
pub mod vpc;
pub mod vpc_endpoint;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};

use super::Aws;
use super::errors::{AwsError, AwsResultExt};
use super::kind::DynKind;
use super::tags::{TagApi, Tags};

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn DynKind>> {
    vec![
        Box::new(vpc::Vpc),
        Box::new(subnet::Subnet),
        Box::new(internet_gateway::InternetGateway),
        Box::new(route_table::RouteTable),
        Box::new(eip::Eip),
        Box::new(nat_gateway::NatGateway),
        Box::new(security_group::SecurityGroup),
        Box::new(vpc_endpoint::VpcEndpoint),
        Box::new(flow_log::FlowLog),
        Box::new(default_security_group::DefaultSecurityGroup),
        Box::new(network_acl::NetworkAcl),
        Box::new(default_network_acl::DefaultNetworkAcl),
        Box::new(launch_template::LaunchTemplate),
    ]
}

/// How long to wait for network interfaces and other dependants to drain on
/// delete (a deleted VPC Lambda function's interfaces take up to ~20 min on
/// AWS to be released).
pub const DRAIN: Duration = Duration::from_secs(40 * 60);
/// How long a just-created resource may take to become visible to other calls.
pub const VISIBLE: Duration = Duration::from_secs(120);

/// The describe filter for this stack's resources (at `address`, when given).
pub fn filters(aws: &Aws, address: Option<&str>) -> Vec<Filter> {
    let mut f = vec![Filter::builder().name(format!("tag:{}", super::STACK_TAG)).values(&aws.stack).build()];
    if let Some(a) = address {
        f.push(Filter::builder().name(format!("tag:{}", super::ADDRESS_TAG)).values(a).build());
    }
    f
}

/// EC2 tags as a map.
pub fn tag_map(t: &[Tag]) -> Tags {
    t.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

/// A map as EC2 tags.
pub fn tag_list(t: &Tags) -> Vec<Tag> {
    t.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Tags applied in the create call itself (a resource is never untagged).
pub fn tag_spec(rt: ResourceType, t: &Tags) -> TagSpecification {
    TagSpecification::builder().resource_type(rt).set_tags(Some(tag_list(t))).build()
}

pub fn boolean(b: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(b).build()
}

/// A deterministic client token for an idempotent create: same stack,
/// address and inputs give the same token, so a retried call is a no-op,
/// and a replacement with other inputs gets a new one.
pub fn client_token(aws: &Aws, address: &str, inputs: &[&str]) -> String {
    token(&aws.stack, address, inputs)
}

fn token(stack: &str, address: &str, inputs: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{stack}/{address}"));
    for i in inputs {
        h.update(b"/");
        h.update(i.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// Tags of any EC2 resource (CreateTags / DeleteTags).
pub struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, id: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.ec2.create_tags().resources(id).set_tags(Some(tag_list(tags))).send().await.aws().map(|_| ())
    }

    async fn untag(&self, aws: &Aws, id: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(keys.iter().map(|k| Tag::builder().key(k).build()).collect()))
            .send()
            .await
            .aws()
            .map(|_| ())
    }
}

/// The stack's network ACLs (its VPC's default ACL included once adopted),
/// listed once per read and shared by the ACL kinds.
pub async fn stack_acls(aws: &Aws) -> anyhow::Result<std::sync::Arc<Vec<aws_sdk_ec2::types::NetworkAcl>>> {
    aws.cached("ec2.network_acls", || async {
        Ok(super::find::paginated!(aws.ec2.describe_network_acls().set_filters(Some(filters(aws, None))))?)
    })
    .await
}

/// Gives back a VPC's default resource (security group, network ACL) the
/// stack adopted: it cannot be deleted, so it is untagged (the VPC's
/// deletion takes it along); one already gone is fine.
pub async fn hand_back(aws: &Aws, id: &str, tags: &Tags, what: &str) -> anyhow::Result<Option<String>> {
    let mut keys: Vec<String> = tags.keys().cloned().collect();
    keys.extend([super::STACK_TAG.to_string(), super::ADDRESS_TAG.to_string()]);
    match Tagging.untag(aws, id, &keys).await {
        Err(e) if !e.not_found() => Err(anyhow::anyhow!(e).context(format!("untagging the {what}"))),
        _ => Ok(None),
    }
}

/// The stack's security groups (its VPC's default group included), listed
/// once per read and shared by the group kinds.
pub async fn stack_groups(aws: &Aws) -> anyhow::Result<std::sync::Arc<Vec<aws_sdk_ec2::types::SecurityGroup>>> {
    aws.cached("ec2.security_groups", || async {
        Ok(super::find::paginated!(aws.ec2.describe_security_groups().set_filters(Some(filters(aws, None))))?)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The NAT gateway's token covers its subnet and its Elastic IP: a
    /// retry is the same request, a replacement with a new allocation in the
    /// same subnet a new one (AWS refuses a reused token whose request
    /// differs: IdempotentParameterMismatch).
    #[test]
    fn a_token_changes_with_any_input_and_only_then() {
        let nat = |subnet: &str, eip: &str| token("shop", "network.nat.us-east-1a", &[subnet, eip]);
        assert_eq!(nat("subnet-1", "eipalloc-1"), nat("subnet-1", "eipalloc-1"));
        assert_ne!(nat("subnet-1", "eipalloc-1"), nat("subnet-1", "eipalloc-2"));
        assert_ne!(nat("subnet-1", "eipalloc-1"), nat("subnet-2", "eipalloc-1"));
        assert_ne!(token("shop", "a", &["bc"]), token("shop", "a", &["b", "c"]), "inputs are delimited");
        assert_ne!(token("shop", "a", &[]), token("shop2", "a", &[]));
        assert!(nat("s", "e").len() <= 64, "EC2 client tokens are at most 64 ASCII characters");
    }
}
