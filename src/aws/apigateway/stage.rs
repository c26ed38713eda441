//! Stages: the deployment an API serves, with its throttling and access
//! logging.

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{Op, RestApi};
use serde::{Deserialize, Serialize};

use super::rest_api::RestApiProps;
use super::{THROTTLED, Tagging, api_arn, apis, list_apis, patch, tag_map, throttled};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{each, owned};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::retry::retry_when;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, probe};
use crate::engine::provider::{Finding, KindInfo, StepContext};
use crate::engine::resource::{Live, Props};
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Throttling {
    pub rate_limit: f64,
    pub burst_limit: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessLog {
    pub destination_arn: Ref,
    pub format: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageProps {
    pub rest_api_id: Ref,
    pub stage_name: String,
    pub deployment_id: Ref,
    #[serde(default)]
    pub throttling: Option<Throttling>,
    #[serde(default)]
    pub access_log: Option<AccessLog>,
    /// AWS X-Ray tracing of the stage's requests.
    #[serde(default)]
    pub tracing: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for StageProps {
    const KIND: &'static str = "apigateway.stage";
}

pub struct Stage;

/// The body a check writes with: not JSON, so a service that validates its
/// input answers 400 and stores nothing.
const MALFORMED_JSON: &str = "{\"infra-check\": ";

/// A stage as a resource of this kind (`<api>/<stage>`), with its name and
/// invoke URL (`partition`: the account's).
fn current(aws: &Aws, partition: &str, address: String, api: &str, props: StageProps) -> Current<StageProps> {
    let suffix = if partition == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" };
    let stage = props.stage_name.clone();
    let url = format!("https://{api}.execute-api.{}.{suffix}/{stage}", aws.region);
    Current::new(address, format!("{api}/{stage}"), props).with("name", stage).with("invoke_url", url)
}

async fn stage_arn(aws: &Aws, api: &str, stage: &str) -> Result<String> {
    Ok(format!("{}/stages/{stage}", api_arn(aws, api).await?))
}

/// Patches the deployment, throttling and access logging from `old` to `new`.
async fn settings(aws: &Aws, new: &StageProps, old: Option<&StageProps>) -> Result<()> {
    let mut ops = Vec::new();
    if let Some(o) = old
        && o.deployment_id != new.deployment_id
    {
        ops.push(patch(Op::Replace, "/deploymentId", Some(new.deployment_id.get()?.clone())));
    }
    let old_t = old.and_then(|o| o.throttling.clone());
    if new.throttling != old_t {
        match &new.throttling {
            Some(t) => {
                ops.push(patch(Op::Replace, "/*/*/throttling/rateLimit", Some(t.rate_limit.to_string())));
                ops.push(patch(Op::Replace, "/*/*/throttling/burstLimit", Some(t.burst_limit.to_string())));
            }
            None => ops.push(patch(Op::Remove, "/*/*", None)),
        }
    }
    let old_l = old.and_then(|o| o.access_log.clone());
    if new.access_log != old_l {
        match &new.access_log {
            Some(l) => {
                ops.push(patch(
                    Op::Replace,
                    "/accessLogSettings/destinationArn",
                    Some(l.destination_arn.get()?.clone()),
                ));
                ops.push(patch(Op::Replace, "/accessLogSettings/format", Some(l.format.clone())));
            }
            None => ops.push(patch(Op::Remove, "/accessLogSettings", None)),
        }
    }
    if new.tracing != old.is_some_and(|o| o.tracing) {
        ops.push(patch(Op::Replace, "/tracingEnabled", Some(new.tracing.to_string())));
    }
    if ops.is_empty() {
        return Ok(());
    }
    aws.apigateway
        .update_stage()
        .rest_api_id(new.rest_api_id.get()?)
        .stage_name(&new.stage_name)
        .set_patch_operations(Some(ops))
        .send()
        .await
        .aws()
        .map_err(|e| {
            let hint = if e.message.contains("CloudWatch Logs role ARN") {
                " (access logs need the account's API Gateway CloudWatch Logs role: see docs/backend.md)"
            } else {
                ""
            };
            anyhow!(e).context(format!("configuring stage {}{hint}", new.stage_name))
        })?;
    Ok(())
}

impl Stage {
    /// The stages of the APIs `listed` (at `address`, when given): one
    /// GetStages per API (it returns tags).
    async fn build(aws: &Aws, address: Option<&str>, listed: &[RestApi]) -> Result<Vec<Current<StageProps>>> {
        let (_, partition) = aws.identity().await?;
        each(listed, |a| async move {
            let api = a.id().unwrap_or_default();
            let stages = aws.apigateway.get_stages().rest_api_id(api).send().await.aws()?;
            Ok::<_, anyhow::Error>(owned(
                aws,
                address,
                stages.item.unwrap_or_default(),
                |s| tag_map(s.tags()),
                |s, owner| {
                    let throttling = s.method_settings().and_then(|m| m.get("*/*")).map(|m| Throttling {
                        rate_limit: m.throttling_rate_limit(),
                        burst_limit: m.throttling_burst_limit(),
                    });
                    let access_log = s.access_log_settings().and_then(|l| {
                        Some(AccessLog {
                            destination_arn: l.destination_arn()?.into(),
                            format: l.format().unwrap_or_default().to_string(),
                        })
                    });
                    let props = StageProps {
                        rest_api_id: api.into(),
                        stage_name: s.stage_name().unwrap_or_default().to_string(),
                        deployment_id: s.deployment_id().unwrap_or_default().into(),
                        throttling,
                        access_log,
                        tracing: s.tracing_enabled(),
                        tags: owner.tags,
                    };
                    Some(current(aws, partition, owner.address, api, props))
                },
            ))
        })
        .await
    }
}

#[async_trait]
impl Kind for Stage {
    type Props = StageProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["rest_api_id", "stage_name"], ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<StageProps>>> {
        Self::build(aws, address, &list_apis(aws).await?).await
    }

    /// From the listing shared with the API and deployment kinds.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<StageProps>>> {
        Self::build(aws, None, &apis(aws).await?).await
    }

    async fn create(&self, aws: &Aws, d: &Desired<StageProps>, _ctx: &StepContext<'_>) -> Result<Current<StageProps>> {
        let p = &d.props;
        let (api, deployment) = (p.rest_api_id.get()?, p.deployment_id.get()?);
        let t = aws.tags_for(&d.address, &p.tags);
        match aws
            .apigateway
            .create_stage()
            .rest_api_id(api)
            .stage_name(&p.stage_name)
            .deployment_id(deployment)
            .tracing_enabled(p.tracing)
            .set_tags(Some(t.into_iter().collect()))
            .send()
            .await
            .aws()
        {
            Ok(_) => {}
            // A retry after a lost response: the stage exists (in our API).
            Err(e) if e.is("ConflictException") => {
                aws.apigateway
                    .update_stage()
                    .rest_api_id(api)
                    .stage_name(&p.stage_name)
                    .patch_operations(patch(Op::Replace, "/deploymentId", Some(deployment.clone())))
                    .send()
                    .await
                    .aws()?;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating stage {}", p.stage_name))),
        }
        settings(aws, p, None).await?;
        let (_, partition) = aws.identity().await?;
        Ok(current(aws, partition, d.address.clone(), api, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<StageProps>, l: &Current<StageProps>, _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<StageProps>> {
        let p = &d.props;
        let api = p.rest_api_id.get()?;
        settings(aws, p, Some(&l.props)).await?;
        let arn = stage_arn(aws, api, &p.stage_name).await?;
        tags::sync(&Tagging, aws, &arn, &l.props.tags, &p.tags).await?;
        let (_, partition) = aws.identity().await?;
        Ok(current(aws, partition, d.address.clone(), api, p.clone()))
    }

    /// Every route of the stage's API answers without a server error: GET as
    /// it is, writes with a malformed JSON body (a sound service answers
    /// 400; nothing is written), path parameters with a placeholder no real
    /// id looks like.
    async fn verify(&self, _aws: &Aws, l: &Current<StageProps>, all: &[Live]) -> Result<Vec<Finding>> {
        let api_id = l.props.rest_api_id.get()?;
        let url = l.attr("invoke_url").unwrap_or_default().to_string();
        let routes = all
            .iter()
            .find(|a| a.kind == RestApiProps::KIND && &a.id == api_id)
            .map(|a| serde_json::from_value::<RestApiProps>(a.props.clone()))
            .transpose()
            .context("reading the API's routes")?
            .map(|p| p.routes)
            .unwrap_or_default();
        let probes = routes.iter().map(|r| {
            let url = &url;
            async move {
                let path = probe::probe_path(&r.path);
                // ANY is a route's wildcard, not a method: it is probed with GET.
                let method = if r.method == "ANY" { "GET" } else { r.method.as_str() };
                let body = matches!(method, "POST" | "PUT" | "PATCH").then_some(MALFORMED_JSON);
                let check = format!("{method} {}", r.path);
                match probe::send(method, &format!("{url}{path}"), body).await {
                    Ok(a) => Finding::new(&l.address, check, a.status < 500, a.summary()),
                    Err(e) => Finding::new(&l.address, check, false, format!("{e:#}")),
                }
            }
        });
        Ok(futures::future::join_all(probes).await)
    }

    async fn delete(&self, aws: &Aws, l: &Current<StageProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let api = l.props.rest_api_id.get()?;
        retry_when(throttled, "deleting the stage", THROTTLED, ctx, || async {
            aws.apigateway
                .delete_stage()
                .rest_api_id(api)
                .stage_name(&l.props.stage_name)
                .send()
                .await
                .aws()
                .or_absent()
        })
        .await?;
        Ok(None)
    }
}
