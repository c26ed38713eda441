//! The layout keeps data flowing one way: no module of `src/` uses another
//! that uses it back (directly or around a longer cycle), the front half
//! (`stack`) never reaches into the provider's internals or the expansion
//! from its checks, and the engine knows nothing of AWS.
//!
//! Module edges come from the source text: every `crate::` path and every
//! `super::` path (in `use` items and inline), resolved to the file module
//! that defines it. `mod` declarations are not edges.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`aws::ec2::vpc`) -> source file, for every file of `src/`.
fn modules(src: &Path) -> BTreeMap<String, std::path::PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] {
                continue;
            }
            out.insert(parts.join("::"), p);
        }
    }
    out
}

/// The longest module that prefixes `path` (a `::`-separated path).
fn owner<'a>(path: &[&str], mods: &'a BTreeMap<String, std::path::PathBuf>) -> Option<&'a str> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find_map(|p| mods.get_key_value(&p).map(|(k, _)| k.as_str()))
}

/// Code without comments and string literals (so doc examples and messages
/// that mention paths are not edges), and without `#[cfg(test)]` modules.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // Skip the test module: up to the end of the file (they are last).
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
                prev = c;
                continue;
            }
            if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Paths used in `text` of module `me`, as absolute `::` paths (brace
/// groups of `use` items expanded one level at a time).
fn used_paths(text: &str, me: &str) -> Vec<Vec<String>> {
    let text = code(text);
    let mut out = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let starts = |w: &str| rest.starts_with(w) && (i == 0 || !is_ident(bytes[i - 1]));
        let base: Option<Vec<String>> = if starts("crate::") {
            i += 7;
            Some(vec![])
        } else if starts("super::") {
            let mut b: Vec<String> = me.split("::").map(str::to_string).collect();
            b.pop();
            i += 7;
            while bytes[i..].iter().collect::<String>().starts_with("super::") {
                b.pop();
                i += 7;
            }
            Some(b)
        } else {
            None
        };
        let Some(base) = base else {
            i += 1;
            continue;
        };
        let (paths, next) = parse_tree(&bytes, i, base);
        out.extend(paths);
        i = next.max(i + 1);
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parses `a::b::{c, d::e}` at `i` under `base`; returns the paths and the end.
fn parse_tree(b: &[char], mut i: usize, base: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = base;
    loop {
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i > start {
            path.push(b[start..i].iter().collect());
        }
        if i + 1 < b.len() && b[i] == ':' && b[i + 1] == ':' {
            i += 2;
            if i < b.len() && b[i] == '{' {
                i += 1;
                let mut all = Vec::new();
                loop {
                    while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
                        i += 1;
                    }
                    if i >= b.len() || b[i] == '}' {
                        return (all, i + 1);
                    }
                    let (p, next) = parse_tree(b, i, path.clone());
                    all.extend(p);
                    i = next;
                    // Skip `as x`.
                    while i < b.len() && b[i] != ',' && b[i] != '}' {
                        i += 1;
                    }
                }
            }
            continue;
        }
        return (vec![path], i);
    }
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = common::repo_root().join("src");
    let mods = modules(&src);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        let deps = g.entry(m.clone()).or_default();
        for p in used_paths(&text, m) {
            let parts: Vec<&str> = p.iter().map(String::as_str).collect();
            if let Some(o) = owner(&parts, &mods)
                && o != m
                // A child using its own ancestor module's items is fine only
                // if that ancestor does not use it back: kept as an edge.
                && !o.starts_with(&format!("{m}::"))
            {
                deps.insert(o.to_string());
            }
        }
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        on: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let g = edges();
    let found = cycles(&g);
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let set: BTreeSet<&String> = scc.iter().collect();
            let inner: Vec<String> = scc
                .iter()
                .flat_map(|a| g[a].iter().filter(|b| set.contains(b)).map(move |b| format!("{a} -> {b}")))
                .collect();
            inner.join(", ")
        })
        .collect();
    assert!(found.is_empty(), "import cycles:\n  {}", explain.join("\n  "));
}

#[test]
fn the_engine_knows_no_aws_and_the_checks_no_expansion() {
    let g = edges();
    let expansion = |d: &str| d.ends_with("::expand") || d == "stack::desired";
    for (m, deps) in &g {
        // The front half's checks and specs never reach into an expansion
        // (the old `config` importing `model`).
        if m.starts_with("stack::") && (m.ends_with("check") || m.ends_with("spec")) {
            let bad: Vec<&String> = deps.iter().filter(|d| expansion(d)).collect();
            assert!(bad.is_empty(), "{m} uses {bad:?}: checks compute values, expansions read them");
        }
        // The provider never knows the front half (no model addresses in it).
        if m.starts_with("aws::") {
            let bad: Vec<&String> = deps
                .iter()
                .filter(|d| d.starts_with("stack") || d.starts_with("ops") || d.starts_with("cli"))
                .collect();
            assert!(bad.is_empty(), "{m} uses {bad:?}: the provider must not know the stack file");
        }
        if m == "engine" || m.starts_with("engine::") {
            let bad: Vec<&String> =
                deps.iter().filter(|d| !(d.as_str() == "engine" || d.starts_with("engine::"))).collect();
            assert!(bad.is_empty(), "{m} uses {bad:?}: the engine must stay provider-agnostic");
        }
    }
}

#[test]
fn the_parser_finds_use_trees_and_inline_paths() {
    let text = "use crate::aws::{Aws, ec2::{vpc::VpcProps, subnet}};\nfn f() { crate::engine::value::reference(\"a\", \"b\"); super::x::y(); }\n// crate::not::this\nlet s = \"crate::nor::this\";\n";
    let mut p: Vec<String> = used_paths(text, "stack::network::expand").into_iter().map(|p| p.join("::")).collect();
    p.sort();
    assert_eq!(
        p,
        vec![
            "aws::Aws",
            "aws::ec2::subnet",
            "aws::ec2::vpc::VpcProps",
            "engine::value::reference",
            "stack::network::x::y"
        ]
    );
}
