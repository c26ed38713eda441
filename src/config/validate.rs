//! Semantic checks of a schema-valid stack file, and the values derived from
//! it (zones, subnet CIDRs). Everything AWS would reject mid-apply, and
//! everything moto would wrongly accept, is caught here, all at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipnet::Ipv4Net;

use super::aws_rules as rules;
use super::spec::{Azs, Protocol, RuleSpec, StackFile};
use super::yaml::PathSeg;
use super::{Overrides, PathError, Stack};

/// Security groups every stack has, with the tiers they protect.
pub const BUILTIN_GROUPS: &[&str] = &["alb", "web", "functions", "database"];

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn path(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|p| key(p)).collect()
}

pub fn validate(
    mut spec: StackFile,
    ov: &Overrides,
    base_dir: PathBuf,
) -> Result<Stack, Vec<PathError>> {
    let mut errs: Vec<PathError> = Vec::new();

    // Stack name (the flag wins over the file).
    let name = ov.stack.clone().unwrap_or_else(|| spec.stack.clone());
    if let Err(e) = rules::validate_stack_name(&name) {
        let e = PathError::new(path(&["stack"]), e);
        errs.push(if ov.stack.is_some() {
            e.help("the name comes from --stack; pick a shorter lowercase name")
        } else {
            e.help("use lowercase letters, digits and hyphens, e.g. `webapp`")
        });
    }

    // Region.
    let region = ov
        .region
        .clone()
        .or_else(|| spec.region.clone())
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|s| !s.is_empty())
        });
    let region = match region {
        Some(r) => r,
        None => {
            errs.push(
                PathError::new(vec![], "no AWS region")
                    .help("set `region:` in the file, pass --region, or set AWS_REGION"),
            );
            String::new()
        }
    };
    let region_azs = rules::region_azs(&region);
    if !region.is_empty() && region_azs.is_none() && !spec.allow_unknown_region {
        let names: Vec<&str> = rules::REGIONS.iter().map(|r| r.name).collect();
        let help = match rules::did_you_mean(&region, &names) {
            Some(m) => format!("did you mean `{m}`? (for a region newer than infra, set `allow_unknown_region: true`)"),
            None => "use an AWS region such as us-east-1; for a region newer than infra, set `allow_unknown_region: true`".into(),
        };
        errs.push(
            PathError::new(path(&["region"]), format!("unknown region `{region}`")).help(help),
        );
    }

    // Tags.
    for (k, v) in &spec.tags {
        if let Err(e) = rules::validate_tag_key(k) {
            errs.push(PathError {
                path: path(&["tags", k]),
                message: e,
                help: Some("rename the tag".into()),
                at_key: true,
            });
        }
        if let Err(e) = rules::validate_tag_value(v) {
            errs.push(PathError::new(path(&["tags", k]), e).help("change the value"));
        }
        if k.starts_with("infra:") {
            errs.push(PathError {
                path: path(&["tags", k]),
                message: "tags starting with `infra:` are reserved for the tool".into(),
                help: Some("rename the tag".into()),
                at_key: true,
            });
        }
    }

    // Network.
    let net = &spec.network;
    let vpc: Option<Ipv4Net> = cidr(&net.cidr, path(&["network", "cidr"]), &mut errs);
    if let Some(v) = vpc
        && let Err(e) = rules::validate_cidr_block_size_vpc(v.prefix_len())
    {
        errs.push(
            PathError::new(path(&["network", "cidr"]), e)
                .help("use a prefix between /16 and /28, e.g. 10.0.0.0/16"),
        );
    }

    let azs: Vec<String> = match &net.azs {
        Azs::Count(n) => {
            let n = *n as usize;
            let available = region_azs.clone().unwrap_or_default();
            if region_azs.is_none() {
                if !region.is_empty() {
                    errs.push(
                        PathError::new(
                            path(&["network", "azs"]),
                            "cannot derive zone names for a region infra does not know",
                        )
                        .help(format!("list them: `azs: [{region}a, {region}b]`")),
                    );
                }
                Vec::new()
            } else if n > available.len() {
                errs.push(
                    PathError::new(
                        path(&["network", "azs"]),
                        format!(
                            "{region} has {} Availability Zones, not {n}",
                            available.len()
                        ),
                    )
                    .help(format!("use at most {}", available.len())),
                );
                Vec::new()
            } else {
                available.into_iter().take(n).collect()
            }
        }
        Azs::Names(names) => {
            let mut seen = BTreeMap::new();
            for (i, a) in names.iter().enumerate() {
                let p = vec![key("network"), key("azs"), PathSeg::Index(i)];
                if let Some(list) = &region_azs
                    && !list.contains(a)
                {
                    let refs: Vec<&str> = list.iter().map(String::as_str).collect();
                    let help = match rules::did_you_mean(a, &refs) {
                        Some(m) => format!("did you mean `{m}`?"),
                        None => format!("{region} has: {}", list.join(", ")),
                    };
                    errs.push(
                        PathError::new(
                            p.clone(),
                            format!("`{a}` is not an Availability Zone of {region}"),
                        )
                        .help(help),
                    );
                }
                if seen.insert(a.clone(), i).is_some() {
                    errs.push(
                        PathError::new(p, format!("`{a}` is listed twice"))
                            .help("list each zone once"),
                    );
                }
            }
            names.clone()
        }
    };
    let az_count = azs.len();
    let min_azs = if net.single_az { 1 } else { 2 };
    if az_count < min_azs && !(matches!(net.azs, Azs::Count(n) if n as usize > az_count)) {
        errs.push(
            PathError::new(path(&["network", "azs"]), format!("{az_count} Availability Zone(s): high availability needs at least two"))
                .help(if az_count == 1 {
                    "use `azs: 2`, or set `single_az: true` to accept losing the stack with its data centre"
                } else {
                    "use `azs: 2` or more"
                }),
        );
    }
    if az_count > 8 {
        errs.push(
            PathError::new(
                path(&["network", "azs"]),
                "at most 8 Availability Zones are supported",
            )
            .help("use fewer zones"),
        );
    }

    // Subnets: given or derived.
    let mut subnet_nets: Vec<(Vec<PathSeg>, Ipv4Net)> = Vec::new();
    let mut derive = |tier: &str,
                      given: &Option<Vec<String>>,
                      offset: usize,
                      errs: &mut Vec<PathError>|
     -> Vec<String> {
        match given {
            Some(list) => {
                if list.len() != az_count && az_count > 0 {
                    errs.push(
                        PathError::new(
                            path(&["network", tier]),
                            format!("{} CIDRs for {az_count} Availability Zones", list.len()),
                        )
                        .help("give exactly one CIDR per zone, in the order of `azs`"),
                    );
                }
                for (i, c) in list.iter().enumerate() {
                    let p = vec![key("network"), key(tier), PathSeg::Index(i)];
                    if let Some(n) = cidr(c, p.clone(), errs) {
                        if let Err(e) = rules::validate_cidr_block_size_subnet(n.prefix_len()) {
                            errs.push(
                                PathError::new(p.clone(), e)
                                    .help("use a prefix between /16 and /28"),
                            );
                        }
                        subnet_nets.push((p, n));
                    }
                }
                list.clone()
            }
            None => {
                let Some(v) = vpc else { return Vec::new() };
                let new_prefix = v.prefix_len() + 4;
                if new_prefix > 28 {
                    errs.push(
                        PathError::new(
                            path(&["network", "cidr"]),
                            format!("/{} is too small to derive subnets", v.prefix_len()),
                        )
                        .help(format!(
                            "use a VPC of /24 or larger, or list `{tier}` CIDRs explicitly"
                        )),
                    );
                    return Vec::new();
                }
                let Ok(subs) = v.subnets(new_prefix) else {
                    return Vec::new();
                };
                let subs: Vec<Ipv4Net> = subs.collect();
                (0..az_count)
                    .filter_map(|i| subs.get(offset + i).map(|n| n.to_string()))
                    .collect()
            }
        }
    };
    let public_subnets = derive("public_subnets", &net.public_subnets, 0, &mut errs);
    let private_subnets = derive("private_subnets", &net.private_subnets, 8, &mut errs);
    if let Some(v) = vpc {
        for (p, n) in &subnet_nets {
            if !v.contains(n) {
                errs.push(
                    PathError::new(p.clone(), format!("{n} is outside the VPC {v}"))
                        .help(format!("pick a block inside {v}")),
                );
            }
        }
        for i in 0..subnet_nets.len() {
            for j in 0..i {
                let (a, b) = (&subnet_nets[i].1, &subnet_nets[j].1);
                if a.contains(&b.network()) || b.contains(&a.network()) {
                    errs.push(
                        PathError::new(subnet_nets[i].0.clone(), format!("{a} overlaps {b}"))
                            .help("subnets of a VPC must not overlap; pick a free block"),
                    );
                }
            }
        }
    }

    // Security groups.
    let mut groups: Vec<String> = BUILTIN_GROUPS.iter().map(|s| s.to_string()).collect();
    for g in net.security_groups.keys() {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    for (g, sg) in &net.security_groups {
        let gp = vec![key("network"), key("security_groups"), key(g)];
        let ok_name = g.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && g.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if g == crate::config::endpoints::GROUP {
            errs.push(PathError {
                path: gp.clone(),
                message: format!(
                    "the group name `{g}` is reserved for the VPC interface endpoints' group"
                ),
                help: Some("rename it".into()),
                at_key: true,
            });
        } else if !ok_name {
            errs.push(PathError { path: gp.clone(), message: format!("group name `{g}` must be lowercase letters, digits, `-` or `_`, starting with a letter"), help: Some("rename it".into()), at_key: true });
        } else if let Err(e) = rules::validate_security_group_name(&format!("{name}-{g}")) {
            errs.push(PathError {
                path: gp.clone(),
                message: e,
                help: Some("use a shorter name".into()),
                at_key: true,
            });
        }
        if let Some(d) = &sg.description
            && (d.len() > 255 || !d.chars().all(|c| c.is_ascii() && !c.is_ascii_control()))
        {
            let mut p = gp.clone();
            p.push(key("description"));
            errs.push(
                PathError::new(
                    p,
                    "a security group description is at most 255 ASCII characters",
                )
                .help("shorten it"),
            );
        }
        for (dir, list) in [("ingress", &sg.ingress), ("egress", &sg.egress)] {
            for (i, r) in list.iter().flatten().enumerate() {
                let mut rp = gp.clone();
                rp.push(key(dir));
                rp.push(PathSeg::Index(i));
                check_rule(r, &rp, g, dir, &group_refs, &mut errs);
            }
        }
    }

    let partition = rules::partition_of(&region);
    super::validate_frontend::validate(&mut spec, &name, &region, partition, &base_dir, &mut errs);
    super::validate_compute::check(
        &mut spec,
        &name,
        &region,
        partition,
        azs.len(),
        &base_dir,
        &mut errs,
    );
    super::validate_backend::validate(&spec, &name, &region, &base_dir, &mut errs);
    super::validate_data::validate(&spec, &name, azs.len(), &mut errs);
    let endpoints = super::endpoints::resolve(&spec, &mut errs);

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Stack {
        name,
        partition: rules::partition_of(&region),
        region,
        azs,
        public_subnets,
        private_subnets,
        base_dir,
        endpoints,
        spec,
    })
}

fn cidr(s: &str, p: Vec<PathSeg>, errs: &mut Vec<PathError>) -> Option<Ipv4Net> {
    match s.parse::<Ipv4Net>() {
        Ok(n) if n.trunc() != n => {
            errs.push(
                PathError::new(p, format!("{s} has host bits set"))
                    .help(format!("did you mean {}?", n.trunc())),
            );
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            errs.push(
                PathError::new(p, format!("`{s}` is not an IPv4 CIDR block"))
                    .help("write it like 10.0.0.0/16"),
            );
            None
        }
    }
}

fn check_rule(
    r: &RuleSpec,
    rp: &[PathSeg],
    group: &str,
    dir: &str,
    groups: &[&str],
    errs: &mut Vec<PathError>,
) {
    let at = |k: &str| {
        let mut p = rp.to_vec();
        p.push(key(k));
        p
    };
    match (r.protocol, r.port) {
        (Protocol::All, Some(_)) => errs.push(
            PathError::new(at("port"), "protocol `all` covers every port").help("remove `port`"),
        ),
        (Protocol::Tcp | Protocol::Udp, None) => errs.push(
            PathError::new(rp.to_vec(), "missing `port`")
                .help("add `port: 80` (and `to_port:` for a range)"),
        ),
        _ => {}
    }
    if let (Some(a), Some(b)) = (r.port, r.to_port)
        && b < a
    {
        errs.push(
            PathError::new(at("to_port"), format!("to_port {b} is below port {a}"))
                .help("swap them"),
        );
    }
    if r.cidrs.is_empty() == r.from.is_empty() {
        errs.push(
            PathError::new(rp.to_vec(), "a rule needs either `cidrs` or `from`, not both and not neither")
                .help("write `cidrs: [0.0.0.0/0]` for addresses, or `from: [alb]` for groups of this stack"),
        );
    }
    for (i, c) in r.cidrs.iter().enumerate() {
        let mut p = at("cidrs");
        p.push(PathSeg::Index(i));
        if let Some(n) = cidr(c, p.clone(), errs)
            && group == "database"
            && dir == "ingress"
            && n.prefix_len() == 0
        {
            errs.push(
                PathError::new(p, "the database must never be open to 0.0.0.0/0")
                    .help("allow the groups that need it instead: `from: [web, functions]`"),
            );
        }
    }
    for (i, f) in r.from.iter().enumerate() {
        if !groups.contains(&f.as_str()) {
            let mut p = at("from");
            p.push(PathSeg::Index(i));
            let help = match rules::did_you_mean(f, groups) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("groups of this stack: {}", groups.join(", ")),
            };
            errs.push(PathError::new(p, format!("no security group named `{f}`")).help(help));
        }
    }
    if let Some(d) = &r.description
        && (d.len() > 255 || !d.chars().all(|c| c.is_ascii() && !c.is_ascii_control()))
    {
        errs.push(
            PathError::new(
                at("description"),
                "a rule description is at most 255 ASCII characters",
            )
            .help("shorten it"),
        );
    }
}
