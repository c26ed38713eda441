//! NAT gateways (none, one, or one per Availability Zone).

use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{NatGateway as Gateway, NatGatewayState as State, ResourceType};
use serde::{Deserialize, Serialize};

use super::{Tagging, VISIBLE, client_token, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on, wait_for};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

/// A NAT gateway takes a few minutes to become available, and to go.
const SETTLE: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NatGatewayProps {
    pub subnet_id: Ref,
    pub allocation_id: Ref,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for NatGatewayProps {
    const KIND: &'static str = "ec2.nat_gateway";
}

pub struct NatGateway;

async fn describe(aws: &Aws, address: Option<&str>, id: Option<&str>) -> Result<Vec<Gateway>> {
    let mut req = aws.ec2.describe_nat_gateways();
    req = match id {
        Some(id) => req.nat_gateway_ids(id),
        None => req.set_filter(Some(filters(aws, address))),
    };
    Ok(paginated!(req).or_absent()?.unwrap_or_default())
}

async fn state(aws: &Aws, id: &str) -> Result<Option<(State, Option<String>)>> {
    let n = describe(aws, None, Some(id)).await?;
    Ok(n.first().and_then(|n| Some((n.state()?.clone(), n.failure_message().map(str::to_string)))))
}

#[async_trait]
impl Kind for NatGateway {
    type Props = NatGatewayProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["subnet_id", "allocation_id"], weight: 30, ..KindInfo::default() }
    }

    /// Billed by the hour whether or not it carries traffic (its Elastic IP
    /// is priced as `ec2.eip`).
    fn cost(&self, _props: &NatGatewayProps, prices: &Prices) -> Option<Cost> {
        let bill = prices.bill().hourly("NAT gateway", (1.0, 1.0), &["vpc", "nat_gateway", "hour"]);
        Some(bill.plus(&["vpc", "nat_gateway", "per_gb"], "per GB processed").done())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<NatGatewayProps>>> {
        let gateways = describe(aws, address, None)
            .await?
            .into_iter()
            .filter(|n| !matches!(n.state(), Some(State::Deleted | State::Deleting | State::Failed)));
        Ok(owned(
            aws,
            address,
            gateways,
            |n| tag_map(n.tags()),
            |n, owner| {
                let props = NatGatewayProps {
                    subnet_id: n.subnet_id().unwrap_or_default().into(),
                    allocation_id: n
                        .nat_gateway_addresses()
                        .first()
                        .and_then(|a| a.allocation_id())
                        .unwrap_or_default()
                        .into(),
                    tags: owner.tags,
                };
                Some(Current::new(owner.address, n.nat_gateway_id().unwrap_or_default(), props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<NatGatewayProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<NatGatewayProps>> {
        let p = &d.props;
        let (subnet, allocation) = (p.subnet_id.get()?, p.allocation_id.get()?);
        let t = aws.tags_for(&d.address, &p.tags);
        // The client token makes the SDK's own retries safe; it covers every
        // input, so a replacement (another allocation) is a new request.
        let token = client_token(aws, &d.address, &[subnet, allocation]);
        let out = retry_on(
            &["InvalidSubnetID.NotFound", "InvalidAllocationID.NotFound", "Gateway.NotAttached"],
            "creating the NAT gateway",
            VISIBLE,
            ctx,
            || async {
                aws.ec2
                    .create_nat_gateway()
                    .subnet_id(subnet)
                    .allocation_id(allocation)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::Natgateway, &t))
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        let id = out.nat_gateway().and_then(|n| n.nat_gateway_id()).unwrap_or_default().to_string();
        wait_for("the NAT gateway to become available", SETTLE, ctx, || async {
            match state(aws, &id).await? {
                Some((State::Available, _)) => Ok(Some(())),
                Some((State::Failed, why)) => {
                    bail!("NAT gateway {id} failed: {}", why.as_deref().unwrap_or("no reason given"))
                }
                _ => Ok(None),
            }
        })
        .await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<NatGatewayProps>, l: &Current<NatGatewayProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<NatGatewayProps>> {
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<NatGatewayProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.ec2.delete_nat_gateway().nat_gateway_id(&l.id).send().await.aws().or_absent()?;
        wait_for("the NAT gateway to be deleted", SETTLE, ctx, || async {
            Ok(match state(aws, &l.id).await? {
                None | Some((State::Deleted, _)) => Some(None),
                _ => None,
            })
        })
        .await
    }
}
