//! Elastic IPs (one per NAT gateway).

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::{DomainType, ResourceType};
use serde::{Deserialize, Serialize};

use super::{DRAIN, Tagging, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::owned;
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EipProps {
    pub domain: String,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for EipProps {
    const KIND: &'static str = "ec2.eip";
}

pub struct Eip;

fn current(address: String, id: &str, ip: Option<&str>, props: EipProps) -> Current<EipProps> {
    Current::new(address, id, props).with("allocation_id", id).with("public_ip", ip)
}

#[async_trait]
impl Kind for Eip {
    type Props = EipProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["domain"], ..KindInfo::default() }
    }

    /// Every public IPv4 address is billed by the hour (since 2024-02-01).
    fn cost(&self, _props: &EipProps, prices: &Prices) -> Option<Cost> {
        Some(prices.bill().hourly("public IPv4 address", (1.0, 1.0), &["vpc", "public_ipv4", "hour"]).done())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<EipProps>>> {
        let out = aws.ec2.describe_addresses().set_filters(Some(filters(aws, address))).send().await.aws()?;
        Ok(owned(
            aws,
            address,
            out.addresses().iter(),
            |a| tag_map(a.tags()),
            |a, owner| {
                let props =
                    EipProps { domain: a.domain().map(|d| d.as_str()).unwrap_or("vpc").to_string(), tags: owner.tags };
                Some(current(owner.address, a.allocation_id()?, a.public_ip(), props))
            },
        ))
    }

    async fn create(&self, aws: &Aws, d: &Desired<EipProps>, _ctx: &StepContext<'_>) -> Result<Current<EipProps>> {
        let t = aws.tags_for(&d.address, &d.props.tags);
        let (id, ip) = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(tag_spec(ResourceType::ElasticIp, &t))
                    .send()
                    .await
                    .aws()?;
                Ok((out.allocation_id().unwrap_or_default().to_string(), out.public_ip().map(str::to_string)))
            },
            || async {
                Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| {
                    let ip = l.attr("public_ip").map(str::to_string);
                    (l.id, ip)
                }))
            },
        )
        .await?;
        Ok(current(d.address.clone(), &id, ip.as_deref(), d.props.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<EipProps>, l: &Current<EipProps>, _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<EipProps>> {
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<EipProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        retry_on(&["InvalidIPAddress.InUse", "AuthFailure"], "releasing the Elastic IP", DRAIN, ctx, || async {
            aws.ec2.release_address().allocation_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
