//! Dependency ordering of desired resources, on top of petgraph.

use std::collections::HashMap;

use anyhow::{Result, bail};
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;

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
