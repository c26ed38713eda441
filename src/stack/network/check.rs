//! Semantic checks of the network tier, and what it derives: the zones,
//! the subnet CIDRs (given or carved from the VPC's block), and the rules of
//! every security group. Everything AWS would reject mid-apply is caught
//! here, all at once.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::spec::{Azs, BUILTIN_GROUPS, DEFAULT_WEB_PORT, Network, Protocol, RuleSpec, SecurityGroupSpec};
use crate::stack::diagnostics::PathError;
use crate::stack::limits as rules;
use crate::stack::yaml::PathSeg;

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn path(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|p| key(p)).collect()
}

/// The network's zones and subnets, derived from the file.
pub struct Layout {
    pub azs: Vec<String>,
    pub public_subnets: Vec<String>,
    pub private_subnets: Vec<String>,
}

/// A security group as the stack makes it: the file's rules, or the tier's
/// safe defaults where the file leaves them out.
#[derive(Clone, Debug)]
pub struct Group {
    pub description: String,
    pub ingress: Vec<RuleSpec>,
    pub egress: Vec<RuleSpec>,
}

/// Every security group of the stack, the built-in tiers first (with
/// `db_port`, the database engine's port, in the database group's default).
pub fn groups(net: &Network, db_port: u16) -> Vec<(String, Group)> {
    let mut names: Vec<String> = BUILTIN_GROUPS.iter().map(|s| s.to_string()).collect();
    names.extend(net.security_groups.keys().filter(|k| !BUILTIN_GROUPS.contains(&k.as_str())).cloned());
    names
        .into_iter()
        .map(|name| {
            let spec = net.security_groups.get(&name).cloned().unwrap_or_default();
            let group = Group {
                description: description(&name, &spec),
                ingress: spec.ingress.clone().unwrap_or_else(|| default_ingress(&name, db_port)),
                egress: spec.egress.clone().unwrap_or_else(|| {
                    vec![RuleSpec {
                        port: None,
                        to_port: None,
                        protocol: Protocol::All,
                        cidrs: vec!["0.0.0.0/0".into()],
                        from: vec![],
                        description: None,
                    }]
                }),
            };
            (name, group)
        })
        .collect()
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

/// A TCP rule on `port` from `cidrs` and groups `from`.
pub fn rule(port: u16, cidrs: &[&str], from: &[&str]) -> RuleSpec {
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
fn default_ingress(name: &str, db_port: u16) -> Vec<RuleSpec> {
    match name {
        "alb" => vec![rule(80, &["0.0.0.0/0"], &[]), rule(443, &["0.0.0.0/0"], &[])],
        "web" => vec![rule(DEFAULT_WEB_PORT, &[], &["alb"])],
        "database" => vec![rule(db_port, &[], &["web", "functions"])],
        _ => vec![],
    }
}

/// Checks `net` of stack `stack` in `region` (whose zones are `region_azs`
/// when infra knows the region).
pub fn check(
    net: &Network, stack: &str, region: &str, region_azs: Option<Vec<String>>, errs: &mut Vec<PathError>,
) -> Layout {
    let vpc: Option<Ipv4Net> = cidr(&net.cidr, path(&["network", "cidr"]), errs);
    if let Some(v) = vpc
        && let Err(e) = rules::validate_cidr_block_size_vpc(v.prefix_len())
    {
        errs.push(
            PathError::new(path(&["network", "cidr"]), e).help("use a prefix between /16 and /28, e.g. 10.0.0.0/16"),
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
                        format!("{region} has {} Availability Zones, not {n}", available.len()),
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
                        PathError::new(p.clone(), format!("`{a}` is not an Availability Zone of {region}")).help(help),
                    );
                }
                if seen.insert(a.clone(), i).is_some() {
                    errs.push(PathError::new(p, format!("`{a}` is listed twice")).help("list each zone once"));
                }
            }
            names.clone()
        }
    };
    let az_count = azs.len();
    let min_azs = if net.single_az { 1 } else { 2 };
    if az_count < min_azs && !(matches!(net.azs, Azs::Count(n) if n as usize > az_count)) {
        errs.push(
            PathError::new(
                path(&["network", "azs"]),
                format!("{az_count} Availability Zone(s): high availability needs at least two"),
            )
            .help(if az_count == 1 {
                "use `azs: 2`, or set `single_az: true` to accept losing the stack with its data centre"
            } else {
                "use `azs: 2` or more"
            }),
        );
    }
    if az_count > 8 {
        errs.push(
            PathError::new(path(&["network", "azs"]), "at most 8 Availability Zones are supported")
                .help("use fewer zones"),
        );
    }

    // Subnets: given or derived.
    let mut subnet_nets: Vec<(Vec<PathSeg>, Ipv4Net)> = Vec::new();
    let mut derive =
        |tier: &str, given: &Option<Vec<String>>, offset: usize, errs: &mut Vec<PathError>| -> Vec<String> {
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
                                errs.push(PathError::new(p.clone(), e).help("use a prefix between /16 and /28"));
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
                            .help(format!("use a VPC of /24 or larger, or list `{tier}` CIDRs explicitly")),
                        );
                        return Vec::new();
                    }
                    let Ok(subs) = v.subnets(new_prefix) else {
                        return Vec::new();
                    };
                    let subs: Vec<Ipv4Net> = subs.collect();
                    (0..az_count).filter_map(|i| subs.get(offset + i).map(|n| n.to_string())).collect()
                }
            }
        };
    let public_subnets = derive("public_subnets", &net.public_subnets, 0, errs);
    let private_subnets = derive("private_subnets", &net.private_subnets, 8, errs);
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

    // AWS's default quota: 20 inbound rules per network ACL ("Amazon VPC
    // quotas", Network ACLs), which a stack with many opened CIDRs exceeds.
    if net.network_acls {
        let openings = acl_openings(&net.cidr, &groups(net, super::spec::DEFAULT_DB_PORT)).len();
        if openings + ACL_OWN_ENTRIES > 20 {
            errs.push(
                PathError::new(
                    path(&["network", "security_groups"]),
                    format!(
                        "the security groups admit {openings} distinct (protocol, ports, CIDR) from outside the VPC; each becomes an entry of the subnets' network ACLs, which hold at most 20 inbound entries ({} are the stack's own)",
                        ACL_OWN_ENTRIES
                    ),
                )
                .help("merge the CIDR blocks or port ranges, or set `network_acls: false` (the security groups alone then filter)"),
            );
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
            && g.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if g == super::endpoints::GROUP {
            errs.push(PathError {
                path: gp.clone(),
                message: format!("the group name `{g}` is reserved for the VPC interface endpoints' group"),
                help: Some("rename it".into()),
                at_key: true,
            });
        } else if !ok_name {
            errs.push(PathError {
                path: gp.clone(),
                message: format!(
                    "group name `{g}` must be lowercase letters, digits, `-` or `_`, starting with a letter"
                ),
                help: Some("rename it".into()),
                at_key: true,
            });
        } else if let Err(e) = rules::validate_security_group_name(&format!("{stack}-{g}")) {
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
                PathError::new(p, "a security group description is at most 255 ASCII characters").help("shorten it"),
            );
        }
        for (dir, list) in [("ingress", &sg.ingress), ("egress", &sg.egress)] {
            for (i, r) in list.iter().flatten().enumerate() {
                let mut rp = gp.clone();
                rp.push(key(dir));
                rp.push(PathSeg::Index(i));
                check_rule(r, &rp, g, dir, &group_refs, errs);
            }
        }
    }

    Layout { azs, public_subnets, private_subnets }
}

fn cidr(s: &str, p: Vec<PathSeg>, errs: &mut Vec<PathError>) -> Option<Ipv4Net> {
    match s.parse::<Ipv4Net>() {
        Ok(n) if n.trunc() != n => {
            errs.push(PathError::new(p, format!("{s} has host bits set")).help(format!("did you mean {}?", n.trunc())));
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            errs.push(PathError::new(p, format!("`{s}` is not an IPv4 CIDR block")).help("write it like 10.0.0.0/16"));
            None
        }
    }
}

fn check_rule(r: &RuleSpec, rp: &[PathSeg], group: &str, dir: &str, groups: &[&str], errs: &mut Vec<PathError>) {
    let at = |k: &str| {
        let mut p = rp.to_vec();
        p.push(key(k));
        p
    };
    match (r.protocol, r.port) {
        (Protocol::All, Some(_)) => {
            errs.push(PathError::new(at("port"), "protocol `all` covers every port").help("remove `port`"))
        }
        (Protocol::Tcp | Protocol::Udp, None) => {
            errs.push(PathError::new(rp.to_vec(), "missing `port`").help("add `port: 80` (and `to_port:` for a range)"))
        }
        _ => {}
    }
    if let (Some(a), Some(b)) = (r.port, r.to_port)
        && b < a
    {
        errs.push(PathError::new(at("to_port"), format!("to_port {b} is below port {a}")).help("swap them"));
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
            PathError::new(at("description"), "a rule description is at most 255 ASCII characters").help("shorten it"),
        );
    }
}

/// (ACL protocol number, port range, CIDR block) admitted from outside the VPC.
pub type Opening = (String, Option<(i32, i32)>, String);

/// What the stack's security groups admit from CIDR blocks outside the VPC
/// (`cidr`): (ACL protocol number, port range, CIDR), deduplicated, sorted.
/// ICMP rules are not carried over (an ACL entry would need its type/code).
pub fn acl_openings(cidr: &str, groups: &[(String, Group)]) -> Vec<Opening> {
    let vpc: Option<ipnet::Ipv4Net> = cidr.parse().ok();
    let outside = |c: &str| match (vpc, c.parse::<ipnet::Ipv4Net>()) {
        (Some(v), Ok(c)) => !v.contains(&c),
        _ => true,
    };
    let mut opened: Vec<Opening> = Vec::new();
    for (_, g) in groups {
        for r in &g.ingress {
            let protocol = match r.protocol {
                Protocol::Tcp => "6",
                Protocol::Udp => "17",
                Protocol::All => "-1",
                Protocol::Icmp => continue,
            };
            let ports = (protocol != "-1").then(|| {
                let from = i32::from(r.port.unwrap_or(0));
                (from, r.to_port.map(i32::from).unwrap_or(from))
            });
            for c in r.cidrs.iter().filter(|c| outside(c)) {
                let key = (protocol.to_string(), ports, c.clone());
                if !opened.contains(&key) {
                    opened.push(key);
                }
            }
        }
    }
    opened.sort();
    opened
}

/// Inbound entries a tier ACL has besides the openings: the VPC's own
/// traffic and the TCP and UDP answers.
pub const ACL_OWN_ENTRIES: usize = 3;
