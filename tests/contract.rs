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
