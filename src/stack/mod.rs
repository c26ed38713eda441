//! The front half: `stack.yaml` -> a resolved [`Stack`] -> desired resources.
//!
//! Loading never touches the network: bounded YAML loading with positions
//! ([`yaml`]), environment overlay, JSON Schema check of the whole document
//! (every unknown key and wrong type at once, [`schema`]), deserialization
//! into the [`spec`] types, then the semantic checks ([`check`], each tier's
//! `check`) that AWS itself would only report mid-apply; they also compute
//! every derived value once, into the resolved [`Stack`]. Each tier's
//! `expand` then turns the resolved stack into resources ([`expand()`]),
//! reading nothing but it.
//!
//! A tier is a folder: `spec` (its part of the file), `check` (its semantic
//! checks and derived values), `expand` (its resources). Checks never use
//! expansions; expansions share addresses through [`address`].

pub mod access;
pub mod address;
pub mod backend;
pub mod check;
pub mod compute;
pub mod data;
pub mod desired;
pub mod diagnostics;
pub mod frontend;
pub mod limits;
pub mod names;
pub mod network;
pub mod resolved;
pub mod schema;
pub mod spec;
pub mod template;
pub mod yaml;

use std::path::Path;

use serde_json::Value;

pub use desired::{Desired, Output};
pub use diagnostics::{Diagnostic, Diagnostics, PathError};
pub use resolved::{Overrides, Stack};
use yaml::{Node, PathSeg};

/// The tiers, in the order a plan lists them (each address starts with its
/// tier's name).
pub const TIERS: [&str; 5] = ["network", "compute", "frontend", "data", "backend"];

/// The desired resources and outputs of a resolved stack: each tier expands
/// its part, reading only the resolved stack (the order does not matter).
pub fn expand(stack: &Stack) -> Desired {
    let mut d = Desired::default();
    network::expand::expand(stack, &mut d);
    compute::expand::expand(stack, &mut d);
    backend::expand::expand(stack, &mut d);
    data::expand::expand(stack, &mut d);
    frontend::expand::expand(stack, &mut d);
    d
}

/// Loads and validates a stack file.
pub fn load(path: &Path, ov: &Overrides) -> Result<Stack, Box<Diagnostics>> {
    let file = path.display().to_string();
    let fail = |text: String, items: Vec<Diagnostic>| Err(Box::new(Diagnostics { file: file.clone(), text, items }));
    let limits = yaml::Limits::default();
    match std::fs::metadata(path) {
        Ok(m) if m.len() as usize > limits.max_bytes => {
            return fail(
                String::new(),
                vec![Diagnostic {
                    message: format!("file is {} bytes; the limit is {} bytes", m.len(), limits.max_bytes),
                    span: None,
                    help: Some("a stack file is a few kilobytes: is this the right file?".into()),
                }],
            );
        }
        Ok(_) => {}
        Err(e) => {
            return fail(
                String::new(),
                vec![Diagnostic {
                    message: format!("cannot read {file}: {e}"),
                    span: None,
                    help: Some("pass the stack file with -f FILE (default ./stack.yaml)".into()),
                }],
            );
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return fail(
                String::new(),
                vec![Diagnostic { message: format!("cannot read {file}: {e}"), span: None, help: None }],
            );
        }
    };
    // Text for rendering: lossy is fine, the loader reports bad UTF-8 itself.
    // Control characters are shown as `?` (one byte each, so offsets hold).
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() && !matches!(c, '\n' | '\r' | '\t') { '?' } else { c })
        .collect();
    let root = match yaml::parse(&bytes, &limits) {
        Ok(n) => n,
        Err(e) => {
            return fail(text, vec![Diagnostic { message: e.message, span: Some(e.span), help: e.help }]);
        }
    };
    let base_dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    match check_document(&root, ov, base_dir) {
        Ok(s) => Ok(s),
        Err(items) => fail(text, items),
    }
}

/// Every check after parsing; errors carry spans resolved against `root`.
pub fn check_document(root: &Node, ov: &Overrides, base_dir: std::path::PathBuf) -> Result<Stack, Vec<Diagnostic>> {
    let mut doc = root.to_json();
    if !doc.is_object() {
        return Err(vec![Diagnostic {
            message: "a stack file is a mapping with at least `stack:` and `network:`".into(),
            span: Some(root.span),
            help: Some("start from the reference stack.yaml or one of examples/".into()),
        }]);
    }
    let locate = Locator { root, env: ov.environment.clone() };

    // Environment overlay.
    if let Some(env) = &ov.environment {
        let envs = doc.get("environments").and_then(Value::as_object).cloned().unwrap_or_default();
        match envs.get(env) {
            Some(overlay) => {
                merge(&mut doc, overlay);
                if overlay.get("stack").is_none()
                    && let Some(Value::String(s)) = doc.get("stack")
                {
                    doc["stack"] = Value::String(format!("{s}-{env}"));
                }
            }
            None => {
                let names: Vec<&str> = envs.keys().map(String::as_str).collect();
                let help = match limits::did_you_mean(env, &names) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None if names.is_empty() => "the file defines no `environments:`".into(),
                    None => format!("defined environments: {}", names.join(", ")),
                };
                return Err(vec![Diagnostic {
                    message: format!("environment `{env}` is not defined"),
                    span: root.key_span_at(&[PathSeg::Key("environments".into())]).or(Some(root.span)),
                    help: Some(help),
                }]);
            }
        }
    }
    if let Some(o) = doc.as_object_mut() {
        o.remove("environments");
    }

    let errors = schema::check(&doc);
    if !errors.is_empty() {
        // Every error at once: the semantic checks also run, on what is left
        // once the schema's errors are cut out of the document.
        let semantic = well_formed_part(&doc, &errors)
            .and_then(|(part, cut)| {
                let spec: spec::StackFile = serde_json::from_value(part).ok()?;
                let errs = check::validate(spec, ov, base_dir).err()?;
                Some(errs.into_iter().filter(|e| !cut.iter().any(|c| about_the_cut(c, e))).collect::<Vec<_>>())
            })
            .unwrap_or_default();
        return Err(errors.into_iter().chain(semantic).map(|e| locate.diag(e)).collect());
    }
    let spec: spec::StackFile = match serde_json::from_value(doc) {
        Ok(s) => s,
        Err(e) => {
            return Err(vec![Diagnostic { message: e.to_string(), span: Some(root.span), help: None }]);
        }
    };
    check::validate(spec, ov, base_dir).map_err(|errs| errs.into_iter().map(|e| locate.diag(e)).collect())
}

/// The document without the values the schema rejects, and the paths cut:
/// each error's value goes (for a missing key, the mapping that lacks it),
/// round after round until the schema accepts what is left. `None` when that
/// takes the whole document or more rounds than a file has errors to give.
fn well_formed_part(doc: &Value, errors: &[PathError]) -> Option<(Value, Vec<Vec<PathSeg>>)> {
    let mut part = doc.clone();
    let mut cut: Vec<Vec<PathSeg>> = Vec::new();
    let mut errors = errors.to_vec();
    for _ in 0..8 {
        if errors.is_empty() {
            return Some((part, cut));
        }
        let mut paths: Vec<Vec<PathSeg>> = errors.iter().map(|e| e.path.clone()).collect();
        // Deepest and highest index first, so a removal moves no other path.
        paths.sort_by(|a, b| b.cmp(a));
        paths.dedup();
        for p in paths {
            if p.is_empty() || !remove_at(&mut part, &p) {
                return None;
            }
            cut.push(p);
        }
        errors = schema::check(&part);
    }
    None
}

/// Removes the value at `path`; false when there is none.
fn remove_at(doc: &mut Value, path: &[PathSeg]) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    let mut v = doc;
    for seg in parent {
        let next = match (seg, v) {
            (PathSeg::Key(k), Value::Object(o)) => o.get_mut(k),
            (PathSeg::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        v = next;
    }
    match (last, v) {
        (PathSeg::Key(k), Value::Object(o)) => o.remove(k).is_some(),
        (PathSeg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

/// Whether a semantic error may only come from the cut at `cut`: it lies
/// within the cut or holds it (a key the schema rejected, seen as missing),
/// or it names what was cut (a route to `orders` once the function `orders`,
/// missing its runtime, is cut).
fn about_the_cut(cut: &[PathSeg], e: &PathError) -> bool {
    let named = match cut.last() {
        Some(PathSeg::Key(k)) => e.message.contains(&format!("`{k}`")),
        _ => false,
    };
    named || cut.starts_with(&e.path) || e.path.starts_with(cut)
}

/// Finds where in the file a path of the merged document came from: the
/// selected environment's overlay if it sets it, else the base document.
struct Locator<'a> {
    root: &'a Node,
    env: Option<String>,
}

impl Locator<'_> {
    fn diag(&self, e: PathError) -> Diagnostic {
        let mut candidates = Vec::new();
        if let Some(env) = &self.env {
            let mut p = vec![PathSeg::Key("environments".into()), PathSeg::Key(env.clone())];
            p.extend(e.path.iter().cloned());
            candidates.push(p);
        }
        candidates.push(e.path.clone());
        let mut span = None;
        for p in &candidates {
            let found = if e.at_key { self.root.key_span_at(p) } else { self.root.span_at(p) };
            if found.is_some() {
                span = found;
                break;
            }
        }
        let span = if e.path.is_empty() {
            // About the file as a whole: point at its start, not at all of it.
            yaml::Span { start: 0, end: 0, line: 1, col: 1 }
        } else {
            span.unwrap_or_else(|| self.root.nearest_span(&e.path))
        };
        let path = diagnostics::path_string(&e.path);
        let message = if path.is_empty() { e.message } else { format!("{path}: {}", e.message) };
        Diagnostic { message, span: Some(span), help: e.help }
    }
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}
