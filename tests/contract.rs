//! The kind contract, checked without AWS: every resource the expansion of
//! the reference stack and of every example makes (in each of their
//! environments) has a registered kind, and its desired props deserialize
//! into that kind's typed props. Kinds no stack here uses are named, so an
//! example can be added for them.

mod common;

use std::collections::BTreeSet;

use infra::aws::registry;
use infra::stack::Overrides;

/// Every stack file of the repository, with each of its environments.
fn stacks() -> Vec<(String, Overrides)> {
    let root = common::repo_root();
    let mut files = vec![root.join("stack.yaml")];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            files.push(p);
        }
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut envs = vec![None];
        if let Some(i) = text.find("\nenvironments:") {
            for line in text[i + 1..].lines().skip(1) {
                if let Some(name) =
                    line.strip_prefix("  ").and_then(|l| l.strip_suffix(':').or_else(|| l.split(':').next()))
                    && !name.starts_with(' ')
                    && !name.starts_with('#')
                    && !name.is_empty()
                {
                    envs.push(Some(name.trim().to_string()));
                } else if !line.starts_with(' ') && !line.is_empty() {
                    break;
                }
            }
        }
        for env in envs {
            out.push((f.display().to_string(), Overrides { environment: env, ..Overrides::default() }));
        }
    }
    out
}

#[test]
fn every_desired_resource_fits_its_registered_kind() {
    let kinds = registry::kinds();
    let names: BTreeSet<&str> = kinds.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), kinds.len(), "a kind is registered twice");
    let mut used = BTreeSet::new();
    let mut checked = 0;
    for (file, ov) in stacks() {
        let stack = infra::stack::load(std::path::Path::new(&file), &ov)
            .unwrap_or_else(|d| panic!("{file} {:?} does not load:\n{}", ov.environment, d.render()));
        for r in infra::stack::expand(&stack).resources {
            let k = kinds
                .iter()
                .find(|k| k.name() == r.kind)
                .unwrap_or_else(|| panic!("{file}: {} has kind {}, which is not registered", r.address, r.kind));
            if let Err(e) = k.check(&r.props) {
                panic!(
                    "{file} {:?}: {} does not fit {}'s props: {e}\nprops: {}",
                    ov.environment,
                    r.address,
                    r.kind,
                    serde_json::to_string_pretty(&r.props).unwrap()
                );
            }
            used.insert(r.kind.clone());
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} resources checked");
    let unused: Vec<&&str> = names.iter().filter(|n| !used.contains(**n)).collect();
    assert!(
        unused.is_empty(),
        "no stack of the repository uses {unused:?}: add an example that does, so the contract covers it"
    );
}

/// The reference stack's monthly cost, resource by resource, from each
/// kind's pricing, against the bundled table read here on its own: the
/// parts a reader of stack.yaml expects (an interface endpoint in each of
/// 2 AZs, an internet-facing ALB with a public IPv4 address per AZ, 2..6
/// t3.micro instances with public addresses since `nat: none` puts them in
/// the public subnets, a Multi-AZ db.t3.micro with 20 GB of gp3 and its
/// managed secret), and nothing else with a fixed price.
#[test]
fn the_reference_stack_costs_what_the_bundled_table_says() {
    use infra::engine::cost::Cost;
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("pricing/prices.json")).unwrap())
            .unwrap();
    let us = &table["regions"]["us-east-1"];
    let usd = |v: &serde_json::Value| v["usd"].as_f64().unwrap();
    let hours = table["hours_per_month"].as_f64().unwrap();
    let ipv4 = usd(&us["vpc"]["public_ipv4"]["hour"]) * hours;
    let instance = usd(&us["ec2"]["instances"]["t3.micro"]) * hours + ipv4;
    let expected: Vec<(&str, f64, f64)> = vec![
        ("compute.asg.web", 2.0 * instance, 6.0 * instance),
        ("compute.lb", usd(&us["elb"]["alb"]["hour"]) * hours + 2.0 * ipv4, 0.0),
        (
            "data.database",
            usd(&us["rds"]["instances"]["postgres"]["multi_az"]["db.t3.micro"]) * hours
                + 20.0 * usd(&us["rds"]["storage"]["multi_az"]["gp3"])
                + usd(&us["secretsmanager"]["secret_month"]),
            0.0,
        ),
        ("network.endpoint.secretsmanager", 2.0 * usd(&us["vpc"]["interface_endpoint"]["hour_per_az"]) * hours, 0.0),
    ];
    let stack = infra::stack::load(&common::repo_root().join("stack.yaml"), &Overrides::default()).unwrap();
    let prices = infra::aws::pricing::Prices::bundled("us-east-1").unwrap();
    let kinds = registry::kinds();
    let mut fixed = Vec::new();
    let mut by_use = BTreeSet::new();
    for r in infra::stack::expand(&stack).resources {
        let k = kinds.iter().find(|k| k.name() == r.kind).unwrap();
        match k.cost(&r.props, &prices) {
            Some(Cost::Fixed { low, high, basis }) => fixed.push((r.address, low, high, basis)),
            Some(Cost::Usage { .. }) => {
                by_use.insert(r.address);
            }
            Some(Cost::Unknown { reason }) => panic!("{}: unknown price: {reason}", r.address),
            None => {}
        }
    }
    fixed.sort_by(|a, b| a.0.cmp(&b.0));
    let got: Vec<&str> = fixed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(got, expected.iter().map(|e| e.0).collect::<Vec<_>>());
    for ((address, low, high, basis), (_, want_low, want_high)) in fixed.iter().zip(&expected) {
        let want_high = if *want_high == 0.0 { *want_low } else { *want_high };
        assert!(
            (low - want_low).abs() < 1e-6 && (high - want_high).abs() < 1e-6,
            "{address}: {low}..{high} ({basis}), want {want_low}..{want_high}"
        );
    }
    let total: f64 = fixed.iter().map(|f| f.1).sum();
    let want: f64 = expected.iter().map(|e| e.1).sum();
    assert!((total - want).abs() < 1e-6 && total > 50.0, "{total} != {want}");
    for a in ["backend.api", "backend.function.orders", "data.table.orders", "frontend.distribution", "frontend.bucket"]
    {
        assert!(by_use.contains(a), "{a} is billed by use: {by_use:?}");
    }
}
