//! The app client of a user pool: what the site signs users in with (a
//! public client: no secret, which a browser could not keep). Clients take
//! no tags: the stack's are those of its pools whose names carry the
//! stack's prefix, each at the address of its pool plus `.client`.

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    ExplicitAuthFlowsType, PreventUserExistenceErrorTypes, UserPoolClientType,
};
use serde::{Deserialize, Serialize};

use super::{Pool, pools, tags_of};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::owner;
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserPoolClientProps {
    pub name: String,
    pub user_pool_id: Ref,
    /// Sign-in flows (`ALLOW_USER_SRP_AUTH`, `ALLOW_REFRESH_TOKEN_AUTH`...).
    pub explicit_auth_flows: Vec<String>,
    /// `ENABLED`: an unknown user answers as a wrong password does.
    pub prevent_user_existence_errors: String,
    pub enable_token_revocation: bool,
}

impl Props for UserPoolClientProps {
    const KIND: &'static str = "cognito.user_pool_client";
}

pub struct UserPoolClient;

/// The address of the app client of the pool at `pool`.
pub fn address_of(pool: &str) -> String {
    format!("{pool}.client")
}

fn current(address: String, c: &UserPoolClientType) -> Current<UserPoolClientProps> {
    let mut flows: Vec<String> = c.explicit_auth_flows().iter().map(|f| f.as_str().to_string()).collect();
    flows.sort();
    let props = UserPoolClientProps {
        name: c.client_name().unwrap_or_default().to_string(),
        user_pool_id: Ref::Value(c.user_pool_id().unwrap_or_default().to_string()),
        explicit_auth_flows: flows,
        prevent_user_existence_errors: c
            .prevent_user_existence_errors()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "LEGACY".into()),
        enable_token_revocation: c.enable_token_revocation().unwrap_or(false),
    };
    let id = c.client_id().unwrap_or_default().to_string();
    Current::new(address, id.clone(), props).with("client_id", id)
}

/// The stack's app clients (at `address` only, when given), through the
/// stack's pools: one listing per pool, one describe per client.
async fn find(aws: &Aws, address: Option<&str>, fresh: bool) -> Result<Vec<Current<UserPoolClientProps>>> {
    if fresh {
        aws.forget("cognito.pools");
    }
    let prefix = format!("{}-", aws.stack);
    let pools = pools(aws).await?;
    let mut reads = Vec::new();
    for Pool { pool, clients } in pools.iter() {
        let Some(owned) = owner(aws, None, tags_of(pool)) else { continue };
        let at = address_of(&owned.address);
        if address.is_some_and(|a| a != at) {
            continue;
        }
        let pool_id = pool.id().unwrap_or_default();
        for c in clients.iter().filter(|c| c.client_name().is_some_and(|n| n.starts_with(&prefix))) {
            let (id, at) = (c.client_id().unwrap_or_default(), at.clone());
            reads.push(async move {
                let got = aws
                    .cognito
                    .describe_user_pool_client()
                    .user_pool_id(pool_id)
                    .client_id(id)
                    .send()
                    .await
                    .aws()
                    .or_absent()?;
                Ok::<_, anyhow::Error>(got.and_then(|g| g.user_pool_client).map(|c| current(at, &c)))
            });
        }
    }
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

fn flows(p: &UserPoolClientProps) -> Option<Vec<ExplicitAuthFlowsType>> {
    Some(p.explicit_auth_flows.iter().map(|f| ExplicitAuthFlowsType::from(f.as_str())).collect())
}

#[async_trait]
impl Kind for UserPoolClient {
    type Props = UserPoolClientProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["user_pool_id"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut serde_json::Value) {
        sort_set(props, "explicit_auth_flows");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<UserPoolClientProps>>> {
        find(aws, address, address.is_some()).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<UserPoolClientProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<UserPoolClientProps>> {
        let p = &d.props;
        let pool = p.user_pool_id.get()?;
        // Client names are not unique and there is no client token.
        create_once(
            &format!("app client {}", p.name),
            || async {
                let out = aws
                    .cognito_once
                    .create_user_pool_client()
                    .user_pool_id(pool)
                    .client_name(&p.name)
                    .generate_secret(false)
                    .set_explicit_auth_flows(flows(p))
                    .prevent_user_existence_errors(PreventUserExistenceErrorTypes::from(
                        p.prevent_user_existence_errors.as_str(),
                    ))
                    .enable_token_revocation(p.enable_token_revocation)
                    .send()
                    .await
                    .aws()?;
                let c = out.user_pool_client.unwrap_or_else(|| UserPoolClientType::builder().build());
                Ok(current(d.address.clone(), &c).with_props(p.clone()))
            },
            || async { Ok(find(aws, Some(&d.address), true).await?.into_iter().next()) },
        )
        .await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<UserPoolClientProps>, l: &Current<UserPoolClientProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<UserPoolClientProps>> {
        let p = &d.props;
        // UpdateUserPoolClient resets what it is not given: all of it, each time.
        aws.cognito
            .update_user_pool_client()
            .user_pool_id(p.user_pool_id.get()?)
            .client_id(&l.id)
            .client_name(&p.name)
            .set_explicit_auth_flows(flows(p))
            .prevent_user_existence_errors(PreventUserExistenceErrorTypes::from(
                p.prevent_user_existence_errors.as_str(),
            ))
            .enable_token_revocation(p.enable_token_revocation)
            .send()
            .await
            .aws()
            .with_context(|| format!("updating app client {}", p.name))?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<UserPoolClientProps>, _ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        aws.cognito
            .delete_user_pool_client()
            .user_pool_id(l.props.user_pool_id.get()?)
            .client_id(&l.id)
            .send()
            .await
            .aws()
            .or_absent()?;
        Ok(None)
    }
}
