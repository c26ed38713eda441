//! CloudWatch Logs groups: each function's `/aws/lambda/<name>` group and the
//! API access log group. Managing them (rather than letting Lambda create
//! them on first invocation) gives a retention period, a least-privilege
//! ARN for the execution role, and a destroy that leaves no logs behind.

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Tagging, group_arn, prefixes, tags_of};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, TagApi, Tags};
use crate::aws::{Aws, STACK_TAG};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogGroupProps {
    pub name: String,
    pub retention_days: Option<i32>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for LogGroupProps {
    const KIND: &'static str = "logs.log_group";
}

pub struct LogGroup;

async fn set_retention(aws: &Aws, name: &str, days: Option<i32>) -> Result<()> {
    match days {
        Some(d) => {
            aws.logs.put_retention_policy().log_group_name(name).retention_in_days(d).send().await.aws().map(|_| ())
        }
        None => aws.logs.delete_retention_policy().log_group_name(name).send().await.aws().or_absent().map(|_| ()),
    }
    .with_context(|| format!("setting the retention of {name}"))
}

/// A group as a resource of this kind: its name is its id.
fn current(address: String, arn: String, props: LogGroupProps) -> Current<LogGroupProps> {
    let name = props.name.clone();
    Current::new(address, name.clone(), props).with("arn", arn).with("name", name)
}

#[async_trait]
impl Kind for LogGroup {
    type Props = LogGroupProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name"], ..KindInfo::default() }
    }

    /// What is written to it and kept.
    fn cost(&self, _props: &LogGroupProps, prices: &Prices) -> Option<Cost> {
        Some(prices.usage(&[
            (&["cloudwatch_logs", "ingest_per_gb"], "per GB ingested"),
            (&["cloudwatch_logs", "storage_gb_month"], "per GB-month kept"),
        ]))
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<LogGroupProps>>> {
        let prefixes = prefixes(aws);
        let listed = paginated!(aws.logs.describe_log_groups().log_group_name_pattern(&aws.stack))?;
        let groups: Vec<_> = listed
            .into_iter()
            .filter(|g| g.log_group_name().is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p.as_str()))))
            .collect();
        // The listing has no tags: one read per group (no batch API).
        let tagged = futures::future::try_join_all(groups.into_iter().map(|g| async move {
            let arn = group_arn(aws, g.log_group_name().unwrap_or_default()).await?;
            let all = tags_of(aws, &arn).await.or_absent()?.unwrap_or_default();
            Ok::<_, anyhow::Error>((g, arn, all))
        }))
        .await?;
        Ok(owned(
            aws,
            address,
            tagged,
            |(_, _, all)| all.clone(),
            |(g, arn, _), owner| {
                let props = LogGroupProps {
                    name: g.log_group_name().unwrap_or_default().to_string(),
                    retention_days: g.retention_in_days(),
                    tags: owner.tags,
                };
                Some(current(owner.address, arn, props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<LogGroupProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<LogGroupProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
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
                let existing = tags_of(aws, &arn).await?;
                if let Some(owner) = existing.get(STACK_TAG)
                    && owner != &aws.stack
                {
                    bail!("log group {} belongs to stack {owner}; rename this stack or function", p.name);
                }
                Tagging.tag(aws, &arn, &t).await.context("tagging the existing log group")?;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating {}", p.name))),
        }
        set_retention(aws, &p.name, p.retention_days).await?;
        Ok(current(d.address.clone(), arn, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<LogGroupProps>, l: &Current<LogGroupProps>, changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<LogGroupProps>> {
        let p = &d.props;
        if changed.iter().any(|c| c == "retention_days") {
            set_retention(aws, &p.name, p.retention_days).await?;
        }
        let arn = group_arn(aws, &p.name).await?;
        tags::sync(&Tagging, aws, &arn, &l.props.tags, &p.tags).await?;
        Ok(current(d.address.clone(), arn, p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<LogGroupProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.logs.delete_log_group().log_group_name(&l.id).send().await.aws().or_absent()?;
        Ok(None)
    }
}
