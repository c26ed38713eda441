//! The network tier and the engine end to end against moto, read back with
//! the AWS CLI.

mod common;

use common::{Moto, Workdir, tag};
use serde_json::Value;

const STACK: &str = r#"
stack: net
region: us-east-1
tags: { team: platform }
network:
  cidr: 10.20.0.0/16
  azs: 2
  security_groups:
    web:
      ingress:
        - { port: 80, from: [alb] }
"#;

fn count(m: &Moto, describe: &str, key: &str, stack: &str) -> usize {
    m.ec2_by_stack(describe, key, stack).len()
}

#[test]
fn apply_creates_exactly_the_network_then_plan_is_empty() {
    let m = Moto::start();
    let w = Workdir::with_stack(STACK);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    let vpcs = m.ec2_by_stack("describe-vpcs", "Vpcs", "net");
    assert_eq!(vpcs.len(), 1);
    let vpc = &vpcs[0];
    assert_eq!(vpc["CidrBlock"], "10.20.0.0/16");
    assert_eq!(tag(vpc, "team"), Some("platform"));
    assert_eq!(tag(vpc, "infra:address"), Some("network.vpc"));
    let vpc_id = vpc["VpcId"].as_str().unwrap();
    let dns = m.aws(&["ec2", "describe-vpc-attribute", "--vpc-id", vpc_id, "--attribute", "enableDnsHostnames"]);
    assert_eq!(dns["EnableDnsHostnames"]["Value"], true);

    let subnets = m.ec2_by_stack("describe-subnets", "Subnets", "net");
    assert_eq!(subnets.len(), 4);
    let azs: std::collections::BTreeSet<&str> =
        subnets.iter().map(|s| s["AvailabilityZone"].as_str().unwrap()).collect();
    assert_eq!(azs.len(), 2, "subnets span two AZs");
    let public: Vec<&Value> =
        subnets.iter().filter(|s| tag(s, "infra:address").is_some_and(|a| a.contains(".public."))).collect();
    assert_eq!(public.len(), 2);
    // No subnet hands out public addresses (CIS/FSBP EC2.15): the web groups'
    // launch templates ask for one where instances need it.
    assert!(subnets.iter().all(|s| s["MapPublicIpOnLaunch"] == false), "{subnets:?}");

    let igws = m.ec2_by_stack("describe-internet-gateways", "InternetGateways", "net");
    assert_eq!(igws.len(), 1);
    assert_eq!(igws[0]["Attachments"][0]["VpcId"], vpc_id);
    let igw_id = igws[0]["InternetGatewayId"].as_str().unwrap();

    let rts = m.ec2_by_stack("describe-route-tables", "RouteTables", "net");
    assert_eq!(rts.len(), 3, "one public, one private per AZ");
    let public_rt = rts.iter().find(|r| tag(r, "infra:address") == Some("network.route_table.public")).unwrap();
    assert!(
        public_rt["Routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0" && r["GatewayId"] == igw_id)
    );
    let assoc: Vec<&str> =
        public_rt["Associations"].as_array().unwrap().iter().filter_map(|a| a["SubnetId"].as_str()).collect();
    let mut public_ids: Vec<&str> = public.iter().map(|s| s["SubnetId"].as_str().unwrap()).collect();
    let mut assoc_sorted = assoc.clone();
    assoc_sorted.sort();
    public_ids.sort();
    assert_eq!(assoc_sorted, public_ids);
    for r in rts.iter().filter(|r| tag(r, "infra:address") != Some("network.route_table.public")) {
        assert_eq!(r["Associations"].as_array().unwrap().iter().filter(|a| a["SubnetId"].is_string()).count(), 1);
        assert!(
            !r["Routes"].as_array().unwrap().iter().any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0"),
            "no NAT: private has no default route"
        );
    }

    let sgs = m.ec2_by_stack("describe-security-groups", "SecurityGroups", "net");
    // Four of the stack's, and the VPC's default group it adopts to close.
    assert_eq!(sgs.len(), 5);
    let by =
        |n: &str| sgs.iter().find(|g| tag(g, "infra:address") == Some(&format!("network.sg.{n}"))).unwrap().clone();
    let (alb, web, db) = (by("alb"), by("web"), by("database"));
    let alb_ports: Vec<i64> =
        alb["IpPermissions"].as_array().unwrap().iter().map(|p| p["FromPort"].as_i64().unwrap()).collect();
    assert!(alb_ports.contains(&80) && alb_ports.contains(&443));
    assert_eq!(web["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"], alb["GroupId"]);
    let db_perm = &db["IpPermissions"][0];
    assert_eq!(db_perm["FromPort"], 5432);
    assert!(db_perm["IpRanges"].as_array().unwrap().is_empty(), "database never open to CIDRs");
    assert_eq!(db_perm["UserIdGroupPairs"].as_array().unwrap().len(), 2);

    let plan = m.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
}

#[test]
fn edits_plan_exactly_those_changes() {
    let m = Moto::start();
    let w = Workdir::with_stack(STACK);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    w.edit("azs: 2", "azs: 3");
    w.edit("{ port: 80, from: [alb] }", "{ port: 8080, from: [alb] }");
    w.edit("team: platform", "team: web");
    let plan = m.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    let out = &plan.stdout;
    for addr in [
        "network.subnet.public.us-east-1c",
        "network.subnet.private.us-east-1c",
        "network.route_table.private.us-east-1c",
    ] {
        assert!(out.contains(&format!("+ {addr} ")), "{addr} missing from\n{out}");
    }
    assert!(out.contains("~ network.sg.web "), "{out}");
    assert!(out.contains("tags.team: \"platform\" → \"web\""), "{out}");
    assert!(out.contains("Plan: 3 to add, 20 to change, 0 to replace, 0 to destroy."), "{out}");

    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    assert_eq!(count(&m, "describe-subnets", "Subnets", "net"), 6);
    let sgs = m.ec2_by_stack("describe-security-groups", "SecurityGroups", "net");
    let web = sgs.iter().find(|g| tag(g, "infra:address") == Some("network.sg.web")).unwrap();
    assert_eq!(web["IpPermissions"].as_array().unwrap().len(), 1);
    assert_eq!(web["IpPermissions"][0]["FromPort"], 8080);
    assert_eq!(tag(web, "team"), Some("web"));
}

#[test]
fn drift_is_planned_and_repaired() {
    let m = Moto::start();
    let w = Workdir::with_stack(STACK);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    let rts = m.ec2_by_stack("describe-route-tables", "RouteTables", "net");
    let public_rt = rts.iter().find(|r| tag(r, "infra:address") == Some("network.route_table.public")).unwrap();
    let rt_id = public_rt["RouteTableId"].as_str().unwrap();
    m.aws(&["ec2", "delete-route", "--route-table-id", rt_id, "--destination-cidr-block", "0.0.0.0/0"]);
    let sgs = m.ec2_by_stack("describe-security-groups", "SecurityGroups", "net");
    let web = sgs.iter().find(|g| tag(g, "infra:address") == Some("network.sg.web")).unwrap();
    let web_id = web["GroupId"].as_str().unwrap();
    m.aws(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        web_id,
        "--protocol",
        "tcp",
        "--port",
        "22",
        "--cidr",
        "0.0.0.0/0",
    ]);
    let subnets = m.ec2_by_stack("describe-subnets", "Subnets", "net");
    let private_b =
        subnets.iter().find(|s| tag(s, "infra:address") == Some("network.subnet.private.us-east-1b")).unwrap();
    // The private route table's association goes with the subnet.
    let assoc = rts
        .iter()
        .flat_map(|r| r["Associations"].as_array().unwrap().iter())
        .find(|a| a["SubnetId"] == private_b["SubnetId"])
        .unwrap();
    m.aws(&["ec2", "disassociate-route-table", "--association-id", assoc["RouteTableAssociationId"].as_str().unwrap()]);
    m.aws(&["ec2", "delete-subnet", "--subnet-id", private_b["SubnetId"].as_str().unwrap()]);

    let plan = m.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    let out = &plan.stdout;
    assert!(out.contains("~ network.route_table.public "), "{out}");
    assert!(out.contains("~ network.sg.web "), "{out}");
    assert!(out.contains("+ network.subnet.private.us-east-1b "), "{out}");
    assert!(out.contains("~ network.route_table.private.us-east-1b "), "{out}");

    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    let rts = m.ec2_by_stack("describe-route-tables", "RouteTables", "net");
    let public_rt = rts.iter().find(|r| tag(r, "infra:address") == Some("network.route_table.public")).unwrap();
    assert!(public_rt["Routes"].as_array().unwrap().iter().any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0"));
    let web = m.aws(&["ec2", "describe-security-groups", "--group-ids", web_id]);
    let perms = web["SecurityGroups"][0]["IpPermissions"].as_array().unwrap().clone();
    assert_eq!(perms.len(), 1, "the hand-made port 22 rule is gone: {perms:?}");
    assert_eq!(count(&m, "describe-subnets", "Subnets", "net"), 4);
}

#[test]
fn side_by_side_stacks_and_destroy() {
    let m = Moto::start();
    let w = Workdir::with_stack(STACK);
    // An untagged VPC that must never be touched.
    let foreign = m.aws(&["ec2", "create-vpc", "--cidr-block", "172.16.0.0/16"]);
    let foreign_id = foreign["Vpc"]["VpcId"].as_str().unwrap().to_string();

    m.infra(w.path(), &["apply", "--auto-approve", "--stack", "a"]).ok();
    m.infra(w.path(), &["apply", "--auto-approve", "--stack", "b"]).ok();
    assert_eq!(count(&m, "describe-vpcs", "Vpcs", "a"), 1);
    assert_eq!(count(&m, "describe-vpcs", "Vpcs", "b"), 1);
    let sgs_b = count(&m, "describe-security-groups", "SecurityGroups", "b");

    let d = m.infra(w.path(), &["destroy", "--auto-approve", "--stack", "a"]);
    d.ok();
    assert!(d.stdout.contains("20 to destroy"), "{}", d.stdout);
    for (describe, key) in [
        ("describe-vpcs", "Vpcs"),
        ("describe-subnets", "Subnets"),
        ("describe-internet-gateways", "InternetGateways"),
        ("describe-route-tables", "RouteTables"),
        ("describe-security-groups", "SecurityGroups"),
    ] {
        assert_eq!(count(&m, describe, key, "a"), 0, "{describe} left for stack a");
    }
    assert_eq!(count(&m, "describe-vpcs", "Vpcs", "b"), 1);
    assert_eq!(count(&m, "describe-subnets", "Subnets", "b"), 4);
    assert_eq!(count(&m, "describe-security-groups", "SecurityGroups", "b"), sgs_b);
    assert!(m.aws_ok(&["ec2", "describe-vpcs", "--vpc-ids", &foreign_id]));
    m.infra(w.path(), &["plan", "--detailed-exitcode", "--stack", "b"]).code(0);

    let again = m.infra(w.path(), &["destroy", "--auto-approve", "--stack", "a"]);
    again.ok();
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
}

#[test]
fn nat_per_az_routes_private_subnets_through_their_gateway() {
    let m = Moto::start();
    let w = Workdir::with_stack(&STACK.replace("azs: 2", "azs: 2\n  nat: per_az"));
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let nats = m.aws(&["ec2", "describe-nat-gateways", "--filter", "Name=tag:infra:stack,Values=net"]);
    let nats: Vec<&Value> =
        nats["NatGateways"].as_array().unwrap().iter().filter(|n| n["State"] == "available").collect();
    assert_eq!(nats.len(), 2);
    let rts = m.ec2_by_stack("describe-route-tables", "RouteTables", "net");
    for r in rts.iter().filter(|r| tag(r, "infra:address").unwrap().starts_with("network.route_table.private")) {
        let nat_route =
            r["Routes"].as_array().unwrap().iter().find(|x| x["DestinationCidrBlock"] == "0.0.0.0/0").unwrap();
        assert!(nats.iter().any(|n| n["NatGatewayId"] == nat_route["NatGatewayId"]));
    }
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    let eips = m.aws(&["ec2", "describe-addresses", "--filters", "Name=tag:infra:stack,Values=net"]);
    assert!(eips["Addresses"].as_array().unwrap().is_empty());
}

/// The stack's VPC endpoints, by service (the last part of the service name).
fn endpoints(m: &Moto, stack: &str) -> std::collections::BTreeMap<String, Value> {
    m.ec2_by_stack("describe-vpc-endpoints", "VpcEndpoints", stack)
        .into_iter()
        .filter(|e| !matches!(e["State"].as_str(), Some("deleted" | "deleting")))
        .map(|e| {
            let service = e["ServiceName"].as_str().unwrap().trim_start_matches("com.amazonaws.us-east-1.").to_string();
            (service, e)
        })
        .collect()
}

fn ids_at(m: &Moto, describe: &str, key: &str, id: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = m
        .ec2_by_stack(describe, key, "webapp")
        .into_iter()
        .filter(|r| tag(r, "infra:address").is_some_and(|a| a.starts_with(prefix)))
        .map(|r| r[id].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted_strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    s.sort();
    s
}

/// Without NAT, the reference stack's VPC function (the users service reads
/// its database secret) could reach no AWS API: the network gets the free
/// gateway endpoints on the private route tables and a Secrets Manager
/// interface endpoint with private DNS in the private subnets, reachable on
/// 443 from the functions and web groups only. With NAT it gets none unless
/// the file lists them.
#[test]
fn endpoints_follow_the_nat_and_the_file() {
    let m = Moto::start();
    let w = Workdir::reference();
    let plan = m.infra(w.path(), &["plan", "--no-color"]);
    plan.ok();
    assert!(
        plan.stdout.contains("function users reaches secretsmanager only through this endpoint"),
        "the plan says why: {}",
        plan.stdout
    );
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    let private_rts =
        ids_at(&m, "describe-route-tables", "RouteTables", "RouteTableId", "network.route_table.private.");
    let private_subnets = ids_at(&m, "describe-subnets", "Subnets", "SubnetId", "network.subnet.private.");
    assert_eq!(private_rts.len(), 2);
    let e = endpoints(&m, "webapp");
    assert_eq!(e.keys().cloned().collect::<Vec<_>>(), vec!["dynamodb", "s3", "secretsmanager"]);
    for gw in ["s3", "dynamodb"] {
        assert_eq!(e[gw]["VpcEndpointType"], "Gateway");
        assert_eq!(sorted_strings(&e[gw]["RouteTableIds"]), private_rts, "{gw} on the private route tables");
    }
    // Each endpoint carries this account's principals only; the S3 one also
    // the Amazon Linux package repositories, which dnf reads unsigned.
    let account = m.aws(&["sts", "get-caller-identity"])["Account"].clone();
    for (service, ep) in &e {
        let policy: Value = serde_json::from_str(ep["PolicyDocument"].as_str().unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements[0]["Condition"]["StringEquals"]["aws:PrincipalAccount"], account, "{service}: {policy}");
        let repos: Vec<&Value> = statements.iter().filter(|s| s["Sid"] == "AmazonLinuxRepositories").collect();
        if service == "s3" {
            assert_eq!(repos.len(), 1, "{policy}");
            assert_eq!(repos[0]["Resource"], "arn:aws:s3:::al2023-repos-us-east-1-de612dc2/*");
            assert_eq!(repos[0]["Action"], "s3:GetObject");
        } else {
            assert!(repos.is_empty(), "{service}: {policy}");
        }
    }
    let sm = &e["secretsmanager"];
    assert_eq!(sm["VpcEndpointType"], "Interface");
    assert_eq!(sm["PrivateDnsEnabled"], true);
    assert_eq!(sorted_strings(&sm["SubnetIds"]), private_subnets);
    let groups: Vec<&str> = sm["Groups"].as_array().unwrap().iter().map(|g| g["GroupId"].as_str().unwrap()).collect();
    let sg_id = |name: &str| {
        m.ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp")
            .into_iter()
            .find(|g| tag(g, "infra:address") == Some(&format!("network.sg.{name}")))
            .map(|g| g["GroupId"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(groups, vec![sg_id("endpoints").as_str()]);
    let sg = m.aws(&["ec2", "describe-security-groups", "--group-ids", &sg_id("endpoints")]);
    let ingress = &sg["SecurityGroups"][0]["IpPermissions"];
    let mut sources: Vec<String> = ingress
        .as_array()
        .unwrap()
        .iter()
        .inspect(|p| assert_eq!(p["FromPort"], 443))
        .flat_map(|p| p["UserIdGroupPairs"].as_array().unwrap().clone())
        .map(|g| g["GroupId"].as_str().unwrap().to_string())
        .collect();
    sources.sort();
    let mut want = vec![sg_id("functions"), sg_id("web")];
    want.sort();
    assert_eq!(sources, want, "HTTPS from the functions and web groups only");
    assert!(ingress.as_array().unwrap().iter().all(|p| p["IpRanges"].as_array().unwrap().is_empty()));
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).ok();

    // With NAT the endpoints go.
    w.edit("nat: none", "nat: per_az");
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert!(endpoints(&m, "webapp").is_empty(), "NAT: no endpoints unless listed");

    // Listed ones stay with NAT.
    w.edit("nat: per_az", "nat: per_az\n  endpoints: { services: [ssm] }");
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let e = endpoints(&m, "webapp");
    assert_eq!(e.keys().cloned().collect::<Vec<_>>(), vec!["ssm"]);
    assert_eq!(e["ssm"]["PrivateDnsEnabled"], true);
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).ok();

    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    assert!(endpoints(&m, "webapp").is_empty());
}

/// Security defaults of the network tier (issue: secure by default): VPC flow
/// logs to CloudWatch Logs through a role trusted only for this account, and
/// the VPC's default security group stripped of its rules; both can be
/// turned off in the file.
#[test]
fn flow_logs_and_a_closed_default_group_by_default() {
    let m = Moto::start();
    let w = Workdir::with_stack(STACK);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let vpc = m.ec2_by_stack("describe-vpcs", "Vpcs", "net").remove(0);
    let vpc_id = vpc["VpcId"].as_str().unwrap();
    let account = vpc["OwnerId"].as_str().unwrap();

    let logs = flow_logs(&m);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let fl = &logs[0];
    assert_eq!(fl["ResourceId"], vpc_id);
    assert_eq!(fl["TrafficType"], "ALL");
    assert_eq!(fl["LogGroupName"], "/infra/net/vpc-flow-logs");
    let groups = m.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/infra/net/"]);
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 365);
    let role_arn = fl["DeliverLogsPermissionArn"].as_str().unwrap();
    let role_name = role_arn.rsplit('/').next().unwrap();
    let role = m.aws(&["iam", "get-role", "--role-name", role_name]);
    let trust = &role["Role"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"]["Service"], "vpc-flow-logs.amazonaws.com");
    assert_eq!(trust["Condition"]["StringEquals"]["aws:SourceAccount"], account);
    let policy = m.aws(&["iam", "get-role-policy", "--role-name", role_name, "--policy-name", "deliver"]);
    let resources = policy["PolicyDocument"]["Statement"][0]["Resource"].to_string();
    assert!(resources.contains("log-group:/infra/net/vpc-flow-logs"), "only its own group: {resources}");

    let default = m.aws(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        &format!("Name=vpc-id,Values={vpc_id}"),
        "Name=group-name,Values=default",
    ]);
    let g = &default["SecurityGroups"][0];
    assert_eq!(g["IpPermissions"], serde_json::json!([]), "no ingress");
    assert_eq!(g["IpPermissionsEgress"], serde_json::json!([]), "no egress");
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).ok();

    // Both can be turned off.
    w.edit("  azs: 2\n", "  azs: 2\n  flow_logs: { enabled: false }\n  restrict_default_security_group: false\n");
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert!(flow_logs(&m).is_empty());
    let default = m.aws(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        &format!("Name=vpc-id,Values={vpc_id}"),
        "Name=group-name,Values=default",
    ]);
    assert!(
        common::tag(&default["SecurityGroups"][0], "infra:stack").is_none(),
        "the default group is handed back untagged"
    );
    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
}

/// (egress, rule, protocol, action, CIDR, ports) of a network ACL entry.
type AclEntry = (bool, i64, String, String, String, Option<(i64, i64)>);

/// A network ACL's entries as (egress, rule, protocol, action, CIDR, ports),
/// without the implicit final deny.
fn acl_entries(acl: &Value) -> Vec<AclEntry> {
    let mut v: Vec<_> = acl["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["RuleNumber"].as_i64() != Some(32767))
        .map(|e| {
            let ports = e.get("PortRange").map(|p| (p["From"].as_i64().unwrap(), p["To"].as_i64().unwrap()));
            (
                e["Egress"].as_bool().unwrap(),
                e["RuleNumber"].as_i64().unwrap(),
                e["Protocol"].as_str().unwrap().to_string(),
                e["RuleAction"].as_str().unwrap().to_string(),
                e["CidrBlock"].as_str().unwrap_or_default().to_string(),
                ports,
            )
        })
        .collect();
    v.sort();
    v
}

/// The ACL `subnet` is associated with, by the ACL's id.
fn acl_of(m: &Moto, subnet: &str) -> String {
    let v =
        m.aws(&["ec2", "describe-network-acls", "--filters", &format!("Name=association.subnet-id,Values={subnet}")]);
    let acls = v["NetworkAcls"].as_array().unwrap();
    assert_eq!(acls.len(), 1, "{subnet}: {acls:?}");
    acls[0]["NetworkAclId"].as_str().unwrap().to_string()
}

/// Each subnet tier behind its own network ACL, which admits from outside
/// the VPC exactly what a security group admits from a CIDR block (the load
/// balancer's ports, an office range on 22) and the answers on the ephemeral
/// ports; the VPC's default ACL emptied; drift in an entry repaired; all of
/// it handed back with `network_acls: false`.
#[test]
fn network_acls_admit_what_the_groups_admit_and_the_default_acl_nothing() {
    let m = Moto::start();
    let stack = STACK.replace(
        "  security_groups:\n",
        "  security_groups:\n    bastion:\n      description: office\n      ingress:\n        - { port: 22, cidrs: [203.0.113.0/24] }\n        - { port: 5000, cidrs: [10.20.7.0/24] }\n",
    );
    let w = Workdir::with_stack(&stack);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let vpc_id = m.ec2_by_stack("describe-vpcs", "Vpcs", "net")[0]["VpcId"].as_str().unwrap().to_string();
    let acls = m.ec2_by_stack("describe-network-acls", "NetworkAcls", "net");
    let at = |a: &str| {
        acls.iter().find(|x| tag(x, "infra:address") == Some(a)).unwrap_or_else(|| panic!("no {a}: {acls:?}"))
    };
    let tcp = |rule, cidr: &str, from, to| {
        (false, rule, "6".to_string(), "allow".to_string(), cidr.to_string(), Some((from, to)))
    };
    let want = vec![
        (false, 100, "-1".to_string(), "allow".to_string(), "10.20.0.0/16".to_string(), None),
        // Sorted by (protocol, ports, CIDR): the office's 22, the load balancer's 80 and 443.
        tcp(200, "203.0.113.0/24", 22, 22),
        tcp(210, "0.0.0.0/0", 80, 80),
        tcp(220, "0.0.0.0/0", 443, 443),
        tcp(230, "0.0.0.0/0", 1024, 65535),
        (false, 240, "17".to_string(), "allow".to_string(), "0.0.0.0/0".to_string(), Some((1024, 65535))),
        (true, 100, "-1".to_string(), "allow".to_string(), "0.0.0.0/0".to_string(), None),
    ];
    let subnets = m.ec2_by_stack("describe-subnets", "Subnets", "net");
    for tier in ["public", "private"] {
        let acl = at(&format!("network.acl.{tier}"));
        assert_eq!(acl["IsDefault"], false);
        assert_eq!(acl["VpcId"], vpc_id.as_str());
        assert_eq!(acl_entries(acl), want, "{tier}: nothing from inside the VPC but the VPC entry");
        for s in subnets.iter().filter(|s| tag(s, "infra:address").is_some_and(|a| a.contains(&format!(".{tier}.")))) {
            assert_eq!(acl_of(&m, s["SubnetId"].as_str().unwrap()), acl["NetworkAclId"].as_str().unwrap());
        }
    }
    let default = at("network.acl.default");
    assert_eq!(default["IsDefault"], true);
    assert_eq!(acl_entries(default), vec![], "the default ACL admits nothing");
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).ok();

    // An entry added by hand is drift, and goes.
    let public = at("network.acl.public")["NetworkAclId"].as_str().unwrap().to_string();
    m.aws(&[
        "ec2",
        "create-network-acl-entry",
        "--network-acl-id",
        &public,
        "--ingress",
        "--rule-number",
        "150",
        "--protocol",
        "6",
        "--port-range",
        "From=3389,To=3389",
        "--cidr-block",
        "0.0.0.0/0",
        "--rule-action",
        "allow",
    ]);
    let plan = m.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("network.acl.public"), "{}", plan.stdout);
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let acls = m.ec2_by_stack("describe-network-acls", "NetworkAcls", "net");
    let again = acls.iter().find(|x| tag(x, "infra:address") == Some("network.acl.public")).unwrap();
    assert_eq!(acl_entries(again), want);

    // Off: the subnets go back to the VPC's default ACL, handed back untagged.
    w.edit("  azs: 2\n", "  azs: 2\n  network_acls: false\n");
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert!(m.ec2_by_stack("describe-network-acls", "NetworkAcls", "net").is_empty());
    let default_id = default["NetworkAclId"].as_str().unwrap();
    for s in &subnets {
        assert_eq!(acl_of(&m, s["SubnetId"].as_str().unwrap()), default_id);
    }
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).ok();
    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
}

/// The stack's flow logs (DescribeFlowLogs takes `--filter`, not `--filters`).
fn flow_logs(m: &Moto) -> Vec<Value> {
    let v = m.aws(&["ec2", "describe-flow-logs", "--filter", "Name=tag:infra:stack,Values=net"]);
    v["FlowLogs"].as_array().cloned().unwrap_or_default()
}

/// A route-table association whose answer was lost is retried; EC2 answers
/// the retry `Resource.AlreadyAssociated` (moto patched to, as EC2 does), and
/// that is success when the association is with this very table.
#[test]
fn a_retried_association_with_this_table_is_success() {
    use common::{Proxy, ProxyOpts};
    let m = Moto::start();
    let p = Proxy::start(&m, ProxyOpts { lose_first: "AssociateRouteTable".into(), ..ProxyOpts::default() });
    let w = Workdir::with_stack(STACK);
    p.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let stats = p.stats();
    assert_eq!(stats["faults_injected"]["error_after"], 1, "{stats}");
    assert!(stats["by_service_action"]["ec2.AssociateRouteTable"].as_u64().unwrap() >= 5, "{stats}");
    // Each subnet is associated with its own table exactly once.
    let subnets = m.ec2_by_stack("describe-subnets", "Subnets", "net");
    for s in &subnets {
        let id = s["SubnetId"].as_str().unwrap();
        let public = tag(s, "infra:address").is_some_and(|a| a.contains(".public."));
        let tier = if public { "public".to_string() } else { "private".to_string() };
        let tables =
            m.aws(&["ec2", "describe-route-tables", "--filters", &format!("Name=association.subnet-id,Values={id}")]);
        let tables = tables["RouteTables"].as_array().unwrap();
        assert_eq!(tables.len(), 1, "{id}: {tables:?}");
        let addr = tag(&tables[0], "infra:address").unwrap();
        assert!(addr.starts_with(&format!("network.route_table.{tier}")), "{id} ({tier}) is in {addr}");
    }
    let plan = m.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(0);
}

/// A VPC function that could never reach what it declares (no NAT, no
/// endpoints) is refused with a located error and the fix, before any AWS
/// call (every call would go through the proxy, which counts none).
#[test]
fn a_function_that_could_reach_nothing_is_refused_before_any_call() {
    use common::{Proxy, ProxyOpts};
    let m = Moto::start();
    let p = Proxy::start(&m, ProxyOpts::default());
    let w = Workdir::reference();
    w.edit("  nat: none         # none | single | per_az", "  nat: none\n  endpoints: none");
    let plan = p.infra(w.path(), &["plan"]);
    plan.code(1);
    let text = &plan.stderr;
    let line = w.read("stack.yaml").lines().position(|l| l.trim_start().starts_with("database: true")).unwrap() + 1;
    assert!(text.contains(&format!("stack.yaml:{line}:")), "not located at line {line}:\n{text}");
    assert!(
        text.contains("function `users` runs in the VPC and reads the database secret, but the private subnets have no NAT and no `secretsmanager` endpoint"),
        "{text}"
    );
    assert!(text.contains("network.endpoints: auto"), "{text}");
    assert_eq!(p.stats()["calls"], 0, "an AWS call was made: {}", p.stats());
}
