//! An independent count of what exists in a private moto, read with the AWS
//! CLI only: the reliability tests compare it after a faulty or interrupted
//! run with the count after a clean run, and after destroy with a fresh
//! account.
//!
//! Two sources:
//! * the Resource Groups Tagging API, filtered on `infra:stack`: every tagged
//!   resource of the services moto's implementation covers (EC2 VPCs, subnets,
//!   security groups, route tables, gateways; ELBv2 load balancers and target
//!   groups; S3; CloudFront distributions; RDS instances; Lambda; DynamoDB;
//!   logs), each named by its `infra:address` tag, so a resource made twice
//!   shows as its address twice;
//! * account-wide listings for what that API misses in moto (Elastic IPs,
//!   launch templates, Auto Scaling groups, listeners, DB subnet groups, IAM,
//!   API Gateway, CloudFront OACs) and for the resources whose duplicates
//!   matter most even untagged (VPCs, load balancers, distributions). moto
//!   is private to the test, so "account-wide" is "made by this test", and a
//!   fresh account's own defaults (default VPC, ...) are in the baseline.
//!
//! Listings of services the stack does not use are skipped (chosen from the
//! kinds of the stack's desired resources, `infra plan --json`); a kind
//! whose service the census does not know turns every listing on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Moto, tag};

/// Per resource type, the sorted names of what exists (`infra:address`, or
/// `untagged:<name>` / `untagged` for resources without it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census(pub BTreeMap<String, Vec<String>>);

impl Census {
    /// Entries of `self` that differ from `other`, one line each.
    pub fn diff(&self, other: &Census) -> Vec<String> {
        let keys: BTreeSet<&String> = self.0.keys().chain(other.0.keys()).collect();
        let empty = Vec::new();
        keys.into_iter()
            .filter_map(|k| {
                let a = self.0.get(k).unwrap_or(&empty);
                let b = other.0.get(k).unwrap_or(&empty);
                (a != b).then(|| format!("{k}: {} {a:?} vs {} {b:?}", a.len(), b.len()))
            })
            .collect()
    }

    /// Everything tagged with the stack (from the tagging API and the tagged listings).
    pub fn tagged(&self) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|(k, v)| {
                v.iter()
                    // Account-wide listings name what they find (`name:`,
                    // `comment:`); only `infra:address` values are addresses.
                    .filter(|a| !["untagged", "name:", "comment:"].iter().any(|p| a.starts_with(p)))
                    .map(move |a| format!("{k} {a}"))
            })
            .collect()
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// Which listings to run, by the AWS services the stack's kinds use.
#[derive(Clone, Debug)]
pub struct Scope {
    services: BTreeSet<&'static str>,
}

/// Known kind prefixes (`<service>.<kind>`) and the census service they need.
const PREFIXES: &[(&str, &str)] = &[
    ("ec2", "ec2"),
    ("vpc", "ec2"),
    ("network", "ec2"),
    ("elbv2", "elbv2"),
    ("elb", "elbv2"),
    ("elasticloadbalancingv2", "elbv2"),
    ("lb", "elbv2"),
    ("autoscaling", "autoscaling"),
    ("asg", "autoscaling"),
    ("s3", "s3"),
    ("cloudfront", "cloudfront"),
    ("rds", "rds"),
    ("dynamodb", "dynamodb"),
    ("iam", "iam"),
    ("lambda", "lambda"),
    ("apigateway", "apigateway"),
    ("apigw", "apigateway"),
    ("logs", "logs"),
    ("cognito", "cognito"),
];

const ALL: &[&str] = &[
    "ec2",
    "elbv2",
    "autoscaling",
    "s3",
    "cloudfront",
    "rds",
    "dynamodb",
    "iam",
    "lambda",
    "apigateway",
    "logs",
    "cognito",
];

impl Scope {
    /// From the kinds of a stack's resources (e.g. `ec2.vpc`).
    pub fn from_kinds<'a>(kinds: impl IntoIterator<Item = &'a str>) -> Scope {
        let mut services = BTreeSet::new();
        for k in kinds {
            let prefix = k.split(['.', ':', '_']).next().unwrap_or(k);
            match PREFIXES.iter().find(|(p, _)| *p == prefix) {
                Some((_, s)) => {
                    services.insert(*s);
                    // Launch templates and instances come with groups.
                    if *s == "autoscaling" {
                        services.insert("ec2");
                    }
                }
                None => services.extend(ALL.iter().copied()),
            }
        }
        Scope { services }
    }

    /// Every listing.
    pub fn all() -> Scope {
        Scope { services: ALL.iter().copied().collect() }
    }

    fn has(&self, s: &str) -> bool {
        self.services.contains(s)
    }
}

/// The kinds of the resources in a plan (`infra plan --json` output).
pub fn plan_kinds(plan_json: &str) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(plan_json).expect("plan --json output");
    v["changes"]
        .as_array()
        .map(|cs| cs.iter().filter_map(|c| c["kind"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn name_of(item: &Value, tags: Option<&str>, fallback: &str) -> String {
    match tags {
        Some(a) => a.to_string(),
        None => format!("untagged:{}", item[fallback].as_str().unwrap_or("?")),
    }
}

/// `infra:address` from a `{Key, Value}` tag list or a `{key: value}` map.
fn address(item: &Value, tags_field: &str) -> Option<String> {
    let t = &item[tags_field];
    if t.is_array() {
        let wrapped = serde_json::json!({ "Tags": t });
        tag(&wrapped, "infra:address").map(str::to_string)
    } else {
        t["infra:address"].as_str().map(str::to_string)
    }
}

/// (service, resource type) of an ARN: `arn:aws:ec2:r:a:vpc/vpc-1` -> (ec2, vpc),
/// `...:elasticloadbalancing:r:a:loadbalancer/app/n/id` -> (elasticloadbalancing,
/// loadbalancer/app), `arn:aws:s3:::bucket` -> (s3, bucket), `...:function:name`
/// -> (lambda, function). Tolerates moto's CloudFront ARNs, which lack a field.
fn arn_type(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let svc = parts.get(2).copied().unwrap_or("?").to_string();
    if svc == "s3" {
        return (svc, "bucket".into());
    }
    let rest = parts.last().copied().unwrap_or("");
    let mut segs = rest.split(['/', ':']);
    let first = segs.next().unwrap_or("").to_string();
    let ty = if svc == "elasticloadbalancing" && first == "loadbalancer" {
        format!("{first}/{}", segs.next().unwrap_or(""))
    } else {
        first
    };
    (svc, ty)
}

type Listing = (&'static str, &'static str, Vec<&'static str>);

/// Counts what exists in `moto`, tagged with `stack` or not (see the module doc).
pub fn census(m: &Moto, stack: &str, scope: &Scope) -> Census {
    let filter = format!("Key=infra:stack,Values={stack}");
    let mut jobs: Vec<Listing> = vec![(
        "tagging",
        "tagging",
        vec![
            "resourcegroupstaggingapi",
            "get-resources",
            "--tag-filters",
            // replaced below (needs the owned filter string)
            "",
        ],
    )];
    let mut add = |svc: &'static str, label: &'static str, args: &[&'static str]| {
        if scope.has(svc) {
            jobs.push((svc, label, args.to_vec()));
        }
    };
    add("ec2", "ec2:vpc(all)", &["ec2", "describe-vpcs"]);
    add("ec2", "ec2:elastic-ip(all)", &["ec2", "describe-addresses"]);
    add("ec2", "ec2:network-acl(all)", &["ec2", "describe-network-acls"]);
    add("autoscaling", "ec2:launch-template(all)", &["ec2", "describe-launch-templates"]);
    add(
        "autoscaling",
        "ec2:instance(live)",
        &["ec2", "describe-instances", "--filters", "Name=instance-state-name,Values=pending,running,stopping,stopped"],
    );
    add("autoscaling", "autoscaling:group(all)", &["autoscaling", "describe-auto-scaling-groups"]);
    add("elbv2", "elbv2:load-balancer(all)", &["elbv2", "describe-load-balancers"]);
    add("elbv2", "elbv2:target-group(all)", &["elbv2", "describe-target-groups"]);
    add("rds", "rds:subnet-group(all)", &["rds", "describe-db-subnet-groups"]);
    add("rds", "rds:db(all)", &["rds", "describe-db-instances"]);
    add("iam", "iam:role(all)", &["iam", "list-roles"]);
    add("iam", "iam:policy(local)", &["iam", "list-policies", "--scope", "Local"]);
    add("iam", "iam:instance-profile(all)", &["iam", "list-instance-profiles"]);
    add("cognito", "cognito:user-pool(all)", &["cognito-idp", "list-user-pools", "--max-results", "60"]);
    add("apigateway", "apigateway:rest-api(all)", &["apigateway", "get-rest-apis"]);
    add("cloudfront", "cloudfront:distribution(all)", &["cloudfront", "list-distributions"]);
    add("cloudfront", "cloudfront:oac(all)", &["cloudfront", "list-origin-access-controls"]);
    add("s3", "s3:bucket(all)", &["s3api", "list-buckets"]);
    add("dynamodb", "dynamodb:table(all)", &["dynamodb", "list-tables"]);
    add("lambda", "lambda:function(all)", &["lambda", "list-functions"]);

    // One AWS CLI process per listing, all at once: the CLI's start-up
    // dominates, and the listings are independent.
    let results: Vec<(&str, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(_, label, args)| {
                let filter = filter.clone();
                s.spawn(move || {
                    let mut args: Vec<&str> = args.to_vec();
                    if *label == "tagging" {
                        args[3] = &filter;
                    }
                    (*label, m.aws(&args))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut c: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |k: &str, v: String| c.entry(k.to_string()).or_default().push(v);
    let mut lb_arns = Vec::new();
    for (label, v) in &results {
        let items = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        match *label {
            "tagging" => {
                for r in items("ResourceTagMappingList") {
                    let (svc, ty) = arn_type(r["ResourceARN"].as_str().unwrap_or(""));
                    // Terminated instances linger in moto; live ones are counted below.
                    if svc == "ec2" && ty == "instance" {
                        continue;
                    }
                    // Kept on purpose: destroy takes a final snapshot of the
                    // database (losing no data); not part of the stack.
                    if svc == "rds" && ty == "snapshot" {
                        continue;
                    }
                    let addr = tag(&r, "infra:address").unwrap_or("untagged").to_string();
                    put(&format!("{svc}:{ty}"), addr);
                }
            }
            "ec2:vpc(all)" => {
                for i in items("Vpcs") {
                    put(label, name_of(&i, tag(&i, "infra:address"), "CidrBlock"));
                }
            }
            "ec2:elastic-ip(all)" => {
                for i in items("Addresses") {
                    put(label, name_of(&i, tag(&i, "infra:address"), "PublicIp"));
                }
            }
            "ec2:network-acl(all)" => {
                // Not in moto's tagging API. An untagged one is counted as
                // default or not (ids differ from run to run).
                for i in items("NetworkAcls") {
                    let kind = if i["IsDefault"] == true { "untagged:default" } else { "untagged:custom" };
                    put(label, tag(&i, "infra:address").map_or(kind.to_string(), str::to_string));
                }
            }
            "ec2:launch-template(all)" => {
                for i in items("LaunchTemplates") {
                    put(label, name_of(&i, tag(&i, "infra:address"), "LaunchTemplateName"));
                }
            }
            "ec2:instance(live)" => {
                for r in items("Reservations") {
                    for i in r["Instances"].as_array().cloned().unwrap_or_default() {
                        let owner = tag(&i, "infra:address")
                            .map(str::to_string)
                            .or_else(|| tag(&i, "aws:autoscaling:groupName").map(|g| format!("name:{g}")));
                        put(label, owner.unwrap_or_else(|| "untagged".into()));
                    }
                }
            }
            "autoscaling:group(all)" => {
                for i in items("AutoScalingGroups") {
                    put(label, name_of(&i, address(&i, "Tags").as_deref(), "AutoScalingGroupName"));
                }
            }
            "elbv2:load-balancer(all)" => {
                for i in items("LoadBalancers") {
                    put(label, format!("name:{}", i["LoadBalancerName"].as_str().unwrap_or("?")));
                    if let Some(a) = i["LoadBalancerArn"].as_str() {
                        lb_arns.push(a.to_string());
                    }
                }
            }
            "elbv2:target-group(all)" => {
                for i in items("TargetGroups") {
                    put(
                        label,
                        // The name ends in a hash of the settings, VPC id
                        // included: another VPC, another name. Count by prefix.
                        format!(
                            "name:{}-*",
                            i["TargetGroupName"].as_str().and_then(|n| n.rsplit_once('-')).map_or("?", |(p, _)| p)
                        ),
                    );
                }
            }
            "rds:subnet-group(all)" => {
                for i in items("DBSubnetGroups") {
                    put(label, format!("name:{}", i["DBSubnetGroupName"].as_str().unwrap_or("?")));
                }
            }
            "rds:db(all)" => {
                for i in items("DBInstances") {
                    put(label, name_of(&i, address(&i, "TagList").as_deref(), "DBInstanceIdentifier"));
                }
            }
            "iam:role(all)" => {
                for i in items("Roles") {
                    put(label, format!("name:{}", i["RoleName"].as_str().unwrap_or("?")));
                }
            }
            "iam:instance-profile(all)" => {
                for i in items("InstanceProfiles") {
                    let roles: Vec<&str> =
                        i["Roles"].as_array().into_iter().flatten().filter_map(|r| r["RoleName"].as_str()).collect();
                    put(
                        label,
                        format!("name:{} roles:{}", i["InstanceProfileName"].as_str().unwrap_or("?"), roles.join(",")),
                    );
                }
            }
            "cognito:user-pool(all)" => {
                for i in items("UserPools") {
                    put(label, format!("name:{}", i["Name"].as_str().unwrap_or("?")));
                }
            }
            "iam:policy(local)" => {
                for i in items("Policies") {
                    put(label, format!("name:{}", i["PolicyName"].as_str().unwrap_or("?")));
                }
            }
            "apigateway:rest-api(all)" => {
                for i in items("items") {
                    put(label, name_of(&i, address(&i, "tags").as_deref(), "name"));
                }
            }
            "cloudfront:distribution(all)" => {
                for i in v["DistributionList"]["Items"].as_array().cloned().unwrap_or_default() {
                    put(label, format!("comment:{}", i["Comment"].as_str().unwrap_or("")));
                }
            }
            "cloudfront:oac(all)" => {
                for i in v["OriginAccessControlList"]["Items"].as_array().cloned().unwrap_or_default() {
                    put(label, format!("name:{}", i["Name"].as_str().unwrap_or("?")));
                }
            }
            "s3:bucket(all)" => {
                for i in items("Buckets") {
                    let name = i["Name"].as_str().unwrap_or("?");
                    // The lock bucket is per account and region, shared by
                    // every stack, and outlives them on purpose.
                    if name.starts_with("infra-locks-") {
                        continue;
                    }
                    put(label, format!("name:{name}"));
                }
            }
            "dynamodb:table(all)" => {
                for i in v["TableNames"].as_array().cloned().unwrap_or_default() {
                    put(label, format!("name:{}", i.as_str().unwrap_or("?")));
                }
            }
            "lambda:function(all)" => {
                for i in items("Functions") {
                    put(label, format!("name:{}", i["FunctionName"].as_str().unwrap_or("?")));
                }
            }
            other => panic!("census: no reader for {other}"),
        }
    }
    // Listeners have no account-wide listing: one call per load balancer.
    for arn in lb_arns {
        let v = m.aws(&["elbv2", "describe-listeners", "--load-balancer-arn", &arn]);
        for l in v["Listeners"].as_array().cloned().unwrap_or_default() {
            put("elbv2:listener(all)", format!("name:{}:{}", arn.rsplit('/').nth(1).unwrap_or("?"), l["Port"]));
        }
    }
    for v in c.values_mut() {
        v.sort();
    }
    Census(c)
}
