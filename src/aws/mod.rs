//! The AWS provider: one module per service, each kind of resource
//! implementing [`Kind`]; [`AwsProvider`] dispatches the engine's calls.
//!
//! Credentials, region and endpoint come from the standard chain
//! (`aws-config`): environment, profiles, SSO, instance metadata, and
//! `AWS_ENDPOINT_URL` for emulators or AWS-compatible endpoints.

pub mod autoscaling;
pub mod compute_common;
pub mod ec2;
pub mod elbv2;
pub mod errors;
pub mod launch_template;
pub mod tags;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_types::SdkConfig;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::engine::plan::Change;
use crate::engine::provider::{DeleteOptions, KindInfo, Provider, StepReporter};
use crate::engine::resource::{Live, Resource};

/// Tag naming the stack a resource belongs to.
pub const STACK_TAG: &str = "infra:stack";
/// Tag holding a resource's address in the stack.
pub const ADDRESS_TAG: &str = "infra:address";

/// Clients and identity shared by every kind.
pub struct Aws {
    pub stack: String,
    pub region: String,
    pub sdk: SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    /// Same client without SDK retries, for creates that are not idempotent
    /// by themselves: a lost response is followed by a look-up by tag, not a blind retry.
    pub ec2_once: aws_sdk_ec2::Client,
    pub sts: aws_sdk_sts::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    identity: OnceCell<(String, String)>,
}

impl Aws {
    /// Loads the AWS configuration (no network call).
    pub async fn connect(stack: &str, region: &str, profile: Option<&str>) -> Result<Aws> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(8)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            );
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        let sdk = loader.load().await;
        let once =
            |b: aws_sdk_ec2::config::Builder| b.retry_config(RetryConfig::disabled()).build();
        Ok(Aws {
            stack: stack.to_string(),
            region: region.to_string(),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ec2_once: aws_sdk_ec2::Client::from_conf(once(aws_sdk_ec2::config::Builder::from(
                &sdk,
            ))),
            sts: aws_sdk_sts::Client::new(&sdk),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            sdk,
            identity: OnceCell::new(),
        })
    }

    /// (account id, partition) of the caller, from STS, read once.
    pub async fn identity(&self) -> Result<&(String, String)> {
        self.identity
            .get_or_try_init(|| async {
                let out = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| errors::describe(&e))
                    .context("cannot determine the AWS account (sts:GetCallerIdentity); check your credentials")?;
                let arn = out.arn().unwrap_or_default();
                let partition = arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws").to_string();
                let account = out.account().map(str::to_string).ok_or_else(|| anyhow!("STS returned no account"))?;
                Ok::<_, anyhow::Error>((account, partition))
            })
            .await
    }
}

/// One kind of AWS resource.
#[async_trait]
pub trait Kind: Send + Sync {
    fn name(&self) -> &'static str;
    fn info(&self) -> KindInfo;
    fn normalize(&self, _props: &mut Value) {}
    /// Plan-time look-ups in the desired resources (see [`Provider::prepare`]).
    async fn prepare(&self, _aws: &Aws, _desired: &mut [Resource]) -> Result<()> {
        Ok(())
    }
    /// Notes for a planned change of this kind (see [`Provider::notes`]).
    fn notes(&self, _change: &Change) -> Vec<String> {
        Vec::new()
    }
    /// Every resource of this kind in the stack, found by tag.
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>>;
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live>;
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        live: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live>;
    async fn delete(
        &self,
        aws: &Aws,
        live: &Live,
        opts: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>>;
}

/// The engine's [`Provider`] over AWS.
pub struct AwsProvider {
    pub aws: Arc<Aws>,
    kinds: HashMap<&'static str, Box<dyn Kind>>,
}

impl AwsProvider {
    pub fn new(aws: Aws) -> AwsProvider {
        let mut kinds: HashMap<&'static str, Box<dyn Kind>> = HashMap::new();
        for k in ec2::kinds()
            .into_iter()
            .chain(elbv2::kinds())
            .chain(launch_template::kinds())
            .chain(autoscaling::kinds())
        {
            kinds.insert(k.name(), k);
        }
        AwsProvider {
            aws: Arc::new(aws),
            kinds,
        }
    }

    fn kind(&self, name: &str) -> Result<&dyn Kind> {
        self.kinds
            .get(name)
            .map(|k| k.as_ref())
            .ok_or_else(|| anyhow!("internal error: no AWS implementation for kind {name}"))
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn kind_info(&self, kind: &str) -> KindInfo {
        self.kinds.get(kind).map(|k| k.info()).unwrap_or_default()
    }

    fn normalize(&self, kind: &str, props: &mut Value) {
        if let Some(k) = self.kinds.get(kind) {
            k.normalize(props);
        }
    }

    async fn prepare(&self, desired: &mut [Resource]) -> Result<()> {
        let mut names: Vec<&&'static str> = self.kinds.keys().collect();
        names.sort();
        for n in names {
            self.kinds[*n].prepare(&self.aws, desired).await?;
        }
        Ok(())
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        self.kinds
            .get(change.kind.as_str())
            .map(|k| k.notes(change))
            .unwrap_or_default()
    }

    async fn read(&self, kinds: &[String]) -> Result<Vec<Live>> {
        let reads = kinds.iter().map(|name| async move {
            let k = self.kind(name)?;
            k.read(&self.aws)
                .await
                .with_context(|| format!("reading {name} resources"))
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(reads).await {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn create(&self, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        self.kind(&d.kind)?.create(&self.aws, d, rep).await
    }

    async fn update(
        &self,
        d: &Resource,
        live: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        self.kind(&d.kind)?
            .update(&self.aws, d, live, changed, rep)
            .await
    }

    async fn delete(
        &self,
        live: &Live,
        opts: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        self.kind(&live.kind)?
            .delete(&self.aws, live, opts, rep)
            .await
    }
}

/// Polls `check` until it yields a value: first at once, then at growing
/// intervals (never a fixed sleep), up to `timeout`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    rep: &dyn StepReporter,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut reported = false;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("gave up waiting for {what} after {}s", timeout.as_secs());
        }
        if !reported || start.elapsed().as_secs().is_multiple_of(10) {
            rep.status(&format!("waiting for {what}"));
            reported = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(5));
    }
}

/// Retries `op` while it fails with one of `codes` (AWS's eventual
/// consistency: dependencies draining, just-created things not yet visible),
/// at growing intervals, up to `timeout`.
pub async fn retry_on<T, F, Fut>(
    codes: &[&str],
    what: &str,
    timeout: Duration,
    rep: &dyn StepReporter,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, errors::AwsError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e)
                if codes.iter().any(|c| e.code.as_deref() == Some(*c))
                    && start.elapsed() < timeout =>
            {
                rep.status(&format!(
                    "{what}: {} (retrying)",
                    e.code.as_deref().unwrap_or("")
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 3 / 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        }
    }
}

/// Creates without duplicates: on an ambiguous failure (timeout, 5xx, lost
/// response) looks the resource up by its address tag before trying again.
pub async fn create_once<T, C, CF, F, FF>(what: &str, mut create: C, mut find: F) -> Result<T>
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, errors::AwsError>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>>>,
{
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match create().await {
            Ok(v) => return Ok(v),
            Err(e) if e.retryable() && attempt < 8 => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                if !e.throttled()
                    && let Some(found) = find().await?
                {
                    return Ok(found);
                }
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating {what}"))),
        }
    }
}
