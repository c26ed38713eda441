//! The AWS provider: one module per service, each kind of resource
//! implementing [`Kind`]; [`AwsProvider`] dispatches the engine's calls.
//!
//! Credentials, region and endpoint come from the standard chain
//! (`aws-config`): environment, profiles, SSO, instance metadata, and
//! `AWS_ENDPOINT_URL` for emulators or AWS-compatible endpoints.

pub mod apigateway;
pub mod autoscaling;
pub mod backend_util;
pub mod cloudfront;
pub mod compute_common;
pub mod dynamodb;
pub mod ec2;
pub mod elbv2;
pub mod errors;
pub mod iam;
pub mod lambda;
pub mod launch_template;
pub mod lock;
pub mod logs;
pub mod rds;
pub mod s3;
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

use crate::engine::plan::{Change, FieldChange};
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
    pub s3: aws_sdk_s3::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    /// CloudFront without SDK retries, for creates (see `ec2_once`).
    pub cloudfront_once: aws_sdk_cloudfront::Client,
    /// `apply --wait`: wait for CloudFront to deploy changes and invalidations.
    pub wait_deployed: std::sync::atomic::AtomicBool,
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Without SDK retries, for CreateAutoScalingGroup.
    pub autoscaling_once: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// Without SDK retries, for CreateLoadBalancer (see `create_guarded`).
    pub elbv2_once: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// Without SDK retries, for AddPermission (see `lambda::Permission`).
    pub lambda_once: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// Without SDK retries, for CreateRestApi / CreateDeployment (not
    /// idempotent) and DeleteRestApi (see `delete_guarded`).
    pub apigateway_once: aws_sdk_apigateway::Client,
    pub rds: aws_sdk_rds::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    identity: OnceCell<(String, String)>,
    /// Listings shared by the kinds of one service within a read (see [`Aws::cached`]).
    cache: std::sync::Mutex<HashMap<&'static str, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

type Cached = Arc<dyn std::any::Any + Send + Sync>;

impl Aws {
    /// Loads the AWS configuration (no network call).
    pub async fn connect(stack: &str, region: &str, profile: Option<&str>) -> Result<Aws> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(
                // Adaptive: standard retries (throttling, 5xx, timeouts) plus client-side
                // rate limiting that backs off when a service throttles.
                RetryConfig::adaptive()
                    .with_max_attempts(8)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(10)),
            );
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        let sdk = loader.load().await;
        // A client of `$sdk` without SDK retries: for calls that must not be
        // repeated blindly (see `create_guarded`, `delete_guarded`).
        macro_rules! once {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&sdk)
                        .retry_config(RetryConfig::disabled())
                        .build(),
                )
            };
        }
        Ok(Aws {
            stack: stack.to_string(),
            region: region.to_string(),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ec2_once: once!(aws_sdk_ec2),
            sts: aws_sdk_sts::Client::new(&sdk),
            s3: s3::client(&sdk),
            cloudfront: aws_sdk_cloudfront::Client::new(&sdk),
            cloudfront_once: once!(aws_sdk_cloudfront),
            wait_deployed: Default::default(),
            autoscaling: aws_sdk_autoscaling::Client::new(&sdk),
            autoscaling_once: once!(aws_sdk_autoscaling),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            elbv2_once: once!(aws_sdk_elasticloadbalancingv2),
            iam: aws_sdk_iam::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            lambda_once: once!(aws_sdk_lambda),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            apigateway: aws_sdk_apigateway::Client::new(&sdk),
            apigateway_once: once!(aws_sdk_apigateway),
            rds: aws_sdk_rds::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sdk,
            identity: OnceCell::new(),
            cache: Default::default(),
        })
    }

    /// A listing several kinds of one service read (the stack's functions for
    /// the function and permission kinds, its REST APIs for the API, stage and
    /// deployment kinds), loaded once and shared, so a plan lists each once.
    /// Concurrent callers wait for the first load. A kind that creates,
    /// changes or deletes what the listing holds calls [`Aws::forget`]; create
    /// paths that look for what an earlier attempt made never use the cache.
    pub async fn cached<T, F, Fut>(&self, key: &'static str, load: F) -> Result<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let slot = self
            .cache
            .lock()
            .expect("cache lock")
            .entry(key)
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(v) = slot.as_ref().and_then(|v| v.clone().downcast::<T>().ok()) {
            return Ok(v);
        }
        let v = Arc::new(load().await?);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// Drops the listing cached under `key`.
    pub fn forget(&self, key: &'static str) {
        self.cache.lock().expect("cache lock").remove(key);
    }

    /// Whether to wait for CloudFront deployments (`apply --wait`).
    pub fn wait_deployed(&self) -> bool {
        self.wait_deployed
            .load(std::sync::atomic::Ordering::Relaxed)
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
    /// Plan notes for an update or replacement (see [`Provider::annotate`]).
    fn annotate(&self, _desired: &Value, _fields: &[FieldChange]) -> Vec<String> {
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
            .chain(s3::kinds())
            .chain(cloudfront::kinds())
            .chain(elbv2::kinds())
            .chain(launch_template::kinds())
            .chain(autoscaling::kinds())
            .chain(logs::kinds())
            .chain(iam::kinds())
            .chain(lambda::kinds())
            .chain(apigateway::kinds())
            .chain(rds::kinds())
            .chain(dynamodb::kinds())
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

    fn annotate(&self, kind: &str, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        self.kinds
            .get(kind)
            .map(|k| k.annotate(desired, fields))
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
    let mut last_report: Option<Instant> = None;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            bail!("gave up waiting for {what} after {}s", timeout.as_secs());
        }
        if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            rep.status(&format!("waiting for {what}"));
            last_report = Some(Instant::now());
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

/// Creates something whose create call is not idempotent on every endpoint
/// (no client token, or one an endpoint may ignore), with an SDK client whose
/// retries are off (`*_once`):
/// * a retryable failure (5xx, timeout, throttling) may have hidden a create
///   that happened: before trying again, `find` looks for the resource by its
///   tags (made in the same call), and a found one is the result;
/// * an `exists` error code (the name is taken) is a create whose answer was
///   lost, when `find` finds this address's resource; else an error that says
///   the name belongs to something else;
/// * a `wait` error code (a dependency not visible yet) is retried until
///   `timeout`.
pub async fn create_guarded<T, C, CF, F, FF>(
    what: &str,
    codes: Codes<'_>,
    rep: &dyn StepReporter,
    mut create: C,
    mut find: F,
) -> Result<T>
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, errors::AwsError>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match create().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let code = e.code.as_deref().unwrap_or_default();
        if codes.exists.contains(&code) {
            return match find().await? {
                Some(found) => Ok(found),
                None => Err(anyhow!(e).context(format!(
                    "creating {what}: the name is taken by something this stack did not create; delete or rename it"
                ))),
            };
        }
        if codes.wait.contains(&code) && start.elapsed() < codes.timeout {
            rep.status(&format!("creating {what}: {code} (retrying)"));
        } else if !(e.retryable() && attempt < 8) {
            return Err(anyhow!(e).context(format!("creating {what}")));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
        if !e.throttled()
            && let Some(found) = find().await?
        {
            return Ok(found);
        }
    }
}

/// Deletes something whose delete may be answered with an error once it is
/// gone (some endpoints even answer a second delete with a 5xx), with a
/// client whose SDK retries are off: before each attempt `exists` reads it
/// (gone = done), so a delete whose answer was lost is never repeated
/// blindly. `busy` codes (in use, still being changed) are retried until
/// `timeout`; retryable failures (5xx, throttling, timeouts) a bounded number
/// of times.
pub async fn delete_guarded<E, EF, D, DF, T>(
    what: &str,
    busy: &[&str],
    timeout: Duration,
    rep: &dyn StepReporter,
    mut exists: E,
    mut delete: D,
) -> Result<()>
where
    E: FnMut() -> EF,
    EF: std::future::Future<Output = Result<Option<T>>>,
    D: FnMut(T) -> DF,
    DF: std::future::Future<Output = Result<(), errors::AwsError>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(found) = exists().await? else {
            return Ok(());
        };
        match delete(found).await {
            Ok(()) => return Ok(()),
            Err(e) if e.not_found() => return Ok(()),
            Err(e) if busy.iter().any(|c| e.is(c)) && start.elapsed() < timeout => {
                rep.status(&format!(
                    "{what}: {} (retrying)",
                    e.code.as_deref().unwrap_or_default()
                ));
            }
            Err(e) if e.retryable() && attempt < 8 => {}
            Err(e) => return Err(anyhow!(e).context(what.to_string())),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(10));
    }
}

/// Error codes [`create_guarded`] treats specially.
#[derive(Clone, Copy, Default)]
pub struct Codes<'a> {
    /// The name is taken: maybe by an earlier attempt of this very create.
    pub exists: &'a [&'a str],
    /// A dependency is not visible yet: retried until `timeout`.
    pub wait: &'a [&'a str],
    pub timeout: Duration,
}

/// [`create_guarded`] without special codes.
pub async fn create_once<T, C, CF, F, FF>(what: &str, create: C, find: F) -> Result<T>
where
    C: FnMut() -> CF,
    CF: std::future::Future<Output = Result<T, errors::AwsError>>,
    F: FnMut() -> FF,
    FF: std::future::Future<Output = Result<Option<T>>>,
{
    create_guarded(
        what,
        Codes::default(),
        &crate::engine::provider::Quiet,
        create,
        find,
    )
    .await
}
