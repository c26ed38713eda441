//! The compute tier against moto, read back with the AWS CLI: launch
//! template, Auto Scaling group across the zones, Application Load
//! Balancer, target group and listener; instance type change (new template
//! version + instance refresh), in-place max change, drift repair, target
//! group replacement, destroy.
//!
//! moto 5 does not implement StartInstanceRefresh. The product calls it as
//! on AWS; the test that changes the instance type points the tool's Auto
//! Scaling endpoint (only) at a small proxy that forwards everything to moto
//! except that call, which it records and answers as AWS does. The test
//! then checks the recorded request.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::{Moto, Run, Workdir};
use serde_json::Value;

const STACK: &str = "webapp";

/// The parameter of AWS's latest Amazon Linux 2023 image (the reference stack's).
const AL2023: &str = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";
/// The reference web group's instance role (and profile).
const INSTANCE_ROLE: &str = "webapp-web-ec2-us-east-1";

/// The instance role's managed policy names and inline policy names, sorted.
fn instance_access(moto: &Moto) -> (Vec<String>, Vec<String>) {
    let names = |v: Value, key: &str, field: Option<&str>| {
        let mut n: Vec<String> = arr(&v[key])
            .iter()
            .map(|x| match field {
                Some(f) => x[f].as_str().unwrap().to_string(),
                None => x.as_str().unwrap().to_string(),
            })
            .collect();
        n.sort();
        n
    };
    (
        names(
            moto.aws(&["iam", "list-attached-role-policies", "--role-name", INSTANCE_ROLE]),
            "AttachedPolicies",
            Some("PolicyName"),
        ),
        names(moto.aws(&["iam", "list-role-policies", "--role-name", INSTANCE_ROLE]), "PolicyNames", None),
    )
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// The stack's public subnet ids, by the network tier's address tags.
fn subnets(moto: &Moto, tier: &str) -> Vec<(String, String)> {
    moto.ec2_by_stack("describe-subnets", "Subnets", STACK)
        .into_iter()
        .filter(|s| common::tag(s, "infra:address").is_some_and(|a| a.starts_with(&format!("network.subnet.{tier}."))))
        .map(|s| (s["SubnetId"].as_str().unwrap().to_string(), s["AvailabilityZone"].as_str().unwrap().to_string()))
        .collect()
}

fn group(moto: &Moto, name: &str) -> Option<Value> {
    let v = moto.aws(&["autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", name]);
    arr(&v["AutoScalingGroups"]).into_iter().next()
}

fn load_balancers(moto: &Moto) -> Vec<Value> {
    arr(&moto.aws(&["elbv2", "describe-load-balancers"])["LoadBalancers"])
}

fn target_groups(moto: &Moto) -> Vec<Value> {
    arr(&moto.aws(&["elbv2", "describe-target-groups"])["TargetGroups"])
}

fn launch_templates(moto: &Moto) -> Vec<Value> {
    moto.ec2_by_stack("describe-launch-templates", "LaunchTemplates", STACK)
}

fn template_version(moto: &Moto, id: &str, version: &str) -> Value {
    let v = moto.aws(&["ec2", "describe-launch-template-versions", "--launch-template-id", id, "--versions", version]);
    arr(&v["LaunchTemplateVersions"]).into_iter().next().unwrap_or_else(|| panic!("no version {version} of {id}"))
}

fn listeners(moto: &Moto, lb_arn: &str) -> Vec<Value> {
    arr(&moto.aws(&["elbv2", "describe-listeners", "--load-balancer-arn", lb_arn])["Listeners"])
}

/// Nothing of the compute tier is left.
fn assert_no_compute(moto: &Moto) {
    assert!(load_balancers(moto).is_empty(), "load balancers left: {:?}", load_balancers(moto));
    assert!(target_groups(moto).is_empty(), "target groups left: {:?}", target_groups(moto));
    assert!(launch_templates(moto).is_empty(), "launch templates left");
    let groups = moto.aws(&["autoscaling", "describe-auto-scaling-groups"]);
    assert!(arr(&groups["AutoScalingGroups"]).is_empty(), "Auto Scaling groups left: {groups}");
    let running = moto.aws(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=tag:infra:stack,Values={STACK}"),
        "Name=instance-state-name,Values=pending,running,shutting-down,stopping,stopped",
    ]);
    assert!(arr(&running["Reservations"]).is_empty(), "instances left: {running}");
}

/// Runs the binary with the Auto Scaling endpoint pointed elsewhere.
fn infra_with_autoscaling(moto: &Moto, dir: &Path, endpoint: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    common::aws_env(&mut cmd, &moto.endpoint);
    cmd.env("AWS_ENDPOINT_URL_AUTO_SCALING", endpoint);
    Run::from(cmd.output().unwrap())
}

/// Forwards HTTP requests to moto, except StartInstanceRefresh (absent from
/// moto), which it records and answers like AWS. One request per connection.
struct RefreshProxy {
    endpoint: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl RefreshProxy {
    fn start(upstream: u16) -> RefreshProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = c.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, upstream, &c);
                });
            }
        });
        RefreshProxy { endpoint: format!("http://127.0.0.1:{port}"), calls }
    }

    fn refreshes(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn read_request(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn serve(mut client: TcpStream, upstream: u16, calls: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client)? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    if text.contains("Action=StartInstanceRefresh") {
        calls.lock().unwrap().push(text);
        let xml = "<StartInstanceRefreshResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><StartInstanceRefreshResult><InstanceRefreshId>0b4ad3c1-5d9e-4a5c-9f64-2b7c1e8f6a10</InstanceRefreshId></StartInstanceRefreshResult><ResponseMetadata><RequestId>7c6e1a2b-0000-4000-8000-000000000001</RequestId></ResponseMetadata></StartInstanceRefreshResponse>";
        write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        )?;
        return client.flush();
    }
    // Forward, asking both sides to close after one exchange.
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    let mut out = String::new();
    for line in head.trim_end().lines() {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(resp.len());
    let mut rhead = String::new();
    for line in String::from_utf8_lossy(&resp[..split]).trim_end().lines() {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            rhead.push_str(line);
            rhead.push_str("\r\n");
        }
    }
    rhead.push_str("Connection: close\r\n\r\n");
    client.write_all(rhead.as_bytes())?;
    client.write_all(&resp[split..])?;
    client.flush()
}

/// Must show 1, 3 and 4 on the reference stack: what apply builds (read
/// back with the CLI), an empty plan after it, drift in max size found and
/// repaired, and a destroy that leaves nothing of the tier.
#[test]
fn reference_stack_builds_the_tier_repairs_drift_and_destroys() {
    let moto = Moto::start();
    let w = Workdir::reference();
    let applied = moto.infra(w.path(), &["apply", "--auto-approve"]);
    applied.ok();

    // Launch template: IMDSv2 required, encrypted root volume, tags for
    // instances and volumes, the user data file.
    let lts = launch_templates(&moto);
    assert_eq!(lts.len(), 1, "{lts:?}");
    assert_eq!(lts[0]["LaunchTemplateName"], "webapp-web");
    let lt_id = lts[0]["LaunchTemplateId"].as_str().unwrap().to_string();
    let v = template_version(&moto, &lt_id, "$Default");
    let data = &v["LaunchTemplateData"];
    assert_eq!(data["MetadataOptions"]["HttpTokens"], "required");
    // The image AWS publishes under the SSM parameter the file names.
    let param = moto.aws(&["ssm", "get-parameter", "--name", AL2023]);
    assert_eq!(data["ImageId"], param["Parameter"]["Value"]);
    assert_eq!(data["InstanceType"], "t3.micro");
    // No NAT: the instances sit in the public subnets and ask for a public
    // address on their interface (the subnets hand out none), with the web
    // group on the interface, not beside it (EC2 refuses both).
    let nics = arr(&data["NetworkInterfaces"]);
    assert_eq!(nics.len(), 1, "{data}");
    assert_eq!(nics[0]["DeviceIndex"], 0);
    assert_eq!(nics[0]["AssociatePublicIpAddress"], true);
    let web_sg = moto.ec2_by_stack("describe-security-groups", "SecurityGroups", STACK);
    let web_sg = web_sg.iter().find(|g| common::tag(g, "infra:address") == Some("network.sg.web")).unwrap();
    assert_eq!(nics[0]["Groups"], serde_json::json!([web_sg["GroupId"]]));
    assert!(data.get("SecurityGroupIds").is_none(), "{data}");
    let bdm = &data["BlockDeviceMappings"][0];
    assert_eq!(bdm["DeviceName"], "/dev/xvda");
    assert_eq!(bdm["Ebs"]["Encrypted"], true);
    let specs = arr(&data["TagSpecifications"]);
    for rt in ["instance", "volume"] {
        let s = specs.iter().find(|s| s["ResourceType"] == rt).unwrap_or_else(|| panic!("no {rt} tags in {specs:?}"));
        assert_eq!(common::tag(s, "Name"), Some("webapp-web"));
        assert_eq!(common::tag(s, "project"), Some("webapp"));
    }
    use base64::Engine;
    let user_data = base64::engine::general_purpose::STANDARD.decode(data["UserData"].as_str().unwrap()).unwrap();
    let user_data = String::from_utf8(user_data).unwrap();
    // The file, with the API's invoke URL and the site's domain as AWS
    // reports them (read with the CLI), and the shell's own ${VAR} untouched.
    let apis = arr(&moto.aws(&["apigateway", "get-rest-apis"])["items"]);
    assert_eq!(apis.len(), 1, "{apis:?}");
    let api_url = format!("https://{}.execute-api.us-east-1.amazonaws.com/prod", apis[0]["id"].as_str().unwrap());
    let dists = arr(&moto.aws(&["cloudfront", "list-distributions"])["DistributionList"]["Items"]);
    assert_eq!(dists.len(), 1, "{dists:?}");
    let domain = dists[0]["DomainName"].as_str().unwrap();
    let file = std::fs::read_to_string(common::repo_root().join("web/user-data.sh")).unwrap();
    assert!(file.contains("${backend.api.url}") && file.contains("${frontend.domain}"));
    assert_eq!(user_data, file.replace("${backend.api.url}", &api_url).replace("${frontend.domain}", domain));
    assert!(user_data.contains(&format!("API_URL='{api_url}'")), "{user_data}");
    assert!(user_data.contains("${API_URL}") && user_data.contains("${AZ}"));
    let syntax = std::process::Command::new("bash").args(["-n", "-c", &user_data]).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));

    // The instance profile: a role EC2 assumes, with Session Manager's core
    // permissions and nothing else (the file declares no tables or database).
    let profile_arn = data["IamInstanceProfile"]["Arn"].as_str().expect("no instance profile in the template");
    let profile =
        &moto.aws(&["iam", "get-instance-profile", "--instance-profile-name", INSTANCE_ROLE])["InstanceProfile"];
    assert_eq!(profile["Arn"], profile_arn);
    assert_eq!(profile["Roles"].as_array().unwrap().len(), 1, "{profile}");
    assert_eq!(profile["Roles"][0]["RoleName"], INSTANCE_ROLE);
    assert_eq!(instance_access(&moto), (vec!["AmazonSSMManagedInstanceCore".to_string()], Vec::new()));
    let role = &moto.aws(&["iam", "get-role", "--role-name", INSTANCE_ROLE])["Role"];
    let trust = role["AssumeRolePolicyDocument"].to_string();
    assert!(trust.contains("ec2.amazonaws.com") && !trust.contains("lambda"), "{trust}");

    // Load balancer: internet-facing, in the public subnets, security group alb.
    let public = subnets(&moto, "public");
    assert_eq!(public.len(), 2);
    let lbs = load_balancers(&moto);
    assert_eq!(lbs.len(), 1, "{lbs:?}");
    let lb = &lbs[0];
    assert_eq!(lb["LoadBalancerName"], "webapp-alb");
    assert_eq!(lb["Scheme"], "internet-facing");
    assert_eq!(lb["Type"], "application");
    let mut lb_subnets: Vec<String> =
        arr(&lb["AvailabilityZones"]).iter().map(|z| z["SubnetId"].as_str().unwrap().to_string()).collect();
    lb_subnets.sort();
    let mut want: Vec<String> = public.iter().map(|(id, _)| id.clone()).collect();
    want.sort();
    assert_eq!(lb_subnets, want);
    let alb_sg = moto
        .ec2_by_stack("describe-security-groups", "SecurityGroups", STACK)
        .into_iter()
        .find(|g| common::tag(g, "infra:address") == Some("network.sg.alb"))
        .unwrap();
    assert_eq!(lb["SecurityGroups"][0], alb_sg["GroupId"]);
    let lb_arn = lb["LoadBalancerArn"].as_str().unwrap().to_string();
    // The output users point their domain at.
    assert!(
        applied.stdout.contains(&format!("load_balancer_dns = {}", lb["DNSName"].as_str().unwrap())),
        "{}",
        applied.stdout
    );

    // Target group and listener 80 -> target group.
    let tgs = target_groups(&moto);
    assert_eq!(tgs.len(), 1, "{tgs:?}");
    let tg = &tgs[0];
    assert_eq!(tg["Port"], 80);
    assert_eq!(tg["Protocol"], "HTTP");
    assert_eq!(tg["HealthCheckPath"], "/health");
    assert_eq!(tg["Matcher"]["HttpCode"], "200-399");
    assert!(tg["TargetGroupName"].as_str().unwrap().len() <= 32);
    let tg_arn = tg["TargetGroupArn"].as_str().unwrap().to_string();
    let ls = listeners(&moto, &lb_arn);
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0]["Port"], 80);
    assert_eq!(ls[0]["DefaultActions"][0]["Type"], "forward");
    assert_eq!(ls[0]["DefaultActions"][0]["TargetGroupArn"], tg_arn.as_str());

    // The group: sizes as written, in both zones' subnets, attached to the
    // target group, on the template's default version.
    let g = group(&moto, "webapp-web").expect("no Auto Scaling group");
    assert_eq!(g["MinSize"], 2);
    assert_eq!(g["MaxSize"], 6);
    assert_eq!(g["DesiredCapacity"], 2);
    let zone_subnets: Vec<&str> = g["VPCZoneIdentifier"].as_str().unwrap().split(',').collect();
    let zones: std::collections::BTreeSet<&str> =
        public.iter().filter(|(id, _)| zone_subnets.contains(&id.as_str())).map(|(_, az)| az.as_str()).collect();
    assert!(zones.len() >= 2, "group spans {zones:?}");
    assert_eq!(g["TargetGroupARNs"][0], tg_arn.as_str());
    assert_eq!(g["LaunchTemplate"]["LaunchTemplateId"], lt_id.as_str());
    assert_eq!(g["LaunchTemplate"]["Version"], "1");
    assert_eq!(g["HealthCheckType"], "ELB");
    assert_eq!(g["HealthCheckGracePeriod"], 300);
    let instance_ids: Vec<String> =
        arr(&g["Instances"]).iter().map(|i| i["InstanceId"].as_str().unwrap().to_string()).collect();
    assert_eq!(instance_ids.len(), 2);
    // The template's tags reached the instances.
    let mut args = vec!["ec2", "describe-instances", "--instance-ids"];
    args.extend(instance_ids.iter().map(String::as_str));
    let described = moto.aws(&args);
    for r in arr(&described["Reservations"]) {
        for i in arr(&r["Instances"]) {
            assert_eq!(common::tag(&i, "Name"), Some("webapp-web"), "{i}");
            assert_eq!(common::tag(&i, "infra:stack"), Some(STACK), "{i}");
        }
    }

    // Target tracking policies: CPU, and requests per target on this pair.
    let policies = arr(
        &moto.aws(&["autoscaling", "describe-policies", "--auto-scaling-group-name", "webapp-web"])["ScalingPolicies"],
    );
    let metric = |m: &str| {
        policies
            .iter()
            .find(|p| p["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"] == m)
            .unwrap_or_else(|| panic!("no {m} policy in {policies:?}"))
            .clone()
    };
    let cpu = metric("ASGAverageCPUUtilization");
    assert_eq!(cpu["PolicyType"], "TargetTrackingScaling");
    assert_eq!(cpu["TargetTrackingConfiguration"]["TargetValue"], 50.0);
    let req = metric("ALBRequestCountPerTarget");
    let label = req["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["ResourceLabel"].as_str().unwrap();
    assert!(label.starts_with("app/webapp-alb/") && label.contains("/targetgroup/"), "{label}");

    // Nothing to do right after.
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Drift: max size changed behind the tool's back.
    moto.aws(&[
        "autoscaling",
        "update-auto-scaling-group",
        "--auto-scaling-group-name",
        "webapp-web",
        "--max-size",
        "9",
    ]);
    // The file pins desired: 2, so a moved desired capacity is drift too.
    moto.aws(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "webapp-web",
        "--desired-capacity",
        "3",
    ]);
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("compute.asg.web (autoscaling.group) will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("max_size: 9 → 6"), "{}", plan.stdout);
    assert!(plan.stdout.contains("desired_capacity: 3 → 2"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to change"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let g = group(&moto, "webapp-web").unwrap();
    assert_eq!(g["MaxSize"], 6);
    assert_eq!(g["DesiredCapacity"], 2);
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Scheme: a new load balancer (and target group: one serves a single
    // load balancer), each created before the old one goes, the listener
    // moved to them.
    w.edit("    certificate_arn: null", "    scheme: internal\n    certificate_arn: null");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    let out = &plan.stdout;
    for want in [
        "compute.lb (elbv2.load_balancer) will be replaced",
        "scheme: \"internet-facing\" → \"internal\"  # forces replacement",
        "its DNS name changes",
        "compute.tg.web (elbv2.target_group) will be replaced",
        "compute.listener.http (elbv2.listener) will be replaced",
        "compute.asg.web (autoscaling.group) will be updated in place",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let applied = moto.infra(w.path(), &["apply", "--auto-approve"]);
    applied.ok();
    let pos = |s: &str| applied.stdout.find(s).unwrap_or_else(|| panic!("no {s:?} in {}", applied.stdout));
    assert!(pos("compute.lb: created") < pos("compute.lb: destroying"));
    assert!(pos("compute.tg.web: created") < pos("compute.tg.web: destroying"));
    assert!(pos("compute.listener.http: created") < pos("compute.tg.web: destroying"));
    assert!(pos("compute.asg.web: updated") < pos("compute.tg.web: destroying"));
    assert!(pos("compute.listener.http: destroyed") < pos("compute.lb: destroying"));
    let lbs = load_balancers(&moto);
    assert_eq!(lbs.len(), 1, "the old load balancer is gone: {lbs:?}");
    assert_eq!(lbs[0]["LoadBalancerName"], "webapp-alb-int");
    assert_eq!(lbs[0]["Scheme"], "internal");
    let mut lb_subnets: Vec<String> =
        arr(&lbs[0]["AvailabilityZones"]).iter().map(|z| z["SubnetId"].as_str().unwrap().to_string()).collect();
    lb_subnets.sort();
    let mut private: Vec<String> = subnets(&moto, "private").into_iter().map(|(id, _)| id).collect();
    private.sort();
    assert_eq!(lb_subnets, private);
    let tgs = target_groups(&moto);
    assert_eq!(tgs.len(), 1, "the old target group is gone: {tgs:?}");
    let tg_arn = tgs[0]["TargetGroupArn"].as_str().unwrap().to_string();
    assert!(tgs[0]["TargetGroupName"].as_str().unwrap().starts_with("i-webapp-web-"));
    let new_lb = lbs[0]["LoadBalancerArn"].as_str().unwrap();
    assert_eq!(listeners(&moto, new_lb)[0]["DefaultActions"][0]["TargetGroupArn"], tg_arn.as_str());
    let g = group(&moto, "webapp-web").unwrap();
    assert_eq!(g["TargetGroupARNs"], serde_json::json!([tg_arn]));
    let policies = moto.aws(&["autoscaling", "describe-policies", "--auto-scaling-group-name", "webapp-web"]);
    assert!(policies.to_string().contains("app/webapp-alb-int/"), "{policies}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Declared access: exactly the table (and its indexes) and the
    // database's secret, nothing else; the running instances get it through
    // their role (no new template version, no refresh).
    w.edit("      # tables: [orders]", "      tables: [orders]");
    w.edit("      # database: true", "      database: true");
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let (managed, inline) = instance_access(&moto);
    assert_eq!(managed, vec!["AmazonSSMManagedInstanceCore".to_string()]);
    assert_eq!(inline, vec!["database".to_string(), "tables".to_string()]);
    let doc = |name: &str| {
        moto.aws(&["iam", "get-role-policy", "--role-name", INSTANCE_ROLE, "--policy-name", name])["PolicyDocument"]
            .clone()
    };
    let table_arn = moto.aws(&["dynamodb", "describe-table", "--table-name", "webapp-orders"])["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_string();
    let tables = doc("tables");
    assert_eq!(tables["Statement"].as_array().unwrap().len(), 1, "{tables}");
    assert_eq!(tables["Statement"][0]["Resource"], serde_json::json!([table_arn, format!("{table_arn}/index/*")]));
    assert!(!tables.to_string().contains("dynamodb:*"), "{tables}");
    let secret_arn = moto.aws(&["rds", "describe-db-instances"])["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
        .as_str()
        .unwrap()
        .to_string();
    let secret = doc("database");
    assert_eq!(secret["Statement"][0]["Resource"], serde_json::json!([secret_arn]));
    assert_eq!(
        secret["Statement"][0]["Action"],
        serde_json::json!(["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"])
    );
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Destroy: nothing of the tier is left.
    moto.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    assert_no_compute(&moto);
    let profiles = moto.aws(&["iam", "list-instance-profiles"]);
    assert!(arr(&profiles["InstanceProfiles"]).is_empty(), "{profiles}");
    let after = moto.aws(&args);
    for r in arr(&after["Reservations"]) {
        for i in arr(&r["Instances"]) {
            assert_eq!(i["State"]["Name"], "terminated", "{i}");
        }
    }
    assert!(moto.ec2_by_stack("describe-security-groups", "SecurityGroups", STACK).is_empty());
}

const SMALL: &str = r#"stack: webapp
region: us-east-1
network:
  cidr: 10.0.0.0/16
  security_groups:
    web:
      ingress:
        - { port: 80, to_port: 8080, from: [alb] }
compute:
  groups:
    web:
      ami: { name: "amzn2-ami-hvm-*-x86_64-gp2", owners: [amazon] }
      instance_type: t3.micro
      user_data: |
        #!/bin/sh
        echo v1
      min: 1
      max: 6
      scaling: { cpu_target: 60 }
      refresh: { min_healthy_percentage: 75 }
"#;

/// Must show 2: an instance type change plans and applies a new template
/// version and an instance refresh; a max change is an in-place update.
/// Also: AMI by name at plan time, and a target group port change planned
/// as a replacement, created before the old one goes, with the listener and
/// the group moved to it.
#[test]
fn changes_roll_the_group_update_in_place_and_replace_the_target_group() {
    let moto = Moto::start();
    let proxy = RefreshProxy::start(moto.port);
    let w = Workdir::with_stack(SMALL);
    let run = |args: &[&str]| infra_with_autoscaling(&moto, w.path(), &proxy.endpoint, args);
    run(&["apply", "--auto-approve"]).ok();

    // The name filter resolved to the newest matching Amazon image.
    let images = moto.aws(&[
        "ec2",
        "describe-images",
        "--owners",
        "amazon",
        "--filters",
        "Name=name,Values=amzn2-ami-hvm-*-x86_64-gp2",
    ]);
    let newest = arr(&images["Images"])
        .into_iter()
        .max_by_key(|i| {
            (i["CreationDate"].as_str().unwrap_or("").to_string(), i["Name"].as_str().unwrap_or("").to_string())
        })
        .unwrap();
    let lt_id = launch_templates(&moto)[0]["LaunchTemplateId"].as_str().unwrap().to_string();
    let v1 = template_version(&moto, &lt_id, "$Default");
    assert_eq!(v1["LaunchTemplateData"]["ImageId"], newest["ImageId"]);
    let g = group(&moto, "webapp-web").unwrap();
    assert_eq!(g["DesiredCapacity"], 1, "not pinned: starts at min");
    run(&["plan", "--detailed-exitcode"]).code(0);
    // Desired capacity moved at run time (as a scaling policy does) is not
    // drift: the file does not pin it.
    moto.aws(&[
        "autoscaling",
        "set-desired-capacity",
        "--auto-scaling-group-name",
        "webapp-web",
        "--desired-capacity",
        "3",
    ]);
    run(&["plan", "--detailed-exitcode"]).code(0);

    // Instance type: new template version + instance refresh, in the plan.
    w.edit("instance_type: t3.micro", "instance_type: t3.small");
    let plan = run(&["plan", "--detailed-exitcode"]);
    plan.code(2);
    let out = &plan.stdout;
    assert!(out.contains("compute.lt.web (ec2.launch_template) will be updated in place"), "{out}");
    assert!(out.contains("instance_type: \"t3.micro\" → \"t3.small\""), "{out}");
    assert!(out.contains("creates version 2 of the launch template and makes it the default"), "{out}");
    assert!(out.contains("compute.asg.web (autoscaling.group) will be updated in place"), "{out}");
    assert!(out.contains("instances.instance_type"), "{out}");
    assert!(out.contains("starts an instance refresh"), "{out}");
    assert!(out.contains("keeping at least 75% in service"), "{out}");
    assert!(out.contains("0 to add, 2 to change, 0 to replace, 0 to destroy"), "{out}");
    assert!(proxy.refreshes().is_empty());
    run(&["apply", "--auto-approve"]).ok();

    let lt = &launch_templates(&moto)[0];
    assert_eq!(lt["DefaultVersionNumber"], 2);
    let v2 = template_version(&moto, &lt_id, "2");
    assert_eq!(v2["LaunchTemplateData"]["InstanceType"], "t3.small");
    assert_eq!(v2["DefaultVersion"], true);
    // A full version, not a diff: IMDSv2 and encryption carried over.
    assert_eq!(v2["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"], "required");
    assert_eq!(v2["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["Encrypted"], true);
    let g = group(&moto, "webapp-web").unwrap();
    assert_eq!(g["LaunchTemplate"]["Version"], "2");
    let refreshes = proxy.refreshes();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    let r = &refreshes[0];
    assert!(r.contains("AutoScalingGroupName=webapp-web"), "{r}");
    assert!(r.contains("Strategy=Rolling"), "{r}");
    assert!(r.contains("Preferences.MinHealthyPercentage=75"), "{r}");
    run(&["plan", "--detailed-exitcode"]).code(0);

    // Max: in place, no new version, no refresh.
    w.edit("max: 6", "max: 8");
    let plan = run(&["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("max_size: 6 → 8"), "{}", plan.stdout);
    assert!(plan.stdout.contains("0 to add, 1 to change, 0 to replace, 0 to destroy"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("instance refresh"), "{}", plan.stdout);
    run(&["apply", "--auto-approve"]).ok();
    assert_eq!(group(&moto, "webapp-web").unwrap()["MaxSize"], 8);
    assert_eq!(proxy.refreshes().len(), 1);
    run(&["plan", "--detailed-exitcode"]).code(0);

    // Target group port: replaced, new one first, listener and group moved.
    let old_tg = target_groups(&moto)[0]["TargetGroupArn"].as_str().unwrap().to_string();
    let w2 = &w;
    w2.edit("      min: 1\n", "      min: 1\n      port: 8080\n");
    let plan = run(&["plan", "--detailed-exitcode"]);
    plan.code(2);
    let out = &plan.stdout;
    assert!(out.contains("compute.tg.web (elbv2.target_group) will be replaced"), "{out}");
    assert!(out.contains("port: 80 → 8080  # forces replacement"), "{out}");
    assert!(out.contains("compute.listener.http (elbv2.listener) will be updated in place"), "{out}");
    run(&["apply", "--auto-approve"]).ok();
    let tgs = target_groups(&moto);
    assert_eq!(tgs.len(), 1, "the old target group is gone: {tgs:?}");
    assert_eq!(tgs[0]["Port"], 8080);
    let new_tg = tgs[0]["TargetGroupArn"].as_str().unwrap();
    assert_ne!(new_tg, old_tg);
    let lb_arn = load_balancers(&moto)[0]["LoadBalancerArn"].as_str().unwrap().to_string();
    assert_eq!(listeners(&moto, &lb_arn)[0]["DefaultActions"][0]["TargetGroupArn"], new_tg);
    assert_eq!(group(&moto, "webapp-web").unwrap()["TargetGroupARNs"], serde_json::json!([new_tg]));
    run(&["plan", "--detailed-exitcode"]).code(0);

    // A certificate and a second group routed by path: HTTPS on 443 with a
    // rule, and 80 redirecting to it.
    let cert = moto.aws(&["acm", "request-certificate", "--domain-name", "www.example.com"]);
    let cert_arn = cert["CertificateArn"].as_str().unwrap().to_string();
    w.edit("compute:\n", &format!("compute:\n  load_balancer:\n    certificate_arn: {cert_arn}\n"));
    let yaml = w.read("stack.yaml");
    w.write(
        "stack.yaml",
        &format!("{yaml}    api:\n      ami: ami-04681a1dbd79675a5\n      instance_type: t3.micro\n      min: 1\n      max: 2\n      path_patterns: [\"/api/*\"]\n"),
    );
    let plan = run(&["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("compute.listener.https (elbv2.listener) will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("default_action.type: \"forward\" → \"redirect\""), "{}", plan.stdout);
    run(&["apply", "--auto-approve"]).ok();
    let api_tg = target_groups(&moto)
        .into_iter()
        .find(|t| t["TargetGroupName"].as_str().unwrap().starts_with("webapp-api-"))
        .expect("no api target group");
    let api_tg = api_tg["TargetGroupArn"].as_str().unwrap().to_string();
    let ls = listeners(&moto, &lb_arn);
    assert_eq!(ls.len(), 2, "{ls:?}");
    let http = ls.iter().find(|l| l["Port"] == 80).unwrap();
    assert_eq!(http["DefaultActions"][0]["Type"], "redirect");
    assert_eq!(http["DefaultActions"][0]["RedirectConfig"]["Protocol"], "HTTPS");
    assert_eq!(http["DefaultActions"][0]["RedirectConfig"]["Port"], "443");
    let https = ls.iter().find(|l| l["Port"] == 443).unwrap();
    assert_eq!(https["Protocol"], "HTTPS");
    assert_eq!(https["Certificates"][0]["CertificateArn"], cert_arn.as_str());
    assert_eq!(https["DefaultActions"][0]["TargetGroupArn"], new_tg);
    let rules =
        arr(&moto.aws(&["elbv2", "describe-rules", "--listener-arn", https["ListenerArn"].as_str().unwrap()])["Rules"]);
    let rule = rules.iter().find(|r| r["IsDefault"] != true).unwrap_or_else(|| panic!("no rule in {rules:?}"));
    assert_eq!(rule["Priority"], "10");
    assert_eq!(rule["Actions"][0]["TargetGroupArn"], api_tg.as_str());
    assert!(rule["Conditions"].to_string().contains("/api/*"), "{rule}");
    let rule_tags = moto.aws(&["elbv2", "describe-tags", "--resource-arns", rule["RuleArn"].as_str().unwrap()]);
    assert_eq!(common::tag(&rule_tags["TagDescriptions"][0], "infra:stack"), Some(STACK), "{rule_tags}");
    assert_eq!(group(&moto, "webapp-api").unwrap()["TargetGroupARNs"], serde_json::json!([api_tg]));
    run(&["plan", "--detailed-exitcode"]).code(0);

    run(&["destroy", "--auto-approve"]).ok();
    assert_no_compute(&moto);
}

/// What moto would accept and AWS would not is refused before any AWS call,
/// with the YAML path and what to do.
#[test]
fn validation_catches_mistakes_before_any_call() {
    let bad = r#"stack: webapp
region: us-east-1
network:
  cidr: 10.0.0.0/16
compute:
  load_balancer:
    certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/abc
  groups:
    web:
      ami: ami-nothex
      instance_type: T3.Micro
      min: 3
      max: 2
      port: 8080
      health_check: { timeout: 40, interval: 30, matcher: "600" }
    api:
      ami: { name: "x-*", owners: [] }
      instance_type: t3.micro
      min: 1
      max: 2
"#;
    let w = Workdir::with_stack(bad);
    // No endpoint at all: validation must not need one.
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .arg("validate")
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "compute.load_balancer.certificate_arn",
        "own region",
        "compute.groups.web.ami",
        "compute.groups.web.instance_type",
        "compute.groups.web.min: min 3 is above max 2",
        "does not open port 8080 to the load balancer",
        "compute.groups.web.health_check.timeout",
        "compute.groups.web.health_check.matcher",
        "compute.groups.api.ami.owners",
        "all take every request",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

/// Issue 15: the image by the SSM parameter AWS publishes its latest
/// Amazon Linux under, read at plan time; the launch template boots exactly
/// the image the parameter names (read back with the AWS CLI), and a
/// parameter that does not exist fails the plan, naming it.
#[test]
fn the_image_comes_from_the_ssm_public_parameter() {
    const PARAM: &str = AL2023;
    let moto = Moto::start();
    let proxy = RefreshProxy::start(moto.port);
    let w = Workdir::with_stack(&SMALL.replace(
        r#"ami: { name: "amzn2-ami-hvm-*-x86_64-gp2", owners: [amazon] }"#,
        &format!("ami: {{ ssm: {PARAM} }}"),
    ));
    let run = |args: &[&str]| infra_with_autoscaling(&moto, w.path(), &proxy.endpoint, args);
    run(&["apply", "--auto-approve"]).ok();
    let param = moto.aws(&["ssm", "get-parameter", "--name", PARAM]);
    let image = param["Parameter"]["Value"].as_str().unwrap().to_string();
    assert!(image.starts_with("ami-"), "{param}");
    let lt_id = launch_templates(&moto)[0]["LaunchTemplateId"].as_str().unwrap().to_string();
    assert_eq!(template_version(&moto, &lt_id, "$Default")["LaunchTemplateData"]["ImageId"], image.as_str());
    run(&["plan", "--detailed-exitcode"]).code(0);

    w.edit(PARAM, "/aws/service/ami-amazon-linux-latest/no-such-image");
    let plan = run(&["plan"]);
    plan.code(1);
    assert!(
        plan.stderr.contains("no SSM parameter /aws/service/ami-amazon-linux-latest/no-such-image"),
        "{}",
        plan.stderr
    );
}
