//! Text with references to the stack's own values: `${tables.orders.name}`,
//! `${database.endpoint}` in function environments (and user data). Parsed
//! once by the checks; the expansions turn each part into text or a
//! reference to the resource that holds the value.

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
}

pub const TABLE_ATTRS: &[&str] = &["name", "arn", "stream_arn"];
pub const DATABASE_ATTRS: &[&str] = &["endpoint", "port", "secret_arn"];

/// Splits a value into text and `${...}` references (`$${` is a literal `${`).
pub fn parse_template(s: &str) -> Result<Vec<Part>, String> {
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
            let Some(end) = r.find('}') else {
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
    let usage = "references are `${tables.<table>.name|arn|stream_arn}` or `${database.endpoint|port|secret_arn}` (write `$${` for a literal `${`)";
    match segs.as_slice() {
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
