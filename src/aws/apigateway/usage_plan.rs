//! The usage plan of the API's keys: which stage they open, and each key's
//! quota and throttling. Its keys are part of it (untaggable links), so
//! they are its property.

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{ApiStage, Op, QuotaPeriodType, QuotaSettings, ThrottleSettings, UsagePlan};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Tagging, patch, tag_map};
use crate::aws::collection::set_delta;
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{each, owner, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

/// Requests per key per period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub limit: i32,
    /// `DAY`, `WEEK` or `MONTH`.
    pub period: String,
}

/// Per-key token bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    pub rate_limit: f64,
    pub burst_limit: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UsagePlanProps {
    pub name: String,
    pub api_id: Ref,
    pub stage: String,
    #[serde(default)]
    pub quota: Option<Quota>,
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// Ids of the API keys the plan holds.
    #[serde(default)]
    pub key_ids: Vec<Ref>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for UsagePlanProps {
    const KIND: &'static str = "apigateway.usage_plan";
}

pub struct UsagePlanKind;

async fn plan_arn(aws: &Aws, id: &str) -> Result<String> {
    let (_, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:apigateway:{}::/usageplans/{id}", aws.region))
}

fn quota(q: &Quota) -> QuotaSettings {
    QuotaSettings::builder().limit(q.limit).period(QuotaPeriodType::from(q.period.as_str())).build()
}

fn throttle(t: &Throttle) -> ThrottleSettings {
    ThrottleSettings::builder().rate_limit(t.rate_limit).burst_limit(t.burst_limit).build()
}

/// The plan's props as read, with its keys (one GetUsagePlanKeys).
async fn read(aws: &Aws, p: &UsagePlan, tags: Tags) -> Result<UsagePlanProps> {
    let id = p.id().unwrap_or_default();
    let keys = paginated!(aws.apigateway.get_usage_plan_keys().usage_plan_id(id).limit(500)).or_absent()?;
    let mut key_ids: Vec<Ref> = keys.unwrap_or_default().iter().filter_map(|k| k.id().map(Ref::from)).collect();
    key_ids.sort();
    let stage = p.api_stages().first();
    Ok(UsagePlanProps {
        name: p.name().unwrap_or_default().to_string(),
        api_id: stage.and_then(|s| s.api_id()).unwrap_or_default().into(),
        stage: stage.and_then(|s| s.stage()).unwrap_or_default().to_string(),
        quota: p.quota().map(|q| Quota {
            limit: q.limit(),
            period: q.period().map(|p| p.as_str().to_string()).unwrap_or_default(),
        }),
        throttle: p.throttle().map(|t| Throttle { rate_limit: t.rate_limit(), burst_limit: t.burst_limit() }),
        key_ids,
        tags,
    })
}

/// Adds and removes keys so the plan holds exactly `want`.
async fn converge_keys(aws: &Aws, plan: &str, want: &[Ref], have: &[Ref]) -> Result<()> {
    let (want, have) = (Ref::all(want)?, Ref::all(have)?);
    let moved = set_delta(&want, &have);
    for k in moved.added {
        match aws
            .apigateway
            .create_usage_plan_key()
            .usage_plan_id(plan)
            .key_id(k)
            .key_type("API_KEY")
            .send()
            .await
            .aws()
        {
            // A retry after a lost answer: the key is in the plan.
            Err(e) if e.is("ConflictException") => {}
            other => {
                other.with_context(|| format!("adding API key {k} to usage plan {plan}"))?;
            }
        }
    }
    for k in moved.removed {
        aws.apigateway.delete_usage_plan_key().usage_plan_id(plan).key_id(k).send().await.aws().or_absent()?;
    }
    Ok(())
}

#[async_trait]
impl Kind for UsagePlanKind {
    type Props = UsagePlanProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["api_id", "stage"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "key_ids");
        if let Some(t) = props.get_mut("throttle").and_then(|t| t.get_mut("rate_limit"))
            && let Some(f) = t.as_f64()
        {
            *t = serde_json::json!(f);
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<UsagePlanProps>>> {
        let plans = paginated!(aws.apigateway.get_usage_plans().limit(500))?;
        each(plans, |p| async move {
            let Some(owned) = owner(aws, address, tag_map(p.tags())) else {
                return Ok(None);
            };
            let props = read(aws, &p, owned.tags).await?;
            Ok(Some(Current::new(owned.address, p.id().unwrap_or_default(), props)))
        })
        .await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<UsagePlanProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<UsagePlanProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        let api = p.api_id.get()?;
        let id = create_once(
            &format!("usage plan {}", p.name),
            || async {
                let out = aws
                    .apigateway_once
                    .create_usage_plan()
                    .name(&p.name)
                    .api_stages(ApiStage::builder().api_id(api).stage(&p.stage).build())
                    .set_quota(p.quota.as_ref().map(quota))
                    .set_throttle(p.throttle.as_ref().map(throttle))
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()?;
                Ok(out.id().unwrap_or_default().to_string())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.into_iter().next().map(|c| c.id)) },
        )
        .await?;
        converge_keys(aws, &id, &p.key_ids, &[]).await?;
        Ok(Current::new(d.address.clone(), id, p.clone()))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<UsagePlanProps>, l: &Current<UsagePlanProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<UsagePlanProps>> {
        let (p, old) = (&d.props, &l.props);
        let mut ops = Vec::new();
        if p.name != old.name {
            ops.push(patch(Op::Replace, "/name", Some(p.name.clone())));
        }
        if p.quota != old.quota {
            match &p.quota {
                Some(q) => {
                    ops.push(patch(Op::Replace, "/quota/limit", Some(q.limit.to_string())));
                    ops.push(patch(Op::Replace, "/quota/period", Some(q.period.clone())));
                }
                None => ops.push(patch(Op::Remove, "/quota", None)),
            }
        }
        if p.throttle != old.throttle {
            match &p.throttle {
                Some(t) => {
                    ops.push(patch(Op::Replace, "/throttle/rateLimit", Some(t.rate_limit.to_string())));
                    ops.push(patch(Op::Replace, "/throttle/burstLimit", Some(t.burst_limit.to_string())));
                }
                None => ops.push(patch(Op::Remove, "/throttle", None)),
            }
        }
        if !ops.is_empty() {
            aws.apigateway
                .update_usage_plan()
                .usage_plan_id(&l.id)
                .set_patch_operations(Some(ops))
                .send()
                .await
                .aws()
                .with_context(|| format!("updating usage plan {}", p.name))?;
        }
        converge_keys(aws, &l.id, &p.key_ids, &old.key_ids).await?;
        tags::sync(&Tagging, aws, &plan_arn(aws, &l.id).await?, &old.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    /// The plan's stage is released first (API Gateway refuses to delete a
    /// plan still associated with a stage).
    async fn delete(&self, aws: &Aws, l: &Current<UsagePlanProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        if let (Some(api), false) = (l.props.api_id.known(), l.props.stage.is_empty()) {
            let released = aws
                .apigateway
                .update_usage_plan()
                .usage_plan_id(&l.id)
                .patch_operations(patch(Op::Remove, "/apiStages", Some(format!("{api}:{}", l.props.stage))))
                .send()
                .await
                .aws()
                .or_absent();
            released.with_context(|| format!("releasing the stage of usage plan {}", l.props.name))?;
        }
        aws.apigateway.delete_usage_plan().usage_plan_id(&l.id).send().await.aws().or_absent()?;
        Ok(None)
    }
}
