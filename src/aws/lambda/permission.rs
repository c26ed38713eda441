//! Invoke permissions: statements of a function's resource policy that let
//! API Gateway call it. Statements have no tags: the statement id carries
//! the address.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Listed, functions, list_functions};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::each;
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags;
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PermissionProps {
    pub function_name: Ref,
    pub action: String,
    pub principal: String,
    pub source_arn: Ref,
}

impl Props for PermissionProps {
    const KIND: &'static str = "lambda.permission";
}

pub struct Permission;

/// Statement ids of this tool's permissions: `infra-` and the address with
/// `.` as `_` (statement ids allow letters, digits, `-` and `_` only). The
/// addresses of permissions therefore use no `_` (function names of the
/// backend tier are lowercase letters, digits and hyphens).
const SID_PREFIX: &str = "infra-";

fn sid(address: &str) -> Result<String> {
    if !address.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        bail!("internal error: permission address {address} cannot be a statement id");
    }
    Ok(format!("{SID_PREFIX}{}", address.replace('.', "_")))
}

fn address_of(sid: &str) -> Option<String> {
    sid.strip_prefix(SID_PREFIX).map(|a| a.replace('_', "."))
}

/// The statements of a function's resource policy (none without a policy).
async fn policy_statements(aws: &Aws, function: &str) -> Result<Vec<Value>> {
    let Some(policy) = aws.lambda.get_policy().function_name(function).send().await.aws().or_absent()? else {
        return Ok(vec![]);
    };
    let doc: Value = serde_json::from_str(policy.policy().unwrap_or("{}")).context("reading a function policy")?;
    Ok(match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => vec![],
    })
}

/// Whether the function's resource policy has a statement with this id.
async fn has_statement(aws: &Aws, function: &str, sid: &str) -> Result<bool> {
    Ok(policy_statements(aws, function).await?.iter().any(|s| s["Sid"] == sid))
}

/// A permission as a resource of this kind: `<function>/<statement id>`.
fn current(address: String, function: &str, sid: &str, props: PermissionProps) -> Current<PermissionProps> {
    Current::new(address, format!("{function}/{sid}"), props).with("statement_id", sid)
}

/// The permission a statement of `function`'s policy is, if it is ours.
fn parse(function: &str, s: &Value) -> Option<Current<PermissionProps>> {
    let sid = s["Sid"].as_str()?;
    let address = address_of(sid)?;
    let principal = match &s["Principal"] {
        Value::String(p) => p.clone(),
        p => p["Service"].as_str().unwrap_or_default().to_string(),
    };
    let action = match &s["Action"] {
        Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default(),
        a => a.as_str().unwrap_or_default(),
    };
    let props = PermissionProps {
        function_name: function.into(),
        action: action.to_string(),
        principal,
        source_arn: s["Condition"]["ArnLike"]["AWS:SourceArn"].as_str().unwrap_or_default().into(),
    };
    Some(current(address, function, sid, props))
}

impl Permission {
    /// The permissions on the stack's functions among `listed` (at
    /// `address`, when given): one GetPolicy per function.
    async fn build(aws: &Aws, address: Option<&str>, listed: &[Listed]) -> Result<Vec<Current<PermissionProps>>> {
        let ours = listed.iter().filter(|l| tags::owner(aws, &l.tags).is_some());
        each(ours, |l| async move {
            let name = l.config.function_name().unwrap_or_default();
            Ok(policy_statements(aws, name)
                .await?
                .iter()
                .filter_map(|s| parse(name, s))
                .filter(|c| address.is_none_or(|a| a == c.address))
                .collect::<Vec<_>>())
        })
        .await
    }
}

#[async_trait]
impl Kind for Permission {
    type Props = PermissionProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            // A permission cannot be changed, only removed and added again.
            replace_fields: &["function_name", "action", "principal", "source_arn"],
            ..KindInfo::default()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<PermissionProps>>> {
        Self::build(aws, address, &list_functions(aws).await?).await
    }

    /// From the listing shared with the function kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<PermissionProps>>> {
        Self::build(aws, None, &functions(aws).await?).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<PermissionProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<PermissionProps>> {
        let p = &d.props;
        let (function, source) = (p.function_name.get()?, p.source_arn.get()?);
        let statement = sid(&d.address)?;
        // Not retried blindly: an endpoint that does not enforce unique
        // statement ids would keep a second copy of a grant whose answer was
        // lost. Before trying again, look for the statement.
        create_once(
            &format!("{} (granting {} on {function})", d.address, p.principal),
            || async {
                match aws
                    .lambda_once
                    .add_permission()
                    .function_name(function)
                    .statement_id(&statement)
                    .action(&p.action)
                    .principal(&p.principal)
                    .source_arn(source)
                    .send()
                    .await
                    .aws()
                {
                    // The statement is there already (AWS enforces unique ids).
                    Err(e) if e.is("ResourceConflictException") => Ok(()),
                    r => r.map(|_| ()),
                }
            },
            || async { Ok(has_statement(aws, function, &statement).await?.then_some(())) },
        )
        .await?;
        Ok(current(d.address.clone(), function, &statement, p.clone()))
    }

    async fn update(
        &self, _aws: &Aws, d: &Desired<PermissionProps>, _l: &Current<PermissionProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<PermissionProps>> {
        bail!("internal error: {} can only be replaced (every field forces replacement)", d.address)
    }

    async fn delete(&self, aws: &Aws, l: &Current<PermissionProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        let statement = match l.attr("statement_id") {
            Some(s) => s.to_string(),
            None => sid(&l.address)?,
        };
        aws.lambda
            .remove_permission()
            .function_name(l.props.function_name.get()?)
            .statement_id(statement)
            .send()
            .await
            .aws()
            .or_absent()?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_round_trip() {
        let s = sid("backend.permission.orders-v2").unwrap();
        assert_eq!(s, "infra-backend_permission_orders-v2");
        assert_eq!(address_of(&s).unwrap(), "backend.permission.orders-v2");
        assert!(sid("a_b").is_err());
        assert_eq!(address_of("AllowConsole"), None);
    }
}
