//! String concatenation over references.
//!
//! A reference (`{"$ref": ...}`) stands for a whole value. Some properties
//! need a reference inside a string: an IAM resource `<table arn>/index/*`, a
//! Lambda permission's `<execution arn>/*`, an environment variable
//! `postgres://${database.endpoint}`. Such a value is written
//! `{"$concat": [part, ...]}`; the engine resolves the references inside it
//! like anywhere else, and [`join`] turns a fully resolved concatenation into
//! the plain string. Kinds call [`join`] in `normalize` (so desired and live
//! compare as strings) and before sending props to the cloud.
//!
//! `{"$sha256": [part, ...]}` is the hex SHA-256 of the concatenation: a
//! digest of text with references inside (a launch template's user data, as
//! the Auto Scaling group compares it), known once its parts are.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CONCAT_KEY: &str = "$concat";
pub const SHA256_KEY: &str = "$sha256";

/// The concatenation of `parts` (strings and references); a plain string
/// when every part is already a string.
pub fn concat(parts: Vec<Value>) -> Value {
    if parts.iter().all(Value::is_string) {
        return Value::String(parts.iter().filter_map(Value::as_str).collect());
    }
    if parts.len() == 1 {
        return parts.into_iter().next().unwrap_or(Value::Null);
    }
    json!({ CONCAT_KEY: parts })
}

/// The SHA-256 (hex) of the concatenation of `parts`: the digest itself when
/// every part is already a string.
pub fn sha256(parts: Vec<Value>) -> Value {
    if parts.iter().all(Value::is_string) {
        let text: String = parts.iter().filter_map(Value::as_str).collect();
        return Value::String(hex::encode(Sha256::digest(text.as_bytes())));
    }
    json!({ SHA256_KEY: parts })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Replaces every concatenation whose parts are all resolved (strings,
/// numbers, booleans) with the joined string, recursively. Unresolved ones
/// (a part still a reference or unknown) are left as they are.
pub fn join(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (key, digest) in [(CONCAT_KEY, false), (SHA256_KEY, true)] {
                if o.len() == 1
                    && let Some(Value::Array(parts)) = o.get_mut(key)
                {
                    parts.iter_mut().for_each(join);
                    let joined: Option<String> = parts.iter().map(scalar).collect();
                    if let Some(s) = joined {
                        *v = Value::String(if digest { hex::encode(Sha256::digest(s.as_bytes())) } else { s });
                    }
                    return;
                }
            }
            o.values_mut().for_each(join);
        }
        Value::Array(a) => a.iter_mut().for_each(join),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::{reference, resolve};

    #[test]
    fn joins_once_resolved() {
        let c = concat(vec![reference("data.table.t", "arn"), json!("/index/*")]);
        let mut unresolved = json!({"r": [c.clone()]});
        join(&mut unresolved);
        assert_eq!(unresolved["r"][0], c, "a reference stays symbolic");
        let mut r = resolve(&json!({"r": [c]}), &|_, _| Some(json!("arn:t")));
        join(&mut r);
        assert_eq!(r, json!({"r": ["arn:t/index/*"]}));
    }

    #[test]
    fn digests_once_resolved() {
        let d = sha256(vec![json!("url="), reference("backend.stage", "invoke_url"), json!("\n")]);
        let mut unresolved = d.clone();
        join(&mut unresolved);
        assert_eq!(unresolved, d, "a digest of a reference stays symbolic");
        let mut r = resolve(&d, &|_, _| Some(json!("https://x")));
        join(&mut r);
        assert_eq!(r, json!(hex::encode(Sha256::digest(b"url=https://x\n"))));
        assert_eq!(sha256(vec![json!("url=https://x\n")]), r, "plain text digests at once");
    }

    #[test]
    fn plain_parts_collapse() {
        assert_eq!(concat(vec![json!("a"), json!("b")]), json!("ab"));
        let only = reference("x", "y");
        assert_eq!(concat(vec![only.clone()]), only);
        let mut n = json!({"$concat": ["port=", 5432]});
        join(&mut n);
        assert_eq!(n, json!("port=5432"));
    }
}
