//! The network tier: VPC, public and private subnets per AZ, internet gateway,
//! route tables with their routes and associations, optional NAT, and the
//! security groups of every tier.

use crate::aws::ec2::default_network_acl::DefaultNetworkAclProps;
use crate::aws::ec2::default_security_group::DefaultSecurityGroupProps;
use crate::aws::ec2::eip::EipProps;
use crate::aws::ec2::flow_log::FlowLogProps;
use crate::aws::ec2::internet_gateway::InternetGatewayProps;
use crate::aws::ec2::nat_gateway::NatGatewayProps;
use crate::aws::ec2::network_acl::{Entry, NetworkAclProps};
use crate::aws::ec2::route_table::{Route, RouteTableProps};
use crate::aws::ec2::security_group::{Rule, SecurityGroupProps};
use crate::aws::ec2::subnet::SubnetProps;
use crate::aws::ec2::vpc::VpcProps;
use crate::aws::ec2::vpc_endpoint::VpcEndpointProps;
use crate::aws::logs::log_group::LogGroupProps;
use crate::engine::resource::Props;
use crate::engine::value::Ref;
use crate::engine::value::reference;
use crate::stack::address::*;
use crate::stack::desired::{Desired, Output, tags};
use crate::stack::names;
use crate::stack::network::check::{acl_openings, rule};
use crate::stack::network::endpoints::{GROUP as ENDPOINTS_GROUP, service_name};
use crate::stack::network::spec::{NatMode, Protocol, RuleSpec};
use crate::stack::{Stack, access};
use serde_json::json;

pub fn expand(stack: &Stack, d: &mut Desired) {
    let net = &stack.spec.network;
    d.resources.push(
        VpcProps {
            cidr_block: net.cidr.clone(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
            tags: tags(stack, "vpc"),
        }
        .at(VPC),
    );
    d.outputs.push(Output { name: "vpc_id", address: VPC.into(), attr: "id", description: "VPC id" });

    for (tier, cidrs) in [("public", &stack.public_subnets), ("private", &stack.private_subnets)] {
        for (az, cidr) in stack.azs.iter().zip(cidrs) {
            d.resources.push(
                SubnetProps {
                    vpc_id: Ref::to(VPC, "id"),
                    cidr_block: cidr.clone(),
                    availability_zone: az.clone(),
                    // Nothing gets a public address by being launched here
                    // (CIS/FSBP EC2.15): the web groups' launch templates ask
                    // for one where they need it, NAT gateways and the load
                    // balancer bring their own.
                    map_public_ip_on_launch: false,
                    tags: tags(stack, &format!("{tier}-{az}")),
                }
                .at(subnet(tier, az)),
            );
        }
    }

    d.resources.push(InternetGatewayProps { vpc_id: Some(Ref::to(VPC, "id")), tags: tags(stack, "igw") }.at(IGW));

    d.resources.push(
        RouteTableProps {
            vpc_id: Ref::to(VPC, "id"),
            routes: vec![Route {
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id: Some(Ref::to(IGW, "id")),
                nat_gateway_id: None,
            }],
            subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet("public", az), "id")).collect(),
            tags: tags(stack, "public"),
        }
        .at("network.route_table.public"),
    );

    // NAT gateways: none, one in the first AZ, or one per AZ.
    let nat_azs: Vec<&String> = match net.nat {
        NatMode::None => vec![],
        NatMode::Single => stack.azs.iter().take(1).collect(),
        NatMode::PerAz => stack.azs.iter().collect(),
    };
    for az in &nat_azs {
        let eip = format!("network.eip.nat.{az}");
        d.resources.push(EipProps { domain: "vpc".into(), tags: tags(stack, &format!("nat-{az}")) }.at(eip.clone()));
        d.resources.push(
            NatGatewayProps {
                subnet_id: Ref::to(&subnet("public", az), "id"),
                allocation_id: Ref::to(&eip, "allocation_id"),
                tags: tags(stack, &format!("nat-{az}")),
            }
            .at(format!("network.nat.{az}"))
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
        let routes = nat
            .map(|n| {
                vec![Route {
                    destination_cidr_block: "0.0.0.0/0".into(),
                    gateway_id: None,
                    nat_gateway_id: Some(Ref::to(&n, "id")),
                }]
            })
            .unwrap_or_default();
        d.resources.push(
            RouteTableProps {
                vpc_id: Ref::to(VPC, "id"),
                routes,
                subnet_ids: vec![Ref::to(&subnet("private", az), "id")],
                tags: tags(stack, &format!("private-{az}")),
            }
            .at(format!("network.route_table.private.{az}")),
        );
    }

    endpoints(stack, d);
    flow_logs(stack, d);
    network_acls(stack, d);
    if net.restrict_default_security_group {
        d.resources.push(
            DefaultSecurityGroupProps {
                vpc_id: Ref::to(VPC, "id"),
                ingress: vec![],
                egress: vec![],
                tags: tags(stack, "sg-default"),
            }
            .at(DEFAULT_SECURITY_GROUP),
        );
    }

    // Security groups: the built-in tiers, then the user's extra groups.
    for (name, g) in &stack.security_groups {
        d.resources.push(
            SecurityGroupProps {
                vpc_id: Ref::to(VPC, "id"),
                group_name: format!("{}-{name}", stack.name),
                description: g.description.clone(),
                ingress: rules(&g.ingress),
                egress: rules(&g.egress),
                tags: tags(stack, &format!("sg-{name}")),
            }
            .at(security_group(name)),
        );
    }
}

/// The ephemeral ports answers come back to: NAT gateways and Lambda's
/// network interfaces use 1024-65535 (VPC user guide, "Ephemeral ports").
const EPHEMERAL: (i32, i32) = (1024, 65535);

/// A network ACL per subnet tier, and the VPC's default ACL emptied.
///
/// Each tier's ACL admits: all traffic from inside the VPC; from outside,
/// exactly what some security group of the stack admits from a CIDR block
/// outside the VPC (so an ACL never silently blocks what a group opens),
/// and TCP/UDP answers on the ephemeral ports. Egress is open: the groups
/// decide it.
fn network_acls(stack: &Stack, d: &mut Desired) {
    let net = &stack.spec.network;
    if !net.network_acls {
        return;
    }
    let opened = acl_openings(&net.cidr, &stack.security_groups);
    let mut ingress = vec![Entry::allow(false, 100, "-1", &net.cidr, None)];
    for (i, (protocol, ports, cidr)) in opened.iter().enumerate() {
        ingress.push(Entry::allow(false, 200 + 10 * i as i32, protocol, cidr, *ports));
    }
    let answers = 200 + 10 * opened.len() as i32;
    ingress.push(Entry::allow(false, answers, "6", "0.0.0.0/0", Some(EPHEMERAL)));
    ingress.push(Entry::allow(false, answers + 10, "17", "0.0.0.0/0", Some(EPHEMERAL)));
    let mut entries = ingress;
    entries.push(Entry::allow(true, 100, "-1", "0.0.0.0/0", None));
    for (tier, what) in [("public", "public"), ("private", "private")] {
        d.resources.push(
            NetworkAclProps {
                vpc_id: Ref::to(VPC, "id"),
                entries: entries.clone(),
                subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet(tier, az), "id")).collect(),
                tags: tags(stack, &format!("acl-{what}")),
            }
            .at(network_acl(tier)),
        );
    }
    d.resources.push(
        DefaultNetworkAclProps { vpc_id: Ref::to(VPC, "id"), entries: vec![], tags: tags(stack, "acl-default") }
            .at(DEFAULT_NETWORK_ACL)
            // Emptied once no subnet of the stack relies on it.
            .after(&network_acl("public"))
            .after(&network_acl("private")),
    );
}

/// VPC flow logs: a log group under the stack's prefix, the role the flow
/// logs service delivers with (trusted only for this account's flow logs:
/// the confused-deputy conditions), and the flow log itself.
fn flow_logs(stack: &Stack, d: &mut Desired) {
    let f = &stack.spec.network.flow_logs;
    if !f.enabled {
        return;
    }
    d.resources.push(
        LogGroupProps {
            name: names::log_group(&stack.name, "vpc-flow-logs"),
            retention_days: Some(f.retention_days as i32),
            tags: tags(stack, "flow-logs"),
        }
        .at(FLOW_LOG_GROUP),
    );
    d.resources.push(
        access::service_role(
            stack,
            names::flow_log_role(&stack.name, &stack.region),
            "vpc-flow-logs.amazonaws.com",
            format!("VPC flow logs of stack {} deliver to CloudWatch Logs", stack.name),
            [(
                "deliver".to_string(),
                json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "WriteFlowLogs",
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        "Resource": [Ref::<String>::to(FLOW_LOG_GROUP, "arn"), Ref::concat(vec![reference(FLOW_LOG_GROUP, "arn"), json!(":*")])],
                    }],
                }),
            )]
            .into(),
            vec![],
            "flow-logs",
        )
        .at(FLOW_LOG_ROLE),
    );
    d.resources.push(
        FlowLogProps {
            vpc_id: Ref::to(VPC, "id"),
            traffic_type: f.traffic.api().to_string(),
            log_group_name: Ref::to(FLOW_LOG_GROUP, "name"),
            role_arn: Ref::to(FLOW_LOG_ROLE, "arn"),
            max_aggregation_interval: 600,
            tags: tags(stack, "flow-logs"),
        }
        .at(FLOW_LOG),
    );
}

/// VPC endpoints: gateway ones on the private route tables, interface ones
/// in the private subnets (one network interface per AZ) with private DNS.
fn endpoints(stack: &Stack, d: &mut Desired) {
    for e in &stack.endpoints {
        let private = |what: &str| -> Vec<Ref> {
            stack
                .azs
                .iter()
                .map(|az| match what {
                    "route_table" => Ref::to(&format!("network.route_table.private.{az}"), "id"),
                    _ => Ref::to(&subnet("private", az), "id"),
                })
                .collect()
        };
        let props = VpcEndpointProps {
            vpc_id: Ref::to(VPC, "id"),
            service_name: service_name(&e.service, &stack.region, stack.partition, e.gateway),
            endpoint_type: if e.gateway { "Gateway" } else { "Interface" }.into(),
            route_table_ids: if e.gateway { private("route_table") } else { vec![] },
            subnet_ids: if e.gateway { vec![] } else { private("subnet") },
            security_group_ids: if e.gateway { vec![] } else { vec![Ref::to(&security_group(ENDPOINTS_GROUP), "id")] },
            private_dns_enabled: !e.gateway,
            policy: crate::stack::network::endpoints::policy(e, &stack.region, stack.partition),
            tags: tags(stack, &format!("endpoint-{}", e.service)),
        };
        d.resources.push(props.at(format!("network.endpoint.{}", e.service)).because(e.reason.clone()));
    }
    if stack.endpoints.iter().any(|e| !e.gateway) {
        d.resources.push(
            SecurityGroupProps {
                vpc_id: Ref::to(VPC, "id"),
                group_name: format!("{}-{ENDPOINTS_GROUP}", stack.name),
                description: "VPC interface endpoints: HTTPS from functions and web instances".into(),
                ingress: rules(&[rule(443, &[], &["functions", "web"])]),
                egress: vec![],
                tags: tags(stack, &format!("sg-{ENDPOINTS_GROUP}")),
            }
            .at(security_group(ENDPOINTS_GROUP)),
        );
    }
}

/// Expands rules to one entry per (source), the EC2 API's granularity.
fn rules(specs: &[RuleSpec]) -> Vec<Rule> {
    let mut out = Vec::new();
    for r in specs {
        let (from_port, to_port) = match r.protocol {
            Protocol::All => (-1i64, -1i64),
            _ => {
                let a = i64::from(r.port.unwrap_or(0));
                (a, r.to_port.map(i64::from).unwrap_or(a))
            }
        };
        let base = Rule {
            protocol: r.protocol.api().to_string(),
            from_port,
            to_port,
            cidr: None,
            source_group_id: None,
            description: r.description.clone(),
        };
        for c in &r.cidrs {
            out.push(Rule { cidr: Some(c.clone()), ..base.clone() });
        }
        for g in &r.from {
            out.push(Rule { source_group_id: Some(Ref::to(&security_group(g), "id")), ..base.clone() });
        }
    }
    out
}
