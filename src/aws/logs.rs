//! CloudWatch Logs groups: each function's `/aws/lambda/<name>` group and the
//! API access log group. Managing them (rather than letting Lambda create
//! them on first invocation) gives a retention period, a least-privilege
//! ARN for the execution role, and a destroy that leaves no logs behind.

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Aws;
use super::backend_util::{arn, ignore_not_found, live, props};
use super::errors::AwsResultExt;
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(LogGroup)]
}

#[derive(Serialize, Deserialize)]
struct LogGroupProps {
    name: String,
    retention_days: Option<i32>,
    #[serde(default)]
    tags: Tags,
}

/// Name prefixes of the groups a stack may own: one DescribeLogGroups per
/// prefix is the batched read (the API has no tag filter).
fn prefixes(aws: &Aws) -> [String; 2] {
    [
        format!("/aws/lambda/{}-", aws.stack),
        format!("/aws/apigateway/{}-", aws.stack),
    ]
}

async fn group_arn(aws: &Aws, name: &str) -> Result<String> {
    arn(aws, "logs", &aws.region, &format!("log-group:{name}")).await
}

struct LogGroup;

impl LogGroup {
    async fn find(&self, aws: &Aws) -> Result<Vec<Live>> {
        let mut groups = Vec::new();
        for p in prefixes(aws) {
            let page: Vec<_> = aws
                .logs
                .describe_log_groups()
                .log_group_name_prefix(p)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .aws()?;
            groups.extend(page);
        }
        let reads = groups.into_iter().map(|g| async move {
            let name = g.log_group_name().unwrap_or_default().to_string();
            let arn = group_arn(aws, &name).await?;
            let t = ignore_not_found(
                aws.logs
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .aws(),
            )?;
            let all: Tags = t
                .and_then(|t| t.tags)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let Some(addr) = tags::owner(aws, &all).map(str::to_string) else {
                return Ok::<_, anyhow::Error>(None);
            };
            let p = LogGroupProps {
                name: name.clone(),
                retention_days: g.retention_in_days(),
                tags: tags::visible(all),
            };
            Ok(Some(live(
                "logs.log_group",
                &addr,
                &name,
                json!(p),
                json!({ "arn": arn, "name": name }),
            )))
        });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn set_retention(&self, aws: &Aws, name: &str, days: Option<i32>) -> Result<()> {
        match days {
            Some(d) => aws
                .logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(d)
                .send()
                .await
                .aws()
                .map(|_| ()),
            None => ignore_not_found(
                aws.logs
                    .delete_retention_policy()
                    .log_group_name(name)
                    .send()
                    .await
                    .aws(),
            )
            .map(|_| ()),
        }
        .with_context(|| format!("setting the retention of {name}"))
    }
}

#[async_trait]
impl Kind for LogGroup {
    fn name(&self) -> &'static str {
        "logs.log_group"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name"],
            weight: 1,
            service: "logs",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: LogGroupProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let arn = group_arn(aws, &p.name).await?;
        match aws
            .logs
            .create_log_group()
            .log_group_name(&p.name)
            .set_tags(Some(t.clone().into_iter().collect()))
            .send()
            .await
            .aws()
        {
            Ok(_) => {}
            // Lambda made it on a first invocation before infra managed it,
            // or a retried call after a lost response: adopt it, unless
            // another stack owns it.
            Err(e) if e.is("ResourceAlreadyExistsException") => {
                let existing: Tags = aws
                    .logs
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .aws()?
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                if let Some(owner) = existing.get(super::STACK_TAG)
                    && owner != &aws.stack
                {
                    anyhow::bail!(
                        "log group {} belongs to stack {owner}; rename this stack or function",
                        p.name
                    );
                }
                aws.logs
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(t.into_iter().collect()))
                    .send()
                    .await
                    .aws()
                    .context("tagging the existing log group")?;
            }
            Err(e) => return Err(anyhow::anyhow!(e).context(format!("creating {}", p.name))),
        }
        self.set_retention(aws, &p.name, p.retention_days).await?;
        Ok(live(
            self.name(),
            &d.address,
            &p.name,
            json!(p),
            json!({ "arn": arn, "name": p.name }),
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
        let p: LogGroupProps = props(d)?;
        if changed.iter().any(|c| c == "retention_days") {
            self.set_retention(aws, &p.name, p.retention_days).await?;
        }
        let arn = group_arn(aws, &p.name).await?;
        let (set, remove) = tags::delta(&tags::from_props(&l.props), &tags::from_props(&d.props));
        if !set.is_empty() {
            aws.logs
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .aws()?;
        }
        if !remove.is_empty() {
            aws.logs
                .untag_resource()
                .resource_arn(&arn)
                .set_tag_keys(Some(remove))
                .send()
                .await
                .aws()?;
        }
        Ok(live(
            self.name(),
            &d.address,
            &p.name,
            json!(p),
            json!({ "arn": arn, "name": p.name }),
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        ignore_not_found(
            aws.logs
                .delete_log_group()
                .log_group_name(&l.id)
                .send()
                .await
                .aws(),
        )?;
        Ok(None)
    }
}
