//! Every malformed stack file gives its located error, exits 1, never
//! panics, and makes no AWS call (the endpoint is a socket we watch).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

struct Outcome {
    code: i32,
    stderr: String,
    connections: usize,
}

/// Runs infra with every AWS endpoint pointing at a listener that counts connections.
fn run_offline(dir: &Path, args: &[&str]) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let mut connections = 0;
    while listener.accept().is_ok() {
        connections += 1;
    }
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        connections,
    }
}

#[test]
fn every_corpus_file_gives_its_located_error_without_any_aws_call() {
    let dir = common::repo_root().join("tests/corpus");
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
    let mut checked = 0;
    for line in expected.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut parts = line.split('\t');
        let (file, loc, needle) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        for cmd in ["validate", "plan"] {
            let o = run_offline(&dir, &[cmd, "-f", file]);
            assert_eq!(o.code, 1, "{cmd} {file}: exit {}\n{}", o.code, o.stderr);
            assert!(!o.stderr.contains("panicked"), "{file} panicked:\n{}", o.stderr);
            assert!(
                loc == "*" || o.stderr.contains(&format!("{file}:{loc}")),
                "{file}: expected location {loc}\n{}",
                o.stderr
            );
            assert!(o.stderr.contains(needle), "{file}: expected {needle:?}\n{}", o.stderr);
            assert!(o.stderr.contains("help:"), "{file}: no advice\n{}", o.stderr);
            assert_eq!(o.connections, 0, "{cmd} {file} called AWS");
        }
        checked += 1;
    }
    assert!(checked >= 25, "corpus too small: {checked}");
}

#[test]
fn all_errors_are_reported_at_once() {
    let w = common::Workdir::with_stack(
        "stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n  public_subnets: [10.1.0.0/24, 10.0.0.0/24]\n  security_groups:\n    web:\n      ingress:\n        - { port: 80, from: [alb2] }\n    database:\n      ingress:\n        - { port: 5432, cidrs: [0.0.0.0/0] }\n",
    );
    let o = run_offline(w.path(), &["validate"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("3 errors in stack.yaml"), "{}", o.stderr);
    for needle in ["stack.yaml:5:20", "stack.yaml:9:30", "stack.yaml:12:33"] {
        assert!(o.stderr.contains(needle), "{needle} missing:\n{}", o.stderr);
    }
}

#[test]
fn what_the_schema_rejects_is_cut_and_the_rest_is_still_checked() {
    let w = common::Workdir::reference();
    let file = w.path().join("stack.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    // The orders function loses its runtime (a schema error); the API's
    // routes to it must not report it missing. min above max still shows.
    let text = text.replacen("runtime: python3.12", "runtime: [python3.12]", 1).replacen(
        "      min: 2\n",
        "      min: 9\n",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let o = run_offline(w.path(), &["validate"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("backend.functions.orders.runtime: expected a string"), "{}", o.stderr);
    assert!(o.stderr.contains("min 9 is above max 6"), "{}", o.stderr);
    assert!(!o.stderr.contains("no function named"), "a follow-on error of the cut:\n{}", o.stderr);
    assert!(o.stderr.contains("outside min 9 .. max 6"), "{}", o.stderr);
    assert!(o.stderr.contains("3 errors in stack.yaml"), "{}", o.stderr);
}

#[test]
fn huge_files_fail_fast() {
    let w = common::Workdir::with_stack(&format!("stack: webapp\n# {}\n", "x".repeat(3 * 1024 * 1024)));
    let o = run_offline(w.path(), &["plan"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("limit"), "{}", o.stderr);
    assert_eq!(o.connections, 0);
}

#[test]
fn flags_are_validated_too() {
    let w = common::Workdir::reference();
    let o = run_offline(w.path(), &["plan", "--stack", "This_Is_Not_Valid"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("--stack"), "{}", o.stderr);
    assert_eq!(o.connections, 0);
    let o = run_offline(w.path(), &["plan", "-e", "prd"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("did you mean `prod`"), "{}", o.stderr);
    assert_eq!(o.connections, 0);
    let o = run_offline(w.path(), &["validate", "-f", "missing.yaml"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("missing.yaml"), "{}", o.stderr);
}

#[test]
fn the_reference_stack_and_examples_are_valid_offline() {
    let root = common::repo_root();
    let o = run_offline(&root, &["validate"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for env in ["dev", "prod"] {
        let o = run_offline(&root, &["validate", "-e", env]);
        assert_eq!(o.code, 0, "-e {env}: {}", o.stderr);
    }
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        let o = run_offline(&root, &["validate", "-f", p.to_str().unwrap()]);
        assert_eq!(o.code, 0, "{}: {}", p.display(), o.stderr);
    }
    assert_eq!(o.connections, 0);
}

#[test]
fn the_published_schema_is_up_to_date() {
    let root = common::repo_root();
    let out = Command::new(env!("CARGO_BIN_EXE_infra")).arg("schema").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root.join("schema/stack.schema.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        committed.trim(),
        "schema/stack.schema.json is stale: run `infra schema > schema/stack.schema.json`"
    );
}

#[test]
fn the_readme_shows_the_reference_stack_diagram() {
    let root = common::repo_root();
    let out = Command::new(env!("CARGO_BIN_EXE_infra")).arg("graph").current_dir(&root).output().unwrap();
    assert!(out.status.success());
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```mermaid\n{}```", String::from_utf8_lossy(&out.stdout))),
        "README.md's diagram is stale: paste the output of `infra graph`"
    );
}
