//! Small helpers shared by the compute tier's kinds (launch templates, Auto
//! Scaling groups, load balancing).

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Aws;
use super::errors::AwsError;
use crate::engine::resource::{Live, Resource};

/// A live resource with `id` among its attributes.
pub fn live(kind: &str, address: &str, id: &str, props: Value, attrs: Value) -> Live {
    let mut a: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    a.insert("id".into(), json!(id));
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

/// Parses a live resource's typed props.
pub fn live_props<T: for<'de> Deserialize<'de>>(l: &Live) -> Result<T> {
    serde_json::from_value(l.props.clone())
        .with_context(|| format!("internal error: bad live properties for {}", l.address))
}

/// NotFound is success for deletes and an empty answer for reads.
pub fn ignore_not_found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// EC2 filter on this stack's tag (and an address).
pub fn ec2_filters(aws: &Aws, address: Option<&str>) -> Vec<aws_sdk_ec2::types::Filter> {
    use aws_sdk_ec2::types::Filter;
    let mut f = vec![
        Filter::builder()
            .name(format!("tag:{}", super::STACK_TAG))
            .values(&aws.stack)
            .build(),
    ];
    if let Some(a) = address {
        f.push(
            Filter::builder()
                .name(format!("tag:{}", super::ADDRESS_TAG))
                .values(a)
                .build(),
        );
    }
    f
}

pub fn ec2_tag_map(t: &[aws_sdk_ec2::types::Tag]) -> super::tags::Tags {
    t.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

pub fn ec2_tags(t: &super::tags::Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    t.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// Sorts (and dedups) an array property so that sets compare equal.
pub fn sort_array(v: &mut Value, key: &str) {
    if let Some(Value::Array(a)) = v.get_mut(key) {
        a.sort_by_key(|x| x.to_string());
        a.dedup();
    }
}
