//! References between resources inside property values.
//!
//! A desired property that depends on another resource (a subnet's VPC id, a
//! rule's source security group) is written as `{"$ref": "network.vpc#id"}`.
//! Keeping references symbolic lets one value serve three moments: the plan
//! (resolved against live state where the target exists, otherwise shown as
//! "known after apply"), the saved plan file (kept symbolic), and the executor
//! (resolved against the attributes of the step that just created the target).

use serde_json::{Map, Value, json};

/// Key of a reference object.
pub const REF_KEY: &str = "$ref";
/// Key of the placeholder for a value that only exists after apply.
pub const UNKNOWN_KEY: &str = "$unknown";

/// A reference to attribute `attr` of the resource at `address`.
pub fn reference(address: &str, attr: &str) -> Value {
    json!({ REF_KEY: format!("{address}#{attr}") })
}

/// `(address, attr)` if `v` is a reference object.
pub fn as_ref(v: &Value) -> Option<(&str, &str)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.get(REF_KEY)?.as_str()?.split_once('#')
}

/// The placeholder that stands for a value computed during apply.
pub fn unknown(address: &str, attr: &str) -> Value {
    json!({ UNKNOWN_KEY: format!("{address}#{attr}") })
}

/// Whether `v` contains an unknown placeholder anywhere.
pub fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.contains_key(UNKNOWN_KEY) || o.values().any(contains_unknown),
        Value::Array(a) => a.iter().any(contains_unknown),
        _ => false,
    }
}

/// Every address referenced from `v`, in order of appearance.
pub fn referenced_addresses(v: &Value, out: &mut Vec<String>) {
    if let Some((addr, _)) = as_ref(v) {
        if !out.iter().any(|a| a == addr) {
            out.push(addr.to_string());
        }
        return;
    }
    match v {
        Value::Object(o) => o.values().for_each(|x| referenced_addresses(x, out)),
        Value::Array(a) => a.iter().for_each(|x| referenced_addresses(x, out)),
        _ => {}
    }
}

/// Replace every reference with what `lookup` returns; references it cannot
/// answer become unknown placeholders.
pub fn resolve(v: &Value, lookup: &dyn Fn(&str, &str) -> Option<Value>) -> Value {
    if let Some((addr, attr)) = as_ref(v) {
        return lookup(addr, attr).unwrap_or_else(|| unknown(addr, attr));
    }
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve(x, lookup)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve(x, lookup)).collect()),
        other => other.clone(),
    }
}

/// Every string leaf of `v` (used to find which live resources reference which).
pub fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Short human rendering of a value for plan output.
pub fn render(v: &Value) -> String {
    if let Some(obj) = v.as_object()
        && let Some(Value::String(_)) = obj.get(UNKNOWN_KEY)
    {
        return "(known after apply)".to_string();
    }
    if let Some((addr, attr)) = as_ref(v) {
        return format!("({addr}.{attr})");
    }
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("[{}]", a.iter().map(render).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, x)| format!("{k}: {}", render(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_and_marks_unknown() {
        let v = json!({"vpc": reference("network.vpc", "id"), "x": [reference("a", "arn"), 1]});
        let r = resolve(&v, &|addr, attr| {
            (addr == "network.vpc" && attr == "id").then(|| json!("vpc-1"))
        });
        assert_eq!(r["vpc"], json!("vpc-1"));
        assert!(contains_unknown(&r["x"]));
        assert!(!contains_unknown(&r["vpc"]));
        assert_eq!(render(&r["x"][0]), "(known after apply)");
        let mut refs = vec![];
        referenced_addresses(&v, &mut refs);
        assert_eq!(refs, vec!["network.vpc".to_string(), "a".to_string()]);
    }

    #[test]
    fn a_plain_object_is_not_a_reference() {
        assert!(as_ref(&json!({"$ref": "a#b", "other": 1})).is_none());
        assert!(as_ref(&json!({"$ref": "no-attr"})).is_none());
    }
}
