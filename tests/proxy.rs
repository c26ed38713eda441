//! The loopback proxy (`tools/proxy.rs`) between the AWS CLI and moto:
//! counting by service and action, added latency, each fault kind in the
//! protocol's own error shape, the same faults for the same seed, and AWS's
//! clock (`--aws-clock`) on top of the instant emulator.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Moto, Proxy, ProxyOpts, http, proxy_binary};
use serde_json::Value;

fn count(stats: &Value, key: &str) -> u64 {
    stats["by_service_action"][key].as_u64().unwrap_or(0)
}

fn vpc_count(m: &Moto) -> usize {
    m.aws(&["ec2", "describe-vpcs"])["Vpcs"].as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn counts_calls_by_service_and_action_across_protocols() {
    let m = Moto::start();
    let p = Proxy::start(&m, ProxyOpts::default());
    // One call per protocol: ec2Query, awsQuery, awsJson, S3, restJson, restXml.
    for args in [
        &["ec2", "describe-vpcs"][..],
        &["sts", "get-caller-identity"],
        &["dynamodb", "list-tables"],
        &["s3api", "list-buckets"],
        &["lambda", "list-functions"],
        &["cloudfront", "list-distributions"],
        &["ec2", "describe-vpcs"],
    ] {
        p.aws_once(args).ok();
    }
    let s = p.stats();
    assert_eq!(s["calls"], 7, "{s:#}");
    assert_eq!(s["forwarded"], 7, "{s:#}");
    assert_eq!(count(&s, "ec2.DescribeVpcs"), 2, "{s:#}");
    assert_eq!(count(&s, "sts.GetCallerIdentity"), 1, "{s:#}");
    assert_eq!(count(&s, "dynamodb.ListTables"), 1, "{s:#}");
    assert_eq!(count(&s, "s3.GET /"), 1, "{s:#}");
    assert_eq!(count(&s, "lambda.GET /2015-03-31/functions"), 1, "{s:#}");
    assert_eq!(count(&s, "cloudfront.GET /2020-05-31/distribution"), 1, "{s:#}");
    let upstream = s["upstream_seconds_total"].as_f64().unwrap();
    let busy = s["upstream_busy_seconds"].as_f64().unwrap();
    assert!(upstream > 0.0 && busy > 0.0 && busy <= upstream + 1e-6, "{s:#}");
    assert!(s["faults_injected"].as_object().unwrap().is_empty(), "{s:#}");

    // The emulator's control API is forwarded but not counted.
    http(p.port, "POST", "/moto-api/reset");
    assert_eq!(p.stats()["calls"], 7);

    p.reset();
    let s = p.stats();
    assert_eq!(s["calls"], 0, "{s:#}");
    assert_eq!(s["upstream_seconds_total"], 0.0, "{s:#}");
    assert!(s["by_service_action"].as_object().unwrap().is_empty());
}

#[test]
fn latency_is_added_to_every_call_but_not_to_the_upstream_time() {
    let m = Moto::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let p =
        Proxy::start(&m, ProxyOpts { latency_ms: 1500, log: Some(log.path().to_path_buf()), ..ProxyOpts::default() });
    let t = Instant::now();
    p.aws_once(&["sts", "get-caller-identity"]).ok();
    let elapsed = t.elapsed().as_secs_f64();
    assert!(elapsed >= 1.5, "the call took {elapsed:.2}s, under the latency");
    let s = p.stats();
    let upstream = s["upstream_seconds_total"].as_f64().unwrap();
    assert!(upstream < 1.5, "latency counted as upstream time: {s:#}");
    // The log has the call, its duration including the latency.
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let d = lines[0]["end"].as_f64().unwrap() - lines[0]["start"].as_f64().unwrap();
    assert!((1.5..1.5 + 10.0).contains(&d), "{text}");
    assert_eq!(lines[0]["action"], "GetCallerIdentity");
    assert_eq!(lines[0]["status"], 200);
}

/// Every call gets `fault`: the CLI sees the protocol's error code.
fn only(m: &Moto, fault: &str) -> Proxy {
    Proxy::start(m, ProxyOpts { fault_rate: 1.0, seed: 1, faults: fault.into(), ..ProxyOpts::default() })
}

fn fails_with(p: &Proxy, args: &[&str], code: &str) {
    fails_with_any(p, args, &[code]);
}

fn fails_with_any(p: &Proxy, args: &[&str], codes: &[&str]) {
    let r = p.aws_once(args);
    assert_ne!(r.code, 0, "{args:?} succeeded through a faulty proxy");
    assert!(
        codes.iter().any(|c| r.stderr.contains(&format!("({c})"))),
        "{args:?}: expected error code {codes:?}, got:\n{}",
        r.stderr
    );
}

#[test]
fn throttling_has_each_protocols_shape_and_never_reaches_the_emulator() {
    let m = Moto::start();
    let p = only(&m, "throttle");
    fails_with(&p, &["ec2", "describe-vpcs"], "RequestLimitExceeded");
    fails_with(&p, &["sts", "get-caller-identity"], "Throttling");
    fails_with(&p, &["dynamodb", "list-tables"], "ThrottlingException");
    fails_with(&p, &["s3api", "list-buckets"], "SlowDown");
    fails_with(&p, &["lambda", "list-functions"], "TooManyRequestsException");
    fails_with(&p, &["cloudfront", "list-distributions"], "Throttling");
    let s = p.stats();
    assert_eq!(s["calls"], 6, "{s:#}");
    assert_eq!(s["faults_injected"]["throttle"], 6, "{s:#}");
    assert_eq!(s["forwarded"], 0, "{s:#}");
    // Never a fault on the emulator's control API.
    http(p.port, "POST", "/moto-api/reset");
    assert_eq!(p.stats()["faults_injected"]["throttle"], 6);
}

#[test]
fn error_before_is_a_5xx_the_emulator_never_saw() {
    let m = Moto::start();
    let before = vpc_count(&m);
    let p = only(&m, "error_before");
    let codes = ["InternalError", "ServiceUnavailable"];
    fails_with_any(&p, &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"], &codes);
    fails_with_any(&p, &["dynamodb", "list-tables"], &codes);
    fails_with_any(&p, &["s3api", "list-buckets"], &codes);
    assert_eq!(vpc_count(&m), before, "the emulator saw the call");
    let s = p.stats();
    assert_eq!(s["faults_injected"]["error_before"], 3, "{s:#}");
    assert_eq!(s["forwarded"], 0, "{s:#}");
}

#[test]
fn error_after_lets_the_emulator_act_and_loses_the_answer() {
    let m = Moto::start();
    let before = vpc_count(&m);
    let p = only(&m, "error_after");
    fails_with(&p, &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"], "InternalError");
    assert_eq!(vpc_count(&m), before + 1, "the emulator did not act on the call");
    let s = p.stats();
    assert_eq!(s["faults_injected"]["error_after"], 1, "{s:#}");
    assert_eq!(s["forwarded"], 1, "{s:#}");
    assert_eq!(count(&s, "ec2.CreateVpc"), 1, "{s:#}");
}

/// The outcome of each of `n` calls: "ok" or the error code.
fn outcomes(p: &Proxy, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = p.aws_once(&["sts", "get-caller-identity"]);
            if r.code == 0 {
                "ok".to_string()
            } else {
                r.stderr
                    .split_once("An error occurred (")
                    .and_then(|(_, rest)| rest.split_once(')'))
                    .map(|(code, _)| code.to_string())
                    .unwrap_or_else(|| format!("unparsed: {}", r.stderr))
            }
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let m = Moto::start();
    let opts = |seed| ProxyOpts {
        fault_rate: 0.5,
        seed,
        faults: "throttle,error_before,error_after".into(),
        ..ProxyOpts::default()
    };
    let a = Proxy::start(&m, opts(7));
    let b = Proxy::start(&m, opts(7));
    let c = Proxy::start(&m, opts(8));
    let (oa, ob, oc) = (outcomes(&a, 8), outcomes(&b, 8), outcomes(&c, 8));
    assert_eq!(oa, ob, "same seed, different faults");
    assert_ne!(oa, oc, "seeds 7 and 8 gave the same faults: {oa:?}");
    assert!(oa.iter().any(|o| o == "ok"), "{oa:?}");
    assert!(oa.iter().any(|o| o != "ok"), "{oa:?}");
    assert_eq!(a.stats()["faults_injected"], b.stats()["faults_injected"]);
    let faults = a.stats()["faults_injected"].clone();
    let injected: u64 = faults.as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(injected, oa.iter().filter(|o| *o != "ok").count() as u64, "{faults}");
}

/// The proxy with `--aws-clock FACTOR` in front of `m` (ProxyOpts has no
/// clock: spawned here).
struct ClockProxy {
    child: std::process::Child,
    endpoint: String,
    port: u16,
}

impl ClockProxy {
    fn start(m: &Moto, factor: &str) -> ClockProxy {
        let mut child = Command::new(proxy_binary())
            .args(["--listen", "127.0.0.1:0", "--upstream", &m.endpoint, "--aws-clock", factor])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the proxy");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("proxy printed {line:?}"));
        ClockProxy { child, endpoint: format!("http://127.0.0.1:{port}"), port }
    }

    /// The AWS CLI through the proxy, retries off: Ok(JSON) or Err(stderr).
    fn aws(&self, m: &Moto, args: &[&str]) -> Result<Value, String> {
        let mut cmd = Command::new("aws");
        cmd.args(args).args(["--output", "json", "--endpoint-url", &self.endpoint]);
        m.env_for(&mut cmd);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint).env("AWS_MAX_ATTEMPTS", "1").env("AWS_RETRY_MODE", "standard");
        let out = cmd.output().expect("aws CLI not found");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }
}

impl Drop for ClockProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Multi-AZ database through the clock at 1/60: `creating` (12 s, no
/// endpoint), `backing-up` (3 s), `available`; ModifyDBInstance refused until
/// then; deleted: still listed `deleting` (6 s), its security group held,
/// then DBInstanceNotFound. Read with the AWS CLI, as a person would.
#[test]
fn the_aws_clock_walks_a_database_through_the_states_aws_reports() {
    let m = Moto::start();
    let p = ClockProxy::start(&m, "1/60");
    let vpc =
        m.aws(&["ec2", "create-vpc", "--cidr-block", "10.9.0.0/16"])["Vpc"]["VpcId"].as_str().unwrap().to_string();
    let sg = m.aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "db",
        "--description",
        "db",
        "--vpc-id",
        &vpc,
    ])["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    let t0 = Instant::now();
    let created = p
        .aws(
            &m,
            &[
                "rds",
                "create-db-instance",
                "--db-instance-identifier",
                "clockdb",
                "--engine",
                "postgres",
                "--db-instance-class",
                "db.t3.micro",
                "--allocated-storage",
                "20",
                "--master-username",
                "app",
                "--master-user-password",
                "correct-horse-9",
                "--multi-az",
                "--vpc-security-group-ids",
                &sg,
            ],
        )
        .unwrap();
    assert_eq!(created["DBInstance"]["DBInstanceStatus"], "creating", "{created:#}");
    assert!(created["DBInstance"].get("Endpoint").is_none(), "no endpoint while creating: {created:#}");
    // moto itself says available at once.
    assert_eq!(
        m.aws(&["rds", "describe-db-instances", "--db-instance-identifier", "clockdb"])["DBInstances"][0]["DBInstanceStatus"],
        "available"
    );
    let modify = [
        "rds",
        "modify-db-instance",
        "--db-instance-identifier",
        "clockdb",
        "--backup-retention-period",
        "3",
        "--apply-immediately",
    ];
    let err = p.aws(&m, &modify).unwrap_err();
    assert!(err.contains("(InvalidDBInstanceState)"), "{err}");

    // Poll as a tool would: the states in order, each for about its time.
    let mut seen: Vec<(String, f64)> = vec![];
    let describe = ["rds", "describe-db-instances", "--db-instance-identifier", "clockdb"];
    loop {
        let v = p.aws(&m, &describe).unwrap();
        let state = v["DBInstances"][0]["DBInstanceStatus"].as_str().unwrap().to_string();
        let t = t0.elapsed().as_secs_f64();
        if seen.last().is_none_or(|(s, _)| *s != state) {
            seen.push((state.clone(), t));
        }
        if state == "available" {
            assert!(v["DBInstances"][0]["Endpoint"]["Address"].is_string(), "{v:#}");
            break;
        }
        assert!(t < 60.0, "never available: {seen:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let states: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(states, ["creating", "backing-up", "available"], "{seen:?}");
    let (backing_up, available) = (seen[1].1, seen[2].1);
    assert!((11.0..20.0).contains(&backing_up), "backing-up at {backing_up:.1}s, ~12 s expected: {seen:?}");
    assert!((14.5..25.0).contains(&available), "available at {available:.1}s, ~15 s expected: {seen:?}");
    let modified = p.aws(&m, &modify).unwrap();
    assert_eq!(modified["DBInstance"]["DBInstanceStatus"], "modifying", "{modified:#}");

    // Deleted: still there, deleting, holding its security group; then gone.
    let t1 = Instant::now();
    let deleted = p
        .aws(&m, &["rds", "delete-db-instance", "--db-instance-identifier", "clockdb", "--skip-final-snapshot"])
        .unwrap();
    assert_eq!(deleted["DBInstance"]["DBInstanceStatus"], "deleting", "{deleted:#}");
    let v = p.aws(&m, &describe).unwrap();
    assert_eq!(v["DBInstances"][0]["DBInstanceStatus"], "deleting", "{v:#}");
    let err = p.aws(&m, &["ec2", "delete-security-group", "--group-id", &sg]).unwrap_err();
    assert!(err.contains("(DependencyViolation)"), "{err}");
    let clock: Value = serde_json::from_str(&http(p.port, "GET", "/__proxy/clock")).unwrap();
    assert_eq!(clock["rds.db_instance"]["clockdb"], "deleting", "{clock:#}");
    loop {
        match p.aws(&m, &describe) {
            Ok(v) => assert_eq!(v["DBInstances"][0]["DBInstanceStatus"], "deleting", "{v:#}"),
            Err(e) => {
                assert!(e.contains("(DBInstanceNotFound)"), "{e}");
                break;
            }
        }
        assert!(t1.elapsed().as_secs_f64() < 30.0, "never gone");
        std::thread::sleep(Duration::from_millis(300));
    }
    let gone = t1.elapsed().as_secs_f64();
    assert!(gone >= 5.5, "gone after {gone:.1}s, 6 s expected");
    p.aws(&m, &["ec2", "delete-security-group", "--group-id", &sg]).unwrap();
}
