//! Long values in a plan as line diffs: a changed policy, user data script or
//! environment is shown as the lines that change, with a little context, not
//! as two whole values side by side (a one-word change in a 40-line policy
//! should read as one line).

use serde_json::{Map, Value};
use similar::{ChangeTag, TextDiff};

use crate::engine::concat::{CONCAT_KEY, SHA256_KEY};
use crate::engine::value::{self, render};

/// Lines of context kept around each change.
const CONTEXT: usize = 2;

/// A value is long when it spans lines or its one-line form would not fit
/// beside the field's name on a terminal.
const LONG: usize = 80;

/// One line of a diff: `' '` context, `'-'` removed, `'+'` added; `'@'`
/// marks lines left out between two hunks.
pub type Line = (char, String);

/// The line diff of `old` → `new`, when both are long values of the same
/// shape (both text, or both structures); `None` when the one-line form
/// reads better (short values, a change of shape).
pub fn lines(old: &Value, new: &Value) -> Option<Vec<Line>> {
    let ((structure, a), (also, b)) = (text(old)?, text(new)?);
    // Indented JSON always spans lines: a structure is long by its one-line form.
    let long = |v: &Value, t: &str| (!structure && t.contains('\n')) || render(v).len() > LONG;
    if structure != also || !(long(old, &a) || long(new, &b)) {
        return None;
    }
    let diff = TextDiff::from_lines(&a, &b);
    let mut out = Vec::new();
    for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            out.push(('@', "...".to_string()));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                out.push((sign, change.value().trim_end_matches('\n').to_string()));
            }
        }
    }
    Some(out)
}

/// The text a value's lines are taken from, and whether it is a structure:
/// a string (or a string joined from parts, as user data is: its references
/// written as the plan writes them) as it is, a map or list as indented JSON.
fn text(v: &Value) -> Option<(bool, String)> {
    match v {
        Value::String(s) => Some((false, s.clone())),
        Value::Object(o) if value::is_symbolic(v) => {
            let parts = o.get(CONCAT_KEY).or_else(|| o.get(SHA256_KEY))?.as_array()?;
            let joined = parts.iter().map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| render(p)));
            Some((false, joined.collect()))
        }
        Value::Object(_) | Value::Array(_) => Some((true, pretty(v))),
        _ => None,
    }
}

/// `v` as indented JSON, references and other placeholders written as the
/// plan writes them (`(data.database.endpoint)`), keys in their order.
fn pretty(v: &Value) -> String {
    fn shown(v: &Value) -> Value {
        match v {
            _ if value::is_symbolic(v) => Value::String(render(v)),
            Value::Array(a) => Value::Array(a.iter().map(shown).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), shown(x))).collect::<Map<_, _>>()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&shown(v)).unwrap_or_else(|_| render(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::reference;
    use serde_json::json;

    fn policy(actions: &[&str]) -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": actions, "Resource": reference("data.table.orders", "arn")},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"},
        ]})
    }

    #[test]
    fn a_long_policy_shows_only_the_lines_that_change() {
        let d = lines(&policy(&["dynamodb:GetItem"]), &policy(&["dynamodb:GetItem", "dynamodb:PutItem"])).unwrap();
        // The list's last line gains a comma and a line follows it.
        let changed: Vec<&Line> = d.iter().filter(|(s, _)| *s != ' ').collect();
        assert_eq!(changed.len(), 3, "{d:?}");
        assert_eq!(changed.iter().filter(|(s, _)| *s == '-').count(), 1, "{d:?}");
        assert!(changed[2].1.contains("dynamodb:PutItem"), "{d:?}");
        // The far statement is left out; references read as in the rest of
        // the plan.
        assert!(pretty(&policy(&[])).contains("\"Resource\": \"(data.table.orders.arn)\""));
        assert!(!d.iter().any(|(_, l)| l.contains("logs:PutLogEvents")), "{d:?}");
    }

    #[test]
    fn a_script_diffs_by_line_and_short_values_stay_on_one_line() {
        let old = json!("#!/bin/bash\nset -e\ndnf install -y nginx\nsystemctl enable --now nginx\n");
        let new = json!("#!/bin/bash\nset -e\ndnf install -y nginx jq\nsystemctl enable --now nginx\n");
        let d = lines(&old, &new).unwrap();
        assert_eq!(
            d.iter().filter(|(s, _)| *s != ' ').cloned().collect::<Vec<_>>(),
            [('-', "dnf install -y nginx".to_string()), ('+', "dnf install -y nginx jq".to_string())]
        );
        // User data joined from parts diffs as the script it becomes.
        let joined = |api: &str| json!({"$sha256": ["#!/bin/bash\nset -e\nAPI='", reference(api, "invoke_url"), "'\nnginx -t\nsystemctl enable --now nginx\n"]});
        let d = lines(&joined("backend.stage"), &joined("backend.stage2")).unwrap();
        assert!(d.contains(&('+', "API='(backend.stage2.invoke_url)'".to_string())), "{d:?}");
        assert_eq!(lines(&json!("t3.micro"), &json!("t3.small")), None);
        assert_eq!(lines(&json!({"a": 1}), &json!({"a": 2})), None);
        assert_eq!(lines(&json!("x\ny"), &json!(["x", "y"])), None);
    }
}
