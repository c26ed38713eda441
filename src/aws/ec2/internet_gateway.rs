//! The internet gateway, attached to the VPC.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};

use super::{DRAIN, Tagging, VISIBLE, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::provider::{StepContext, StepReporter};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InternetGatewayProps {
    pub vpc_id: Option<Ref>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for InternetGatewayProps {
    const KIND: &'static str = "ec2.internet_gateway";
}

pub struct InternetGateway;

async fn attach(aws: &Aws, id: &str, vpc: &str) -> Result<()> {
    retry_on(
        &["InvalidInternetGatewayID.NotFound", "InvalidVpcID.NotFound"],
        "attaching the internet gateway",
        VISIBLE,
        &StepContext::quiet(),
        || async {
            match aws.ec2.attach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await.aws() {
                // A retry after a lost answer.
                Err(e) if e.is("Resource.AlreadyAssociated") => Ok(()),
                other => other.map(|_| ()),
            }
        },
    )
    .await
}

async fn detach(aws: &Aws, id: &str, vpc: &str, rep: &dyn StepReporter) -> Result<()> {
    retry_on(&["DependencyViolation"], "detaching the internet gateway", DRAIN, rep, || async {
        match aws.ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc).send().await.aws() {
            Err(e) if e.not_found() || e.is("Gateway.NotAttached") => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await
}

#[async_trait]
impl Kind for InternetGateway {
    type Props = InternetGatewayProps;

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<InternetGatewayProps>>> {
        let igws = paginated!(aws.ec2.describe_internet_gateways().set_filters(Some(filters(aws, address))))?;
        Ok(owned(
            aws,
            address,
            igws,
            |g| tag_map(g.tags()),
            |g, owner| {
                let props = InternetGatewayProps {
                    vpc_id: g.attachments().first().and_then(|a| a.vpc_id()).map(Ref::from),
                    tags: owner.tags,
                };
                Some(Current::new(owner.address, g.internet_gateway_id().unwrap_or_default(), props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<InternetGatewayProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<InternetGatewayProps>> {
        let t = aws.tags_for(&d.address, &d.props.tags);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(ResourceType::InternetGateway, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_string())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        if let Some(vpc) = &d.props.vpc_id {
            attach(aws, &id, vpc.get()?).await?;
        }
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<InternetGatewayProps>, l: &Current<InternetGatewayProps>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<InternetGatewayProps>> {
        if changed.iter().any(|c| c == "vpc_id") {
            if let Some(v) = &l.props.vpc_id {
                detach(aws, &l.id, v.get()?, ctx).await?;
            }
            if let Some(v) = &d.props.vpc_id {
                attach(aws, &l.id, v.get()?).await?;
            }
        }
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<InternetGatewayProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        if let Some(v) = &l.props.vpc_id {
            detach(aws, &l.id, v.get()?, ctx).await?;
        }
        retry_on(&["DependencyViolation"], "deleting the internet gateway", DRAIN, ctx, || async {
            aws.ec2.delete_internet_gateway().internet_gateway_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
