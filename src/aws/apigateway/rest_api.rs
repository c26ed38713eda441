//! The REST API with its routes: nested resources, methods (with who may
//! call each: anyone, AWS-signed callers, or a Cognito user pool's users
//! through the API's authorizer) and Lambda proxy integrations, untaggable
//! parts of the API, so they are its properties.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{AuthorizerType, EndpointConfiguration, EndpointType, IntegrationType, Op, RestApi};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{THROTTLED, Tagging, api_arn, api_tags, apis, forget_apis, list_apis, patch, throttled};
use crate::aws::collection::{delta, set_delta};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned_then, owner, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::retry::retry_when;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, delete_guarded};
use crate::engine::cost::Cost;
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub path: String,
    pub method: String,
    pub function_arn: Ref,
    /// Who may call it: `NONE`, `AWS_IAM` or `COGNITO_USER_POOLS`.
    #[serde(default = "open")]
    pub authorization: String,
    /// The API's authorizer (by name) of a `COGNITO_USER_POOLS` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    /// Callers must send an API key of a usage plan of the stage (`x-api-key`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_key_required: bool,
}

fn open() -> String {
    "NONE".into()
}

/// A Cognito user pool authorizer of the API: the token in
/// `identity_source` must be one of these pools'.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authorizer {
    pub name: String,
    /// ARNs of the user pools whose tokens it accepts.
    pub provider_arns: Vec<Ref>,
    /// Where the token is, e.g. `method.request.header.Authorization`.
    pub identity_source: String,
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
    pub authorizers: Vec<Authorizer>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for RestApiProps {
    const KIND: &'static str = "apigateway.rest_api";
}

pub struct RestApiKind;

/// A live method: what it integrates with, and who may call it.
#[derive(Clone, Debug, Default)]
struct LiveMethod {
    uri: String,
    authorization: String,
    authorizer_id: Option<String>,
    api_key_required: bool,
}

/// The live resource tree: path -> (resource id, method -> what it is).
type Tree = BTreeMap<String, (String, BTreeMap<String, LiveMethod>)>;

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
            let mut live = LiveMethod {
                uri: String::new(),
                authorization: method.authorization_type().unwrap_or("NONE").to_string(),
                authorizer_id: method.authorizer_id().filter(|a| !a.is_empty()).map(str::to_string),
                api_key_required: method.api_key_required().unwrap_or(false),
            };
            match method.method_integration() {
                Some(i) => live.uri = integration(i.r#type(), i.uri()),
                None => missing.push((path.clone(), id.clone(), verb.clone())),
            }
            methods.insert(verb.clone(), live);
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
        if let Some(m) = tree.get_mut(&path).and_then(|(_, m)| m.get_mut(&verb)) {
            m.uri = uri;
        }
    }
    Ok(tree)
}

/// The API's authorizers, with their ids.
async fn read_authorizers(aws: &Aws, api: &str) -> Result<Vec<(String, Authorizer)>> {
    let out = aws.apigateway.get_authorizers().rest_api_id(api).limit(500).send().await.aws()?;
    let mut found: Vec<(String, Authorizer)> = out
        .items()
        .iter()
        .map(|a| {
            let mut arns: Vec<Ref> = a.provider_arns().iter().map(|p| Ref::Value(p.clone())).collect();
            arns.sort();
            (
                a.id().unwrap_or_default().to_string(),
                Authorizer {
                    name: a.name().unwrap_or_default().to_string(),
                    provider_arns: arns,
                    identity_source: a.identity_source().unwrap_or_default().to_string(),
                },
            )
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
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

/// The routes of a live tree; `authorizers` names the authorizer ids.
fn routes_of(tree: &Tree, authorizers: &[(String, Authorizer)]) -> Vec<Route> {
    let name = |id: &Option<String>| {
        id.as_ref().map(|id| authorizers.iter().find(|(a, _)| a == id).map_or(id.clone(), |(_, a)| a.name.clone()))
    };
    let mut out: Vec<Route> = tree
        .iter()
        .flat_map(|(path, (_, methods))| {
            methods.iter().map(move |(m, live)| Route {
                path: path.clone(),
                method: m.clone(),
                function_arn: function_of(&live.uri).into(),
                authorization: live.authorization.clone(),
                // An authorizer counts only where the method uses one.
                authorizer: if live.authorization == "COGNITO_USER_POOLS" { name(&live.authorizer_id) } else { None },
                api_key_required: live.api_key_required,
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
/// integrates with, who may call it).
#[derive(PartialEq)]
struct Method {
    path: String,
    verb: String,
    uri: String,
    authorization: String,
    authorizer_id: Option<String>,
    api_key_required: bool,
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

/// Brings the API's authorizers to `want` (before the methods that use
/// them); returns every authorizer's id by name and the ids of those no
/// longer wanted (deleted once no method uses them).
async fn converge_authorizers(
    aws: &Aws, api: &str, want: &[Authorizer],
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let have = read_authorizers(aws, api).await?;
    let mut ids: BTreeMap<String, String> = have.iter().map(|(id, a)| (a.name.clone(), id.clone())).collect();
    let mut stale = Vec::new();
    for (id, a) in &have {
        if !want.iter().any(|w| w.name == a.name) {
            stale.push(id.clone());
        }
    }
    for w in want {
        let arns = Ref::all(&w.provider_arns)?;
        match have.iter().find(|(_, a)| a.name == w.name) {
            None => {
                let out = aws
                    .apigateway
                    .create_authorizer()
                    .rest_api_id(api)
                    .name(&w.name)
                    .r#type(AuthorizerType::CognitoUserPools)
                    .set_provider_arns(Some(arns))
                    .identity_source(&w.identity_source)
                    .send()
                    .await
                    .aws()
                    .with_context(|| format!("creating authorizer {}", w.name))?;
                ids.insert(w.name.clone(), out.id().unwrap_or_default().to_string());
            }
            Some((id, a)) if a != w => {
                let old = Ref::all(&a.provider_arns)?;
                let mut ops: Vec<_> = arns
                    .iter()
                    .filter(|n| !old.contains(n))
                    .map(|n| patch(Op::Add, &format!("/providerARNs/{n}"), None))
                    .collect();
                ops.extend(
                    old.iter()
                        .filter(|o| !arns.contains(o))
                        .map(|o| patch(Op::Remove, &format!("/providerARNs/{o}"), None)),
                );
                if a.identity_source != w.identity_source {
                    ops.push(patch(Op::Replace, "/identitySource", Some(w.identity_source.clone())));
                }
                aws.apigateway
                    .update_authorizer()
                    .rest_api_id(api)
                    .authorizer_id(id)
                    .set_patch_operations(Some(ops))
                    .send()
                    .await
                    .aws()
                    .with_context(|| format!("updating authorizer {}", w.name))?;
            }
            Some(_) => {}
        }
    }
    Ok((ids, stale))
}

/// Brings the API's resources, methods (with their authorization) and
/// integrations to `routes`, and its authorizers to `authorizers`.
async fn converge(aws: &Aws, api: &str, routes: &[Route], authorizers: &[Authorizer]) -> Result<()> {
    let (_, partition) = aws.identity().await?;
    let (authorizer_ids, stale_authorizers) = converge_authorizers(aws, api, authorizers).await?;
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
            let authorizer_id = match &r.authorizer {
                Some(name) => Some(authorizer_ids.get(name).cloned().ok_or_else(|| {
                    anyhow!("internal error: route {} {} names no authorizer {name}", r.method, r.path)
                })?),
                None => None,
            };
            Ok(Method {
                path: r.path.clone(),
                verb: r.method.clone(),
                uri: invocation_uri(partition, &aws.region, r.function_arn.get()?),
                authorization: r.authorization.clone(),
                authorizer_id,
                api_key_required: r.api_key_required,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let have: Vec<Method> = tree
        .iter()
        .flat_map(|(path, (_, methods))| {
            methods.iter().map(move |(verb, live)| Method {
                path: path.clone(),
                verb: verb.clone(),
                uri: live.uri.clone(),
                authorization: live.authorization.clone(),
                authorizer_id: if live.authorization == "COGNITO_USER_POOLS" {
                    live.authorizer_id.clone()
                } else {
                    None
                },
                api_key_required: live.api_key_required,
            })
        })
        .collect();
    let methods = delta(&want, &have, |m| (m.path.clone(), m.verb.clone()));
    for m in methods.added {
        aws.apigateway
            .put_method()
            .rest_api_id(api)
            .resource_id(resource_id(&tree, &m.path)?)
            .http_method(&m.verb)
            .authorization_type(&m.authorization)
            .set_authorizer_id(m.authorizer_id.clone())
            .api_key_required(m.api_key_required)
            .send()
            .await
            .aws()
            .with_context(|| format!("adding {} {}", m.verb, m.path))?;
        integrate(aws, api, &tree, m).await?;
    }
    for (old, m) in methods.changed {
        if old.uri != m.uri {
            integrate(aws, api, &tree, m).await?;
        }
        let auth_changed = (&old.authorization, &old.authorizer_id) != (&m.authorization, &m.authorizer_id);
        if auth_changed || old.api_key_required != m.api_key_required {
            let mut ops = Vec::new();
            if auth_changed {
                ops.push(patch(Op::Replace, "/authorizationType", Some(m.authorization.clone())));
                if let Some(a) = &m.authorizer_id {
                    ops.push(patch(Op::Replace, "/authorizerId", Some(a.clone())));
                }
            }
            if old.api_key_required != m.api_key_required {
                ops.push(patch(Op::Replace, "/apiKeyRequired", Some(m.api_key_required.to_string())));
            }
            aws.apigateway
                .update_method()
                .rest_api_id(api)
                .resource_id(resource_id(&tree, &m.path)?)
                .http_method(&m.verb)
                .set_patch_operations(Some(ops))
                .send()
                .await
                .aws()
                .with_context(|| format!("changing who may call {} {}", m.verb, m.path))?;
        }
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
    for id in stale_authorizers {
        aws.apigateway.delete_authorizer().rest_api_id(api).authorizer_id(&id).send().await.aws().or_absent()?;
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
            let (tree, authorizers) = tokio::try_join!(read_tree(aws, id), read_authorizers(aws, id))?;
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
                routes: routes_of(&tree, &authorizers),
                authorizers: authorizers.into_iter().map(|(_, a)| a).collect(),
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
        if let Some(Value::Array(a)) = props.get_mut("authorizers") {
            for x in a.iter_mut() {
                sort_set(x, "provider_arns");
            }
        }
        sort_set(props, "authorizers");
    }

    /// A REST API is billed by the request.
    fn cost(&self, _props: &RestApiProps, prices: &Prices) -> Option<Cost> {
        Some(prices.usage(&[(&["apigateway", "rest", "per_million_requests"], "per 1M requests")]))
    }

    /// A route that writes, callable by anyone (no authorization, no API
    /// key), that was not before. Reads open to anyone are the file's
    /// `auth: none` and are not flagged on their own.
    fn widens(&self, before: Option<&RestApiProps>, after: &RestApiProps) -> Vec<String> {
        let open = |r: &Route| r.authorization == "NONE" && !r.api_key_required;
        let was_open = |r: &Route| {
            before.is_some_and(|b| b.routes.iter().any(|w| w.path == r.path && w.method == r.method && open(w)))
        };
        let opened = after.routes.iter().filter(|r| open(r) && !was_open(r));
        let writes = opened.filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD" | "OPTIONS"));
        let was_guarded = |r: &Route| {
            before.is_some_and(|b| b.routes.iter().any(|w| w.path == r.path && w.method == r.method && !open(w)))
        };
        let mut out: Vec<String> = writes.map(|r| format!("{} {} may be called by anyone", r.method, r.path)).collect();
        for r in after
            .routes
            .iter()
            .filter(|r| open(r) && was_guarded(r) && matches!(r.method.as_str(), "GET" | "HEAD" | "OPTIONS"))
        {
            out.push(format!("{} {} no longer needs authorization", r.method, r.path));
        }
        out
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
        converge(aws, &id, &p.routes, &p.authorizers).await?;
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
        if changed.iter().any(|c| c == "routes" || c == "authorizers") {
            converge(aws, &l.id, &p.routes, &p.authorizers).await?;
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
        let r = |p: &str| Route {
            path: p.into(),
            method: "GET".into(),
            function_arn: "f".into(),
            authorization: "NONE".into(),
            authorizer: None,
            api_key_required: false,
        };
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
