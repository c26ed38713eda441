//! Lambda functions.
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
    Architecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime, State, VpcConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    IAM_PROPAGATION, Listed, SETTLE, Tagging, forget_functions, function_arn, functions, list_functions, tags_of,
};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{owned_then, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::lambda::package::{self, CodeSource};
use crate::aws::pricing::Prices;
use crate::aws::retry::retry_when;
use crate::aws::tags::{self, Tags};
use crate::aws::{ADDRESS_TAG, Aws, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{Finding, KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Live, Props};
use crate::engine::value::{Ref, sort_set};

/// Lambda releases the network interfaces of deleted VPC functions after up
/// to ~20 minutes (sometimes more) on AWS.
const ENI_RELEASE: Duration = Duration::from_secs(45 * 60);
/// Description prefix of the network interfaces Lambda creates in a VPC.
const LAMBDA_ENI: &str = "AWS Lambda VPC ENI";

/// The subnets and security groups of a VPC function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionVpc {
    pub subnet_ids: Vec<Ref>,
    pub security_group_ids: Vec<Ref>,
}

/// The value of an environment variable. Lambda takes text; a reference
/// may resolve to a number (a database port), which is sent as its text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct EnvText(pub String);

impl<'de> Deserialize<'de> for EnvText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(EnvText(match Value::deserialize(d)? {
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

impl EnvText {
    /// An environment value from text with references inside.
    pub fn of(r: Ref) -> Ref<EnvText> {
        match r {
            Ref::Value(s) => Ref::Value(EnvText(s)),
            Ref::Pending(p) => Ref::Pending(p),
        }
    }
}

/// Where the package is built from (`{"dir": path}` or `{"zip": path}`, an
/// absolute path). Not a property of the live function: `normalize` drops it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Code {
    Dir(String),
    Zip(String),
}

impl Code {
    fn source(&self) -> CodeSource {
        match self {
            Code::Dir(d) => CodeSource::Dir(d.into()),
            Code::Zip(z) => CodeSource::Zip(z.into()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FunctionProps {
    pub function_name: String,
    pub role: Ref,
    pub runtime: String,
    pub handler: String,
    pub memory_size: i32,
    pub timeout: i32,
    pub architecture: String,
    #[serde(default)]
    pub environment: BTreeMap<String, Ref<EnvText>>,
    #[serde(default)]
    pub vpc_config: Option<FunctionVpc>,
    #[serde(default)]
    pub reserved_concurrency: Option<i32>,
    pub code_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_source: Option<Code>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for FunctionProps {
    const KIND: &'static str = "lambda.function";
}

/// Fields UpdateFunctionConfiguration changes.
const CONFIG_FIELDS: &[&str] = &["role", "runtime", "handler", "memory_size", "timeout", "environment", "vpc_config"];

/// The role is not (yet) usable by Lambda: IAM propagation of a new role or
/// of its new policies. Exactly these messages, nothing else.
fn role_not_ready(e: &AwsError) -> bool {
    e.is("InvalidParameterValueException")
        && (e.message.contains("cannot be assumed by Lambda")
            || e.message.contains("execution role does not have permissions to call"))
}

impl FunctionProps {
    fn env(&self) -> Result<HashMap<String, String>> {
        self.environment.iter().map(|(k, v)| Ok((k.clone(), v.get()?.0.clone()))).collect()
    }

    fn package(&self) -> Result<package::Package> {
        let Some(code) = &self.code_source else { bail!("internal error: no code source for {}", self.function_name) };
        let src = code.source();
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

    /// The security groups of the function (none outside a VPC).
    fn security_groups(&self) -> Result<Vec<String>> {
        self.vpc_config.as_ref().map_or(Ok(Vec::new()), |v| Ref::all(&v.security_group_ids))
    }

    fn vpc(&self) -> Result<VpcConfig> {
        let subnets = self.vpc_config.as_ref().map_or(Ok(Vec::new()), |v| Ref::all(&v.subnet_ids))?;
        Ok(VpcConfig::builder()
            .set_subnet_ids(Some(subnets))
            .set_security_group_ids(Some(self.security_groups()?))
            .build())
    }
}

fn props_of(f: &FunctionConfiguration, reserved: Option<i32>, tags: Tags) -> FunctionProps {
    let vpc = f.vpc_config().filter(|v| !v.subnet_ids().is_empty()).map(|v| FunctionVpc {
        subnet_ids: v.subnet_ids().iter().map(|s| s.as_str().into()).collect(),
        security_group_ids: v.security_group_ids().iter().map(|g| g.as_str().into()).collect(),
    });
    FunctionProps {
        function_name: f.function_name().unwrap_or_default().into(),
        role: f.role().unwrap_or_default().into(),
        runtime: f.runtime().map(|r| r.as_str().to_string()).unwrap_or_default(),
        handler: f.handler().unwrap_or_default().into(),
        memory_size: f.memory_size().unwrap_or(128),
        timeout: f.timeout().unwrap_or(3),
        architecture: f.architectures().first().map(|a| a.as_str().to_string()).unwrap_or_else(|| "x86_64".into()),
        environment: f
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), Ref::Value(EnvText(v.clone())))).collect())
            .unwrap_or_default(),
        vpc_config: vpc,
        reserved_concurrency: reserved,
        code_sha256: f.code_sha256().unwrap_or_default().into(),
        code_source: None,
        tags,
    }
}

/// A function as a resource of this kind: its name is its id.
async fn current(aws: &Aws, address: String, props: FunctionProps) -> Result<Current<FunctionProps>> {
    let name = props.function_name.clone();
    Ok(Current::new(address, name.clone(), props).with("arn", function_arn(aws, &name).await?).with("name", name))
}

pub struct Function;

impl Function {
    /// The stack's functions among `listed` (at `address`, when given).
    async fn build(aws: &Aws, address: Option<&str>, listed: Vec<Listed>) -> Result<Vec<Current<FunctionProps>>> {
        owned_then(
            aws,
            address,
            listed,
            |l| l.tags.clone(),
            |l, owner| async move {
                let props = props_of(&l.config, l.reserved, owner.tags);
                Ok(Some(current(aws, owner.address, props).await?))
            },
        )
        .await
    }

    /// Waits until no update is in progress and the function is usable.
    async fn settled(&self, aws: &Aws, name: &str, rep: &dyn StepReporter) -> Result<()> {
        wait_for(&format!("function {name} to be ready"), SETTLE, rep, || async {
            let c = aws.lambda.get_function_configuration().function_name(name).send().await.aws()?;
            if c.state() == Some(&State::Failed) {
                bail!("function {name} failed: {}", c.state_reason().unwrap_or("no reason given"));
            }
            if c.last_update_status() == Some(&LastUpdateStatus::Failed) {
                bail!(
                    "the last update of function {name} failed: {}",
                    c.last_update_status_reason().unwrap_or("no reason given")
                );
            }
            let pending =
                c.state() == Some(&State::Pending) || c.last_update_status() == Some(&LastUpdateStatus::InProgress);
            Ok((!pending).then_some(()))
        })
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
            None => {
                aws.lambda.delete_function_concurrency().function_name(name).send().await.aws().or_absent().map(|_| ())
            }
        }
        .with_context(|| format!("setting the reserved concurrency of {name}"))
    }

    /// After a VPC function is deleted, Lambda keeps its network interfaces
    /// (shared by the functions with the same subnets and security groups)
    /// in use for many minutes; they block deleting the subnets and the
    /// security group. The last function of those groups to go waits for
    /// them to be released and deletes them.
    async fn release_enis(&self, aws: &Aws, name: &str, groups: &[String], rep: &dyn StepReporter) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let filter = aws_sdk_ec2::types::Filter::builder().name("group-id").set_values(Some(groups.to_vec())).build();
        wait_for(
            &format!("the network interfaces of {name} to be released (Lambda takes up to ~20 minutes)"),
            ENI_RELEASE,
            rep,
            || async {
                let enis: Vec<_> = paginated!(aws.ec2.describe_network_interfaces().filters(filter.clone()))?
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
                let users = paginated!(aws.lambda.list_functions())?
                    .into_iter()
                    .filter(|f| {
                        f.function_name() != Some(name)
                            && f.vpc_config().is_some_and(|v| v.security_group_ids().iter().any(|g| groups.contains(g)))
                    })
                    .count();
                if users > 0 {
                    return Ok(Some(()));
                }
                let mut in_use = 0;
                for n in &enis {
                    let id = n.network_interface_id().unwrap_or_default();
                    if n.status().map(|s| s.as_str()) == Some("available") {
                        match aws.ec2.delete_network_interface().network_interface_id(id).send().await.aws() {
                            Ok(_) => {}
                            Err(e) if e.not_found() || e.is("InvalidNetworkInterface.InUse") => in_use += 1,
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

/// The props a created or updated function has live (no code source).
fn applied(p: &FunctionProps) -> FunctionProps {
    FunctionProps { code_source: None, ..p.clone() }
}

#[async_trait]
impl Kind for Function {
    type Props = FunctionProps;

    fn info(&self) -> KindInfo {
        // The environment may wait for what it names (a database's
        // endpoint) while the API in front of the function is made.
        // A VPC function leaves its VPC when a destroy starts: its network
        // interfaces (up to ~20 minutes to be released, holding the subnets
        // and security group) are released while the API is deleted.
        KindInfo {
            replace_fields: &["function_name"],
            weight: 5,
            late_fields: &["environment"],
            early_release: true,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        if let Some(o) = props.as_object_mut() {
            o.remove("code_source");
        }
        if let Some(Value::Object(env)) = props.get_mut("environment") {
            for v in env.values_mut() {
                if let Value::Number(n) = v {
                    *v = json!(n.to_string());
                }
            }
        }
        if let Some(v) = props.get_mut("vpc_config").filter(|v| v.is_object()) {
            sort_set(v, "subnet_ids");
            sort_set(v, "security_group_ids");
        }
    }

    /// Requests and GB-seconds of its architecture, nothing at rest.
    fn cost(&self, p: &FunctionProps, prices: &Prices) -> Option<Cost> {
        let arch = p.architecture.as_str();
        Some(prices.usage(&[
            (&["lambda", arch, "per_million_requests"], "per 1M requests"),
            (&["lambda", arch, "gb_second"], &format!("per GB-second ({} MB)", p.memory_size)),
        ]))
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<FunctionProps>>> {
        Self::build(aws, address, list_functions(aws).await?).await
    }

    /// From the listing shared with the permission kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<FunctionProps>>> {
        Self::build(aws, None, functions(aws).await?.to_vec()).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<FunctionProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<FunctionProps>> {
        forget_functions(aws);
        let p = &d.props;
        let pkg = p.package()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let name = &p.function_name;
        let (role, env) = (p.role.get()?, p.env()?);
        let vpc = p.vpc_config.as_ref().map(|_| p.vpc()).transpose()?;
        let created =
            retry_when(role_not_ready, &format!("creating function {name}"), IAM_PROPAGATION, ctx, || async {
                aws.lambda
                    .create_function()
                    .function_name(name)
                    .runtime(Runtime::from(p.runtime.as_str()))
                    .role(role)
                    .handler(&p.handler)
                    .code(FunctionCode::builder().zip_file(Blob::new(pkg.bytes.clone())).build())
                    .memory_size(p.memory_size)
                    .timeout(p.timeout)
                    .architectures(Architecture::from(p.architecture.as_str()))
                    .environment(Environment::builder().set_variables(Some(env.clone())).build())
                    .set_vpc_config(vpc.clone())
                    .set_tags(Some(t.clone().into_iter().collect()))
                    .send()
                    .await
                    .aws()
            })
            .await;
        match created {
            Ok(_) => {}
            // A retried create whose first attempt went through: ours if tagged so.
            Err(e) if e.downcast_ref::<AwsError>().is_some_and(|a| a.is("ResourceConflictException")) => {
                let owner = tags_of(aws, &function_arn(aws, name).await?).await?.remove(ADDRESS_TAG);
                if owner.as_deref() != Some(d.address.as_str()) {
                    return Err(e.context(format!("a Lambda function named {name} already exists outside this stack")));
                }
                self.settled(aws, name, ctx).await?;
                let l = self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .find(|l| &l.id == name)
                    .ok_or_else(|| anyhow!("function {name} vanished"))?;
                let mut changed: Vec<String> = CONFIG_FIELDS.iter().map(|s| s.to_string()).collect();
                changed.extend(["code_sha256".into(), "reserved_concurrency".into()]);
                return self.update(aws, d, &l, &changed, ctx).await;
            }
            Err(e) => return Err(e),
        }
        self.settled(aws, name, ctx).await?;
        if p.reserved_concurrency.is_some() {
            self.set_concurrency(aws, name, p.reserved_concurrency).await?;
        }
        current(aws, d.address.clone(), applied(p)).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<FunctionProps>, l: &Current<FunctionProps>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<FunctionProps>> {
        forget_functions(aws);
        let p = &d.props;
        let name = &p.function_name;
        let has = |f: &str| changed.iter().any(|c| c == f);
        // Code first, then configuration: Lambda refuses an update while
        // the previous one is in progress, so wait in between.
        if has("code_sha256") || has("architecture") {
            let pkg = p.package()?;
            self.settled(aws, name, ctx).await?;
            aws.lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(pkg.bytes))
                .architectures(Architecture::from(p.architecture.as_str()))
                .send()
                .await
                .aws()
                .with_context(|| format!("updating the code of {name}"))?;
            ctx.status("code updated");
        }
        if CONFIG_FIELDS.iter().any(|f| has(f)) {
            let (role, env, vpc) = (p.role.get()?, p.env()?, p.vpc()?);
            self.settled(aws, name, ctx).await?;
            retry_when(
                |e| role_not_ready(e) || e.is("ResourceConflictException"),
                &format!("updating the configuration of {name}"),
                IAM_PROPAGATION,
                ctx,
                || async {
                    aws.lambda
                        .update_function_configuration()
                        .function_name(name)
                        .runtime(Runtime::from(p.runtime.as_str()))
                        .role(role)
                        .handler(&p.handler)
                        .memory_size(p.memory_size)
                        .timeout(p.timeout)
                        .environment(Environment::builder().set_variables(Some(env.clone())).build())
                        .vpc_config(vpc.clone())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
            ctx.status("configuration updated");
        }
        self.settled(aws, name, ctx).await?;
        if has("reserved_concurrency") {
            self.set_concurrency(aws, name, p.reserved_concurrency).await?;
        }
        let arn = function_arn(aws, name).await?;
        tags::sync(&Tagging, aws, &arn, &l.props.tags, &p.tags).await?;
        // Security groups the function left keep its old interfaces until
        // Lambda releases them (moving subnets within the same groups
        // replaces interfaces that still carry the groups it uses: no wait).
        if l.props.vpc_config.is_some() {
            let kept = p.security_groups()?;
            let left: Vec<String> = l.props.security_groups()?.into_iter().filter(|g| !kept.contains(g)).collect();
            self.release_enis(aws, name, &left, ctx).await?;
        }
        current(aws, d.address.clone(), applied(p)).await
    }

    async fn verify(&self, aws: &Aws, l: &Current<FunctionProps>, _all: &[Live]) -> Result<Vec<Finding>> {
        let c = aws
            .lambda
            .get_function_configuration()
            .function_name(&l.id)
            .send()
            .await
            .aws()
            .with_context(|| format!("reading function {}", l.id))?;
        let state = c.state().map(|s| s.as_str()).unwrap_or("unknown");
        let update = c.last_update_status().map(|s| s.as_str()).unwrap_or("Successful");
        let ok = state == "Active" && update == "Successful";
        let why = [c.state_reason(), c.last_update_status_reason()]
            .into_iter()
            .flatten()
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let detail =
            format!("{state}, last update {update}{}", if why.is_empty() { String::new() } else { format!(": {why}") });
        Ok(vec![Finding::new(&l.address, "active, last update successful", ok, detail)])
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        let in_vpc = change.live.as_ref().is_some_and(|l| l.props.get("vpc_config").is_some_and(|v| !v.is_null()));
        if change.action == Action::Delete && in_vpc {
            return vec![
                "taken out of its VPC as the run starts, so its network interfaces (up to ~20 minutes) are released while the rest is deleted".into(),
            ];
        }
        Vec::new()
    }

    fn releases(&self, l: &Current<FunctionProps>) -> bool {
        l.props.vpc_config.is_some()
    }

    /// Takes a VPC function out of its VPC (an empty VPC configuration), so
    /// Lambda starts releasing its network interfaces now, not when the
    /// function is deleted after the API in front of it; the delete then
    /// waits for what is left of the release.
    async fn release(&self, aws: &Aws, l: &Current<FunctionProps>, ctx: &StepContext<'_>) -> Result<()> {
        if l.props.vpc_config.is_none() {
            return Ok(());
        }
        forget_functions(aws);
        let none = VpcConfig::builder().set_subnet_ids(Some(vec![])).set_security_group_ids(Some(vec![])).build();
        // An update in progress (ResourceConflictException) is waited out.
        let what = format!("detaching function {} from its VPC", l.id);
        let sent = retry_when(
            |e| e.is("ResourceConflictException"),
            &what,
            SETTLE,
            ctx,
            || async {
                aws.lambda
                    .update_function_configuration()
                    .function_name(&l.id)
                    .vpc_config(none.clone())
                    .send()
                    .await
                    .aws()
            },
        )
        .await
        .map(|_| ());
        match sent {
            Ok(()) => self.settled(aws, &l.id, ctx).await,
            Err(e) if e.downcast_ref::<AwsError>().is_some_and(AwsError::not_found) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, aws: &Aws, l: &Current<FunctionProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        forget_functions(aws);
        aws.lambda.delete_function().function_name(&l.id).send().await.aws().or_absent()?;
        if l.props.vpc_config.is_some() {
            self.release_enis(aws, &l.id, &l.props.security_groups()?, ctx).await?;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::kind::DynKind;

    #[test]
    fn normalize_ignores_the_source_path_and_stringifies_env() {
        let mut a = json!({
            "code_sha256": "x", "code_source": {"dir": "/a"},
            "environment": {"PORT": 5432, "URL": {"$concat": ["h:", 1]}},
            "vpc_config": {"subnet_ids": ["b", "a"], "security_group_ids": ["g"]},
        });
        // Through the registry's adapter, which joins concatenations first.
        DynKind::normalize(&Function, &mut a);
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
        assert!(!role_not_ready(&e("AccessDeniedException", "cannot be assumed by Lambda")));
    }
}
