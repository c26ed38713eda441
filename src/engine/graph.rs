//! Dependency ordering of desired resources, on top of petgraph.

use std::collections::HashMap;

use anyhow::{Result, bail};
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;

use super::provider::KindInfo;
use super::resource::Resource;

/// Indexes of `resources` in dependency order (dependencies first).
///
/// Fails on a reference to an address that the stack does not define and on
/// cycles, naming the resources involved.
pub fn topo_order(resources: &[Resource]) -> Result<Vec<usize>> {
    let index: HashMap<&str, usize> = resources.iter().enumerate().map(|(i, r)| (r.address.as_str(), i)).collect();
    if index.len() != resources.len() {
        let mut seen = HashMap::new();
        for r in resources {
            if seen.insert(r.address.as_str(), ()).is_some() {
                bail!("internal error: address {} is defined twice", r.address);
            }
        }
    }
    let mut g = DiGraph::<usize, ()>::with_capacity(resources.len(), resources.len() * 2);
    let nodes: Vec<_> = (0..resources.len()).map(|i| g.add_node(i)).collect();
    for (i, r) in resources.iter().enumerate() {
        for dep in r.dependencies() {
            match index.get(dep.as_str()) {
                Some(&j) => {
                    g.add_edge(nodes[j], nodes[i], ());
                }
                None => bail!("internal error: {} depends on {dep}, which the stack does not define", r.address),
            }
        }
    }
    // Stable order: petgraph's toposort is deterministic for a given insertion order.
    match toposort(&g, None) {
        Ok(order) => Ok(order.into_iter().map(|n| g[n]).collect()),
        Err(cycle) => bail!(
            "dependency cycle through {}; break it by removing one of the references",
            resources[g[cycle.node_id()]].address
        ),
    }
}

/// The chain that sets how long creating `resources` from nothing takes,
/// first to last: each resource costs its kind's `weight` (its expected
/// create time) after the costliest chain before it, and a reference held
/// only in one of its kind's `late_fields` does not hold its create (the
/// value is filled in by an update once its source exists, one call more):
/// the same rules the executor schedules by. Empty for no resources.
pub fn critical_path(resources: &[Resource], info: &dyn Fn(&str) -> KindInfo) -> Result<Vec<String>> {
    let order = topo_order(resources)?;
    let index: HashMap<&str, usize> = resources.iter().enumerate().map(|(i, r)| (r.address.as_str(), i)).collect();
    // finish[i]: when resource i is created; via[i]: the dependency it waited for.
    let (mut finish, mut via) = (vec![0u64; resources.len()], vec![None; resources.len()]);
    // The chain's end: (time, resource, a late source filled in last).
    let mut end: (u64, usize, Option<usize>) = (0, 0, None);
    for i in order {
        let r = &resources[i];
        let k = info(&r.kind);
        let (late, _) = r.late_dependencies(k.late_fields);
        let deps = r.dependencies();
        let before = deps.iter().filter(|d| !late.contains(d)).filter_map(|d| index.get(d.as_str())).copied();
        if let Some(j) = before.max_by_key(|&j| finish[j]) {
            finish[i] = finish[j];
            via[i] = Some(j);
        }
        finish[i] += u64::from(k.weight.max(1));
        if finish[i] > end.0 {
            end = (finish[i], i, None);
        }
        // Its fill-in: one call once the last of its late sources is made.
        let last = late.iter().filter_map(|d| index.get(d.as_str())).copied().max_by_key(|&j| finish[j]);
        if let Some(j) = last.filter(|&j| finish[j] + 1 > end.0.max(finish[i])) {
            end = (finish[j] + 1, i, Some(j));
        }
    }
    if resources.is_empty() {
        return Ok(Vec::new());
    }
    let mut chain = vec![resources[end.1].address.clone()];
    let mut at = end.2.or(via[end.1]);
    while let Some(j) = at {
        chain.push(resources[j].address.clone());
        at = via[j];
    }
    chain.reverse();
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::reference;
    use serde_json::json;

    fn r(addr: &str, deps: &[&str]) -> Resource {
        let props: serde_json::Map<_, _> =
            deps.iter().enumerate().map(|(i, d)| (format!("p{i}"), reference(d, "id"))).collect();
        Resource::new(addr, "k", json!(props))
    }

    #[test]
    fn the_critical_path_follows_the_weights_and_skips_late_references() {
        let info = |kind: &str| match kind {
            "db" => KindInfo { weight: 50, ..KindInfo::default() },
            "fn" => KindInfo { late_fields: &["env"], ..KindInfo::default() },
            _ => KindInfo::default(),
        };
        let mut db = r("db", &["vpc"]);
        db.kind = "db".into();
        let mut func = Resource::new(
            "fn",
            "fn",
            json!({"env": {"HOST": reference("db", "endpoint")}, "role": reference("role", "arn")}),
        );
        func.kind = "fn".into();
        let rs = vec![r("vpc", &[]), db, r("role", &[]), func, r("api", &["fn"]), r("stage", &["api"])];
        // The database is the long pole; the function is filled in after it,
        // and the API does not wait.
        assert_eq!(critical_path(&rs, &info).unwrap(), ["vpc", "db", "fn"]);
        // Without late fields the function waits, and the chain runs on.
        let eager = |kind: &str| KindInfo { late_fields: &[], ..info(kind) };
        assert_eq!(critical_path(&rs, &eager).unwrap(), ["vpc", "db", "fn", "api", "stage"]);
        assert!(critical_path(&[], &info).unwrap().is_empty());
    }

    #[test]
    fn orders_dependencies_first() {
        let rs = vec![r("c", &["b"]), r("b", &["a"]), r("a", &[])];
        let order: Vec<_> = topo_order(&rs).unwrap().into_iter().map(|i| rs[i].address.clone()).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
    }

    #[test]
    fn reports_cycles_and_dangling_references() {
        let err = topo_order(&[r("a", &["b"]), r("b", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
        let err = topo_order(&[r("a", &["zzz"])]).unwrap_err();
        assert!(err.to_string().contains("zzz"), "{err}");
    }
}
