//! The plan: a value that says what apply or destroy will do. It is printed,
//! saved to a file, and executed; nothing in it depends on a provider's types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::resource::{Live, Resource};

/// Version of the saved/JSON plan document (bumped on incompatible changes).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "unchanged",
            Action::Create => "create",
            Action::Update => "update in place",
            Action::Replace => "replace",
            Action::Delete => "destroy",
        }
    }
}

/// Whether the plan builds the stack or tears it down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Apply,
    Destroy,
}

/// One property that changes. `old`/`new` are absent when the property is
/// absent on that side; `new` may hold an unknown placeholder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
    #[serde(default)]
    pub forces_replacement: bool,
}

/// What happens to one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Change {
    pub address: String,
    pub kind: String,
    pub action: Action,
    /// The desired resource (absent for deletions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub desired: Option<Resource>,
    /// The live resource (absent for creations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub live: Option<Live>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Deleting or replacing this resource would lose data without a backup.
    #[serde(default)]
    pub data_loss: bool,
    /// Why, when it is not obvious (e.g. "not in stack.yaml").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The file sets `deletion_protection: true`: deleting it is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletion_protected: bool,
    /// Free-form notes the provider attaches (e.g. "instance refresh").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Addresses this creation does not wait for: its late properties (see
    /// `KindInfo::late_fields`) take values from them, so it is created
    /// without those values and updated once these exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fill_in_after: Vec<String>,
}

/// Counts printed at the end of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    pub unchanged: usize,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.replace + self.destroy == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} to add, {} to change, {} to replace, {} to destroy",
            self.add, self.change, self.replace, self.destroy
        )
    }
}

/// A complete plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    pub tool_version: String,
    pub stack: String,
    pub region: String,
    pub mode: Mode,
    pub created_at: String,
    pub summary: Summary,
    /// Every address of the stack, unchanged ones included (their live
    /// attributes resolve references during apply).
    pub changes: Vec<Change>,
    /// Fingerprint of each live resource the plan was computed from, by
    /// address (and id), to refuse a stale saved plan.
    pub state: BTreeMap<String, String>,
    /// Extra lines shown with the plan (e.g. site upload counts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn new(stack: &str, region: &str, mode: Mode, changes: Vec<Change>, live: &[Live]) -> Plan {
        let summary = summarize(&changes);
        Plan {
            format_version: FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            stack: stack.to_string(),
            region: region.to_string(),
            mode,
            created_at: now_rfc3339(),
            summary,
            changes,
            state: fingerprints(live),
            notes: Vec::new(),
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.summary.is_empty()
    }
}

pub fn summarize(changes: &[Change]) -> Summary {
    let mut s = Summary::default();
    for c in changes {
        match c.action {
            Action::NoOp => s.unchanged += 1,
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Replace => s.replace += 1,
            Action::Delete => s.destroy += 1,
        }
    }
    s
}

/// Fingerprint of every live resource, keyed `address@id`.
pub fn fingerprints(live: &[Live]) -> BTreeMap<String, String> {
    live.iter()
        .map(|l| {
            let mut h = Sha256::new();
            h.update(l.kind.as_bytes());
            h.update(serde_json::to_vec(&l.props).unwrap_or_default());
            (format!("{}@{}", l.address, l.id), hex::encode(&h.finalize()[..12]))
        })
        .collect()
}

/// Differences between two fingerprint sets, as human lines.
pub fn fingerprint_drift(saved: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in saved {
        match now.get(k) {
            None => out.push(format!("{k} no longer exists")),
            Some(n) if n != v => out.push(format!("{k} changed")),
            _ => {}
        }
    }
    for k in now.keys().filter(|k| !saved.contains_key(*k)) {
        out.push(format!("{k} appeared"));
    }
    out
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
