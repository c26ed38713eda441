//! Which VPC endpoints the network gets, and why.
//!
//! A Lambda function in the VPC (and anything else in the private subnets)
//! reaches AWS APIs only through NAT or a VPC endpoint: without either, a
//! call such as Secrets Manager's GetSecretValue hangs until the function
//! times out. With `network.nat: none`, the stack therefore plans the
//! endpoints its VPC functions need (`network.endpoints: auto`, the
//! default), and validation refuses a function that could never reach what
//! it declares. Gateway endpoints (S3, DynamoDB) are free and sit on the
//! private route tables; interface endpoints are billed per hour and AZ and
//! sit in the private subnets with private DNS, so SDKs need no change.
//! (AWS PrivateLink docs: "AWS services that integrate with AWS PrivateLink";
//! "Gateway endpoints for Amazon S3 / DynamoDB".)

use crate::stack::compute::spec::SubnetTier;
use crate::stack::diagnostics::PathError;
use crate::stack::limits::did_you_mean;
use crate::stack::network::spec::NatMode;
use crate::stack::spec::StackFile;
use crate::stack::yaml::PathSeg;

/// A VPC endpoint the network gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The service's endpoint name (`s3`, `secretsmanager`, `ecr.api`...).
    pub service: String,
    /// A gateway endpoint (route table entries) rather than an interface one.
    pub gateway: bool,
    /// Why the stack has it, for the plan.
    pub reason: String,
}

/// The security group of the interface endpoints (`network.sg.endpoints`):
/// HTTPS from the functions and web groups only.
pub const GROUP: &str = "endpoints";

/// The interface endpoints Session Manager needs from private subnets
/// without NAT (Systems Manager User Guide, "Use VPC endpoints").
pub const SESSION_MANAGER: &[&str] = &["ec2messages", "ssm", "ssmmessages"];

/// Services with gateway endpoints.
pub const GATEWAY: &[&str] = &["s3", "dynamodb"];

/// Interface endpoint services users list most (AWS PrivateLink); others are
/// accepted when they look like endpoint names, with a did-you-mean for near
/// misses of these.
pub const INTERFACE: &[&str] = &[
    "secretsmanager",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "ec2",
    "logs",
    "monitoring",
    "kms",
    "sts",
    "lambda",
    "sqs",
    "sns",
    "events",
    "states",
    "ecr.api",
    "ecr.dkr",
    "execute-api",
    "elasticloadbalancing",
    "autoscaling",
    "rds",
    "xray",
    "kinesis-streams",
    "cloudformation",
    "email-smtp",
    "athena",
    "glue",
    "sagemaker.runtime",
    "bedrock-runtime",
];

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

/// The endpoints of the stack (listed ones first, then automatic ones not
/// listed), and the errors of functions that can reach nothing they need.
pub fn resolve(spec: &StackFile, errs: &mut Vec<PathError>) -> Vec<Endpoint> {
    let net = &spec.network;
    let mut out: Vec<Endpoint> = Vec::new();
    for (i, s) in net.endpoints.listed().iter().enumerate() {
        let p = vec![key("network"), key("endpoints"), key("services"), PathSeg::Index(i)];
        let known = GATEWAY.contains(&s.as_str()) || INTERFACE.contains(&s.as_str());
        let looks_like_a_name = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !known && !looks_like_a_name {
            errs.push(
                PathError::new(p, format!("`{s}` is not a VPC endpoint service name"))
                    .help("use the service's endpoint name, e.g. `ssm`, `logs`, `ecr.api`"),
            );
            continue;
        }
        if !known && let Some(m) = did_you_mean(s, &[GATEWAY, INTERFACE].concat()) {
            errs.push(
                PathError::new(p, format!("unknown VPC endpoint service `{s}`")).help(format!("did you mean `{m}`?")),
            );
            continue;
        }
        if out.iter().any(|e| &e.service == s) {
            errs.push(PathError::new(p, format!("`{s}` is listed twice")).help("remove one"));
            continue;
        }
        out.push(Endpoint {
            service: s.clone(),
            gateway: GATEWAY.contains(&s.as_str()),
            reason: "listed in network.endpoints".into(),
        });
    }

    // What VPC functions and private web groups need; only without NAT
    // (with NAT they go through it).
    if net.nat != NatMode::None {
        return out;
    }
    // (what it is, its name, its path, the services it needs: (service, field, why)).
    type Need = (&'static str, &'static str, &'static str);
    let mut workloads: Vec<(&str, &str, Vec<PathSeg>, Vec<Need>)> = Vec::new();
    if let Some(backend) = &spec.backend {
        for (name, f) in backend.functions.iter().filter(|(_, f)| f.vpc) {
            let mut needs: Vec<Need> = Vec::new();
            if !f.tables.is_empty() {
                needs.push(("dynamodb", "tables", "uses DynamoDB"));
            }
            if f.database {
                needs.push(("secretsmanager", "database", "reads the database secret"));
            }
            workloads.push(("function", name, vec![key("backend"), key("functions"), key(name)], needs));
        }
    }
    if let Some(compute) = &spec.compute {
        for (name, g) in compute.groups.iter().filter(|(_, g)| g.subnets == Some(SubnetTier::Private)) {
            let mut needs: Vec<Need> = Vec::new();
            if !g.tables.is_empty() {
                needs.push(("dynamodb", "tables", "uses DynamoDB"));
            }
            if g.database {
                needs.push(("secretsmanager", "database", "reads the database secret"));
            }
            // Session Manager (the instances' way in, instead of SSH keys).
            for s in SESSION_MANAGER {
                needs.push((s, "subnets", "is reached through Session Manager"));
            }
            workloads.push(("web group", name, vec![key("compute"), key("groups"), key(name)], needs));
        }
    }
    // service -> who needs it.
    let mut needed: Vec<(&str, Vec<String>)> = Vec::new();
    for (what, name, path, needs) in &workloads {
        for (service, field, why) in needs {
            if out.iter().any(|e| e.service == *service) {
                continue;
            }
            if !net.endpoints.auto() {
                // Session Manager is a way in, not something the group's
                // code depends on: without it, the group still serves.
                if *field == "subnets" {
                    continue;
                }
                let mut p = path.clone();
                p.push(key(field));
                let runs = if *what == "function" { "runs in the VPC" } else { "runs in the private subnets" };
                errs.push(
                    PathError::new(
                        p,
                        format!(
                            "{what} `{name}` {runs} and {why}, but the private subnets have no NAT and no `{service}` endpoint: every call would hang until it times out"
                        ),
                    )
                    .help(format!(
                        "add `{service}` to `network.endpoints.services`, let infra add it (`network.endpoints: auto`), or give the subnets NAT (`network.nat: single`)"
                    )),
                );
                continue;
            }
            let who = format!("{what} {name}");
            match needed.iter_mut().find(|(s, _)| s == service) {
                Some((_, users)) => {
                    if !users.contains(&who) {
                        users.push(who)
                    }
                }
                None => needed.push((service, vec![who])),
            }
        }
    }
    // Anything in the private subnets without NAT reaches S3 and DynamoDB
    // only through their gateway endpoints, which are free: add both (S3
    // also holds the Amazon Linux package repositories).
    let private: Vec<String> = workloads.iter().map(|(what, name, _, _)| format!("{what} {name}")).collect();
    if net.endpoints.auto() && !private.is_empty() {
        for service in GATEWAY {
            if !out.iter().any(|e| e.service == *service) && !needed.iter().any(|(s, _)| s == service) {
                needed.push((service, private.clone()));
            }
        }
    }
    needed.sort_by_key(|(s, _)| (!GATEWAY.contains(s), *s));
    for (service, users) in needed {
        out.push(Endpoint {
            service: service.to_string(),
            gateway: GATEWAY.contains(&service),
            reason: format!(
                "the private subnets have no NAT: {} reach{} {service} only through {}",
                users.join(", "),
                if users.len() > 1 { "" } else { "es" },
                if GATEWAY.contains(&service) { "this (free) gateway endpoint" } else { "this endpoint" },
            ),
        });
    }
    out
}

/// The endpoint's AWS service name in `region` (interface endpoints of the
/// China regions carry a `cn.` prefix).
pub fn service_name(service: &str, region: &str, partition: &str, gateway: bool) -> String {
    if partition == "aws-cn" && !gateway {
        format!("cn.com.amazonaws.{region}.{service}")
    } else {
        format!("com.amazonaws.{region}.{service}")
    }
}

/// The policy of an endpoint: calls signed by this account's principals
/// (`aws:PrincipalAccount`, the VPC's owner read from AWS), so the endpoint
/// cannot carry the workloads' traffic to another account's resources with
/// another account's credentials (AWS PrivateLink Guide, "Control access to
/// VPC endpoints using endpoint policies"). The S3 gateway endpoint also
/// lets anyone read the Amazon Linux 2023 package repositories, which
/// `dnf` fetches unsigned (Amazon Linux 2023 User Guide, "Package repository
/// access through an Amazon S3 gateway endpoint": bucket
/// `al2023-repos-<region>-de612dc2`): without it a private web group could not
/// install its packages.
pub fn policy(e: &Endpoint, region: &str, partition: &str) -> serde_json::Value {
    let mut statements = vec![serde_json::json!({
        "Sid": "ThisAccount",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "*",
        "Resource": "*",
        "Condition": { "StringEquals": { "aws:PrincipalAccount": crate::stack::access::this_account() } },
    })];
    if e.gateway && e.service == "s3" {
        statements.push(serde_json::json!({
            "Sid": "AmazonLinuxRepositories",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:{partition}:s3:::al2023-repos-{region}-de612dc2/*"),
        }));
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}
