//! Plans as text (terminal), JSON (machines) and Markdown (pull requests).

use crate::engine::cost::{Cost, PlanCost, ResourceCost};
use crate::engine::plan::{Action, Change, Plan};
use crate::engine::value::render as val;

use super::Style;
use super::line_diff::{self, Line};

/// A field's line diff, when both its values are long ([`line_diff::lines`]).
fn line_diff(f: &crate::engine::plan::FieldChange) -> Option<Vec<Line>> {
    line_diff::lines(f.old.as_ref()?, f.new.as_ref()?)
}

fn styled_symbol(st: Style, a: Action) -> String {
    let s = a.symbol();
    match a {
        Action::Create => st.green(s),
        Action::Update => st.yellow(s),
        Action::Delete => st.red(s),
        Action::Replace => st.magenta(s),
        Action::NoOp => s.to_string(),
    }
}

fn header(c: &Change) -> String {
    let mut extra = Vec::new();
    if let Some(r) = &c.reason
        && c.action == Action::Delete
    {
        extra.push(r.clone());
    }
    if c.data_loss {
        extra.push("DATA-LOSS RISK: a final backup is taken first".into());
    }
    let extra = if extra.is_empty() { String::new() } else { format!("  ({})", extra.join("; ")) };
    format!(
        "{} ({}) will be {}{extra}",
        c.address,
        c.kind,
        c.action
            .verb()
            .replace("update in place", "updated in place")
            .replace("create", "created")
            .replace("destroy", "destroyed")
            .replace("replace", "replaced")
    )
}

/// The header of `c`'s group when `c` is its first change shown: the
/// group's name and counts (see `Plan::order_by_group`).
fn group_header<'a>(plan: &'a Plan, c: &'a Change, current: &mut Option<&'a str>) -> Option<String> {
    let g = crate::engine::plan::group_of(&c.address);
    if *current == Some(g) {
        return None;
    }
    *current = Some(g);
    let counts = plan.groups.iter().find(|x| x.name == g)?;
    Some(format!("{g}: {}", counts.summary.brief()))
}

/// Human plan.
pub fn text(plan: &Plan, st: Style) -> String {
    let mut out = String::new();
    let changed: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if changed.is_empty() {
        out.push_str(&match plan.mode {
            crate::engine::plan::Mode::Apply => format!(
                "No changes. Stack \"{}\" ({}) matches the file ({} resources).\n",
                plan.stack, plan.region, plan.summary.unchanged
            ),
            crate::engine::plan::Mode::Destroy => {
                format!(
                    "No changes. Nothing to destroy: stack \"{}\" ({}) has no resources.\n",
                    plan.stack, plan.region
                )
            }
        });
        for n in &plan.notes {
            out.push_str(&format!("  {n}\n"));
        }
        if let Some(c) = &plan.cost {
            out.push_str(&format!("  Monthly cost: {} ({}).\n", c.after.dollars(), priced_by(c)));
        }
        return out;
    }
    out.push_str(&format!("Stack \"{}\" ({}):\n", plan.stack, plan.region));
    let mut group = None;
    for c in changed {
        if let Some(h) = group_header(plan, c, &mut group) {
            out.push_str(&format!("\n{}\n", st.bold(&h)));
        }
        out.push_str(&format!("  {} {}\n", styled_symbol(st, c.action), st.bold(&header(c))));
        match c.action {
            Action::Create => {
                if let Some(d) = &c.desired
                    && let Some(o) = d.props.as_object()
                {
                    for (k, v) in o {
                        out.push_str(&format!("        {k}: {}\n", val(v)));
                    }
                }
            }
            Action::Update | Action::Replace => {
                for f in &c.fields {
                    let forces =
                        if f.forces_replacement { st.magenta("  # forces replacement") } else { String::new() };
                    if let Some(lines) = line_diff(f) {
                        out.push_str(&format!("        {}:{forces}\n", f.path));
                        for (sign, line) in lines {
                            let l = format!("{sign} {line}");
                            let l = match sign {
                                '-' => st.red(&l),
                                '+' => st.green(&l),
                                '@' => st.dim(&l),
                                _ => l,
                            };
                            out.push_str(&format!("          {l}\n"));
                        }
                        continue;
                    }
                    let old = f.old.as_ref().map(val).unwrap_or_else(|| "(none)".into());
                    let new = f.new.as_ref().map(val).unwrap_or_else(|| "(none)".into());
                    out.push_str(&format!("        {}: {} {} {}{forces}\n", f.path, st.red(&old), "→", st.green(&new)));
                }
            }
            _ => {}
        }
        for n in &c.notes {
            out.push_str(&format!("        {}\n", st.dim(&format!("note: {n}"))));
        }
        for w in plan.widens.iter().filter(|w| w.address == c.address) {
            out.push_str(&format!("        {}\n", st.red(&format!("! widens access: {}", w.what))));
        }
    }
    for n in &plan.notes {
        out.push_str(&format!("\n  {n}"));
    }
    if let Some(c) = &plan.cost {
        out.push_str(&cost_text(plan, c, st));
    }
    if !plan.widens.is_empty() {
        out.push_str(&format!("\n{} {}\n", st.red(&st.bold("Access:")), widening_summary(plan)));
    }
    out.push_str(&format!("\n{} {}.\n", st.bold("Plan:"), plan.summary));
    out
}

/// The line that sums up a plan's widenings.
fn widening_summary(plan: &Plan) -> String {
    let mut addresses: Vec<&str> = plan.widens.iter().map(|w| w.address.as_str()).collect();
    addresses.dedup();
    format!(
        "{} change{} widen{} access ({}); a saved plan with them applies only with --allow-broadening.",
        addresses.len(),
        if addresses.len() == 1 { "" } else { "s" },
        if addresses.len() == 1 { "s" } else { "" },
        addresses.join(", ")
    )
}

/// Where a plan's prices come from, e.g. `USD, AWS Price List ... as of 2026-07-20`.
fn priced_by(c: &PlanCost) -> String {
    format!("{}; {}, as of {}", c.prices.currency, c.prices.source, c.prices.as_of)
}

/// A resource's fixed monthly cost on one side, `-` when it has none.
fn side(c: Option<&Cost>) -> String {
    match c {
        Some(c @ Cost::Fixed { .. }) => c.fixed().unwrap_or_default().dollars(),
        Some(Cost::Usage { .. }) => "by use".into(),
        Some(Cost::Unknown { .. }) => "unknown".into(),
        None => "-".into(),
    }
}

/// How a resource's cost after the change is reached (or why it is unknown).
fn basis(r: &ResourceCost) -> &str {
    match r.after.as_ref().or(r.before.as_ref()) {
        Some(Cost::Fixed { basis, .. } | Cost::Usage { basis }) => basis,
        Some(Cost::Unknown { reason }) => reason,
        None => "",
    }
}

fn action_of(plan: &Plan, address: &str) -> Action {
    plan.changes.iter().find(|c| c.address == address).map(|c| c.action).unwrap_or(Action::NoOp)
}

/// The plan's monthly cost: the totals, each resource whose cost moves, and
/// what the totals leave out.
fn cost_text(plan: &Plan, c: &PlanCost, st: Style) -> String {
    let mut out = format!("\n\n{} {}\n", st.bold("Monthly cost:"), c.headline());
    out.push_str(&format!("  {}\n", st.dim(&format!("prices: {}", priced_by(c)))));
    for r in c.resources.iter().filter(|r| r.changes()) {
        let a = action_of(plan, &r.address);
        let moved = match a {
            Action::Create => side(r.after.as_ref()),
            Action::Delete => format!("-{}", side(r.before.as_ref())),
            _ => format!("{} → {}", side(r.before.as_ref()), side(r.after.as_ref())),
        };
        out.push_str(&format!("  {} {}  {moved}  {}\n", styled_symbol(st, a), r.address, st.dim(basis(r))));
    }
    if !c.usage_based.is_empty() {
        out.push_str(&format!("  billed by use only, not in the total: {}\n", c.usage_based.join(", ")));
    }
    for r in c.resources.iter().filter(|r| matches!(r.after, Some(Cost::Unknown { .. }))) {
        out.push_str(&format!("  {} price unknown, not in the total: {}\n", r.address, basis(r)));
    }
    out
}

/// The monthly cost as a Markdown section.
fn cost_markdown(plan: &Plan, c: &PlanCost) -> String {
    let mut out = format!("\n#### Monthly cost: {}\n\n", c.headline());
    let moved: Vec<&ResourceCost> = c.resources.iter().filter(|r| r.changes()).collect();
    if !moved.is_empty() {
        out.push_str("| action | address | before | after | how |\n|---|---|---|---|---|\n");
        for r in moved {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} |\n",
                action_of(plan, &r.address).symbol(),
                r.address,
                side(r.before.as_ref()),
                side(r.after.as_ref()),
                basis(r).replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    if !c.usage_based.is_empty() {
        out.push_str(&format!("Billed by use only, not in the total: {}.\n\n", c.usage_based.len()));
    }
    if !c.unknown.is_empty() {
        out.push_str(&format!("Price unknown, not in the total: `{}`.\n\n", c.unknown.join("`, `")));
    }
    out.push_str(&format!("<sub>Prices: {}.</sub>\n", priced_by(c)));
    out
}

/// Markdown plan for pull-request comments and job summaries.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### infra plan: `{}` ({})\n\n**{}**\n\n", plan.stack, plan.region, plan.summary);
    let changed: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if changed.is_empty() {
        out.push_str("No changes.\n");
        if let Some(c) = &plan.cost {
            out.push_str(&format!("\nMonthly cost: {} ({}).\n", c.after.dollars(), priced_by(c)));
        }
        return out;
    }
    const TABLE: &str = "| action | address | kind | details |\n|---|---|---|---|\n";
    if plan.groups.is_empty() {
        out.push_str(TABLE);
    }
    // Long values changed, as line diffs below the table.
    let mut diffs = String::new();
    let mut group = None;
    for c in changed {
        if let Some(h) = group_header(plan, c, &mut group) {
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str(&format!("#### {h}\n\n{TABLE}"));
        }
        let details = match c.action {
            Action::Update | Action::Replace => c
                .fields
                .iter()
                .map(|f| {
                    if let Some(lines) = line_diff(f) {
                        diffs.push_str(&format!(
                            "\n<details><summary><code>{}</code> <code>{}</code></summary>\n\n```diff\n{}\n```\n\n</details>\n",
                            c.address,
                            f.path,
                            lines
                                .iter()
                                .map(|(s, l)| if *s == '@' { "@@ ... @@".to_string() } else { format!("{s} {l}") })
                                .collect::<Vec<_>>()
                                .join("\n")
                        ));
                        let forces = if f.forces_replacement { " (forces replacement)" } else { "" };
                        return format!("`{}`: changed, line diff below{forces}", f.path);
                    }
                    format!(
                        "`{}`: {} → {}{}",
                        f.path,
                        f.old.as_ref().map(val).unwrap_or_else(|| "(none)".into()),
                        f.new.as_ref().map(val).unwrap_or_else(|| "(none)".into()),
                        if f.forces_replacement { " (forces replacement)" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
            Action::Delete => c.reason.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let details = c
            .notes
            .iter()
            .fold(details, |acc, n| if acc.is_empty() { format!("note: {n}") } else { format!("{acc}<br>note: {n}") });
        let details = plan.widens.iter().filter(|w| w.address == c.address).fold(details, |acc, w| {
            let flag = format!("⚠️ **widens access**: {}", w.what);
            if acc.is_empty() { flag } else { format!("{acc}<br>{flag}") }
        });
        let details = details.replace('|', "\\|");
        let risk = if c.data_loss { " ⚠️ data-loss risk" } else { "" };
        out.push_str(&format!(
            "| {} {}{risk} | `{}` | {} | {} |\n",
            c.action.symbol(),
            c.action.verb(),
            c.address,
            c.kind,
            details
        ));
    }
    out.push_str(&diffs);
    if !plan.widens.is_empty() {
        out.push_str(&format!("\n> [!WARNING]\n> {}\n", widening_summary(plan)));
    }
    if let Some(c) = &plan.cost {
        out.push_str(&cost_markdown(plan, c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{FieldChange, Mode};
    use crate::engine::resource::{Live, Resource};
    use serde_json::json;

    #[test]
    fn a_long_changed_value_reads_as_a_line_diff_in_text_and_markdown() {
        let script =
            |pkg: &str| json!(format!("#!/bin/bash\nset -e\ndnf install -y {pkg}\nsystemctl enable --now nginx\n"));
        let (old, new) = (script("nginx"), script("nginx jq"));
        let live = Live {
            address: "compute.lt.web".into(),
            kind: "ec2.launch_template".into(),
            id: "lt-1".into(),
            props: json!({"user_data": old}),
            attrs: Default::default(),
        };
        let change = Change {
            address: live.address.clone(),
            kind: live.kind.clone(),
            action: Action::Update,
            desired: Some(Resource::new("compute.lt.web", "ec2.launch_template", json!({"user_data": new}))),
            live: Some(live.clone()),
            fields: vec![FieldChange {
                path: "user_data".into(),
                old: Some(old),
                new: Some(new),
                forces_replacement: false,
            }],
            reason: None,
            data_loss: false,
            deletion_protected: false,
            notes: Vec::new(),
            fill_in_after: Vec::new(),
        };
        let plan = Plan::new("s", "r", Mode::Apply, vec![change], &[live]);
        let t = text(&plan, Style { on: false });
        assert!(t.contains("        user_data:\n"), "{t}");
        assert!(t.contains("          - dnf install -y nginx\n          + dnf install -y nginx jq\n"), "{t}");
        let m = markdown(&plan);
        assert!(m.contains("`user_data`: changed, line diff below"), "{m}");
        assert!(
            m.contains("```diff\n  #!/bin/bash\n  set -e\n- dnf install -y nginx\n+ dnf install -y nginx jq\n"),
            "{m}"
        );
    }
}
