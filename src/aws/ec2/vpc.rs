//! The VPC, with its DNS attributes.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcAttributeName};
use serde::{Deserialize, Serialize};

use super::{DRAIN, Tagging, VISIBLE, boolean, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned_then, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VpcProps {
    pub cidr_block: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for VpcProps {
    const KIND: &'static str = "ec2.vpc";
}

pub struct Vpc;

/// One attribute per call (an EC2 rule); support before hostnames.
async fn set_dns(aws: &Aws, id: &str, p: &VpcProps, old: Option<&VpcProps>) -> Result<()> {
    let ctx = StepContext::quiet();
    if old.is_none_or(|o| o.enable_dns_support != p.enable_dns_support) {
        retry_on(&["InvalidVpcID.NotFound"], "enabling DNS support", VISIBLE, &ctx, || async {
            aws.ec2
                .modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_support(boolean(p.enable_dns_support))
                .send()
                .await
                .aws()
        })
        .await?;
    }
    if old.is_none_or(|o| o.enable_dns_hostnames != p.enable_dns_hostnames) {
        retry_on(&["InvalidVpcID.NotFound"], "enabling DNS hostnames", VISIBLE, &ctx, || async {
            aws.ec2
                .modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(boolean(p.enable_dns_hostnames))
                .send()
                .await
                .aws()
        })
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Kind for Vpc {
    type Props = VpcProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["cidr_block"], weight: 2, ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<VpcProps>>> {
        let vpcs = paginated!(aws.ec2.describe_vpcs().set_filters(Some(filters(aws, address))))?;
        owned_then(
            aws,
            address,
            vpcs,
            |v| tag_map(v.tags()),
            |v, owner| async move {
                let id = v.vpc_id().unwrap_or_default().to_string();
                let owner_id = v.owner_id().map(str::to_string);
                let attr = |a: VpcAttributeName| aws.ec2.describe_vpc_attribute().vpc_id(&id).attribute(a).send();
                let (support, hostnames) =
                    tokio::try_join!(async { attr(VpcAttributeName::EnableDnsSupport).await.aws() }, async {
                        attr(VpcAttributeName::EnableDnsHostnames).await.aws()
                    },)?;
                let props = VpcProps {
                    cidr_block: v.cidr_block().unwrap_or_default().to_string(),
                    enable_dns_support: support.enable_dns_support().and_then(|b| b.value()).unwrap_or(false),
                    enable_dns_hostnames: hostnames.enable_dns_hostnames().and_then(|b| b.value()).unwrap_or(false),
                    tags: owner.tags,
                };
                Ok(Some(Current::new(owner.address, id, props).with("owner_id", owner_id)))
            },
        )
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired<VpcProps>, _ctx: &StepContext<'_>) -> Result<Current<VpcProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        let (id, owner_id) = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_vpc()
                    .cidr_block(&p.cidr_block)
                    .tag_specifications(tag_spec(ResourceType::Vpc, &t))
                    .send()
                    .await
                    .aws()?;
                let vpc = out.vpc();
                Ok((
                    vpc.and_then(|v| v.vpc_id()).unwrap_or_default().to_string(),
                    vpc.and_then(|v| v.owner_id()).map(str::to_string),
                ))
            },
            || async {
                let found = self.find(aws, Some(&d.address)).await?.pop();
                Ok(found.map(|l| (l.id.clone(), l.attr("owner_id").map(str::to_string))))
            },
        )
        .await?;
        set_dns(aws, &id, p, None).await?;
        // The account that owns the VPC (others' trust policies name it).
        Ok(d.current(id).with("owner_id", owner_id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<VpcProps>, l: &Current<VpcProps>, _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<VpcProps>> {
        set_dns(aws, &l.id, &d.props, Some(&l.props)).await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<VpcProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        retry_on(&["DependencyViolation"], "deleting the VPC", DRAIN, ctx, || async {
            aws.ec2.delete_vpc().vpc_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
