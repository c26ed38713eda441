//! Validated stack -> desired resource graph. Each tier expands its part of
//! the file into low-level resources with stable, tag-safe addresses.

pub mod backend;
pub mod compute;
pub mod data;
pub mod frontend;
pub mod network;
pub mod package;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::config::Stack;
use crate::engine::resource::Resource;

/// A named value users read with `infra output`: an attribute of a resource.
#[derive(Clone, Debug)]
pub struct Output {
    pub name: &'static str,
    pub address: String,
    pub attr: &'static str,
    pub description: &'static str,
}

/// Everything the stack wants.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub resources: Vec<Resource>,
    pub outputs: Vec<Output>,
}

/// Expands every tier.
pub fn expand(stack: &Stack) -> Desired {
    let mut d = Desired::default();
    network::expand(stack, &mut d);
    compute::expand(stack, &mut d);
    backend::expand(stack, &mut d);
    // Keep last: the database waits for `available` only if a resource
    // expanded before it reads its endpoint.
    data::expand(stack, &mut d);
    // Last: it routes `/api/*` to the backend tier's stage when there is one.
    frontend::expand(stack, &mut d);
    d
}

/// The tags a resource gets: the user's, plus a readable Name.
pub fn tags(stack: &Stack, name: &str) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = stack.spec.tags.clone();
    t.insert("Name".into(), format!("{}-{}", stack.name, name));
    t
}

/// Builds a JSON object from pairs, skipping nulls.
pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.to_string(), v))
            .collect::<Map<_, _>>(),
    )
}
