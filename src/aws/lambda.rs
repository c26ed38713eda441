//! Lambda: functions, their stream mappings (event source mappings) and the
//! invoke permissions granted to API Gateway.
//!
//! A function's code is identified by `code_sha256`, the package's SHA-256
//! (what Lambda reports as CodeSha256). The package is rebuilt from
//! `code_source` at apply and must still hash to the planned value.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, EventSourcePosition, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, Runtime, State, VpcConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::backend_util::{arn, ignore_not_found, live, props};
use super::errors::{AwsError, AwsResultExt};
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::retry::retry_when;
use super::tags::{self, Tags};
use super::{Aws, create_once, wait_for};
use crate::engine::concat;
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};
use crate::model::package::{self, CodeSource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![
        Box::new(Function),
        Box::new(EventSourceMapping),
        Box::new(Permission),
    ]
}

/// A just-created role is not usable by Lambda for some seconds (IAM
/// propagation); creates that depend on it are retried this long.
const IAM_PROPAGATION: Duration = Duration::from_secs(120);
/// Updates and state transitions of a function (VPC functions take minutes).
const SETTLE: Duration = Duration::from_secs(15 * 60);
/// Lambda releases the network interfaces of deleted VPC functions after up
/// to ~20 minutes (sometimes more) on AWS.
const ENI_RELEASE: Duration = Duration::from_secs(45 * 60);
/// Description prefix of the network interfaces Lambda creates in a VPC.
const LAMBDA_ENI: &str = "AWS Lambda VPC ENI";

/// The role is not (yet) usable by Lambda: IAM propagation of a new role or
/// of its new policies. Exactly these messages, nothing else.
fn role_not_ready(e: &AwsError) -> bool {
    e.is("InvalidParameterValueException")
        && (e.message.contains("cannot be assumed by Lambda")
            || e.message
                .contains("execution role does not have permissions to call"))
}

/// The role cannot read the stream yet (propagation of its new stream policy).
fn stream_not_readable(e: &AwsError) -> bool {
    e.is("InvalidParameterValueException")
        && (e.message.contains("Cannot access stream")
            || e.message.contains("ensure the role can perform"))
}

async fn function_arn(aws: &Aws, name: &str) -> Result<String> {
    arn(aws, "lambda", &aws.region, &format!("function:{name}")).await
}

/// Functions of this stack: one paginated ListFunctions (it has no tag
/// filter), narrowed by the stack's name prefix, then each candidate's tags
/// read concurrently (no batch API) to keep only ours.
/// Cache key of the stack's functions ([`Aws::cached`]).
const FUNCTIONS: &str = "lambda.functions";

async fn our_functions(aws: &Aws) -> Result<Vec<(String, FunctionConfiguration, Tags)>> {
    let prefix = format!("{}-", aws.stack);
    let all: Vec<FunctionConfiguration> = aws
        .lambda
        .list_functions()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws()?;
    let reads = all
        .into_iter()
        .filter(|f| f.function_name().is_some_and(|n| n.starts_with(&prefix)))
        .map(|f| async move {
            let name = f.function_name().unwrap_or_default().to_string();
            let arn = function_arn(aws, &name).await?;
            let t = ignore_not_found(aws.lambda.list_tags().resource(&arn).send().await.aws())?;
            let all: Tags = t
                .and_then(|t| t.tags().cloned())
                .unwrap_or_default()
                .into_iter()
                .collect();
            Ok::<_, anyhow::Error>(tags::owner(aws, &all).map(|a| (a.to_string(), f, all.clone())))
        });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

async fn retag(aws: &Aws, resource_arn: &str, old: &Tags, new: &Tags) -> Result<()> {
    let (set, remove) = tags::delta(old, new);
    if !set.is_empty() {
        aws.lambda
            .tag_resource()
            .resource(resource_arn)
            .set_tags(Some(set.into_iter().collect()))
            .send()
            .await
            .aws()
            .context("tagging")?;
    }
    if !remove.is_empty() {
        aws.lambda
            .untag_resource()
            .resource(resource_arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .aws()
            .context("untagging")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- Function

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct VpcProps {
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct FunctionProps {
    function_name: String,
    role: String,
    runtime: String,
    handler: String,
    memory_size: i32,
    timeout: i32,
    architecture: String,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    #[serde(default)]
    vpc_config: Option<VpcProps>,
    #[serde(default)]
    reserved_concurrency: Option<i32>,
    code_sha256: String,
    /// `{"dir": path}` or `{"zip": path}`: where to build the package from.
    /// Not a property of the live function, so `normalize` drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_source: Option<Value>,
    #[serde(default)]
    tags: Tags,
}

/// Fields UpdateFunctionConfiguration changes.
const CONFIG_FIELDS: &[&str] = &[
    "role",
    "runtime",
    "handler",
    "memory_size",
    "timeout",
    "environment",
    "vpc_config",
];

impl FunctionProps {
    fn env(&self) -> HashMap<String, String> {
        self.environment
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                concat::join(&mut v);
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }

    fn package(&self) -> Result<package::Package> {
        let src = match &self.code_source {
            Some(Value::Object(o)) => match (o.get("dir"), o.get("zip")) {
                (Some(Value::String(d)), _) => CodeSource::Dir(d.into()),
                (_, Some(Value::String(z))) => CodeSource::Zip(z.into()),
                _ => bail!("internal error: no code source for {}", self.function_name),
            },
            _ => bail!("internal error: no code source for {}", self.function_name),
        };
        let p = package::build(&src).map_err(|e| anyhow!(e))?;
        if p.sha256 != self.code_sha256 {
            bail!(
                "the code of {} changed since the plan ({} now hashes to {}, the plan has {}); run the command again",
                self.function_name,
                src.path().display(),
                p.sha256,
                self.code_sha256
            );
        }
        Ok(p)
    }

    fn vpc(&self) -> VpcConfig {
        let v = self.vpc_config.clone().unwrap_or(VpcProps {
            subnet_ids: vec![],
            security_group_ids: vec![],
        });
        VpcConfig::builder()
            .set_subnet_ids(Some(v.subnet_ids))
            .set_security_group_ids(Some(v.security_group_ids))
            .build()
    }
}

fn function_props(f: &FunctionConfiguration, reserved: Option<i32>, all: Tags) -> Value {
    let vpc = f
        .vpc_config()
        .filter(|v| !v.subnet_ids().is_empty())
        .map(|v| VpcProps {
            subnet_ids: v.subnet_ids().to_vec(),
            security_group_ids: v.security_group_ids().to_vec(),
        });
    let mut p = json!(FunctionProps {
        function_name: f.function_name().unwrap_or_default().into(),
        role: f.role().unwrap_or_default().into(),
        runtime: f
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: f.handler().unwrap_or_default().into(),
        memory_size: f.memory_size().unwrap_or(128),
        timeout: f.timeout().unwrap_or(3),
        architecture: f
            .architectures()
            .first()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        environment: f
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
            .unwrap_or_default(),
        vpc_config: vpc,
        reserved_concurrency: reserved,
        code_sha256: f.code_sha256().unwrap_or_default().into(),
        code_source: None,
        tags: tags::visible(all),
    });
    Function.normalize(&mut p);
    p
}

struct Function;

impl Function {
    async fn attrs(&self, aws: &Aws, name: &str) -> Result<Value> {
        Ok(json!({ "arn": function_arn(aws, name).await?, "name": name }))
    }

    /// Waits until no update is in progress and the function is usable.
    async fn settled(&self, aws: &Aws, name: &str, rep: &dyn StepReporter) -> Result<()> {
        wait_for(
            &format!("function {name} to be ready"),
            SETTLE,
            rep,
            || async {
                let c = aws
                    .lambda
                    .get_function_configuration()
                    .function_name(name)
                    .send()
                    .await
                    .aws()?;
                if c.state() == Some(&State::Failed) {
                    bail!(
                        "function {name} failed: {}",
                        c.state_reason().unwrap_or("no reason given")
                    );
                }
                if c.last_update_status() == Some(&LastUpdateStatus::Failed) {
                    bail!(
                        "the last update of function {name} failed: {}",
                        c.last_update_status_reason().unwrap_or("no reason given")
                    );
                }
                let pending = c.state() == Some(&State::Pending)
                    || c.last_update_status() == Some(&LastUpdateStatus::InProgress);
                Ok((!pending).then_some(()))
            },
        )
        .await
    }

    async fn set_concurrency(&self, aws: &Aws, name: &str, n: Option<i32>) -> Result<()> {
        match n {
            Some(n) => aws
                .lambda
                .put_function_concurrency()
                .function_name(name)
                .reserved_concurrent_executions(n)
                .send()
                .await
                .aws()
                .map(|_| ()),
            None => ignore_not_found(
                aws.lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .aws(),
            )
            .map(|_| ()),
        }
        .with_context(|| format!("setting the reserved concurrency of {name}"))
    }

    /// After a VPC function is deleted, Lambda keeps its network interfaces
    /// (shared by the functions with the same subnets and security groups)
    /// in use for many minutes; they block deleting the subnets and the
    /// security group. The last function of those groups to go waits for
    /// them to be released and deletes them.
    async fn release_enis(
        &self,
        aws: &Aws,
        name: &str,
        groups: &[String],
        rep: &dyn StepReporter,
    ) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let filter = aws_sdk_ec2::types::Filter::builder()
            .name("group-id")
            .set_values(Some(groups.to_vec()))
            .build();
        wait_for(
            &format!("the network interfaces of {name} to be released (Lambda takes up to ~20 minutes)"),
            ENI_RELEASE,
            rep,
            || async {
                let enis: Vec<_> = aws
                    .ec2
                    .describe_network_interfaces()
                    .filters(filter.clone())
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .aws()?
                    .into_iter()
                    .filter(|n| {
                        n.description().is_some_and(|d| d.starts_with(LAMBDA_ENI))
                            || n.interface_type().map(|t| t.as_str()) == Some("lambda")
                    })
                    .collect();
                if enis.is_empty() {
                    return Ok(Some(()));
                }
                // Another function still uses these groups: the interfaces are
                // its too; whichever of them is deleted last cleans up.
                let users = aws
                    .lambda
                    .list_functions()
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .aws()?
                    .into_iter()
                    .filter(|f| {
                        f.function_name() != Some(name)
                            && f.vpc_config().is_some_and(|v| {
                                v.security_group_ids().iter().any(|g| groups.contains(g))
                            })
                    })
                    .count();
                if users > 0 {
                    return Ok(Some(()));
                }
                let mut in_use = 0;
                for n in &enis {
                    let id = n.network_interface_id().unwrap_or_default();
                    if n.status().map(|s| s.as_str()) == Some("available") {
                        match aws
                            .ec2
                            .delete_network_interface()
                            .network_interface_id(id)
                            .send()
                            .await
                            .aws()
                        {
                            Ok(_) => {}
                            Err(e) if e.not_found() || e.is("InvalidNetworkInterface.InUse") => {
                                in_use += 1
                            }
                            Err(e) => return Err(anyhow!(e).context(format!("deleting {id}"))),
                        }
                    } else {
                        in_use += 1;
                    }
                }
                if in_use > 0 {
                    rep.status(&format!(
                        "{in_use} Lambda network interface(s) still in use; waiting for Lambda to release them"
                    ));
                    return Ok(None);
                }
                Ok(Some(()))
            },
        )
        .await
    }
}

#[async_trait]
impl Kind for Function {
    fn name(&self) -> &'static str {
        "lambda.function"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["function_name"],
            weight: 5,
            service: "lambda",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        if let Some(o) = props.as_object_mut() {
            o.remove("code_source");
        }
        concat::join(props);
        if let Some(Value::Object(env)) = props.get_mut("environment") {
            for v in env.values_mut() {
                if let Value::Number(n) = v {
                    *v = json!(n.to_string());
                }
            }
        }
        if let Some(v) = props.get_mut("vpc_config").filter(|v| v.is_object()) {
            super::backend_util::sort_array(v, "subnet_ids");
            super::backend_util::sort_array(v, "security_group_ids");
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let reads = aws
            .cached(FUNCTIONS, || our_functions(aws))
            .await?
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(addr, f, all)| async move {
                let name = f.function_name().unwrap_or_default().to_string();
                let reserved = ignore_not_found(
                    aws.lambda
                        .get_function_concurrency()
                        .function_name(&name)
                        .send()
                        .await
                        .aws(),
                )?
                .and_then(|c| c.reserved_concurrent_executions());
                let p = function_props(&f, reserved, all);
                Ok::<_, anyhow::Error>(live(
                    "lambda.function",
                    &addr,
                    &name,
                    p,
                    self.attrs(aws, &name).await?,
                ))
            });
        futures::future::try_join_all(reads).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        aws.forget(FUNCTIONS);
        let p: FunctionProps = props(d)?;
        let pkg = p.package()?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let name = p.function_name.clone();
        let created = retry_when(
            role_not_ready,
            &format!("creating function {name}"),
            IAM_PROPAGATION,
            rep,
            || async {
                aws.lambda
                    .create_function()
                    .function_name(&name)
                    .runtime(Runtime::from(p.runtime.as_str()))
                    .role(&p.role)
                    .handler(&p.handler)
                    .code(
                        FunctionCode::builder()
                            .zip_file(Blob::new(pkg.bytes.clone()))
                            .build(),
                    )
                    .memory_size(p.memory_size)
                    .timeout(p.timeout)
                    .architectures(Architecture::from(p.architecture.as_str()))
                    .environment(Environment::builder().set_variables(Some(p.env())).build())
                    .set_vpc_config(p.vpc_config.as_ref().map(|_| p.vpc()))
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()
            },
        )
        .await;
        match created {
            Ok(_) => {}
            // A retried create whose first attempt went through: ours if tagged so.
            Err(e)
                if e.downcast_ref::<AwsError>()
                    .is_some_and(|a| a.is("ResourceConflictException")) =>
            {
                let arn = function_arn(aws, &name).await?;
                let owner = aws
                    .lambda
                    .list_tags()
                    .resource(&arn)
                    .send()
                    .await
                    .aws()?
                    .tags()
                    .and_then(|t| t.get(super::ADDRESS_TAG).cloned());
                if owner.as_deref() != Some(d.address.as_str()) {
                    return Err(e.context(format!(
                        "a Lambda function named {name} already exists outside this stack"
                    )));
                }
                self.settled(aws, &name, rep).await?;
                let l = self
                    .read(aws)
                    .await?
                    .into_iter()
                    .find(|l| l.id == name)
                    .ok_or_else(|| anyhow!("function {name} vanished"))?;
                let mut changed: Vec<String> =
                    CONFIG_FIELDS.iter().map(|s| s.to_string()).collect();
                changed.extend(["code_sha256".into(), "reserved_concurrency".into()]);
                return self.update(aws, d, &l, &changed, rep).await;
            }
            Err(e) => return Err(e),
        }
        self.settled(aws, &name, rep).await?;
        if p.reserved_concurrency.is_some() {
            self.set_concurrency(aws, &name, p.reserved_concurrency)
                .await?;
        }
        let mut out = json!(p);
        self.normalize(&mut out);
        Ok(live(
            self.name(),
            &d.address,
            &name,
            out,
            self.attrs(aws, &name).await?,
        ))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        aws.forget(FUNCTIONS);
        let p: FunctionProps = props(d)?;
        let old: FunctionProps = serde_json::from_value(l.props.clone())?;
        let name = p.function_name.clone();
        let has = |f: &str| changed.iter().any(|c| c == f);
        // Code first, then configuration: Lambda refuses an update while
        // the previous one is in progress, so wait in between.
        if has("code_sha256") || has("architecture") {
            let pkg = p.package()?;
            self.settled(aws, &name, rep).await?;
            aws.lambda
                .update_function_code()
                .function_name(&name)
                .zip_file(Blob::new(pkg.bytes))
                .architectures(Architecture::from(p.architecture.as_str()))
                .send()
                .await
                .aws()
                .with_context(|| format!("updating the code of {name}"))?;
            rep.status("code updated");
        }
        if CONFIG_FIELDS.iter().any(|f| has(f)) {
            self.settled(aws, &name, rep).await?;
            retry_when(
                |e| role_not_ready(e) || e.is("ResourceConflictException"),
                &format!("updating the configuration of {name}"),
                IAM_PROPAGATION,
                rep,
                || async {
                    aws.lambda
                        .update_function_configuration()
                        .function_name(&name)
                        .runtime(Runtime::from(p.runtime.as_str()))
                        .role(&p.role)
                        .handler(&p.handler)
                        .memory_size(p.memory_size)
                        .timeout(p.timeout)
                        .environment(Environment::builder().set_variables(Some(p.env())).build())
                        .vpc_config(p.vpc())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
            rep.status("configuration updated");
        }
        self.settled(aws, &name, rep).await?;
        if has("reserved_concurrency") {
            self.set_concurrency(aws, &name, p.reserved_concurrency)
                .await?;
        }
        let arn = function_arn(aws, &name).await?;
        retag(aws, &arn, &old.tags, &p.tags).await?;
        // Security groups the function left keep its old interfaces until
        // Lambda releases them (moving subnets within the same groups
        // replaces interfaces that still carry the groups it uses: no wait).
        if let Some(v) = &old.vpc_config {
            let kept: Vec<&String> = p
                .vpc_config
                .iter()
                .flat_map(|n| &n.security_group_ids)
                .collect();
            let left: Vec<String> = v
                .security_group_ids
                .iter()
                .filter(|g| !kept.contains(g))
                .cloned()
                .collect();
            self.release_enis(aws, &name, &left, rep).await?;
        }
        let mut out = json!(p);
        self.normalize(&mut out);
        Ok(live(
            self.name(),
            &d.address,
            &name,
            out,
            self.attrs(aws, &name).await?,
        ))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        aws.forget(FUNCTIONS);
        let old: FunctionProps = serde_json::from_value(l.props.clone())?;
        ignore_not_found(
            aws.lambda
                .delete_function()
                .function_name(&l.id)
                .send()
                .await
                .aws(),
        )?;
        if let Some(v) = &old.vpc_config {
            self.release_enis(aws, &l.id, &v.security_group_ids, rep)
                .await?;
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------- Event source mapping

#[derive(Serialize, Deserialize)]
struct MappingProps {
    function_arn: String,
    event_source_arn: String,
    batch_size: i32,
    starting_position: String,
    enabled: bool,
    #[serde(default)]
    tags: Tags,
}

struct EventSourceMapping;

impl EventSourceMapping {
    async fn mapping_arn(aws: &Aws, uuid: &str) -> Result<String> {
        arn(
            aws,
            "lambda",
            &aws.region,
            &format!("event-source-mapping:{uuid}"),
        )
        .await
    }

    async fn wait_state(&self, aws: &Aws, uuid: &str, rep: &dyn StepReporter) -> Result<()> {
        wait_for("the stream mapping to be ready", SETTLE, rep, || async {
            let m = aws
                .lambda
                .get_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
                .aws()?;
            Ok(match m.state() {
                Some("Enabled") | Some("Disabled") => Some(()),
                Some(s @ ("Creating" | "Enabling" | "Disabling" | "Updating")) => {
                    rep.status(&format!("mapping {s}"));
                    None
                }
                Some(other) => bail!(
                    "stream mapping {uuid} is {other}: {}",
                    m.state_transition_reason().unwrap_or("no reason given")
                ),
                None => Some(()),
            })
        })
        .await
    }

    fn live_of(aws_arn: String, uuid: &str, address: &str, p: Value) -> Live {
        live(
            "lambda.event_source_mapping",
            address,
            uuid,
            p,
            json!({ "arn": aws_arn, "uuid": uuid }),
        )
    }
}

#[async_trait]
impl Kind for EventSourceMapping {
    fn name(&self) -> &'static str {
        "lambda.event_source_mapping"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["event_source_arn", "starting_position"],
            weight: 2,
            service: "lambda",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let prefix = function_arn(aws, &format!("{}-", aws.stack)).await?;
        let all: Vec<_> = aws
            .lambda
            .list_event_source_mappings()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        let reads = all
            .into_iter()
            .filter(|m| m.function_arn().is_some_and(|f| f.starts_with(&prefix)))
            .map(|m| async move {
                let uuid = m.uuid().unwrap_or_default().to_string();
                let arn = Self::mapping_arn(aws, &uuid).await?;
                let t = ignore_not_found(aws.lambda.list_tags().resource(&arn).send().await.aws())?;
                let all: Tags = t
                    .and_then(|t| t.tags().cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let Some(addr) = tags::owner(aws, &all).map(str::to_string) else {
                    return Ok::<_, anyhow::Error>(None);
                };
                let p = MappingProps {
                    function_arn: m.function_arn().unwrap_or_default().into(),
                    event_source_arn: m.event_source_arn().unwrap_or_default().into(),
                    batch_size: m.batch_size().unwrap_or(100),
                    starting_position: m
                        .starting_position()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    enabled: !matches!(m.state(), Some("Disabled" | "Disabling")),
                    tags: tags::visible(all),
                };
                Ok(Some(Self::live_of(arn, &uuid, &addr, json!(p))))
            });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: MappingProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let out = retry_when(
            stream_not_readable,
            "creating the stream mapping",
            IAM_PROPAGATION,
            rep,
            || async {
                aws.lambda
                    .create_event_source_mapping()
                    .function_name(&p.function_arn)
                    .event_source_arn(&p.event_source_arn)
                    .batch_size(p.batch_size)
                    .starting_position(EventSourcePosition::from(p.starting_position.as_str()))
                    .enabled(p.enabled)
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        let uuid = out.uuid().unwrap_or_default().to_string();
        self.wait_state(aws, &uuid, rep).await?;
        let arn = Self::mapping_arn(aws, &uuid).await?;
        Ok(Self::live_of(arn, &uuid, &d.address, json!(p)))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: MappingProps = props(d)?;
        let old: MappingProps = serde_json::from_value(l.props.clone())?;
        if changed
            .iter()
            .any(|c| matches!(c.as_str(), "batch_size" | "enabled" | "function_arn"))
        {
            self.wait_state(aws, &l.id, rep).await?;
            aws.lambda
                .update_event_source_mapping()
                .uuid(&l.id)
                .function_name(&p.function_arn)
                .batch_size(p.batch_size)
                .enabled(p.enabled)
                .send()
                .await
                .aws()
                .context("updating the stream mapping")?;
            self.wait_state(aws, &l.id, rep).await?;
        }
        let arn = Self::mapping_arn(aws, &l.id).await?;
        retag(aws, &arn, &old.tags, &p.tags).await?;
        Ok(Self::live_of(arn, &l.id, &d.address, json!(p)))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let gone = retry_when(
            |e| e.is("ResourceInUseException"),
            "deleting the stream mapping",
            SETTLE,
            rep,
            || async {
                ignore_not_found(
                    aws.lambda
                        .delete_event_source_mapping()
                        .uuid(&l.id)
                        .send()
                        .await
                        .aws(),
                )
            },
        )
        .await?
        .is_none();
        if !gone {
            wait_for("the stream mapping to be deleted", SETTLE, rep, || async {
                let r = ignore_not_found(
                    aws.lambda
                        .get_event_source_mapping()
                        .uuid(&l.id)
                        .send()
                        .await
                        .aws(),
                )?;
                Ok(r.is_none().then_some(()))
            })
            .await?;
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------- Permission

/// Statement ids of this tool's permissions: `infra-` and the address with
/// `.` as `_` (statement ids allow letters, digits, `-` and `_` only). The
/// addresses of permissions therefore use no `_` (function names of the
/// backend tier are lowercase letters, digits and hyphens).
const SID_PREFIX: &str = "infra-";

fn sid(address: &str) -> Result<String> {
    if !address
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        bail!("internal error: permission address {address} cannot be a statement id");
    }
    Ok(format!("{SID_PREFIX}{}", address.replace('.', "_")))
}

fn address_of(sid: &str) -> Option<String> {
    sid.strip_prefix(SID_PREFIX).map(|a| a.replace('_', "."))
}

/// Whether the function's resource policy has a statement with this id.
async fn has_statement(aws: &Aws, function: &str, sid: &str) -> Result<bool> {
    Ok(policy_statements(aws, function)
        .await?
        .iter()
        .any(|s| s["Sid"] == sid))
}

/// The statements of a function's resource policy (none without a policy).
async fn policy_statements(aws: &Aws, function: &str) -> Result<Vec<Value>> {
    let Some(policy) = ignore_not_found(
        aws.lambda
            .get_policy()
            .function_name(function)
            .send()
            .await
            .aws(),
    )?
    else {
        return Ok(vec![]);
    };
    let doc: Value = serde_json::from_str(policy.policy().unwrap_or("{}"))
        .context("reading a function policy")?;
    Ok(match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Object(_) => vec![doc["Statement"].clone()],
        _ => vec![],
    })
}

#[derive(Serialize, Deserialize)]
struct PermissionProps {
    function_name: String,
    action: String,
    principal: String,
    source_arn: String,
}

struct Permission;

#[async_trait]
impl Kind for Permission {
    fn name(&self) -> &'static str {
        "lambda.permission"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            // A permission cannot be changed, only removed and added again.
            replace_fields: &["function_name", "action", "principal", "source_arn"],
            weight: 1,
            service: "lambda",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        concat::join(props);
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let reads = aws
            .cached(FUNCTIONS, || our_functions(aws))
            .await?
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(_, f, _)| async move {
                let name = f.function_name().unwrap_or_default().to_string();
                let statements = policy_statements(aws, &name).await?;
                let mut out = Vec::new();
                for s in statements {
                    let Some(sid) = s["Sid"].as_str() else {
                        continue;
                    };
                    let Some(addr) = address_of(sid) else {
                        continue;
                    };
                    let principal = match &s["Principal"] {
                        Value::String(p) => p.clone(),
                        p => p["Service"].as_str().unwrap_or_default().to_string(),
                    };
                    let source = s["Condition"]["ArnLike"]["AWS:SourceArn"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let action = match &s["Action"] {
                        Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or_default(),
                        a => a.as_str().unwrap_or_default(),
                    }
                    .to_string();
                    out.push(live(
                        "lambda.permission",
                        &addr,
                        &format!("{name}/{sid}"),
                        json!(PermissionProps {
                            function_name: name.clone(),
                            action,
                            principal,
                            source_arn: source,
                        }),
                        json!({ "statement_id": sid }),
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
        let mut raw = d.props.clone();
        concat::join(&mut raw);
        let p: PermissionProps = serde_json::from_value(raw)
            .with_context(|| format!("internal error: bad properties for {}", d.address))?;
        let statement = sid(&d.address)?;
        // Not retried blindly: an endpoint that does not enforce unique
        // statement ids would keep a second copy of a grant whose answer was
        // lost. Before trying again, look for the statement.
        create_once(
            &format!(
                "{} (granting {} on {})",
                d.address, p.principal, p.function_name
            ),
            || async {
                match aws
                    .lambda_once
                    .add_permission()
                    .function_name(&p.function_name)
                    .statement_id(&statement)
                    .action(&p.action)
                    .principal(&p.principal)
                    .source_arn(&p.source_arn)
                    .send()
                    .await
                    .aws()
                {
                    // The statement is there already (AWS enforces unique ids).
                    Err(e) if e.is("ResourceConflictException") => Ok(()),
                    r => r.map(|_| ()),
                }
            },
            || async {
                Ok(has_statement(aws, &p.function_name, &statement)
                    .await?
                    .then_some(()))
            },
        )
        .await?;
        Ok(live(
            self.name(),
            &d.address,
            &format!("{}/{statement}", p.function_name),
            json!(p),
            json!({ "statement_id": statement }),
        ))
    }
    async fn update(
        &self,
        _aws: &Aws,
        d: &Resource,
        _l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        bail!(
            "internal error: {} can only be replaced (every field forces replacement)",
            d.address
        )
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let p: PermissionProps = serde_json::from_value(l.props.clone())?;
        let statement = l
            .attrs
            .get("statement_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .map_or_else(|| sid(&l.address), Ok)?;
        ignore_not_found(
            aws.lambda
                .remove_permission()
                .function_name(&p.function_name)
                .statement_id(statement)
                .send()
                .await
                .aws(),
        )?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_round_trip() {
        let s = sid("backend.permission.orders-v2").unwrap();
        assert_eq!(s, "infra-backend_permission_orders-v2");
        assert_eq!(address_of(&s).unwrap(), "backend.permission.orders-v2");
        assert!(sid("a_b").is_err());
        assert_eq!(address_of("AllowConsole"), None);
    }

    #[test]
    fn normalize_ignores_the_source_path_and_stringifies_env() {
        let mut a = json!({
            "code_sha256": "x", "code_source": {"dir": "/a"},
            "environment": {"PORT": 5432, "URL": {"$concat": ["h:", 1]}},
            "vpc_config": {"subnet_ids": ["b", "a"], "security_group_ids": ["g"]},
        });
        Function.normalize(&mut a);
        assert_eq!(
            a,
            json!({
                "code_sha256": "x",
                "environment": {"PORT": "5432", "URL": "h:1"},
                "vpc_config": {"subnet_ids": ["a", "b"], "security_group_ids": ["g"]},
            })
        );
    }

    #[test]
    fn only_the_role_propagation_errors_are_retried() {
        let e = |code: &str, msg: &str| AwsError {
            code: Some(code.into()),
            message: msg.into(),
            status: Some(400),
            no_response: false,
        };
        assert!(role_not_ready(&e(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda."
        )));
        assert!(!role_not_ready(&e(
            "InvalidParameterValueException",
            "Unzipped size must be smaller than 262144000 bytes"
        )));
        assert!(!role_not_ready(&e(
            "AccessDeniedException",
            "cannot be assumed by Lambda"
        )));
    }
}
