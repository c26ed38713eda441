//! Semantic checks of the `compute:` section. Everything here is something
//! AWS would reject mid-apply (names, ARNs, health check bounds, rule
//! patterns) or a setup that deploys but cannot work (a port the web
//! security group does not open to the load balancer), reported before any
//! AWS call, with the YAML path and what to do.
//!
//! moto accepts nearly all of these, so the limits are AWS's documented ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::stack::backend::check::{DataNames, check_database_ref, check_table_ref};
use crate::stack::compute::spec::{Ami, Compute, GroupSpec, HealthCheckSpec, SubnetTier};
use crate::stack::diagnostics::PathError;
use crate::stack::limits as rules;
use crate::stack::names::{group_name, instance_role, lb_name};
use crate::stack::network::check::Group;
use crate::stack::network::spec::{NatMode, Protocol, RuleSpec};
use crate::stack::resolved::Place;
use crate::stack::spec::StackFile;
use crate::stack::template::{Part, parse_user_data};
use crate::stack::yaml::PathSeg;

/// AWS's limit on user data: 16 KB before base64 encoding
/// (EC2 User Guide, "Run commands when you launch an EC2 instance with user data input").
pub const USER_DATA_MAX: usize = 16 * 1024;
/// Default TLS policy of the HTTPS listener (TLS 1.3 and 1.2, forward secrecy).
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn at(base: &[PathSeg], more: &[&str]) -> Vec<PathSeg> {
    let mut p = base.to_vec();
    p.extend(more.iter().map(|k| key(k)));
    p
}

/// Checks `compute:` and inlines `user_data_file` into `user_data` (so the
/// rest of the tool never reads files). `az_count` is the number of zones.
pub fn check(spec: &mut StackFile, groups: &[(String, Group)], place: &Place<'_>, errs: &mut Vec<PathError>) {
    let Place { stack, region, partition, az_count, base_dir } = *place;
    let ingress = |name: &str| -> Vec<RuleSpec> {
        groups.iter().find(|(n, _)| n == name).map(|(_, g)| g.ingress.clone()).unwrap_or_default()
    };
    let (web_rules, alb_rules) = (ingress("web"), ingress("alb"));
    let web_overridden = spec.network.security_groups.get("web").is_some_and(|g| g.ingress.is_some());
    let alb_overridden = spec.network.security_groups.get("alb").is_some_and(|g| g.ingress.is_some());
    let Some(c) = spec.compute.as_mut() else {
        return;
    };
    let root = vec![key("compute")];

    if az_count > 0 && az_count < 2 {
        errs.push(
            PathError::new(
                root.clone(),
                format!("an Application Load Balancer needs subnets in at least two Availability Zones; the network has {az_count}"),
            )
            .help("use `network.azs: 2` or more (and drop `single_az`)"),
        );
    }
    check_load_balancer(c, stack, region, partition, &root, errs);
    let lb_ports: Vec<u16> = if c.load_balancer.certificate_arn.is_some() { vec![80, 443] } else { vec![80] };
    for p in lb_ports {
        if !alb_rules.iter().any(|r| covers(r, p, None)) {
            let path = if alb_overridden {
                vec![key("network"), key("security_groups"), key("alb"), key("ingress")]
            } else {
                at(&root, &["load_balancer"])
            };
            errs.push(
                PathError::new(
                    path,
                    format!("the `alb` security group does not open port {p}, where the load balancer listens"),
                )
                .help(format!("add `{{ port: {p}, cidrs: [0.0.0.0/0] }}` to network.security_groups.alb.ingress")),
            );
        }
    }

    let groups_path = at(&root, &["groups"]);
    if c.groups.is_empty() {
        errs.push(
            PathError::new(groups_path.clone(), "no web groups")
                .help("add one, e.g. `groups: { web: { ami: ami-..., instance_type: t3.micro, min: 2, max: 4 } }`, or remove `compute:`"),
        );
    }

    let mut priorities: BTreeMap<u16, String> = BTreeMap::new();
    let mut catch_all: Vec<String> = Vec::new();
    for (name, g) in c.groups.iter_mut() {
        let gp = at(&groups_path, &[name]);
        check_group_name(name, stack, &gp, errs);
        check_group(g, base_dir, &gp, errs);
        if !g.port_open_in(&web_rules) {
            let path = if web_overridden {
                vec![key("network"), key("security_groups"), key("web"), key("ingress")]
            } else {
                at(&gp, &["port"])
            };
            errs.push(
                PathError::new(path, format!("the `web` security group does not open port {} to the load balancer (group `{name}`)", g.port))
                    .help(format!("add `{{ port: {}, from: [alb] }}` to network.security_groups.web.ingress, or serve on a port it opens", g.port)),
            );
        }
        if g.path_patterns.is_empty() && g.host_headers.is_empty() {
            catch_all.push(name.clone());
        }
        if let Some(p) = g.priority
            && let Some(other) = priorities.insert(p, name.clone())
        {
            errs.push(
                PathError::new(at(&gp, &["priority"]), format!("priority {p} is also group `{other}`'s"))
                    .help("give each group's rule its own priority"),
            );
        }
    }
    if catch_all.len() > 1 {
        errs.push(
            PathError::new(groups_path, format!("groups {} all take every request: the load balancer cannot tell them apart", catch_all.iter().map(|g| format!("`{g}`")).collect::<Vec<_>>().join(" and ")))
                .help("give all groups but one `path_patterns` (e.g. [\"/api/*\"]) or `host_headers`; the one left gets every other request"),
        );
    }
}

/// What each web group's instances are wired to: its user data parsed into
/// text and references (each checked against the stack), its tables and
/// database access, and its role's name. Runs after `check` (user data
/// files are inlined by then).
pub fn wiring(
    spec: &StackFile, data: &DataNames, place: &Place<'_>, errs: &mut Vec<PathError>,
) -> BTreeMap<String, Vec<Part>> {
    let mut out = BTreeMap::new();
    let Some(c) = &spec.compute else {
        return out;
    };
    let has_api = spec.backend.as_ref().is_some_and(|b| b.api.is_some());
    let has_site = spec.frontend.is_some();
    let no_nat = spec.network.nat == NatMode::None;
    for (name, g) in &c.groups {
        let gp = vec![key("compute"), key("groups"), key(name)];
        let k = if g.user_data_file.is_some() { "user_data_file" } else { "user_data" };
        let up = at(&gp, &[k]);
        let parts = match parse_user_data(g.user_data.as_deref().unwrap_or_default()) {
            Ok(parts) => parts,
            Err(e) => {
                errs.push(PathError::new(up, e).help("write `$${` for a literal `${` before a dotted name"));
                continue;
            }
        };
        let private =
            g.subnets.unwrap_or(if no_nat { SubnetTier::Public } else { SubnetTier::Private }) == SubnetTier::Private;
        for part in &parts {
            match part {
                Part::Text(_) => {}
                Part::Table { table, attr } => {
                    check_table_ref(table, &up, data, errs);
                    if attr == "stream_arn" && data.tables.get(table) == Some(&false) {
                        errs.push(
                            PathError::new(up.clone(), format!("table `{table}` has no stream, so no `stream_arn`"))
                                .help("enable the table's stream in `data:`"),
                        );
                    }
                }
                Part::Database { .. } => check_database_ref(&up, data, errs),
                Part::ApiUrl if !has_api => errs.push(
                    PathError::new(up.clone(), "`${backend.api.url}`: this stack has no API")
                        .help("add `backend.api` with its routes, or remove the reference"),
                ),
                // The API's endpoint is public: from the private subnets it
                // takes NAT (an `execute-api` endpoint with private DNS
                // would capture the name and serve private APIs only).
                Part::ApiUrl if private && no_nat => errs.push(
                    PathError::new(up.clone(), format!("group `{name}` runs in the private subnets without NAT, so its instances cannot reach the API's public endpoint"))
                        .help("give the subnets NAT (`network.nat: single`), or run the group in the public subnets (`subnets: public`)"),
                ),
                Part::ApiUrl => {}
                Part::FrontendDomain if !has_site => errs.push(
                    PathError::new(up.clone(), "`${frontend.domain}`: this stack has no frontend")
                        .help("add `frontend:`, or remove the reference"),
                ),
                Part::FrontendDomain => {}
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in g.tables.iter().enumerate() {
            let mut p = at(&gp, &["tables"]);
            p.push(PathSeg::Index(i));
            if !seen.insert(t) {
                errs.push(PathError::new(p.clone(), format!("`{t}` is listed twice")).help("list each table once"));
            }
            check_table_ref(t, &p, data, errs);
        }
        if g.database {
            check_database_ref(&at(&gp, &["database"]), data, errs);
        }
        if let Err(e) = rules::validate_iam_role_name(&instance_role(place.stack, name, place.region)) {
            errs.push(PathError {
                path: gp.clone(),
                message: format!("the instances' role: {e}"),
                help: Some("use a shorter group or stack name".into()),
                at_key: true,
            });
        }
        out.insert(name.clone(), parts);
    }
    out
}

impl GroupSpec {
    /// Whether the `web` security group opens this group's port to the
    /// load balancer (by group, or to address ranges, which may hold it).
    fn port_open_in(&self, web_rules: &[RuleSpec]) -> bool {
        web_rules
            .iter()
            .any(|r| covers(r, self.port, Some("alb")) || (!r.cidrs.is_empty() && covers(r, self.port, None)))
    }
}

/// Whether a TCP rule (or an all-traffic one) admits `port`, from `source`
/// (a group name) when given.
fn covers(r: &RuleSpec, port: u16, source: Option<&str>) -> bool {
    let proto = match r.protocol {
        Protocol::All => true,
        Protocol::Tcp => {
            let from = r.port.unwrap_or(0);
            let to = r.to_port.unwrap_or(from);
            (from..=to).contains(&port)
        }
        _ => false,
    };
    let src = match source {
        Some(s) => r.from.iter().any(|f| f == s),
        None => true,
    };
    proto && src
}

fn check_load_balancer(
    c: &Compute, stack: &str, region: &str, partition: &str, root: &[PathSeg], errs: &mut Vec<PathError>,
) {
    let lb = &c.load_balancer;
    let lp = at(root, &["load_balancer"]);
    if let Err(e) = rules::validate_lb_name(&lb_name(stack, lb.scheme)) {
        errs.push(
            PathError::new(vec![key("stack")], e).help("the load balancer is named after the stack; rename the stack"),
        );
    }
    if let Some(arn) = &lb.certificate_arn
        && let Err(e) = validate_certificate_arn(arn, region, partition)
    {
        errs.push(PathError::new(at(&lp, &["certificate_arn"]), e).help(
            "use the ARN of an ACM certificate in this region, e.g. arn:aws:acm:us-east-1:123456789012:certificate/…",
        ));
    }
    if let Some(p) = &lb.ssl_policy {
        if lb.certificate_arn.is_none() {
            errs.push(
                PathError::new(
                    at(&lp, &["ssl_policy"]),
                    "`ssl_policy` without `certificate_arn`: there is no HTTPS listener",
                )
                .help("add `certificate_arn`, or remove `ssl_policy`"),
            );
        } else if !p.starts_with("ELBSecurityPolicy-") || p.len() > 128 {
            errs.push(
                PathError::new(
                    at(&lp, &["ssl_policy"]),
                    format!("`{p}` is not an Elastic Load Balancing security policy"),
                )
                .help(format!(
                    "use a predefined policy such as {DEFAULT_SSL_POLICY} (see `aws elbv2 describe-ssl-policies`)"
                )),
            );
        }
    }
}

fn check_group_name(name: &str, stack: &str, gp: &[PathSeg], errs: &mut Vec<PathError>) {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 32;
    if !ok {
        errs.push(PathError {
            path: gp.to_vec(),
            message: format!("group name `{name}` must be 1 to 32 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen"),
            help: Some("rename it, e.g. `web` or `api`".into()),
            at_key: true,
        });
        return;
    }
    let full = group_name(stack, name);
    for r in [rules::validate_asg_name(&full), rules::validate_launch_template_name(&full)] {
        if let Err(e) = r {
            errs.push(PathError {
                path: gp.to_vec(),
                message: e,
                help: Some("use a shorter group name".into()),
                at_key: true,
            });
        }
    }
}

fn check_group(g: &mut GroupSpec, base_dir: &Path, gp: &[PathSeg], errs: &mut Vec<PathError>) {
    // Image.
    match &g.ami {
        Ami::Id(id) => {
            if let Err(e) = validate_ami_id(id) {
                errs.push(PathError::new(at(gp, &["ami"]), e).help(
                    "write an AMI id such as ami-0123456789abcdef0, or `{name: \"al2023-ami-2023.*-x86_64\", owners: [amazon]}`",
                ));
            }
        }
        Ami::Ssm(p) => {
            // SSM parameter names: up to 2048 characters of letters, digits
            // and `_ . - /`, a full path from `/` (SSM API reference,
            // GetParameter, Name).
            let ok = p.ssm.starts_with('/')
                && p.ssm.len() <= 2048
                && p.ssm.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
            if !ok {
                errs.push(
                    PathError::new(at(gp, &["ami", "ssm"]), format!("`{}` is not an SSM parameter name", p.ssm))
                        .help("a path such as /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
                );
            }
        }
        Ami::Lookup(l) => {
            if l.name.trim().is_empty() || l.name.len() > 128 {
                errs.push(
                    PathError::new(at(gp, &["ami", "name"]), "an image name pattern is 1 to 128 characters")
                        .help("e.g. `amzn2-ami-hvm-*-x86_64-gp2`"),
                );
            }
            if l.owners.is_empty() {
                errs.push(
                    PathError::new(
                        at(gp, &["ami", "owners"]),
                        "no owners: an image found by name alone could be anyone's",
                    )
                    .help("list who publishes the image, e.g. `owners: [amazon]` or an account id"),
                );
            }
            for (i, o) in l.owners.iter().enumerate() {
                let ok = matches!(o.as_str(), "amazon" | "aws-marketplace" | "self")
                    || (o.len() == 12 && o.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    let mut p = at(gp, &["ami", "owners"]);
                    p.push(PathSeg::Index(i));
                    errs.push(
                        PathError::new(p, format!("`{o}` is not an image owner"))
                            .help("use `amazon`, `aws-marketplace`, `self` or a 12-digit account id"),
                    );
                }
            }
        }
    }
    if let Err(e) = rules::validate_instance_type_shape(&g.instance_type) {
        errs.push(PathError::new(at(gp, &["instance_type"]), e).help("e.g. `t3.micro`"));
    }

    // User data: inline it now, so nothing later reads files.
    match (&g.user_data, &g.user_data_file) {
        (Some(_), Some(_)) => errs.push(
            PathError::new(at(gp, &["user_data_file"]), "both `user_data` and `user_data_file`")
                .help("keep one of them"),
        ),
        (None, Some(f)) => match std::fs::read(base_dir.join(f)) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => g.user_data = Some(s),
                Err(_) => errs.push(
                    PathError::new(at(gp, &["user_data_file"]), format!("{f} is not UTF-8 text"))
                        .help("user data must be a text script (cloud-init or shell)"),
                ),
            },
            Err(e) => errs.push(
                PathError::new(at(gp, &["user_data_file"]), format!("cannot read {f}: {e}"))
                    .help("the path is relative to the directory of stack.yaml"),
            ),
        },
        _ => {}
    }
    if let Some(u) = &g.user_data
        && u.len() > USER_DATA_MAX
    {
        let k = if g.user_data_file.is_some() { "user_data_file" } else { "user_data" };
        errs.push(
            PathError::new(at(gp, &[k]), format!("user data is {} bytes; AWS allows at most {USER_DATA_MAX}", u.len()))
                .help("download the bulk of the script from S3 at boot, or bake it into the image"),
        );
    }

    // Sizes.
    if g.min > g.max {
        errs.push(PathError::new(at(gp, &["min"]), format!("min {} is above max {}", g.min, g.max)).help("swap them"));
    }
    if let Some(d) = g.desired
        && (d < g.min || d > g.max)
    {
        errs.push(
            PathError::new(at(gp, &["desired"]), format!("desired {d} is outside min {} .. max {}", g.min, g.max))
                .help("pick a number between min and max, or remove `desired` to let the scaling policies decide"),
        );
    }
    if g.port == 0 {
        errs.push(PathError::new(at(gp, &["port"]), "port 0").help("use the port the instances serve on, e.g. 80"));
    }
    check_health(&g.health_check, &at(gp, &["health_check"]), errs);

    if let Some(s) = &g.scaling {
        if let Some(c) = s.cpu_target
            && !(c > 0.0 && c <= 100.0)
        {
            errs.push(
                PathError::new(at(gp, &["scaling", "cpu_target"]), format!("{c} is not a CPU percentage"))
                    .help("use a number above 0 and at most 100, e.g. 50"),
            );
        }
        if let Some(r) = s.requests_per_target
            && !(r > 0.0 && r.is_finite())
        {
            errs.push(
                PathError::new(at(gp, &["scaling", "requests_per_target"]), format!("{r} requests per target"))
                    .help("use a positive number of requests per instance per minute, e.g. 1000"),
            );
        }
    }

    let mut names = BTreeSet::new();
    for (i, s) in g.scheduled.iter().enumerate() {
        let mut sp = at(gp, &["scheduled"]);
        sp.push(PathSeg::Index(i));
        if s.name.is_empty() || s.name.chars().count() > 255 || s.name.chars().any(char::is_control) {
            errs.push(
                PathError::new(at(&sp, &["name"]), "a scheduled action name is 1 to 255 printable characters")
                    .help("e.g. `night`"),
            );
        }
        if !names.insert(s.name.clone()) {
            errs.push(
                PathError::new(at(&sp, &["name"]), format!("`{}` is used twice", s.name)).help("name each action once"),
            );
        }
        if let Err(e) = validate_cron(&s.recurrence) {
            errs.push(
                PathError::new(at(&sp, &["recurrence"]), e)
                    .help("five fields: minute hour day-of-month month day-of-week, e.g. `0 20 * * 1-5`"),
            );
        }
        if s.min.is_none() && s.max.is_none() && s.desired.is_none() {
            errs.push(
                PathError::new(sp.clone(), "the action changes nothing")
                    .help("set at least one of `min`, `max`, `desired`"),
            );
        }
        if let (Some(a), Some(b)) = (s.min, s.max)
            && a > b
        {
            errs.push(PathError::new(at(&sp, &["min"]), format!("min {a} is above max {b}")).help("swap them"));
        }
        if let Some(d) = s.desired
            && (s.min.is_some_and(|m| d < m) || s.max.is_some_and(|m| d > m))
        {
            errs.push(
                PathError::new(at(&sp, &["desired"]), format!("desired {d} is outside the action's min .. max"))
                    .help("pick a number between them"),
            );
        }
        if let Some(tz) = &s.time_zone
            && !(tz.len() <= 64
                && tz.chars().all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
                && tz.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        {
            errs.push(
                PathError::new(at(&sp, &["time_zone"]), format!("`{tz}` is not an IANA time zone name"))
                    .help("e.g. `Europe/Paris` or `UTC`"),
            );
        }
    }

    if g.refresh.min_healthy_percentage > 100 {
        errs.push(
            PathError::new(at(gp, &["refresh", "min_healthy_percentage"]), "a percentage is at most 100")
                .help("e.g. 90: keep 90% of the group in service while rolling"),
        );
    }
    if g.refresh.instance_warmup.is_some_and(|w| w > 3600) {
        errs.push(
            PathError::new(at(gp, &["refresh", "instance_warmup"]), "instance warm-up is at most 3600 seconds")
                .help("use the seconds an instance needs to start serving"),
        );
    }

    let (vmin, vmax) = match g.root_volume.r#type.as_str() {
        "gp2" | "gp3" => (1, 16384),
        "standard" => (1, 1024),
        "io1" | "io2" | "st1" | "sc1" => {
            errs.push(
                PathError::new(
                    at(gp, &["root_volume", "type"]),
                    format!("`{}` root volumes are not supported", g.root_volume.r#type),
                )
                .help("use gp3 (default), gp2 or standard; st1/sc1 cannot boot and io1/io2 need provisioned IOPS"),
            );
            (1, u32::MAX)
        }
        other => {
            errs.push(
                PathError::new(at(gp, &["root_volume", "type"]), format!("unknown volume type `{other}`"))
                    .help("use gp3 (default), gp2 or standard"),
            );
            (1, u32::MAX)
        }
    };
    if let Some(s) = g.root_volume.size
        && !(vmin..=vmax).contains(&s)
    {
        errs.push(
            PathError::new(
                at(gp, &["root_volume", "size"]),
                format!("{s} GiB is outside {vmin} .. {vmax} for {}", g.root_volume.r#type),
            )
            .help("pick a size within the volume type's limits"),
        );
    }

    // Listener rule conditions.
    for (i, p) in g.path_patterns.iter().enumerate() {
        if let Err(e) = validate_path_pattern(p) {
            let mut pp = at(gp, &["path_patterns"]);
            pp.push(PathSeg::Index(i));
            errs.push(PathError::new(pp, e).help("e.g. `/api/*`"));
        }
    }
    for (i, h) in g.host_headers.iter().enumerate() {
        if let Err(e) = validate_host_header(h) {
            let mut pp = at(gp, &["host_headers"]);
            pp.push(PathSeg::Index(i));
            errs.push(PathError::new(pp, e).help("e.g. `api.example.com` or `*.example.com`"));
        }
    }
    if g.path_patterns.len() + g.host_headers.len() > 5 {
        errs.push(
            PathError::new(
                gp.to_vec(),
                format!(
                    "{} path patterns and host headers; a listener rule matches at most 5 values",
                    g.path_patterns.len() + g.host_headers.len()
                ),
            )
            .help("use wildcards to cover several paths with one pattern"),
        );
    }
    if let Some(p) = g.priority
        && !(1..=50000).contains(&p)
    {
        errs.push(
            PathError::new(at(gp, &["priority"]), format!("priority {p} is outside 1 .. 50000"))
                .help("pick a priority from 1 (first) to 50000"),
        );
    }
}

fn check_health(h: &HealthCheckSpec, hp: &[PathSeg], errs: &mut Vec<PathError>) {
    if !h.path.starts_with('/') || h.path.len() > 1024 || !h.path.chars().all(|c| c.is_ascii_graphic()) {
        errs.push(
            PathError::new(at(hp, &["path"]), format!("`{}` is not a health check path", h.path))
                .help("a path starting with `/`, at most 1024 printable ASCII characters, e.g. `/health`"),
        );
    }
    if let Err(e) = validate_matcher(&h.matcher) {
        errs.push(PathError::new(at(hp, &["matcher"]), e).help("e.g. `200`, `200,302` or `200-399`"));
    }
    if !(5..=300).contains(&h.interval) {
        errs.push(
            PathError::new(at(hp, &["interval"]), format!("interval {}s is outside 5 .. 300", h.interval))
                .help("e.g. 30"),
        );
    }
    if !(2..=120).contains(&h.timeout) {
        errs.push(
            PathError::new(at(hp, &["timeout"]), format!("timeout {}s is outside 2 .. 120", h.timeout)).help("e.g. 5"),
        );
    } else if h.timeout >= h.interval {
        errs.push(
            PathError::new(
                at(hp, &["timeout"]),
                format!("timeout {}s is not below the interval {}s", h.timeout, h.interval),
            )
            .help("AWS requires the timeout to be shorter than the interval"),
        );
    }
    for (k, v) in [("healthy_threshold", h.healthy_threshold), ("unhealthy_threshold", h.unhealthy_threshold)] {
        if !(2..=10).contains(&v) {
            errs.push(PathError::new(at(hp, &[k]), format!("{v} is outside 2 .. 10")).help("e.g. 3"));
        }
    }
    if h.grace_period > 7200 {
        errs.push(
            PathError::new(
                at(hp, &["grace_period"]),
                format!("a grace period of {}s is over two hours", h.grace_period),
            )
            .help("use the seconds an instance needs to boot and pass its first check, e.g. 300"),
        );
    }
}

/// AMI id: `ami-` and 8 or 17 lowercase hexadecimal digits (EC2 resource id format).
pub fn validate_ami_id(s: &str) -> Result<(), String> {
    let ok = s.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if ok { Ok(()) } else { Err(format!("`{s}` is not an AMI id (ami- followed by 8 or 17 lowercase hex digits)")) }
}

/// Load balancer certificate: an ACM certificate of the stack's region and
/// partition, or an IAM server certificate (Elastic Load Balancing API
/// reference, Certificate.CertificateArn; ACM certificates are regional and
/// must be in the load balancer's region).
pub fn validate_certificate_arn(arn: &str, region: &str, partition: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(format!("`{arn}` is not an ARN"));
    }
    let (p, service, r, account, resource) = (parts[1], parts[2], parts[3], parts[4], parts[5]);
    if p != partition {
        return Err(format!("the certificate is in partition `{p}`, the stack in `{partition}`"));
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{account}` is not a 12-digit account id"));
    }
    match service {
        "acm" => {
            if !region.is_empty() && r != region {
                return Err(format!(
                    "the certificate is in {r}, the load balancer in {region}: a load balancer can only use ACM certificates of its own region"
                ));
            }
            let id = resource.strip_prefix("certificate/").unwrap_or("");
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("`{arn}` is not an ACM certificate ARN (…:certificate/<id>)"));
            }
            Ok(())
        }
        "iam" if r.is_empty() && resource.starts_with("server-certificate/") => Ok(()),
        _ => Err(format!("`{arn}` is neither an ACM certificate nor an IAM server certificate")),
    }
}

/// Success codes of an HTTP health check: codes or ranges from 200 to 499,
/// separated by commas (Elastic Load Balancing API reference, Matcher.HttpCode).
pub fn validate_matcher(s: &str) -> Result<(), String> {
    let code = |x: &str| x.trim().parse::<u16>().ok().filter(|c| (200..=499).contains(c));
    if s.is_empty() {
        return Err("empty matcher".into());
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => match (code(a), code(b)) {
                (Some(a), Some(b)) if a <= b => {}
                _ => {
                    return Err(format!("`{part}` is not a range of HTTP codes from 200 to 499"));
                }
            },
            None => {
                if code(part).is_none() {
                    return Err(format!("`{part}` is not an HTTP code from 200 to 499"));
                }
            }
        }
    }
    Ok(())
}

/// Listener rule path pattern: 1 to 128 characters of `A-Z a-z 0-9 _ - . $ /
/// ~ " ' @ : + & * ?` (Elastic Load Balancing User Guide, "Path conditions").
pub fn validate_path_pattern(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 128 {
        return Err("a path pattern is 1 to 128 characters".into());
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.$/~\"'@:+&*?".contains(*c))) {
        return Err(format!(
            "path pattern `{s}` contains `{c}`; AWS allows letters, digits and _ - . $ / ~ \" ' @ : + & * ?"
        ));
    }
    Ok(())
}

/// Listener rule host header: 1 to 128 characters of `A-Z a-z 0-9 - . * ?`
/// (Elastic Load Balancing User Guide, "Host conditions").
pub fn validate_host_header(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 128 {
        return Err("a host name is 1 to 128 characters".into());
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "-.*?".contains(*c))) {
        return Err(format!("host name `{s}` contains `{c}`; AWS allows letters, digits and - . * ?"));
    }
    Ok(())
}

/// Scheduled action recurrence: a Unix cron expression of five fields
/// (Amazon EC2 Auto Scaling User Guide, "Scheduled scaling", Recurrence).
pub fn validate_cron(s: &str) -> Result<(), String> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("`{s}` has {} fields; a recurrence has 5", fields.len()));
    }
    for f in fields {
        if !f.chars().all(|c| c.is_ascii_alphanumeric() || "*,-/?#".contains(c)) {
            return Err(format!("cron field `{f}` contains characters cron does not use"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ami_ids() {
        assert!(validate_ami_id("ami-04681a1dbd79675a5").is_ok());
        assert!(validate_ami_id("ami-12345678").is_ok());
        assert!(validate_ami_id("ami-XYZ").is_err());
        assert!(validate_ami_id("04681a1dbd79675a5").is_err());
    }

    #[test]
    fn certificates() {
        let ok = "arn:aws:acm:us-east-1:123456789012:certificate/8f6c2f5e-1a2b-4c3d-9e8f-0a1b2c3d4e5f";
        assert!(validate_certificate_arn(ok, "us-east-1", "aws").is_ok());
        let e = validate_certificate_arn(ok, "eu-west-1", "aws").unwrap_err();
        assert!(e.contains("own region"), "{e}");
        assert!(validate_certificate_arn(ok, "us-east-1", "aws-cn").is_err());
        assert!(validate_certificate_arn("arn:aws:iam::123456789012:server-certificate/x", "us-east-1", "aws").is_ok());
        assert!(validate_certificate_arn("not-an-arn", "us-east-1", "aws").is_err());
        assert!(validate_certificate_arn("arn:aws:s3:::bucket/x", "us-east-1", "aws").is_err());
    }

    #[test]
    fn matchers_patterns_hosts_cron() {
        for ok in ["200", "200,302", "200-399", "200-299,404"] {
            assert!(validate_matcher(ok).is_ok(), "{ok}");
        }
        for bad in ["", "100", "600", "399-200", "abc", "200,"] {
            assert!(validate_matcher(bad).is_err(), "{bad}");
        }
        assert!(validate_path_pattern("/api/*").is_ok());
        assert!(validate_path_pattern("/a b").is_err());
        assert!(validate_path_pattern(&"a".repeat(129)).is_err());
        assert!(validate_host_header("*.example.com").is_ok());
        assert!(validate_host_header("ex_ample.com").is_err());
        assert!(validate_cron("0 20 * * 1-5").is_ok());
        assert!(validate_cron("0 20 * *").is_err());
        assert!(validate_cron("0 20 * * MON;").is_err());
    }

    use crate::stack::{Overrides, yaml};

    /// Every error message for a stack file with this `compute:` section
    /// (and extra network lines), loaded from `dir`.
    fn errors_in(network_extra: &str, compute: &str, dir: &Path) -> Vec<String> {
        let text = format!(
            "stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{network_extra}compute:\n{compute}"
        );
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        match crate::stack::check_document(&root, &Overrides::default(), dir.to_path_buf()) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| d.message).collect(),
        }
    }

    fn errors(compute: &str) -> Vec<String> {
        errors_in("", compute, Path::new("."))
    }

    const WEB: &str = "  groups:\n    web:\n      ami: ami-04681a1dbd79675a5\n      instance_type: t3.micro\n      min: 2\n      max: 4\n";

    fn has(errs: &[String], want: &str) -> bool {
        errs.iter().any(|e| e.contains(want))
    }

    #[test]
    fn user_data_references_are_checked_against_the_stack() {
        let with = |user_data: &str, more: &str| errors(&format!("{WEB}      user_data: \"{user_data}\"\n{more}"));
        // The shell's own braces are not references.
        assert_eq!(with("#!/bin/sh\\necho ${HOME} ${1:-x}", ""), Vec::<String>::new());
        let e = with("API=${backend.api.url}", "");
        assert!(has(&e, "`${backend.api.url}`: this stack has no API"), "{e:?}");
        let e = with("SITE=${frontend.domain}", "");
        assert!(has(&e, "`${frontend.domain}`: this stack has no frontend"), "{e:?}");
        let e = with(
            "T=${tables.order.name}",
            "data:\n  tables:\n    orders:\n      partition_key: { name: pk, type: S }\n",
        );
        assert!(has(&e, "no table named `order`"), "{e:?}");
        let e = with("DB=${databse.endpoint}", "");
        assert!(has(&e, "unknown reference `${databse.endpoint}`"), "{e:?}");
        let e = with("DB=${database.endpoint}", "");
        assert!(has(&e, "this stack has no database"), "{e:?}");
        let e = errors(&format!("{WEB}      tables: [orders, orders]\n      database: true\n"));
        assert!(has(&e, "no table named `orders`") && has(&e, "`orders` is listed twice"), "{e:?}");
        assert!(has(&e, "this stack has no database"), "{e:?}");
    }

    #[test]
    fn private_instances_without_nat_cannot_call_the_api() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("f")).unwrap();
        std::fs::write(dir.path().join("f/app.py"), "def handler(e, c):\n    return {}\n").unwrap();
        let backend = "backend:\n  functions:\n    f: { source: f, runtime: python3.12, handler: app.handler }\n  api:\n    auth: none\n    routes:\n      - { method: GET, path: /api/x, function: f }\n";
        let group = format!("{WEB}      subnets: private\n      user_data: \"API=${{backend.api.url}}\"\n{backend}");
        let e = errors_in("", &group, dir.path());
        assert!(has(&e, "runs in the private subnets without NAT, so its instances cannot reach the API"), "{e:?}");
        assert_eq!(errors_in("  nat: single\n", &group, dir.path()), Vec::<String>::new());
        // A function cannot name the API that invokes it.
        let cyclic = format!(
            "{WEB}{}",
            backend.replace(
                "handler: app.handler }",
                "handler: app.handler, environment: { URL: \"${backend.api.url}\" } }"
            )
        );
        let e = errors_in("", &cyclic, dir.path());
        assert!(has(&e, "a function's environment cannot name the API's URL"), "{e:?}");
    }

    #[test]
    fn a_plain_group_is_valid() {
        assert_eq!(errors(WEB), Vec::<String>::new());
    }

    #[test]
    fn user_data_file_is_inlined_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("web/boot.sh"), "#!/bin/sh\necho hi\n").unwrap();
        let text = format!(
            "stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\ncompute:\n{WEB}      user_data_file: web/boot.sh\n"
        );
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        let stack = crate::stack::check_document(&root, &Overrides::default(), dir.path().to_path_buf())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let g = &stack.spec.compute.unwrap().groups["web"];
        assert_eq!(g.user_data.as_deref(), Some("#!/bin/sh\necho hi\n"));

        let e = errors_in("", &format!("{WEB}      user_data_file: web/missing.sh\n"), dir.path());
        assert!(has(&e, "compute.groups.web.user_data_file: cannot read web/missing.sh"), "{e:?}");
        let e = errors_in("", &format!("{WEB}      user_data_file: web/boot.sh\n      user_data: x\n"), dir.path());
        assert!(has(&e, "both `user_data` and `user_data_file`"), "{e:?}");
        let big = "x".repeat(USER_DATA_MAX + 1);
        let e = errors(&format!("{WEB}      user_data: {big}\n"));
        assert!(has(&e, "AWS allows at most 16384"), "{e:?}");
    }

    #[test]
    fn a_load_balancer_needs_two_zones() {
        let e = errors_in("  azs: 1\n  single_az: true\n", WEB, Path::new("."));
        assert!(has(&e, "at least two Availability Zones"), "{e:?}");
    }

    #[test]
    fn the_web_group_must_open_the_port_to_the_load_balancer() {
        let e = errors(&format!("{WEB}      port: 8080\n"));
        assert!(has(&e, "compute.groups.web.port: the `web` security group does not open port 8080"), "{e:?}");
        let open = "  security_groups:\n    web:\n      ingress:\n        - { port: 8080, from: [alb] }\n";
        assert!(errors_in(open, &format!("{WEB}      port: 8080\n"), Path::new(".")).is_empty());
        // Opened with the rule replaced: the error points at the rules.
        let e = errors_in(open, WEB, Path::new("."));
        assert!(has(&e, "network.security_groups.web.ingress"), "{e:?}");
        // The load balancer's own ports, 443 with a certificate.
        let alb = "  security_groups:\n    alb:\n      ingress:\n        - { port: 80, cidrs: [0.0.0.0/0] }\n";
        let cert = "  load_balancer:\n    certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc\n";
        let e = errors_in(alb, &format!("{cert}{WEB}"), Path::new("."));
        assert!(has(&e, "does not open port 443"), "{e:?}");
    }

    #[test]
    fn several_groups_need_rules_and_distinct_priorities() {
        let api =
            "    api:\n      ami: ami-04681a1dbd79675a5\n      instance_type: t3.micro\n      min: 1\n      max: 2\n";
        let e = errors(&format!("{WEB}{api}"));
        assert!(has(&e, "all take every request"), "{e:?}");
        assert!(errors(&format!("{WEB}{api}      path_patterns: [\"/api/*\"]\n")).is_empty());
        let e = errors(&format!(
            "{WEB}      host_headers: [www.example.com]\n      priority: 5\n{api}      path_patterns: [\"/api/*\"]\n      priority: 5\n"
        ));
        assert!(has(&e, "priority 5 is also group"), "{e:?}");
        let e = errors(&format!("{WEB}      path_patterns: [\"/a b\"]\n"));
        assert!(has(&e, "compute.groups.web.path_patterns[0]"), "{e:?}");
    }

    #[test]
    fn sizes_schedules_and_tls() {
        let e = errors(&format!("{WEB}      desired: 9\n"));
        assert!(has(&e, "desired 9 is outside min 2 .. max 4"), "{e:?}");
        let e = errors(&format!("{WEB}      scheduled:\n        - {{ name: night, recurrence: \"0 20 * *\" }}\n"));
        assert!(has(&e, "has 4 fields"), "{e:?}");
        assert!(has(&e, "the action changes nothing"), "{e:?}");
        let e = errors(&format!("  load_balancer:\n    ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06\n{WEB}"));
        assert!(has(&e, "`ssl_policy` without `certificate_arn`"), "{e:?}");
        let e = errors(&format!("{WEB}      scaling: {{ cpu_target: 150 }}\n"));
        assert!(has(&e, "150 is not a CPU percentage"), "{e:?}");
        let e = errors(&format!("{WEB}      root_volume: {{ type: st1 }}\n"));
        assert!(has(&e, "root volumes are not supported"), "{e:?}");
    }

    #[test]
    fn names() {
        use crate::stack::compute::spec::Scheme;
        assert_eq!(lb_name("webapp", Scheme::InternetFacing), "webapp-alb");
        assert_eq!(lb_name("webapp", Scheme::Internal), "webapp-alb-int");
        // The longest stack name still fits ELB's 32 characters.
        let long = "a".repeat(24);
        assert!(rules::validate_lb_name(&lb_name(&long, Scheme::Internal)).is_ok());
    }
}
