//! The architecture diagram of a stack (`infra graph`): resources grouped by
//! tier and Availability Zone, with their dependencies, as Mermaid (renders
//! on GitHub) or Graphviz DOT. The critical path (`engine::graph::
//! critical_path`: the chain that sets how long a first apply takes) is
//! drawn in red and named in a comment at the top.

use std::collections::BTreeMap;

use crate::engine::resource::Resource;

fn node_id(address: &str) -> String {
    address.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// (tier, zone) of an address: its first segment, and the AZ it names, if any.
fn group<'a>(r: &'a Resource, azs: &'a [String]) -> (&'a str, Option<&'a str>) {
    let tier = r.address.split('.').next().unwrap_or("other");
    let az = r.address.split('.').find(|seg| azs.iter().any(|a| a == seg));
    (tier, az)
}

fn label(r: &Resource, az: Option<&str>) -> String {
    let short: Vec<&str> = r.address.split('.').skip(1).filter(|s| Some(*s) != az).collect();
    format!("{}<br/><small>{}</small>", short.join("."), r.kind)
}

type Groups<'a> = BTreeMap<&'a str, BTreeMap<Option<&'a str>, Vec<&'a Resource>>>;

fn grouped<'a>(resources: &'a [Resource], azs: &'a [String]) -> Groups<'a> {
    let mut g: Groups = BTreeMap::new();
    for r in resources {
        let (tier, az) = group(r, azs);
        g.entry(tier).or_default().entry(az).or_default().push(r);
    }
    g
}

/// Whether the edge `from` → `to` is a step of `critical`.
fn on_path(critical: &[String], from: &str, to: &str) -> bool {
    critical.windows(2).any(|w| w[0] == from && w[1] == to)
}

pub fn mermaid(resources: &[Resource], azs: &[String], critical: &[String]) -> String {
    let mut out = format!("flowchart LR\n  %% critical path: {}\n", critical.join(" → "));
    for (tier, zones) in grouped(resources, azs) {
        out.push_str(&format!("  subgraph {tier}[\"{tier}\"]\n"));
        for (az, rs) in zones {
            let indent = if az.is_some() { "      " } else { "    " };
            if let Some(az) = az {
                out.push_str(&format!("    subgraph {}[\"{az}\"]\n", node_id(&format!("{tier}_{az}"))));
            }
            for r in rs {
                out.push_str(&format!("{indent}{}[\"{}\"]\n", node_id(&r.address), label(r, az)));
            }
            if az.is_some() {
                out.push_str("    end\n");
            }
        }
        out.push_str("  end\n");
    }
    let mut red = Vec::new();
    let mut edge = 0;
    for r in resources {
        for d in r.dependencies() {
            out.push_str(&format!("  {} --> {}\n", node_id(&d), node_id(&r.address)));
            if on_path(critical, &d, &r.address) {
                red.push(edge.to_string());
            }
            edge += 1;
        }
    }
    if !critical.is_empty() {
        out.push_str("  classDef critical stroke:#d33,stroke-width:3px\n");
        let ids: Vec<String> = critical.iter().map(|a| node_id(a)).collect();
        out.push_str(&format!("  class {} critical\n", ids.join(",")));
    }
    if !red.is_empty() {
        out.push_str(&format!("  linkStyle {} stroke:#d33,stroke-width:3px\n", red.join(",")));
    }
    out
}

pub fn dot(resources: &[Resource], azs: &[String], critical: &[String]) -> String {
    let mut out = format!(
        "// critical path: {}\ndigraph stack {{\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n",
        critical.join(" → ")
    );
    for (tier, zones) in grouped(resources, azs) {
        out.push_str(&format!("  subgraph \"cluster_{tier}\" {{\n    label=\"{tier}\";\n"));
        for (az, rs) in zones {
            if let Some(az) = az {
                out.push_str(&format!("    subgraph \"cluster_{tier}_{az}\" {{\n      label=\"{az}\";\n"));
            }
            for r in rs {
                let short = label(r, az).replace("<br/><small>", "\\n").replace("</small>", "");
                let red = if critical.contains(&r.address) { ", color=red, penwidth=2" } else { "" };
                out.push_str(&format!("      \"{}\" [label=\"{short}\"{red}];\n", r.address));
            }
            if az.is_some() {
                out.push_str("    }\n");
            }
        }
        out.push_str("  }\n");
    }
    for r in resources {
        for d in r.dependencies() {
            let red = if on_path(critical, &d, &r.address) { " [color=red, penwidth=2]" } else { "" };
            out.push_str(&format!("  \"{d}\" -> \"{}\"{red};\n", r.address));
        }
    }
    out.push_str("}\n");
    out
}
