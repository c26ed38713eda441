//! Desired resources + live resources -> changes.
//!
//! Resources are visited in dependency order so that, when a dependency is
//! being created or replaced, references to it are known to be unknown, and a
//! reference in a replace-only property forces the dependant's replacement too.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use serde_json::{Map, Value};

use super::graph::topo_order;
use super::plan::{Action, Change, FieldChange};
use super::provider::Provider;
use super::resource::{Live, Resource};
use super::value;

/// Plans `desired` against `live`. Live resources without a desired
/// counterpart (removed from the file, or duplicates left by a crash) are deleted.
pub fn diff(desired: &[Resource], live: Vec<Live>, provider: &dyn Provider) -> Result<Vec<Change>> {
    let order = topo_order(desired)?;

    // Live resources by address; the first by id is the one we keep.
    let mut by_addr: BTreeMap<String, Vec<Live>> = BTreeMap::new();
    for l in live {
        by_addr.entry(l.address.clone()).or_default().push(l);
    }
    for v in by_addr.values_mut() {
        v.sort_by(|a, b| a.id.cmp(&b.id));
    }

    let mut changes: Vec<Change> = Vec::new();
    // Addresses whose attributes are already known (existing, not replaced).
    let mut known: HashMap<String, Live> = HashMap::new();

    for i in order {
        let want = &desired[i];
        let info = provider.kind_info(&want.kind);
        let mut candidates = by_addr.remove(&want.address).unwrap_or_default();
        let pos = candidates.iter().position(|l| l.kind == want.kind);
        let matched = pos.map(|p| candidates.remove(p));
        // Anything else at this address (duplicates, other kinds) goes.
        for extra in candidates {
            changes.push(deletion(extra, provider, "duplicate or superseded resource at this address"));
        }

        let Some(live) = matched else {
            changes.push(Change {
                address: want.address.clone(),
                kind: want.kind.clone(),
                action: Action::Create,
                desired: Some(want.clone()),
                live: None,
                fields: Vec::new(),
                data_loss: false,
                reason: None,
                deletion_protected: false,
                notes: want.reason.iter().cloned().collect(),
                fill_in_after: Vec::new(),
            });
            continue;
        };

        let mut resolved = value::resolve(&want.props, &|addr, attr| known.get(addr).and_then(|l| l.attr(attr)));
        provider.normalize(&want.kind, &mut resolved);
        let mut live_props = live.props.clone();
        provider.normalize(&want.kind, &mut live_props);

        let mut fields = Vec::new();
        if let (Some(want_obj), live_obj) = (resolved.as_object(), live_props.as_object()) {
            for (key, new) in want_obj {
                let old = live_obj.and_then(|o| o.get(key));
                let unknown = value::contains_unknown(new);
                if !unknown && old == Some(new) {
                    continue;
                }
                let forces = info.replace_fields.contains(&key.as_str());
                field_changes(key, old, Some(new), forces, &mut fields);
            }
        }
        let action = if fields.is_empty() {
            Action::NoOp
        } else if fields.iter().any(|f| f.forces_replacement) {
            Action::Replace
        } else {
            Action::Update
        };
        if action != Action::Replace {
            known.insert(want.address.clone(), live.clone());
        }
        let notes =
            if action == Action::NoOp { Vec::new() } else { provider.annotate(&want.kind, &want.props, &fields) };
        changes.push(Change {
            address: want.address.clone(),
            kind: want.kind.clone(),
            action,
            desired: Some(want.clone()),
            data_loss: action == Action::Replace && info.holds_data,
            live: Some(live),
            fields,
            reason: None,
            deletion_protected: false,
            notes,
            fill_in_after: Vec::new(),
        });
    }

    for (_, rest) in by_addr {
        for l in rest {
            changes.push(deletion(l, provider, "not in stack.yaml"));
        }
    }
    fill_in_later(&mut changes, provider);
    for c in &mut changes {
        c.notes.extend(provider.notes(c));
        mark_protected(c, provider);
    }
    Ok(changes)
}

/// Sets `fill_in_after` on the creations whose late properties (see
/// `KindInfo::late_fields`) are all that waits for something this plan
/// also creates, replaces or updates, and says so in their notes.
fn fill_in_later(changes: &mut [Change], provider: &dyn Provider) {
    let pending: HashSet<String> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace | Action::Update))
        .map(|c| c.address.clone())
        .collect();
    for c in changes.iter_mut().filter(|c| c.action == Action::Create) {
        let Some(d) = &c.desired else { continue };
        let (mut after, fields) = d.late_dependencies(provider.kind_info(&c.kind).late_fields);
        after.retain(|a| pending.contains(a));
        if after.is_empty() {
            continue;
        }
        let fields: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
        c.notes.push(format!(
            "created without what {} takes from {}, then updated once that exists: nothing waits for it here",
            fields.join(" and "),
            after.join(", ")
        ));
        c.fill_in_after = after;
    }
}

/// Everything live goes, for `destroy`.
pub fn destroy_all(live: Vec<Live>, provider: &dyn Provider) -> Vec<Change> {
    let mut live = live;
    live.sort_by(|a, b| (&a.address, &a.id).cmp(&(&b.address, &b.id)));
    live.into_iter()
        .map(|l| {
            let mut c = deletion(l, provider, "destroy");
            c.notes.extend(provider.notes(&c));
            mark_protected(&mut c, provider);
            c
        })
        .collect()
}

/// A deletion or replacement the provider would refuse: protected in the
/// file, or in the cloud (AWS would refuse mid-apply, after the backup).
fn mark_protected(c: &mut Change, provider: &dyn Provider) {
    if matches!(c.action, Action::Delete | Action::Replace) {
        c.deletion_protected = c.desired.as_ref().is_some_and(|d| provider.protected(&d.kind, &d.props))
            || c.live.as_ref().is_some_and(|l| provider.protected(&l.kind, &l.props));
    }
}

fn deletion(l: Live, provider: &dyn Provider, reason: &str) -> Change {
    Change {
        address: l.address.clone(),
        kind: l.kind.clone(),
        action: Action::Delete,
        desired: None,
        data_loss: provider.kind_info(&l.kind).holds_data,
        live: Some(l),
        fields: Vec::new(),
        reason: Some(reason.to_string()),
        deletion_protected: false,
        notes: Vec::new(),
        fill_in_after: Vec::new(),
    }
}

/// Flattens nested objects so a tag change reads `tags.Team: "a" -> "b"`.
fn field_changes(path: &str, old: Option<&Value>, new: Option<&Value>, forces: bool, out: &mut Vec<FieldChange>) {
    let is_plain_obj = |v: Option<&Value>| {
        v.is_none_or(|v| {
            v.as_object().is_some_and(|o| !o.contains_key(value::UNKNOWN_KEY) && !o.contains_key(value::REF_KEY))
        })
    };
    if (old.is_some() || new.is_some())
        && is_plain_obj(old)
        && is_plain_obj(new)
        && !(old.is_none() && new.is_some_and(|n| n.as_object().is_some_and(Map::is_empty)))
    {
        let empty = Map::new();
        let o = old.and_then(Value::as_object).unwrap_or(&empty);
        let n = new.and_then(Value::as_object).unwrap_or(&empty);
        let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (a, b) = (o.get(k), n.get(k));
            if a != b || b.is_some_and(value::contains_unknown) {
                field_changes(&format!("{path}.{k}"), a, b, forces, out);
            }
        }
        return;
    }
    out.push(FieldChange { path: path.to_string(), old: old.cloned(), new: new.cloned(), forces_replacement: forces });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryProvider;
    use crate::engine::value::reference;
    use serde_json::json;

    fn live(addr: &str, kind: &str, id: &str, props: Value) -> Live {
        Live { address: addr.into(), kind: kind.into(), id: id.into(), props, attrs: Map::new() }
    }

    #[test]
    fn create_noop_update_replace_delete() {
        let p = MemoryProvider::new();
        let desired = vec![
            Resource::new("vpc", "mem.net", json!({"cidr": "10.0.0.0/16"})),
            Resource::new(
                "sub",
                "mem.sub",
                json!({"net": reference("vpc", "id"), "cidr": "10.0.1.0/24", "tags": {"a": "1"}}),
            ),
            Resource::new("new", "mem.thing", json!({})),
        ];
        let live = vec![
            live("vpc", "mem.net", "n-1", json!({"cidr": "10.0.0.0/16"})),
            live("sub", "mem.sub", "s-1", json!({"net": "n-1", "cidr": "10.0.1.0/24", "tags": {"a": "2"}})),
            live("gone", "mem.thing", "t-9", json!({})),
        ];
        let ch = diff(&desired, live, &p).unwrap();
        let by: HashMap<_, _> = ch.iter().map(|c| (c.address.as_str(), c)).collect();
        assert_eq!(by["vpc"].action, Action::NoOp);
        assert_eq!(by["sub"].action, Action::Update);
        assert_eq!(by["sub"].fields[0].path, "tags.a");
        assert_eq!(by["new"].action, Action::Create);
        assert_eq!(by["gone"].action, Action::Delete);
    }

    #[test]
    fn replacement_propagates_through_replace_only_references() {
        let p = MemoryProvider::new();
        let desired = vec![
            Resource::new("vpc", "mem.net", json!({"cidr": "10.1.0.0/16"})),
            Resource::new("sub", "mem.sub", json!({"net": reference("vpc", "id"), "cidr": "10.1.1.0/24"})),
        ];
        let live = vec![
            live("vpc", "mem.net", "n-1", json!({"cidr": "10.0.0.0/16"})),
            live("sub", "mem.sub", "s-1", json!({"net": "n-1", "cidr": "10.1.1.0/24"})),
        ];
        let ch = diff(&desired, live, &p).unwrap();
        assert_eq!(ch[0].action, Action::Replace);
        assert_eq!(ch[1].action, Action::Replace, "{:?}", ch[1]);
        assert!(value::contains_unknown(ch[1].fields[0].new.as_ref().unwrap()));
    }

    #[test]
    fn provider_notes_and_data_loss_are_in_the_plan() {
        let p = MemoryProvider::new();
        let desired = vec![Resource::new("db", "mem.db", json!({"engine": "pg", "class": "large"}))];
        let live_db = || live("db", "mem.db", "d-1", json!({"engine": "pg", "class": "small"}));
        let ch = diff(&desired, vec![live_db()], &p).unwrap();
        assert_eq!(ch[0].action, Action::Update);
        assert!(!ch[0].data_loss);
        assert_eq!(ch[0].notes, vec!["class change: reboot".to_string()]);

        let mut replaced = desired.clone();
        replaced[0].props["engine"] = json!("my");
        let ch = diff(&replaced, vec![live_db()], &p).unwrap();
        assert_eq!(ch[0].action, Action::Replace);
        assert!(ch[0].data_loss, "replacing a data store is a data-loss risk");

        let ch = diff(&[], vec![live_db()], &p).unwrap();
        assert_eq!(ch[0].action, Action::Delete);
        assert!(ch[0].data_loss, "deleting a data store is a data-loss risk");
    }

    #[test]
    fn duplicates_are_deleted_and_the_first_kept() {
        let p = MemoryProvider::new();
        let desired = vec![Resource::new("vpc", "mem.net", json!({"cidr": "x"}))];
        let live = vec![
            live("vpc", "mem.net", "n-2", json!({"cidr": "x"})),
            live("vpc", "mem.net", "n-1", json!({"cidr": "x"})),
        ];
        let ch = diff(&desired, live, &p).unwrap();
        assert_eq!(ch.len(), 2);
        let del = ch.iter().find(|c| c.action == Action::Delete).unwrap();
        assert_eq!(del.live.as_ref().unwrap().id, "n-2");
    }
}
