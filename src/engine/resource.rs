//! The two shapes a resource takes: desired (from stack.yaml) and live (read
//! from the cloud). Both carry properties as JSON so the engine can diff,
//! print and save them without knowing any provider's types.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::value;

/// A kind's typed properties: one struct, used by whoever builds desired
/// resources and by the provider that reads and writes them. `KIND` names
/// the kind: the only place its name is written.
pub trait Props: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: &'static str;

    /// A desired resource of this kind at `address`.
    fn at(&self, address: impl Into<String>) -> Resource {
        Resource {
            address: address.into(),
            kind: Self::KIND.to_string(),
            // Props are maps with string keys: serializing cannot fail, and
            // the contract test (tests/contract.rs) would catch a kind whose
            // props did.
            props: serde_json::to_value(self).unwrap_or(Value::Null),
            depends_on: Vec::new(),
            reason: None,
        }
    }
}

/// A resource the stack wants to exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Stable, readable, tag-safe address, e.g. `network.subnet.public.us-east-1a`.
    pub address: String,
    /// Provider kind, e.g. `ec2.vpc`.
    pub kind: String,
    /// Desired properties; may contain references (see [`value`]).
    pub props: Value,
    /// Ordering-only dependencies, beyond those implied by references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Why the stack has it when the file does not say so itself (an
    /// endpoint added because the subnets have no NAT): shown when planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Resource {
    pub fn new(address: impl Into<String>, kind: &str, props: Value) -> Self {
        Resource { address: address.into(), kind: kind.to_string(), props, depends_on: Vec::new(), reason: None }
    }

    /// Says why the stack has this resource (see [`Resource::reason`]).
    pub fn because(mut self, why: impl Into<String>) -> Self {
        self.reason = Some(why.into());
        self
    }

    /// Adds an ordering-only dependency.
    pub fn after(mut self, address: &str) -> Self {
        if !self.depends_on.iter().any(|a| a == address) {
            self.depends_on.push(address.to_string());
        }
        self
    }

    /// The addresses that only the `late` properties reference (see
    /// `KindInfo::late_fields`), with those properties: the resource can be
    /// created before these exist.
    pub fn late_dependencies(&self, late: &[&str]) -> (Vec<String>, Vec<String>) {
        let Some(o) = self.props.as_object() else { return (Vec::new(), Vec::new()) };
        let (mut early, mut later, mut fields) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in o {
            if late.contains(&k.as_str()) {
                let before = later.len();
                value::referenced_addresses(v, &mut later);
                if later.len() > before {
                    fields.push(k.clone());
                }
            } else {
                value::referenced_addresses(v, &mut early);
            }
        }
        later.retain(|a| !early.contains(a) && !self.depends_on.contains(a));
        (later, fields)
    }

    /// Every address this resource needs to exist first.
    pub fn dependencies(&self) -> BTreeSet<String> {
        let mut refs = Vec::new();
        value::referenced_addresses(&self.props, &mut refs);
        refs.into_iter().chain(self.depends_on.iter().cloned()).collect()
    }
}

/// A resource found in the cloud, carrying our tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub address: String,
    pub kind: String,
    /// The provider's identifier (VPC id, ARN, name...).
    pub id: String,
    /// Properties in the same shape as the desired ones, for diffing.
    pub props: Value,
    /// Attributes other resources may reference (`id`, `arn`, `dns_name`...).
    #[serde(default)]
    pub attrs: Map<String, Value>,
}

impl Live {
    pub fn attr(&self, name: &str) -> Option<Value> {
        if name == "id" {
            return Some(self.attrs.get("id").cloned().unwrap_or_else(|| Value::String(self.id.clone())));
        }
        self.attrs.get(name).cloned()
    }
}
