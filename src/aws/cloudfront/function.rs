//! A CloudFront Function: a few lines of JavaScript CloudFront runs at the
//! edge on each viewer request of the behaviours that associate it (the
//! SPA's client-side routes → `/index.html`, on the bucket's behaviour only,
//! so the API's own 403/404 reach its clients untouched).
//!
//! Functions have two stages: DEVELOPMENT, which every write changes, and
//! LIVE, which viewers get and which only PublishFunction changes. What the
//! stack compares is the LIVE code, so a function created but never
//! published (an apply cut short) is published by the next one. Ownership is
//! in the comment, which ListFunctions returns (one call for all, where tags
//! would cost one call per function of the account); the user's tags are
//! kept as well.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{FunctionConfig, FunctionRuntime, FunctionStage, FunctionSummary};
use serde::{Deserialize, Serialize};

use super::{Tagging, cf_tags, description, if_match, owner_tags, tag_map};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::owned;
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, delete_guarded};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;

/// How long a function may stay associated with a distribution that is
/// being changed or deleted (CloudFront deploys for minutes).
const RELEASE: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FunctionProps {
    /// Unique per account: 1 to 64 letters, digits, `-` and `_`.
    pub name: String,
    /// `cloudfront-js-2.0`.
    pub runtime: String,
    /// The JavaScript source, as published (LIVE).
    pub code: String,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for FunctionProps {
    const KIND: &'static str = "cloudfront.function";
}

/// The code and runtime change in place (write, then publish); the name is
/// its identity.
pub struct Function;

/// Every function of the account (DEVELOPMENT lists each once: every
/// function has that stage). ListFunctions pages by marker, without an SDK
/// paginator.
async fn list(aws: &Aws) -> Result<Vec<FunctionSummary>> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = aws
            .cloudfront
            .list_functions()
            .stage(FunctionStage::Development)
            .set_marker(marker.take())
            .send()
            .await
            .aws()
            .context("listing CloudFront functions")?;
        let Some(page) = out.function_list() else { break };
        all.extend(page.items().iter().cloned());
        marker = page.next_marker().filter(|m| !m.is_empty()).map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    Ok(all)
}

/// The ETag of the function's DEVELOPMENT stage, the one writes and
/// publishing take (`None`: it is gone).
async fn etag(aws: &Aws, name: &str) -> Result<Option<String>, AwsError> {
    Ok(aws
        .cloudfront
        .describe_function()
        .name(name)
        .stage(FunctionStage::Development)
        .send()
        .await
        .aws()
        .or_absent()?
        .map(|o| o.e_tag().unwrap_or_default().to_string()))
}

/// The LIVE code ("" before the first publish).
async fn live_code(aws: &Aws, name: &str) -> Result<String> {
    let got = aws
        .cloudfront
        .get_function()
        .name(name)
        .stage(FunctionStage::Live)
        .send()
        .await
        .aws()
        .or_absent()
        .with_context(|| format!("reading the published code of CloudFront function {name}"))?;
    let bytes = got.and_then(|o| o.function_code().map(|b| b.as_ref().to_vec())).unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn config(aws: &Aws, address: &str, p: &FunctionProps) -> Result<FunctionConfig> {
    Ok(FunctionConfig::builder()
        .comment(description(aws, address))
        .runtime(FunctionRuntime::from(p.runtime.as_str()))
        .build()?)
}

/// Makes the DEVELOPMENT stage (ETag `etag`) the LIVE one.
async fn publish(aws: &Aws, name: &str, etag: &str) -> Result<()> {
    aws.cloudfront
        .publish_function()
        .name(name)
        .if_match(etag)
        .send()
        .await
        .aws()
        .with_context(|| format!("publishing CloudFront function {name}"))?;
    Ok(())
}

/// The function's ARN, from the account and partition (STS, read once):
/// what the distribution's association names.
async fn function_arn(aws: &Aws, name: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:cloudfront::{account}:function/{name}"))
}

fn arn_of(s: &FunctionSummary) -> String {
    s.function_metadata().map(|m| m.function_arn().to_string()).unwrap_or_default()
}

#[async_trait]
impl Kind for Function {
    type Props = FunctionProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name"], ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<FunctionProps>>> {
        let ours = owned(
            aws,
            address,
            list(aws).await?,
            |f| owner_tags(aws, f.function_config().map(|c| c.comment()).unwrap_or_default()),
            |f, owner| {
                let runtime = f.function_config().map(|c| c.runtime().as_str().to_string()).unwrap_or_default();
                let arn = arn_of(&f);
                let p = FunctionProps { name: f.name().to_string(), runtime, code: String::new(), tags: Tags::new() };
                Some(Current::new(owner.address, f.name(), p).with("arn", arn))
            },
        );
        let reads = ours.into_iter().map(|mut c| async move {
            c.props.code = live_code(aws, &c.id).await?;
            let arn = c.attr("arn").unwrap_or_default().to_string();
            let got = aws.cloudfront.list_tags_for_resource().resource(&arn).send().await.aws().or_absent();
            let all = got.with_context(|| format!("reading the tags of CloudFront function {}", c.id))?;
            c.props.tags = tags::visible(all.map(|o| tag_map(o.tags())).unwrap_or_default());
            Ok::<_, anyhow::Error>(c)
        });
        futures::future::try_join_all(reads).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<FunctionProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<FunctionProps>> {
        let p = &d.props;
        let conf = config(aws, &d.address, p)?;
        let t = cf_tags(&aws.tags_for(&d.address, &p.tags));
        create_once(
            &d.address,
            || async {
                let out = aws
                    .cloudfront_once
                    .create_function()
                    .name(&p.name)
                    .function_config(conf.clone())
                    .function_code(Blob::new(p.code.as_bytes()))
                    .tags(t.clone())
                    .send()
                    .await
                    .aws()?;
                Ok(out.function_summary().map(|f| f.name().to_string()).unwrap_or_default())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        let tag = etag(aws, &p.name).await?.ok_or_else(|| anyhow!("CloudFront function {} disappeared", p.name))?;
        publish(aws, &p.name, &tag).await?;
        Ok(d.current(p.name.clone()).with("arn", function_arn(aws, &p.name).await?))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<FunctionProps>, l: &Current<FunctionProps>, changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<FunctionProps>> {
        let p = &d.props;
        let arn = l.attr("arn").unwrap_or_default().to_string();
        if changed.iter().any(|c| c != "tags") {
            let conf = &config(aws, &d.address, p)?;
            if_match(
                &format!("updating CloudFront function {}", l.id),
                || async {
                    let tag = etag(aws, &l.id).await.context("reading the CloudFront function")?;
                    Ok(Some((tag.ok_or_else(|| anyhow!("CloudFront function {} disappeared", l.id))?, ())))
                },
                |tag, ()| async move {
                    aws.cloudfront
                        .update_function()
                        .name(&l.id)
                        .if_match(tag)
                        .function_config(conf.clone())
                        .function_code(Blob::new(p.code.as_bytes()))
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
            // UpdateFunction's ETag comes in a header the API spells `ETtag`:
            // the stage's own ETag is read again instead.
            let tag = etag(aws, &l.id).await?.ok_or_else(|| anyhow!("CloudFront function {} disappeared", l.id))?;
            publish(aws, &l.id, &tag).await?;
        }
        tags::sync(&Tagging, aws, &arn, &l.props.tags, &p.tags).await?;
        Ok(d.current(l.id.clone()).with("arn", arn))
    }

    async fn delete(&self, aws: &Aws, l: &Current<FunctionProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        // In use while the distribution that associated it deploys its change.
        delete_guarded(
            "deleting the CloudFront function",
            &["FunctionInUse", "PreconditionFailed"],
            RELEASE,
            ctx,
            || async { Ok(etag(aws, &l.id).await?) },
            |tag| async move {
                aws.cloudfront_once.delete_function().name(&l.id).if_match(tag).send().await.aws().map(|_| ())
            },
        )
        .await?;
        Ok(None)
    }
}
