//! API Gateway REST APIs: the API with its routes (nested resources, methods
//! and Lambda proxy integrations: untaggable parts of the API, so they are
//! its properties), deployments and stages.
//!
//! A deployment is a snapshot of the routes; its `routes_hash` property (kept
//! in the deployment's description, deployments having no tags) changes with
//! the routes, which replaces it: a new deployment is made, the stage is
//! repointed, then the old one is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_apigateway::types::{
    EndpointConfiguration, EndpointType, IntegrationType, Op, PatchOperation, RestApi,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::backend_util::{ignore_not_found, live, props, sort_array};
use super::errors::AwsResultExt;
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::retry::retry_when;
use super::tags::{self, Tags};
use super::{Aws, create_once, delete_guarded};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(RestApiKind), Box::new(Deployment), Box::new(Stage)]
}

/// Control-plane calls are throttled hard (DeleteRestApi: one per 30 s per
/// account); throttled calls are retried this long.
const THROTTLED: Duration = Duration::from_secs(5 * 60);

fn throttled(e: &super::errors::AwsError) -> bool {
    e.throttled()
}

fn patch(op: Op, path: &str, value: Option<String>) -> PatchOperation {
    PatchOperation::builder()
        .op(op)
        .path(path)
        .set_value(value)
        .build()
}

async fn api_arn(aws: &Aws, id: &str) -> Result<String> {
    let (_, partition) = aws.identity().await?;
    Ok(format!(
        "arn:{partition}:apigateway:{}::/restapis/{id}",
        aws.region
    ))
}

async fn execution_arn(aws: &Aws, id: &str) -> Result<String> {
    super::backend_util::arn(aws, "execute-api", &aws.region, id).await
}

/// Cache key of the stack's APIs ([`Aws::cached`]).
const APIS: &str = "apigateway.apis";

/// The APIs of this stack: one paginated GetRestApis (it returns tags).
async fn our_apis(aws: &Aws) -> Result<Vec<(String, RestApi, Tags)>> {
    let apis: Vec<RestApi> = aws
        .apigateway
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws()?;
    Ok(apis
        .into_iter()
        .filter_map(|a| {
            let all: Tags = a
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let addr = tags::owner(aws, &all)?.to_string();
            Some((addr, a, all))
        })
        .collect())
}

async fn retag(aws: &Aws, arn: &str, old: &Tags, new: &Tags) -> Result<()> {
    let (set, remove) = tags::delta(old, new);
    if !set.is_empty() {
        aws.apigateway
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .aws()
            .context("tagging")?;
    }
    if !remove.is_empty() {
        aws.apigateway
            .untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .aws()
            .context("untagging")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- REST API

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Route {
    path: String,
    method: String,
    function_arn: String,
}

#[derive(Serialize, Deserialize)]
struct ApiProps {
    name: String,
    #[serde(default)]
    description: String,
    endpoint_type: String,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(default)]
    tags: Tags,
}

/// The live resource tree: path -> (resource id, method -> integration URI).
type Tree = BTreeMap<String, (String, BTreeMap<String, String>)>;

async fn read_tree(aws: &Aws, api: &str) -> Result<Tree> {
    let resources: Vec<_> = aws
        .apigateway
        .get_resources()
        .rest_api_id(api)
        .embed("methods")
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws()?;
    let describe = |i: &aws_sdk_apigateway::types::Integration| {
        if i.r#type() == Some(&IntegrationType::AwsProxy) {
            i.uri().unwrap_or_default().to_string()
        } else {
            format!(
                "{} integration",
                i.r#type().map(|t| t.as_str()).unwrap_or("unknown")
            )
        }
    };
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
                    methods.insert(verb.clone(), describe(i));
                }
                None => missing.push((path.clone(), id.clone(), verb.clone())),
            }
        }
        tree.insert(path, (id, methods));
    }
    let fetched =
        futures::future::try_join_all(missing.into_iter().map(|(path, id, verb)| async move {
            let i = ignore_not_found(
                aws.apigateway
                    .get_integration()
                    .rest_api_id(api)
                    .resource_id(&id)
                    .http_method(&verb)
                    .send()
                    .await
                    .aws(),
            )?;
            let uri = match i {
                Some(i) if i.r#type() == Some(&IntegrationType::AwsProxy) => {
                    i.uri().unwrap_or_default().to_string()
                }
                Some(i) => format!(
                    "{} integration",
                    i.r#type().map(|t| t.as_str()).unwrap_or("unknown")
                ),
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
    format!(
        "arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
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
                function_arn: function_of(uri),
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

struct RestApiKind;

impl RestApiKind {
    async fn attrs(&self, aws: &Aws, id: &str, root: &str) -> Result<Value> {
        Ok(json!({
            "id": id,
            "root_resource_id": root,
            "execution_arn": execution_arn(aws, id).await?,
        }))
    }

    /// Brings the API's resources, methods and integrations to `routes`.
    async fn converge(&self, aws: &Aws, api: &str, routes: &[Route]) -> Result<()> {
        let (_, partition) = aws.identity().await?;
        let mut tree = read_tree(aws, api).await?;
        let root = tree
            .get("/")
            .map(|(id, _)| id.clone())
            .ok_or_else(|| anyhow!("API {api} has no root resource"))?;
        let needed = needed_paths(routes);
        for path in &needed {
            if tree.contains_key(path) {
                continue;
            }
            let (parent, part) = path.rsplit_once('/').unwrap_or(("", path));
            let parent_id = if parent.is_empty() {
                root.clone()
            } else {
                tree.get(parent)
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| anyhow!("internal error: no parent for {path}"))?
            };
            let out = retry_when(
                throttled,
                &format!("creating {path}"),
                THROTTLED,
                &crate::engine::provider::Quiet,
                || async {
                    aws.apigateway
                        .create_resource()
                        .rest_api_id(api)
                        .parent_id(&parent_id)
                        .path_part(part)
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
            tree.insert(
                path.clone(),
                (out.id().unwrap_or_default().to_string(), BTreeMap::new()),
            );
        }
        for r in routes {
            let (rid, methods) = tree
                .get(&r.path)
                .cloned()
                .ok_or_else(|| anyhow!("internal error: no resource for {}", r.path))?;
            let uri = invocation_uri(partition, &aws.region, &r.function_arn);
            if methods.get(&r.method) == Some(&uri) {
                continue;
            }
            if !methods.contains_key(&r.method) {
                aws.apigateway
                    .put_method()
                    .rest_api_id(api)
                    .resource_id(&rid)
                    .http_method(&r.method)
                    .authorization_type("NONE")
                    .send()
                    .await
                    .aws()
                    .with_context(|| format!("adding {} {}", r.method, r.path))?;
            }
            aws.apigateway
                .put_integration()
                .rest_api_id(api)
                .resource_id(&rid)
                .http_method(&r.method)
                .r#type(IntegrationType::AwsProxy)
                // Lambda is always invoked with POST, whatever the route's method.
                .integration_http_method("POST")
                .uri(&uri)
                .send()
                .await
                .aws()
                .with_context(|| format!("integrating {} {}", r.method, r.path))?;
        }
        let wanted: BTreeSet<(&str, &str)> = routes
            .iter()
            .map(|r| (r.path.as_str(), r.method.as_str()))
            .collect();
        for (path, (rid, methods)) in &tree {
            for m in methods.keys() {
                if !wanted.contains(&(path.as_str(), m.as_str())) {
                    ignore_not_found(
                        aws.apigateway
                            .delete_method()
                            .rest_api_id(api)
                            .resource_id(rid)
                            .http_method(m)
                            .send()
                            .await
                            .aws(),
                    )?;
                }
            }
        }
        // Resources no route needs, deepest first (deleting a parent deletes
        // its children: NotFound is fine).
        let mut stale: Vec<(&String, &String)> = tree
            .iter()
            .filter(|(p, _)| p.as_str() != "/" && !needed.contains(p))
            .map(|(p, (id, _))| (p, id))
            .collect();
        stale.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
        for (_, id) in stale {
            ignore_not_found(
                aws.apigateway
                    .delete_resource()
                    .rest_api_id(api)
                    .resource_id(id)
                    .send()
                    .await
                    .aws(),
            )?;
        }
        Ok(())
    }
}

#[async_trait]
impl Kind for RestApiKind {
    fn name(&self) -> &'static str {
        "apigateway.rest_api"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["endpoint_type"],
            weight: 3,
            service: "apigateway",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "routes");
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let reads = aws
            .cached(APIS, || our_apis(aws))
            .await?
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(addr, a, all)| async move {
                let id = a.id().unwrap_or_default().to_string();
                let tree = read_tree(aws, &id).await?;
                let root = a
                    .root_resource_id()
                    .map(str::to_string)
                    .or_else(|| tree.get("/").map(|(id, _)| id.clone()))
                    .unwrap_or_default();
                let mut p = json!(ApiProps {
                    name: a.name().unwrap_or_default().into(),
                    description: a.description().unwrap_or_default().into(),
                    endpoint_type: a
                        .endpoint_configuration()
                        .and_then(|e| e.types().first())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    routes: routes_of(&tree),
                    tags: tags::visible(all),
                });
                self.normalize(&mut p);
                Ok::<_, anyhow::Error>(live(
                    self.name(),
                    &addr,
                    &id,
                    p,
                    self.attrs(aws, &id, &root).await?,
                ))
            });
        futures::future::try_join_all(reads).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        aws.forget(APIS);
        let p: ApiProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let (id, root) = create_once(
            &d.address,
            || async {
                let out = aws
                    .apigateway_once
                    .create_rest_api()
                    .name(&p.name)
                    .description(&p.description)
                    .endpoint_configuration(
                        EndpointConfiguration::builder()
                            .types(EndpointType::from(p.endpoint_type.as_str()))
                            .build(),
                    )
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()?;
                Ok((
                    out.id().unwrap_or_default().to_string(),
                    out.root_resource_id().unwrap_or_default().to_string(),
                ))
            },
            || async {
                Ok(our_apis(aws)
                    .await?
                    .into_iter()
                    .find(|(a, _, _)| a == &d.address)
                    .map(|(_, api, _)| {
                        (
                            api.id().unwrap_or_default().to_string(),
                            api.root_resource_id().unwrap_or_default().to_string(),
                        )
                    }))
            },
        )
        .await?;
        self.converge(aws, &id, &p.routes).await?;
        let root = if root.is_empty() {
            read_tree(aws, &id)
                .await?
                .get("/")
                .map(|(r, _)| r.clone())
                .unwrap_or_default()
        } else {
            root
        };
        let mut out = json!(p);
        self.normalize(&mut out);
        Ok(live(
            self.name(),
            &d.address,
            &id,
            out,
            self.attrs(aws, &id, &root).await?,
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        aws.forget(APIS);
        let p: ApiProps = props(d)?;
        let old: ApiProps = serde_json::from_value(l.props.clone())?;
        let mut ops = Vec::new();
        if changed.iter().any(|c| c == "name") {
            ops.push(patch(Op::Replace, "/name", Some(p.name.clone())));
        }
        if changed.iter().any(|c| c == "description") {
            ops.push(patch(
                Op::Replace,
                "/description",
                Some(p.description.clone()),
            ));
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
            self.converge(aws, &l.id, &p.routes).await?;
        }
        retag(aws, &api_arn(aws, &l.id).await?, &old.tags, &p.tags).await?;
        let root = l
            .attrs
            .get("root_resource_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut out = json!(p);
        self.normalize(&mut out);
        Ok(live(
            self.name(),
            &d.address,
            &l.id,
            out,
            self.attrs(aws, &l.id, &root).await?,
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        aws.forget(APIS);
        delete_guarded(
            "deleting the API",
            &["ConflictException"],
            THROTTLED,
            rep,
            || async {
                Ok(ignore_not_found(
                    aws.apigateway
                        .get_rest_api()
                        .rest_api_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )?
                .map(|_| ()))
            },
            |()| async {
                aws.apigateway_once
                    .delete_rest_api()
                    .rest_api_id(&l.id)
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

// ---------------------------------------------------------------- Deployment

#[derive(Serialize, Deserialize)]
struct DeploymentProps {
    rest_api_id: String,
    routes_hash: String,
}

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

struct Deployment;

impl Deployment {
    async fn find(&self, aws: &Aws, api: &str) -> Result<Vec<(String, String, String)>> {
        let ds: Vec<_> = aws
            .apigateway
            .get_deployments()
            .rest_api_id(api)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        Ok(ds
            .into_iter()
            .filter_map(|d| {
                let (addr, hash) = parse_description(d.description()?)?;
                Some((addr, d.id()?.to_string(), hash))
            })
            .collect())
    }
}

#[async_trait]
impl Kind for Deployment {
    fn name(&self) -> &'static str {
        "apigateway.deployment"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["rest_api_id", "routes_hash"],
            // The stage moves to the new deployment before the old one goes.
            create_before_destroy: true,
            weight: 1,
            service: "apigateway",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let reads = aws
            .cached(APIS, || our_apis(aws))
            .await?
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(_, a, _)| async move {
                let api = a.id().unwrap_or_default().to_string();
                Ok::<_, anyhow::Error>(
                    self.find(aws, &api)
                        .await?
                        .into_iter()
                        .map(|(addr, id, hash)| {
                            live(
                                "apigateway.deployment",
                                &addr,
                                &id,
                                json!(DeploymentProps {
                                    rest_api_id: api.clone(),
                                    routes_hash: hash,
                                }),
                                json!({}),
                            )
                        })
                        .collect::<Vec<_>>(),
                )
            });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: DeploymentProps = props(d)?;
        let description = deployment_description(&d.address, &p.routes_hash);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .apigateway_once
                    .create_deployment()
                    .rest_api_id(&p.rest_api_id)
                    .description(&description)
                    .send()
                    .await
                    .aws()?;
                Ok(out.id().unwrap_or_default().to_string())
            },
            || async {
                Ok(self
                    .find(aws, &p.rest_api_id)
                    .await?
                    .into_iter()
                    .find(|(a, _, h)| a == &d.address && h == &p.routes_hash)
                    .map(|(_, id, _)| id))
            },
        )
        .await?;
        Ok(live(self.name(), &d.address, &id, json!(p), json!({})))
    }
    async fn update(
        &self,
        _aws: &Aws,
        d: &Resource,
        _l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        bail!("internal error: {} can only be replaced", d.address)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let p: DeploymentProps = serde_json::from_value(l.props.clone())?;
        // A stage being repointed in parallel still references it for a moment.
        retry_when(
            |e| {
                throttled(e)
                    || (e.is("BadRequestException") && e.message.contains("stages pointing"))
            },
            "deleting the deployment",
            THROTTLED,
            rep,
            || async {
                ignore_not_found(
                    aws.apigateway
                        .delete_deployment()
                        .rest_api_id(&p.rest_api_id)
                        .deployment_id(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await?;
        Ok(None)
    }
}

// ---------------------------------------------------------------- Stage

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct Throttling {
    rate_limit: f64,
    burst_limit: i32,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct AccessLog {
    destination_arn: String,
    format: String,
}

#[derive(Serialize, Deserialize)]
struct StageProps {
    rest_api_id: String,
    stage_name: String,
    deployment_id: String,
    #[serde(default)]
    throttling: Option<Throttling>,
    #[serde(default)]
    access_log: Option<AccessLog>,
    #[serde(default)]
    tags: Tags,
}

struct Stage;

impl Stage {
    async fn attrs(&self, aws: &Aws, api: &str, stage: &str) -> Result<Value> {
        let (_, partition) = aws.identity().await?;
        let suffix = if partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Ok(json!({
            "name": stage,
            "invoke_url": format!("https://{api}.execute-api.{}.{suffix}/{stage}", aws.region),
        }))
    }

    async fn stage_arn(aws: &Aws, api: &str, stage: &str) -> Result<String> {
        Ok(format!("{}/stages/{stage}", api_arn(aws, api).await?))
    }

    /// Patches throttling and access logging from `old` to `new`.
    async fn settings(&self, aws: &Aws, new: &StageProps, old: Option<&StageProps>) -> Result<()> {
        let mut ops = Vec::new();
        if let Some(o) = old
            && o.deployment_id != new.deployment_id
        {
            ops.push(patch(
                Op::Replace,
                "/deploymentId",
                Some(new.deployment_id.clone()),
            ));
        }
        let old_t = old.and_then(|o| o.throttling.clone());
        if new.throttling != old_t {
            match &new.throttling {
                Some(t) => {
                    ops.push(patch(
                        Op::Replace,
                        "/*/*/throttling/rateLimit",
                        Some(t.rate_limit.to_string()),
                    ));
                    ops.push(patch(
                        Op::Replace,
                        "/*/*/throttling/burstLimit",
                        Some(t.burst_limit.to_string()),
                    ));
                }
                None => ops.push(patch(Op::Remove, "/*/*", None)),
            }
        }
        let old_l = old.and_then(|o| o.access_log.clone());
        if new.access_log != old_l {
            match &new.access_log {
                Some(l) => {
                    ops.push(patch(
                        Op::Replace,
                        "/accessLogSettings/destinationArn",
                        Some(l.destination_arn.clone()),
                    ));
                    ops.push(patch(
                        Op::Replace,
                        "/accessLogSettings/format",
                        Some(l.format.clone()),
                    ));
                }
                None => ops.push(patch(Op::Remove, "/accessLogSettings", None)),
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        aws.apigateway
            .update_stage()
            .rest_api_id(&new.rest_api_id)
            .stage_name(&new.stage_name)
            .set_patch_operations(Some(ops))
            .send()
            .await
            .aws()
            .map_err(|e| {
                let hint = if e.message.contains("CloudWatch Logs role ARN") {
                    " (access logs need the account's API Gateway CloudWatch Logs role: see docs/backend.md)"
                } else {
                    ""
                };
                anyhow!(e).context(format!("configuring stage {}{hint}", new.stage_name))
            })?;
        Ok(())
    }
}

#[async_trait]
impl Kind for Stage {
    fn name(&self) -> &'static str {
        "apigateway.stage"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["rest_api_id", "stage_name"],
            weight: 1,
            service: "apigateway",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let reads = aws
            .cached(APIS, || our_apis(aws))
            .await?
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(_, a, _)| async move {
                let api = a.id().unwrap_or_default().to_string();
                let stages = aws
                    .apigateway
                    .get_stages()
                    .rest_api_id(&api)
                    .send()
                    .await
                    .aws()?;
                let mut out = Vec::new();
                for s in stages.item() {
                    let all: Tags = s
                        .tags()
                        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    let Some(addr) = tags::owner(aws, &all).map(str::to_string) else {
                        continue;
                    };
                    let name = s.stage_name().unwrap_or_default().to_string();
                    let throttling =
                        s.method_settings()
                            .and_then(|m| m.get("*/*"))
                            .map(|m| Throttling {
                                rate_limit: m.throttling_rate_limit(),
                                burst_limit: m.throttling_burst_limit(),
                            });
                    let access_log = s.access_log_settings().and_then(|l| {
                        Some(AccessLog {
                            destination_arn: l.destination_arn()?.to_string(),
                            format: l.format().unwrap_or_default().to_string(),
                        })
                    });
                    let p = StageProps {
                        rest_api_id: api.clone(),
                        stage_name: name.clone(),
                        deployment_id: s.deployment_id().unwrap_or_default().into(),
                        throttling,
                        access_log,
                        tags: tags::visible(all),
                    };
                    out.push(live(
                        self.name(),
                        &addr,
                        &format!("{api}/{name}"),
                        json!(p),
                        self.attrs(aws, &api, &name).await?,
                    ));
                }
                Ok::<_, anyhow::Error>(out)
            });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: StageProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        match aws
            .apigateway
            .create_stage()
            .rest_api_id(&p.rest_api_id)
            .stage_name(&p.stage_name)
            .deployment_id(&p.deployment_id)
            .set_tags(Some(t.into_iter().collect()))
            .send()
            .await
            .aws()
        {
            Ok(_) => {}
            // A retry after a lost response: the stage exists (in our API).
            Err(e) if e.is("ConflictException") => {
                aws.apigateway
                    .update_stage()
                    .rest_api_id(&p.rest_api_id)
                    .stage_name(&p.stage_name)
                    .patch_operations(patch(
                        Op::Replace,
                        "/deploymentId",
                        Some(p.deployment_id.clone()),
                    ))
                    .send()
                    .await
                    .aws()?;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating stage {}", p.stage_name))),
        }
        self.settings(aws, &p, None).await?;
        Ok(live(
            self.name(),
            &d.address,
            &format!("{}/{}", p.rest_api_id, p.stage_name),
            json!(p),
            self.attrs(aws, &p.rest_api_id, &p.stage_name).await?,
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: StageProps = props(d)?;
        let old: StageProps = serde_json::from_value(l.props.clone())?;
        self.settings(aws, &p, Some(&old)).await?;
        retag(
            aws,
            &Self::stage_arn(aws, &p.rest_api_id, &p.stage_name).await?,
            &old.tags,
            &p.tags,
        )
        .await?;
        Ok(live(
            self.name(),
            &d.address,
            &l.id,
            json!(p),
            self.attrs(aws, &p.rest_api_id, &p.stage_name).await?,
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let p: StageProps = serde_json::from_value(l.props.clone())?;
        retry_when(throttled, "deleting the stage", THROTTLED, rep, || async {
            ignore_not_found(
                aws.apigateway
                    .delete_stage()
                    .rest_api_id(&p.rest_api_id)
                    .stage_name(&p.stage_name)
                    .send()
                    .await
                    .aws(),
            )
        })
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
        };
        assert_eq!(
            needed_paths(&[r("/users/{proxy+}"), r("/orders/{id}/items"), r("/orders")]),
            vec![
                "/orders",
                "/users",
                "/orders/{id}",
                "/users/{proxy+}",
                "/orders/{id}/items"
            ]
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

    #[test]
    fn deployment_descriptions_round_trip() {
        let d = deployment_description("backend.deployment", "0a1b2c3d");
        assert_eq!(
            parse_description(&d),
            Some(("backend.deployment".into(), "0a1b2c3d".into()))
        );
        assert_eq!(parse_description("manual deploy"), None);
    }
}
