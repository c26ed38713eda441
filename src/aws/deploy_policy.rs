//! The least-privilege IAM policy of a principal that plans, applies and
//! destroys one stack (`infra policy`), so a team can give its CI role that
//! instead of administrator rights.
//!
//! Which actions: `policy/actions.json`, written by `scripts/iam_actions.py`
//! from the tool's own calls (every `aws.<client>.<operation>()` under
//! `src/`), plus what AWS checks beside a call (passing a role, creating a
//! service-linked role, tags written by a create), each with its resource
//! types and condition keys from the AWS Service Authorization Reference.
//! `scripts/iam_actions.py --check` keeps the file in step with the code;
//! `tests/support/test_iam_actions.py` checks that every call moto saw
//! during the integration tests is in it.
//!
//! How far each action is scoped:
//! - reads (access level `List` or `Read`) reach every resource of their
//!   type in the account and region: the tool finds a stack by its tags, so
//!   it reads the tags of resources that are not the stack's;
//! - writes reach the stack's own resources: by name where the ARN holds a
//!   name the stack chose (`<stack>-*`, roles under `/infra/<stack>/`, the
//!   lock object), by the `infra:stack` tag where the ARN holds only an id
//!   and the type takes tag conditions (`aws:ResourceTag` for what exists,
//!   `aws:RequestTag` for what the call creates, with its tags);
//! - the rest is the type's ARN with its ids wildcarded (API Gateway's
//!   paths, the interfaces Lambda leaves in a VPC, the image an instance
//!   starts from).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Value, json};

/// The table of actions, bundled.
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../policy/actions.json")).expect("policy/actions.json is valid")
});

#[derive(Deserialize)]
struct Table {
    actions: BTreeMap<String, Action>,
    /// IAM prefix → resource type → ARN format.
    arns: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Action {
    /// The source files whose calls need it.
    calls: Vec<String>,
    access: String,
    resources: Vec<ResourceType>,
}

#[derive(Deserialize)]
struct ResourceType {
    #[serde(rename = "type")]
    kind: String,
    required: bool,
    /// The tag conditions it takes: `request`, `resource`.
    tags: Vec<String>,
}

/// Whose policy: the stack, where, in which account.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The stack's name, or a pattern with `*` for several (`webapp*`: the
    /// stack and its pull-request stacks `webapp-pr-N`).
    pub stack: String,
    pub region: String,
    pub account: String,
    pub partition: String,
}

/// The services whose role `iam:PassRole` may hand the stack's roles to.
const PASSED_TO: &[&str] =
    &["lambda.amazonaws.com", "ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com", "monitoring.rds.amazonaws.com"];

/// The services whose service-linked role the first resource of its kind in
/// an account creates.
const LINKED: &[&str] = &["elasticloadbalancing.amazonaws.com", "autoscaling.amazonaws.com", "rds.amazonaws.com"];

/// EC2 resource types the stack makes and tags (at creation).
const EC2_TAGGED: &[&str] = &[
    "vpc",
    "subnet",
    "security-group",
    "route-table",
    "internet-gateway",
    "natgateway",
    "elastic-ip",
    "network-acl",
    "vpc-endpoint",
    "vpc-flow-log",
    "launch-template",
];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tagged {
    /// The resource carries `infra:stack` already.
    Resource,
    /// The call writes `infra:stack` on what it creates.
    Request,
}

/// One permission: resources and the tag condition on them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    resources: Vec<String>,
    tagged: Option<Tagged>,
    /// A condition of the action's own (key, values).
    condition: Option<(&'static str, &'static [&'static str])>,
}

impl Grant {
    fn new(resources: Vec<String>, tagged: Option<Tagged>) -> Grant {
        Grant { resources, tagged, condition: None }
    }
}

impl Principal {
    fn arn(&self, format: &str) -> String {
        format
            .replace("${Partition}", &self.partition)
            .replace("${Region}", &self.region)
            .replace("${Account}", &self.account)
    }

    /// An ARN format with every id wildcarded.
    fn wildcard(&self, format: &str) -> String {
        let mut out = String::new();
        let mut rest = self.arn(format);
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            out.push('*');
            rest = rest[i..].find('}').map(|j| rest[i + j + 1..].to_string()).unwrap_or_default();
        }
        out.push_str(&rest);
        // `a/*/*` says no more than `a/*`; keep the shape IAM shows.
        out
    }

    /// The stack's own resources of a type whose ARN holds the name the
    /// stack gives them (names are `<stack>-...`, see `stack::names`).
    fn named(&self, prefix: &str, kind: &str) -> Option<Vec<String>> {
        let (p, r, a, s) = (&self.partition, &self.region, &self.account, &self.stack);
        let lock = format!("infra-locks-{a}-{r}");
        let v = match (prefix, kind) {
            ("iam", "role") => vec![format!("arn:{p}:iam::{a}:role/infra/{s}/*")],
            ("iam", "instance-profile") => vec![format!("arn:{p}:iam::{a}:instance-profile/infra/{s}/*")],
            ("lambda", "function") => vec![format!("arn:{p}:lambda:{r}:{a}:function:{s}-*")],
            ("dynamodb", "table") => vec![format!("arn:{p}:dynamodb:{r}:{a}:table/{s}-*")],
            ("dynamodb", "stream") => vec![format!("arn:{p}:dynamodb:{r}:{a}:table/{s}-*/stream/*")],
            ("dynamodb", "backup") => vec![format!("arn:{p}:dynamodb:{r}:{a}:table/{s}-*/backup/*")],
            ("s3", "bucket") => vec![format!("arn:{p}:s3:::{s}-*"), format!("arn:{p}:s3:::{lock}")],
            // Every object of the buckets whose policy the tool writes (who
            // may write a bucket's policy may give itself its objects).
            ("s3", "object") => vec![format!("arn:{p}:s3:::{s}-*/*"), format!("arn:{p}:s3:::{lock}/*")],
            ("logs", "log-group") => vec![
                format!("arn:{p}:logs:{r}:{a}:log-group:/aws/lambda/{s}-*"),
                format!("arn:{p}:logs:{r}:{a}:log-group:/aws/apigateway/{s}-*"),
                format!("arn:{p}:logs:{r}:{a}:log-group:/infra/{s}/*"),
            ],
            ("rds", "db") => vec![format!("arn:{p}:rds:{r}:{a}:db:{s}-*")],
            ("rds", "subgrp") => vec![format!("arn:{p}:rds:{r}:{a}:subgrp:{s}-*")],
            ("rds", "snapshot") => vec![format!("arn:{p}:rds:{r}:{a}:snapshot:{s}-*")],
            // The engine's default groups (the stack sets none of its own).
            ("rds", "pg") => vec![format!("arn:{p}:rds:{r}:{a}:pg:default.*")],
            ("rds", "og") => vec![format!("arn:{p}:rds:{r}:{a}:og:default:*")],
            // The master password RDS keeps in Secrets Manager.
            ("secretsmanager", "Secret") => vec![format!("arn:{p}:secretsmanager:{r}:{a}:secret:rds!*")],
            // Load balancers, their listeners and rules, by the balancer's
            // name (`/net/` too: IAM lists both as the types an action on a
            // listener may need; the stack makes no network balancer).
            ("elasticloadbalancing", t) if t.starts_with("loadbalancer/") || t.starts_with("listener") => {
                let ids = match t.split('/').next() {
                    Some("loadbalancer") => "*",
                    Some("listener") => "*/*",
                    _ => "*/*/*",
                };
                vec![format!("arn:{p}:elasticloadbalancing:{r}:{a}:{}/{s}-*/{ids}", t.trim_end_matches('/'))]
            }
            ("elasticloadbalancing", "targetgroup") => {
                vec![format!("arn:{p}:elasticloadbalancing:{r}:{a}:targetgroup/{s}-*/*")]
            }
            ("autoscaling", "autoScalingGroup") => {
                vec![format!("arn:{p}:autoscaling:{r}:{a}:autoScalingGroup:*:autoScalingGroupName/{s}-*")]
            }
            ("cloudfront", "function") => vec![format!("arn:{p}:cloudfront::{a}:function/{s}-*")],
            // The public parameters that name the latest images.
            ("ssm", "parameter") => vec![format!("arn:{p}:ssm:{r}:*:parameter/aws/service/*")],
            _ => return None,
        };
        Some(v)
    }
}

/// Resource types named by id only, that the stack tags when it makes them.
fn tag_scoped(prefix: &str, kind: &str) -> bool {
    match prefix {
        "ec2" => EC2_TAGGED.contains(&kind),
        "cloudfront" => kind == "distribution",
        "cognito-idp" => kind == "userpool",
        "lambda" => kind == "eventSourceMapping",
        _ => false,
    }
}

/// Whether `operation` makes a resource of `kind`.
fn creates(operation: &str, kind: &str) -> bool {
    let made = match operation {
        "AllocateAddress" => "elasticip",
        "CreateFlowLogs" => "vpcflowlog",
        o => match o.strip_prefix("Create") {
            Some(rest) => return rest.eq_ignore_ascii_case(&kind.replace(['-', '/'], "")),
            None => return false,
        },
    };
    made == kind.replace('-', "")
}

/// Reads of tags, which the tool makes of resources not yet known to be the
/// stack's.
fn reads_tags(operation: &str) -> bool {
    operation.starts_with("ListTags") || operation == "DescribeTags" || operation == "GetBucketTagging"
}

/// The call that launches instances, as `ec2:CreateAction` names it.
const RUN: &[&str] = &["RunInstances"];

/// The grants of one action.
fn grants(who: &Principal, name: &str, action: &Action) -> Vec<Grant> {
    match name {
        "iam:PassRole" => {
            let roles = who.named("iam", "role").unwrap_or_default();
            return vec![Grant { resources: roles, tagged: None, condition: Some(("iam:PassedToService", PASSED_TO)) }];
        }
        "ec2:CreateTags" => {
            // The instances and volumes a web group launches are tagged by
            // the launch (the template's tag specifications): AWS checks the
            // caller may, when it makes the group (Amazon EC2 Auto Scaling
            // guide, "Launch template permissions").
            let mut out = tagged_grants(who, name, action);
            let launched = ["instance", "volume", "network-interface"]
                .iter()
                .map(|t| format!("arn:{}:ec2:{}:{}:{t}/*", who.partition, who.region, who.account))
                .collect();
            out.push(Grant { resources: launched, tagged: None, condition: Some(("ec2:CreateAction", RUN)) });
            return out;
        }
        "iam:CreateServiceLinkedRole" => {
            let linked = format!("arn:{}:iam::{}:role/aws-service-role/*", who.partition, who.account);
            return vec![Grant {
                resources: vec![linked],
                tagged: None,
                condition: Some(("iam:AWSServiceName", LINKED)),
            }];
        }
        _ => {}
    }
    tagged_grants(who, name, action)
}

/// The grants of an action scoped by its resource types: by name, by the
/// stack's tag, or by type.
fn tagged_grants(who: &Principal, name: &str, action: &Action) -> Vec<Grant> {
    let (prefix, operation) = name.split_once(':').unwrap_or((name, ""));
    if prefix == "apigateway" {
        // API Gateway's management API is authorized by method and path;
        // the stack's APIs, keys and usage plans have ids only.
        let paths = ["/restapis", "/restapis/*", "/apikeys", "/apikeys/*", "/usageplans", "/usageplans/*", "/tags/*"];
        return vec![Grant::new(
            paths.iter().map(|p| format!("arn:{}:apigateway:{}::{p}", who.partition, who.region)).collect(),
            None,
        )];
    }
    let formats = TABLE.arns.get(prefix);
    let read = is_read(name, action);
    let relevant: Vec<&ResourceType> = action
        .resources
        .iter()
        .filter(|r| r.required || who.named(prefix, &r.kind).is_some() || tag_scoped(prefix, &r.kind))
        .collect();
    if relevant.is_empty() {
        return vec![Grant::new(vec!["*".into()], None)];
    }
    // One grant holds every resource type the action needs (a statement
    // that leaves one out allows nothing), under one condition.
    let mut resources = Vec::new();
    let (mut all_tagged, mut creating, mut request, mut resource) = (true, false, true, true);
    for r in &relevant {
        let Some(format) = formats.and_then(|f| f.get(&r.kind)) else { continue };
        let takes = |t: &str| r.tags.iter().any(|x| x == t);
        match who.named(prefix, &r.kind) {
            // Objects are data: read only the stack's (its site, its lock);
            // the image parameters are AWS's, in no account.
            Some(named) if !read || matches!((prefix, r.kind.as_str()), ("s3", "object") | ("ssm", "parameter")) => {
                resources.extend(named)
            }
            _ => resources.push(who.wildcard(format)),
        }
        if who.named(prefix, &r.kind).is_none() {
            all_tagged &= tag_scoped(prefix, &r.kind);
        }
        creating |= creates(operation, &r.kind);
        request &= takes("request");
        resource &= takes("resource");
    }
    let any_tagged = relevant.iter().any(|r| tag_scoped(prefix, &r.kind));
    if read || !any_tagged {
        return vec![Grant::new(resources, None)];
    }
    if creating {
        // `aws:RequestTag` is the request's: it holds for every resource the
        // create names (the VPC of a new subnet), not only the new one.
        return vec![Grant::new(resources, request.then_some(Tagged::Request))];
    }
    if !all_tagged {
        // A resource the stack does not tag is involved (an image, an
        // instance being launched): no tag condition can hold for all.
        return vec![Grant::new(resources, None)];
    }
    if action.access == "Tagging" {
        // The tags a create writes (with `infra:stack`), or a later change
        // to the tags of what is the stack's already.
        let mut out = vec![Grant::new(resources.clone(), resource.then_some(Tagged::Resource))];
        if request {
            out.push(Grant::new(resources, Some(Tagged::Request)));
        }
        return out;
    }
    vec![Grant::new(resources, resource.then_some(Tagged::Resource))]
}

/// Whether the action only reads.
fn is_read(name: &str, action: &Action) -> bool {
    let operation = name.split_once(':').map_or(name, |(_, o)| o);
    matches!(action.access.as_str(), "List" | "Read") || reads_tags(operation)
}

/// Whether a principal that plans, applies and destroys a stack whose kinds
/// are of `services` needs the action. Every read: a plan reads every kind
/// the tool knows, to find what a removed part of the file left behind. A
/// write made in `src/aws/<service>/` when the stack has a kind of that
/// service; every other (the lock, the account's identity) always.
fn used(name: &str, action: &Action, services: &BTreeSet<&str>) -> bool {
    is_read(name, action)
        || action.calls.iter().any(|file| match file.strip_prefix("src/aws/").and_then(|f| f.split_once('/')) {
            Some((dir, _)) => services.contains(dir),
            None => true,
        })
}

/// The policy document for `who`, whose stack writes resources of `kinds`
/// (`ec2.vpc`, `iam.role`...: the stack file's, or a saved plan's changes').
pub fn document<'a>(who: &Principal, kinds: impl IntoIterator<Item = &'a str>) -> Value {
    let services: BTreeSet<&str> = kinds.into_iter().filter_map(|k| k.split_once('.').map(|(s, _)| s)).collect();
    // Grants of one service under one condition share a statement: an ARN
    // of another resource type never matches an action's, so the union of
    // their resources allows each action no more than its own did.
    // Reads (over whole types), writes (scoped) and actions that take no
    // resource (`*`) stay apart, or the union would widen the writes.
    type Key = (String, u8, Option<Tagged>, Option<(&'static str, &'static [&'static str])>);
    let mut merged: BTreeMap<Key, (BTreeSet<&str>, BTreeSet<String>)> = BTreeMap::new();
    for (name, action) in TABLE.actions.iter().filter(|(n, a)| used(n, a, &services)) {
        let prefix = name.split(':').next().unwrap_or_default().to_string();
        for g in grants(who, name, action) {
            let class = if g.resources.iter().any(|r| r == "*") {
                0
            } else if is_read(name, action) {
                1
            } else {
                2
            };
            let entry = merged.entry((prefix.clone(), class, g.tagged, g.condition)).or_default();
            entry.0.insert(name.as_str());
            entry.1.extend(g.resources);
        }
    }
    let mut sids: BTreeMap<String, usize> = BTreeMap::new();
    let body: Vec<Value> = merged
        .into_iter()
        .map(|((prefix, _, tagged, condition), (actions, resources))| {
            let service: String = prefix
                .split('-')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .collect();
            let n = sids.entry(service.clone()).or_default();
            *n += 1;
            let mut st = json!({
                "Sid": format!("{service}{n}"),
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                // `*` alone where it is needed at all.
                "Resource": if resources.contains("*") { vec!["*".to_string()] } else { resources.into_iter().collect() },
            });
            // The stack's tag: its name, or its pattern (`StringLike`).
            let mut stack = serde_json::Map::new();
            let key = match tagged {
                Some(Tagged::Resource) => Some("aws:ResourceTag/infra:stack"),
                Some(Tagged::Request) => Some("aws:RequestTag/infra:stack"),
                None => None,
            };
            if let Some(key) = key {
                stack.insert(key.into(), json!(who.stack));
            }
            let mut cond = serde_json::Map::new();
            let mut equals = serde_json::Map::new();
            if let Some((key, values)) = condition {
                equals.insert(key.into(), json!(values));
            }
            if who.stack.contains('*') {
                if !stack.is_empty() {
                    cond.insert("StringLike".into(), Value::Object(stack));
                }
            } else {
                equals.extend(stack);
            }
            if !equals.is_empty() {
                cond.insert("StringEquals".into(), Value::Object(equals));
            }
            if !cond.is_empty() {
                st["Condition"] = Value::Object(cond);
            }
            st
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": body})
}

/// IAM's quota on one managed policy: 6,144 characters, white space not
/// counted (IAM User Guide, "IAM and AWS STS quotas").
pub const MANAGED_POLICY_CHARS: usize = 6144;

/// The characters IAM counts in `v`.
pub fn size(v: &Value) -> usize {
    v.to_string().chars().filter(|c| !c.is_whitespace()).count()
}

/// `doc` as documents of at most `limit` characters each, to attach as
/// several managed policies: whole statements where they fit, a statement
/// too large for one split by its actions.
pub fn split(doc: &Value, limit: usize) -> Vec<Value> {
    let wrap = |statements: Vec<Value>| json!({"Version": "2012-10-17", "Statement": statements});
    let overhead = size(&wrap(Vec::new()));
    let mut queue: std::collections::VecDeque<Value> = doc["Statement"].as_array().cloned().unwrap_or_default().into();
    let (mut parts, mut current, mut used) = (Vec::new(), Vec::new(), overhead);
    while let Some(st) = queue.pop_front() {
        let n = size(&st) + 1;
        let actions = st["Action"].as_array().cloned().unwrap_or_default();
        if overhead + n > limit && actions.len() > 1 {
            let (a, b) = actions.split_at(actions.len() / 2);
            for (half, tag) in [(b, "B"), (a, "A")] {
                let mut h = st.clone();
                h["Action"] = json!(half);
                h["Sid"] = json!(format!("{}{tag}", st["Sid"].as_str().unwrap_or_default()));
                queue.push_front(h);
            }
            continue;
        }
        if used + n > limit && !current.is_empty() {
            parts.push(wrap(std::mem::take(&mut current)));
            used = overhead;
        }
        used += n;
        current.push(st);
    }
    if !current.is_empty() {
        parts.push(wrap(current));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Principal {
        Principal {
            stack: "webapp".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            partition: "aws".into(),
        }
    }

    #[test]
    fn wildcards_every_id_of_an_arn() {
        assert_eq!(
            who().wildcard("arn:${Partition}:ec2:${Region}:${Account}:subnet/${SubnetId}"),
            "arn:aws:ec2:us-east-1:123456789012:subnet/*"
        );
        assert_eq!(
            who().wildcard("arn:${Partition}:elasticloadbalancing:${Region}:${Account}:listener/app/${LoadBalancerName}/${LoadBalancerId}/${ListenerId}"),
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/*/*/*"
        );
    }

    #[test]
    fn a_policy_too_large_for_one_managed_policy_is_split_into_parts_that_fit() {
        let doc = document(&who(), ["ec2.vpc", "iam.role", "lambda.function", "rds.db_instance", "s3.bucket"]);
        assert!(size(&doc) > MANAGED_POLICY_CHARS, "{}", size(&doc));
        let parts = split(&doc, MANAGED_POLICY_CHARS);
        assert!(parts.len() >= 2);
        let actions = |d: &Value| -> BTreeSet<(String, String)> {
            d["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| {
                    let resources = s["Resource"].to_string() + &s["Condition"].to_string();
                    s["Action"].as_array().unwrap().iter().map(move |a| (a.to_string(), resources.clone()))
                })
                .collect()
        };
        let mut joined = BTreeSet::new();
        for p in &parts {
            assert!(size(p) <= MANAGED_POLICY_CHARS, "{}", size(p));
            joined.extend(actions(p));
        }
        assert_eq!(joined, actions(&doc), "the parts allow what the whole does, no more");
        // A limit one statement cannot meet splits it by its actions.
        let tight = split(&doc, 900);
        assert!(tight.iter().all(|p| size(p) <= 900 || p["Statement"].as_array().unwrap().len() == 1));
        assert_eq!(tight.iter().flat_map(&actions).collect::<BTreeSet<_>>(), actions(&doc));
    }

    #[test]
    fn writes_only_the_services_of_the_stack_reads_all() {
        let doc = document(&who(), ["ec2.vpc"]).to_string();
        assert!(doc.contains("\"ec2:CreateVpc\"") && doc.contains("\"cognito-idp:ListUserPools\""));
        assert!(!doc.contains("\"cognito-idp:CreateUserPool\"") && !doc.contains("\"iam:CreateRole\""));
        // The lock is always written.
        assert!(doc.contains("\"s3:PutObject\""));
    }

    #[test]
    fn every_action_of_the_table_is_in_the_whole_stacks_policy() {
        let kinds: Vec<String> = TABLE
            .actions
            .values()
            .flat_map(|a| a.calls.iter())
            .filter_map(|f| f.strip_prefix("src/aws/")?.split_once('/').map(|(d, _)| format!("{d}.any")))
            .collect();
        let doc = document(&who(), kinds.iter().map(String::as_str)).to_string();
        for a in TABLE.actions.keys() {
            assert!(doc.contains(&format!("\"{a}\"")), "{a}");
        }
    }

    #[test]
    fn a_pattern_reaches_every_stack_it_matches() {
        let who = Principal { stack: "webapp*".into(), ..who() };
        let doc = document(&who, ["ec2.vpc", "iam.role", "lambda.function"]);
        let text = doc.to_string();
        assert!(text.contains("role/infra/webapp*/*") && text.contains("function:webapp*-*"), "{text}");
        let tagged: Vec<&Value> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Action"].to_string().contains("ec2:DeleteSubnet"))
            .collect();
        assert_eq!(tagged[0]["Condition"], json!({"StringLike": {"aws:ResourceTag/infra:stack": "webapp*"}}));
        assert!(!text.contains("\"StringEquals\":{\"aws:ResourceTag"), "no exact match on a pattern");
    }

    #[test]
    fn knows_what_a_call_creates() {
        assert!(creates("CreateSubnet", "subnet"));
        assert!(creates("CreateSecurityGroup", "security-group"));
        assert!(creates("AllocateAddress", "elastic-ip"));
        assert!(creates("CreateFlowLogs", "vpc-flow-log"));
        assert!(!creates("CreateSubnet", "vpc"));
        assert!(!creates("CreateLaunchTemplateVersion", "launch-template"));
    }
}
