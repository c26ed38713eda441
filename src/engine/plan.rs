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

impl Summary {
    /// The counts that are not zero, e.g. `3 to add, 1 to destroy, 5 unchanged`.
    pub fn brief(&self) -> String {
        let parts = [
            (self.add, "to add"),
            (self.change, "to change"),
            (self.replace, "to replace"),
            (self.destroy, "to destroy"),
            (self.unchanged, "unchanged"),
        ];
        let said: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, w)| format!("{n} {w}")).collect();
        if said.is_empty() { "nothing".into() } else { said.join(", ") }
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
    /// The counts of each group of addresses (a stack's tiers), in the
    /// order `changes` lists them (see [`Plan::order_by_group`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// The stack's monthly cost before and after, resource by resource
    /// (absent when the provider prices nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::cost::PlanCost>,
    /// Changes that widen access (a port opened to the internet, a policy
    /// gaining actions): a saved plan holding any applies only with
    /// `--allow-broadening`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub widens: Vec<super::widening::Widening>,
}

/// One group's counts: the changes whose address starts with `name.`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Group {
    pub name: String,
    pub summary: Summary,
}

/// The group of an address: its first segment (`network` of `network.vpc`).
pub fn group_of(address: &str) -> &str {
    address.split('.').next().unwrap_or(address)
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
            groups: Vec::new(),
            cost: None,
            widens: Vec::new(),
        }
    }

    /// Lists the changes group by group, in `order` (groups it does not name
    /// after, by name), each in dependency order (a change after what its
    /// desired resource references) and by address where that leaves a
    /// tie; then counts each group. A reader finds a tier in one place, and
    /// the text, Markdown and JSON plans share the order.
    pub fn order_by_group(&mut self, order: &[&str]) {
        let depth = dependency_depths(&self.changes);
        let rank = |g: &str| order.iter().position(|o| *o == g).unwrap_or(order.len());
        let mut keyed: Vec<_> = std::mem::take(&mut self.changes).into_iter().zip(depth).collect();
        keyed.sort_by(|(a, da), (b, db)| {
            let (ga, gb) = (group_of(&a.address), group_of(&b.address));
            (rank(ga), ga, da, &a.address).cmp(&(rank(gb), gb, db, &b.address))
        });
        self.changes = keyed.into_iter().map(|(c, _)| c).collect();
        self.groups.clear();
        for chunk in self.changes.chunk_by(|a, b| group_of(&a.address) == group_of(&b.address)) {
            self.groups.push(Group { name: group_of(&chunk[0].address).to_string(), summary: summarize(chunk) });
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.summary.is_empty()
    }
}

/// Each change's depth: 0 without desired dependencies in the plan, else one
/// more than the deepest of them (a reference cycle counts as no depth).
fn dependency_depths(changes: &[Change]) -> Vec<usize> {
    let index: std::collections::HashMap<&str, usize> =
        changes.iter().enumerate().map(|(i, c)| (c.address.as_str(), i)).collect();
    let deps: Vec<Vec<usize>> = changes
        .iter()
        .map(|c| {
            c.desired
                .as_ref()
                .map(|d| d.dependencies().iter().filter_map(|a| index.get(a.as_str()).copied()).collect())
                .unwrap_or_default()
        })
        .collect();
    fn visit(i: usize, deps: &[Vec<usize>], memo: &mut [Option<usize>], on_path: &mut [bool]) -> usize {
        if let Some(d) = memo[i] {
            return d;
        }
        if on_path[i] {
            return 0;
        }
        on_path[i] = true;
        let d = deps[i].iter().map(|&j| visit(j, deps, memo, on_path) + 1).max().unwrap_or(0);
        on_path[i] = false;
        memo[i] = Some(d);
        d
    }
    let mut memo = vec![None; changes.len()];
    let mut on_path = vec![false; changes.len()];
    (0..changes.len()).map(|i| visit(i, &deps, &mut memo, &mut on_path)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::reference;
    use serde_json::json;

    fn create(address: &str, props: Value) -> Change {
        Change {
            address: address.into(),
            kind: "mem.thing".into(),
            action: Action::Create,
            desired: Some(Resource::new(address, "mem.thing", props)),
            live: None,
            fields: Vec::new(),
            data_loss: false,
            reason: None,
            deletion_protected: false,
            notes: Vec::new(),
            fill_in_after: Vec::new(),
        }
    }

    #[test]
    fn changes_are_listed_by_group_then_dependency_then_address() {
        let changes = vec![
            create("web.b", json!({})),
            create("net.subnet", json!({"vpc": reference("net.vpc", "id")})),
            create("extra.x", json!({})),
            create("web.a", json!({"subnet": reference("net.subnet", "id")})),
            create("net.vpc", json!({})),
            create("net.igw", json!({"vpc": reference("net.vpc", "id")})),
        ];
        let mut plan = Plan::new("s", "r", Mode::Apply, changes, &[]);
        plan.order_by_group(&["net", "web"]);
        let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(order, ["net.vpc", "net.igw", "net.subnet", "web.b", "web.a", "extra.x"]);
        let groups: Vec<(&str, usize)> = plan.groups.iter().map(|g| (g.name.as_str(), g.summary.add)).collect();
        assert_eq!(groups, [("net", 3), ("web", 2), ("extra", 1)]);
    }
}
