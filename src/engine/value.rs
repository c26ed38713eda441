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
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), resolve(x, lookup))).collect::<Map<_, _>>())
        }
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

/// A property another resource's attribute may fill: the expansion writes
/// `Ref::to("network.vpc", "id")` (`{"$ref": "network.vpc#id"}` in the JSON)
/// or a concatenation around references, and the kind sees the plain value
/// once the engine has resolved it. Read from the cloud, it is always a value.
///
/// Kinds declare their reference-holding props with this type, so the
/// props struct serves the expansion (symbolic) and the provider (resolved).
#[derive(Clone, Debug, PartialEq)]
pub enum Ref<T = String> {
    /// A known value.
    Value(T),
    /// A reference, concatenation or unknown placeholder, not yet resolved.
    Pending(Value),
}

impl<T> Ref<T> {
    /// A reference to attribute `attr` of the resource at `address`.
    pub fn to(address: &str, attr: &str) -> Self {
        Ref::Pending(reference(address, attr))
    }

    /// The value; an error naming what is still symbolic if unresolved (the
    /// engine resolves every reference before a kind sees its props).
    pub fn get(&self) -> anyhow::Result<&T> {
        match self {
            Ref::Value(v) => Ok(v),
            Ref::Pending(p) => anyhow::bail!("internal error: {} was not resolved", render(p)),
        }
    }

    /// The value, if resolved.
    pub fn known(&self) -> Option<&T> {
        match self {
            Ref::Value(v) => Some(v),
            Ref::Pending(_) => None,
        }
    }
}

impl Ref<String> {
    /// The concatenation of `parts` (strings and references), e.g. an ARN
    /// followed by `/*`.
    pub fn concat(parts: Vec<Value>) -> Self {
        match super::concat::concat(parts) {
            Value::String(s) => Ref::Value(s),
            other => Ref::Pending(other),
        }
    }

    /// The hex SHA-256 of the concatenation of `parts`, known once they are.
    pub fn sha256(parts: Vec<Value>) -> Self {
        match super::concat::sha256(parts) {
            Value::String(s) => Ref::Value(s),
            other => Ref::Pending(other),
        }
    }

    /// The parts of this text: itself, or its concatenation's parts.
    pub fn parts(&self) -> Vec<Value> {
        match self {
            Ref::Value(s) => vec![Value::String(s.clone())],
            Ref::Pending(p) => match p.get(super::concat::CONCAT_KEY) {
                Some(Value::Array(parts)) if p.as_object().is_some_and(|o| o.len() == 1) => parts.clone(),
                _ => vec![p.clone()],
            },
        }
    }

    /// Every value of `refs`, or the first unresolved one's error.
    pub fn all(refs: &[Ref<String>]) -> anyhow::Result<Vec<String>> {
        refs.iter().map(|r| r.get().cloned()).collect()
    }
}

impl<T> From<T> for Ref<T> {
    fn from(v: T) -> Self {
        Ref::Value(v)
    }
}

impl From<&str> for Ref<String> {
    fn from(v: &str) -> Self {
        Ref::Value(v.to_string())
    }
}

impl<T: serde::Serialize> serde::Serialize for Ref<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ref::Value(v) => v.serialize(s),
            Ref::Pending(p) => p.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for Ref<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if is_symbolic(&v) {
            return Ok(Ref::Pending(v));
        }
        T::deserialize(v).map(Ref::Value).map_err(serde::de::Error::custom)
    }
}

/// Refs sort by their value (resolved) or their text, so sets of rules or
/// routes that hold them sort the same way on both sides of a diff.
impl<T: Ord> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Ref::Value(a), Ref::Value(b)) => a.cmp(b),
            (Ref::Value(_), Ref::Pending(_)) => std::cmp::Ordering::Less,
            (Ref::Pending(_), Ref::Value(_)) => std::cmp::Ordering::Greater,
            (Ref::Pending(a), Ref::Pending(b)) => a.to_string().cmp(&b.to_string()),
        }
    }
}

impl<T: Eq> Eq for Ref<T> {}

/// Whether `v` is a reference, a concatenation or an unknown placeholder.
pub fn is_symbolic(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.len() == 1
            && (o.contains_key(REF_KEY)
                || o.contains_key(UNKNOWN_KEY)
                || o.contains_key(super::concat::CONCAT_KEY)
                || o.contains_key(super::concat::SHA256_KEY))
    })
}

/// What of a late property (see `KindInfo::late_fields`) is known now: the
/// map loses its entries, the list its elements, that hold an unknown
/// placeholder. Below the top, a list keeps its known elements (a statement
/// keeps the resources it can name) and goes when none is left, and a map with
/// an unknown part goes whole (a policy statement without its `Resource`
/// would be malformed), as does a reference or concatenation with an unknown
/// part (half a string is a wrong string, not a shorter one).
pub fn known_part(v: &Value) -> Value {
    fn prune(v: &Value) -> Option<Value> {
        if is_symbolic(v) {
            return (!contains_unknown(v)).then(|| v.clone());
        }
        match v {
            Value::Object(o) => o
                .iter()
                .map(|(k, x)| prune(x).map(|x| (k.clone(), x)))
                .collect::<Option<Map<_, _>>>()
                .map(Value::Object),
            Value::Array(a) => {
                let kept: Vec<Value> = a.iter().filter_map(prune).collect();
                (a.is_empty() || !kept.is_empty()).then_some(Value::Array(kept))
            }
            _ => Some(v.clone()),
        }
    }
    match v {
        Value::Object(o) if !is_symbolic(v) => {
            Value::Object(o.iter().filter_map(|(k, x)| prune(x).map(|x| (k.clone(), x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().filter_map(prune).collect()),
        _ => v.clone(),
    }
}

/// The first reference or unknown placeholder left in `v`, as `address#attr`.
pub fn first_unresolved(v: &Value) -> Option<String> {
    if let Some((addr, attr)) = as_ref(v) {
        return Some(format!("{addr}#{attr}"));
    }
    match v {
        Value::Object(o) => {
            if let Some(Value::String(s)) = o.get(UNKNOWN_KEY) {
                return Some(s.clone());
            }
            o.values().find_map(first_unresolved)
        }
        Value::Array(a) => a.iter().find_map(first_unresolved),
        _ => None,
    }
}

/// Sorts and dedups the array at `key`, so that sets (rules, routes, ids)
/// compare equal whatever order each side lists them in (for normalize).
pub fn sort_set(props: &mut Value, key: &str) {
    if let Some(Value::Array(a)) = props.get_mut(key) {
        a.sort_by_key(|v| v.to_string());
        a.dedup();
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
        Value::Object(o) => {
            format!("{{{}}}", o.iter().map(|(k, x)| format!("{k}: {}", render(x))).collect::<Vec<_>>().join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_and_marks_unknown() {
        let v = json!({"vpc": reference("network.vpc", "id"), "x": [reference("a", "arn"), 1]});
        let r = resolve(&v, &|addr, attr| (addr == "network.vpc" && attr == "id").then(|| json!("vpc-1")));
        assert_eq!(r["vpc"], json!("vpc-1"));
        assert!(contains_unknown(&r["x"]));
        assert!(!contains_unknown(&r["vpc"]));
        assert_eq!(render(&r["x"][0]), "(known after apply)");
        let mut refs = vec![];
        referenced_addresses(&v, &mut refs);
        assert_eq!(refs, vec!["network.vpc".to_string(), "a".to_string()]);
    }

    #[test]
    fn the_known_part_of_a_late_property() {
        let u = unknown("data.db", "endpoint");
        // A map loses the entries that are not known yet.
        let env = json!({"HOST": u.clone(), "TABLE": "t", "URL": {"$concat": ["https://", u.clone()]}});
        assert_eq!(known_part(&env), json!({"TABLE": "t"}));
        // Inline policies: a statement keeps the resources it can name, goes
        // when its only resource is unknown; a policy with no statement left goes.
        let policies = json!({
            "data": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": ["arn:t", u.clone()]},
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": u.clone()},
            ]},
            "secret": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "x:Y", "Resource": u.clone()}]},
            "logs": {"Version": "2012-10-17", "Statement": [], "Id": "kept"},
        });
        assert_eq!(
            known_part(&policies),
            json!({
                "data": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": ["arn:t"]},
                ]},
                "logs": {"Version": "2012-10-17", "Statement": [], "Id": "kept"},
            })
        );
        assert_eq!(known_part(&json!(["a", u.clone(), ["b", u]])), json!(["a", ["b"]]));
        assert_eq!(known_part(&json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn a_plain_object_is_not_a_reference() {
        assert!(as_ref(&json!({"$ref": "a#b", "other": 1})).is_none());
        assert!(as_ref(&json!({"$ref": "no-attr"})).is_none());
    }

    #[test]
    fn a_ref_is_symbolic_until_resolved() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct P {
            vpc_id: Ref,
            ids: Vec<Ref>,
        }
        let p = P {
            vpc_id: Ref::to("network.vpc", "id"),
            ids: vec!["a".into(), Ref::concat(vec![reference("x", "arn"), json!("/*")])],
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["vpc_id"], json!({"$ref": "network.vpc#id"}));
        assert_eq!(v["ids"][0], json!("a"));
        let back: P = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, p);
        assert!(back.vpc_id.get().unwrap_err().to_string().contains("network.vpc.id"));
        let mut r = resolve(&v, &|_, _| Some(json!("vpc-1")));
        crate::engine::concat::join(&mut r);
        let done: P = serde_json::from_value(r).unwrap();
        assert_eq!(done.vpc_id.get().unwrap(), "vpc-1");
        assert_eq!(Ref::all(&done.ids).unwrap(), vec!["a", "vpc-1/*"]);
        assert_eq!(first_unresolved(&v["vpc_id"]).as_deref(), Some("network.vpc#id"));
        assert_eq!(first_unresolved(&json!({"$unknown": "a#b"})).as_deref(), Some("a#b"));
    }
}
