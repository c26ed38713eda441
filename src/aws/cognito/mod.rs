//! Cognito user pools: who may call the API's `auth: jwt` routes. The pool
//! holds the users (data: it is deleted only when nothing protects it) and
//! the app client the site signs them in with; one file per kind.
//!
//! Pools have no tag-filtered listing: the pools named after the stack are
//! listed once and described (for their tags) once per read, shared by both
//! kinds ([`pools`]). App clients take no tags: a client is the stack's when
//! its pool is and its name carries the stack's prefix, at an address
//! derived from its pool's ([`user_pool_client::address_of`]).

pub mod user_pool;
pub mod user_pool_client;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use aws_sdk_cognitoidentityprovider::types::{UserPoolClientDescription, UserPoolType};

use super::Aws;
use super::errors::{Absent, AwsResultExt};
use super::find::paginated;
use super::tags::Tags;

/// The service's kinds, each registered once (see `super::registry`).
pub fn kinds() -> Vec<Box<dyn super::kind::DynKind>> {
    vec![Box::new(user_pool::UserPool), Box::new(user_pool_client::UserPoolClient)]
}

/// A user pool named after this stack, described, with its app clients as
/// listed (ids and names).
pub struct Pool {
    pub pool: UserPoolType,
    pub clients: Vec<UserPoolClientDescription>,
}

/// The user pools named after this stack (`<stack>-...`), described (the
/// listing holds neither tags nor settings), each with its clients, listed
/// beside the description (the tags, which say whether the pool is the
/// stack's, come with it; a plan's chain is one round trip shorter).
pub async fn pools(aws: &Aws) -> Result<Arc<Vec<Pool>>> {
    aws.cached("cognito.pools", || async {
        let listed = paginated!(aws.cognito.list_user_pools().max_results(60))?;
        let prefix = format!("{}-", aws.stack);
        let ours = listed.iter().filter(|p| p.name().is_some_and(|n| n.starts_with(&prefix)));
        let described = futures::future::try_join_all(ours.map(|p| async move {
            let id = p.id().unwrap_or_default();
            let (got, clients) = tokio::try_join!(
                async { aws.cognito.describe_user_pool().user_pool_id(id).send().await.aws().or_absent() },
                async { paginated!(aws.cognito.list_user_pool_clients().user_pool_id(id).max_results(60)).or_absent() },
            )?;
            Ok::<_, anyhow::Error>(
                got.and_then(|g| g.user_pool).map(|pool| Pool { pool, clients: clients.unwrap_or_default() }),
            )
        }))
        .await?;
        Ok(described.into_iter().flatten().collect())
    })
    .await
}

/// A pool's tags as a map.
pub fn tags_of(p: &UserPoolType) -> Tags {
    p.user_pool_tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// A map as the pool's tags.
pub fn tag_map(t: &Tags) -> HashMap<String, String> {
    t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
