//! The VPC's default network ACL, stripped of its entries.
//!
//! AWS creates it with the VPC, allowing all traffic in and out, and it
//! cannot be deleted; a subnet made without naming an ACL uses it. The
//! stack's subnets use the tier ACLs (`network_acl`), so this one serves
//! nothing the stack made: stripped (the implicit deny left), a subnet added
//! by hand is closed until someone decides what it admits (CIS AWS 5.1 and
//! 5.2 flag it otherwise). Adopted by tag like the default security group;
//! on delete given back untagged, its entries as they are.

use anyhow::{Result, bail};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::network_acl::{Entry, converge_entries, default_acl, entries_of};
use aws_sdk_ec2::types::NetworkAcl;

use super::{Tagging, VISIBLE, filters, hand_back, stack_acls, tag_map};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, TagApi, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DefaultNetworkAclProps {
    pub vpc_id: Ref,
    /// Its entries, without the implicit final deny (none, by default).
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for DefaultNetworkAclProps {
    const KIND: &'static str = "ec2.default_network_acl";
}

pub struct DefaultNetworkAcl;

/// The VPCs' default ACLs among `acls` that this stack adopted.
fn build(aws: &Aws, address: Option<&str>, acls: &[NetworkAcl]) -> Vec<Current<DefaultNetworkAclProps>> {
    owned(
        aws,
        address,
        acls.iter().filter(|a| a.is_default().unwrap_or(false)),
        |a| tag_map(a.tags()),
        |a, owner| {
            let props = DefaultNetworkAclProps {
                vpc_id: a.vpc_id().unwrap_or_default().into(),
                entries: entries_of(a),
                tags: owner.tags,
            };
            Some(Current::new(owner.address, a.network_acl_id()?, props))
        },
    )
}

#[async_trait]
impl Kind for DefaultNetworkAcl {
    type Props = DefaultNetworkAclProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut serde_json::Value) {
        sort_set(props, "entries");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DefaultNetworkAclProps>>> {
        let acls = paginated!(aws.ec2.describe_network_acls().set_filters(Some(filters(aws, address))))?;
        Ok(build(aws, address, &acls))
    }

    /// From the listing shared with the network ACL kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<DefaultNetworkAclProps>>> {
        Ok(build(aws, None, &stack_acls(aws).await?))
    }

    /// Adopts the VPC's default ACL: tags it, then converges its entries.
    async fn create(
        &self, aws: &Aws, d: &Desired<DefaultNetworkAclProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<DefaultNetworkAclProps>> {
        let vpc = d.props.vpc_id.get()?;
        let found = retry_on(&["InvalidVpcID.NotFound"], "finding the default network ACL", VISIBLE, ctx, || async {
            default_acl(aws, vpc).await
        })
        .await?;
        let Some(acl) = found else {
            bail!("VPC {vpc} has no default network ACL");
        };
        let id = acl.network_acl_id().unwrap_or_default().to_string();
        Tagging.tag(aws, &id, &aws.tags_for(&d.address, &d.props.tags)).await?;
        converge_entries(aws, &id, &d.props.entries, &entries_of(&acl)).await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<DefaultNetworkAclProps>, l: &Current<DefaultNetworkAclProps>,
        _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<DefaultNetworkAclProps>> {
        converge_entries(aws, &l.id, &d.props.entries, &l.props.entries).await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    /// A default ACL cannot be deleted: it is handed back untagged (the
    /// VPC's deletion takes it along).
    async fn delete(
        &self, aws: &Aws, l: &Current<DefaultNetworkAclProps>, _ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        hand_back(aws, &l.id, &l.props.tags, "default network ACL").await
    }
}
