//! The origin access control: how the distribution signs its requests to
//! the private bucket. It takes no tags: its description says whose it is.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols,
};
use serde::{Deserialize, Serialize};

use super::{description, if_match, owner_tags};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::{Aws, create_once, delete_guarded};
use crate::engine::provider::StepContext;
use crate::engine::resource::Props;

/// How long an origin access control may stay in use by a distribution
/// that is being deleted.
const RELEASE: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OriginAccessControlProps {
    /// Unique per account.
    pub name: String,
    pub origin_type: String,
    pub signing_behavior: String,
    pub signing_protocol: String,
}

impl Props for OriginAccessControlProps {
    const KIND: &'static str = "cloudfront.origin_access_control";
}

/// Every setting can be changed in place (the name is unique per account).
pub struct OriginAccessControl;

fn config(aws: &Aws, address: &str, p: &OriginAccessControlProps) -> Result<OriginAccessControlConfig> {
    Ok(OriginAccessControlConfig::builder()
        .name(&p.name)
        .description(description(aws, address))
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(p.origin_type.as_str()))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(p.signing_behavior.as_str()))
        .signing_protocol(OriginAccessControlSigningProtocols::from(p.signing_protocol.as_str()))
        .build()?)
}

/// The ETag of the origin access control `id` (`None`: it is gone).
async fn etag(aws: &Aws, id: &str) -> Result<Option<String>, AwsError> {
    Ok(aws
        .cloudfront
        .get_origin_access_control()
        .id(id)
        .send()
        .await
        .aws()
        .or_absent()?
        .map(|got| got.e_tag().unwrap_or_default().to_string()))
}

#[async_trait]
impl Kind for OriginAccessControl {
    type Props = OriginAccessControlProps;

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<OriginAccessControlProps>>> {
        let items =
            paginated!(aws.cloudfront.list_origin_access_controls()).context("listing origin access controls")?;
        Ok(owned(
            aws,
            address,
            items,
            |o| owner_tags(aws, o.description()),
            |o, owner| {
                let props = OriginAccessControlProps {
                    name: o.name().to_string(),
                    origin_type: o.origin_access_control_origin_type().as_str().to_string(),
                    signing_behavior: o.signing_behavior().as_str().to_string(),
                    signing_protocol: o.signing_protocol().as_str().to_string(),
                };
                Some(Current::new(owner.address, o.id(), props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<OriginAccessControlProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<OriginAccessControlProps>> {
        let conf = config(aws, &d.address, &d.props)?;
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .cloudfront_once
                    .create_origin_access_control()
                    .origin_access_control_config(conf.clone())
                    .send()
                    .await
                    .aws()?;
                Ok(out.origin_access_control().map(|o| o.id().to_string()).unwrap_or_default())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<OriginAccessControlProps>, l: &Current<OriginAccessControlProps>,
        _changed: &[String], _ctx: &StepContext<'_>,
    ) -> Result<Current<OriginAccessControlProps>> {
        let conf = &config(aws, &d.address, &d.props)?;
        if_match(
            "updating the origin access control",
            || async {
                let etag = etag(aws, &l.id)
                    .await
                    .context("reading the origin access control")?
                    .ok_or_else(|| anyhow!("origin access control {} disappeared", l.id))?;
                Ok(Some((etag, ())))
            },
            |etag, ()| async move {
                aws.cloudfront
                    .update_origin_access_control()
                    .id(&l.id)
                    .if_match(etag)
                    .origin_access_control_config(conf.clone())
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        Ok(d.current(l.id.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<OriginAccessControlProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        // Still in use while a distribution that used it is being deleted.
        delete_guarded(
            "deleting the origin access control",
            &["OriginAccessControlInUse", "PreconditionFailed"],
            RELEASE,
            ctx,
            || async { Ok(etag(aws, &l.id).await?) },
            |etag| async move {
                aws.cloudfront_once
                    .delete_origin_access_control()
                    .id(&l.id)
                    .if_match(etag)
                    .send()
                    .await
                    .aws()
                    .map(|_| ())
            },
        )
        .await?;
        Ok(None)
    }
}
