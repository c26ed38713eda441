//! Text with references to the stack's own values: `${tables.orders.name}`,
//! `${database.endpoint}` in function environments and web groups' user
//! data (which may also name `${backend.api.url}` and `${frontend.domain}`).
//! Parsed once by the checks; the expansions turn each part into text or a
//! reference to the resource that holds the value.
//!
//! In user data (a shell script), only a dotted name is a reference:
//! `${HOME}` and `${1:-x}` are the shell's and stay as written. A dot
//! cannot occur in a shell parameter name, so `${a.b}` is never the shell's.

/// One part of an environment value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `${tables.<table>.<attr>}`
    Table {
        table: String,
        attr: String,
    },
    /// `${database.<attr>}`
    Database {
        attr: String,
    },
    /// `${backend.api.url}`: the API stage's invoke URL (user data only).
    ApiUrl,
    /// `${frontend.domain}`: the CloudFront distribution's domain name
    /// (user data only).
    FrontendDomain,
}

pub const TABLE_ATTRS: &[&str] = &["name", "arn", "stream_arn"];
pub const DATABASE_ATTRS: &[&str] = &["endpoint", "port", "secret_arn"];

/// The parts as values: text, and references to the attributes that hold
/// the values (for a concatenation the engine resolves).
pub fn values(parts: &[Part]) -> Vec<serde_json::Value> {
    use crate::engine::value::reference;
    use crate::stack::address::{DATABASE, DISTRIBUTION, STAGE, table};
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => serde_json::Value::String(t.clone()),
            Part::Table { table: t, attr } => reference(&table(t), attr),
            Part::Database { attr } => reference(DATABASE, attr),
            Part::ApiUrl => reference(STAGE, "invoke_url"),
            Part::FrontendDomain => reference(DISTRIBUTION, "domain_name"),
        })
        .collect()
}

/// How `${` is read: every one is a reference (function environments), or
/// only `${dotted.name}` (user data, where the shell has its own `${...}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    Strict,
    Shell,
}

/// Splits a value into text and `${...}` references (`$${` is a literal `${`).
pub fn parse_template(s: &str) -> Result<Vec<Part>, String> {
    parse(s, Syntax::Strict)
}

/// Splits a user data script into text and `${dotted.name}` references; the
/// shell's own `${NAME}` stays text.
pub fn parse_user_data(s: &str) -> Result<Vec<Part>, String> {
    parse(s, Syntax::Shell)
}

/// Whether `inner` is written as one of ours: a dotted name of letters,
/// digits, `_` and `-` (never a shell parameter).
fn dotted(inner: &str) -> bool {
    inner.contains('.')
        && inner
            .split('.')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

fn parse(s: &str, syntax: Syntax) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("$${") {
            text.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r.find('}');
            let ours = syntax == Syntax::Strict || end.is_some_and(|e| dotted(r[..e].trim()));
            if !ours {
                text.push_str("${");
                rest = r;
                continue;
            }
            let Some(end) = end else {
                return Err(format!("`${{` without a closing `}}` in {s:?}"));
            };
            let inner = r[..end].trim();
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(parse_ref(inner)?);
            rest = &r[end + 1..];
        } else {
            text.push('$');
            rest = &after[1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

fn parse_ref(inner: &str) -> Result<Part, String> {
    let segs: Vec<&str> = inner.split('.').collect();
    let usage = "references are `${tables.<table>.name|arn|stream_arn}`, `${database.endpoint|port|secret_arn}`, and in user data `${backend.api.url}` and `${frontend.domain}` (write `$${` for a literal `${`)";
    match segs.as_slice() {
        ["backend", "api", "url"] => Ok(Part::ApiUrl),
        ["frontend", "domain"] => Ok(Part::FrontendDomain),
        ["backend", ..] => Err(format!("`${{{inner}}}`: the backend's value is `${{backend.api.url}}`")),
        ["frontend", ..] => Err(format!("`${{{inner}}}`: the frontend's value is `${{frontend.domain}}`")),
        ["tables", table, attr] => {
            if !TABLE_ATTRS.contains(attr) {
                return Err(format!(
                    "`${{{inner}}}`: a table has no attribute `{attr}` (it has {})",
                    TABLE_ATTRS.join(", ")
                ));
            }
            Ok(Part::Table { table: table.to_string(), attr: attr.to_string() })
        }
        ["database", attr] => {
            if !DATABASE_ATTRS.contains(attr) {
                return Err(format!(
                    "`${{{inner}}}`: the database has no attribute `{attr}` (it has {})",
                    DATABASE_ATTRS.join(", ")
                ));
            }
            Ok(Part::Database { attr: attr.to_string() })
        }
        _ => Err(format!("unknown reference `${{{inner}}}`: {usage}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_leaves_the_shell_its_own_braces() {
        let script =
            "#!/bin/bash\nAPI=${backend.api.url}\necho \"${HOME} ${1:-x} ${API}\"\nT=${ tables.orders.name }\n";
        let parts = parse_user_data(script).unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Text("#!/bin/bash\nAPI=".into()),
                Part::ApiUrl,
                Part::Text("\necho \"${HOME} ${1:-x} ${API}\"\nT=".into()),
                Part::Table { table: "orders".into(), attr: "name".into() },
                Part::Text("\n".into()),
            ]
        );
        assert!(parse_user_data("${frontend.domain}").unwrap() == vec![Part::FrontendDomain]);
        // A dotted name is always ours: a typo is an error, not shell text.
        assert!(parse_user_data("${databse.endpoint}").unwrap_err().contains("unknown reference"));
        assert!(parse_user_data("${backend.url}").unwrap_err().contains("`${backend.api.url}`"));
        // An unclosed shell brace is the shell's business.
        assert_eq!(parse_user_data("echo ${").unwrap(), vec![Part::Text("echo ${".into())]);
        // In an environment every `${` is ours.
        assert!(parse_template("${HOME}").is_err());
    }
}
