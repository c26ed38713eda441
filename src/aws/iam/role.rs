//! IAM roles with their inline policies and managed policy attachments
//! (untaggable parts of the role, so they are its properties), read under
//! the stack's path: one paginated ListRoles, then the roles' details in one
//! GetAccountAuthorizationDetails where the account's roles fit its page
//! (else four reads a role: see `details`).

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Tagging, VISIBLE, forget_inventory, inventory, policy_json, role_arn, stack_path, tag_list, tag_map};
use crate::aws::collection::{delta, set_delta};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{each, owner, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::sort_set;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleProps {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
    pub assume_role_policy: Value,
    /// Inline policies by name (documents whose resources may be
    /// references and concatenations, resolved before the kind sees them).
    #[serde(default)]
    pub policies: BTreeMap<String, Value>,
    /// ARNs of attached managed policies.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    #[serde(default)]
    pub tags: Tags,
}

/// Every value of `field` (`Action`, `Resource`, `Principal`...) in the
/// `Allow` statements of `docs`, as text (a principal as `Service:...`),
/// but references still unknown (what the same plan creates).
fn allowed(docs: &[Value], field: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    fn add(v: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::String(s) => {
                out.insert(format!("{prefix}{s}"));
            }
            Value::Array(a) => a.iter().for_each(|x| add(x, prefix, out)),
            Value::Object(o) if prefix.is_empty() && !crate::engine::value::is_symbolic(v) => {
                for (k, x) in o {
                    add(x, &format!("{k}:"), out);
                }
            }
            // A reference to what the same plan makes (the stack's own
            // table, its log group): not a grant beyond the stack.
            other if crate::engine::value::is_symbolic(other) => {}
            other => {
                out.insert(format!("{prefix}{}", crate::engine::value::render(other)));
            }
        }
    }
    for doc in docs {
        let statements = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            s @ Value::Object(_) => vec![s.clone()],
            _ => Vec::new(),
        };
        for st in statements.iter().filter(|s| s["Effect"] == "Allow") {
            if let Some(v) = st.get(field) {
                add(v, "", &mut out);
            }
        }
    }
    out
}

fn gained(was: &std::collections::BTreeSet<String>, now: &std::collections::BTreeSet<String>) -> Vec<String> {
    now.difference(was).cloned().collect()
}

/// The first few of `items`, and how many more.
fn listed(items: &[String]) -> String {
    const SHOWN: usize = 4;
    let head = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN { format!("{head} and {} more", items.len() - SHOWN) } else { head }
}

impl Props for RoleProps {
    const KIND: &'static str = "iam.role";
}

pub struct Role;

/// A role as a resource of this kind: its name is its id.
async fn current(aws: &Aws, address: String, props: RoleProps) -> Result<Current<RoleProps>> {
    let arn = role_arn(aws, &props.path, &props.name).await?;
    let name = props.name.clone();
    Ok(Current::new(address, name.clone(), props).with("arn", arn).with("name", name))
}

/// Reads one role completely (tags, inline and managed policies), if it is
/// this stack's (at `address`, when given). ListRoles returns no tags.
async fn read_one(aws: &Aws, address: Option<&str>, name: &str) -> Result<Option<Current<RoleProps>>> {
    // The role (with its tags, for the owner check) and its policies are
    // read side by side: a role under the stack's path is the stack's, and
    // a plan's round trips are the depth of its longest chain.
    let role = async { aws.iam.get_role().role_name(name).send().await.aws().or_absent() };
    let policies = async {
        let (names, attached) =
            tokio::try_join!(async { paginated!(aws.iam.list_role_policies().role_name(name)).or_absent() }, async {
                paginated!(aws.iam.list_attached_role_policies().role_name(name)).or_absent()
            },)?;
        let docs = futures::future::try_join_all(names.unwrap_or_default().into_iter().map(|p| async move {
            let out = aws.iam.get_role_policy().role_name(name).policy_name(&p).send().await.aws()?;
            Ok::<_, anyhow::Error>((p, policy_json(out.policy_document())))
        }))
        .await?;
        Ok::<_, anyhow::Error>((docs, attached.unwrap_or_default()))
    };
    let (got, (docs, attached)) = tokio::try_join!(async { Ok::<_, anyhow::Error>(role.await?) }, policies)?;
    let Some(got) = got else {
        return Ok(None);
    };
    let Some(r) = got.role() else { return Ok(None) };
    let Some(owned) = owner(aws, address, tag_map(r.tags())) else {
        return Ok(None);
    };
    let props = RoleProps {
        name: r.role_name().to_string(),
        path: r.path().to_string(),
        description: r.description().unwrap_or_default().to_string(),
        assume_role_policy: policy_json(r.assume_role_policy_document().unwrap_or("{}")),
        policies: docs.into_iter().collect(),
        managed_policies: attached.iter().filter_map(|a| a.policy_arn().map(str::to_string)).collect(),
        tags: owned.tags,
    };
    Ok(Some(current(aws, owned.address, props).await?))
}

/// IAM's largest page of account details (`MaxItems`).
const DETAILS_PAGE: i32 = 1000;

/// Every role of the account with its tags, inline and attached policies,
/// from GetAccountAuthorizationDetails: one call where four a role read the
/// same (GetRole for the tags, ListRolePolicies, GetRolePolicy each,
/// ListAttachedRolePolicies). Only where the account's roles fit one page
/// (GetAccountSummary counts them): the details cover every role of the
/// account, so many pages in sequence would be slower than the reads of the
/// stack's roles side by side. `None` then, or when the caller may not read
/// the details (`iam:GetAccountAuthorizationDetails` is not in every
/// deploy policy): the caller reads role by role.
pub(super) async fn details(aws: &Aws) -> Result<Option<Vec<aws_sdk_iam::types::RoleDetail>>> {
    use aws_sdk_iam::types::{EntityType, SummaryKeyType};
    let summary = aws.iam.get_account_summary().send().await.aws();
    let roles = summary.ok().and_then(|s| s.summary_map().and_then(|m| m.get(&SummaryKeyType::Roles).copied()));
    if roles.is_none_or(|n| n > DETAILS_PAGE) {
        return Ok(None);
    }
    let pages = aws
        .iam
        .get_account_authorization_details()
        .filter(EntityType::Role)
        .max_items(DETAILS_PAGE)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::new();
    for page in pages {
        match page.map_err(|e| crate::aws::errors::describe(&e)) {
            Ok(p) => out.extend(p.role_detail_list().iter().cloned()),
            Err(e) if e.is("AccessDenied") || e.is("AccessDeniedException") => return Ok(None),
            Err(e) => return Err(anyhow!(e).context("reading the account's role details")),
        }
    }
    Ok(Some(out))
}

/// A role of the stack from its listing (for the description, which the
/// details leave out) and its details.
async fn from_details(
    aws: &Aws, address: Option<&str>, listed: &aws_sdk_iam::types::Role, d: &aws_sdk_iam::types::RoleDetail,
) -> Result<Option<Current<RoleProps>>> {
    let Some(owned) = owner(aws, address, tag_map(d.tags())) else {
        return Ok(None);
    };
    let props = RoleProps {
        name: listed.role_name().to_string(),
        path: listed.path().to_string(),
        description: listed.description().unwrap_or_default().to_string(),
        assume_role_policy: policy_json(d.assume_role_policy_document().unwrap_or("{}")),
        policies: d
            .role_policy_list()
            .iter()
            .map(|p| {
                (p.policy_name().unwrap_or_default().to_string(), policy_json(p.policy_document().unwrap_or("{}")))
            })
            .collect(),
        managed_policies: d
            .attached_managed_policies()
            .iter()
            .filter_map(|a| a.policy_arn().map(str::to_string))
            .collect(),
        tags: owned.tags,
    };
    Ok(Some(current(aws, owned.address, props).await?))
}

/// The stack's roles among `listed`, from the account's details where read
/// (a role made since is read on its own), else role by role.
async fn build(
    aws: &Aws, address: Option<&str>, listed: &[aws_sdk_iam::types::Role],
    details: Option<&[aws_sdk_iam::types::RoleDetail]>,
) -> Result<Vec<Current<RoleProps>>> {
    let by_name: BTreeMap<&str, &aws_sdk_iam::types::RoleDetail> =
        details.unwrap_or_default().iter().filter_map(|d| Some((d.role_name()?, d))).collect();
    let (by_name, known) = (&by_name, details.is_some());
    each(listed, |r| async move {
        match by_name.get(r.role_name()) {
            Some(d) if known => from_details(aws, address, r, d).await,
            _ => read_one(aws, address, r.role_name()).await,
        }
    })
    .await
}

async fn remove_inline(aws: &Aws, role: &str, policy: &str) -> Result<()> {
    aws.iam.delete_role_policy().role_name(role).policy_name(policy).send().await.aws().or_absent()?;
    Ok(())
}

async fn detach(aws: &Aws, role: &str, arn: &str) -> Result<()> {
    aws.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await.aws().or_absent()?;
    Ok(())
}

/// Brings inline and managed policies from `old` to `new`.
async fn converge(aws: &Aws, new: &RoleProps, old: Option<&RoleProps>) -> Result<()> {
    let name = &new.name;
    let want: Vec<(&String, &Value)> = new.policies.iter().collect();
    let have: Vec<(&String, &Value)> = old.map(|o| o.policies.iter().collect()).unwrap_or_default();
    let inline = delta(&want, &have, |(pname, _)| *pname);
    let written = inline.added.into_iter().chain(inline.changed.into_iter().map(|(_, w)| w));
    for (pname, doc) in written {
        let text = serde_json::to_string(doc)?;
        retry_on(
            &["NoSuchEntity"],
            &format!("writing policy {pname} of role {name}"),
            VISIBLE,
            &StepContext::quiet(),
            || async {
                aws.iam.put_role_policy().role_name(name).policy_name(*pname).policy_document(&text).send().await.aws()
            },
        )
        .await?;
    }
    for (pname, _) in inline.removed {
        remove_inline(aws, name, pname).await?;
    }
    let none = Vec::new();
    let managed = set_delta(&new.managed_policies, old.map_or(&none, |o| &o.managed_policies));
    for arn in managed.added {
        retry_on(
            &["NoSuchEntity"],
            &format!("attaching {arn} to role {name}"),
            VISIBLE,
            &StepContext::quiet(),
            || async { aws.iam.attach_role_policy().role_name(name).policy_arn(arn).send().await.aws() },
        )
        .await?;
    }
    for arn in managed.removed {
        detach(aws, name, arn).await?;
    }
    Ok(())
}

#[async_trait]
impl Kind for Role {
    type Props = RoleProps;

    fn info(&self) -> KindInfo {
        // A statement naming what is still being made (a database's
        // secret) is added when it exists; the role is usable before.
        KindInfo { replace_fields: &["name", "path"], weight: 2, late_fields: &["policies"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "managed_policies");
    }

    /// Allowed actions and resources its inline policies gain, managed
    /// policies attached, principals its trust policy gains.
    fn widens(&self, before: Option<&RoleProps>, after: &RoleProps) -> Vec<String> {
        let mut out = Vec::new();
        let docs =
            |p: Option<&RoleProps>| p.map(|p| p.policies.values().cloned().collect::<Vec<_>>()).unwrap_or_default();
        let (was, now) = (docs(before), docs(Some(after)));
        for (field, what) in [("Action", "actions"), ("Resource", "resources")] {
            let gained = gained(&allowed(&was, field), &allowed(&now, field));
            if !gained.is_empty() {
                out.push(format!("its policies allow more {what}: {}", listed(&gained)));
            }
        }
        for field in ["NotAction", "NotResource"] {
            let gained = gained(&allowed(&was, field), &allowed(&now, field));
            if !gained.is_empty() {
                out.push(format!("its policies allow everything but ({field}) {}", listed(&gained)));
            }
        }
        let managed: Vec<String> = after
            .managed_policies
            .iter()
            .filter(|m| !before.is_some_and(|b| b.managed_policies.contains(m)))
            .cloned()
            .collect();
        if !managed.is_empty() {
            out.push(format!("attaches {}", listed(&managed)));
        }
        let trust = |p: Option<&RoleProps>| {
            allowed(&p.map(|p| vec![p.assume_role_policy.clone()]).unwrap_or_default(), "Principal")
        };
        let principals = gained(&trust(before), &trust(Some(after)));
        if !principals.is_empty() {
            out.push(format!("may be assumed by {}", listed(&principals)));
        }
        out
    }

    /// Uncached: the create path looks for what an earlier attempt made.
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<RoleProps>>> {
        let path = stack_path(aws);
        let roles = paginated!(aws.iam.list_roles().path_prefix(&path))?;
        // The prefix filter may be ignored by some implementations.
        let ours: Vec<_> = roles.into_iter().filter(|r| r.path() == path).collect();
        let details = if ours.len() >= 2 { details(aws).await? } else { None };
        build(aws, address, &ours, details.as_deref()).await
    }

    /// A plan's read: the IAM inventory it shares with the instance profiles.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<RoleProps>>> {
        let inv = inventory(aws).await?;
        build(aws, None, &inv.roles, inv.details.as_deref()).await
    }

    async fn create(&self, aws: &Aws, d: &Desired<RoleProps>, _ctx: &StepContext<'_>) -> Result<Current<RoleProps>> {
        forget_inventory(aws);
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        let created = aws
            .iam
            .create_role()
            .role_name(&p.name)
            .path(&p.path)
            .description(&p.description)
            .assume_role_policy_document(serde_json::to_string(&p.assume_role_policy)?)
            .set_tags(Some(tag_list(&t)))
            .send()
            .await
            .aws();
        let old = match created {
            Ok(_) => None,
            // A retry after a lost response, or a crash before the policies
            // were written: continue from what exists if ours.
            Err(e) if e.is("EntityAlreadyExists") => match read_one(aws, Some(&d.address), &p.name).await? {
                Some(l) => Some(l.props),
                None => bail!(
                    "an IAM role named {} already exists and is not {} of stack {}; delete or rename it",
                    p.name,
                    d.address,
                    aws.stack
                ),
            },
            Err(e) => return Err(anyhow!(e).context(format!("creating role {}", p.name))),
        };
        converge(aws, p, old.as_ref()).await?;
        current(aws, d.address.clone(), p.clone()).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<RoleProps>, l: &Current<RoleProps>, changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<RoleProps>> {
        forget_inventory(aws);
        let p = &d.props;
        if changed.iter().any(|c| c == "assume_role_policy") {
            aws.iam
                .update_assume_role_policy()
                .role_name(&p.name)
                .policy_document(serde_json::to_string(&p.assume_role_policy)?)
                .send()
                .await
                .aws()
                .context("updating the trust policy")?;
        }
        if changed.iter().any(|c| c == "description") {
            aws.iam
                .update_role()
                .role_name(&p.name)
                .description(&p.description)
                .send()
                .await
                .aws()
                .context("updating the description")?;
        }
        converge(aws, p, Some(&l.props)).await?;
        tags::sync(&Tagging, aws, &p.name, &l.props.tags, &p.tags).await?;
        current(aws, d.address.clone(), p.clone()).await
    }

    async fn delete(&self, aws: &Aws, l: &Current<RoleProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        forget_inventory(aws);
        let name = &l.id;
        // What is attached now (not what the plan saw): DeleteRole refuses a
        // role that still has policies.
        let Some(inline) = paginated!(aws.iam.list_role_policies().role_name(name)).or_absent()? else {
            return Ok(None);
        };
        for p in &inline {
            remove_inline(aws, name, p).await?;
        }
        let attached =
            paginated!(aws.iam.list_attached_role_policies().role_name(name)).or_absent()?.unwrap_or_default();
        for arn in attached.iter().filter_map(|a| a.policy_arn()) {
            detach(aws, name, arn).await?;
        }
        retry_on(&["DeleteConflict"], &format!("deleting role {name}"), VISIBLE, ctx, || async {
            aws.iam.delete_role().role_name(name).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
