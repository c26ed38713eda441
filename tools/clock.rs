//! `--aws-clock FACTOR`: AWS's own clock on top of an instant emulator.
//!
//! On moto every resource is ready the moment it is created. With the clock
//! on, the proxy rewrites the emulator's answers so that each resource passes
//! through the states AWS reports, for as long as AWS typically takes
//! ([`DURATIONS`], seconds on AWS) times the factor, and refuses the calls
//! AWS refuses meanwhile (an update of a Lambda function whose last update is
//! in progress, deleting a CloudFront distribution whose disable is still
//! deploying, deleting a subnet that a deleted VPC function's network
//! interfaces still hold...). The emulator itself stays instant: only its
//! answers change, each in its protocol's shape (query XML for RDS, EC2 and
//! ELBv2, REST XML for CloudFront, REST JSON for Lambda, JSON 1.0 for
//! DynamoDB).
//!
//! Resources are recognised from the create calls (request and answer) and
//! followed through the later describe / get / list / update / delete calls.
//! Every method takes `now` so that the tests drive a fake clock.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long AWS takes, in seconds on AWS's clock (scaled by the factor). The
/// table in bench/README.md lists the same keys and numbers, with their
/// sources (a test checks that they match).
pub const DURATIONS: &[(&str, f64)] = &[
    ("rds.multi_az.creating", 720.0),
    ("rds.multi_az.backing-up", 180.0),
    ("rds.single_az.creating", 300.0),
    ("rds.single_az.backing-up", 120.0),
    ("rds.modifying", 240.0),
    ("rds.deleting", 360.0),
    ("rds.final_snapshot", 180.0),
    ("cloudfront.deploy", 300.0),
    ("cloudfront.invalidation", 60.0),
    ("ec2.nat_gateway.pending", 120.0),
    ("ec2.nat_gateway.deleting", 60.0),
    ("ec2.vpc_endpoint.interface.pending", 120.0),
    ("ec2.vpc_endpoint.gateway.pending", 10.0),
    ("elbv2.provisioning", 150.0),
    ("elbv2.eni_release", 300.0),
    ("lambda.pending", 5.0),
    ("lambda.vpc.pending", 90.0),
    ("lambda.update", 5.0),
    ("lambda.vpc.update", 60.0),
    ("lambda.vpc.eni_release", 1200.0),
    ("dynamodb.creating", 20.0),
    ("dynamodb.updating", 10.0),
    ("dynamodb.gsi_backfill", 300.0),
    ("dynamodb.deleting", 10.0),
];

/// A resource's final state once it no longer exists.
const GONE: &str = "(gone)";

/// `1/60`, `0.5`, `1`: the factor applied to every duration.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    let f = match s.split_once('/') {
        Some((a, b)) => {
            let a: f64 = a.trim().parse().map_err(|e| format!("{s}: {e}"))?;
            let b: f64 = b.trim().parse().map_err(|e| format!("{s}: {e}"))?;
            a / b
        }
        None => s.trim().parse().map_err(|e| format!("{s}: {e}"))?,
    };
    if f.is_finite() && f > 0.0 {
        Ok(f)
    } else {
        Err(format!("{s}: the factor must be a positive number, e.g. 1/60 or 0.05"))
    }
}

/// One AWS call, as the clock needs to see it.
pub struct Call<'a> {
    pub service: &'a str,
    /// `Action=` / the `X-Amz-Target` operation / `METHOD /path` (REST).
    pub action: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

impl Call<'_> {
    /// The query protocols' parameters (form body and URL query), decoded.
    fn form(&self) -> Vec<(String, String)> {
        let mut out = parse_form(self.query);
        if let Ok(b) = std::str::from_utf8(self.body)
            && b.contains('=')
            && !b.trim_start().starts_with(['{', '<'])
        {
            out.extend(parse_form(b));
        }
        out
    }
    fn param(&self, key: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// `Prefix.member.1`, `Prefix.VpcSecurityGroupId.1` (a list member's
    /// own name, as RDS has them), or `Prefix.1` (EC2).
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<(u32, String)> = self
            .form()
            .into_iter()
            .filter_map(|(k, val)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                let n = match rest.split_once('.') {
                    Some((_member, n)) => n,
                    None => rest,
                };
                n.parse().ok().map(|n| (n, val))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, s)| s).collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(self.body).unwrap_or(Value::Null)
    }
    /// The REST path's segments after the API version (`2015-03-31`).
    fn rest(&self) -> Vec<String> {
        let segs: Vec<String> = self.path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
        match segs.iter().position(|s| is_api_version(s)) {
            Some(i) => segs[i + 1..].to_vec(),
            None => segs,
        }
    }
}

fn is_api_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && s.replace('-', "").bytes().all(|c| c.is_ascii_digit())
}

/// A call the clock answers itself, as AWS would at this moment.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: String) -> Option<Refusal> {
    Some(Refusal { status, code, message })
}

/// A sequence of states, each for a while, then a final one.
#[derive(Clone, Debug)]
struct Timeline {
    start: Instant,
    steps: Vec<(&'static str, Duration)>,
    end: &'static str,
}

impl Timeline {
    fn at(&self, now: Instant) -> &'static str {
        let mut t = self.start;
        for (state, d) in &self.steps {
            t += *d;
            if now < t {
                return state;
            }
        }
        self.end
    }
}

struct Db {
    life: Timeline,
    security_groups: Vec<String>,
    subnet_group: Option<String>,
    /// The instance's XML element, to keep it listed while moto has already dropped it.
    saved: Option<String>,
}

struct Function {
    state: Timeline,
    update: Option<Timeline>,
    subnets: Vec<String>,
    security_groups: Vec<String>,
}

struct Table {
    life: Timeline,
    /// Index name -> its timeline and whether it is backfilling (added by UpdateTable).
    indexes: HashMap<String, (Timeline, bool)>,
    saved: Option<Value>,
}

/// Subnets and security groups that AWS still holds after something was deleted.
struct Hold {
    ids: Vec<String>,
    until: Instant,
    why: String,
}

#[derive(Default)]
struct World {
    dbs: HashMap<String, Db>,
    subnet_groups: HashMap<String, Vec<String>>,
    distributions: HashMap<String, Timeline>,
    invalidations: HashMap<String, Timeline>,
    nat_gateways: HashMap<String, (Timeline, String, String)>,
    vpc_endpoints: HashMap<String, Timeline>,
    load_balancers: HashMap<String, (Timeline, Vec<String>)>,
    functions: HashMap<String, Function>,
    tables: HashMap<String, Table>,
    holds: Vec<Hold>,
}

pub struct Clock {
    factor: f64,
    world: Mutex<World>,
}

fn tl(start: Instant, steps: Vec<(&'static str, Duration)>, end: &'static str) -> Timeline {
    Timeline { start, steps, end }
}

impl Clock {
    pub fn new(factor: f64) -> Clock {
        Clock { factor, world: Mutex::new(World::default()) }
    }

    /// A duration of the table, scaled.
    fn d(&self, key: &str) -> Duration {
        let secs =
            DURATIONS.iter().find(|(k, _)| *k == key).map(|(_, s)| *s).unwrap_or_else(|| panic!("no duration {key}"));
        Duration::from_secs_f64(secs * self.factor)
    }

    /// Refuses the call when AWS would at `now` (the emulator never sees it).
    pub fn refuse(&self, c: &Call, now: Instant) -> Option<Refusal> {
        let w = self.world.lock().unwrap();
        match (c.service, c.action) {
            ("rds", "ModifyDBInstance") => {
                let id = c.param("DBInstanceIdentifier")?;
                let state = w.dbs.get(&id)?.life.at(now);
                (state != "available").then(|| Refusal {
                    status: 400,
                    code: "InvalidDBInstanceState",
                    message: format!("Database instance {id} is not in available state (it is {state})."),
                })
            }
            ("rds", "DeleteDBSubnetGroup") => {
                let name = c.param("DBSubnetGroupName")?;
                let user = w
                    .dbs
                    .iter()
                    .find(|(_, db)| db.subnet_group.as_deref() == Some(name.as_str()) && db.life.at(now) != GONE)?;
                refuse(
                    400,
                    "InvalidDBSubnetGroupStateFault",
                    format!(
                        "Cannot delete the subnet group '{name}' because at least one database instance: {} is still using it.",
                        user.0
                    ),
                )
            }
            ("ec2", "DeleteSubnet") => {
                let id = c.param("SubnetId")?;
                let why = w.held(&id, now)?;
                refuse(
                    400,
                    "DependencyViolation",
                    format!("The subnet '{id}' has dependencies and cannot be deleted ({why})."),
                )
            }
            ("ec2", "DeleteSecurityGroup") => {
                let id = c.param("GroupId")?;
                let why = w.held(&id, now)?;
                refuse(400, "DependencyViolation", format!("resource {id} has a dependent object ({why})"))
            }
            ("ec2", "DetachInternetGateway") => {
                let vpc = c.param("VpcId")?;
                w.nat_gateways.values().find(|(life, _, v)| *v == vpc && life.at(now) != "deleted")?;
                refuse(
                    400,
                    "DependencyViolation",
                    format!(
                        "Network {vpc} has some mapped public address(es). Please unmap those public address(es) before detaching the gateway."
                    ),
                )
            }
            ("dynamodb", op @ ("UpdateTable" | "DeleteTable" | "UpdateTimeToLive" | "UpdateContinuousBackups")) => {
                let name = c.json()["TableName"].as_str()?.to_string();
                let t = w.tables.get(&name)?;
                let state = t.life.at(now);
                if !matches!(state, "CREATING" | "UPDATING") {
                    return None;
                }
                let doing = if state == "CREATING" { "created" } else { "updated" };
                if op == "UpdateContinuousBackups" {
                    return refuse(
                        400,
                        "ContinuousBackupsUnavailableException",
                        format!("Backups are being enabled for the table: {name}. Please retry later"),
                    );
                }
                refuse(
                    400,
                    "ResourceInUseException",
                    format!("Attempt to change a resource which is still in use: Table is being {doing}: {name}"),
                )
            }
            ("lambda", _) => {
                let rest = c.rest();
                let is_update = match (c.method, rest.as_slice()) {
                    ("PUT", [f, _, last]) if f == "functions" => {
                        matches!(last.as_str(), "code" | "configuration" | "code-signing-config")
                    }
                    ("POST", [f, _, last]) if f == "functions" => last == "versions",
                    _ => false,
                };
                if !is_update {
                    return None;
                }
                let name = function_name(&rest[1]);
                let f = w.functions.get(&name)?;
                let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
                if f.state.at(now) == "Pending" {
                    return refuse(
                        409,
                        "ResourceConflictException",
                        "The operation cannot be performed at this time. The function is currently in the following state: Pending".to_string(),
                    );
                }
                if f.update.as_ref().is_some_and(|u| u.at(now) == "InProgress") {
                    return refuse(
                        409,
                        "ResourceConflictException",
                        format!(
                            "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
                        ),
                    );
                }
                None
            }
            ("cloudfront", _) => {
                let rest = c.rest();
                match (c.method, rest.as_slice()) {
                    ("DELETE", [d, id]) if d == "distribution" => {
                        let life = w.distributions.get(id)?;
                        (life.at(now) == "InProgress").then(|| Refusal {
                            status: 409,
                            code: "DistributionNotDisabled",
                            message: "The distribution you are trying to delete has not been disabled.".into(),
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Records what the call did and rewrites the emulator's answer as AWS
    /// would give it at `now`. `None`: the answer stands as it is.
    pub fn rewrite(&self, c: &Call, status: u16, body: &[u8], now: Instant) -> Option<(u16, Vec<u8>)> {
        let text = std::str::from_utf8(body).ok()?;
        let mut w = self.world.lock().unwrap();
        let out = match c.service {
            "rds" => self.rds(&mut w, c, status, text, now),
            "ec2" => self.ec2(&mut w, c, status, text, now),
            "elasticloadbalancing" => self.elbv2(&mut w, c, status, text, now),
            "cloudfront" => self.cloudfront(&mut w, c, status, text, now),
            "lambda" => self.lambda(&mut w, c, status, text, now),
            "dynamodb" => self.dynamodb(&mut w, c, status, text, now),
            _ => None,
        }?;
        (out.1 != text || out.0 != status).then(|| (out.0, out.1.into_bytes()))
    }

    /// The state of every resource the clock follows (`GET /__proxy/clock`).
    pub fn snapshot(&self, now: Instant) -> Value {
        let w = self.world.lock().unwrap();
        let map = |m: Vec<(String, &'static str)>| -> BTreeMap<String, &'static str> { m.into_iter().collect() };
        json!({
            "factor": self.factor,
            "rds.db_instance": map(w.dbs.iter().map(|(k, v)| (k.clone(), v.life.at(now))).collect()),
            "cloudfront.distribution": map(w.distributions.iter().map(|(k, v)| (k.clone(), v.at(now))).collect()),
            "cloudfront.invalidation": map(w.invalidations.iter().map(|(k, v)| (k.clone(), v.at(now))).collect()),
            "ec2.nat_gateway": map(w.nat_gateways.iter().map(|(k, v)| (k.clone(), v.0.at(now))).collect()),
            "ec2.vpc_endpoint": map(w.vpc_endpoints.iter().map(|(k, v)| (k.clone(), v.at(now))).collect()),
            "elbv2.load_balancer": map(w.load_balancers.iter().map(|(k, v)| (k.clone(), v.0.at(now))).collect()),
            "lambda.function": map(w.functions.iter().map(|(k, v)| (k.clone(), match &v.update {
                Some(u) if v.state.at(now) == "Active" => u.at(now),
                _ => v.state.at(now),
            })).collect()),
            "dynamodb.table": map(w.tables.iter().map(|(k, v)| (k.clone(), v.life.at(now))).collect()),
            "holds": w.holds.iter().filter(|h| h.until > now).map(|h| json!({
                "ids": h.ids, "why": h.why, "seconds_left": (h.until - now).as_secs_f64(),
            })).collect::<Vec<_>>(),
        })
    }

    // ---------------------------------------------------------------- RDS

    fn rds(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        match c.action {
            "CreateDBSubnetGroup" if status == 200 => {
                let name = c.param("DBSubnetGroupName")?;
                w.subnet_groups.insert(name, c.list("SubnetIds"));
                None
            }
            "CreateDBInstance" if status == 200 => {
                let id = c.param("DBInstanceIdentifier")?;
                let az = if c.param("MultiAZ").as_deref() == Some("true") { "multi_az" } else { "single_az" };
                let life = tl(
                    now,
                    vec![
                        ("creating", self.d(&format!("rds.{az}.creating"))),
                        ("backing-up", self.d(&format!("rds.{az}.backing-up"))),
                    ],
                    "available",
                );
                w.dbs.insert(
                    id,
                    Db {
                        life,
                        security_groups: c.list("VpcSecurityGroupIds"),
                        subnet_group: c.param("DBSubnetGroupName"),
                        saved: None,
                    },
                );
                Some((status, rds_instances(text, w, now, false)))
            }
            "ModifyDBInstance" if status == 200 => {
                let id = c.param("DBInstanceIdentifier")?;
                let d = self.d("rds.modifying");
                let db = w.dbs.get_mut(&id)?;
                db.life = tl(now, vec![("modifying", d)], "available");
                Some((status, rds_instances(text, w, now, false)))
            }
            "DeleteDBInstance" if status == 200 => {
                let id = c.param("DBInstanceIdentifier")?;
                let snapshot = c.param("FinalDBSnapshotIdentifier").is_some()
                    && c.param("SkipFinalSnapshot").as_deref() != Some("true");
                let mut d = self.d("rds.deleting");
                if snapshot {
                    d += self.d("rds.final_snapshot");
                }
                let saved = xml::find_all(text, "DBInstance").first().map(|r| text[r.clone()].to_string());
                let db = w.dbs.entry(id).or_insert_with(|| Db {
                    life: tl(now, vec![], "available"),
                    security_groups: vec![],
                    subnet_group: None,
                    saved: None,
                });
                db.life = tl(now, vec![("deleting", d)], GONE);
                db.saved = saved;
                Some((status, rds_instances(text, w, now, false)))
            }
            "DescribeDBInstances" => {
                let wanted = c.param("DBInstanceIdentifier");
                if status != 200 {
                    // moto has dropped it already; AWS still lists it while deleting.
                    let id = wanted?;
                    let db = w.dbs.get(&id)?;
                    if db.life.at(now) == GONE {
                        return None;
                    }
                    let el = db.saved.clone()?;
                    let body = format!(
                        "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBInstancesResult><DBInstances>{el}</DBInstances></DescribeDBInstancesResult><ResponseMetadata><RequestId>00000000-0000-4000-8000-000000000000</RequestId></ResponseMetadata></DescribeDBInstancesResponse>"
                    );
                    return Some((200, rds_instances(&body, w, now, false)));
                }
                Some((status, rds_instances(text, w, now, wanted.is_none())))
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- EC2

    fn ec2(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        if status != 200 {
            return None;
        }
        match c.action {
            "CreateNatGateway" => {
                let el = xml::child_path(text, &["CreateNatGatewayResponse", "natGateway"])?;
                let inner = &text[el.clone()];
                let id = xml::text(inner, "natGatewayId")?.to_string();
                let subnet = xml::text(inner, "subnetId").unwrap_or("").to_string();
                let vpc = xml::text(inner, "vpcId").unwrap_or("").to_string();
                let life = tl(now, vec![("pending", self.d("ec2.nat_gateway.pending"))], "available");
                w.nat_gateways.insert(id, (life, subnet, vpc));
                Some((status, ec2_items(text, "natGateway", "natGatewayId", &nat_states(w), now)))
            }
            "DeleteNatGateway" => {
                let id = c.param("NatGatewayId")?;
                let d = self.d("ec2.nat_gateway.deleting");
                let nat = w.nat_gateways.get_mut(&id)?;
                nat.0 = tl(now, vec![("deleting", d)], "deleted");
                None
            }
            "DescribeNatGateways" => {
                Some((status, ec2_items(text, "natGatewaySet", "natGatewayId", &nat_states(w), now)))
            }
            "CreateVpcEndpoint" => {
                let el = xml::child_path(text, &["CreateVpcEndpointResponse", "vpcEndpoint"])?;
                let inner = &text[el];
                let id = xml::text(inner, "vpcEndpointId")?.to_string();
                let key = if xml::text(inner, "vpcEndpointType") == Some("Interface") {
                    "ec2.vpc_endpoint.interface.pending"
                } else {
                    "ec2.vpc_endpoint.gateway.pending"
                };
                w.vpc_endpoints.insert(id, tl(now, vec![("pending", self.d(key))], "available"));
                let states: HashMap<String, Timeline> = w.vpc_endpoints.clone();
                Some((status, ec2_items(text, "vpcEndpoint", "vpcEndpointId", &states, now)))
            }
            // Deleted: moto's own answers (`deleted`, then gone) stand, not
            // the create's timeline, which would say `available` again.
            "DeleteVpcEndpoints" => {
                for id in c.list("VpcEndpointId") {
                    w.vpc_endpoints.remove(&id);
                }
                None
            }
            "DescribeVpcEndpoints" => {
                let states = w.vpc_endpoints.clone();
                Some((status, ec2_items(text, "vpcEndpointSet", "vpcEndpointId", &states, now)))
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- ELBv2

    fn elbv2(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        if status != 200 {
            return None;
        }
        match c.action {
            "CreateLoadBalancer" => {
                let members =
                    xml::members(text, &["CreateLoadBalancerResponse", "CreateLoadBalancerResult", "LoadBalancers"]);
                let arn = members.first().and_then(|r| xml::text(&text[r.clone()], "LoadBalancerArn"))?.to_string();
                let mut held = c.list("SecurityGroups");
                held.extend(c.list("Subnets"));
                let life = tl(now, vec![("provisioning", self.d("elbv2.provisioning"))], "active");
                w.load_balancers.insert(arn, (life, held));
                Some((status, lb_states(text, "CreateLoadBalancer", w, now)))
            }
            "DescribeLoadBalancers" => Some((status, lb_states(text, "DescribeLoadBalancers", w, now))),
            "DeleteLoadBalancer" => {
                let arn = c.param("LoadBalancerArn")?;
                let (_, held) = w.load_balancers.remove(&arn)?;
                let until = now + self.d("elbv2.eni_release");
                w.holds.push(Hold {
                    ids: held,
                    until,
                    why: format!("the network interfaces of load balancer {arn} are being released"),
                });
                None
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- CloudFront

    fn cloudfront(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        if !(200..300).contains(&status) {
            return None;
        }
        let rest = c.rest();
        let deploy = || tl(now, vec![("InProgress", self.d("cloudfront.deploy"))], "Deployed");
        match (c.method, rest.as_slice()) {
            // CreateDistribution (and ...WithTags)
            ("POST", [d]) if d == "distribution" => {
                let id = xml::text(text, "Id")?.to_string();
                w.distributions.insert(id, deploy());
                Some((status, cf_status(text, w, now)))
            }
            // UpdateDistribution: each change deploys again (the disable before a delete too).
            ("PUT", [d, id, cfg]) if d == "distribution" && cfg == "config" => {
                w.distributions.insert(id.clone(), deploy());
                Some((status, cf_status(text, w, now)))
            }
            ("DELETE", [d, id]) if d == "distribution" => {
                w.distributions.remove(id);
                None
            }
            ("POST", [d, id, inv]) if d == "distribution" && inv == "invalidation" => {
                let _ = id;
                let iid = xml::text(text, "Id")?.to_string();
                w.invalidations
                    .insert(iid, tl(now, vec![("InProgress", self.d("cloudfront.invalidation"))], "Completed"));
                Some((status, cf_status(text, w, now)))
            }
            ("GET", _) => Some((status, cf_status(text, w, now))),
            _ => None,
        }
    }

    // ---------------------------------------------------------------- Lambda

    fn lambda(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        if !(200..300).contains(&status) {
            return None;
        }
        let rest = c.rest();
        if let ("DELETE", [f, name]) = (c.method, rest.as_slice())
            && f == "functions"
        {
            let name = function_name(name);
            let func = w.functions.remove(&name)?;
            if !func.subnets.is_empty() {
                let mut ids = func.subnets;
                ids.extend(func.security_groups);
                w.holds.push(Hold {
                    ids,
                    until: now + self.d("lambda.vpc.eni_release"),
                    why: format!("the network interfaces of deleted VPC function {name} are being released"),
                });
            }
            return None;
        }
        let mut v: Value = serde_json::from_str(text).ok()?;
        match (c.method, rest.as_slice()) {
            ("POST", [f]) if f == "functions" => {
                let req = c.json();
                let name = v["FunctionName"].as_str()?.to_string();
                let (subnets, sgs) = vpc_of(&req["VpcConfig"]);
                let key = if subnets.is_empty() { "lambda.pending" } else { "lambda.vpc.pending" };
                w.functions.insert(
                    name,
                    Function {
                        state: tl(now, vec![("Pending", self.d(key))], "Active"),
                        update: None,
                        subnets,
                        security_groups: sgs,
                    },
                );
            }
            ("PUT", [f, name, what]) if f == "functions" && (what == "code" || what == "configuration") => {
                let name = function_name(name);
                let req = c.json();
                let vpc_change = what == "configuration" && req.get("VpcConfig").is_some_and(|v| !v.is_null());
                let func = w.functions.get_mut(&name)?;
                if vpc_change {
                    let (subnets, sgs) = vpc_of(&req["VpcConfig"]);
                    // What the function leaves is held by its network
                    // interfaces as after a delete (Lambda releases them
                    // once no function of those subnets and groups uses them).
                    let mut left: Vec<String> = func.subnets.iter().filter(|s| !subnets.contains(s)).cloned().collect();
                    left.extend(func.security_groups.iter().filter(|g| !sgs.contains(g)).cloned());
                    if !left.is_empty() {
                        w.holds.push(Hold {
                            ids: left,
                            until: now + self.d("lambda.vpc.eni_release"),
                            why: format!("the network interfaces function {name} left are being released"),
                        });
                    }
                    let func = w.functions.get_mut(&name)?;
                    func.subnets = subnets;
                    func.security_groups = sgs;
                }
                let func = w.functions.get_mut(&name)?;
                let key = if vpc_change && !func.subnets.is_empty() { "lambda.vpc.update" } else { "lambda.update" };
                func.update = Some(tl(now, vec![("InProgress", self.d(key))], "Successful"));
            }
            _ => {}
        }
        // Every function configuration in the answer, wherever it sits.
        let mut configs: Vec<&mut Value> = vec![];
        if v.get("FunctionName").is_some() {
            configs.push(&mut v);
        } else if v.get("Configuration").is_some() {
            configs.push(&mut v["Configuration"]);
        } else if let Some(fs) = v.get_mut("Functions").and_then(Value::as_array_mut) {
            configs.extend(fs.iter_mut());
        }
        let mut changed = false;
        for cfg in configs {
            let Some(name) = cfg["FunctionName"].as_str().map(str::to_string) else {
                continue;
            };
            let Some(func) = w.functions.get(&name) else {
                continue;
            };
            let o = cfg.as_object_mut()?;
            let state = func.state.at(now);
            o.insert("State".into(), json!(state));
            if state == "Pending" {
                o.insert("StateReason".into(), json!("The function is being created."));
                o.insert("StateReasonCode".into(), json!("Creating"));
            } else {
                o.remove("StateReason");
                o.remove("StateReasonCode");
            }
            if let Some(u) = &func.update {
                o.insert("LastUpdateStatus".into(), json!(u.at(now)));
            }
            changed = true;
        }
        changed.then(|| (status, v.to_string()))
    }

    // ---------------------------------------------------------------- DynamoDB

    fn dynamodb(&self, w: &mut World, c: &Call, status: u16, text: &str, now: Instant) -> Option<(u16, String)> {
        let req = c.json();
        let name = req["TableName"].as_str()?.to_string();
        if status != 200 {
            // Deleted in moto already; AWS still describes it while DELETING.
            if c.action == "DescribeTable" {
                let t = w.tables.get(&name)?;
                if t.life.at(now) == GONE {
                    return None;
                }
                let mut saved = t.saved.clone()?;
                saved["TableStatus"] = json!(t.life.at(now));
                return Some((200, json!({ "Table": saved }).to_string()));
            }
            return None;
        }
        let mut v: Value = serde_json::from_str(text).ok()?;
        match c.action {
            "CreateTable" => {
                let life = tl(now, vec![("CREATING", self.d("dynamodb.creating"))], "ACTIVE");
                let indexes = req["GlobalSecondaryIndexes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["IndexName"].as_str())
                    .map(|n| (n.to_string(), (life.clone(), false)))
                    .collect();
                w.tables.insert(name.clone(), Table { life, indexes, saved: None });
            }
            "UpdateTable" => {
                let d = self.d("dynamodb.updating");
                let backfill = self.d("dynamodb.gsi_backfill");
                let t = w.tables.get_mut(&name)?;
                t.life = tl(now, vec![("UPDATING", d)], "ACTIVE");
                for u in req["GlobalSecondaryIndexUpdates"].as_array().into_iter().flatten() {
                    if let Some(n) = u["Create"]["IndexName"].as_str() {
                        t.indexes.insert(n.to_string(), (tl(now, vec![("CREATING", backfill)], "ACTIVE"), true));
                    }
                }
            }
            "DeleteTable" => {
                let d = self.d("dynamodb.deleting");
                let t = w.tables.entry(name.clone()).or_insert_with(|| Table {
                    life: tl(now, vec![], "ACTIVE"),
                    indexes: HashMap::new(),
                    saved: None,
                });
                t.life = tl(now, vec![("DELETING", d)], GONE);
                t.saved = Some(v["TableDescription"].clone());
            }
            "DescribeTable" => {}
            _ => return None,
        }
        let t = w.tables.get(&name)?;
        let desc = if v.get("Table").is_some() { &mut v["Table"] } else { &mut v["TableDescription"] };
        if !desc.is_object() {
            return None;
        }
        desc["TableStatus"] = json!(t.life.at(now));
        for ix in desc["GlobalSecondaryIndexes"].as_array_mut().into_iter().flatten() {
            let Some((life, backfill)) = ix["IndexName"].as_str().and_then(|n| t.indexes.get(n)) else {
                continue;
            };
            let state = life.at(now);
            ix["IndexStatus"] = json!(state);
            if *backfill {
                ix["Backfilling"] = json!(state == "CREATING");
            }
        }
        Some((status, v.to_string()))
    }
}

impl World {
    /// Why `id` (a subnet or security group) cannot be deleted now, if it cannot.
    fn held(&self, id: &str, now: Instant) -> Option<String> {
        if let Some(h) = self.holds.iter().find(|h| h.until > now && h.ids.iter().any(|i| i == id)) {
            return Some(h.why.clone());
        }
        for (name, db) in &self.dbs {
            if db.life.at(now) == GONE {
                continue;
            }
            let subnets = db.subnet_group.as_ref().and_then(|g| self.subnet_groups.get(g)).cloned().unwrap_or_default();
            if db.security_groups.iter().chain(&subnets).any(|i| i == id) {
                return Some(format!("database instance {name} is {}", db.life.at(now)));
            }
        }
        for (nat, (life, subnet, _)) in &self.nat_gateways {
            if subnet == id && life.at(now) != "deleted" {
                return Some(format!("NAT gateway {nat} is {}", life.at(now)));
            }
        }
        None
    }
}

fn vpc_of(v: &Value) -> (Vec<String>, Vec<String>) {
    let list = |k: &str| -> Vec<String> {
        v[k].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
    };
    (list("SubnetIds"), list("SecurityGroupIds"))
}

/// `my-fn`, or the name inside `arn:aws:lambda:...:function:my-fn[:qualifier]`.
fn function_name(s: &str) -> String {
    match s.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => s.to_string(),
    }
}

fn nat_states(w: &World) -> HashMap<String, Timeline> {
    w.nat_gateways.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

/// Rewrites the `<DBInstance>` elements of an RDS answer: each followed
/// instance's `DBInstanceStatus` (and no `Endpoint` while creating, as AWS
/// has none yet); gone instances dropped; with `list_deleting`, the
/// instances moto has dropped but AWS still lists (deleting) added.
fn rds_instances(text: &str, w: &World, now: Instant, list_deleting: bool) -> String {
    let mut out = xml::map_elements(text, "DBInstance", |el| {
        let id = xml::text(el, "DBInstanceIdentifier")?;
        let db = w.dbs.get(id)?;
        let state = db.life.at(now);
        if state == GONE {
            return Some(String::new());
        }
        let mut el = xml::set_text(el, "DBInstanceStatus", state);
        if state == "creating" {
            el = xml::remove(&el, "Endpoint");
        }
        Some(el)
    });
    if list_deleting {
        let present: Vec<String> = xml::find_all(&out, "DBInstance")
            .into_iter()
            .filter_map(|r| xml::text(&out[r], "DBInstanceIdentifier").map(str::to_string))
            .collect();
        let mut extra = String::new();
        for (id, db) in &w.dbs {
            if db.life.at(now) == "deleting"
                && !present.contains(id)
                && let Some(el) = &db.saved
            {
                extra.push_str(&xml::set_text(el, "DBInstanceStatus", "deleting"));
            }
        }
        if !extra.is_empty() {
            out = out.replacen("<DBInstances/>", "<DBInstances></DBInstances>", 1);
            if let Some(p) = out.find("</DBInstances>") {
                out.insert_str(p, &extra);
            }
        }
    }
    out
}

/// Sets `<state>` of each EC2 item (`<container><item>` or a single
/// `<container>` element) whose `id_tag` is followed.
fn ec2_items(text: &str, container: &str, id_tag: &str, states: &HashMap<String, Timeline>, now: Instant) -> String {
    let fix = |el: &str| -> Option<String> {
        let id = xml::text(el, id_tag)?;
        let life = states.get(id)?;
        Some(xml::set_text(el, "state", life.at(now)))
    };
    if container.ends_with("Set") {
        let Some(set) = xml::find_all(text, container).into_iter().next() else {
            return text.to_string();
        };
        let inner = xml::map_children(&text[set.clone()], "item", fix);
        format!("{}{}{}", &text[..set.start], inner, &text[set.end..])
    } else {
        xml::map_elements(text, container, fix)
    }
}

fn lb_states(text: &str, op: &str, w: &World, now: Instant) -> String {
    let path = [format!("{op}Response"), format!("{op}Result"), "LoadBalancers".to_string()];
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let Some(set) = xml::child_path(text, &path) else {
        return text.to_string();
    };
    let inner = xml::map_children(&text[set.clone()], "member", |el| {
        let arn = xml::text(el, "LoadBalancerArn")?;
        let (life, _) = w.load_balancers.get(arn)?;
        let state = xml::child(el, "State")?;
        let fixed = xml::set_text(&el[state.clone()], "Code", life.at(now));
        Some(format!("{}{}{}", &el[..state.start], fixed, &el[state.end..]))
    });
    format!("{}{}{}", &text[..set.start], inner, &text[set.end..])
}

/// `<Status>` of CloudFront distributions (and their summaries) and invalidations.
fn cf_status(text: &str, w: &World, now: Instant) -> String {
    let fix = |el: &str, invalidation: bool| -> Option<String> {
        let id = xml::text(el, "Id")?;
        let state = if invalidation { w.invalidations.get(id)?.at(now) } else { w.distributions.get(id)?.at(now) };
        Some(xml::set_text(el, "Status", state))
    };
    let mut out = text.to_string();
    for (tag, inv) in
        [("Distribution", false), ("DistributionSummary", false), ("Invalidation", true), ("InvalidationSummary", true)]
    {
        out = xml::map_elements(&out, tag, |el| fix(el, inv));
    }
    out
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if s.get(i + 1..i + 3).is_some_and(|h| u8::from_str_radix(h, 16).is_ok()) => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'%'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Just enough XML for AWS answers: elements found by name with nesting
/// counted, their direct children, their text, replaced by ranges.
mod xml {
    use super::Range;

    #[derive(Debug, PartialEq)]
    enum Kind {
        Open,
        Close,
        Empty,
    }

    /// The tags of `s`, in order: (name, kind, byte range of the tag).
    fn tags(s: &str) -> Vec<(&str, Kind, Range<usize>)> {
        let mut out = vec![];
        let mut i = 0;
        while let Some(p) = s[i..].find('<') {
            let start = i + p;
            let Some(e) = s[start..].find('>') else { break };
            let end = start + e + 1;
            let inner = &s[start + 1..end - 1];
            i = end;
            if inner.starts_with('?') || inner.starts_with('!') {
                continue;
            }
            let (kind, body) = if let Some(n) = inner.strip_prefix('/') {
                (Kind::Close, n)
            } else if let Some(n) = inner.strip_suffix('/') {
                (Kind::Empty, n)
            } else {
                (Kind::Open, inner)
            };
            let name = body.split([' ', '\t', '\n', '\r']).next().unwrap_or("");
            out.push((name, kind, start..end));
        }
        out
    }

    /// Every outermost `<name>` element of `s` (its whole byte range).
    pub fn find_all(s: &str, name: &str) -> Vec<Range<usize>> {
        let mut out = vec![];
        let mut depth = 0;
        let mut start = 0;
        for (n, kind, r) in tags(s) {
            if n != name {
                continue;
            }
            match kind {
                Kind::Empty if depth == 0 => out.push(r),
                Kind::Open => {
                    if depth == 0 {
                        start = r.start;
                    }
                    depth += 1;
                }
                Kind::Close if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(start..r.end);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The direct children of the element `el` (whole byte ranges, relative to `el`).
    fn children(el: &str) -> Vec<(&str, Range<usize>)> {
        let mut out = vec![];
        let mut depth = 0i32;
        let mut start = 0;
        let mut name = "";
        for (n, kind, r) in tags(el) {
            match kind {
                Kind::Open => {
                    if depth == 1 {
                        start = r.start;
                        name = n;
                    }
                    depth += 1;
                }
                Kind::Close => {
                    depth -= 1;
                    if depth == 1 {
                        out.push((name, start..r.end));
                    }
                }
                Kind::Empty if depth == 1 => out.push((n, r)),
                Kind::Empty => {}
            }
        }
        out
    }

    /// The direct child `<name>` of `el`.
    pub fn child(el: &str, name: &str) -> Option<Range<usize>> {
        children(el).into_iter().find(|(n, _)| *n == name).map(|(_, r)| r)
    }

    /// The element at `path` from the document's root element (the root's name first).
    pub fn child_path(doc: &str, path: &[&str]) -> Option<Range<usize>> {
        let mut r = find_all(doc, path.first()?).into_iter().next()?;
        for name in &path[1..] {
            let c = child(&doc[r.clone()], name)?;
            r = r.start + c.start..r.start + c.end;
        }
        Some(r)
    }

    /// The `<member>`s of the list element at `path`.
    pub fn members(doc: &str, path: &[&str]) -> Vec<Range<usize>> {
        let Some(list) = child_path(doc, path) else {
            return vec![];
        };
        children(&doc[list.clone()])
            .into_iter()
            .filter(|(n, _)| *n == "member")
            .map(|(_, r)| list.start + r.start..list.start + r.end)
            .collect()
    }

    /// The text of `el`'s direct child `<name>`.
    pub fn text<'a>(el: &'a str, name: &str) -> Option<&'a str> {
        let r = child(el, name)?;
        let c = &el[r];
        let open = c.find('>')? + 1;
        let close = c.rfind("</")?;
        (open <= close).then(|| &c[open..close])
    }

    /// `el` with the text of its direct child `<name>` replaced (the child added if absent).
    pub fn set_text(el: &str, name: &str, value: &str) -> String {
        match child(el, name) {
            Some(r) => format!("{}<{name}>{value}</{name}>{}", &el[..r.start], &el[r.end..]),
            None => match el.rfind("</") {
                Some(p) => format!("{}<{name}>{value}</{name}>{}", &el[..p], &el[p..]),
                None => el.to_string(),
            },
        }
    }

    /// `el` without its direct child `<name>`.
    pub fn remove(el: &str, name: &str) -> String {
        match child(el, name) {
            Some(r) => format!("{}{}", &el[..r.start], &el[r.end..]),
            None => el.to_string(),
        }
    }

    /// Replaces each outermost `<name>` element by `f(element)` (None: kept).
    pub fn map_elements(s: &str, name: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for r in find_all(s, name) {
            out.push_str(&s[last..r.start]);
            match f(&s[r.clone()]) {
                Some(new) => out.push_str(&new),
                None => out.push_str(&s[r.clone()]),
            }
            last = r.end;
        }
        out.push_str(&s[last..]);
        out
    }

    /// Replaces each direct child `<name>` of the element `el` by `f(child)`.
    pub fn map_children(el: &str, name: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(el.len());
        let mut last = 0;
        for (n, r) in children(el) {
            if n != name {
                continue;
            }
            out.push_str(&el[last..r.start]);
            match f(&el[r.clone()]) {
                Some(new) => out.push_str(&new),
                None => out.push_str(&el[r.clone()]),
            }
            last = r.end;
        }
        out.push_str(&el[last..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: f64) -> Instant {
        t0 + Duration::from_secs_f64(secs)
    }

    struct Req {
        service: &'static str,
        action: String,
        method: &'static str,
        path: String,
        body: String,
    }

    impl Req {
        fn call(&self) -> Call<'_> {
            Call {
                service: self.service,
                action: &self.action,
                method: self.method,
                path: &self.path,
                query: "",
                body: self.body.as_bytes(),
            }
        }
    }

    /// A query-protocol call (`Action=` in a form body).
    fn query(service: &'static str, action: &str, params: &[(&str, &str)]) -> Req {
        let mut body = format!("Action={action}&Version=1");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", v.replace(':', "%3A").replace('/', "%2F")));
        }
        Req { service, action: action.into(), method: "POST", path: "/".into(), body }
    }

    fn rest(service: &'static str, method: &'static str, path: &str, body: &str) -> Req {
        Req { service, action: format!("{method} {path}"), method, path: path.into(), body: body.into() }
    }

    fn json_call(service: &'static str, op: &str, body: Value) -> Req {
        Req { service, action: op.into(), method: "POST", path: "/".into(), body: body.to_string() }
    }

    /// The answer as the client sees it: rewritten, or moto's as it was.
    fn answer(c: &Clock, r: &Req, status: u16, body: &str, now: Instant) -> (u16, String) {
        match c.rewrite(&r.call(), status, body.as_bytes(), now) {
            Some((s, b)) => (s, String::from_utf8(b).unwrap()),
            None => (status, body.to_string()),
        }
    }

    fn code(r: Option<Refusal>) -> Option<&'static str> {
        r.map(|r| r.code)
    }

    #[test]
    fn factors_are_fractions_or_decimals() {
        assert_eq!(parse_factor("1/60").unwrap(), 1.0 / 60.0);
        assert_eq!(parse_factor("0.5").unwrap(), 0.5);
        assert_eq!(parse_factor("1").unwrap(), 1.0);
        assert!(parse_factor("0").is_err());
        assert!(parse_factor("-1").is_err());
        assert!(parse_factor("1/0").is_err());
        assert!(parse_factor("fast").is_err());
    }

    #[test]
    fn a_timeline_walks_its_states_in_order() {
        let t0 = Instant::now();
        let t =
            tl(t0, vec![("creating", Duration::from_secs(10)), ("backing-up", Duration::from_secs(5))], "available");
        assert_eq!(t.at(t0), "creating");
        assert_eq!(t.at(at(t0, 9.9)), "creating");
        assert_eq!(t.at(at(t0, 10.0)), "backing-up");
        assert_eq!(t.at(at(t0, 14.9)), "backing-up");
        assert_eq!(t.at(at(t0, 15.0)), "available");
        assert_eq!(tl(t0, vec![], "x").at(t0), "x");
    }

    const RDS_DB: &str = "<DBInstance><DBInstanceIdentifier>db1</DBInstanceIdentifier><Engine>postgres</Engine><DBInstanceStatus>available</DBInstanceStatus><Endpoint><Address>db1.x.rds.amazonaws.com</Address><Port>5432</Port></Endpoint><VpcSecurityGroups><VpcSecurityGroupMembership><VpcSecurityGroupId>sg-db</VpcSecurityGroupId><Status>active</Status></VpcSecurityGroupMembership></VpcSecurityGroups></DBInstance>";

    fn rds_answer(op: &str, inner: &str) -> String {
        format!(
            "<{op}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><{op}Result>{inner}</{op}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{op}Response>"
        )
    }

    fn status_of(xml_text: &str) -> Vec<String> {
        xml::find_all(xml_text, "DBInstanceStatus")
            .into_iter()
            .map(|r| xml_text[r].replace("<DBInstanceStatus>", "").replace("</DBInstanceStatus>", ""))
            .collect()
    }

    #[test]
    fn rds_instance_creating_backing_up_available_multi_az_longer() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let create = query(
            "rds",
            "CreateDBInstance",
            &[
                ("DBInstanceIdentifier", "db1"),
                ("MultiAZ", "true"),
                ("VpcSecurityGroupIds.member.1", "sg-db"),
                ("DBSubnetGroupName", "grp"),
            ],
        );
        let (_, body) = answer(&c, &create, 200, &rds_answer("CreateDBInstance", RDS_DB), t0);
        assert_eq!(status_of(&body), ["creating"]);
        assert!(!body.contains("<Endpoint>"), "no endpoint while creating: {body}");
        let single = query("rds", "CreateDBInstance", &[("DBInstanceIdentifier", "db2"), ("MultiAZ", "false")]);
        answer(&c, &single, 200, &rds_answer("CreateDBInstance", &RDS_DB.replace("db1", "db2")), t0);

        let describe = query("rds", "DescribeDBInstances", &[]);
        let both = rds_answer(
            "DescribeDBInstances",
            &format!("<DBInstances>{RDS_DB}{}</DBInstances>", RDS_DB.replace("db1", "db2")),
        );
        // Multi-AZ: 12 + 3 min on AWS, 12 + 3 s at 1/60; single-AZ 5 + 2 min.
        let states = |secs| status_of(&answer(&c, &describe, 200, &both, at(t0, secs)).1);
        assert_eq!(states(1.0), ["creating", "creating"]);
        assert_eq!(states(5.5), ["creating", "backing-up"]);
        assert_eq!(states(7.5), ["creating", "available"]);
        assert_eq!(states(12.5), ["backing-up", "available"]);
        assert_eq!(states(15.5), ["available", "available"]);
        let (_, body) = answer(&c, &describe, 200, &both, at(t0, 12.5));
        assert!(body.contains("<Endpoint>"), "the endpoint is known once backing up: {body}");

        // ModifyDBInstance: refused until available, then `modifying`.
        let modify =
            query("rds", "ModifyDBInstance", &[("DBInstanceIdentifier", "db1"), ("BackupRetentionPeriod", "3")]);
        assert_eq!(code(c.refuse(&modify.call(), at(t0, 14.0))), Some("InvalidDBInstanceState"));
        assert_eq!(code(c.refuse(&modify.call(), at(t0, 16.0))), None);
        let (_, body) = answer(&c, &modify, 200, &rds_answer("ModifyDBInstance", RDS_DB), at(t0, 16.0));
        assert_eq!(status_of(&body), ["modifying"]);
        assert_eq!(states(16.0 + 3.9)[0], "modifying");
        assert_eq!(states(16.0 + 4.1)[0], "available");
    }

    #[test]
    fn a_deleted_rds_instance_is_listed_deleting_then_not_found() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        // The list members carry their own names in RDS's query protocol.
        answer(
            &c,
            &query(
                "rds",
                "CreateDBSubnetGroup",
                &[
                    ("DBSubnetGroupName", "grp"),
                    ("SubnetIds.SubnetIdentifier.1", "subnet-a"),
                    ("SubnetIds.SubnetIdentifier.2", "subnet-b"),
                ],
            ),
            200,
            "<x/>",
            t0,
        );
        answer(
            &c,
            &query(
                "rds",
                "CreateDBInstance",
                &[
                    ("DBInstanceIdentifier", "db1"),
                    ("VpcSecurityGroupIds.VpcSecurityGroupId.1", "sg-db"),
                    ("DBSubnetGroupName", "grp"),
                ],
            ),
            200,
            &rds_answer("CreateDBInstance", RDS_DB),
            t0,
        );
        let t1 = at(t0, 100.0);
        let delete =
            query("rds", "DeleteDBInstance", &[("DBInstanceIdentifier", "db1"), ("SkipFinalSnapshot", "true")]);
        let (_, body) =
            answer(&c, &delete, 200, &rds_answer("DeleteDBInstance", &RDS_DB.replace(">available<", ">deleting<")), t1);
        assert_eq!(status_of(&body), ["deleting"]);
        // moto dropped it at once: AWS still lists it, deleting, for 6 min (6 s here).
        let by_id = query("rds", "DescribeDBInstances", &[("DBInstanceIdentifier", "db1")]);
        let not_found = "<ErrorResponse><Error><Code>DBInstanceNotFound</Code></Error></ErrorResponse>";
        let (st, body) = answer(&c, &by_id, 404, not_found, at(t0, 103.0));
        assert_eq!((st, status_of(&body)), (200, vec!["deleting".to_string()]));
        let all = query("rds", "DescribeDBInstances", &[]);
        let (_, body) = answer(&c, &all, 200, &rds_answer("DescribeDBInstances", "<DBInstances/>"), at(t0, 103.0));
        assert_eq!(status_of(&body), ["deleting"]);
        // What it held cannot be deleted meanwhile.
        let group = query("rds", "DeleteDBSubnetGroup", &[("DBSubnetGroupName", "grp")]);
        assert_eq!(code(c.refuse(&group.call(), at(t0, 103.0))), Some("InvalidDBSubnetGroupStateFault"));
        let sg = query("ec2", "DeleteSecurityGroup", &[("GroupId", "sg-db")]);
        assert_eq!(code(c.refuse(&sg.call(), at(t0, 103.0))), Some("DependencyViolation"));
        let subnet = query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-b")]);
        assert_eq!(code(c.refuse(&subnet.call(), at(t0, 103.0))), Some("DependencyViolation"));
        // Gone: DBInstanceNotFound as moto says, and nothing held.
        let (st, _) = answer(&c, &by_id, 404, not_found, at(t0, 106.5));
        assert_eq!(st, 404);
        assert_eq!(c.refuse(&group.call(), at(t0, 106.5)), None);
        assert_eq!(c.refuse(&sg.call(), at(t0, 106.5)), None);
        // A final snapshot makes it longer (+3 min).
        answer(
            &c,
            &query("rds", "CreateDBInstance", &[("DBInstanceIdentifier", "db1")]),
            200,
            &rds_answer("CreateDBInstance", RDS_DB),
            at(t0, 200.0),
        );
        let snap = query(
            "rds",
            "DeleteDBInstance",
            &[("DBInstanceIdentifier", "db1"), ("FinalDBSnapshotIdentifier", "final")],
        );
        answer(&c, &snap, 200, &rds_answer("DeleteDBInstance", RDS_DB), at(t0, 300.0));
        let (st, _) = answer(&c, &by_id, 404, not_found, at(t0, 308.0));
        assert_eq!(st, 200, "still deleting with its final snapshot");
        let (st, _) = answer(&c, &by_id, 404, not_found, at(t0, 309.5));
        assert_eq!(st, 404);
    }

    fn cf_dist(id: &str, status: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><Distribution xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><Id>{id}</Id><ARN>arn</ARN><Status>{status}</Status><DistributionConfig><Enabled>true</Enabled></DistributionConfig></Distribution>"
        )
    }

    fn cf_status_of(body: &str) -> String {
        xml::text(&body[xml::find_all(body, "Distribution")[0].clone()], "Status").unwrap().to_string()
    }

    #[test]
    fn cloudfront_deploys_and_refuses_a_delete_while_the_disable_deploys() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let create = rest("cloudfront", "POST", "/2020-05-31/distribution", "<DistributionConfig/>");
        let (_, body) = answer(&c, &create, 201, &cf_dist("E1", "Deployed"), t0);
        assert_eq!(cf_status_of(&body), "InProgress");
        let get = rest("cloudfront", "GET", "/2020-05-31/distribution/E1", "");
        assert_eq!(cf_status_of(&answer(&c, &get, 200, &cf_dist("E1", "Deployed"), at(t0, 4.9)).1), "InProgress");
        assert_eq!(cf_status_of(&answer(&c, &get, 200, &cf_dist("E1", "Deployed"), at(t0, 5.1)).1), "Deployed");
        let list = rest("cloudfront", "GET", "/2020-05-31/distribution", "");
        let summaries = "<DistributionList><Items><DistributionSummary><Id>E1</Id><Status>Deployed</Status></DistributionSummary><DistributionSummary><Id>E9</Id><Status>Deployed</Status></DistributionSummary></Items></DistributionList>";
        let (_, body) = answer(&c, &list, 200, summaries, at(t0, 1.0));
        assert!(
            body.contains("<Id>E1</Id><Status>InProgress</Status>")
                && body.contains("<Id>E9</Id><Status>Deployed</Status>"),
            "{body}"
        );

        // The disable before a delete deploys too: DELETE is refused until it has.
        let disable = rest(
            "cloudfront",
            "PUT",
            "/2020-05-31/distribution/E1/config",
            "<DistributionConfig><Enabled>false</Enabled></DistributionConfig>",
        );
        let t1 = at(t0, 10.0);
        let (_, body) = answer(&c, &disable, 200, &cf_dist("E1", "Deployed"), t1);
        assert_eq!(cf_status_of(&body), "InProgress");
        let delete = rest("cloudfront", "DELETE", "/2020-05-31/distribution/E1", "");
        let r = c.refuse(&delete.call(), at(t0, 14.0)).expect("refused while InProgress");
        assert_eq!((r.status, r.code), (409, "DistributionNotDisabled"));
        assert_eq!(c.refuse(&delete.call(), at(t0, 15.1)), None);
        answer(&c, &delete, 204, "", at(t0, 15.1));
        assert_eq!(c.refuse(&delete.call(), at(t0, 15.2)), None, "forgotten once deleted");

        // Invalidations: InProgress, then Completed after a minute (1 s).
        let inv = rest("cloudfront", "POST", "/2020-05-31/distribution/E2/invalidation", "<InvalidationBatch/>");
        let inv_body = "<Invalidation><Id>I1</Id><Status>COMPLETED</Status></Invalidation>";
        assert!(answer(&c, &inv, 201, inv_body, t0).1.contains("<Status>InProgress</Status>"));
        let get_inv = rest("cloudfront", "GET", "/2020-05-31/distribution/E2/invalidation/I1", "");
        assert!(answer(&c, &get_inv, 200, inv_body, at(t0, 0.9)).1.contains("<Status>InProgress</Status>"));
        assert!(answer(&c, &get_inv, 200, inv_body, at(t0, 1.1)).1.contains("<Status>Completed</Status>"));
    }

    const NAT: &str = "<natGatewayAddressSet><item><allocationId>eipalloc-1</allocationId><state>associated</state></item></natGatewayAddressSet><natGatewayId>nat-1</natGatewayId><state>available</state><subnetId>subnet-pub</subnetId><vpcId>vpc-1</vpcId><tagSet><item><key>k</key><value>v</value></item></tagSet>";

    #[test]
    fn ec2_nat_gateway_pending_available_deleting_deleted() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let create = query("ec2", "CreateNatGateway", &[("SubnetId", "subnet-pub")]);
        let (_, body) = answer(
            &c,
            &create,
            200,
            &format!("<CreateNatGatewayResponse><natGateway>{NAT}</natGateway></CreateNatGatewayResponse>"),
            t0,
        );
        assert!(body.contains("<natGatewayId>nat-1</natGatewayId><state>pending</state>"), "{body}");
        assert!(body.contains("<state>associated</state>"), "a nested item's state is not the gateway's: {body}");
        let describe = query("ec2", "DescribeNatGateways", &[]);
        let set = |st: &str| {
            format!(
                "<DescribeNatGatewaysResponse><natGatewaySet><item>{}</item><item><natGatewayId>nat-other</natGatewayId><state>available</state></item></natGatewaySet></DescribeNatGatewaysResponse>",
                NAT.replace("<state>available</state>", &format!("<state>{st}</state>"))
            )
        };
        let state = |moto: &str, secs| {
            let (_, b) = answer(&c, &describe, 200, &set(moto), at(t0, secs));
            let item = &b[xml::find_all(&b, "natGatewaySet")[0].clone()];
            xml::text(item, "item").map(|_| ()).unwrap_or(());
            b.split("<natGatewayId>nat-1</natGatewayId><state>").nth(1).unwrap().split('<').next().unwrap().to_string()
        };
        assert_eq!(state("available", 1.9), "pending");
        assert_eq!(state("available", 2.1), "available");
        // Its subnet is held, and so is the VPC's internet gateway.
        let subnet = query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-pub")]);
        assert_eq!(code(c.refuse(&subnet.call(), at(t0, 3.0))), Some("DependencyViolation"));
        let detach = query("ec2", "DetachInternetGateway", &[("InternetGatewayId", "igw-1"), ("VpcId", "vpc-1")]);
        assert_eq!(code(c.refuse(&detach.call(), at(t0, 3.0))), Some("DependencyViolation"));
        answer(
            &c,
            &query("ec2", "DeleteNatGateway", &[("NatGatewayId", "nat-1")]),
            200,
            "<DeleteNatGatewayResponse/>",
            at(t0, 10.0),
        );
        // moto says deleted at once; AWS says deleting for a minute.
        assert_eq!(state("deleted", 10.5), "deleting");
        assert_eq!(code(c.refuse(&detach.call(), at(t0, 10.5))), Some("DependencyViolation"));
        assert_eq!(state("deleted", 11.1), "deleted");
        assert_eq!(c.refuse(&detach.call(), at(t0, 11.1)), None);
        assert_eq!(c.refuse(&subnet.call(), at(t0, 11.1)), None);
        let (_, b) = answer(&c, &describe, 200, &set("deleted"), at(t0, 11.1));
        assert!(b.contains("<natGatewayId>nat-other</natGatewayId><state>available</state>"), "{b}");
    }

    #[test]
    fn ec2_vpc_endpoints_pending_then_available() {
        let c = Clock::new(1.0);
        let t0 = Instant::now();
        let el = |id: &str, ty: &str| {
            format!(
                "<vpcEndpointId>{id}</vpcEndpointId><vpcEndpointType>{ty}</vpcEndpointType><state>available</state>"
            )
        };
        let create = query("ec2", "CreateVpcEndpoint", &[("VpcEndpointType", "Interface")]);
        let (_, body) = answer(
            &c,
            &create,
            200,
            &format!(
                "<CreateVpcEndpointResponse><vpcEndpoint>{}</vpcEndpoint></CreateVpcEndpointResponse>",
                el("vpce-i", "Interface")
            ),
            t0,
        );
        assert!(body.contains("<state>pending</state>"), "{body}");
        answer(
            &c,
            &query("ec2", "CreateVpcEndpoint", &[]),
            200,
            &format!(
                "<CreateVpcEndpointResponse><vpcEndpoint>{}</vpcEndpoint></CreateVpcEndpointResponse>",
                el("vpce-g", "Gateway")
            ),
            t0,
        );
        let describe = query("ec2", "DescribeVpcEndpoints", &[]);
        let all = format!(
            "<DescribeVpcEndpointsResponse><vpcEndpointSet><item>{}</item><item>{}</item></vpcEndpointSet></DescribeVpcEndpointsResponse>",
            el("vpce-i", "Interface"),
            el("vpce-g", "Gateway")
        );
        let (_, b) = answer(&c, &describe, 200, &all, at(t0, 60.0));
        assert!(b.contains("<vpcEndpointId>vpce-i</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>pending</state>"), "{b}");
        assert!(b.contains("<vpcEndpointId>vpce-g</vpcEndpointId><vpcEndpointType>Gateway</vpcEndpointType><state>available</state>"), "{b}");
        let (_, b) = answer(&c, &describe, 200, &all, at(t0, 121.0));
        assert!(!b.contains("pending"), "{b}");
        // A deleted endpoint is what moto says, not `available` again.
        answer(
            &c,
            &query("ec2", "DeleteVpcEndpoints", &[("VpcEndpointId.1", "vpce-i")]),
            200,
            "<DeleteVpcEndpointsResponse><unsuccessful/></DeleteVpcEndpointsResponse>",
            at(t0, 122.0),
        );
        let gone = all.replacen("<state>available</state>", "<state>deleted</state>", 1);
        let (_, b) = answer(&c, &describe, 200, &gone, at(t0, 123.0));
        assert!(b.contains("<vpcEndpointId>vpce-i</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><state>deleted</state>"), "{b}");
    }

    #[test]
    fn elbv2_load_balancer_provisioning_then_active_and_its_enis_linger() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/lb1/abc";
        let member = format!(
            "<member><LoadBalancerArn>{arn}</LoadBalancerArn><State><Code>active</Code></State><AvailabilityZones><member><SubnetId>subnet-a</SubnetId></member></AvailabilityZones></member>"
        );
        let doc = |op: &str| {
            format!("<{op}Response><{op}Result><LoadBalancers>{member}</LoadBalancers></{op}Result></{op}Response>")
        };
        let create = query(
            "elasticloadbalancing",
            "CreateLoadBalancer",
            &[("Name", "lb1"), ("Subnets.member.1", "subnet-a"), ("SecurityGroups.member.1", "sg-alb")],
        );
        assert!(answer(&c, &create, 200, &doc("CreateLoadBalancer"), t0).1.contains("<Code>provisioning</Code>"));
        let describe = query("elasticloadbalancing", "DescribeLoadBalancers", &[]);
        assert!(
            answer(&c, &describe, 200, &doc("DescribeLoadBalancers"), at(t0, 2.4))
                .1
                .contains("<Code>provisioning</Code>")
        );
        assert!(
            answer(&c, &describe, 200, &doc("DescribeLoadBalancers"), at(t0, 2.6)).1.contains("<Code>active</Code>")
        );
        answer(
            &c,
            &query("elasticloadbalancing", "DeleteLoadBalancer", &[("LoadBalancerArn", arn)]),
            200,
            "<DeleteLoadBalancerResponse/>",
            at(t0, 10.0),
        );
        let sg = query("ec2", "DeleteSecurityGroup", &[("GroupId", "sg-alb")]);
        assert_eq!(code(c.refuse(&sg.call(), at(t0, 14.0))), Some("DependencyViolation"));
        assert_eq!(c.refuse(&sg.call(), at(t0, 15.1)), None);
    }

    fn fn_config(name: &str) -> Value {
        json!({"FunctionName": name, "FunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
               "State": "Active", "LastUpdateStatus": "Successful", "VpcConfig": {"SubnetIds": ["subnet-p"], "SecurityGroupIds": ["sg-fn"]}})
    }

    #[test]
    fn lambda_pending_active_updates_in_progress_and_conflicts() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let create = rest(
            "lambda",
            "POST",
            "/2015-03-31/functions",
            &json!({"FunctionName": "users", "VpcConfig": {"SubnetIds": ["subnet-p"], "SecurityGroupIds": ["sg-fn"]}})
                .to_string(),
        );
        let (_, body) = answer(&c, &create, 201, &fn_config("users").to_string(), t0);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((v["State"].as_str(), v["StateReasonCode"].as_str()), (Some("Pending"), Some("Creating")));
        let plain = rest("lambda", "POST", "/2015-03-31/functions", &json!({"FunctionName": "orders"}).to_string());
        answer(&c, &plain, 201, &fn_config("orders").to_string(), t0);

        // GetFunction, GetFunctionConfiguration, ListFunctions: each shape.
        let get = rest("lambda", "GET", "/2015-03-31/functions/users", "");
        let state = |secs: f64| -> String {
            let (_, b) = answer(
                &c,
                &get,
                200,
                &json!({"Configuration": fn_config("users"), "Code": {}}).to_string(),
                at(t0, secs),
            );
            serde_json::from_str::<Value>(&b).unwrap()["Configuration"]["State"].as_str().unwrap().to_string()
        };
        assert_eq!(state(1.4), "Pending", "a VPC function is pending 90 s (1.5 s here)");
        assert_eq!(state(1.6), "Active");
        let list = rest("lambda", "GET", "/2015-03-31/functions/", "");
        let (_, b) = answer(
            &c,
            &list,
            200,
            &json!({"Functions": [fn_config("users"), fn_config("orders"), fn_config("other")]}).to_string(),
            at(t0, 0.05),
        );
        let v: Value = serde_json::from_str(&b).unwrap();
        let states: Vec<&str> =
            v["Functions"].as_array().unwrap().iter().map(|f| f["State"].as_str().unwrap()).collect();
        assert_eq!(states, ["Pending", "Pending", "Active"]);
        let (_, b) = answer(&c, &list, 200, &json!({"Functions": [fn_config("orders")]}).to_string(), at(t0, 0.1));
        assert_eq!(
            serde_json::from_str::<Value>(&b).unwrap()["Functions"][0]["State"],
            "Active",
            "plain: 5 s (0.08 s)"
        );

        // An update while Pending is refused; then InProgress, refused again, Successful.
        let update =
            rest("lambda", "PUT", "/2015-03-31/functions/users/configuration", &json!({"MemorySize": 512}).to_string());
        let r = c.refuse(&update.call(), at(t0, 1.0)).expect("refused while pending");
        assert_eq!((r.status, r.code), (409, "ResourceConflictException"));
        assert_eq!(c.refuse(&update.call(), at(t0, 2.0)), None);
        let (_, b) = answer(&c, &update, 200, &fn_config("users").to_string(), at(t0, 2.0));
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["LastUpdateStatus"], "InProgress");
        let code_update = rest(
            "lambda",
            "PUT",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ausers/code",
            "{}",
        );
        assert_eq!(code(c.refuse(&code_update.call(), at(t0, 2.05))), Some("ResourceConflictException"));
        let config = rest("lambda", "GET", "/2015-03-31/functions/users/configuration", "");
        let (_, b) = answer(&c, &config, 200, &fn_config("users").to_string(), at(t0, 2.2));
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["LastUpdateStatus"], "Successful");
        assert_eq!(c.refuse(&code_update.call(), at(t0, 2.2)), None);
        // Other calls are not refused.
        let perm = rest("lambda", "POST", "/2015-03-31/functions/users/policy", "{}");
        assert_eq!(c.refuse(&perm.call(), at(t0, 0.0)), None);
    }

    #[test]
    fn a_deleted_vpc_functions_enis_hold_its_subnets_and_security_groups() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let create = rest("lambda", "POST", "/2015-03-31/functions", &json!({"FunctionName": "users", "VpcConfig": {"SubnetIds": ["subnet-p1", "subnet-p2"], "SecurityGroupIds": ["sg-fn"]}}).to_string());
        answer(&c, &create, 201, &fn_config("users").to_string(), t0);
        let sg = query("ec2", "DeleteSecurityGroup", &[("GroupId", "sg-fn")]);
        let subnet = query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-p2")]);
        let other = query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-x")]);
        let t1 = at(t0, 30.0);
        answer(&c, &rest("lambda", "DELETE", "/2015-03-31/functions/users", ""), 204, "", t1);
        // 20 minutes on AWS: 20 s at 1/60.
        for secs in [30.1, 40.0, 49.9] {
            let r = c.refuse(&sg.call(), at(t0, secs)).expect("held");
            assert_eq!((r.status, r.code), (400, "DependencyViolation"));
            assert!(r.message.contains("users"), "{}", r.message);
            assert_eq!(code(c.refuse(&subnet.call(), at(t0, secs))), Some("DependencyViolation"));
        }
        assert_eq!(c.refuse(&other.call(), at(t0, 31.0)), None);
        assert_eq!(c.refuse(&sg.call(), at(t0, 50.1)), None);
        assert_eq!(c.refuse(&subnet.call(), at(t0, 50.1)), None);
        let snap = c.snapshot(at(t0, 31.0));
        assert_eq!(snap["holds"].as_array().unwrap().len(), 1, "{snap}");
        // A function outside a VPC holds nothing.
        answer(
            &c,
            &rest("lambda", "POST", "/2015-03-31/functions", &json!({"FunctionName": "orders"}).to_string()),
            201,
            &fn_config("orders").to_string(),
            t0,
        );
        answer(&c, &rest("lambda", "DELETE", "/2015-03-31/functions/orders", ""), 204, "", at(t0, 60.0));
        assert_eq!(c.snapshot(at(t0, 60.0))["holds"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn a_function_taken_out_of_its_vpc_holds_what_it_left_as_a_deleted_one_would() {
        let c = Clock::new(1.0 / 60.0);
        let t0 = Instant::now();
        let vpc = json!({"SubnetIds": ["subnet-p1"], "SecurityGroupIds": ["sg-fn"]});
        let create = rest(
            "lambda",
            "POST",
            "/2015-03-31/functions",
            &json!({"FunctionName": "users", "VpcConfig": vpc}).to_string(),
        );
        answer(&c, &create, 201, &fn_config("users").to_string(), t0);
        let detach = rest(
            "lambda",
            "PUT",
            "/2015-03-31/functions/users/configuration",
            &json!({"VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []}}).to_string(),
        );
        answer(&c, &detach, 200, &fn_config("users").to_string(), at(t0, 30.0));
        let sg = query("ec2", "DeleteSecurityGroup", &[("GroupId", "sg-fn")]);
        let subnet = query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-p1")]);
        assert_eq!(code(c.refuse(&sg.call(), at(t0, 40.0))), Some("DependencyViolation"));
        assert_eq!(code(c.refuse(&subnet.call(), at(t0, 49.9))), Some("DependencyViolation"));
        // Deleting it later adds nothing: it holds no subnet any more.
        answer(&c, &rest("lambda", "DELETE", "/2015-03-31/functions/users", ""), 204, "", at(t0, 45.0));
        assert_eq!(c.snapshot(at(t0, 45.0))["holds"].as_array().unwrap().len(), 1);
        assert_eq!(c.refuse(&sg.call(), at(t0, 50.1)), None);
        assert_eq!(c.refuse(&subnet.call(), at(t0, 50.1)), None);
    }

    fn table(status: &str) -> Value {
        json!({"TableName": "orders", "TableStatus": status, "GlobalSecondaryIndexes": [{"IndexName": "by_status", "IndexStatus": "ACTIVE"}]})
    }

    #[test]
    fn dynamodb_creating_updating_backfilling_deleting() {
        let c = Clock::new(1.0);
        let t0 = Instant::now();
        let create = json_call(
            "dynamodb",
            "CreateTable",
            json!({"TableName": "orders", "GlobalSecondaryIndexes": [{"IndexName": "by_status"}]}),
        );
        let (_, b) = answer(&c, &create, 200, &json!({"TableDescription": table("ACTIVE")}).to_string(), t0);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["TableDescription"]["TableStatus"], "CREATING");
        assert_eq!(v["TableDescription"]["GlobalSecondaryIndexes"][0]["IndexStatus"], "CREATING");
        assert!(
            v["TableDescription"]["GlobalSecondaryIndexes"][0].get("Backfilling").is_none(),
            "indexes made with the table do not backfill"
        );
        let describe = json_call("dynamodb", "DescribeTable", json!({"TableName": "orders"}));
        let desc = |secs: f64, body: Value| -> Value {
            serde_json::from_str(&answer(&c, &describe, 200, &json!({"Table": body}).to_string(), at(t0, secs)).1)
                .unwrap()
        };
        assert_eq!(desc(19.0, table("ACTIVE"))["Table"]["TableStatus"], "CREATING");
        let ttl = json_call("dynamodb", "UpdateTimeToLive", json!({"TableName": "orders"}));
        assert_eq!(code(c.refuse(&ttl.call(), at(t0, 19.0))), Some("ResourceInUseException"));
        let pitr = json_call("dynamodb", "UpdateContinuousBackups", json!({"TableName": "orders"}));
        assert_eq!(code(c.refuse(&pitr.call(), at(t0, 19.0))), Some("ContinuousBackupsUnavailableException"));
        assert_eq!(desc(21.0, table("ACTIVE"))["Table"]["TableStatus"], "ACTIVE");
        assert_eq!(c.refuse(&ttl.call(), at(t0, 21.0)), None);

        // A new index: the table UPDATING for a moment, the index backfilling for minutes.
        let update = json_call(
            "dynamodb",
            "UpdateTable",
            json!({"TableName": "orders", "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "by_day"}}]}),
        );
        let with_two = json!({"TableName": "orders", "TableStatus": "ACTIVE", "GlobalSecondaryIndexes": [{"IndexName": "by_status", "IndexStatus": "ACTIVE"}, {"IndexName": "by_day", "IndexStatus": "ACTIVE"}]});
        let (_, b) = answer(&c, &update, 200, &json!({"TableDescription": with_two}).to_string(), at(t0, 100.0));
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["TableDescription"]["TableStatus"], "UPDATING");
        assert_eq!(code(c.refuse(&update.call(), at(t0, 105.0))), Some("ResourceInUseException"));
        let v = desc(115.0, with_two.clone());
        assert_eq!(v["Table"]["TableStatus"], "ACTIVE");
        assert_eq!(v["Table"]["GlobalSecondaryIndexes"][1]["IndexStatus"], "CREATING");
        assert_eq!(v["Table"]["GlobalSecondaryIndexes"][1]["Backfilling"], true);
        assert_eq!(v["Table"]["GlobalSecondaryIndexes"][0]["IndexStatus"], "ACTIVE");
        let v = desc(401.0, with_two);
        assert_eq!(v["Table"]["GlobalSecondaryIndexes"][1]["IndexStatus"], "ACTIVE");
        assert_eq!(v["Table"]["GlobalSecondaryIndexes"][1]["Backfilling"], false);

        // Deleted: DELETING (moto has forgotten it already), then not found.
        let delete = json_call("dynamodb", "DeleteTable", json!({"TableName": "orders"}));
        let (_, b) = answer(&c, &delete, 200, &json!({"TableDescription": table("ACTIVE")}).to_string(), at(t0, 500.0));
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["TableDescription"]["TableStatus"], "DELETING");
        let not_found = json!({"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}).to_string();
        let (st, b) = answer(&c, &describe, 400, &not_found, at(t0, 505.0));
        assert_eq!(st, 200);
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["Table"]["TableStatus"], "DELETING");
        let (st, _) = answer(&c, &describe, 400, &not_found, at(t0, 511.0));
        assert_eq!(st, 400);
    }

    #[test]
    fn untracked_resources_and_other_calls_are_left_alone() {
        let c = Clock::new(1.0);
        let t0 = Instant::now();
        let describe = query("rds", "DescribeDBInstances", &[]);
        let body = rds_answer("DescribeDBInstances", &format!("<DBInstances>{RDS_DB}</DBInstances>"));
        assert_eq!(c.rewrite(&describe.call(), 200, body.as_bytes(), t0), None);
        let sts = query("sts", "GetCallerIdentity", &[]);
        assert_eq!(c.rewrite(&sts.call(), 200, b"<x/>", t0), None);
        assert_eq!(c.refuse(&query("ec2", "DeleteSubnet", &[("SubnetId", "subnet-1")]).call(), t0), None);
    }

    #[test]
    fn xml_helpers_count_nesting() {
        let doc = "<a><item><id>1</id><set><item><id>x</id></item></set></item><item><id>2</id></item><empty/></a>";
        let a = xml::find_all(doc, "a")[0].clone();
        assert_eq!(xml::find_all(doc, "item").len(), 2);
        let out = xml::map_children(&doc[a], "item", |el| Some(xml::set_text(el, "id", "N")));
        assert_eq!(
            out,
            "<a><item><id>N</id><set><item><id>x</id></item></set></item><item><id>N</id></item><empty/></a>"
        );
        assert_eq!(xml::text("<x><y>v</y></x>", "y"), Some("v"));
        assert_eq!(xml::remove("<x><y>v</y><z/></x>", "y"), "<x><z/></x>");
        assert_eq!(percent_decode("arn%3Aaws+x%2"), "arn:aws x%2");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:1:function:f:$LATEST"), "f");
    }

    /// bench/README.md's table of durations lists exactly these keys and seconds.
    #[test]
    fn the_readme_table_matches_the_code() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/README.md")).unwrap();
        let mut rows: Vec<(String, f64)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let secs: f64 = cells.get(3)?.parse().ok()?;
                DURATIONS
                    .iter()
                    .any(|(k, _)| *k == key)
                    .then(|| (key.to_string(), secs))
                    .or_else(|| key.contains('.').then(|| (key.to_string(), secs)))
            })
            .filter(|(k, _)| {
                ["rds.", "cloudfront.", "ec2.", "elbv2.", "lambda.", "dynamodb."].iter().any(|p| k.starts_with(p))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut code: Vec<(String, f64)> = DURATIONS.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        code.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(rows, code, "bench/README.md's durations table and clock::DURATIONS differ");
    }
}
