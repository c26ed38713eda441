//! API keys of the API's `auth: api_key` routes: one per client the file
//! names. API Gateway generates each value; the tool never reads, prints or
//! stores it (the plan and the state hold the key's id and name only): a
//! client's value is for its owner to fetch, with
//! `aws apigateway get-api-key --api-key ID --include-value`.

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{ApiKey, Op};
use serde::{Deserialize, Serialize};

use super::{Tagging, patch, tag_map};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiKeyProps {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub enabled: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for ApiKeyProps {
    const KIND: &'static str = "apigateway.api_key";
}

pub struct ApiKeyKind;

/// The ARN of the key `id`, for its tags.
async fn key_arn(aws: &Aws, id: &str) -> Result<String> {
    let (_, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:apigateway:{}::/apikeys/{id}", aws.region))
}

fn current(address: String, k: &ApiKey, tags: Tags) -> Current<ApiKeyProps> {
    let props = ApiKeyProps {
        name: k.name().unwrap_or_default().to_string(),
        description: k.description().unwrap_or_default().to_string(),
        enabled: k.enabled(),
        tags,
    };
    Current::new(address, k.id().unwrap_or_default(), props).with("name", k.name())
}

#[async_trait]
impl Kind for ApiKeyKind {
    type Props = ApiKeyProps;

    fn info(&self) -> KindInfo {
        // A new name is a new key (and a new value for the client).
        KindInfo { replace_fields: &["name"], ..KindInfo::default() }
    }

    /// One paginated GetApiKeys (with tags; never the values).
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<ApiKeyProps>>> {
        let keys = paginated!(aws.apigateway.get_api_keys().include_values(false).limit(500))?;
        Ok(owned(aws, address, keys, |k| tag_map(k.tags()), |k, owner| Some(current(owner.address, &k, owner.tags))))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<ApiKeyProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<ApiKeyProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        // Names are not unique and there is no client token: a lost answer
        // is looked for by tag.
        create_once(
            &format!("API key {}", p.name),
            || async {
                let k = aws
                    .apigateway_once
                    .create_api_key()
                    .name(&p.name)
                    .description(&p.description)
                    .enabled(p.enabled)
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()?;
                let id = k.id().unwrap_or_default().to_string();
                Ok(Current::new(d.address.clone(), id, p.clone()).with("name", &p.name))
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.into_iter().next()) },
        )
        .await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<ApiKeyProps>, l: &Current<ApiKeyProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<ApiKeyProps>> {
        let (p, old) = (&d.props, &l.props);
        let mut ops = Vec::new();
        if p.enabled != old.enabled {
            ops.push(patch(Op::Replace, "/enabled", Some(p.enabled.to_string())));
        }
        if p.description != old.description {
            ops.push(patch(Op::Replace, "/description", Some(p.description.clone())));
        }
        if !ops.is_empty() {
            aws.apigateway
                .update_api_key()
                .api_key(&l.id)
                .set_patch_operations(Some(ops))
                .send()
                .await
                .aws()
                .with_context(|| format!("updating API key {}", p.name))?;
        }
        tags::sync(&Tagging, aws, &key_arn(aws, &l.id).await?, &old.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<ApiKeyProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.apigateway.delete_api_key().api_key(&l.id).send().await.aws().or_absent()?;
        Ok(None)
    }
}
