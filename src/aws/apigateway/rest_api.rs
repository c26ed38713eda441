//! The REST API with its routes: nested resources, methods and Lambda proxy
//! integrations (untaggable parts of the API, so they are its properties).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType, Op, RestApi};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{THROTTLED, Tagging, api_arn, api_tags, apis, forget_apis, list_apis, patch, throttled};
use crate::aws::collection::{delta, set_delta};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned_then, owner, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::retry::retry_when;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, delete_guarded};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub path: String,
    pub method: String,
    pub function_arn: Ref,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestApiProps {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub endpoint_type: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for RestApiProps {
    const KIND: &'static str = "apigateway.rest_api";
}

pub struct RestApiKind;

/// The live resource tree: path -> (resource id, method -> integration URI).
type Tree = BTreeMap<String, (String, BTreeMap<String, String>)>;

/// What a method integrates with: a Lambda proxy's URI, or what else it is.
fn integration(kind: Option<&IntegrationType>, uri: Option<&str>) -> String {
    if kind == Some(&IntegrationType::AwsProxy) {
        uri.unwrap_or_default().to_string()
    } else {
        format!("{} integration", kind.map(|t| t.as_str()).unwrap_or("unknown"))
    }
}

async fn read_tree(aws: &Aws, api: &str) -> Result<Tree> {
    let resources = paginated!(aws.apigateway.get_resources().rest_api_id(api).embed("methods").limit(500))?;
    let mut tree = Tree::new();
    // Methods whose integration the embedded listing left out: one
    // GetIntegration each (there is no batch call for them).
    let mut missing = Vec::new();
    for r in &resources {
        let path = r.path().unwrap_or("/").to_string();
        let id = r.id().unwrap_or_default().to_string();
        let mut methods = BTreeMap::new();
        for (verb, method) in r.resource_methods().into_iter().flatten() {
            match method.method_integration() {
                Some(i) => {
                    methods.insert(verb.clone(), integration(i.r#type(), i.uri()));
                }
                None => missing.push((path.clone(), id.clone(), verb.clone())),
            }
        }
        tree.insert(path, (id, methods));
    }
    let fetched = futures::future::try_join_all(missing.into_iter().map(|(path, id, verb)| async move {
        let i = aws
            .apigateway
            .get_integration()
            .rest_api_id(api)
            .resource_id(&id)
            .http_method(&verb)
            .send()
            .await
            .aws()
            .or_absent()?;
        let uri = match i {
            Some(i) => integration(i.r#type(), i.uri()),
            None => "no integration".to_string(),
        };
        Ok::<_, anyhow::Error>((path, verb, uri))
    }))
    .await?;
    for (path, verb, uri) in fetched {
        if let Some((_, m)) = tree.get_mut(&path) {
            m.insert(verb, uri);
        }
    }
    Ok(tree)
}

/// The Lambda proxy integration URI of a function.
fn invocation_uri(partition: &str, region: &str, function_arn: &str) -> String {
    format!("arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations")
}

fn function_of(uri: &str) -> String {
    uri.split_once(":lambda:path/2015-03-31/functions/")
        .and_then(|(_, rest)| rest.strip_suffix("/invocations"))
        .unwrap_or(uri)
        .to_string()
}

fn routes_of(tree: &Tree) -> Vec<Route> {
    let mut out: Vec<Route> = tree
        .iter()
        .flat_map(|(path, (_, methods))| {
            methods.iter().map(move |(m, uri)| Route {
                path: path.clone(),
                method: m.clone(),
                function_arn: function_of(uri).into(),
            })
        })
        .collect();
    out.sort();
    out
}

/// Every path a set of routes needs, parents first.
fn needed_paths(routes: &[Route]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for r in routes {
        let mut p = String::new();
        for seg in r.path.split('/').filter(|s| !s.is_empty()) {
            p = format!("{p}/{seg}");
            set.insert(p.clone());
        }
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_by_key(|p| (p.matches('/').count(), p.clone()));
    v
}

/// One method of the API, wanted or live: (path, HTTP method, what it
/// integrates with).
#[derive(PartialEq)]
struct Method {
    path: String,
    verb: String,
    uri: String,
}

fn resource_id<'a>(tree: &'a Tree, path: &str) -> Result<&'a str> {
    tree.get(path).map(|(id, _)| id.as_str()).ok_or_else(|| anyhow!("internal error: no resource for {path}"))
}

/// Points the method `m` at its Lambda function (a proxy integration).
async fn integrate(aws: &Aws, api: &str, tree: &Tree, m: &Method) -> Result<()> {
    aws.apigateway
        .put_integration()
        .rest_api_id(api)
        .resource_id(resource_id(tree, &m.path)?)
        .http_method(&m.verb)
        .r#type(IntegrationType::AwsProxy)
        // Lambda is always invoked with POST, whatever the route's method.
        .integration_http_method("POST")
        .uri(&m.uri)
        .send()
        .await
        .aws()
        .with_context(|| format!("integrating {} {}", m.verb, m.path))?;
    Ok(())
}

/// Brings the API's resources, methods and integrations to `routes`.
async fn converge(aws: &Aws, api: &str, routes: &[Route]) -> Result<()> {
    let (_, partition) = aws.identity().await?;
    let mut tree = read_tree(aws, api).await?;
    let root = tree.get("/").map(|(id, _)| id.clone()).ok_or_else(|| anyhow!("API {api} has no root resource"))?;

    // Resources: the paths the routes need, parents first.
    let needed = needed_paths(routes);
    let existing: Vec<String> = tree.keys().filter(|p| p.as_str() != "/").cloned().collect();
    let paths = set_delta(&needed, &existing);
    for path in paths.added {
        let (parent, part) = path.rsplit_once('/').unwrap_or(("", path));
        let parent_id = if parent.is_empty() { root.clone() } else { resource_id(&tree, parent)?.to_string() };
        let out = retry_when(throttled, &format!("creating {path}"), THROTTLED, &StepContext::quiet(), || async {
            aws.apigateway.create_resource().rest_api_id(api).parent_id(&parent_id).path_part(part).send().await.aws()
        })
        .await?;
        tree.insert(path.clone(), (out.id().unwrap_or_default().to_string(), BTreeMap::new()));
    }

    // Methods, keyed by path and HTTP method.
    let want = routes
        .iter()
        .map(|r| {
            Ok(Method {
                path: r.path.clone(),
                verb: r.method.clone(),
                uri: invocation_uri(partition, &aws.region, r.function_arn.get()?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let have: Vec<Method> = tree
        .iter()
        .flat_map(|(path, (_, methods))| {
            methods.iter().map(move |(verb, uri)| Method { path: path.clone(), verb: verb.clone(), uri: uri.clone() })
        })
        .collect();
    let methods = delta(&want, &have, |m| (m.path.clone(), m.verb.clone()));
    for m in methods.added {
        aws.apigateway
            .put_method()
            .rest_api_id(api)
            .resource_id(resource_id(&tree, &m.path)?)
            .http_method(&m.verb)
            .authorization_type("NONE")
            .send()
            .await
            .aws()
            .with_context(|| format!("adding {} {}", m.verb, m.path))?;
        integrate(aws, api, &tree, m).await?;
    }
    for (_, m) in methods.changed {
        integrate(aws, api, &tree, m).await?;
    }
    for m in methods.removed {
        aws.apigateway
            .delete_method()
            .rest_api_id(api)
            .resource_id(resource_id(&tree, &m.path)?)
            .http_method(&m.verb)
            .send()
            .await
            .aws()
            .or_absent()?;
    }

    // Resources no route needs, deepest first (deleting a parent deletes
    // its children: NotFound is fine).
    let mut stale = paths.removed;
    stale.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for path in stale {
        aws.apigateway
            .delete_resource()
            .rest_api_id(api)
            .resource_id(resource_id(&tree, path)?)
            .send()
            .await
            .aws()
            .or_absent()?;
    }
    Ok(())
}

/// An API as a resource of this kind, with what others reference of it.
async fn current(
    aws: &Aws, address: String, id: &str, root: &str, props: RestApiProps,
) -> Result<Current<RestApiProps>> {
    Ok(Current::new(address, id, props)
        .with("root_resource_id", root)
        .with("execution_arn", aws.arn("execute-api", id).await?))
}

impl RestApiKind {
    /// The APIs among `listed` at `address` (any, when not given), each
    /// with its routes (one resource listing per API).
    async fn build(aws: &Aws, address: Option<&str>, listed: Vec<RestApi>) -> Result<Vec<Current<RestApiProps>>> {
        owned_then(aws, address, listed, api_tags, |a, owner| async move {
            let id = a.id().unwrap_or_default();
            let tree = read_tree(aws, id).await?;
            let root = a
                .root_resource_id()
                .map(str::to_string)
                .or_else(|| tree.get("/").map(|(id, _)| id.clone()))
                .unwrap_or_default();
            let props = RestApiProps {
                name: a.name().unwrap_or_default().into(),
                description: a.description().unwrap_or_default().into(),
                endpoint_type: a
                    .endpoint_configuration()
                    .and_then(|e| e.types().first())
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                routes: routes_of(&tree),
                tags: owner.tags,
            };
            Ok(Some(current(aws, owner.address, id, &root, props).await?))
        })
        .await
    }
}

#[async_trait]
impl Kind for RestApiKind {
    type Props = RestApiProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["endpoint_type"], weight: 3, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "routes");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<RestApiProps>>> {
        Self::build(aws, address, list_apis(aws).await?).await
    }

    /// From the listing shared with the deployment and stage kinds.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<RestApiProps>>> {
        Self::build(aws, None, apis(aws).await?.to_vec()).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<RestApiProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<RestApiProps>> {
        forget_apis(aws);
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        let ids = |a: &RestApi| {
            (a.id().unwrap_or_default().to_string(), a.root_resource_id().unwrap_or_default().to_string())
        };
        let (id, root) = create_once(
            &d.address,
            || async {
                let out = aws
                    .apigateway_once
                    .create_rest_api()
                    .name(&p.name)
                    .description(&p.description)
                    .endpoint_configuration(
                        EndpointConfiguration::builder().types(EndpointType::from(p.endpoint_type.as_str())).build(),
                    )
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()?;
                Ok((out.id().unwrap_or_default().to_string(), out.root_resource_id().unwrap_or_default().to_string()))
            },
            // Without the routes: only which API a lost answer made.
            || async {
                Ok(list_apis(aws).await?.iter().find(|a| owner(aws, Some(&d.address), api_tags(a)).is_some()).map(ids))
            },
        )
        .await?;
        converge(aws, &id, &p.routes).await?;
        let root = if root.is_empty() {
            read_tree(aws, &id).await?.get("/").map(|(r, _)| r.clone()).unwrap_or_default()
        } else {
            root
        };
        current(aws, d.address.clone(), &id, &root, p.clone()).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<RestApiProps>, l: &Current<RestApiProps>, changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<RestApiProps>> {
        forget_apis(aws);
        let p = &d.props;
        let mut ops = Vec::new();
        if changed.iter().any(|c| c == "name") {
            ops.push(patch(Op::Replace, "/name", Some(p.name.clone())));
        }
        if changed.iter().any(|c| c == "description") {
            ops.push(patch(Op::Replace, "/description", Some(p.description.clone())));
        }
        if !ops.is_empty() {
            aws.apigateway
                .update_rest_api()
                .rest_api_id(&l.id)
                .set_patch_operations(Some(ops))
                .send()
                .await
                .aws()
                .context("renaming the API")?;
        }
        if changed.iter().any(|c| c == "routes") {
            converge(aws, &l.id, &p.routes).await?;
        }
        tags::sync(&Tagging, aws, &api_arn(aws, &l.id).await?, &l.props.tags, &p.tags).await?;
        let root = l.attr("root_resource_id").unwrap_or_default();
        current(aws, d.address.clone(), &l.id, root, p.clone()).await
    }

    async fn delete(&self, aws: &Aws, l: &Current<RestApiProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        forget_apis(aws);
        delete_guarded(
            "deleting the API",
            &["ConflictException"],
            THROTTLED,
            ctx,
            || async {
                Ok(aws.apigateway.get_rest_api().rest_api_id(&l.id).send().await.aws().or_absent()?.map(|_| ()))
            },
            |()| async { aws.apigateway_once.delete_rest_api().rest_api_id(&l.id).send().await.aws().map(|_| ()) },
        )
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_created_parents_first() {
        let r = |p: &str| Route { path: p.into(), method: "GET".into(), function_arn: "f".into() };
        assert_eq!(
            needed_paths(&[r("/users/{proxy+}"), r("/orders/{id}/items"), r("/orders")]),
            vec!["/orders", "/users", "/orders/{id}", "/users/{proxy+}", "/orders/{id}/items"]
        );
    }

    #[test]
    fn integration_uris_round_trip() {
        let f = "arn:aws:lambda:us-east-1:123456789012:function:webapp-orders";
        let uri = invocation_uri("aws", "us-east-1", f);
        assert_eq!(
            uri,
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:webapp-orders/invocations"
        );
        assert_eq!(function_of(&uri), f);
        assert_eq!(function_of("HTTP integration"), "HTTP integration");
    }
}
