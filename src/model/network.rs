//! The network tier: VPC, public and private subnets per AZ, internet gateway,
//! route tables with their routes and associations, optional NAT, and the
//! security groups of every tier.

use serde_json::{Value, json};

use super::{Desired, Output, tags};
use crate::config::Stack;
use crate::config::spec::{NatMode, Protocol, RuleSpec, SecurityGroupSpec};
use crate::config::validate::BUILTIN_GROUPS;
use crate::engine::resource::Resource;
use crate::engine::value::reference;

pub const VPC: &str = "network.vpc";
pub const IGW: &str = "network.igw";
pub const KINDS: &[&str] = &[
    "ec2.vpc",
    "ec2.subnet",
    "ec2.internet_gateway",
    "ec2.route_table",
    "ec2.eip",
    "ec2.nat_gateway",
    "ec2.security_group",
];

pub fn subnet(tier: &str, az: &str) -> String {
    format!("network.subnet.{tier}.{az}")
}

pub fn security_group(name: &str) -> String {
    format!("network.sg.{name}")
}

/// Port the database listens on when the stack has none (PostgreSQL's).
pub const DEFAULT_DB_PORT: u16 = 5432;
/// Port the web instances serve on behind the load balancer.
pub const DEFAULT_WEB_PORT: u16 = 80;

pub fn expand(stack: &Stack, d: &mut Desired) {
    let net = &stack.spec.network;
    d.resources.push(Resource::new(
        VPC,
        "ec2.vpc",
        json!({
            "cidr_block": net.cidr,
            "enable_dns_support": true,
            "enable_dns_hostnames": true,
            "tags": tags(stack, "vpc"),
        }),
    ));
    d.outputs.push(Output {
        name: "vpc_id",
        address: VPC.into(),
        attr: "id",
        description: "VPC id",
    });

    for (tier, cidrs, public) in [
        ("public", &stack.public_subnets, true),
        ("private", &stack.private_subnets, false),
    ] {
        for (az, cidr) in stack.azs.iter().zip(cidrs) {
            d.resources.push(Resource::new(
                subnet(tier, az),
                "ec2.subnet",
                json!({
                    "vpc_id": reference(VPC, "id"),
                    "cidr_block": cidr,
                    "availability_zone": az,
                    "map_public_ip_on_launch": public,
                    "tags": tags(stack, &format!("{tier}-{az}")),
                }),
            ));
        }
    }

    d.resources.push(Resource::new(
        IGW,
        "ec2.internet_gateway",
        json!({ "vpc_id": reference(VPC, "id"), "tags": tags(stack, "igw") }),
    ));

    d.resources.push(Resource::new(
        "network.route_table.public",
        "ec2.route_table",
        json!({
            "vpc_id": reference(VPC, "id"),
            "routes": [{ "destination_cidr_block": "0.0.0.0/0", "gateway_id": reference(IGW, "id") }],
            "subnet_ids": stack.azs.iter().map(|az| reference(&subnet("public", az), "id")).collect::<Vec<_>>(),
            "tags": tags(stack, "public"),
        }),
    ));

    // NAT gateways: none, one in the first AZ, or one per AZ.
    let nat_azs: Vec<&String> = match net.nat {
        NatMode::None => vec![],
        NatMode::Single => stack.azs.iter().take(1).collect(),
        NatMode::PerAz => stack.azs.iter().collect(),
    };
    for az in &nat_azs {
        let eip = format!("network.eip.nat.{az}");
        d.resources.push(Resource::new(
            eip.clone(),
            "ec2.eip",
            json!({ "domain": "vpc", "tags": tags(stack, &format!("nat-{az}")) }),
        ));
        d.resources.push(
            Resource::new(
                format!("network.nat.{az}"),
                "ec2.nat_gateway",
                json!({
                    "subnet_id": reference(&subnet("public", az), "id"),
                    "allocation_id": reference(&eip, "allocation_id"),
                    "tags": tags(stack, &format!("nat-{az}")),
                }),
            )
            // A NAT gateway needs the VPC's internet gateway attached.
            .after(IGW),
        );
    }
    for az in &stack.azs {
        let nat = match net.nat {
            NatMode::None => None,
            NatMode::Single => nat_azs.first().map(|a| format!("network.nat.{a}")),
            NatMode::PerAz => Some(format!("network.nat.{az}")),
        };
        let routes: Vec<Value> = nat
            .map(|n| vec![json!({ "destination_cidr_block": "0.0.0.0/0", "nat_gateway_id": reference(&n, "id") })])
            .unwrap_or_default();
        d.resources.push(Resource::new(
            format!("network.route_table.private.{az}"),
            "ec2.route_table",
            json!({
                "vpc_id": reference(VPC, "id"),
                "routes": routes,
                "subnet_ids": [reference(&subnet("private", az), "id")],
                "tags": tags(stack, &format!("private-{az}")),
            }),
        ));
    }

    // Security groups: the built-in tiers, then the user's extra groups.
    let mut names: Vec<String> = BUILTIN_GROUPS.iter().map(|s| s.to_string()).collect();
    names.extend(
        net.security_groups
            .keys()
            .filter(|k| !BUILTIN_GROUPS.contains(&k.as_str()))
            .cloned(),
    );
    for name in names {
        let spec = net.security_groups.get(&name).cloned().unwrap_or_default();
        let ingress = spec
            .ingress
            .clone()
            .unwrap_or_else(|| default_ingress(&name, super::data::db_port(stack)));
        let egress = spec.egress.clone().unwrap_or_else(|| {
            vec![RuleSpec {
                port: None,
                to_port: None,
                protocol: Protocol::All,
                cidrs: vec!["0.0.0.0/0".into()],
                from: vec![],
                description: None,
            }]
        });
        d.resources.push(Resource::new(
            security_group(&name),
            "ec2.security_group",
            json!({
                "vpc_id": reference(VPC, "id"),
                "group_name": format!("{}-{name}", stack.name),
                "description": description(&name, &spec),
                "ingress": rules(&ingress),
                "egress": rules(&egress),
                "tags": tags(stack, &format!("sg-{name}")),
            }),
        ));
    }
}

fn description(name: &str, spec: &SecurityGroupSpec) -> String {
    spec.description.clone().unwrap_or_else(|| match name {
        "alb" => "Load balancer: HTTP and HTTPS from anywhere".into(),
        "web" => "Web instances: traffic from the load balancer only".into(),
        "functions" => "Lambda functions: outbound only".into(),
        "database" => "Database: from web instances and functions only".into(),
        other => format!("{other} security group"),
    })
}

fn rule(port: u16, cidrs: &[&str], from: &[&str]) -> RuleSpec {
    RuleSpec {
        port: Some(port),
        to_port: None,
        protocol: Protocol::Tcp,
        cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
        from: from.iter().map(|s| s.to_string()).collect(),
        description: None,
    }
}

/// The safe defaults of each built-in tier (`db_port`: the database engine's).
pub fn default_ingress(name: &str, db_port: u16) -> Vec<RuleSpec> {
    match name {
        "alb" => vec![
            rule(80, &["0.0.0.0/0"], &[]),
            rule(443, &["0.0.0.0/0"], &[]),
        ],
        "web" => vec![rule(DEFAULT_WEB_PORT, &[], &["alb"])],
        "database" => vec![rule(db_port, &[], &["web", "functions"])],
        _ => vec![],
    }
}

/// Expands rules to one entry per (source), the EC2 API's granularity.
fn rules(specs: &[RuleSpec]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in specs {
        let (from_port, to_port) = match r.protocol {
            Protocol::All => (-1i64, -1i64),
            _ => {
                let a = i64::from(r.port.unwrap_or(0));
                (a, r.to_port.map(i64::from).unwrap_or(a))
            }
        };
        let base = |src: (&str, Value)| {
            let mut v =
                json!({ "protocol": r.protocol.api(), "from_port": from_port, "to_port": to_port });
            v[src.0] = src.1;
            if let Some(d) = &r.description {
                v["description"] = json!(d);
            }
            v
        };
        for c in &r.cidrs {
            out.push(base(("cidr", json!(c))));
        }
        for g in &r.from {
            out.push(base((
                "source_group_id",
                reference(&security_group(g), "id"),
            )));
        }
    }
    out
}
