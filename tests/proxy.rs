//! The loopback proxy (`tools/proxy.rs`) between the AWS CLI and moto:
//! counting by service and action, added latency, each fault kind in the
//! protocol's own error shape, and the same faults for the same seed.

mod common;

use std::time::Instant;

use common::{Moto, Proxy, ProxyOpts, http};
use serde_json::Value;

fn count(stats: &Value, key: &str) -> u64 {
    stats["by_service_action"][key].as_u64().unwrap_or(0)
}

fn vpc_count(m: &Moto) -> usize {
    m.aws(&["ec2", "describe-vpcs"])["Vpcs"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
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
    assert_eq!(
        count(&s, "cloudfront.GET /2020-05-31/distribution"),
        1,
        "{s:#}"
    );
    let upstream = s["upstream_seconds_total"].as_f64().unwrap();
    let busy = s["upstream_busy_seconds"].as_f64().unwrap();
    assert!(
        upstream > 0.0 && busy > 0.0 && busy <= upstream + 1e-6,
        "{s:#}"
    );
    assert!(
        s["faults_injected"].as_object().unwrap().is_empty(),
        "{s:#}"
    );

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
    let p = Proxy::start(
        &m,
        ProxyOpts {
            latency_ms: 1500,
            log: Some(log.path().to_path_buf()),
            ..ProxyOpts::default()
        },
    );
    let t = Instant::now();
    p.aws_once(&["sts", "get-caller-identity"]).ok();
    let elapsed = t.elapsed().as_secs_f64();
    assert!(
        elapsed >= 1.5,
        "the call took {elapsed:.2}s, under the latency"
    );
    let s = p.stats();
    let upstream = s["upstream_seconds_total"].as_f64().unwrap();
    assert!(upstream < 1.5, "latency counted as upstream time: {s:#}");
    // The log has the call, its duration including the latency.
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let d = lines[0]["end"].as_f64().unwrap() - lines[0]["start"].as_f64().unwrap();
    assert!((1.5..1.5 + 10.0).contains(&d), "{text}");
    assert_eq!(lines[0]["action"], "GetCallerIdentity");
    assert_eq!(lines[0]["status"], 200);
}

/// Every call gets `fault`: the CLI sees the protocol's error code.
fn only(m: &Moto, fault: &str) -> Proxy {
    Proxy::start(
        m,
        ProxyOpts {
            fault_rate: 1.0,
            seed: 1,
            faults: fault.into(),
            ..ProxyOpts::default()
        },
    )
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
    fails_with(
        &p,
        &["lambda", "list-functions"],
        "TooManyRequestsException",
    );
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
    fails_with_any(
        &p,
        &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"],
        &codes,
    );
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
    fails_with(
        &p,
        &["ec2", "create-vpc", "--cidr-block", "10.1.0.0/16"],
        "InternalError",
    );
    assert_eq!(
        vpc_count(&m),
        before + 1,
        "the emulator did not act on the call"
    );
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
    let injected: u64 = faults
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        injected,
        oa.iter().filter(|o| *o != "ok").count() as u64,
        "{faults}"
    );
}
