//! Stream mappings (event source mappings): a function consuming a
//! DynamoDB stream.

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_lambda::types::EventSourcePosition;
use serde::{Deserialize, Serialize};

use super::{IAM_PROPAGATION, SETTLE, Tagging, arn, function_arn, tags_of};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::retry::retry_when;
use crate::aws::tags::{self, Tags};
use crate::aws::{ADDRESS_TAG, Aws, wait_for};
use crate::engine::provider::{KindInfo, StepContext, StepReporter};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventSourceMappingProps {
    pub function_arn: Ref,
    pub event_source_arn: Ref,
    pub batch_size: i32,
    pub starting_position: String,
    pub enabled: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for EventSourceMappingProps {
    const KIND: &'static str = "lambda.event_source_mapping";
}

pub struct EventSourceMapping;

/// The role cannot read the stream yet (propagation of its new stream policy).
fn stream_not_readable(e: &AwsError) -> bool {
    e.is("InvalidParameterValueException")
        && (e.message.contains("Cannot access stream") || e.message.contains("ensure the role can perform"))
}

async fn mapping_arn(aws: &Aws, uuid: &str) -> Result<String> {
    arn(aws, &format!("event-source-mapping:{uuid}")).await
}

/// A mapping as a resource of this kind: its UUID is its id.
fn current(
    address: String, uuid: &str, arn: String, props: EventSourceMappingProps,
) -> Current<EventSourceMappingProps> {
    Current::new(address, uuid, props).with("arn", arn).with("uuid", uuid)
}

async fn wait_state(aws: &Aws, uuid: &str, rep: &dyn StepReporter) -> Result<()> {
    wait_for("the stream mapping to be ready", SETTLE, rep, || async {
        let m = aws.lambda.get_event_source_mapping().uuid(uuid).send().await.aws()?;
        Ok(match m.state() {
            Some("Enabled") | Some("Disabled") => Some(()),
            Some(s @ ("Creating" | "Enabling" | "Disabling" | "Updating")) => {
                rep.status(&format!("mapping {s}"));
                None
            }
            Some(other) => {
                bail!("stream mapping {uuid} is {other}: {}", m.state_transition_reason().unwrap_or("no reason given"))
            }
            None => Some(()),
        })
    })
    .await
}

#[async_trait]
impl Kind for EventSourceMapping {
    type Props = EventSourceMappingProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["event_source_arn", "starting_position"], weight: 2, ..KindInfo::default() }
    }

    /// One paginated ListEventSourceMappings, narrowed to the functions
    /// named like the stack's, then each mapping's tags (no batch API).
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<EventSourceMappingProps>>> {
        let stack_prefix = format!("{}-", aws.stack);
        let (prefix, all) = tokio::try_join!(function_arn(aws, &stack_prefix), async {
            Ok::<_, anyhow::Error>(paginated!(aws.lambda.list_event_source_mappings())?)
        })?;
        let tagged = futures::future::try_join_all(
            all.into_iter().filter(|m| m.function_arn().is_some_and(|f| f.starts_with(&prefix))).map(|m| async move {
                let arn = mapping_arn(aws, m.uuid().unwrap_or_default()).await?;
                let tags = tags_of(aws, &arn).await?;
                Ok::<_, anyhow::Error>((m, arn, tags))
            }),
        )
        .await?;
        Ok(owned(
            aws,
            address,
            tagged,
            |(_, _, tags)| tags.clone(),
            |(m, arn, _), owner| {
                let uuid = m.uuid().unwrap_or_default().to_string();
                let props = EventSourceMappingProps {
                    function_arn: m.function_arn().unwrap_or_default().into(),
                    event_source_arn: m.event_source_arn().unwrap_or_default().into(),
                    batch_size: m.batch_size().unwrap_or(100),
                    starting_position: m.starting_position().map(|s| s.as_str().to_string()).unwrap_or_default(),
                    enabled: !matches!(m.state(), Some("Disabled" | "Disabling")),
                    tags: owner.tags,
                };
                Some(current(owner.address, &uuid, arn, props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<EventSourceMappingProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<EventSourceMappingProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        let (function, source) = (p.function_arn.get()?, p.event_source_arn.get()?);
        let created = retry_when(stream_not_readable, "creating the stream mapping", IAM_PROPAGATION, ctx, || async {
            aws.lambda
                .create_event_source_mapping()
                .function_name(function)
                .event_source_arn(source)
                .batch_size(p.batch_size)
                .starting_position(EventSourcePosition::from(p.starting_position.as_str()))
                .enabled(p.enabled)
                .set_tags(Some(t.clone().into_iter().collect()))
                .send()
                .await
                .aws()
        })
        .await;
        let uuid = match created {
            Ok(out) => out.uuid().unwrap_or_default().to_string(),
            // Lambda keeps one mapping per function and stream: a retried
            // create whose first attempt went through finds it, ours if
            // tagged so, and makes it what the file says.
            Err(e) if e.downcast_ref::<AwsError>().is_some_and(|a| a.is("ResourceConflictException")) => {
                let existing = aws
                    .lambda
                    .list_event_source_mappings()
                    .function_name(function)
                    .event_source_arn(source)
                    .send()
                    .await
                    .aws()
                    .context("finding the existing stream mapping")?;
                let uuid = existing.event_source_mappings().first().and_then(|m| m.uuid()).unwrap_or_default();
                let arn = mapping_arn(aws, uuid).await?;
                if tags_of(aws, &arn).await?.get(ADDRESS_TAG).map(String::as_str) != Some(d.address.as_str()) {
                    return Err(e.context(format!(
                        "a mapping of this function to this stream ({uuid}) already exists outside this stack"
                    )));
                }
                wait_state(aws, uuid, ctx).await?;
                let adopted = current(d.address.clone(), uuid, arn, p.clone());
                let changed = ["batch_size".to_string(), "enabled".to_string()];
                return self.update(aws, d, &adopted, &changed, ctx).await;
            }
            Err(e) => return Err(e),
        };
        wait_state(aws, &uuid, ctx).await?;
        let arn = mapping_arn(aws, &uuid).await?;
        Ok(current(d.address.clone(), &uuid, arn, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<EventSourceMappingProps>, l: &Current<EventSourceMappingProps>,
        changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Current<EventSourceMappingProps>> {
        let p = &d.props;
        if changed.iter().any(|c| matches!(c.as_str(), "batch_size" | "enabled" | "function_arn")) {
            wait_state(aws, &l.id, ctx).await?;
            aws.lambda
                .update_event_source_mapping()
                .uuid(&l.id)
                .function_name(p.function_arn.get()?)
                .batch_size(p.batch_size)
                .enabled(p.enabled)
                .send()
                .await
                .aws()
                .context("updating the stream mapping")?;
            wait_state(aws, &l.id, ctx).await?;
        }
        let arn = mapping_arn(aws, &l.id).await?;
        tags::sync(&Tagging, aws, &arn, &l.props.tags, &p.tags).await?;
        Ok(current(d.address.clone(), &l.id, arn, p.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<EventSourceMappingProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        let gone = retry_when(
            |e| e.is("ResourceInUseException"),
            "deleting the stream mapping",
            SETTLE,
            ctx,
            || async { aws.lambda.delete_event_source_mapping().uuid(&l.id).send().await.aws().or_absent() },
        )
        .await?
        .is_none();
        if !gone {
            wait_for("the stream mapping to be deleted", SETTLE, ctx, || async {
                let r = aws.lambda.get_event_source_mapping().uuid(&l.id).send().await.aws().or_absent()?;
                Ok(r.is_none().then_some(()))
            })
            .await?;
        }
        Ok(None)
    }
}
