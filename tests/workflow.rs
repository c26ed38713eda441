//! CI-grade workflow: saved plans, JSON, the lock, outputs, environments,
//! targets and the diagram, against moto, checked with the AWS CLI and
//! independent parsers.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Moto, Workdir, tag};
use serde_json::Value;

/// Descriptions of the load balancer group's ingress rules, sorted.
fn alb_descriptions(m: &Moto) -> Vec<String> {
    let sgs = m.ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp");
    let alb = sgs.iter().find(|g| tag(g, "infra:address") == Some("network.sg.alb")).expect("alb group");
    let mut d: Vec<String> = alb["IpPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["IpRanges"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["Description"].as_str().map(str::to_string))
        .collect();
    d.sort();
    d
}

fn vpcs(m: &Moto, stack: &str) -> Vec<Value> {
    m.ec2_by_stack("describe-vpcs", "Vpcs", stack)
}

#[test]
fn a_saved_plan_applies_exactly_and_a_stale_one_is_refused() {
    let m = Moto::start();
    let w = Workdir::reference();
    m.infra(w.path(), &["plan", "-o", "first.json"]).ok();
    // (A first apply opens the load balancer to the internet: reviewed here.)
    let applied = m.infra(w.path(), &["apply", "first.json", "--allow-broadening"]);
    applied.ok();
    assert!(applied.stdout.contains("Apply complete"), "{}", applied.stdout);
    assert_eq!(vpcs(&m, "webapp").len(), 1);
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // A plan of a rule change, then a change behind its back: the plan is stale.
    w.edit("description: HTTP }", "description: plain HTTP }");
    m.infra(w.path(), &["plan", "-o", "second.json"]).ok();
    let vpc_id = vpcs(&m, "webapp")[0]["VpcId"].as_str().unwrap().to_string();
    m.aws(&["ec2", "create-tags", "--resources", &vpc_id, "--tags", "Key=changed,Value=by-hand"]);
    let refused = m.infra(w.path(), &["apply", "second.json"]);
    refused.code(1);
    assert!(refused.stderr.contains("stale"), "{}", refused.stderr);
    assert!(refused.stderr.contains("network.vpc"), "{}", refused.stderr);
    let vpc = &vpcs(&m, "webapp")[0];
    assert_eq!(tag(vpc, "owner"), Some("platform-team"), "nothing was changed");

    // A plan of another stack is refused too.
    m.infra(w.path(), &["plan", "-o", "third.json"]).ok();
    let other = m.infra(w.path(), &["apply", "third.json", "--stack", "other"]);
    other.code(1);
    assert!(other.stderr.contains("belongs to stack \"webapp\""), "{}", other.stderr);
    m.infra(w.path(), &["apply", "third.json"]).ok();
    assert_eq!(alb_descriptions(&m), vec!["HTTPS", "plain HTTP"]);
    assert_eq!(tag(&vpcs(&m, "webapp")[0], "changed"), None, "the hand-made tag is gone");
}

#[test]
fn json_plan_matches_its_schema_and_events_parse_line_by_line() {
    let m = Moto::start();
    let w = Workdir::reference();
    let plan = m.infra(w.path(), &["plan", "--json"]);
    plan.ok();
    let doc: Value = serde_json::from_str(&plan.stdout).unwrap();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("schema/plan.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "plan does not match schema/plan.schema.json: {errors:?}");
    assert_eq!(doc["format_version"], 1);
    assert!(doc["summary"]["add"].as_u64().unwrap() > 0);

    let md = m.infra(w.path(), &["plan", "--format", "markdown"]);
    assert!(md.stdout.contains("| action | address |"), "{}", md.stdout);

    let apply = m.infra(w.path(), &["apply", "--auto-approve", "--json"]);
    apply.ok();
    let events: Vec<Value> =
        apply.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(events.first().unwrap()["event"], "plan");
    assert_eq!(events.last().unwrap()["event"], "summary");
    assert_eq!(events.last().unwrap()["ok"], true);
    let started = events.iter().filter(|e| e["event"] == "started").count();
    let finished: Vec<&Value> = events.iter().filter(|e| e["event"] == "finished").collect();
    assert_eq!(started, finished.len());
    assert!(finished.iter().all(|e| e["seconds"].is_number() && e["address"].is_string()));

    let destroy = m.infra(w.path(), &["destroy", "--auto-approve", "--json"]);
    destroy.ok();
    for l in destroy.stdout.lines() {
        serde_json::from_str::<Value>(l).unwrap();
    }
    assert!(vpcs(&m, "webapp").is_empty());
}

/// Every address a desired resource references (`$ref` values, `depends_on`).
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.push(r.split('#').next().unwrap().to_string());
            }
            o.values().for_each(|x| references(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        _ => {}
    }
}

#[test]
fn the_reference_plan_lists_each_tier_in_one_place_in_dependency_order() {
    let m = Moto::start();
    let w = Workdir::reference();
    let doc: Value = serde_json::from_str(&m.infra(w.path(), &["plan", "--json"]).ok().stdout.clone()).unwrap();
    let changes = doc["changes"].as_array().unwrap();
    let order: Vec<&str> = changes.iter().map(|c| c["address"].as_str().unwrap()).collect();
    let tier = |a: &str| a.split('.').next().unwrap().to_string();
    let mut tiers: Vec<String> = order.iter().map(|a| tier(a)).collect();
    tiers.dedup();
    assert_eq!(
        tiers,
        ["network", "compute", "frontend", "data", "backend"],
        "each tier once, in this order: {order:?}"
    );
    // Within a tier, a resource comes after what it references.
    for (i, c) in changes.iter().enumerate() {
        let mut refs = Vec::new();
        references(&c["desired"], &mut refs);
        for r in refs.iter().filter(|r| tier(r) == tier(order[i])) {
            let j = order.iter().position(|a| a == r).unwrap_or_else(|| panic!("{r} is not in the plan"));
            assert!(j < i, "{} is listed before {r}, which it references: {order:?}", order[i]);
        }
    }
    assert_eq!(order.iter().position(|a| *a == "network.vpc"), Some(1), "{order:?}");
    let groups: Vec<(&str, u64)> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap(), g["summary"]["add"].as_u64().unwrap()))
        .collect();
    for (name, add) in &groups {
        assert_eq!(*add as usize, order.iter().filter(|a| tier(a) == *name).count(), "{name}'s count");
    }

    // The text and Markdown plans list the same addresses in the same order,
    // under a header per tier with its counts.
    let position = |text: &str, a: &str| text.find(&format!("+ {a} (")).or_else(|| text.find(&format!("| `{a}` |")));
    for text in [
        m.infra(w.path(), &["plan"]).ok().stdout.clone(),
        m.infra(w.path(), &["plan", "--format", "markdown"]).ok().stdout.clone(),
    ] {
        let at: Vec<usize> =
            order.iter().map(|a| position(&text, a).unwrap_or_else(|| panic!("{a} missing:\n{text}"))).collect();
        assert!(at.windows(2).all(|p| p[0] < p[1]), "not in the JSON plan's order:\n{text}");
        for (name, add) in &groups {
            let header =
                text.find(&format!("{name}: {add} to add")).unwrap_or_else(|| panic!("no {name} header:\n{text}"));
            let first = order.iter().position(|a| tier(a) == *name).unwrap();
            assert!(header < at[first], "{name}'s header comes before its first change");
        }
    }
}

#[test]
fn concurrent_applies_never_run_at_once() {
    let m = Moto::start();
    let w = Workdir::reference();
    // Both start together; without waiting, the loser fails naming the holder.
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
            cmd.args(["apply", "--auto-approve"]).current_dir(w.path()).stdin(Stdio::null());
            m.env_for(&mut cmd);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
    assert!(codes.contains(&0), "{codes:?}");
    for o in &outs {
        if o.status.code() == Some(3) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("is locked by") && err.contains("pid"), "{err}");
        }
    }
    assert_eq!(vpcs(&m, "webapp").len(), 1, "nothing created twice");
    assert_eq!(m.ec2_by_stack("describe-subnets", "Subnets", "webapp").len(), 4);

    // With a lock timeout, the second waits and then finds nothing to do.
    let w2 = Workdir::reference();
    w2.edit("description: HTTP }", "description: night HTTP }");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
            cmd.args(["apply", "--auto-approve", "--lock-timeout", "60s"]).current_dir(w2.path()).stdin(Stdio::null());
            m.env_for(&mut cmd);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for c in runs {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(vpcs(&m, "webapp").len(), 1);
    assert_eq!(alb_descriptions(&m), vec!["HTTPS", "night HTTP"]);

    // A lock left by a dead run is named, and `infra unlock` clears it.
    let buckets = m.aws(&["s3api", "list-buckets"]);
    let bucket = buckets["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| b["Name"].as_str().filter(|n| n.starts_with("infra-locks-")))
        .unwrap()
        .to_string();
    let body = w.path().join("lock.json");
    std::fs::write(&body, r#"{"id":"dead","stack":"webapp","user":"alice","host":"ci-runner-7","pid":4242,"command":"infra apply","since":"2026-01-01T00:00:00Z","tool_version":"0.1.0"}"#).unwrap();
    m.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        "locks/webapp.json",
        "--body",
        body.to_str().unwrap(),
    ]);
    let held = m.infra(w.path(), &["destroy", "--auto-approve"]);
    held.code(3);
    assert!(held.stderr.contains("alice@ci-runner-7") && held.stderr.contains("4242"), "{}", held.stderr);
    assert_eq!(vpcs(&m, "webapp").len(), 1, "a locked destroy deletes nothing");
    let un = m.infra(w.path(), &["unlock"]);
    un.ok();
    assert!(un.stdout.contains("alice@ci-runner-7"), "{}", un.stdout);
    m.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    assert!(vpcs(&m, "webapp").is_empty());
    // Released after success: nothing left in the lock bucket.
    let objects = m.aws(&["s3api", "list-objects-v2", "--bucket", &bucket]);
    assert!(objects["Contents"].as_array().is_none_or(|c| c.is_empty()), "{objects}");
}

#[test]
fn outputs_match_what_the_aws_cli_reads() {
    let m = Moto::start();
    let w = Workdir::reference();
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let out = m.infra(w.path(), &["output", "--json"]);
    out.ok();
    let outputs: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outputs["vpc_id"], vpcs(&m, "webapp")[0]["VpcId"]);
    for (name, v) in outputs.as_object().unwrap() {
        assert!(!v.is_null(), "output {name} has no value");
    }
    let one = m.infra(w.path(), &["output", "vpc_id"]);
    assert_eq!(one.stdout.trim(), vpcs(&m, "webapp")[0]["VpcId"].as_str().unwrap());
}

#[test]
fn environments_deploy_as_their_own_stacks() {
    let m = Moto::start();
    let w = Workdir::reference();
    m.infra(w.path(), &["apply", "--auto-approve", "-e", "dev"]).ok();
    assert_eq!(vpcs(&m, "webapp-dev").len(), 1);
    assert!(vpcs(&m, "webapp").is_empty());
    m.infra(w.path(), &["plan", "--detailed-exitcode", "-e", "dev"]).code(0);
    m.infra(w.path(), &["plan", "--detailed-exitcode", "-e", "prod"]).code(2);
    m.infra(w.path(), &["destroy", "--auto-approve", "-e", "dev"]).ok();
    assert!(vpcs(&m, "webapp-dev").is_empty());
}

#[test]
fn target_and_exclude_apply_part_of_the_stack() {
    let m = Moto::start();
    let w = Workdir::reference();
    let plan = m.infra(w.path(), &["plan", "--target", "network.route_table.public"]);
    plan.ok();
    // The route table needs the VPC, the gateway and the public subnets.
    for a in ["network.vpc", "network.igw", "network.subnet.public.us-east-1a", "network.route_table.public"] {
        assert!(plan.stdout.contains(&format!("+ {a} ")), "{a}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains("network.sg."), "{}", plan.stdout);
    m.infra(w.path(), &["apply", "--auto-approve", "--target", "network.route_table.public"]).ok();
    assert!(m.ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp").is_empty());
    assert_eq!(m.ec2_by_stack("describe-route-tables", "RouteTables", "webapp").len(), 1);

    m.infra(w.path(), &["apply", "--auto-approve", "--exclude", "network.sg.alb"]).ok();
    let sgs: Vec<String> = m
        .ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp")
        .iter()
        .map(|g| tag(g, "infra:address").unwrap().to_string())
        .collect();
    assert!(
        !sgs.contains(&"network.sg.alb".to_string()) && !sgs.contains(&"network.sg.web".to_string()),
        "web needs alb: {sgs:?}"
    );
    assert!(sgs.contains(&"network.sg.functions".to_string()));
    let bad = m.infra(w.path(), &["plan", "--target", "network.nothing"]);
    bad.code(1);
    assert!(bad.stderr.contains("network.nothing"), "{}", bad.stderr);
}

#[test]
fn the_graph_parses_as_mermaid_and_dot_and_has_every_tier() {
    let root = common::repo_root();
    let run = |fmt: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_infra"))
            .args(["graph", "--format", fmt])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let stack = std::fs::read_to_string(root.join("stack.yaml")).unwrap();
    let tiers: Vec<&str> = ["network", "compute", "frontend", "data", "backend"]
        .into_iter()
        .filter(|t| stack.lines().any(|l| l.starts_with(&format!("{t}:"))))
        .collect();
    assert!(tiers.contains(&"network"));

    let mermaid = run("mermaid");
    let mut node = Command::new("node")
        .arg(root.join("tests/tools/parse-mermaid.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node not found");
    node.stdin.take().unwrap().write_all(mermaid.as_bytes()).unwrap();
    let o = node.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "Mermaid rejects the graph (run `npm ci --prefix tests/tools`): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for t in &tiers {
        assert!(mermaid.contains(&format!("subgraph {t}[")), "tier {t} missing from the Mermaid graph");
    }

    let dot = run("dot");
    let mut py = Command::new("python3")
        .args(["-c", "import sys, pydot; g = pydot.graph_from_dot_data(sys.stdin.read()); assert g, 'no graph'; print(len(g[0].get_subgraphs()))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let o = py.wait_with_output().unwrap();
    assert!(o.status.success(), "DOT does not parse: {}", String::from_utf8_lossy(&o.stderr));
    let clusters: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert_eq!(clusters, tiers.len(), "one cluster per tier");
}

#[test]
fn ctrl_c_mid_apply_finishes_running_steps_releases_the_lock_and_a_rerun_completes() {
    let m = Moto::start();
    let w = Workdir::reference();
    let slow = common::SlowProxy::start(m.port, std::time::Duration::from_millis(400));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
    cmd.args(["apply", "--auto-approve", "--target", "network"]).current_dir(w.path()).stdin(Stdio::null());
    m.env_for(&mut cmd);
    cmd.env("AWS_ENDPOINT_URL", &slow.endpoint);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Interrupt once steps are running (the apply has started changing things).
    let stdout_pipe = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
            if line.contains("creating...") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(std::time::Duration::from_secs(120)).expect("the apply never started creating");
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("creating..."), "{stdout}");
    assert!(stderr.contains("Interrupted"), "{stderr}");
    assert!(stderr.contains("not started"), "{stderr}");
    // The lock was released: no lock object remains.
    let buckets = m.aws(&["s3api", "list-buckets"]);
    let bucket = buckets["Buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| b["Name"].as_str().filter(|n| n.starts_with("infra-locks-")))
        .unwrap()
        .to_string();
    let objects = m.aws(&["s3api", "list-objects-v2", "--bucket", &bucket]);
    assert!(objects["Contents"].as_array().is_none_or(|c| c.is_empty()), "lock left behind: {objects}");
    // A rerun completes, and the stack is exactly there.
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();
    m.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    assert_eq!(vpcs(&m, "webapp").len(), 1);
}

/// The fixed monthly cost of a JSON plan's side (`before`/`after`), low bound.
fn monthly(plan: &Value, side: &str) -> f64 {
    plan["cost"][side]["low"].as_f64().unwrap_or_else(|| panic!("no cost.{side} in {}", plan["cost"]))
}

#[test]
fn plans_say_what_the_stack_costs_a_month_and_budget_refuses_more() {
    let m = Moto::start();
    let w =
        Workdir::with_stack("stack: costs\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n  azs: 2\n  nat: none\n");
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    // Turning on a NAT gateway per AZ: the plan prices each new gateway and
    // its address from the bundled table, read here on its own.
    w.edit("nat: none", "nat: per_az");
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("pricing/prices.json")).unwrap())
            .unwrap();
    let vpc = &table["regions"]["us-east-1"]["vpc"];
    let hours = table["hours_per_month"].as_f64().unwrap();
    let nat = vpc["nat_gateway"]["hour"]["usd"].as_f64().unwrap() * hours;
    let ip = vpc["public_ipv4"]["hour"]["usd"].as_f64().unwrap() * hours;
    let interface = vpc["interface_endpoint"]["hour_per_az"]["usd"].as_f64().unwrap() * hours;
    let planned = m.infra(w.path(), &["plan", "--json"]);
    planned.ok();
    let plan: Value = serde_json::from_str(&planned.stdout).unwrap();
    let count = |kind: &str, action: &str| {
        plan["changes"].as_array().unwrap().iter().filter(|c| c["kind"] == kind && c["action"] == action).count() as f64
    };
    assert_eq!(count("ec2.nat_gateway", "create"), 2.0, "{}", planned.stdout);
    let endpoints_gone: f64 = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "ec2.vpc_endpoint" && c["action"] == "delete")
        .filter(|c| c["live"]["props"]["endpoint_type"] == "Interface")
        .map(|c| c["live"]["props"]["subnet_ids"].as_array().unwrap().len() as f64 * interface)
        .sum();
    let delta = monthly(&plan, "after") - monthly(&plan, "before");
    let want = 2.0 * nat + count("ec2.eip", "create") * ip - endpoints_gone;
    assert!((delta - want).abs() < 0.005, "cost delta {delta}, want {want}: {}", plan["cost"]);
    assert!(want > 60.0, "two NAT gateways cost more than $60 a month: {want}");
    for r in plan["cost"]["resources"].as_array().unwrap() {
        if r["address"].as_str().unwrap().starts_with("network.nat.") {
            assert_eq!(r["after"]["billing"], "fixed", "{r}");
            assert!((r["after"]["low"].as_f64().unwrap() - nat).abs() < 1e-6, "{r}");
        }
    }

    // The text and Markdown plans say it too.
    let text = m.infra(w.path(), &["plan"]);
    text.ok();
    assert!(text.stdout.contains("Monthly cost:"), "{}", text.stdout);
    assert!(text.stdout.contains(&format!("(+${:.2})", want)), "{}", text.stdout);
    assert!(text.stdout.contains("NAT gateway: 730 h × $0.045"), "{}", text.stdout);
    let md = m.infra(w.path(), &["plan", "--format", "markdown"]);
    assert!(md.stdout.contains("#### Monthly cost:") && md.stdout.contains("| + | `network.nat."), "{}", md.stdout);

    // A budget between the cost before and after fails the plan and the
    // apply, which changes nothing; a budget above it passes.
    let budget = format!("{:.2}", monthly(&plan, "before") + want / 2.0);
    let over = m.infra(w.path(), &["plan", "--budget", &budget]);
    over.code(1);
    assert!(over.stderr.contains("over the budget") && over.stderr.contains(&budget), "{}", over.stderr);
    assert!(over.stdout.contains("Monthly cost:"), "the plan is shown before it fails: {}", over.stdout);
    let refused = m.infra(w.path(), &["apply", "--auto-approve", "--budget", &budget]);
    refused.code(1);
    assert!(refused.stderr.contains("over the budget"), "{}", refused.stderr);
    let nats = m.aws(&["ec2", "describe-nat-gateways", "--filter", "Name=tag:infra:stack,Values=costs"]);
    assert!(nats["NatGateways"].as_array().unwrap().is_empty(), "nothing was changed: {nats}");
    m.infra(w.path(), &["plan", "--budget", "1000"]).ok();
    let bad = m.infra(w.path(), &["plan", "--budget", "0"]);
    bad.code(2);
    assert!(bad.stderr.contains("positive amount"), "{}", bad.stderr);
    m.infra(w.path(), &["apply", "--auto-approve", "--budget", "1000"]).ok();
    let nats = m.aws(&["ec2", "describe-nat-gateways", "--filter", "Name=tag:infra:stack,Values=costs"]);
    assert_eq!(nats["NatGateways"].as_array().unwrap().len(), 2);
    let after = m.infra(w.path(), &["plan"]);
    assert!(after.stdout.contains("Monthly cost:"), "{}", after.stdout);
}

/// The ingress rules of the web group that let in port 22.
fn ssh_rules(m: &Moto) -> usize {
    let sgs = m.ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp");
    let web = sgs.iter().find(|g| tag(g, "infra:address") == Some("network.sg.web")).expect("web group");
    web["IpPermissions"].as_array().unwrap().iter().filter(|p| p["FromPort"] == 22).count()
}

#[test]
fn a_plan_flags_what_widens_access_and_a_saved_one_needs_allow_broadening() {
    let m = Moto::start();
    let w = Workdir::reference();
    m.infra(w.path(), &["apply", "--auto-approve"]).ok();

    // SSH from anywhere, and the instances' role gains the table's actions.
    w.edit(
        "        - { port: 80, from: [alb], description: from the load balancer }",
        "        - { port: 80, from: [alb], description: from the load balancer }\n        - { port: 22, cidrs: [0.0.0.0/0], description: SSH }",
    );
    w.edit("      # tables: [orders]", "      tables: [orders]");
    let planned = m.infra(w.path(), &["plan", "-o", "widen.json"]);
    planned.ok();
    let text = &planned.stdout;
    assert!(text.contains("! widens access: opens tcp/22 to the internet (0.0.0.0/0)"), "{text}");
    assert!(text.contains("! widens access: its policies allow more actions: dynamodb:"), "{text}");
    assert!(text.contains("Access: 2 changes widen access (network.sg.web, compute.role.web)"), "{text}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(w.path().join("widen.json")).unwrap()).unwrap();
    let flagged: Vec<&str> =
        saved["widens"].as_array().unwrap().iter().map(|x| x["address"].as_str().unwrap()).collect();
    assert!(flagged.contains(&"network.sg.web") && flagged.contains(&"compute.role.web"), "{flagged:?}");
    let md = m.infra(w.path(), &["plan", "--format", "markdown"]);
    assert!(md.stdout.contains("**widens access**: opens tcp/22") && md.stdout.contains("[!WARNING]"), "{}", md.stdout);

    // Unattended, the saved plan is refused and nothing changes.
    let refused = m.infra(w.path(), &["apply", "widen.json"]);
    refused.code(1);
    assert!(
        refused.stderr.contains("widens access") && refused.stderr.contains("--allow-broadening"),
        "{}",
        refused.stderr
    );
    assert_eq!(ssh_rules(&m), 0, "nothing was changed");
    m.infra(w.path(), &["apply", "widen.json", "--allow-broadening"]).ok();
    assert_eq!(ssh_rules(&m), 1);
    let role = saved["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "compute.role.web")
        .and_then(|c| c["live"]["props"]["name"].as_str())
        .expect("the web role's name")
        .to_string();
    let names = m.aws(&["iam", "list-role-policies", "--role-name", &role]);
    let docs: String = names["PolicyNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            m.aws(&["iam", "get-role-policy", "--role-name", &role, "--policy-name", n.as_str().unwrap()]).to_string()
        })
        .collect();
    assert!(docs.contains("dynamodb:"), "{role}: {docs}");

    // Closing it again narrows: the saved plan applies without the flag.
    w.edit("\n        - { port: 22, cidrs: [0.0.0.0/0], description: SSH }", "");
    m.infra(w.path(), &["plan", "-o", "narrow.json"]).ok();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(w.path().join("narrow.json")).unwrap()).unwrap();
    assert!(saved.get("widens").is_none(), "{}", saved["widens"]);
    m.infra(w.path(), &["apply", "narrow.json"]).ok();
    assert_eq!(ssh_rules(&m), 0);
}
