//! EC2 networking: VPC, subnets, internet gateway, route tables (with their
//! routes and subnet associations), Elastic IPs, NAT gateways and security
//! groups (with their rules). Untaggable parts (routes, associations, rules)
//! are properties of their taggable parent, so drift in them shows as an
//! update of the parent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, ResourceType, Tag,
    TagSpecification, UserIdGroupPair,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::AwsResultExt;
use super::tags::{self, Tags};
use super::{Aws, Kind, create_once, retry_on, wait_for};
use crate::engine::provider::{DeleteOptions, KindInfo, Quiet, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![
        Box::new(Vpc),
        Box::new(Subnet),
        Box::new(InternetGateway),
        Box::new(RouteTable),
        Box::new(Eip),
        Box::new(NatGateway),
        Box::new(SecurityGroup),
    ]
}

/// How long to wait for network interfaces and other dependants to drain on
/// delete (Lambda ENIs can take many minutes on AWS).
const DRAIN: Duration = Duration::from_secs(40 * 60);
/// How long a just-created resource may take to become visible to other calls.
const VISIBLE: Duration = Duration::from_secs(120);

fn filters(aws: &Aws, address: Option<&str>) -> Vec<Filter> {
    let mut f = vec![
        Filter::builder()
            .name(format!("tag:{}", super::STACK_TAG))
            .values(&aws.stack)
            .build(),
    ];
    if let Some(a) = address {
        f.push(
            Filter::builder()
                .name(format!("tag:{}", super::ADDRESS_TAG))
                .values(a)
                .build(),
        );
    }
    f
}

fn tag_map(t: &[Tag]) -> Tags {
    t.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn tag_spec(rt: ResourceType, t: &Tags) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(rt)
        .set_tags(Some(
            t.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .build()
}

fn boolean(b: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(b).build()
}

/// Applies a tag change to one EC2 resource.
async fn retag(aws: &Aws, id: &str, d: &Resource, live: &Live) -> Result<()> {
    let (set, remove) = tags::delta(&tags::from_props(&live.props), &tags::from_props(&d.props));
    if !set.is_empty() {
        aws.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(
                set.iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .aws()
            .context("tagging")?;
    }
    if !remove.is_empty() {
        aws.ec2
            .delete_tags()
            .resources(id)
            .set_tags(Some(
                remove
                    .iter()
                    .map(|k| Tag::builder().key(k).build())
                    .collect(),
            ))
            .send()
            .await
            .aws()
            .context("untagging")?;
    }
    Ok(())
}

fn live(kind: &str, address: &str, id: &str, props: Value, attrs: Value) -> Live {
    let mut a: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    a.insert("id".into(), json!(id));
    Live {
        address: address.into(),
        kind: kind.into(),
        id: id.into(),
        props,
        attrs: a,
    }
}

/// Parses a kind's typed props.
fn props<T: for<'de> Deserialize<'de>>(d: &Resource) -> Result<T> {
    serde_json::from_value(d.props.clone())
        .with_context(|| format!("internal error: bad properties for {}", d.address))
}

fn sort_array(props: &mut Value, key: &str) {
    if let Some(Value::Array(a)) = props.get_mut(key) {
        a.sort_by_key(|v| v.to_string());
        a.dedup();
    }
}

fn ignore_not_found<T>(
    r: Result<T, super::errors::AwsError>,
) -> Result<Option<T>, super::errors::AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- VPC

#[derive(Serialize, Deserialize)]
struct VpcProps {
    cidr_block: String,
    enable_dns_support: bool,
    enable_dns_hostnames: bool,
    #[serde(default)]
    tags: Tags,
}

struct Vpc;

impl Vpc {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let vpcs: Vec<_> = aws
            .ec2
            .describe_vpcs()
            .set_filters(Some(filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        let reads = vpcs.into_iter().filter_map(|v| {
            let all = tag_map(v.tags());
            let addr = tags::owner(aws, &all)?.to_string();
            Some(async move {
                let id = v.vpc_id().unwrap_or_default().to_string();
                let attr = |a: aws_sdk_ec2::types::VpcAttributeName| {
                    aws.ec2
                        .describe_vpc_attribute()
                        .vpc_id(&id)
                        .attribute(a)
                        .send()
                };
                let (sup, host) = tokio::try_join!(
                    async {
                        attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport)
                            .await
                            .aws()
                    },
                    async {
                        attr(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
                            .await
                            .aws()
                    },
                )?;
                let p = VpcProps {
                    cidr_block: v.cidr_block().unwrap_or_default().to_string(),
                    enable_dns_support: sup
                        .enable_dns_support()
                        .and_then(|b| b.value())
                        .unwrap_or(false),
                    enable_dns_hostnames: host
                        .enable_dns_hostnames()
                        .and_then(|b| b.value())
                        .unwrap_or(false),
                    tags: tags::visible(all),
                };
                Ok::<_, anyhow::Error>(live("ec2.vpc", &addr, &id, json!(p), json!({})))
            })
        });
        futures::future::try_join_all(reads).await
    }

    async fn set_dns(
        &self,
        aws: &Aws,
        id: &str,
        p: &VpcProps,
        old: Option<&VpcProps>,
    ) -> Result<()> {
        // One attribute per call (an EC2 rule); support before hostnames.
        if old.is_none_or(|o| o.enable_dns_support != p.enable_dns_support) {
            retry_on(
                &["InvalidVpcID.NotFound"],
                "enabling DNS support",
                VISIBLE,
                &Quiet,
                || async {
                    aws.ec2
                        .modify_vpc_attribute()
                        .vpc_id(id)
                        .enable_dns_support(boolean(p.enable_dns_support))
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        if old.is_none_or(|o| o.enable_dns_hostnames != p.enable_dns_hostnames) {
            retry_on(
                &["InvalidVpcID.NotFound"],
                "enabling DNS hostnames",
                VISIBLE,
                &Quiet,
                || async {
                    aws.ec2
                        .modify_vpc_attribute()
                        .vpc_id(id)
                        .enable_dns_hostnames(boolean(p.enable_dns_hostnames))
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for Vpc {
    fn name(&self) -> &'static str {
        "ec2.vpc"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["cidr_block"],
            weight: 2,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: VpcProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let id = create_once(
            &d.address,
            || async {
                let out = aws_once_vpc(aws, &p.cidr_block, &t).await?;
                Ok(out)
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        self.set_dns(aws, &id, &p, None).await?;
        Ok(live(self.name(), &d.address, &id, json!(p), json!({})))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: VpcProps = props(d)?;
        let old: VpcProps = serde_json::from_value(l.props.clone())?;
        self.set_dns(aws, &l.id, &p, Some(&old)).await?;
        retag(aws, &l.id, d, l).await?;
        Ok(live(self.name(), &d.address, &l.id, json!(p), json!({})))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let r = retry_on(
            &["DependencyViolation"],
            "deleting the VPC",
            DRAIN,
            rep,
            || async { ignore_not_found(aws.ec2.delete_vpc().vpc_id(&l.id).send().await.aws()) },
        )
        .await;
        r.map(|_| None)
    }
}

async fn aws_once_vpc(aws: &Aws, cidr: &str, t: &Tags) -> Result<String, super::errors::AwsError> {
    let out = aws
        .ec2_once
        .create_vpc()
        .cidr_block(cidr)
        .tag_specifications(tag_spec(ResourceType::Vpc, t))
        .send()
        .await
        .aws()?;
    Ok(out
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_string())
}

// ---------------------------------------------------------------- Subnet

#[derive(Serialize, Deserialize)]
struct SubnetProps {
    vpc_id: String,
    cidr_block: String,
    availability_zone: String,
    map_public_ip_on_launch: bool,
    #[serde(default)]
    tags: Tags,
}

struct Subnet;

impl Subnet {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let subnets: Vec<_> = aws
            .ec2
            .describe_subnets()
            .set_filters(Some(filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        Ok(subnets
            .into_iter()
            .filter_map(|s| {
                let all = tag_map(s.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let p = SubnetProps {
                    vpc_id: s.vpc_id().unwrap_or_default().into(),
                    cidr_block: s.cidr_block().unwrap_or_default().into(),
                    availability_zone: s.availability_zone().unwrap_or_default().into(),
                    map_public_ip_on_launch: s.map_public_ip_on_launch().unwrap_or(false),
                    tags: tags::visible(all),
                };
                Some(live(
                    "ec2.subnet",
                    &addr,
                    s.subnet_id().unwrap_or_default(),
                    json!(p),
                    json!({"availability_zone": p.availability_zone}),
                ))
            })
            .collect())
    }
}

#[async_trait]
impl Kind for Subnet {
    fn name(&self) -> &'static str {
        "ec2.subnet"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["vpc_id", "cidr_block", "availability_zone"],
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: SubnetProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_subnet()
                    .vpc_id(&p.vpc_id)
                    .cidr_block(&p.cidr_block)
                    .availability_zone(&p.availability_zone)
                    .tag_specifications(tag_spec(ResourceType::Subnet, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .unwrap_or_default()
                    .to_string())
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        if p.map_public_ip_on_launch {
            set_public_ip(aws, &id, true).await?;
        }
        Ok(live(
            self.name(),
            &d.address,
            &id,
            json!(p),
            json!({"availability_zone": p.availability_zone}),
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: SubnetProps = props(d)?;
        if changed.iter().any(|c| c == "map_public_ip_on_launch") {
            set_public_ip(aws, &l.id, p.map_public_ip_on_launch).await?;
        }
        retag(aws, &l.id, d, l).await?;
        Ok(live(
            self.name(),
            &d.address,
            &l.id,
            json!(p),
            json!({"availability_zone": p.availability_zone}),
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        retry_on(
            &["DependencyViolation"],
            "deleting the subnet",
            DRAIN,
            rep,
            || async {
                ignore_not_found(aws.ec2.delete_subnet().subnet_id(&l.id).send().await.aws())
            },
        )
        .await
        .map(|_| None)
    }
}

async fn set_public_ip(aws: &Aws, id: &str, on: bool) -> Result<()> {
    retry_on(
        &["InvalidSubnetID.NotFound"],
        "setting map_public_ip_on_launch",
        VISIBLE,
        &Quiet,
        || async {
            aws.ec2
                .modify_subnet_attribute()
                .subnet_id(id)
                .map_public_ip_on_launch(boolean(on))
                .send()
                .await
                .aws()
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- Internet gateway

#[derive(Serialize, Deserialize)]
struct IgwProps {
    vpc_id: Option<String>,
    #[serde(default)]
    tags: Tags,
}

struct InternetGateway;

impl InternetGateway {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let igws: Vec<_> = aws
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        Ok(igws
            .into_iter()
            .filter_map(|g| {
                let all = tag_map(g.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let p = IgwProps {
                    vpc_id: g
                        .attachments()
                        .first()
                        .and_then(|a| a.vpc_id())
                        .map(str::to_string),
                    tags: tags::visible(all),
                };
                Some(live(
                    "ec2.internet_gateway",
                    &addr,
                    g.internet_gateway_id().unwrap_or_default(),
                    json!(p),
                    json!({}),
                ))
            })
            .collect())
    }

    async fn attach(&self, aws: &Aws, id: &str, vpc: &str) -> Result<()> {
        retry_on(
            &["InvalidInternetGatewayID.NotFound", "InvalidVpcID.NotFound"],
            "attaching the internet gateway",
            VISIBLE,
            &Quiet,
            || async {
                match aws
                    .ec2
                    .attach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if e.is("Resource.AlreadyAssociated") => Ok(()),
                    other => other.map(|_| ()),
                }
            },
        )
        .await
    }

    async fn detach(&self, aws: &Aws, id: &str, vpc: &str, rep: &dyn StepReporter) -> Result<()> {
        retry_on(
            &["DependencyViolation"],
            "detaching the internet gateway",
            DRAIN,
            rep,
            || async {
                match aws
                    .ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(id)
                    .vpc_id(vpc)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if e.not_found() || e.is("Gateway.NotAttached") => Ok(()),
                    other => other.map(|_| ()),
                }
            },
        )
        .await
    }
}

#[async_trait]
impl Kind for InternetGateway {
    fn name(&self) -> &'static str {
        "ec2.internet_gateway"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: IgwProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
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
                Ok(out
                    .internet_gateway()
                    .and_then(|g| g.internet_gateway_id())
                    .unwrap_or_default()
                    .to_string())
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        if let Some(vpc) = &p.vpc_id {
            self.attach(aws, &id, vpc).await?;
        }
        Ok(live(self.name(), &d.address, &id, json!(p), json!({})))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: IgwProps = props(d)?;
        let old: IgwProps = serde_json::from_value(l.props.clone())?;
        if changed.iter().any(|c| c == "vpc_id") {
            if let Some(v) = &old.vpc_id {
                self.detach(aws, &l.id, v, rep).await?;
            }
            if let Some(v) = &p.vpc_id {
                self.attach(aws, &l.id, v).await?;
            }
        }
        retag(aws, &l.id, d, l).await?;
        Ok(live(self.name(), &d.address, &l.id, json!(p), json!({})))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let old: IgwProps = serde_json::from_value(l.props.clone())?;
        if let Some(v) = &old.vpc_id {
            self.detach(aws, &l.id, v, rep).await?;
        }
        retry_on(
            &["DependencyViolation"],
            "deleting the internet gateway",
            DRAIN,
            rep,
            || async {
                ignore_not_found(
                    aws.ec2
                        .delete_internet_gateway()
                        .internet_gateway_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await
        .map(|_| None)
    }
}

// ---------------------------------------------------------------- Route table

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    destination_cidr_block: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nat_gateway_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct RouteTableProps {
    vpc_id: String,
    routes: Vec<Route>,
    subnet_ids: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

struct RouteTable;

impl RouteTable {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let tables: Vec<_> = aws
            .ec2
            .describe_route_tables()
            .set_filters(Some(filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        Ok(tables
            .into_iter()
            .filter_map(|t| {
                let all = tag_map(t.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let routes: Vec<Route> = t
                    .routes()
                    .iter()
                    .filter(|r| r.gateway_id() != Some("local"))
                    .filter(|r| r.origin().map(|o| o.as_str()) != Some("EnableVgwRoutePropagation"))
                    .filter_map(|r| {
                        Some(Route {
                            destination_cidr_block: r.destination_cidr_block()?.to_string(),
                            gateway_id: r.gateway_id().map(str::to_string),
                            nat_gateway_id: r.nat_gateway_id().map(str::to_string),
                        })
                    })
                    .collect();
                let assocs: BTreeMap<String, String> = t
                    .associations()
                    .iter()
                    .filter(|a| !a.main().unwrap_or(false))
                    .filter_map(|a| {
                        Some((
                            a.subnet_id()?.to_string(),
                            a.route_table_association_id()?.to_string(),
                        ))
                    })
                    .collect();
                let p = RouteTableProps {
                    vpc_id: t.vpc_id().unwrap_or_default().into(),
                    routes,
                    subnet_ids: assocs.keys().cloned().collect(),
                    tags: tags::visible(all),
                };
                Some(live(
                    "ec2.route_table",
                    &addr,
                    t.route_table_id().unwrap_or_default(),
                    json!(p),
                    json!({ "associations": assocs }),
                ))
            })
            .collect())
    }

    async fn add_route(&self, aws: &Aws, id: &str, r: &Route, replace: bool) -> Result<()> {
        let codes = [
            "InvalidRouteTableID.NotFound",
            "InvalidGatewayID.NotFound",
            "InvalidNatGatewayID.NotFound",
        ];
        retry_on(
            &codes,
            &format!("routing {}", r.destination_cidr_block),
            VISIBLE,
            &Quiet,
            || async {
                if replace {
                    aws.ec2
                        .replace_route()
                        .route_table_id(id)
                        .destination_cidr_block(&r.destination_cidr_block)
                        .set_gateway_id(r.gateway_id.clone())
                        .set_nat_gateway_id(r.nat_gateway_id.clone())
                        .send()
                        .await
                        .aws()
                        .map(|_| ())
                } else {
                    match aws
                        .ec2
                        .create_route()
                        .route_table_id(id)
                        .destination_cidr_block(&r.destination_cidr_block)
                        .set_gateway_id(r.gateway_id.clone())
                        .set_nat_gateway_id(r.nat_gateway_id.clone())
                        .send()
                        .await
                        .aws()
                    {
                        // A retry after a lost response.
                        Err(e) if e.is("RouteAlreadyExists") => Ok(()),
                        other => other.map(|_| ()),
                    }
                }
            },
        )
        .await
    }

    async fn associate(&self, aws: &Aws, id: &str, subnet: &str) -> Result<String> {
        let codes = ["InvalidRouteTableID.NotFound", "InvalidSubnetID.NotFound"];
        retry_on(
            &codes,
            &format!("associating {subnet}"),
            VISIBLE,
            &Quiet,
            || async {
                aws.ec2
                    .associate_route_table()
                    .route_table_id(id)
                    .subnet_id(subnet)
                    .send()
                    .await
                    .aws()
            },
        )
        .await
        .map(|o| o.association_id().unwrap_or_default().to_string())
    }

    /// Moves the table from `old` to `new` routes and associations.
    async fn converge(
        &self,
        aws: &Aws,
        id: &str,
        new: &RouteTableProps,
        old: &RouteTableProps,
        assocs: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let old_by_dest: BTreeMap<&str, &Route> = old
            .routes
            .iter()
            .map(|r| (r.destination_cidr_block.as_str(), r))
            .collect();
        let new_dests: BTreeSet<&str> = new
            .routes
            .iter()
            .map(|r| r.destination_cidr_block.as_str())
            .collect();
        for r in &new.routes {
            match old_by_dest.get(r.destination_cidr_block.as_str()) {
                Some(o) if *o == r => {}
                Some(_) => self.add_route(aws, id, r, true).await?,
                None => self.add_route(aws, id, r, false).await?,
            }
        }
        for r in &old.routes {
            if !new_dests.contains(r.destination_cidr_block.as_str()) {
                ignore_not_found(
                    aws.ec2
                        .delete_route()
                        .route_table_id(id)
                        .destination_cidr_block(&r.destination_cidr_block)
                        .send()
                        .await
                        .aws(),
                )?;
            }
        }
        let mut result = assocs.clone();
        for (subnet, assoc) in assocs {
            if !new.subnet_ids.contains(subnet) {
                ignore_not_found(
                    aws.ec2
                        .disassociate_route_table()
                        .association_id(assoc)
                        .send()
                        .await
                        .aws(),
                )?;
                result.remove(subnet);
            }
        }
        for s in &new.subnet_ids {
            if !assocs.contains_key(s) {
                let a = self.associate(aws, id, s).await?;
                result.insert(s.clone(), a);
            }
        }
        Ok(result)
    }
}

#[async_trait]
impl Kind for RouteTable {
    fn name(&self) -> &'static str {
        "ec2.route_table"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["vpc_id"],
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "routes");
        sort_array(props, "subnet_ids");
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: RouteTableProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_route_table()
                    .vpc_id(&p.vpc_id)
                    .tag_specifications(tag_spec(ResourceType::RouteTable, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .route_table()
                    .and_then(|r| r.route_table_id())
                    .unwrap_or_default()
                    .to_string())
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        let empty = RouteTableProps {
            vpc_id: p.vpc_id.clone(),
            routes: vec![],
            subnet_ids: vec![],
            tags: Tags::new(),
        };
        let assocs = self
            .converge(aws, &id, &p, &empty, &BTreeMap::new())
            .await?;
        Ok(live(
            self.name(),
            &d.address,
            &id,
            json!(p),
            json!({ "associations": assocs }),
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: RouteTableProps = props(d)?;
        let old: RouteTableProps = serde_json::from_value(l.props.clone())?;
        let assocs: BTreeMap<String, String> =
            serde_json::from_value(l.attrs.get("associations").cloned().unwrap_or(json!({})))?;
        let assocs = self.converge(aws, &l.id, &p, &old, &assocs).await?;
        retag(aws, &l.id, d, l).await?;
        Ok(live(
            self.name(),
            &d.address,
            &l.id,
            json!(p),
            json!({ "associations": assocs }),
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let assocs: BTreeMap<String, String> =
            serde_json::from_value(l.attrs.get("associations").cloned().unwrap_or(json!({})))?;
        for a in assocs.values() {
            ignore_not_found(
                aws.ec2
                    .disassociate_route_table()
                    .association_id(a)
                    .send()
                    .await
                    .aws(),
            )?;
        }
        retry_on(
            &["DependencyViolation"],
            "deleting the route table",
            DRAIN,
            rep,
            || async {
                ignore_not_found(
                    aws.ec2
                        .delete_route_table()
                        .route_table_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await
        .map(|_| None)
    }
}

// ---------------------------------------------------------------- Elastic IP

#[derive(Serialize, Deserialize)]
struct EipProps {
    domain: String,
    #[serde(default)]
    tags: Tags,
}

struct Eip;

impl Eip {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let out = aws
            .ec2
            .describe_addresses()
            .set_filters(Some(filters(aws, address)))
            .send()
            .await
            .aws()?;
        Ok(out
            .addresses()
            .iter()
            .filter_map(|a| {
                let all = tag_map(a.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let id = a.allocation_id()?;
                let p = EipProps {
                    domain: a
                        .domain()
                        .map(|d| d.as_str().to_string())
                        .unwrap_or("vpc".into()),
                    tags: tags::visible(all),
                };
                Some(live(
                    "ec2.eip",
                    &addr,
                    id,
                    json!(p),
                    json!({ "allocation_id": id, "public_ip": a.public_ip() }),
                ))
            })
            .collect())
    }
}

#[async_trait]
impl Kind for Eip {
    fn name(&self) -> &'static str {
        "ec2.eip"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["domain"],
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: EipProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
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
                Ok((
                    out.allocation_id().unwrap_or_default().to_string(),
                    out.public_ip().map(str::to_string),
                ))
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| {
                        let ip = l
                            .attrs
                            .get("public_ip")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        (l.id, ip)
                    }))
            },
        )
        .await?;
        Ok(live(
            self.name(),
            &d.address,
            &id,
            json!(p),
            json!({ "allocation_id": id, "public_ip": ip }),
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        retag(aws, &l.id, d, l).await?;
        let mut out = l.clone();
        out.props = d.props.clone();
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        retry_on(
            &["InvalidIPAddress.InUse", "AuthFailure"],
            "releasing the Elastic IP",
            DRAIN,
            rep,
            || async {
                ignore_not_found(
                    aws.ec2
                        .release_address()
                        .allocation_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await
        .map(|_| None)
    }
}

// ---------------------------------------------------------------- NAT gateway

#[derive(Serialize, Deserialize)]
struct NatProps {
    subnet_id: String,
    allocation_id: String,
    #[serde(default)]
    tags: Tags,
}

struct NatGateway;

impl NatGateway {
    async fn describe(
        &self,
        aws: &Aws,
        address: Option<&str>,
        id: Option<&str>,
    ) -> Result<Vec<aws_sdk_ec2::types::NatGateway>> {
        let mut req = aws.ec2.describe_nat_gateways();
        req = match id {
            Some(id) => req.nat_gateway_ids(id),
            None => req.set_filter(Some(filters(aws, address))),
        };
        let r = req
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws();
        Ok(ignore_not_found(r)?.unwrap_or_default())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        use aws_sdk_ec2::types::NatGatewayState as S;
        Ok(self
            .describe(aws, address, None)
            .await?
            .into_iter()
            .filter(|n| !matches!(n.state(), Some(S::Deleted | S::Deleting | S::Failed)))
            .filter_map(|n| {
                let all = tag_map(n.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let p = NatProps {
                    subnet_id: n.subnet_id().unwrap_or_default().into(),
                    allocation_id: n
                        .nat_gateway_addresses()
                        .first()
                        .and_then(|a| a.allocation_id())
                        .unwrap_or_default()
                        .into(),
                    tags: tags::visible(all),
                };
                Some(live(
                    "ec2.nat_gateway",
                    &addr,
                    n.nat_gateway_id().unwrap_or_default(),
                    json!(p),
                    json!({}),
                ))
            })
            .collect())
    }
}

#[async_trait]
impl Kind for NatGateway {
    fn name(&self) -> &'static str {
        "ec2.nat_gateway"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["subnet_id", "allocation_id"],
            weight: 30,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        use aws_sdk_ec2::types::NatGatewayState as S;
        let p: NatProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        // The client token makes the SDK's own retries safe.
        let token = client_token(aws, &d.address, &p.subnet_id);
        let out = retry_on(
            &[
                "InvalidSubnetID.NotFound",
                "InvalidAllocationID.NotFound",
                "Gateway.NotAttached",
            ],
            "creating the NAT gateway",
            VISIBLE,
            rep,
            || async {
                aws.ec2
                    .create_nat_gateway()
                    .subnet_id(&p.subnet_id)
                    .allocation_id(&p.allocation_id)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::Natgateway, &t))
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        let id = out
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap_or_default()
            .to_string();
        wait_for(
            "the NAT gateway to become available",
            Duration::from_secs(15 * 60),
            rep,
            || async {
                let n = self.describe(aws, None, Some(&id)).await?;
                match n.first().and_then(|n| n.state()) {
                    Some(S::Available) => Ok(Some(())),
                    Some(S::Failed) => anyhow::bail!(
                        "NAT gateway {id} failed: {}",
                        n.first()
                            .and_then(|n| n.failure_message())
                            .unwrap_or("no reason given")
                    ),
                    _ => Ok(None),
                }
            },
        )
        .await?;
        Ok(live(self.name(), &d.address, &id, json!(p), json!({})))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        retag(aws, &l.id, d, l).await?;
        let mut out = l.clone();
        out.props = d.props.clone();
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        use aws_sdk_ec2::types::NatGatewayState as S;
        ignore_not_found(
            aws.ec2
                .delete_nat_gateway()
                .nat_gateway_id(&l.id)
                .send()
                .await
                .aws(),
        )?;
        wait_for(
            "the NAT gateway to be deleted",
            Duration::from_secs(15 * 60),
            rep,
            || async {
                let n = self.describe(aws, None, Some(&l.id)).await?;
                Ok(match n.first().and_then(|n| n.state()) {
                    None | Some(S::Deleted) => Some(None),
                    _ => None,
                })
            },
        )
        .await
    }
}

/// A deterministic client token for an idempotent create: same stack,
/// address and inputs give the same token, so a retried call is a no-op.
pub fn client_token(aws: &Aws, address: &str, salt: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{}/{address}/{salt}", aws.stack));
    hex::encode(&h.finalize()[..16])
}

// ---------------------------------------------------------------- Security group

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Rule {
    protocol: String,
    from_port: i64,
    to_port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SgProps {
    vpc_id: String,
    group_name: String,
    description: String,
    ingress: Vec<Rule>,
    egress: Vec<Rule>,
    #[serde(default)]
    tags: Tags,
}

fn flatten(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let all = protocol == "-1";
        let from_port = if all {
            -1
        } else {
            p.from_port().map(i64::from).unwrap_or(-1)
        };
        let to_port = if all {
            -1
        } else {
            p.to_port().map(i64::from).unwrap_or(-1)
        };
        for r in p.ip_ranges() {
            out.push(Rule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                cidr: r.cidr_ip().map(str::to_string),
                source_group_id: None,
                description: r
                    .description()
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            });
        }
        for g in p.user_id_group_pairs() {
            out.push(Rule {
                protocol: protocol.clone(),
                from_port,
                to_port,
                cidr: None,
                source_group_id: g.group_id().map(str::to_string),
                description: g
                    .description()
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            });
        }
    }
    out
}

fn permission(r: &Rule) -> IpPermission {
    let mut b = IpPermission::builder().ip_protocol(&r.protocol);
    if r.protocol != "-1" {
        b = b.from_port(r.from_port as i32).to_port(r.to_port as i32);
    }
    if let Some(c) = &r.cidr {
        b = b.ip_ranges(
            IpRange::builder()
                .cidr_ip(c)
                .set_description(r.description.clone())
                .build(),
        );
    }
    if let Some(g) = &r.source_group_id {
        b = b.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(g)
                .set_description(r.description.clone())
                .build(),
        );
    }
    b.build()
}

struct SecurityGroup;

impl SecurityGroup {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let groups: Vec<_> = aws
            .ec2
            .describe_security_groups()
            .set_filters(Some(filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        Ok(groups
            .into_iter()
            .filter_map(|g| {
                let all = tag_map(g.tags());
                let addr = tags::owner(aws, &all)?.to_string();
                let mut p = json!(SgProps {
                    vpc_id: g.vpc_id().unwrap_or_default().into(),
                    group_name: g.group_name().unwrap_or_default().into(),
                    description: g.description().unwrap_or_default().into(),
                    ingress: flatten(g.ip_permissions()),
                    egress: flatten(g.ip_permissions_egress()),
                    tags: tags::visible(all),
                });
                SecurityGroup.normalize(&mut p);
                Some(live(
                    "ec2.security_group",
                    &addr,
                    g.group_id().unwrap_or_default(),
                    p,
                    json!({ "arn": g.security_group_arn() }),
                ))
            })
            .collect())
    }

    /// Revokes what `old` has and `new` lacks, then authorizes the rest.
    async fn converge(
        &self,
        aws: &Aws,
        id: &str,
        new: &SgProps,
        old_in: &[Rule],
        old_out: &[Rule],
    ) -> Result<()> {
        let diff = |want: &[Rule], have: &[Rule]| -> (Vec<IpPermission>, Vec<IpPermission>) {
            let add = want
                .iter()
                .filter(|r| !have.contains(r))
                .map(permission)
                .collect();
            let del = have
                .iter()
                .filter(|r| !want.contains(r))
                .map(permission)
                .collect();
            (add, del)
        };
        let (add_in, del_in) = diff(&new.ingress, old_in);
        let (add_out, del_out) = diff(&new.egress, old_out);
        let codes = ["InvalidGroup.NotFound"];
        if !del_in.is_empty() {
            retry_on(
                &codes,
                "revoking ingress rules",
                VISIBLE,
                &Quiet,
                || async {
                    ignore_not_found(
                        aws.ec2
                            .revoke_security_group_ingress()
                            .group_id(id)
                            .set_ip_permissions(Some(del_in.clone()))
                            .send()
                            .await
                            .aws(),
                    )
                },
            )
            .await?;
        }
        if !del_out.is_empty() {
            retry_on(&codes, "revoking egress rules", VISIBLE, &Quiet, || async {
                ignore_not_found(
                    aws.ec2
                        .revoke_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(del_out.clone()))
                        .send()
                        .await
                        .aws(),
                )
            })
            .await?;
        }
        if !add_in.is_empty() {
            retry_on(
                &codes,
                "authorizing ingress rules",
                VISIBLE,
                &Quiet,
                || async {
                    match aws
                        .ec2
                        .authorize_security_group_ingress()
                        .group_id(id)
                        .set_ip_permissions(Some(add_in.clone()))
                        .send()
                        .await
                        .aws()
                    {
                        Err(e) if e.is("InvalidPermission.Duplicate") => Ok(()),
                        other => other.map(|_| ()),
                    }
                },
            )
            .await?;
        }
        if !add_out.is_empty() {
            retry_on(
                &codes,
                "authorizing egress rules",
                VISIBLE,
                &Quiet,
                || async {
                    match aws
                        .ec2
                        .authorize_security_group_egress()
                        .group_id(id)
                        .set_ip_permissions(Some(add_out.clone()))
                        .send()
                        .await
                        .aws()
                    {
                        Err(e) if e.is("InvalidPermission.Duplicate") => Ok(()),
                        other => other.map(|_| ()),
                    }
                },
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for SecurityGroup {
    fn name(&self) -> &'static str {
        "ec2.security_group"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["vpc_id", "group_name", "description"],
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "ingress");
        sort_array(props, "egress");
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: SgProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_security_group()
                    .group_name(&p.group_name)
                    .description(&p.description)
                    .vpc_id(&p.vpc_id)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out.group_id().unwrap_or_default().to_string())
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        // A new group allows all egress; converge from that.
        let default_egress = vec![Rule {
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr: Some("0.0.0.0/0".into()),
            source_group_id: None,
            description: None,
        }];
        self.converge(aws, &id, &p, &[], &default_egress).await?;
        Ok(live(self.name(), &d.address, &id, json!(p), json!({})))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: SgProps = props(d)?;
        let old: SgProps = serde_json::from_value(l.props.clone())?;
        self.converge(aws, &l.id, &p, &old.ingress, &old.egress)
            .await?;
        retag(aws, &l.id, d, l).await?;
        Ok(live(self.name(), &d.address, &l.id, json!(p), json!({})))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        retry_on(
            &["DependencyViolation", "InvalidGroup.InUse"],
            "deleting the security group",
            DRAIN,
            rep,
            || async {
                ignore_not_found(
                    aws.ec2
                        .delete_security_group()
                        .group_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await
        .map(|_| None)
    }
}
