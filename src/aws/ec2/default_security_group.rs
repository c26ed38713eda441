//! The VPC's default security group, stripped of its rules.
//!
//! AWS creates it with the VPC (all traffic between its members, all
//! egress) and it cannot be deleted; anything launched without a group
//! lands in it. CIS AWS 5.4 asks for it to allow nothing. This kind adopts
//! it (tags it as the stack's), keeps its rules at what the file says (none,
//! by default), and on delete gives it back untagged: the VPC's own
//! deletion removes it.

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use serde::{Deserialize, Serialize};

use super::security_group::{self, Rule};
use super::{Tagging, VISIBLE, filters, hand_back, stack_groups, tag_map};
use crate::aws::errors::AwsResultExt;
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, TagApi, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DefaultSecurityGroupProps {
    pub vpc_id: Ref,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for DefaultSecurityGroupProps {
    const KIND: &'static str = "ec2.default_security_group";
}

pub struct DefaultSecurityGroup;

fn props_of(g: &aws_sdk_ec2::types::SecurityGroup, tags: Tags) -> DefaultSecurityGroupProps {
    let mut p = DefaultSecurityGroupProps {
        vpc_id: g.vpc_id().unwrap_or_default().into(),
        ingress: security_group::flatten(g.ip_permissions()),
        egress: security_group::flatten(g.ip_permissions_egress()),
        tags,
    };
    p.ingress.sort();
    p.egress.sort();
    p
}

/// The VPCs' default groups among `groups` that this stack adopted.
fn build(
    aws: &Aws, address: Option<&str>, groups: &[aws_sdk_ec2::types::SecurityGroup],
) -> Vec<Current<DefaultSecurityGroupProps>> {
    owned(
        aws,
        address,
        groups.iter().filter(|g| g.group_name() == Some("default")),
        |g| tag_map(g.tags()),
        |g, owner| Some(Current::new(owner.address, g.group_id().unwrap_or_default(), props_of(g, owner.tags))),
    )
}

#[async_trait]
impl Kind for DefaultSecurityGroup {
    type Props = DefaultSecurityGroupProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut serde_json::Value) {
        sort_set(props, "ingress");
        sort_set(props, "egress");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DefaultSecurityGroupProps>>> {
        let groups = paginated!(aws.ec2.describe_security_groups().set_filters(Some(filters(aws, address))))?;
        Ok(build(aws, address, &groups))
    }

    /// From the listing shared with the security group kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<DefaultSecurityGroupProps>>> {
        Ok(build(aws, None, &stack_groups(aws).await?))
    }

    /// Adopts the VPC's default group: tags it, then converges its rules.
    async fn create(
        &self, aws: &Aws, d: &Desired<DefaultSecurityGroupProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<DefaultSecurityGroupProps>> {
        let vpc = d.props.vpc_id.get()?;
        let out = retry_on(&["InvalidVpcID.NotFound"], "finding the default security group", VISIBLE, ctx, || async {
            aws.ec2
                .describe_security_groups()
                .filters(Filter::builder().name("vpc-id").values(vpc).build())
                .filters(Filter::builder().name("group-name").values("default").build())
                .send()
                .await
                .aws()
        })
        .await?;
        let Some(g) = out.security_groups().first() else {
            bail!("VPC {vpc} has no default security group");
        };
        let id = g.group_id().unwrap_or_default().to_string();
        let live = props_of(g, Tags::new());
        Tagging.tag(aws, &id, &aws.tags_for(&d.address, &d.props.tags)).await?;
        security_group::converge_rules(aws, &id, (&d.props.ingress, &d.props.egress), (&live.ingress, &live.egress))
            .await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<DefaultSecurityGroupProps>, l: &Current<DefaultSecurityGroupProps>,
        _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<DefaultSecurityGroupProps>> {
        security_group::converge_rules(
            aws,
            &l.id,
            (&d.props.ingress, &d.props.egress),
            (&l.props.ingress, &l.props.egress),
        )
        .await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    /// A default group cannot be deleted: it is handed back untagged (the
    /// VPC's deletion takes it along).
    async fn delete(
        &self, aws: &Aws, l: &Current<DefaultSecurityGroupProps>, _ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        hand_back(aws, &l.id, &l.props.tags, "default security group").await
    }
}
