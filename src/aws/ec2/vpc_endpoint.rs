//! VPC endpoints: gateway endpoints (S3, DynamoDB) on route tables, and
//! interface endpoints (Secrets Manager, SSM...) in subnets with private DNS,
//! so that what runs in private subnets without NAT reaches AWS services.

use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, VpcEndpoint as Endpoint, VpcEndpointType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DRAIN, Tagging, VISIBLE, client_token, filters, tag_map, tag_spec};
use crate::aws::collection::set_delta;
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on, wait_for};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

/// Interface endpoints take a minute or two to become available on AWS.
const SETTLE: Duration = Duration::from_secs(10 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VpcEndpointProps {
    pub vpc_id: Ref,
    /// `com.amazonaws.<region>.<service>`.
    pub service_name: String,
    /// `Gateway` or `Interface`.
    pub endpoint_type: String,
    /// Gateway endpoints: the route tables that get the service's prefix list route.
    #[serde(default)]
    pub route_table_ids: Vec<Ref>,
    /// Interface endpoints: one network interface per subnet.
    #[serde(default)]
    pub subnet_ids: Vec<Ref>,
    #[serde(default)]
    pub security_group_ids: Vec<Ref>,
    /// Interface endpoints: the service's public DNS name resolves to the
    /// endpoint inside the VPC, so SDKs need no configuration.
    #[serde(default)]
    pub private_dns_enabled: bool,
    /// The endpoint policy: who may use the endpoint for what (JSON; AWS's
    /// default, when none is sent, lets anyone do anything).
    #[serde(default)]
    pub policy: Value,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for VpcEndpointProps {
    const KIND: &'static str = "ec2.vpc_endpoint";
}

pub struct VpcEndpoint;

/// The policy as EC2 takes it: a JSON string, or none for AWS's default.
fn document(policy: &Value) -> Result<Option<String>> {
    Ok(if policy.is_null() { None } else { Some(serde_json::to_string(policy)?) })
}

fn props_of(e: &Endpoint, tags: Tags) -> VpcEndpointProps {
    let gateway = e.vpc_endpoint_type() == Some(&VpcEndpointType::Gateway);
    let refs = |ids: &[String]| ids.iter().map(|s| Ref::from(s.as_str())).collect::<Vec<_>>();
    VpcEndpointProps {
        vpc_id: e.vpc_id().unwrap_or_default().into(),
        service_name: e.service_name().unwrap_or_default().to_string(),
        endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str()).unwrap_or("Gateway").to_string(),
        route_table_ids: refs(e.route_table_ids()),
        subnet_ids: refs(e.subnet_ids()),
        security_group_ids: e.groups().iter().filter_map(|g| g.group_id()).map(Ref::from).collect(),
        // Gateway endpoints have no DNS of their own (AWS reports false).
        private_dns_enabled: !gateway && e.private_dns_enabled().unwrap_or(false),
        policy: e.policy_document().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null),
        tags,
    }
}

/// The endpoint's state, lowercase: the API answers `available`, `pending`,
/// `deleting`... although its model spells them `Available`, `Pending`.
fn state(e: &Endpoint) -> Option<String> {
    e.state().map(|s| s.as_str().to_ascii_lowercase())
}

async fn describe(aws: &Aws, address: Option<&str>, id: Option<&str>) -> Result<Vec<Endpoint>> {
    let mut req = aws.ec2.describe_vpc_endpoints();
    req = match id {
        Some(id) => req.vpc_endpoint_ids(id),
        None => req.set_filters(Some(filters(aws, address))),
    };
    Ok(paginated!(req).or_absent()?.unwrap_or_default())
}

/// Waits until the endpoint is `available` (or gone, for a delete).
async fn settle(aws: &Aws, id: &str, gone: bool, ctx: &StepContext<'_>) -> Result<()> {
    let what = if gone { "the VPC endpoint to be deleted" } else { "the VPC endpoint to become available" };
    wait_for(what, SETTLE, ctx, || async {
        let found = describe(aws, None, Some(id)).await?;
        let state = found.first().and_then(state);
        match (gone, state.as_deref()) {
            (true, None | Some("deleted")) => Ok(Some(())),
            (false, Some("available")) => Ok(Some(())),
            (false, Some(s @ ("failed" | "rejected" | "expired"))) => {
                let why =
                    found.first().and_then(|e| e.last_error()).and_then(|e| e.message()).unwrap_or("no reason given");
                bail!("VPC endpoint {id} is {s}: {why}")
            }
            _ => Ok(None),
        }
    })
    .await
}

fn ids(refs: &[Ref]) -> Result<Vec<String>> {
    Ref::all(refs)
}

#[async_trait]
impl Kind for VpcEndpoint {
    type Props = VpcEndpointProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id", "service_name", "endpoint_type"], weight: 10, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        for set in ["route_table_ids", "subnet_ids", "security_group_ids"] {
            sort_set(props, set);
        }
    }

    /// An interface endpoint is billed per hour in each AZ it has a network
    /// interface in; a gateway endpoint (S3, DynamoDB) costs nothing.
    fn cost(&self, props: &VpcEndpointProps, prices: &Prices) -> Option<Cost> {
        if props.endpoint_type != "Interface" {
            return None;
        }
        let azs = props.subnet_ids.len().max(1) as f64;
        let bill = prices.bill().hourly(
            "interface endpoint, per AZ",
            (azs, azs),
            &["vpc", "interface_endpoint", "hour_per_az"],
        );
        Some(bill.plus(&["vpc", "interface_endpoint", "per_gb"], "per GB processed").done())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<VpcEndpointProps>>> {
        let endpoints = describe(aws, address, None)
            .await?
            .into_iter()
            .filter(|e| !matches!(state(e).as_deref(), Some("deleted" | "deleting" | "failed" | "rejected")));
        Ok(owned(
            aws,
            address,
            endpoints,
            |e| tag_map(e.tags()),
            |e, owner| {
                let dns = e.dns_entries().first().and_then(|d| d.dns_name()).map(str::to_string);
                Some(
                    Current::new(owner.address, e.vpc_endpoint_id().unwrap_or_default(), props_of(&e, owner.tags))
                        .with("dns_name", dns),
                )
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<VpcEndpointProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<VpcEndpointProps>> {
        let p = &d.props;
        let vpc = p.vpc_id.get()?;
        let (tables, subnets, groups) = (ids(&p.route_table_ids)?, ids(&p.subnet_ids)?, ids(&p.security_group_ids)?);
        let gateway = p.endpoint_type == "Gateway";
        let t = aws.tags_for(&d.address, &p.tags);
        // The token covers every input: a replacement is a new request, a
        // retry of a lost answer the same one.
        let mut inputs = vec![vpc.as_str(), p.service_name.as_str()];
        inputs.extend(tables.iter().chain(&subnets).map(String::as_str));
        let token = client_token(aws, &d.address, &inputs);
        let policy = document(&p.policy)?;
        let out = retry_on(
            &[
                "InvalidVpcId.NotFound",
                "InvalidRouteTableId.NotFound",
                "InvalidSubnetId.NotFound",
                "InvalidGroupId.NotFound",
            ],
            "creating the VPC endpoint",
            VISIBLE,
            ctx,
            || async {
                let mut req = aws
                    .ec2
                    .create_vpc_endpoint()
                    .vpc_id(vpc)
                    .service_name(&p.service_name)
                    .vpc_endpoint_type(VpcEndpointType::from(p.endpoint_type.as_str()))
                    .client_token(&token)
                    .set_policy_document(policy.clone())
                    .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &t));
                if gateway {
                    req = req.set_route_table_ids(Some(tables.clone()));
                } else {
                    req = req
                        .set_subnet_ids(Some(subnets.clone()))
                        .set_security_group_ids(Some(groups.clone()))
                        .private_dns_enabled(p.private_dns_enabled);
                }
                req.send().await.aws()
            },
        )
        .await?;
        let id = out.vpc_endpoint().and_then(|e| e.vpc_endpoint_id()).unwrap_or_default().to_string();
        settle(aws, &id, false, ctx).await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<VpcEndpointProps>, l: &Current<VpcEndpointProps>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<VpcEndpointProps>> {
        let sets = |want: &[Ref], have: &[Ref]| -> Result<(Vec<String>, Vec<String>)> {
            let (w, h) = (ids(want)?, ids(have)?);
            let delta = set_delta(&w, &h);
            Ok((delta.added.into_iter().cloned().collect(), delta.removed.into_iter().cloned().collect()))
        };
        let (p, o) = (&d.props, &l.props);
        let (add_rt, del_rt) = sets(&p.route_table_ids, &o.route_table_ids)?;
        let (add_sn, del_sn) = sets(&p.subnet_ids, &o.subnet_ids)?;
        let (add_sg, del_sg) = sets(&p.security_group_ids, &o.security_group_ids)?;
        let dns = changed.iter().any(|c| c == "private_dns_enabled");
        let policy = changed.iter().any(|c| c == "policy");
        let membership = [&add_rt, &del_rt, &add_sn, &del_sn, &add_sg, &del_sg].iter().any(|v| !v.is_empty());
        if membership || dns || policy {
            let mut req = aws
                .ec2
                .modify_vpc_endpoint()
                .vpc_endpoint_id(&l.id)
                .set_add_route_table_ids(Some(add_rt).filter(|v| !v.is_empty()))
                .set_remove_route_table_ids(Some(del_rt).filter(|v| !v.is_empty()))
                .set_add_subnet_ids(Some(add_sn).filter(|v| !v.is_empty()))
                .set_remove_subnet_ids(Some(del_sn).filter(|v| !v.is_empty()))
                .set_add_security_group_ids(Some(add_sg).filter(|v| !v.is_empty()))
                .set_remove_security_group_ids(Some(del_sg).filter(|v| !v.is_empty()));
            if dns {
                req = req.private_dns_enabled(p.private_dns_enabled);
            }
            if policy {
                // No policy wanted: AWS's default (full access) back.
                req = match document(&p.policy)? {
                    Some(doc) => req.policy_document(doc),
                    None => req.reset_policy(true),
                };
            }
            req.send().await.aws()?;
            settle(aws, &l.id, false, ctx).await?;
        }
        tags::sync(&Tagging, aws, &l.id, &o.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<VpcEndpointProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let out = retry_on(&["DependencyViolation"], "deleting the VPC endpoint", DRAIN, ctx, || async {
            aws.ec2.delete_vpc_endpoints().vpc_endpoint_ids(&l.id).send().await.aws().or_absent()
        })
        .await?;
        // Failures come back in the answer, not as an error.
        if let Some(u) = out.as_ref().and_then(|o| o.unsuccessful().first()).and_then(|u| u.error())
            && !u.code().unwrap_or_default().ends_with("NotFound")
        {
            bail!(
                "deleting VPC endpoint {}: {}: {}",
                l.id,
                u.code().unwrap_or_default(),
                u.message().unwrap_or_default()
            );
        }
        settle(aws, &l.id, true, ctx).await?;
        Ok(None)
    }
}
