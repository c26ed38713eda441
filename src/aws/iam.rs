//! IAM roles with their inline policies and managed policy attachments
//! (untaggable parts of the role, so they are its properties).
//!
//! IAM is global: roles are read under the stack's path (`/infra/<stack>/<region>/`),
//! one paginated ListRoles, so the same stack deployed in two regions never
//! sees (and deletes) the other's roles.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::backend_util::{ignore_not_found, live, policy_json, props, sort_array};
use super::errors::{AwsError, AwsResultExt};
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, retry_on};
use crate::engine::concat;
use crate::engine::provider::{KindInfo, Quiet, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(Role)]
}

/// How long a just-created role may take to be visible to IAM's own calls.
const VISIBLE: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct RoleProps {
    name: String,
    path: String,
    #[serde(default)]
    description: String,
    assume_role_policy: Value,
    /// Inline policies by name.
    #[serde(default)]
    policies: BTreeMap<String, Value>,
    /// ARNs of attached managed policies.
    #[serde(default)]
    managed_policies: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

fn iam_tags(t: &Tags) -> Vec<Tag> {
    t.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// The stack's role path, from the stack and region (the model builds the same).
fn stack_path(aws: &Aws) -> String {
    format!("/infra/{}/{}/", aws.stack, aws.region)
}

async fn role_arn(aws: &Aws, path: &str, name: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:iam::{account}:role{path}{name}"))
}

struct Role;

impl Role {
    /// Reads one role completely (tags, inline and managed policies).
    async fn read_one(&self, aws: &Aws, name: &str) -> Result<Option<Live>> {
        let Some(got) = ignore_not_found(aws.iam.get_role().role_name(name).send().await.aws())?
        else {
            return Ok(None);
        };
        let Some(r) = got.role() else { return Ok(None) };
        let all: Tags = r
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let Some(addr) = tags::owner(aws, &all).map(str::to_string) else {
            return Ok(None);
        };
        let (names, attached) = tokio::try_join!(
            async {
                aws.iam
                    .list_role_policies()
                    .role_name(name)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .aws()
                    .map_err(anyhow::Error::from)
            },
            async {
                aws.iam
                    .list_attached_role_policies()
                    .role_name(name)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .aws()
                    .map_err(anyhow::Error::from)
            },
        )?;
        let docs = futures::future::try_join_all(names.iter().map(|p| async move {
            let out = aws
                .iam
                .get_role_policy()
                .role_name(name)
                .policy_name(p)
                .send()
                .await
                .aws()?;
            Ok::<_, anyhow::Error>((p.clone(), policy_json(out.policy_document())))
        }))
        .await?;
        let mut p = json!(RoleProps {
            name: r.role_name().to_string(),
            path: r.path().to_string(),
            description: r.description().unwrap_or_default().to_string(),
            assume_role_policy: policy_json(r.assume_role_policy_document().unwrap_or("{}")),
            policies: docs.into_iter().collect(),
            managed_policies: attached
                .iter()
                .filter_map(|a| a.policy_arn().map(str::to_string))
                .collect(),
            tags: tags::visible(all),
        });
        Role.normalize(&mut p);
        let arn = role_arn(aws, r.path(), r.role_name()).await?;
        Ok(Some(live(
            "iam.role",
            &addr,
            r.role_name(),
            p,
            json!({ "arn": arn, "name": r.role_name() }),
        )))
    }

    /// Brings inline and managed policies from `old` to `new`.
    async fn converge(&self, aws: &Aws, new: &RoleProps, old: Option<&RoleProps>) -> Result<()> {
        let name = &new.name;
        let empty = BTreeMap::new();
        let old_policies = old.map(|o| &o.policies).unwrap_or(&empty);
        for (pname, doc) in &new.policies {
            if old_policies.get(pname) == Some(doc) {
                continue;
            }
            let text = serde_json::to_string(doc)?;
            retry_on(
                &["NoSuchEntity"],
                &format!("writing policy {pname} of role {name}"),
                VISIBLE,
                &Quiet,
                || async {
                    aws.iam
                        .put_role_policy()
                        .role_name(name)
                        .policy_name(pname)
                        .policy_document(&text)
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        for pname in old_policies.keys() {
            if !new.policies.contains_key(pname) {
                ignore_not_found(
                    aws.iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(pname)
                        .send()
                        .await
                        .aws(),
                )?;
            }
        }
        let old_managed: Vec<String> = old.map(|o| o.managed_policies.clone()).unwrap_or_default();
        for arn in &new.managed_policies {
            if !old_managed.contains(arn) {
                retry_on(
                    &["NoSuchEntity"],
                    &format!("attaching {arn} to role {name}"),
                    VISIBLE,
                    &Quiet,
                    || async {
                        aws.iam
                            .attach_role_policy()
                            .role_name(name)
                            .policy_arn(arn)
                            .send()
                            .await
                            .aws()
                    },
                )
                .await?;
            }
        }
        for arn in &old_managed {
            if !new.managed_policies.contains(arn) {
                ignore_not_found(
                    aws.iam
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .aws(),
                )?;
            }
        }
        Ok(())
    }
}

/// Inline policy documents as sent: references resolved, concatenations joined.
fn resolved(d: &Resource) -> Result<RoleProps> {
    let mut p: RoleProps = props(d)?;
    for doc in p.policies.values_mut() {
        concat::join(doc);
    }
    p.managed_policies.sort();
    Ok(p)
}

#[async_trait]
impl Kind for Role {
    fn name(&self) -> &'static str {
        "iam.role"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name", "path"],
            weight: 2,
            service: "iam",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        concat::join(props);
        sort_array(props, "managed_policies");
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let roles: Vec<_> = aws
            .iam
            .list_roles()
            .path_prefix(stack_path(aws))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        let reads = roles
            .iter()
            // The prefix filter may be ignored by some implementations.
            .filter(|r| r.path() == stack_path(aws))
            .map(|r| self.read_one(aws, r.role_name()));
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p = resolved(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let created = aws
            .iam
            .create_role()
            .role_name(&p.name)
            .path(&p.path)
            .description(&p.description)
            .assume_role_policy_document(serde_json::to_string(&p.assume_role_policy)?)
            .set_tags(Some(iam_tags(&t)))
            .send()
            .await
            .aws();
        let old = match created {
            Ok(_) => None,
            Err(e) if e.is("EntityAlreadyExists") => {
                // A retry after a lost response, or a crash before the
                // policies were written: continue from what exists if ours.
                match self.read_one(aws, &p.name).await? {
                    Some(l) if l.address == d.address => {
                        Some(serde_json::from_value::<RoleProps>(l.props)?)
                    }
                    _ => bail!(
                        "an IAM role named {} already exists and is not {} of stack {}; delete or rename it",
                        p.name,
                        d.address,
                        aws.stack
                    ),
                }
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating role {}", p.name))),
        };
        self.converge(aws, &p, old.as_ref()).await?;
        let arn = role_arn(aws, &p.path, &p.name).await?;
        let name = p.name.clone();
        Ok(live(
            self.name(),
            &d.address,
            &name,
            json!(p),
            json!({ "arn": arn, "name": name }),
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p = resolved(d)?;
        let old: RoleProps = serde_json::from_value(l.props.clone())?;
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
        self.converge(aws, &p, Some(&old)).await?;
        let (set, remove) = tags::delta(&old.tags, &p.tags);
        if !set.is_empty() {
            aws.iam
                .tag_role()
                .role_name(&p.name)
                .set_tags(Some(iam_tags(&set)))
                .send()
                .await
                .aws()?;
        }
        if !remove.is_empty() {
            aws.iam
                .untag_role()
                .role_name(&p.name)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .aws()?;
        }
        let arn = role_arn(aws, &p.path, &p.name).await?;
        let name = p.name.clone();
        Ok(live(
            self.name(),
            &d.address,
            &name,
            json!(p),
            json!({ "arn": arn, "name": name }),
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let name = &l.id;
        // What is attached now (not what the plan saw): DeleteRole refuses a
        // role that still has policies.
        let inline: Vec<String> = match aws
            .iam
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
        {
            Ok(v) => v,
            Err(e) if e.not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        for p in &inline {
            ignore_not_found(
                aws.iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await
                    .aws(),
            )?;
        }
        let attached: Vec<_> = aws
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .or_else(|e: AwsError| if e.not_found() { Ok(vec![]) } else { Err(e) })?;
        for a in &attached {
            if let Some(arn) = a.policy_arn() {
                ignore_not_found(
                    aws.iam
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .aws(),
                )?;
            }
        }
        retry_on(
            &["DeleteConflict"],
            &format!("deleting role {name}"),
            VISIBLE,
            rep,
            || async { ignore_not_found(aws.iam.delete_role().role_name(name).send().await.aws()) },
        )
        .await?;
        Ok(None)
    }
}
