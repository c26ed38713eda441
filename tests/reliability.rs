//! Issue 8's harness on the reference stack: applies and destroys through a
//! proxy that fails 10 % of the calls (throttling, 5xx before the emulator
//! acts, 5xx after it acted), and runs killed with SIGKILL at random moments
//! then rerun. Each time, an independent census with the AWS CLI (directly
//! against moto, never through the proxy) must match a clean apply's exactly
//! (nothing made twice, nothing missing), and a destroy must leave nothing.
//!
//! `INFRA_KILL_POINTS=N` lowers the number of kill points for local runs;
//! CI runs the full 20.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::census::{Census, Scope, census, plan_kinds};
use common::{Moto, Proxy, ProxyOpts, Workdir};
use serde_json::Value;

/// The reference stack's name and the census scope of its kinds, from the
/// plan on an empty account (every resource is a create).
fn describe_stack(m: &Moto, w: &Workdir) -> (String, Scope, BTreeSet<String>) {
    let plan = m.infra(w.path(), &["plan", "--json"]);
    plan.ok();
    let v: Value = serde_json::from_str(&plan.stdout).unwrap();
    let stack = v["stack"].as_str().unwrap().to_string();
    let kinds = plan_kinds(&plan.stdout);
    let addresses =
        v["changes"].as_array().unwrap().iter().filter_map(|c| c["address"].as_str().map(str::to_string)).collect();
    let scope = Scope::from_kinds(kinds.iter().map(String::as_str));
    (stack, scope, addresses)
}

fn assert_same(what: &str, got: &Census, want: &Census) {
    let d = got.diff(want);
    assert!(
        d.is_empty(),
        "{what}: the AWS CLI census differs from the expected one (got vs expected):\n  {}",
        d.join("\n  ")
    );
}

/// A clean apply's census, checked for plausibility: every address the
/// census can see is there once, and nothing else of the stack.
/// Returns it with the apply's duration.
fn clean_apply(m: &Moto, w: &Workdir, stack: &str, scope: &Scope, addresses: &BTreeSet<String>) -> (Census, Duration) {
    let t = Instant::now();
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let took = t.elapsed();
    let clean = census(m, stack, scope);
    let tagged = clean.tagged();
    assert!(!tagged.is_empty(), "a clean apply made nothing the census sees");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &tagged {
        let addr = t.split_once(' ').map(|(_, a)| a).unwrap_or(t);
        *seen.entry(addr).or_default() += 1;
    }
    for (addr, _) in seen.iter() {
        assert!(addresses.contains(*addr), "the census found {addr}, which is not in the stack's plan");
    }
    let unseen: Vec<&String> = addresses.iter().filter(|a| !seen.contains_key(a.as_str())).collect();
    eprintln!(
        "census of a clean apply: {} tagged resources in {} types; addresses the census cannot see by tag (counted account-wide or not at all): {unseen:?}",
        tagged.len(),
        clean.0.len()
    );
    (clean, took)
}

#[test]
fn ten_percent_faults_apply_and_destroy_in_one_run() {
    let m = Moto::start();
    let w = Workdir::reference();
    let (stack, scope, addresses) = describe_stack(&m, &w);
    let baseline = census(&m, &stack, &scope);
    assert!(baseline.tagged().is_empty(), "{:?}", baseline.tagged());
    let (clean, _) = clean_apply(&m, &w, &stack, &scope, &addresses);

    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for seed in [1u64, 2, 3] {
        m.reset();
        let p = Proxy::start(
            &m,
            ProxyOpts {
                fault_rate: 0.1,
                seed,
                faults: "throttle,error_before,error_after".into(),
                ..ProxyOpts::default()
            },
        );
        let t = Instant::now();
        let r = p.infra(w.path(), &["apply", "--auto-approve"]);
        let stats = p.stats();
        assert_eq!(
            r.code, 0,
            "seed {seed}: apply through 10 % faults failed\nproxy: {stats}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        eprintln!(
            "seed {seed}: apply {:.1}s, {} calls, faults {}",
            t.elapsed().as_secs_f64(),
            stats["calls"],
            stats["faults_injected"]
        );
        assert_same(&format!("seed {seed}: after apply"), &census(&m, &stack, &scope), &clean);
        m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

        p.reset();
        let r = p.infra(w.path(), &["destroy", "--auto-approve"]);
        let dstats = p.stats();
        assert_eq!(
            r.code, 0,
            "seed {seed}: destroy through 10 % faults failed\nproxy: {dstats}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        eprintln!("seed {seed}: destroy {} calls, faults {}", dstats["calls"], dstats["faults_injected"]);
        assert_same(&format!("seed {seed}: after destroy"), &census(&m, &stack, &scope), &baseline);
        for s in [&stats, &dstats] {
            for (k, v) in s["faults_injected"].as_object().unwrap() {
                *injected.entry(k.clone()).or_default() += v.as_u64().unwrap();
            }
        }
    }
    // The test would prove nothing if a kind of fault never happened.
    for kind in ["throttle", "error_before", "error_after"] {
        assert!(
            injected.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault was injected over the seeds ({injected:?}): use more seeds"
        );
    }
}

/// The random faults above reach a different tenth of the calls each run;
/// here every distinct write (each resource's create, update and delete)
/// loses its first answer once, after the emulator acted: each must be safe
/// to retry, or be found by what its first attempt made. Apply and destroy
/// must succeed, the census match a clean apply's, the plan come back empty.
#[test]
fn every_write_survives_its_first_answer_lost() {
    let m = Moto::start();
    let w = Workdir::reference();
    let (stack, scope, addresses) = describe_stack(&m, &w);
    let baseline = census(&m, &stack, &scope);
    let (clean, _) = clean_apply(&m, &w, &stack, &scope, &addresses);
    m.reset();

    let p = Proxy::start(&m, ProxyOpts { lose_first_writes: true, ..ProxyOpts::default() });
    let r = p.infra(w.path(), &["apply", "--auto-approve"]);
    let stats = p.stats();
    assert_eq!(r.code, 0, "apply with every write's first answer lost failed\nproxy: {stats}\nstderr:\n{}", r.stderr);
    let lost = stats["faults_injected"]["error_after"].as_u64().unwrap_or(0);
    // Each resource's create at least (some kinds' creates are REST calls on
    // their parent's path, counted once).
    assert!(lost >= 40, "only {lost} answers lost: {stats}");
    eprintln!("apply: {} calls, {lost} first answers lost", stats["calls"]);
    assert_same("after apply", &census(&m, &stack, &scope), &clean);
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    p.reset();
    let r = p.infra(w.path(), &["destroy", "--auto-approve"]);
    let stats = p.stats();
    assert_eq!(r.code, 0, "destroy with every write's first answer lost failed\nproxy: {stats}\nstderr:\n{}", r.stderr);
    let lost = stats["faults_injected"]["error_after"].as_u64().unwrap_or(0);
    assert!(lost >= 20, "only {lost} answers lost in destroy: {stats}");
    eprintln!("destroy: {} calls, {lost} first answers lost", stats["calls"]);
    assert_same("after destroy", &census(&m, &stack, &scope), &baseline);
}

/// SplitMix64, as in the proxy: a kill schedule that never changes.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs `infra CMD --auto-approve` through the proxy and SIGKILLs it after
/// `delay`; returns how many steps it had finished (lines of its progress
/// output) and whether it had exited by itself first.
fn killed_run(p: &Proxy, w: &Workdir, cmd: &str, delay: Duration) -> (usize, bool) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = p
        .infra_command(w.path(), &[cmd, "--auto-approve"])
        .stdout(Stdio::from(out.reopen().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut finished_first = false;
    while start.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            finished_first = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5).min(delay.saturating_sub(start.elapsed())));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let text = std::fs::read_to_string(out.path()).unwrap_or_default();
    let done = text
        .lines()
        .filter(|l| l.contains(": created") || l.contains(": destroyed") || l.contains(": updated"))
        .count();
    (done, finished_first)
}

/// moto gap: it names the automated snapshot it takes of a new database
/// `rds:<id>-<YYYY-MM-DD-HH-MM>`, keeps it after the database is deleted, and
/// then refuses to create a database of the same name within the same minute
/// (`DBSnapshotAlreadyExists`). AWS does neither. Between a destroy and the
/// next apply, the test removes them (final snapshots are kept).
fn drop_automated_snapshots(m: &Moto) {
    let v = m.aws(&["rds", "describe-db-snapshots", "--snapshot-type", "automated"]);
    for s in v["DBSnapshots"].as_array().cloned().unwrap_or_default() {
        if let Some(id) = s["DBSnapshotIdentifier"].as_str() {
            m.aws(&["rds", "delete-db-snapshot", "--db-snapshot-identifier", id]);
        }
    }
}

/// Latency added to every call of the killed runs.
const KILL_LATENCY_MS: u64 = 150;

#[test]
fn killed_at_twenty_random_moments_reruns_converge() {
    let points: usize = std::env::var("INFRA_KILL_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let m = Moto::start();
    let w = Workdir::reference();
    let (stack, scope, addresses) = describe_stack(&m, &w);
    let baseline = census(&m, &stack, &scope);
    let (clean, _) = clean_apply(&m, &w, &stack, &scope, &addresses);
    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    assert_same("clean destroy", &census(&m, &stack, &scope), &baseline);

    // The killed runs go through a proxy adding latency to every call, so
    // that the work is spread over seconds (on moto the network tier applies
    // in a fraction of one) and kill points land among calls in flight;
    // a call cut off there may or may not have reached the emulator.
    let p = Proxy::start(&m, ProxyOpts { latency_ms: KILL_LATENCY_MS, ..ProxyOpts::default() });
    drop_automated_snapshots(&m);
    let t = Instant::now();
    p.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let apply_time = t.elapsed();
    let t = Instant::now();
    p.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    let destroy_time = t.elapsed();
    eprintln!(
        "through {KILL_LATENCY_MS} ms of latency a clean apply takes {:.2}s, a destroy {:.2}s",
        apply_time.as_secs_f64(),
        destroy_time.as_secs_f64()
    );

    let mut rng = Rng(20_240_601);
    let mut applied = false;
    let mut log = Vec::new();
    for k in 0..points {
        // Alternate: a killed apply from nothing, a killed destroy of the whole stack.
        let cmd = if k % 2 == 0 { "apply" } else { "destroy" };
        let span = if cmd == "apply" { apply_time } else { destroy_time };
        let delay = span.mul_f64(rng.next_f64());
        if cmd == "apply" {
            drop_automated_snapshots(&m);
        }
        let (done, completed) = killed_run(&p, &w, cmd, delay);
        log.push(format!(
            "{cmd} killed at {:.2}s after {done} finished steps{}",
            delay.as_secs_f64(),
            if completed { " (it had already completed)" } else { "" }
        ));
        let r = m.infra(w.path(), &[cmd, "--auto-approve"]);
        assert_eq!(
            r.code,
            0,
            "kill point {k} ({}): the rerun failed\nstdout:\n{}\nstderr:\n{}",
            log.last().unwrap(),
            r.stdout,
            r.stderr
        );
        let want = if cmd == "apply" { &clean } else { &baseline };
        assert_same(&format!("kill point {k} ({})", log.last().unwrap()), &census(&m, &stack, &scope), want);
        if cmd == "apply" {
            m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
        }
        applied = cmd == "apply";
    }
    if applied {
        m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    }
    assert_same("final destroy", &census(&m, &stack, &scope), &baseline);
    eprintln!("kill points:\n  {}", log.join("\n  "));
    let mid = log.iter().filter(|l| !l.contains("after 0 finished") && !l.contains("already completed")).count();
    eprintln!("{mid} of {points} kill points fell in the middle of the work");
}
