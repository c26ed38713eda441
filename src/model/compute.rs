//! The compute tier: per web group a launch template, an Auto Scaling group
//! across the zones and a target group; one internet-facing Application
//! Load Balancer with a listener on 80 (and 443 with a certificate, 80 then
//! redirecting), and listener rules when several groups share it.
//!
//! What an instance is launched with (image, type, user data, security
//! groups, metadata options, root volume, instance tags) appears twice: in
//! the launch template, and as the group's `instances` property. The group
//! reads its `instances` back from the template version it actually uses,
//! so a change of any of them shows on the group too, and the group's
//! update is what points it at the new version and starts the instance
//! refresh (the plan says so).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::network::{VPC, security_group, subnet};
use super::{Desired, Output, obj, tags};
use crate::config::Stack;
use crate::config::spec::NatMode;
use crate::config::spec_compute::{Ami, Compute, GroupSpec, Scheme, SubnetTier};
use crate::config::validate_compute::{DEFAULT_SSL_POLICY, group_name, lb_name};
use crate::engine::resource::Resource;
use crate::engine::value::reference;

pub const LB: &str = "compute.lb";
pub const HTTP_LISTENER: &str = "compute.listener.http";
pub const HTTPS_LISTENER: &str = "compute.listener.https";

/// Key of a plan-time image look-up inside a property: `{"$image": {"id":
/// ..} | {"name": .., "owners": [..]}, "get": "id" | "root_device_name" |
/// "root_size"}`.
/// The provider replaces it with the image's attribute before diffing.
pub const IMAGE_KEY: &str = "$image";

pub fn target_group(group: &str) -> String {
    format!("compute.tg.{group}")
}
pub fn launch_template(group: &str) -> String {
    format!("compute.lt.{group}")
}
pub fn auto_scaling_group(group: &str) -> String {
    format!("compute.asg.{group}")
}

/// Longest target group name prefix: ELB allows 32 characters and the
/// provider appends `-` and 4 characters that make each generation unique.
pub const TG_PREFIX_MAX: usize = 27;

/// The target group's name prefix: `<stack>-<group>`, cut to fit, and
/// `i-` in front behind an internal load balancer. A target group serves
/// one load balancer only, so a new load balancer (a scheme change) needs
/// new target groups: the prefix is replace-only and changes with the scheme.
pub fn tg_name_prefix(stack: &str, group: &str, scheme: Scheme) -> String {
    let full = match scheme {
        Scheme::InternetFacing => format!("{stack}-{group}"),
        Scheme::Internal => format!("i-{stack}-{group}"),
    };
    let cut: String = full.chars().take(TG_PREFIX_MAX).collect();
    cut.trim_end_matches('-').to_string()
}

/// What the group's instances are launched with, as the launch template
/// holds it: the `instances` property of the group, with the user data
/// replaced by its digest (the template shows the text).
pub fn instances_view(template_data: &Value) -> Value {
    let mut v = template_data.clone();
    if let Some(o) = v.as_object_mut()
        && let Some(u) = o.remove("user_data")
    {
        let text = u.as_str().unwrap_or_default();
        o.insert("user_data_sha256".into(), json!(sha256_hex(text)));
    }
    v
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn image(ami: &Ami, get: &str) -> Value {
    let lookup = match ami {
        Ami::Id(id) => json!({ "id": id }),
        Ami::Lookup(l) => {
            let mut owners = l.owners.clone();
            owners.sort();
            owners.dedup();
            json!({ "name": l.name, "owners": owners })
        }
    };
    json!({ IMAGE_KEY: lookup, "get": get })
}

/// The launch template data of a group (everything but its name and tags).
fn template_data(stack: &Stack, name: &str, g: &GroupSpec) -> Value {
    let mut instance_tags: BTreeMap<String, String> = stack.spec.tags.clone();
    instance_tags.insert("Name".into(), group_name(&stack.name, name));
    json!({
        "image_id": image(&g.ami, "id"),
        "instance_type": g.instance_type,
        "user_data": g.user_data.clone().unwrap_or_default(),
        "security_group_ids": [reference(&security_group("web"), "id")],
        // IMDSv2 only: a token is required for every metadata request, and
        // two hops let containers on the instance reach it.
        "metadata_options": {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 2,
        },
        "root_volume": obj(vec![
            ("device_name", image(&g.ami, "root_device_name")),
            ("encrypted", json!(true)),
            ("delete_on_termination", json!(true)),
            ("volume_type", json!(g.root_volume.r#type)),
            // Pinned even when not given (the image's size, found at plan
            // time), so the template says exactly what instances get.
            (
                "volume_size",
                g.root_volume
                    .size
                    .map(|s| json!(s))
                    .unwrap_or_else(|| image(&g.ami, "root_size")),
            ),
        ]),
        "instance_tags": instance_tags,
    })
}

pub fn expand(stack: &Stack, d: &mut Desired) {
    let Some(c) = &stack.spec.compute else {
        return;
    };
    let lb = &c.load_balancer;
    let lb_tier = match lb.scheme {
        Scheme::InternetFacing => "public",
        Scheme::Internal => "private",
    };
    d.resources.push(Resource::new(
        LB,
        "elbv2.load_balancer",
        json!({
            "name": lb_name(&stack.name, lb.scheme),
            "scheme": lb.scheme.api(),
            "ip_address_type": "ipv4",
            "subnet_ids": stack.azs.iter().map(|az| reference(&subnet(lb_tier, az), "id")).collect::<Vec<_>>(),
            "security_group_ids": [reference(&security_group("alb"), "id")],
            "tags": tags(stack, "alb"),
        }),
    ));
    d.outputs.push(Output {
        name: "load_balancer_dns",
        address: LB.into(),
        attr: "dns_name",
        description: "DNS name of the load balancer (point your domain at it)",
    });

    for (name, g) in &c.groups {
        d.resources.push(Resource::new(
            target_group(name),
            "elbv2.target_group",
            json!({
                "name_prefix": tg_name_prefix(&stack.name, name, lb.scheme),
                "port": g.port,
                "protocol": g.protocol.api(),
                "vpc_id": reference(VPC, "id"),
                "target_type": "instance",
                "health_check": {
                    "protocol": g.protocol.api(),
                    "port": "traffic-port",
                    "path": g.health_check.path,
                    "matcher": g.health_check.matcher,
                    "interval": g.health_check.interval,
                    "timeout": g.health_check.timeout,
                    "healthy_threshold": g.health_check.healthy_threshold,
                    "unhealthy_threshold": g.health_check.unhealthy_threshold,
                },
                "tags": tags(stack, &format!("tg-{name}")),
            }),
        ));
    }

    listeners(stack, c, d);

    let default_tier = if stack.spec.network.nat == NatMode::None {
        SubnetTier::Public
    } else {
        SubnetTier::Private
    };
    for (name, g) in &c.groups {
        let lt = launch_template(name);
        let data = template_data(stack, name, g);
        let mut lt_props = data.clone();
        if let Some(o) = lt_props.as_object_mut() {
            o.insert("name".into(), json!(group_name(&stack.name, name)));
            o.insert("tags".into(), json!(tags(stack, name)));
        }
        d.resources
            .push(Resource::new(lt.clone(), "ec2.launch_template", lt_props));

        let tier = g.subnets.unwrap_or(default_tier).name();
        let tg = target_group(name);
        let mut policies = Vec::new();
        let scaling = g
            .scaling
            .clone()
            .unwrap_or(crate::config::spec_compute::ScalingSpec {
                cpu_target: Some(50.0),
                requests_per_target: None,
            });
        let full = group_name(&stack.name, name);
        if let Some(t) = scaling.cpu_target {
            policies.push(json!({
                "name": format!("{full}-cpu"),
                "metric": "ASGAverageCPUUtilization",
                "target": t,
            }));
        }
        if let Some(t) = scaling.requests_per_target {
            policies.push(json!({
                "name": format!("{full}-requests"),
                "metric": "ALBRequestCountPerTarget",
                "target": t,
                "load_balancer": reference(LB, "arn_suffix"),
                "target_group": reference(&tg, "arn_suffix"),
            }));
        }
        let scheduled: Vec<Value> = g
            .scheduled
            .iter()
            .map(|s| {
                obj(vec![
                    ("name", json!(s.name)),
                    ("recurrence", json!(s.recurrence)),
                    ("min_size", s.min.map(|v| json!(v)).unwrap_or(Value::Null)),
                    ("max_size", s.max.map(|v| json!(v)).unwrap_or(Value::Null)),
                    (
                        "desired_capacity",
                        s.desired.map(|v| json!(v)).unwrap_or(Value::Null),
                    ),
                    (
                        "time_zone",
                        s.time_zone.clone().map(Value::from).unwrap_or(Value::Null),
                    ),
                ])
            })
            .collect();
        let mut props = Map::new();
        props.insert("name".into(), json!(full));
        props.insert(
            "launch_template".into(),
            json!({ "id": reference(&lt, "id"), "version": reference(&lt, "version") }),
        );
        props.insert("instances".into(), instances_view(&data));
        props.insert("min_size".into(), json!(g.min));
        props.insert("max_size".into(), json!(g.max));
        // Only a pinned desired capacity is compared: otherwise the scaling
        // policies own it and a moved number is not drift.
        if let Some(dc) = g.desired {
            props.insert("desired_capacity".into(), json!(dc));
        }
        props.insert(
            "subnet_ids".into(),
            json!(
                stack
                    .azs
                    .iter()
                    .map(|az| reference(&subnet(tier, az), "id"))
                    .collect::<Vec<_>>()
            ),
        );
        props.insert("target_group_arns".into(), json!([reference(&tg, "arn")]));
        props.insert("health_check_type".into(), json!(g.health_check.kind.api()));
        props.insert(
            "health_check_grace_period".into(),
            json!(g.health_check.grace_period),
        );
        props.insert("policies".into(), json!(policies));
        props.insert("scheduled_actions".into(), json!(scheduled));
        props.insert(
            "refresh".into(),
            obj(vec![
                (
                    "min_healthy_percentage",
                    json!(g.refresh.min_healthy_percentage),
                ),
                (
                    "instance_warmup",
                    g.refresh
                        .instance_warmup
                        .map(|v| json!(v))
                        .unwrap_or(Value::Null),
                ),
            ]),
        );
        props.insert("tags".into(), json!(tags(stack, name)));
        let mut asg = Resource::new(
            auto_scaling_group(name),
            "autoscaling.group",
            Value::Object(props),
        )
        // The target group must be behind the load balancer before the
        // group registers into it (and before a request-count policy
        // can name the pair).
        .after(HTTP_LISTENER);
        if lb.certificate_arn.is_some() {
            asg = asg.after(HTTPS_LISTENER);
        }
        d.resources.push(asg);
    }
}

/// The listeners: 80 forwards (or redirects to 443 when a certificate is
/// given), 443 forwards; with several groups, one rule per routed group.
fn listeners(stack: &Stack, c: &Compute, d: &mut Desired) {
    let lb = &c.load_balancer;
    // Rules: explicit priorities first, the others take 10, 20, 30... in
    // group name order, skipping taken ones (stable across applies).
    let taken: BTreeSet<u16> = c.groups.values().filter_map(|g| g.priority).collect();
    let mut next = 10u16;
    let mut rules = Vec::new();
    let mut default_group = None;
    for (name, g) in &c.groups {
        if g.path_patterns.is_empty() && g.host_headers.is_empty() {
            default_group = Some(name.clone());
            continue;
        }
        let priority = g.priority.unwrap_or_else(|| {
            while taken.contains(&next) {
                next += 10;
            }
            let p = next;
            next += 10;
            p
        });
        let mut patterns = g.path_patterns.clone();
        patterns.sort();
        let mut hosts = g.host_headers.clone();
        hosts.sort();
        rules.push(obj(vec![
            ("priority", json!(priority)),
            (
                "path_patterns",
                if patterns.is_empty() {
                    Value::Null
                } else {
                    json!(patterns)
                },
            ),
            (
                "host_headers",
                if hosts.is_empty() {
                    Value::Null
                } else {
                    json!(hosts)
                },
            ),
            ("target_group_arn", reference(&target_group(name), "arn")),
        ]));
    }
    let forward = match &default_group {
        Some(g) => {
            json!({ "type": "forward", "target_group_arn": reference(&target_group(g), "arn") })
        }
        None => json!({
            "type": "fixed-response",
            "status_code": "404",
            "content_type": "text/plain",
            "message_body": "Not found",
        }),
    };
    match &lb.certificate_arn {
        Some(cert) => {
            d.resources.push(Resource::new(
                HTTP_LISTENER,
                "elbv2.listener",
                json!({
                    "load_balancer_arn": reference(LB, "arn"),
                    "port": 80,
                    "protocol": "HTTP",
                    "default_action": {
                        "type": "redirect",
                        "protocol": "HTTPS",
                        "port": "443",
                        "status_code": "HTTP_301",
                    },
                    "rules": [],
                    "tags": tags(stack, "http"),
                }),
            ));
            d.resources.push(Resource::new(
                HTTPS_LISTENER,
                "elbv2.listener",
                json!({
                    "load_balancer_arn": reference(LB, "arn"),
                    "port": 443,
                    "protocol": "HTTPS",
                    "certificate_arn": cert,
                    "ssl_policy": lb.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.to_string()),
                    "default_action": forward,
                    "rules": rules,
                    "tags": tags(stack, "https"),
                }),
            ));
        }
        None => {
            d.resources.push(Resource::new(
                HTTP_LISTENER,
                "elbv2.listener",
                json!({
                    "load_balancer_arn": reference(LB, "arn"),
                    "port": 80,
                    "protocol": "HTTP",
                    "default_action": forward,
                    "rules": rules,
                    "tags": tags(stack, "http"),
                }),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, check, yaml};
    use crate::engine::graph::topo_order;

    fn stack(extra: &str) -> Stack {
        let text =
            format!("stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{extra}");
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        check(&root, &Overrides::default(), ".".into()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn by_addr<'a>(d: &'a Desired, a: &str) -> &'a Resource {
        d.resources
            .iter()
            .find(|r| r.address == a)
            .unwrap_or_else(|| panic!("no {a}"))
    }

    const ONE: &str = "compute:\n  groups:\n    web:\n      ami: ami-04681a1dbd79675a5\n      instance_type: t3.micro\n      user_data: \"#!/bin/sh\\necho hi\\n\"\n      min: 2\n      max: 6\n";

    #[test]
    fn one_group_expands_to_the_five_resources() {
        let s = stack(ONE);
        let mut d = Desired::default();
        super::super::network::expand(&s, &mut d);
        expand(&s, &mut d);
        topo_order(&d.resources).unwrap();
        let lt = by_addr(&d, "compute.lt.web");
        assert_eq!(lt.props["metadata_options"]["http_tokens"], "required");
        assert_eq!(lt.props["root_volume"]["encrypted"], true);
        assert_eq!(lt.props["instance_tags"]["Name"], "webapp-web");
        let asg = by_addr(&d, "compute.asg.web");
        assert_eq!(asg.props["min_size"], 2);
        assert_eq!(asg.props["max_size"], 6);
        // Not pinned: the scaling policy owns the desired capacity.
        assert!(asg.props.get("desired_capacity").is_none());
        assert_eq!(
            asg.props["policies"][0]["metric"],
            "ASGAverageCPUUtilization"
        );
        assert_eq!(
            asg.props["instances"]["user_data_sha256"],
            sha256_hex("#!/bin/sh\necho hi\n")
        );
        assert!(asg.props["instances"].get("user_data").is_none());
        // Public subnets without NAT, one per zone.
        assert_eq!(asg.props["subnet_ids"].as_array().unwrap().len(), 2);
        assert!(
            asg.dependencies()
                .contains("network.subnet.public.us-east-1a")
        );
        assert!(asg.dependencies().contains(HTTP_LISTENER));
        let http = by_addr(&d, HTTP_LISTENER);
        assert_eq!(http.props["default_action"]["type"], "forward");
        assert!(http.props["rules"].as_array().unwrap().is_empty());
        let lb = by_addr(&d, LB);
        assert_eq!(lb.props["name"], "webapp-alb");
        assert_eq!(lb.props["scheme"], "internet-facing");
        assert_eq!(
            by_addr(&d, "compute.tg.web").props["name_prefix"],
            "webapp-web"
        );
        assert!(d.resources.iter().all(|r| r.address != HTTPS_LISTENER));
        assert_eq!(
            d.outputs
                .iter()
                .filter(|o| o.name == "load_balancer_dns")
                .count(),
            1
        );
    }

    #[test]
    fn certificate_adds_https_and_redirects_http() {
        let s = stack(&format!(
            "{ONE}  load_balancer:\n    certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc-123\n"
        ));
        let mut d = Desired::default();
        expand(&s, &mut d);
        let http = by_addr(&d, HTTP_LISTENER);
        assert_eq!(http.props["default_action"]["type"], "redirect");
        assert_eq!(http.props["default_action"]["port"], "443");
        let https = by_addr(&d, HTTPS_LISTENER);
        assert_eq!(https.props["default_action"]["type"], "forward");
        assert_eq!(https.props["ssl_policy"], DEFAULT_SSL_POLICY);
        assert!(
            by_addr(&d, "compute.asg.web")
                .dependencies()
                .contains(HTTPS_LISTENER)
        );
    }

    #[test]
    fn several_groups_get_rules_and_one_default() {
        let s = stack(&format!(
            "{ONE}    api:\n      ami: {{ name: \"amzn2-ami-hvm-*-x86_64-gp2\", owners: [amazon] }}\n      instance_type: t3.small\n      min: 2\n      max: 4\n      path_patterns: [\"/api/*\"]\n      scaling: {{ requests_per_target: 500 }}\n      desired: 3\n"
        ));
        let mut d = Desired::default();
        expand(&s, &mut d);
        let http = by_addr(&d, HTTP_LISTENER);
        let rules = http.props["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["priority"], 10);
        assert_eq!(rules[0]["path_patterns"][0], "/api/*");
        assert_eq!(
            rules[0]["target_group_arn"],
            reference("compute.tg.api", "arn")
        );
        assert_eq!(
            http.props["default_action"]["target_group_arn"],
            reference("compute.tg.web", "arn")
        );
        let api = by_addr(&d, "compute.asg.api");
        assert_eq!(api.props["desired_capacity"], 3);
        let p = &api.props["policies"][0];
        assert_eq!(p["metric"], "ALBRequestCountPerTarget");
        assert_eq!(p["load_balancer"], reference(LB, "arn_suffix"));
        let lt = by_addr(&d, "compute.lt.api");
        assert_eq!(lt.props["image_id"][IMAGE_KEY]["owners"][0], "amazon");
    }

    #[test]
    fn nat_moves_instances_to_private_subnets() {
        let s = stack(&format!("  nat: single\n{ONE}"));
        let mut d = Desired::default();
        expand(&s, &mut d);
        let asg = by_addr(&d, "compute.asg.web");
        assert!(
            asg.dependencies()
                .contains("network.subnet.private.us-east-1b")
        );
    }

    #[test]
    fn no_compute_section_no_resources() {
        let s = stack("");
        let mut d = Desired::default();
        expand(&s, &mut d);
        assert!(d.resources.is_empty());
    }

    #[test]
    fn target_group_prefix_fits() {
        let p = tg_name_prefix(&"a".repeat(24), "web-frontend", Scheme::InternetFacing);
        assert!(p.len() <= TG_PREFIX_MAX);
        assert!(!p.ends_with('-'));
        let i = tg_name_prefix(&"a".repeat(24), "web-frontend", Scheme::Internal);
        assert!(i.len() <= TG_PREFIX_MAX);
        assert_ne!(i, p, "a scheme change must replace the target groups");
    }
}
