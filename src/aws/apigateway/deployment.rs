//! Deployments: snapshots of an API's routes. A deployment's `routes_hash`
//! property (kept in its description, deployments having no tags) changes
//! with the routes, which replaces it: a new deployment is made, the stage
//! is repointed, then the old one is deleted.

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_apigateway::types::RestApi;
use serde::{Deserialize, Serialize};

use super::{THROTTLED, apis, list_apis, throttled};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{each, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::retry::retry_when;
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeploymentProps {
    pub rest_api_id: Ref,
    pub routes_hash: String,
}

impl Props for DeploymentProps {
    const KIND: &'static str = "apigateway.deployment";
}

pub struct Deployment;

/// `infra <address> <hash>`: deployments have no tags, so the description
/// carries the address and the routes hash.
fn deployment_description(address: &str, hash: &str) -> String {
    format!("infra {address} {hash}")
}

fn parse_description(d: &str) -> Option<(String, String)> {
    let mut it = d.split_whitespace();
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some("infra"), Some(a), Some(h), None) => Some((a.to_string(), h.to_string())),
        _ => None,
    }
}

/// This tool's deployments of the API `api` (at `address`, when given).
async fn deployments(aws: &Aws, api: &str, address: Option<&str>) -> Result<Vec<Current<DeploymentProps>>> {
    let ds = paginated!(aws.apigateway.get_deployments().rest_api_id(api).limit(500))?;
    Ok(ds
        .into_iter()
        .filter_map(|d| {
            let (at, hash) = parse_description(d.description()?)?;
            if address.is_some_and(|a| a != at) {
                return None;
            }
            let props = DeploymentProps { rest_api_id: api.into(), routes_hash: hash };
            Some(Current::new(at, d.id()?, props))
        })
        .collect())
}

impl Deployment {
    /// The deployments of the APIs `listed`: one listing per API.
    async fn build(aws: &Aws, address: Option<&str>, listed: &[RestApi]) -> Result<Vec<Current<DeploymentProps>>> {
        each(listed, |a| deployments(aws, a.id().unwrap_or_default(), address)).await
    }
}

#[async_trait]
impl Kind for Deployment {
    type Props = DeploymentProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["rest_api_id", "routes_hash"],
            // The stage moves to the new deployment before the old one goes.
            create_before_destroy: true,
            ..KindInfo::default()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DeploymentProps>>> {
        Self::build(aws, address, &list_apis(aws).await?).await
    }

    /// From the listing shared with the API and stage kinds.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<DeploymentProps>>> {
        Self::build(aws, None, &apis(aws).await?).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<DeploymentProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<DeploymentProps>> {
        let p = &d.props;
        let api = p.rest_api_id.get()?;
        let description = deployment_description(&d.address, &p.routes_hash);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .apigateway_once
                    .create_deployment()
                    .rest_api_id(api)
                    .description(&description)
                    .send()
                    .await
                    .aws()?;
                Ok(out.id().unwrap_or_default().to_string())
            },
            // Only this API's deployments: the one a lost answer made.
            || async {
                Ok(deployments(aws, api, Some(&d.address))
                    .await?
                    .into_iter()
                    .find(|c| c.props.routes_hash == p.routes_hash)
                    .map(|c| c.id))
            },
        )
        .await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, _aws: &Aws, d: &Desired<DeploymentProps>, _l: &Current<DeploymentProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<DeploymentProps>> {
        bail!("internal error: {} can only be replaced", d.address)
    }

    async fn delete(&self, aws: &Aws, l: &Current<DeploymentProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let api = l.props.rest_api_id.get()?;
        // A stage being repointed in parallel still references it for a moment.
        retry_when(
            |e| throttled(e) || (e.is("BadRequestException") && e.message.contains("stages pointing")),
            "deleting the deployment",
            THROTTLED,
            ctx,
            || async {
                aws.apigateway.delete_deployment().rest_api_id(api).deployment_id(&l.id).send().await.aws().or_absent()
            },
        )
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_descriptions_round_trip() {
        let d = deployment_description("backend.deployment", "0a1b2c3d");
        assert_eq!(parse_description(&d), Some(("backend.deployment".into(), "0a1b2c3d".into())));
        assert_eq!(parse_description("manual deploy"), None);
    }
}
