//! Changes that widen access: what a reviewer must not miss in a plan (a
//! port opened to the internet, a policy gaining actions, a database made
//! public), found by comparing each change's live and desired props, and
//! what keeps a saved plan holding them from being applied unreviewed.
//!
//! What widens access is each kind's knowledge
//! ([`super::provider::Provider::widens`]); the engine resolves the desired
//! props as the diff does (references to what exists take its values), so
//! that an unchanged reference does not read as a new grant.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::plan::{Action, Change};
use super::provider::Provider;
use super::resource::Live;
use super::value;

/// One way a change widens access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Widening {
    pub address: String,
    /// What it opens, e.g. `opens tcp/22 to the internet (0.0.0.0/0)`.
    pub what: String,
}

/// Every widening in `changes`: creations (before is nothing), updates and
/// replacements (before is the live resource). Deletions narrow.
pub fn find(changes: &[Change], p: &dyn Provider) -> Vec<Widening> {
    let live: HashMap<&str, &Live> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::NoOp | Action::Update))
        .filter_map(|c| Some((c.address.as_str(), c.live.as_ref()?)))
        .collect();
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace)) {
        let Some(d) = &c.desired else { continue };
        let mut after = value::resolve(&d.props, &|addr, attr| live.get(addr).and_then(|l| l.attr(attr)));
        p.normalize(&c.kind, &mut after);
        let before = c.live.as_ref().map(|l| {
            let mut b = l.props.clone();
            p.normalize(&c.kind, &mut b);
            b
        });
        for what in p.widens(&c.kind, before.as_ref(), &after) {
            out.push(Widening { address: c.address.clone(), what });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryProvider;
    use crate::engine::resource::Resource;
    use crate::engine::value::reference;
    use serde_json::json;

    fn change(address: &str, action: Action, live: Option<serde_json::Value>, desired: serde_json::Value) -> Change {
        Change {
            address: address.into(),
            kind: "mem.thing".into(),
            action,
            desired: Some(Resource::new(address, "mem.thing", desired)),
            live: live.map(|props| Live {
                address: address.into(),
                kind: "mem.thing".into(),
                id: format!("id-{address}"),
                props,
                attrs: [("id".to_string(), json!(format!("id-{address}")))].into_iter().collect(),
            }),
            fields: Vec::new(),
            data_loss: false,
            reason: None,
            deletion_protected: false,
            notes: Vec::new(),
            fill_in_after: Vec::new(),
        }
    }

    #[test]
    fn a_new_grant_is_found_and_a_resolved_reference_is_not_one() {
        // MemoryProvider: every entry of `open` missing before is a widening.
        let changes = vec![
            change("net", Action::NoOp, Some(json!({})), json!({})),
            change("a", Action::Create, None, json!({ "open": ["0.0.0.0/0"] })),
            change(
                "b",
                Action::Update,
                Some(json!({ "open": ["id-net"] })),
                json!({ "open": [reference("net", "id")] }),
            ),
            change("c", Action::Update, Some(json!({ "open": ["x"] })), json!({ "open": ["x", "y"] })),
            change("d", Action::Delete, Some(json!({ "open": ["z"] })), json!({})),
        ];
        let found = find(&changes, &MemoryProvider::default());
        let said: Vec<(&str, &str)> = found.iter().map(|w| (w.address.as_str(), w.what.as_str())).collect();
        assert_eq!(said, [("a", "opens 0.0.0.0/0"), ("c", "opens y")]);
    }
}
