//! What the expansion of a stack yields: its desired resources and outputs,
//! and the small builders every tier's expansion shares.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::engine::resource::Resource;
use crate::stack::Stack;

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

/// The tags a resource gets: the user's, plus a readable Name.
pub fn tags(stack: &Stack, name: &str) -> BTreeMap<String, String> {
    let mut t: BTreeMap<String, String> = stack.spec.tags.clone();
    t.insert("Name".into(), format!("{}-{}", stack.name, name));
    t
}

/// Builds a JSON object from pairs, skipping nulls.
pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(
        pairs.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>(),
    )
}
