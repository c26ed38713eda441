//! The one way a kind finds its resources: list the service's resources
//! (with its tag filter where it has one), keep those whose tags claim them
//! for this stack (and address), and build each with its address and the
//! tags the user sees (ours removed).
//!
//! Some services ignore tag filters, and a list call may return resources
//! of other stacks: the owner check here is the one that counts.

use anyhow::Result;

use super::Aws;
use super::kind::Current;
use super::tags::{self, Tags};

/// Every item of a paginated list or describe call, with our error type:
/// `paginated!(aws.ec2.describe_vpcs().set_filters(..))?`.
macro_rules! paginated {
    ($req:expr) => {
        $req.into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| $crate::aws::errors::describe(&e))
    };
}
pub(crate) use paginated;

/// Who a listed resource belongs to, for the kind to build it with.
pub struct Owned {
    /// Its address in this stack.
    pub address: String,
    /// The user's tags (without `infra:` and `aws:` ones), for the props.
    pub tags: Tags,
}

/// The resources among `items` that belong to this stack (at `address`
/// only, when given), each built by `build` with its owner; `build` may
/// drop an item (a resource being deleted) by returning `None`.
pub fn owned<T, P>(
    aws: &Aws, address: Option<&str>, items: impl IntoIterator<Item = T>, tags_of: impl Fn(&T) -> Tags,
    mut build: impl FnMut(T, Owned) -> Option<Current<P>>,
) -> Vec<Current<P>> {
    items
        .into_iter()
        .filter_map(|item| {
            let owned = owner(aws, address, tags_of(&item))?;
            build(item, owned)
        })
        .collect()
}

/// [`owned`] for kinds that need more calls per resource (attributes the
/// list call does not return): the reads run concurrently.
pub async fn owned_then<T, P, F, Fut>(
    aws: &Aws, address: Option<&str>, items: impl IntoIterator<Item = T>, tags_of: impl Fn(&T) -> Tags, build: F,
) -> Result<Vec<Current<P>>>
where
    F: Fn(T, Owned) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Current<P>>>>,
{
    let reads = items.into_iter().filter_map(|item| {
        let owned = owner(aws, address, tags_of(&item))?;
        Some(build(item, owned))
    });
    Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
}

/// Every resource `read` finds in each of `items` (none or one per role,
/// the stages of an API, the permissions of a function...), the reads
/// running concurrently, in the order of `items`.
pub async fn each<T, R, F, Fut>(items: impl IntoIterator<Item = T>, read: F) -> Result<Vec<R::Item>>
where
    R: IntoIterator,
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<R>>,
{
    Ok(futures::future::try_join_all(items.into_iter().map(read)).await?.into_iter().flatten().collect())
}

/// The owner of a resource with tags `all`, when it is this stack's (and at
/// `address`, when given).
pub fn owner(aws: &Aws, address: Option<&str>, all: Tags) -> Option<Owned> {
    let at = tags::owner(aws, &all)?.to_string();
    if address.is_some_and(|a| a != at) {
        return None;
    }
    Some(Owned { address: at, tags: tags::visible(all) })
}
