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

use crate::stack::address::*;
use std::collections::{BTreeMap, BTreeSet};

use crate::aws::autoscaling::group::{GroupProps, LaunchTemplateRef, Policy, Refresh, ScheduledAction};
use crate::aws::ec2::launch_template::{
    Image, ImageId, LaunchData, LaunchTemplateProps, Metadata, OfImage, RootVolume, TemplateData, UserData,
};
use crate::aws::elbv2::listener::{Action, ListenerProps, Rule};
use crate::aws::elbv2::load_balancer::LoadBalancerProps;
use crate::aws::elbv2::target_group::{HealthCheck, TargetGroupProps};
use crate::aws::iam::instance_profile::InstanceProfileProps;
use crate::aws::iam::role::RoleProps;
use crate::engine::resource::Props;
use crate::engine::value::Ref;
use crate::stack::Stack;
use crate::stack::access;
use crate::stack::compute::check::DEFAULT_SSL_POLICY;
use crate::stack::compute::spec::{Ami, Compute, GroupSpec, Scheme, SubnetTier};
use crate::stack::desired::{Desired, Output, tags};
use crate::stack::names::{group_name, instance_role as instance_role_name, lb_name, role_path};
use crate::stack::network::spec::NatMode;
use crate::stack::template;

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

/// The image the file names, looked up at plan time (`prepare`).
fn image(ami: &Ami) -> Image {
    match ami {
        Ami::Id(id) => Image::Id { id: id.clone() },
        Ami::Ssm(p) => Image::Ssm { ssm: p.ssm.clone() },
        Ami::Lookup(l) => {
            let mut owners = l.owners.clone();
            owners.sort();
            owners.dedup();
            Image::Lookup { name: l.name.clone(), owners }
        }
    }
}

/// The launch template data of a group (everything but its name and tags).
fn template_data(stack: &Stack, name: &str, g: &GroupSpec, tier: SubnetTier) -> TemplateData {
    let mut instance_tags = stack.spec.tags.clone();
    instance_tags.insert("Name".into(), group_name(&stack.name, name));
    // The checks parsed the user data into text and references.
    let user_data = match stack.user_data.get(name) {
        Some(parts) => Ref::concat(template::values(parts)),
        None => Ref::Value(g.user_data.clone().unwrap_or_default()),
    };
    LaunchData {
        image_id: ImageId::Find(image(&g.ami)),
        instance_type: g.instance_type.clone(),
        user: UserData { user_data },
        security_group_ids: vec![Ref::to(&security_group("web"), "id")],
        // In public subnets (no NAT) instances need a public address to reach
        // anything outside the VPC; the subnets themselves hand out none.
        associate_public_ip_address: tier == SubnetTier::Public,
        iam_instance_profile: Some(Ref::to(&instance_profile(name), "arn")),
        // IMDSv2 only: a token is required for every metadata request, and
        // two hops let containers on the instance reach it.
        metadata_options: Metadata {
            http_endpoint: "enabled".into(),
            http_tokens: "required".into(),
            http_put_response_hop_limit: 2,
        },
        root_volume: RootVolume {
            device_name: OfImage::Image,
            encrypted: true,
            delete_on_termination: true,
            volume_type: g.root_volume.r#type.clone(),
            // Pinned even when not given (the image's size, found at plan
            // time), so the template says exactly what instances get.
            volume_size: Some(g.root_volume.size.map_or(OfImage::Image, |s| OfImage::Value(i64::from(s)))),
        },
        instance_tags,
    }
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
    d.resources.push(
        LoadBalancerProps {
            name: lb_name(&stack.name, lb.scheme),
            scheme: lb.scheme.api().into(),
            ip_address_type: "ipv4".into(),
            subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet(lb_tier, az), "id")).collect(),
            security_group_ids: vec![Ref::to(&security_group("alb"), "id")],
            // Requests with header names that are not valid HTTP are dropped
            // before they reach the instances (request smuggling; Security
            // Hub ELB.4); a production stack's load balancer cannot be
            // deleted by accident (ELB.6).
            attributes: [
                ("deletion_protection.enabled", stack.spec.protect),
                ("routing.http.drop_invalid_header_fields.enabled", true),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            tags: tags(stack, "alb"),
        }
        .at(LOAD_BALANCER),
    );
    d.outputs.push(Output {
        name: "load_balancer_dns",
        address: LOAD_BALANCER.into(),
        attr: "dns_name",
        description: "DNS name of the load balancer (point your domain at it)",
    });

    for (name, g) in &c.groups {
        d.resources.push(
            TargetGroupProps {
                name_prefix: tg_name_prefix(&stack.name, name, lb.scheme),
                port: i64::from(g.port),
                protocol: g.protocol.api().into(),
                vpc_id: Ref::to(VPC, "id"),
                target_type: "instance".into(),
                health_check: HealthCheck {
                    protocol: g.protocol.api().into(),
                    port: "traffic-port".into(),
                    path: g.health_check.path.clone(),
                    matcher: g.health_check.matcher.clone(),
                    interval: i64::from(g.health_check.interval),
                    timeout: i64::from(g.health_check.timeout),
                    healthy_threshold: i64::from(g.health_check.healthy_threshold),
                    unhealthy_threshold: i64::from(g.health_check.unhealthy_threshold),
                },
                tags: tags(stack, &format!("tg-{name}")),
            }
            .at(target_group(name)),
        );
    }

    listeners(stack, c, d);

    let default_tier = if stack.spec.network.nat == NatMode::None { SubnetTier::Public } else { SubnetTier::Private };
    for (name, g) in &c.groups {
        instance_identity(stack, name, g, d);
        let lt = launch_template(name);
        let subnet_tier = g.subnets.unwrap_or(default_tier);
        let data = template_data(stack, name, g, subnet_tier);
        let instances = data.view();
        let full = group_name(&stack.name, name);
        d.resources.push(LaunchTemplateProps { name: full.clone(), data, tags: tags(stack, name) }.at(lt.clone()));

        let tier = subnet_tier.name();
        let tg = target_group(name);
        let mut policies = Vec::new();
        let scaling = g
            .scaling
            .clone()
            .unwrap_or(crate::stack::compute::spec::ScalingSpec { cpu_target: Some(50.0), requests_per_target: None });
        if let Some(t) = scaling.cpu_target {
            policies.push(Policy {
                name: format!("{full}-cpu"),
                metric: "ASGAverageCPUUtilization".into(),
                target: t,
                load_balancer: None,
                target_group: None,
            });
        }
        if let Some(t) = scaling.requests_per_target {
            policies.push(Policy {
                name: format!("{full}-requests"),
                metric: "ALBRequestCountPerTarget".into(),
                target: t,
                load_balancer: Some(Ref::to(LOAD_BALANCER, "arn_suffix")),
                target_group: Some(Ref::to(&tg, "arn_suffix")),
            });
        }
        let scheduled = g
            .scheduled
            .iter()
            .map(|s| ScheduledAction {
                name: s.name.clone(),
                recurrence: s.recurrence.clone(),
                min_size: s.min.map(i64::from),
                max_size: s.max.map(i64::from),
                desired_capacity: s.desired.map(i64::from),
                time_zone: s.time_zone.clone(),
            })
            .collect();
        let mut asg = GroupProps {
            name: full,
            launch_template: LaunchTemplateRef { id: Ref::to(&lt, "id"), version: Ref::to(&lt, "version") },
            instances: Some(instances),
            min_size: i64::from(g.min),
            max_size: i64::from(g.max),
            // Only a pinned desired capacity is compared: otherwise the scaling
            // policies own it and a moved number is not drift.
            desired_capacity: g.desired.map(i64::from),
            subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet(tier, az), "id")).collect(),
            target_group_arns: vec![Ref::to(&tg, "arn")],
            health_check_type: g.health_check.kind.api().into(),
            health_check_grace_period: i64::from(g.health_check.grace_period),
            policies,
            scheduled_actions: scheduled,
            refresh: Some(Refresh {
                min_healthy_percentage: i64::from(g.refresh.min_healthy_percentage),
                instance_warmup: g.refresh.instance_warmup.map(i64::from),
            }),
            tags: tags(stack, name),
        }
        .at(auto_scaling_group(name))
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

/// The group's instance role and profile: Session Manager's core
/// permissions (the way in, instead of SSH keys and an open port 22), and
/// access to exactly the tables and database secret the group declares.
fn instance_identity(stack: &Stack, name: &str, g: &GroupSpec, d: &mut Desired) {
    let role_name = instance_role_name(&stack.name, name, &stack.region);
    let path = role_path(&stack.name, &stack.region);
    let mut policies = BTreeMap::new();
    if !g.tables.is_empty() {
        policies.insert("tables".to_string(), access::tables(&g.tables));
    }
    if g.database {
        policies.insert("database".to_string(), access::database_secret());
    }
    d.resources.push(
        RoleProps {
            name: role_name.clone(),
            path: path.clone(),
            description: format!("Role of the instances of web group {}", group_name(&stack.name, name)),
            assume_role_policy: access::assumed_by("ec2.amazonaws.com"),
            policies,
            managed_policies: vec![format!("arn:{}:iam::aws:policy/{SESSION_MANAGER_POLICY}", stack.partition)],
            tags: tags(stack, &format!("{name}-instances")),
        }
        .at(instance_role(name)),
    );
    d.resources.push(
        InstanceProfileProps {
            name: role_name,
            path,
            role: Ref::to(&instance_role(name), "name"),
            tags: tags(stack, &format!("{name}-instances")),
        }
        .at(instance_profile(name)),
    );
}

/// The AWS managed policy of Session Manager's core functions (Systems
/// Manager User Guide, "Configure instance permissions required for Systems
/// Manager").
pub const SESSION_MANAGER_POLICY: &str = "AmazonSSMManagedInstanceCore";

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
        rules.push(Rule {
            priority: i64::from(priority),
            path_patterns: (!patterns.is_empty()).then_some(patterns),
            host_headers: (!hosts.is_empty()).then_some(hosts),
            target_group_arn: Ref::to(&target_group(name), "arn"),
        });
    }
    let action = |r#type: &str| Action {
        r#type: r#type.into(),
        target_group_arn: None,
        protocol: None,
        port: None,
        status_code: None,
        content_type: None,
        message_body: None,
    };
    let forward = match &default_group {
        Some(g) => Action { target_group_arn: Some(Ref::to(&target_group(g), "arn")), ..action("forward") },
        None => Action {
            status_code: Some("404".into()),
            content_type: Some("text/plain".into()),
            message_body: Some("Not found".into()),
            ..action("fixed-response")
        },
    };
    let listener = |port: i64, protocol: &str, default_action: Action, rules: Vec<Rule>| ListenerProps {
        load_balancer_arn: Ref::to(LOAD_BALANCER, "arn"),
        port,
        protocol: protocol.into(),
        certificate_arn: None,
        ssl_policy: None,
        default_action,
        rules,
        tags: tags(stack, &protocol.to_lowercase()),
    };
    match &lb.certificate_arn {
        Some(cert) => {
            let redirect = Action {
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                status_code: Some("HTTP_301".into()),
                ..action("redirect")
            };
            d.resources.push(listener(80, "HTTP", redirect, Vec::new()).at(HTTP_LISTENER));
            d.resources.push(
                ListenerProps {
                    certificate_arn: Some(cert.clone()),
                    ssl_policy: Some(lb.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.to_string())),
                    ..listener(443, "HTTPS", forward, rules)
                }
                .at(HTTPS_LISTENER),
            );
        }
        None => {
            d.resources.push(listener(80, "HTTP", forward, rules).at(HTTP_LISTENER));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ec2::launch_template::{IMAGE_KEY, sha256_hex};
    use crate::engine::graph::topo_order;
    use crate::engine::resource::Resource;
    use crate::engine::value::reference;
    use crate::stack::{Overrides, check_document as check, yaml};

    fn stack(extra: &str) -> Stack {
        let text = format!("stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{extra}");
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        check(&root, &Overrides::default(), ".".into()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn by_addr<'a>(d: &'a Desired, a: &str) -> &'a Resource {
        d.resources.iter().find(|r| r.address == a).unwrap_or_else(|| panic!("no {a}"))
    }

    const ONE: &str = "compute:\n  groups:\n    web:\n      ami: ami-04681a1dbd79675a5\n      instance_type: t3.micro\n      user_data: \"#!/bin/sh\\necho hi\\n\"\n      min: 2\n      max: 6\n";

    #[test]
    fn one_group_expands_to_the_five_resources() {
        let s = stack(ONE);
        let mut d = Desired::default();
        crate::stack::network::expand::expand(&s, &mut d);
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
        assert_eq!(asg.props["policies"][0]["metric"], "ASGAverageCPUUtilization");
        assert_eq!(asg.props["instances"]["user_data_sha256"], sha256_hex("#!/bin/sh\necho hi\n"));
        assert!(asg.props["instances"].get("user_data").is_none());
        // Public subnets without NAT, one per zone.
        assert_eq!(asg.props["subnet_ids"].as_array().unwrap().len(), 2);
        assert!(asg.dependencies().contains("network.subnet.public.us-east-1a"));
        assert!(asg.dependencies().contains(HTTP_LISTENER));
        let http = by_addr(&d, HTTP_LISTENER);
        assert_eq!(http.props["default_action"]["type"], "forward");
        assert!(http.props["rules"].as_array().unwrap().is_empty());
        let lb = by_addr(&d, LOAD_BALANCER);
        assert_eq!(lb.props["name"], "webapp-alb");
        assert_eq!(lb.props["scheme"], "internet-facing");
        assert_eq!(by_addr(&d, "compute.tg.web").props["name_prefix"], "webapp-web");
        assert!(d.resources.iter().all(|r| r.address != HTTPS_LISTENER));
        assert_eq!(d.outputs.iter().filter(|o| o.name == "load_balancer_dns").count(), 1);
    }

    #[test]
    fn instances_get_their_own_role_with_exactly_the_declared_access() {
        let s = stack(&format!(
            "{ONE}      tables: [orders]\n      database: true\ndata:\n  database: {{ engine: postgres, instance_class: db.t3.micro }}\n  tables:\n    orders:\n      partition_key: {{ name: pk, type: S }}\n"
        ));
        let mut d = Desired::default();
        expand(&s, &mut d);
        let role = by_addr(&d, "compute.role.web");
        assert_eq!(role.props["name"], "webapp-web-ec2-us-east-1");
        assert_eq!(role.props["path"], "/infra/webapp/us-east-1/");
        assert_eq!(role.props["assume_role_policy"]["Statement"][0]["Principal"]["Service"], "ec2.amazonaws.com");
        assert_eq!(
            role.props["managed_policies"],
            serde_json::json!(["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])
        );
        let policies: Vec<&String> = role.props["policies"].as_object().unwrap().keys().collect();
        assert_eq!(policies, ["database", "tables"]);
        assert_eq!(
            role.props["policies"]["tables"]["Statement"][0]["Resource"][0],
            reference("data.table.orders", "arn")
        );
        let profile = by_addr(&d, "compute.instance_profile.web");
        assert_eq!(profile.props["name"], "webapp-web-ec2-us-east-1");
        assert_eq!(profile.props["role"], reference("compute.role.web", "name"));
        let lt = by_addr(&d, "compute.lt.web");
        assert_eq!(lt.props["iam_instance_profile"], reference("compute.instance_profile.web", "arn"));
        assert!(lt.dependencies().contains("compute.instance_profile.web"));
        // Without declarations: Session Manager only.
        let s = stack(ONE);
        let mut d = Desired::default();
        expand(&s, &mut d);
        assert!(by_addr(&d, "compute.role.web").props["policies"].as_object().unwrap().is_empty());
    }

    #[test]
    fn user_data_names_the_stack_values_and_the_group_digests_them() {
        let s = stack(
            &(ONE.replace(
                "user_data: \"#!/bin/sh\\necho hi\\n\"",
                "user_data: \"#!/bin/sh\\necho ${tables.orders.name} ${HOME}\\n\"",
            ) + "data:\n  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n"),
        );
        let mut d = Desired::default();
        expand(&s, &mut d);
        let lt = by_addr(&d, "compute.lt.web");
        assert!(lt.dependencies().contains("data.table.orders"), "{:?}", lt.props["user_data"]);
        let asg = by_addr(&d, "compute.asg.web");
        let digest = &asg.props["instances"]["user_data_sha256"];
        assert!(crate::engine::value::is_symbolic(digest), "{digest}");
        // Once the table's name is known, the template holds the text and
        // the group its digest.
        let lookup = |_: &str, _: &str| Some(serde_json::json!("webapp-orders"));
        let mut text = crate::engine::value::resolve(&lt.props["user_data"], &lookup);
        crate::engine::concat::join(&mut text);
        assert_eq!(text, "#!/bin/sh\necho webapp-orders ${HOME}\n");
        let mut digest = crate::engine::value::resolve(digest, &lookup);
        crate::engine::concat::join(&mut digest);
        assert_eq!(digest, sha256_hex("#!/bin/sh\necho webapp-orders ${HOME}\n"));
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
        assert!(by_addr(&d, "compute.asg.web").dependencies().contains(HTTPS_LISTENER));
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
        assert_eq!(rules[0]["target_group_arn"], reference("compute.tg.api", "arn"));
        assert_eq!(http.props["default_action"]["target_group_arn"], reference("compute.tg.web", "arn"));
        let api = by_addr(&d, "compute.asg.api");
        assert_eq!(api.props["desired_capacity"], 3);
        let p = &api.props["policies"][0];
        assert_eq!(p["metric"], "ALBRequestCountPerTarget");
        assert_eq!(p["load_balancer"], reference(LOAD_BALANCER, "arn_suffix"));
        let lt = by_addr(&d, "compute.lt.api");
        assert_eq!(lt.props["image_id"][IMAGE_KEY]["owners"][0], "amazon");
    }

    #[test]
    fn nat_moves_instances_to_private_subnets() {
        let s = stack(&format!("  nat: single\n{ONE}"));
        let mut d = Desired::default();
        expand(&s, &mut d);
        let asg = by_addr(&d, "compute.asg.web");
        assert!(asg.dependencies().contains("network.subnet.private.us-east-1b"));
    }

    #[test]
    fn every_resource_fits_its_kind_before_its_look_ups() {
        let kinds = crate::aws::registry::kinds();
        for extra in [
            ONE.to_string(),
            format!(
                "{ONE}  load_balancer:\n    certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc-123\n"
            ),
            format!(
                "{ONE}    api:\n      ami: {{ name: \"amzn2-ami-hvm-*-x86_64-gp2\", owners: [amazon] }}\n      instance_type: t3.small\n      min: 2\n      max: 4\n      path_patterns: [\"/api/*\"]\n      root_volume: {{ size: 30 }}\n      scheduled:\n        - {{ name: night, recurrence: \"0 22 * * *\", min: 0 }}\n"
            ),
        ] {
            let s = stack(&extra);
            let mut d = Desired::default();
            expand(&s, &mut d);
            for r in &d.resources {
                let k = kinds.iter().find(|k| k.name() == r.kind).unwrap();
                k.check(&r.props).unwrap_or_else(|e| panic!("{} does not fit {}: {e}", r.address, r.kind));
            }
        }
        // The image look-ups are typed placeholders that prepare replaces.
        let s = stack(ONE);
        let mut d = Desired::default();
        expand(&s, &mut d);
        let lt = by_addr(&d, "compute.lt.web");
        assert_eq!(lt.props["image_id"], serde_json::json!({ IMAGE_KEY: { "id": "ami-04681a1dbd79675a5" } }));
        let asg = by_addr(&d, "compute.asg.web");
        assert_eq!(asg.props["instances"]["image_id"], lt.props["image_id"]);
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
