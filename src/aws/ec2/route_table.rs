//! Route tables, with their routes and subnet associations as properties.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::ResourceType;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DRAIN, Tagging, VISIBLE, filters, tag_map, tag_spec};
use crate::aws::collection::{delta, set_delta};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub destination_cidr_block: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<Ref>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RouteTableProps {
    pub vpc_id: Ref,
    pub routes: Vec<Route>,
    pub subnet_ids: Vec<Ref>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for RouteTableProps {
    const KIND: &'static str = "ec2.route_table";
}

pub struct RouteTable;

/// Subnet id -> association id, kept as an attribute for updates and deletes.
type Associations = BTreeMap<String, String>;

fn associations(l: &Current<RouteTableProps>) -> Associations {
    l.attrs.get("associations").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
}

fn current(address: String, id: &str, props: RouteTableProps, assocs: &Associations) -> Current<RouteTableProps> {
    Current::new(address, id, props).with("associations", assocs)
}

async fn add_route(aws: &Aws, id: &str, r: &Route, replace: bool) -> Result<()> {
    let gateway = r.gateway_id.as_ref().map(Ref::get).transpose()?.cloned();
    let nat = r.nat_gateway_id.as_ref().map(Ref::get).transpose()?.cloned();
    let codes = ["InvalidRouteTableID.NotFound", "InvalidGatewayID.NotFound", "InvalidNatGatewayID.NotFound"];
    retry_on(&codes, &format!("routing {}", r.destination_cidr_block), VISIBLE, &StepContext::quiet(), || async {
        if replace {
            return aws
                .ec2
                .replace_route()
                .route_table_id(id)
                .destination_cidr_block(&r.destination_cidr_block)
                .set_gateway_id(gateway.clone())
                .set_nat_gateway_id(nat.clone())
                .send()
                .await
                .aws()
                .map(|_| ());
        }
        match aws
            .ec2
            .create_route()
            .route_table_id(id)
            .destination_cidr_block(&r.destination_cidr_block)
            .set_gateway_id(gateway.clone())
            .set_nat_gateway_id(nat.clone())
            .send()
            .await
            .aws()
        {
            // A retry after a lost response.
            Err(e) if e.is("RouteAlreadyExists") => Ok(()),
            other => other.map(|_| ()),
        }
    })
    .await
}

/// Associates `subnet` with the table. An `AlreadyAssociated` answer is
/// success only when the subnet's association is with this very table (an
/// earlier attempt whose answer was lost); with another table it is an error.
async fn associate(aws: &Aws, id: &str, subnet: &str) -> Result<String> {
    let codes = ["InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound"];
    let r = retry_on(&codes, &format!("associating {subnet}"), VISIBLE, &StepContext::quiet(), || async {
        match aws.ec2.associate_route_table().route_table_id(id).subnet_id(subnet).send().await.aws() {
            Ok(o) => Ok(Some(o.association_id().unwrap_or_default().to_string())),
            Err(e) if e.is("Resource.AlreadyAssociated") => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await?;
    if let Some(a) = r {
        return Ok(a);
    }
    let tables = aws
        .ec2
        .describe_route_tables()
        .filters(aws_sdk_ec2::types::Filter::builder().name("association.subnet-id").values(subnet).build())
        .send()
        .await
        .aws()?;
    for t in tables.route_tables() {
        for a in t.associations() {
            if a.subnet_id() == Some(subnet) {
                if t.route_table_id() == Some(id) {
                    return Ok(a.route_table_association_id().unwrap_or_default().to_string());
                }
                bail!(
                    "subnet {subnet} is associated with route table {}, not {id}; it was changed outside infra (disassociate it, then apply again)",
                    t.route_table_id().unwrap_or("?")
                );
            }
        }
    }
    bail!("associating {subnet}: AWS says it is already associated, but no route table lists it")
}

/// Moves the table from `old` to `new` routes and associations.
async fn converge(
    aws: &Aws, id: &str, new: &RouteTableProps, old: &RouteTableProps, assocs: &Associations,
) -> Result<Associations> {
    let routes = delta(&new.routes, &old.routes, |r| r.destination_cidr_block.clone());
    for r in &routes.added {
        add_route(aws, id, r, false).await?;
    }
    for (_, r) in &routes.changed {
        add_route(aws, id, r, true).await?;
    }
    for r in &routes.removed {
        aws.ec2
            .delete_route()
            .route_table_id(id)
            .destination_cidr_block(&r.destination_cidr_block)
            .send()
            .await
            .aws()
            .or_absent()?;
    }
    let want = Ref::all(&new.subnet_ids)?;
    let have: Vec<String> = assocs.keys().cloned().collect();
    let subnets = set_delta(&want, &have);
    let mut result = assocs.clone();
    for s in subnets.removed {
        if let Some(a) = assocs.get(s) {
            aws.ec2.disassociate_route_table().association_id(a).send().await.aws().or_absent()?;
        }
        result.remove(s);
    }
    for s in subnets.added {
        result.insert(s.clone(), associate(aws, id, s).await?);
    }
    Ok(result)
}

#[async_trait]
impl Kind for RouteTable {
    type Props = RouteTableProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "routes");
        sort_set(props, "subnet_ids");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<RouteTableProps>>> {
        let tables = paginated!(aws.ec2.describe_route_tables().set_filters(Some(filters(aws, address))))?;
        Ok(owned(
            aws,
            address,
            tables,
            |t| tag_map(t.tags()),
            |t, owner| {
                let routes = t
                    .routes()
                    .iter()
                    .filter(|r| r.gateway_id() != Some("local"))
                    .filter(|r| r.origin().map(|o| o.as_str()) != Some("EnableVgwRoutePropagation"))
                    .filter_map(|r| {
                        Some(Route {
                            destination_cidr_block: r.destination_cidr_block()?.to_string(),
                            gateway_id: r.gateway_id().map(Ref::from),
                            nat_gateway_id: r.nat_gateway_id().map(Ref::from),
                        })
                    })
                    .collect();
                let assocs: Associations = t
                    .associations()
                    .iter()
                    .filter(|a| !a.main().unwrap_or(false))
                    .filter_map(|a| Some((a.subnet_id()?.to_string(), a.route_table_association_id()?.to_string())))
                    .collect();
                let props = RouteTableProps {
                    vpc_id: t.vpc_id().unwrap_or_default().into(),
                    routes,
                    subnet_ids: assocs.keys().map(|s| Ref::from(s.as_str())).collect(),
                    tags: owner.tags,
                };
                Some(current(owner.address, t.route_table_id().unwrap_or_default(), props, &assocs))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<RouteTableProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<RouteTableProps>> {
        let p = &d.props;
        let vpc_id = p.vpc_id.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_route_table()
                    .vpc_id(vpc_id)
                    .tag_specifications(tag_spec(ResourceType::RouteTable, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out.route_table().and_then(|r| r.route_table_id()).unwrap_or_default().to_string())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        let empty = RouteTableProps { vpc_id: p.vpc_id.clone(), routes: vec![], subnet_ids: vec![], tags: Tags::new() };
        let assocs = converge(aws, &id, p, &empty, &Associations::new()).await?;
        Ok(current(d.address.clone(), &id, p.clone(), &assocs))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<RouteTableProps>, l: &Current<RouteTableProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<RouteTableProps>> {
        let assocs = converge(aws, &l.id, &d.props, &l.props, &associations(l)).await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(current(d.address.clone(), &l.id, d.props.clone(), &assocs))
    }

    async fn delete(&self, aws: &Aws, l: &Current<RouteTableProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        for a in associations(l).values() {
            aws.ec2.disassociate_route_table().association_id(a).send().await.aws().or_absent()?;
        }
        retry_on(&["DependencyViolation"], "deleting the route table", DRAIN, ctx, || async {
            aws.ec2.delete_route_table().route_table_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
