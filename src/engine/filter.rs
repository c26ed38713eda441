//! `--target` and `--exclude`: plan or apply part of a stack.
//!
//! A target keeps the changes at matching addresses plus everything they
//! need: the desired dependencies of creates and updates (transitively), and
//! for deletions the live resources that reference them (they must go
//! first). An exclusion drops the matching changes and everything that needs
//! them. Changes left out become no-ops, so their live attributes still
//! resolve references.

use std::collections::{BTreeSet, HashMap};

use super::plan::{Action, Change};
use super::provider::Provider;
use super::resource::Resource;

/// Part of a stack: `--target` and `--exclude` patterns.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Only these addresses (or what lies under them) and what they need.
    pub targets: Vec<String>,
    /// Not these, nor what depends on them.
    pub excludes: Vec<String>,
}

/// Whether `address` is `pattern` or lies under it (`network.subnet` matches
/// `network.subnet.public.us-east-1a`).
pub fn matches(pattern: &str, address: &str) -> bool {
    address == pattern || address.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('.'))
}

/// Restricts `changes` to the targets (all when empty) minus the exclusions.
/// Returns the patterns that matched nothing, so the caller can report them.
pub fn restrict(
    changes: Vec<Change>, targets: &[String], excludes: &[String], provider: &dyn Provider,
) -> (Vec<Change>, Vec<String>) {
    let unmatched: Vec<String> =
        targets.iter().chain(excludes).filter(|p| !changes.iter().any(|c| matches(p, &c.address))).cloned().collect();
    if targets.is_empty() && excludes.is_empty() {
        return (changes, unmatched);
    }

    // needs[a] = addresses `a` needs; needed_by = the reverse.
    let mut needs: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut ids: HashMap<&str, &str> = HashMap::new();
    for c in &changes {
        if let Some(l) = &c.live {
            for id in provider.identifiers(l) {
                ids.insert(id, c.address.as_str());
            }
        }
    }
    for c in &changes {
        let entry = needs.entry(c.address.as_str()).or_default();
        if let Some(d) = &c.desired {
            entry.extend(d.dependencies());
        }
        if let Some(l) = &c.live {
            let mentioned = provider.mentions(l).into_iter().filter_map(|x| ids.get(x));
            entry.extend(mentioned.filter(|a| **a != c.address).map(|a| a.to_string()));
        }
    }
    let mut needed_by: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (a, deps) in &needs {
        for d in deps {
            needed_by.entry(d.clone()).or_default().insert(a.to_string());
        }
    }
    let by_addr: HashMap<&str, &Change> = changes.iter().map(|c| (c.address.as_str(), c)).collect();

    let closure = |start: Vec<String>, forward: bool| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = start;
        while let Some(a) = stack.pop() {
            if !seen.insert(a.clone()) {
                continue;
            }
            let deleting = by_addr.get(a.as_str()).is_some_and(|c| matches!(c.action, Action::Delete));
            // Creating/updating `a` needs its dependencies; deleting it needs its users gone first.
            let next = if forward != deleting { needs.get(a.as_str()) } else { needed_by.get(&a) };
            stack.extend(next.into_iter().flatten().cloned());
        }
        seen
    };

    let keep: Option<BTreeSet<String>> = (!targets.is_empty()).then(|| {
        let start = changes
            .iter()
            .filter(|c| targets.iter().any(|t| matches(t, &c.address)))
            .map(|c| c.address.clone())
            .collect();
        closure(start, true)
    });
    let drop: BTreeSet<String> = {
        let start = changes
            .iter()
            .filter(|c| excludes.iter().any(|t| matches(t, &c.address)))
            .map(|c| c.address.clone())
            .collect();
        closure(start, false)
    };

    let out = changes
        .into_iter()
        .filter_map(|mut c| {
            let selected = keep.as_ref().is_none_or(|k| k.contains(&c.address)) && !drop.contains(&c.address);
            if selected || c.action == Action::NoOp {
                return Some(c);
            }
            // Left out: nothing happens to it; without a live resource it is not part of the plan.
            c.live.as_ref()?;
            c.action = Action::NoOp;
            c.fields.clear();
            c.data_loss = false;
            Some(c)
        })
        .collect();
    (out, unmatched)
}

/// Which desired resources a targeted plan keeps, before anything is read:
/// the targets and what they need, minus the exclusions and what needs
/// them. Plan-time look-ups (an AMI by name) run only for these, so a
/// failing look-up of a resource left out cannot stop the plan.
pub fn selected(desired: &[Resource], targets: &[String], excludes: &[String]) -> Vec<bool> {
    let index: HashMap<&str, usize> = desired.iter().enumerate().map(|(i, r)| (r.address.as_str(), i)).collect();
    let deps: Vec<Vec<usize>> = desired
        .iter()
        .map(|r| r.dependencies().iter().filter_map(|d| index.get(d.as_str()).copied()).collect())
        .collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); desired.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            users[d].push(i);
        }
    }
    let closure = |patterns: &[String], edges: &[Vec<usize>]| {
        let mut seen = vec![false; desired.len()];
        let mut stack: Vec<usize> =
            (0..desired.len()).filter(|&i| patterns.iter().any(|p| matches(p, &desired[i].address))).collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(edges[i].iter().copied());
            }
        }
        seen
    };
    let keep = (!targets.is_empty()).then(|| closure(targets, &deps));
    let drop = closure(excludes, &users);
    (0..desired.len()).map(|i| keep.as_ref().is_none_or(|k| k[i]) && !drop[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::diff::diff;
    use crate::engine::memory::MemoryProvider;
    use crate::engine::resource::Resource;
    use crate::engine::value::reference;
    use serde_json::json;

    fn stack() -> Vec<Resource> {
        vec![
            Resource::new("net.vpc", "mem.net", json!({"cidr": "a"})),
            Resource::new("net.sub.a", "mem.sub", json!({"net": reference("net.vpc", "id"), "cidr": "1"})),
            Resource::new("net.sub.b", "mem.sub", json!({"net": reference("net.vpc", "id"), "cidr": "2"})),
            Resource::new("app.thing", "mem.thing", json!({"sub": reference("net.sub.a", "id")})),
        ]
    }

    fn addrs(ch: &[Change]) -> Vec<&str> {
        ch.iter().filter(|c| c.action != Action::NoOp).map(|c| c.address.as_str()).collect()
    }

    #[test]
    fn prefix_matching() {
        assert!(matches("net.sub", "net.sub.a"));
        assert!(matches("net.sub.a", "net.sub.a"));
        assert!(!matches("net.su", "net.sub.a"));
    }

    #[test]
    fn a_target_brings_its_dependencies() {
        let p = MemoryProvider::new();
        let ch = diff(&stack(), vec![], &p).unwrap();
        let (ch, unmatched) = restrict(ch, &["app.thing".into()], &[], &p);
        assert!(unmatched.is_empty());
        let mut a = addrs(&ch);
        a.sort();
        assert_eq!(a, vec!["app.thing", "net.sub.a", "net.vpc"]);
    }

    #[test]
    fn an_exclusion_drops_its_dependants() {
        let p = MemoryProvider::new();
        let ch = diff(&stack(), vec![], &p).unwrap();
        let (ch, _) = restrict(ch, &[], &["net.sub.a".into()], &p);
        let mut a = addrs(&ch);
        a.sort();
        assert_eq!(a, vec!["net.sub.b", "net.vpc"]);
    }

    #[test]
    fn look_ups_run_only_for_what_a_target_keeps() {
        let s = stack();
        let keep = |t: &[&str], x: &[&str]| {
            let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
            let x: Vec<String> = x.iter().map(|s| s.to_string()).collect();
            selected(&s, &t, &x)
                .iter()
                .zip(&s)
                .filter(|(k, _)| **k)
                .map(|(_, r)| r.address.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(keep(&["net.sub.b"], &[]), vec!["net.vpc", "net.sub.b"]);
        assert_eq!(keep(&[], &["net.sub.a"]), vec!["net.vpc", "net.sub.b"]);
        assert_eq!(keep(&[], &[]).len(), 4);
    }

    #[test]
    fn unmatched_patterns_are_reported() {
        let p = MemoryProvider::new();
        let ch = diff(&stack(), vec![], &p).unwrap();
        let (_, unmatched) = restrict(ch, &["nope".into()], &[], &p);
        assert_eq!(unmatched, vec!["nope".to_string()]);
    }
}
