//! `infra init`: a project written into an empty folder validates, applies on
//! moto (read back with the AWS CLI), and tests its own services; only the
//! chosen tiers are written; nothing is ever overwritten.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::Moto;

fn init(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_infra"))
        .arg("init")
        .args(args)
        .current_dir(cwd)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stack_vpcs(m: &Moto, stack: &str) -> usize {
    let filter = format!("Name=tag:infra:stack,Values={stack}");
    m.aws(&["ec2", "describe-vpcs", "--filters", &filter])["Vpcs"].as_array().unwrap().len()
}

fn function_names(m: &Moto) -> Vec<String> {
    let fns = m.aws(&["lambda", "list-functions"]);
    let mut names: Vec<String> =
        fns["Functions"].as_array().unwrap().iter().map(|f| f["FunctionName"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// The workflow parses as YAML (PyYAML, not our parser) and has its jobs.
fn workflow_jobs(project: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml; w = yaml.safe_load(open(sys.argv[1])); print(' '.join(w['jobs']))",
            &project.join(".github/workflows/infra.yml").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

#[test]
fn a_new_project_with_every_tier_validates_applies_and_tests_itself() {
    let m = Moto::start();
    let root = tempfile::tempdir().unwrap();
    let o = init(root.path(), &["shop"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let project = root.path().join("shop");
    let stack = std::fs::read_to_string(project.join("stack.yaml")).unwrap();
    assert!(stack.starts_with("# yaml-language-server: $schema=./schema/stack.schema.json\n"), "{stack}");
    assert!(stack.contains("\nstack: shop\n"), "named after its folder");
    for f in ["schema/stack.schema.json", "functions/orders/test_app.py", "site/index.html", "web/user-data.sh"] {
        assert!(project.join(f).is_file(), "{f} is missing");
    }
    let text = std::fs::read_to_string(project.join(".github/workflows/infra.yml")).unwrap();
    assert_eq!(workflow_jobs(&project), ["test", "plan", "apply"]);
    for step in ["--format markdown >> \"$GITHUB_STEP_SUMMARY\"", "infra apply plan.json", "infra check"] {
        assert!(text.contains(step), "the workflow lacks {step}:\n{text}");
    }

    m.infra(&project, &["validate"]).ok();
    m.infra(&project, &["apply", "--auto-approve"]).ok();
    assert_eq!(stack_vpcs(&m, "shop"), 1);
    assert_eq!(function_names(&m), ["shop-orders", "shop-users"]);
    let plan = m.infra(&project, &["plan", "--detailed-exitcode"]);
    plan.code(0);

    // The services' own tests pass where init put them.
    let tests =
        Command::new("python3").args(["-m", "pytest", "-q", "functions"]).current_dir(&project).output().unwrap();
    assert!(
        tests.status.success(),
        "{}{}",
        String::from_utf8_lossy(&tests.stdout),
        String::from_utf8_lossy(&tests.stderr)
    );

    // A second init refuses and leaves the project as it was.
    std::fs::write(project.join("stack.yaml"), "edited").unwrap();
    let again = init(root.path(), &["shop", "--tiers", "network"]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("stack.yaml") && err.contains("nothing was written"), "{err}");
    assert_eq!(std::fs::read_to_string(project.join("stack.yaml")).unwrap(), "edited");
}

#[test]
fn a_network_only_project_holds_the_network_alone() {
    let m = Moto::start();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path().join("edge");
    std::fs::create_dir(&dir).unwrap();
    let o = init(&dir, &["--tiers", "network"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for absent in ["functions", "site", "web"] {
        assert!(!dir.join(absent).exists(), "{absent} was written");
    }
    let stack = std::fs::read_to_string(dir.join("stack.yaml")).unwrap();
    for tier in ["compute", "frontend", "data", "backend"] {
        assert!(!stack.contains(&format!("\n{tier}:")), "{tier} is in:\n{stack}");
    }
    assert_eq!(workflow_jobs(&dir), ["plan", "apply"], "no services, no test job");

    m.infra(&dir, &["validate"]).ok();
    m.infra(&dir, &["apply", "--auto-approve"]).ok();
    assert_eq!(stack_vpcs(&m, "edge"), 1);
    let subnets = m.aws(&["ec2", "describe-subnets", "--filters", "Name=tag:infra:stack,Values=edge"]);
    assert_eq!(subnets["Subnets"].as_array().unwrap().len(), 4, "public and private in two AZs");
    assert!(function_names(&m).is_empty());
    let lbs = m.aws(&["elbv2", "describe-load-balancers"]);
    assert!(lbs["LoadBalancers"].as_array().unwrap().is_empty());
}

#[test]
fn a_tier_comes_with_what_it_needs_and_a_wrong_tier_is_named() {
    let root = tempfile::tempdir().unwrap();
    let o = init(root.path(), &["api", "--tiers", "network,backend"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("data is included: backend needs it"));
    let stack = std::fs::read_to_string(root.path().join("api/stack.yaml")).unwrap();
    assert!(stack.contains("\ndata:\n") && stack.contains("\nbackend:\n") && !stack.contains("\ncompute:\n"));

    let o = init(root.path(), &["typo", "--tiers", "network,frontnd"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean `frontend`"));
    assert!(!root.path().join("typo").exists(), "nothing is written for a wrong tier");
}
