//! What a reviewer reads in a plan beyond its diff: the monthly cost before
//! and after ([`price`]) and what widens access ([`widenings`]), each asked
//! of the provider change by change. Apart from `plan` and `provider`, which
//! only hold the types, so that neither imports the other's users.

use std::collections::HashMap;

use super::cost::{Cost, PlanCost, Range, ResourceCost};
use super::plan::{Action, Change, Plan};
use super::provider::Provider;
use super::resource::Live;
use super::value;
use super::widening::Widening;

/// Prices every change of `plan` with `p`; `None` when the provider prices
/// nothing. A resource's before is its live props, its after its desired
/// props (none when the plan deletes it).
pub fn price(plan: &Plan, p: &dyn Provider) -> Option<PlanCost> {
    let prices = p.price_list()?;
    let mut out = PlanCost {
        prices,
        before: Range::default(),
        after: Range::default(),
        resources: Vec::new(),
        usage_based: Vec::new(),
        unknown: Vec::new(),
    };
    for c in &plan.changes {
        let before = c.live.as_ref().and_then(|l| p.cost(&c.kind, &l.props));
        let after = match c.action {
            Action::Delete => None,
            _ => c.desired.as_ref().and_then(|d| p.cost(&c.kind, &d.props)),
        };
        if before.is_none() && after.is_none() {
            continue;
        }
        if let Some(r) = before.as_ref().and_then(Cost::fixed) {
            out.before = out.before + r;
        }
        match &after {
            Some(c @ Cost::Fixed { .. }) => out.after = out.after + c.fixed().unwrap_or_default(),
            Some(Cost::Usage { .. }) => out.usage_based.push(c.address.clone()),
            Some(Cost::Unknown { .. }) => out.unknown.push(c.address.clone()),
            None => {}
        }
        out.resources.push(ResourceCost { address: c.address.clone(), before, after });
    }
    Some(out)
}

/// Every widening in `changes`, the desired props resolved as the diff
/// resolves them (references to what exists take its values, so that an
/// unchanged reference does not read as a new grant): creations (before is nothing), updates and
/// replacements (before is the live resource). Deletions narrow.
pub fn widenings(changes: &[Change], p: &dyn Provider) -> Vec<Widening> {
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
    use crate::engine::plan::Mode;
    use crate::engine::resource::Resource;
    use crate::engine::value::reference;
    use serde_json::json;

    fn change(
        address: &str, action: Action, live: Option<serde_json::Value>, desired: Option<serde_json::Value>,
    ) -> Change {
        Change {
            address: address.into(),
            kind: "mem.thing".into(),
            action,
            desired: desired.map(|d| Resource::new(address, "mem.thing", d)),
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

    fn usd(v: Option<f64>) -> Option<serde_json::Value> {
        v.map(|v| json!({ "usd": v }))
    }

    #[test]
    fn totals_add_fixed_costs_and_list_the_rest_apart() {
        let priced = |a, action, before, after| change(a, action, usd(before), usd(after));
        let changes = vec![
            priced("a", Action::Create, None, Some(10.0)),
            priced("b", Action::Update, Some(5.0), Some(7.5)),
            priced("c", Action::Delete, Some(3.0), Some(3.0)),
            priced("d", Action::NoOp, Some(1.0), Some(1.0)),
            priced("free", Action::Create, None, Some(0.0)),
            priced("usage", Action::Create, None, Some(-1.0)),
            priced("unknown", Action::Create, None, Some(-2.0)),
        ];
        let plan = Plan::new("s", "r", Mode::Apply, changes, &[]);
        let cost = price(&plan, &MemoryProvider::default()).expect("priced");
        assert_eq!(cost.before, Range { low: 9.0, high: 9.0 });
        assert_eq!(cost.after, Range { low: 18.5, high: 18.5 });
        assert_eq!(cost.usage_based, ["usage"]);
        assert_eq!(cost.unknown, ["unknown"]);
        let moved: Vec<&str> = cost.resources.iter().filter(|r| r.changes()).map(|r| r.address.as_str()).collect();
        assert_eq!(moved, ["a", "b", "c"]);
        assert_eq!(cost.headline(), "$9.00 → $18.50 (+$9.50)");
    }

    #[test]
    fn a_new_grant_is_found_and_a_resolved_reference_is_not_one() {
        // MemoryProvider: every entry of `open` missing before is a widening.
        let changes = vec![
            change("net", Action::NoOp, Some(json!({})), Some(json!({}))),
            change("a", Action::Create, None, Some(json!({ "open": ["0.0.0.0/0"] }))),
            change(
                "b",
                Action::Update,
                Some(json!({ "open": ["id-net"] })),
                Some(json!({ "open": [reference("net", "id")] })),
            ),
            change("c", Action::Update, Some(json!({ "open": ["x"] })), Some(json!({ "open": ["x", "y"] }))),
            change("d", Action::Delete, Some(json!({ "open": ["z"] })), None),
        ];
        let found = widenings(&changes, &MemoryProvider::default());
        let said: Vec<(&str, &str)> = found.iter().map(|w| (w.address.as_str(), w.what.as_str())).collect();
        assert_eq!(said, [("a", "opens 0.0.0.0/0"), ("c", "opens y")]);
    }
}
