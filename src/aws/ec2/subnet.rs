//! Subnets (one public and one private per Availability Zone).

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};

use super::{DRAIN, Tagging, VISIBLE, boolean, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubnetProps {
    pub vpc_id: Ref,
    pub cidr_block: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for SubnetProps {
    const KIND: &'static str = "ec2.subnet";
}

pub struct Subnet;

fn current(address: String, id: &str, props: SubnetProps) -> Current<SubnetProps> {
    let az = props.availability_zone.clone();
    Current::new(address, id, props).with("availability_zone", az)
}

async fn set_public_ip(aws: &Aws, id: &str, on: bool) -> Result<()> {
    retry_on(
        &["InvalidSubnetID.NotFound"],
        "setting map_public_ip_on_launch",
        VISIBLE,
        &StepContext::quiet(),
        || async {
            aws.ec2.modify_subnet_attribute().subnet_id(id).map_public_ip_on_launch(boolean(on)).send().await.aws()
        },
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Kind for Subnet {
    type Props = SubnetProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id", "cidr_block", "availability_zone"], ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<SubnetProps>>> {
        let subnets = paginated!(aws.ec2.describe_subnets().set_filters(Some(filters(aws, address))))?;
        Ok(owned(
            aws,
            address,
            subnets,
            |s| tag_map(s.tags()),
            |s, owner| {
                let props = SubnetProps {
                    vpc_id: s.vpc_id().unwrap_or_default().into(),
                    cidr_block: s.cidr_block().unwrap_or_default().into(),
                    availability_zone: s.availability_zone().unwrap_or_default().into(),
                    map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
                    tags: owner.tags,
                };
                Some(current(owner.address, s.subnet_id().unwrap_or_default(), props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<SubnetProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<SubnetProps>> {
        let p = &d.props;
        let vpc_id = p.vpc_id.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_subnet()
                    .vpc_id(vpc_id)
                    .cidr_block(&p.cidr_block)
                    .availability_zone(&p.availability_zone)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_string())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        if p.map_public_ip_on_launch {
            set_public_ip(aws, &id, true).await?;
        }
        Ok(current(d.address.clone(), &id, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<SubnetProps>, l: &Current<SubnetProps>, changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<SubnetProps>> {
        if changed.iter().any(|c| c == "map_public_ip_on_launch") {
            set_public_ip(aws, &l.id, d.props.map_public_ip_on_launch).await?;
        }
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<SubnetProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        retry_on(&["DependencyViolation"], "deleting the subnet", DRAIN, ctx, || async {
            aws.ec2.delete_subnet().subnet_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
