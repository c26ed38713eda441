//! Helpers shared by the backend tier's kinds (logs, IAM, Lambda, API Gateway).

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Aws;
use super::errors::AwsError;
use crate::engine::resource::{Live, Resource};

pub fn live(kind: &str, address: &str, id: &str, props: Value, attrs: Value) -> Live {
    let mut a: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    a.entry("id").or_insert_with(|| json!(id));
    Live {
        address: address.into(),
        kind: kind.into(),
        id: id.into(),
        props,
        attrs: a,
    }
}

/// Parses a kind's typed props.
pub fn props<T: for<'de> Deserialize<'de>>(d: &Resource) -> Result<T> {
    serde_json::from_value(d.props.clone())
        .with_context(|| format!("internal error: bad properties for {}", d.address))
}

pub fn ignore_not_found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn sort_array(props: &mut Value, key: &str) {
    if let Some(Value::Array(a)) = props.get_mut(key) {
        a.sort_by_key(|v| v.to_string());
        a.dedup();
    }
}

/// An ARN of this account and region, from STS (never from an API echo).
pub async fn arn(aws: &Aws, service: &str, region: &str, resource: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!(
        "arn:{partition}:{service}:{region}:{account}:{resource}"
    ))
}

/// Decodes the URL encoding IAM applies to policy documents.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("-"), 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document as JSON, whether the API returned it URL-encoded
/// (real IAM) or plain.
pub fn policy_json(doc: &str) -> Value {
    serde_json::from_str(doc)
        .or_else(|_| serde_json::from_str(&percent_decode(doc)))
        .unwrap_or_else(|_| json!(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_iam_documents() {
        assert_eq!(
            percent_decode("%7B%22a%22%3A%20%22b%2Bc%22%7D"),
            r#"{"a": "b+c"}"#
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(policy_json(r#"{"x":1}"#), json!({"x": 1}));
        assert_eq!(policy_json("%7B%22x%22%3A1%7D"), json!({"x": 1}));
    }
}
