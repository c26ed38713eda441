//! Plans as text (terminal), JSON (machines) and Markdown (pull requests).

use crate::engine::plan::{Action, Change, Plan};
use crate::engine::value::render as val;

use super::Style;

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
        return out;
    }
    out.push_str(&format!("Stack \"{}\" ({}):\n\n", plan.stack, plan.region));
    for c in changed {
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
                    let old = f.old.as_ref().map(val).unwrap_or_else(|| "(none)".into());
                    let new = f.new.as_ref().map(val).unwrap_or_else(|| "(none)".into());
                    let forces =
                        if f.forces_replacement { st.magenta("  # forces replacement") } else { String::new() };
                    out.push_str(&format!("        {}: {} {} {}{forces}\n", f.path, st.red(&old), "→", st.green(&new)));
                }
            }
            _ => {}
        }
        for n in &c.notes {
            out.push_str(&format!("        {}\n", st.dim(&format!("note: {n}"))));
        }
    }
    for n in &plan.notes {
        out.push_str(&format!("\n  {n}"));
    }
    out.push_str(&format!("\n{} {}.\n", st.bold("Plan:"), plan.summary));
    out
}

/// Markdown plan for pull-request comments and job summaries.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### infra plan: `{}` ({})\n\n**{}**\n\n", plan.stack, plan.region, plan.summary);
    let changed: Vec<&Change> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if changed.is_empty() {
        out.push_str("No changes.\n");
        return out;
    }
    out.push_str("| action | address | kind | details |\n|---|---|---|---|\n");
    for c in changed {
        let details = match c.action {
            Action::Update | Action::Replace => c
                .fields
                .iter()
                .map(|f| {
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
    out
}
