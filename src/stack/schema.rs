//! Checks a document against the JSON Schema generated from [`crate::stack::spec`]
//! and turns every violation into a located, actionable [`PathError`].

use std::sync::LazyLock;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

use crate::stack::diagnostics::PathError;
use crate::stack::limits::did_you_mean;
use crate::stack::spec::json_schema;
use crate::stack::yaml::PathSeg;

static SCHEMA: LazyLock<Value> = LazyLock::new(json_schema);
static VALIDATOR: LazyLock<Option<jsonschema::Validator>> = LazyLock::new(|| jsonschema::validator_for(&SCHEMA).ok());

/// Every schema violation in `doc`.
pub fn check(doc: &Value) -> Vec<PathError> {
    let Some(v) = VALIDATOR.as_ref() else {
        return vec![PathError::new(vec![], "internal error: the stack schema does not compile")];
    };
    let mut out: Vec<PathError> = Vec::new();
    for e in v.iter_errors(doc) {
        report(&e, &mut out);
    }
    out
}

fn path_of(e: &ValidationError) -> Vec<PathSeg> {
    e.instance_path()
        .iter()
        .map(|s| match s {
            LocationSegment::Property(p) => PathSeg::Key(p.to_string()),
            LocationSegment::Index(i) => PathSeg::Index(i),
        })
        .collect()
}

/// The errors of the alternative of an anyOf/oneOf that fits the value's
/// type (e.g. the mapping of an optional section, the string of a nullable
/// enum): reporting them says what is wrong inside, where "expected a
/// mapping or nothing, found a mapping" would not.
fn fitting_branch<'a>(
    e: &ValidationError, context: &'a [Vec<ValidationError<'static>>],
) -> Option<&'a [ValidationError<'static>]> {
    let here = path_of(e);
    context
        .iter()
        .find(|branch| {
            !branch.is_empty()
                && !branch.iter().any(|b| matches!(b.kind(), ValidationErrorKind::Type { .. }) && path_of(b) == here)
        })
        .map(Vec::as_slice)
}

fn report(e: &ValidationError, out: &mut Vec<PathError>) {
    let path = path_of(e);
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = properties_at(&SCHEMA, &path);
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            for key in unexpected {
                let mut p = path.clone();
                p.push(PathSeg::Key(key.clone()));
                let help = match did_you_mean(key, &names) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None if names.is_empty() => "remove it".to_string(),
                    None => format!("known keys here: {}", names.join(", ")),
                };
                out.push(PathError {
                    path: p,
                    message: format!("unknown key `{key}`"),
                    help: Some(help),
                    at_key: true,
                });
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default().to_string();
            out.push(
                PathError::new(path, format!("missing required key `{name}`"))
                    .help(format!("add `{name}:` here (see the stack.yaml reference in the README)")),
            );
        }
        ValidationErrorKind::Type { .. } => {
            let expected = expected_type(&SCHEMA, &path);
            out.push(
                PathError::new(path, format!("expected {expected}, found {}", describe(e.instance())))
                    .help(type_help(&expected, e.instance())),
            );
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect())
                .unwrap_or_default();
            let refs: Vec<&str> = opts.iter().map(String::as_str).collect();
            let help = match e.instance().as_str().and_then(|s| did_you_mean(s, &refs)) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("use one of: {}", opts.join(", ")),
            };
            out.push(PathError::new(path, format!("{} is not allowed here", describe(e.instance()))).help(help));
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. }
            if !allowed_values(&SCHEMA, &path).is_empty() =>
        {
            let opts = allowed_values(&SCHEMA, &path);
            let refs: Vec<&str> = opts.iter().map(String::as_str).collect();
            let help = match e.instance().as_str().and_then(|s| did_you_mean(s, &refs)) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("use one of: {}", opts.join(", ")),
            };
            out.push(PathError::new(path, format!("{} is not allowed here", describe(e.instance()))).help(help));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }
            if fitting_branch(e, context).is_some() =>
        {
            for b in fitting_branch(e, context).unwrap_or_default() {
                report(b, out);
            }
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            let expected = expected_type(&SCHEMA, &path);
            out.push(
                PathError::new(path, format!("expected {expected}, found {}", describe(e.instance())))
                    .help("see the stack.yaml reference in the README"),
            );
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::Maximum { limit } => {
            out.push(
                PathError::new(path, format!("{} is out of range", describe(e.instance())))
                    .help(format!("the limit is {limit}")),
            );
        }
        _ => out.push(PathError::new(path, e.to_string())),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn type_help(expected: &str, found: &Value) -> String {
    match (expected, found) {
        (e, Value::Number(n)) if e.contains("string") => format!("quote it: \"{n}\""),
        (e, Value::Bool(b)) if e.contains("string") => format!("quote it: \"{b}\""),
        (e, Value::String(_)) if e.contains("list") => "write a list: `[a, b]` or one `- item` per line".into(),
        (e, Value::String(s)) if e.contains("integer") || e.contains("number") => {
            format!("write a number without quotes (e.g. {})", s.trim_matches('"'))
        }
        (e, _) => format!("write {e} here"),
    }
}

/// Follows the schema to the sub-schema describing `path`.
fn schema_at<'a>(schema: &'a Value, root: &'a Value, path: &[PathSeg]) -> Option<&'a Value> {
    let s = deref(schema, root);
    let Some((first, rest)) = path.split_first() else {
        return Some(s);
    };
    let next = match first {
        PathSeg::Key(k) => s
            .get("properties")
            .and_then(|p| p.get(k))
            .or_else(|| s.get("additionalProperties").filter(|a| a.is_object())),
        PathSeg::Index(_) => s.get("items"),
    };
    match next {
        Some(n) => schema_at(n, root, rest),
        None => {
            // Try each alternative of anyOf/oneOf.
            for key in ["anyOf", "oneOf"] {
                for alt in s.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(found) = schema_at(alt, root, path) {
                        return Some(found);
                    }
                }
            }
            None
        }
    }
}

fn deref<'a>(s: &'a Value, root: &'a Value) -> &'a Value {
    let mut cur = s;
    for _ in 0..16 {
        match cur.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix("#/").and_then(|p| root.pointer(&format!("/{p}"))) {
                Some(t) => cur = t,
                None => break,
            },
            None => break,
        }
    }
    cur
}

fn properties_at(root: &Value, path: &[PathSeg]) -> Vec<String> {
    let Some(s) = schema_at(root, root, path) else {
        return Vec::new();
    };
    // The mapping alternative of an anyOf/oneOf (optional sections, untagged enums).
    let alts = ["anyOf", "oneOf"]
        .iter()
        .flat_map(|k| s.get(*k).and_then(Value::as_array).into_iter().flatten())
        .map(|a| deref(a, root));
    std::iter::once(s)
        .chain(alts)
        .find_map(|s| s.get("properties").and_then(Value::as_object))
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The constants an enum-like sub-schema allows (`oneOf` of `const`s, or `enum`).
fn allowed_values(root: &Value, path: &[PathSeg]) -> Vec<String> {
    let Some(s) = schema_at(root, root, path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut take = |s: &Value| {
        if let Some(c) = s.get("const").and_then(Value::as_str) {
            out.push(c.to_string());
        }
        for v in s.get("enum").and_then(Value::as_array).into_iter().flatten() {
            if let Some(c) = v.as_str() {
                out.push(c.to_string());
            }
        }
    };
    take(s);
    for key in ["anyOf", "oneOf"] {
        for alt in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            take(deref(alt, root));
        }
    }
    out
}

fn expected_type(root: &Value, path: &[PathSeg]) -> String {
    let Some(s) = schema_at(root, root, path) else {
        return "another type".into();
    };
    let name = |t: &str| match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "nothing",
        _ => "a value",
    };
    let mut kinds: Vec<&str> = Vec::new();
    let mut collect = |s: &Value| match s.get("type") {
        Some(Value::String(t)) => kinds.push(name(t)),
        Some(Value::Array(ts)) => kinds.extend(ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").map(name)),
        _ => {}
    };
    collect(s);
    for key in ["anyOf", "oneOf"] {
        for alt in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            collect(deref(alt, root));
        }
    }
    kinds.dedup();
    if kinds.is_empty() { "another type".into() } else { kinds.join(" or ") }
}
