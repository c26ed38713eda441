//! The AWS provider: one module per service, one file per kind of resource
//! (each implementing [`kind::Kind`]), every kind registered once in
//! [`registry`]; [`AwsProvider`] dispatches the engine's calls to them.
//!
//! Credentials, region and endpoint come from the standard chain
//! (`aws-config`): environment, profiles, SSO, instance metadata, and
//! `AWS_ENDPOINT_URL` for emulators or AWS-compatible endpoints.

pub mod apigateway;
pub mod autoscaling;
pub mod cloudfront;
pub mod cognito;
pub mod collection;
pub mod deploy_policy;
pub mod dynamodb;
pub mod ec2;
pub mod elbv2;
pub mod errors;
pub mod find;
pub mod iam;
pub mod kind;
pub mod lambda;
pub mod lock;
pub mod logs;
pub mod pricing;
pub mod probe;
pub mod rds;
pub mod registry;
pub mod retry;
pub mod s3;
pub mod tags;

pub use retry::{Codes, create_guarded, create_once, delete_guarded, retry_on, retry_when, wait_for};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_types::SdkConfig;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::engine::plan::{Change, FieldChange};
use crate::engine::provider::{Finding, KindInfo, Provider, StepContext};
use crate::engine::resource::{Live, Resource};
use kind::DynKind;

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
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Without SDK retries, for CreateAutoScalingGroup.
    pub autoscaling_once: aws_sdk_autoscaling::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    /// Without SDK retries, for CreateLoadBalancer (see `create_guarded`).
    pub elbv2_once: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// Without SDK retries, for AddPermission (see `lambda::permission`).
    pub lambda_once: aws_sdk_lambda::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    /// Without SDK retries, for CreateRestApi / CreateDeployment (not
    /// idempotent) and DeleteRestApi (see `delete_guarded`).
    pub apigateway_once: aws_sdk_apigateway::Client,
    pub rds: aws_sdk_rds::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Public parameters (the latest AMIs) for plan-time look-ups.
    pub ssm: aws_sdk_ssm::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    /// Without SDK retries, for CreateUserPool / CreateUserPoolClient (no
    /// client token, names not unique: see `create_guarded`).
    pub cognito_once: aws_sdk_cognitoidentityprovider::Client,
    identity: OnceCell<(String, String)>,
    /// Listings shared by the kinds of one service within a read (see
    /// [`Aws::cached`]); every read starts empty.
    cache: std::sync::Mutex<HashMap<&'static str, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    /// What plan-time look-ups found worth saying (`Aws::note`), for the plan.
    notes: std::sync::Mutex<Vec<String>>,
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
                $sdk::Client::from_conf($sdk::config::Builder::from(&sdk).retry_config(RetryConfig::disabled()).build())
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
            ssm: aws_sdk_ssm::Client::new(&sdk),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&sdk),
            cognito_once: once!(aws_sdk_cognitoidentityprovider),
            sdk,
            identity: OnceCell::new(),
            cache: Default::default(),
            notes: Default::default(),
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
        let slot = self.cache.lock().expect("cache lock").entry(key).or_default().clone();
        let mut slot = slot.lock().await;
        if let Some(v) = slot.as_ref().and_then(|v| v.clone().downcast::<T>().ok()) {
            return Ok(v);
        }
        let v = Arc::new(load().await?);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// A line for the plan, from a plan-time look-up (`Kind::prepare`): why
    /// a desired value was taken from the cloud, say.
    pub fn note(&self, line: String) {
        self.notes.lock().expect("notes lock").push(line);
    }

    /// Drops the listing cached under `key`.
    pub fn forget(&self, key: &'static str) {
        self.cache.lock().expect("cache lock").remove(key);
    }

    /// Every tag a new resource at `address` gets: the user's, and ours.
    pub fn tags_for(&self, address: &str, user: &tags::Tags) -> tags::Tags {
        let mut t = user.clone();
        t.insert(STACK_TAG.into(), self.stack.clone());
        t.insert(ADDRESS_TAG.into(), address.to_string());
        t
    }

    /// The ARN of `resource` of `service` in this account and region, from
    /// STS (never from an API's echo).
    pub async fn arn(&self, service: &str, resource: &str) -> Result<String> {
        let (account, partition) = self.identity().await?;
        Ok(format!("arn:{partition}:{service}:{}:{account}:{resource}", self.region))
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

/// The engine's [`Provider`] over AWS: every registered kind, by name.
pub struct AwsProvider {
    pub aws: Arc<Aws>,
    kinds: HashMap<&'static str, Box<dyn DynKind>>,
    /// Registration order (the order kinds are prepared and listed in).
    order: Vec<&'static str>,
    /// The region's prices, for the plan's cost.
    prices: Option<pricing::Prices>,
}

impl AwsProvider {
    pub fn new(aws: Aws) -> AwsProvider {
        let mut kinds = HashMap::new();
        let mut order = Vec::new();
        for k in registry::kinds() {
            order.push(k.name());
            kinds.insert(k.name(), k);
        }
        let prices = pricing::Prices::bundled(&aws.region);
        AwsProvider { aws: Arc::new(aws), kinds, order, prices }
    }

    fn kind(&self, name: &str) -> Result<&dyn DynKind> {
        self.kinds
            .get(name)
            .map(|k| k.as_ref())
            .ok_or_else(|| anyhow!("internal error: no AWS implementation for kind {name}"))
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn kinds(&self) -> Vec<&'static str> {
        self.order.clone()
    }

    fn kind_info(&self, kind: &str) -> KindInfo {
        self.kinds.get(kind).map(|k| k.info()).unwrap_or_default()
    }

    fn protected(&self, kind: &str, props: &Value) -> bool {
        self.kinds.get(kind).is_some_and(|k| k.protected(props))
    }

    fn identifiers<'a>(&self, live: &'a Live) -> Vec<&'a str> {
        // Other resources' props hold ids and ARNs.
        let mut ids = vec![live.id.as_str()];
        for key in ["id", "arn"] {
            if let Some(Value::String(s)) = live.attrs.get(key) {
                ids.push(s);
            }
        }
        ids
    }

    fn mentions<'a>(&self, live: &'a Live) -> Vec<&'a str> {
        tags::mentions(&live.props)
    }

    fn normalize(&self, kind: &str, props: &mut Value) {
        if let Some(k) = self.kinds.get(kind) {
            k.normalize(props);
        }
    }

    /// Each kind's look-ups run concurrently, on the resources of that
    /// kind only (a plan's look-ups are a round trip or two each, and would
    /// add up in sequence).
    async fn prepare(&self, desired: &mut [&mut Resource]) -> Result<()> {
        let mut by_kind: HashMap<&'static str, Vec<&mut Resource>> = HashMap::new();
        for r in desired.iter_mut() {
            let Some((&name, _)) = self.kinds.get_key_value(r.kind.as_str()) else {
                bail!("internal error: no AWS implementation for kind {}", r.kind);
            };
            by_kind.entry(name).or_default().push(&mut **r);
        }
        let preps = by_kind
            .into_iter()
            .map(|(name, mut of_kind)| async move { self.kinds[name].prepare(&self.aws, &mut of_kind).await });
        futures::future::try_join_all(preps).await?;
        Ok(())
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        self.kinds.get(change.kind.as_str()).map(|k| k.notes(change)).unwrap_or_default()
    }

    fn annotate(&self, kind: &str, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        self.kinds.get(kind).map(|k| k.annotate(desired, fields)).unwrap_or_default()
    }

    fn cost(&self, kind: &str, props: &Value) -> Option<crate::engine::cost::Cost> {
        self.kinds.get(kind)?.cost(props, self.prices.as_ref()?)
    }

    fn widens(&self, kind: &str, before: Option<&Value>, after: &Value) -> Vec<String> {
        self.kinds.get(kind).map(|k| k.widens(before, after)).unwrap_or_default()
    }

    fn price_list(&self) -> Option<crate::engine::cost::PriceList> {
        Some(self.prices.as_ref()?.list())
    }

    fn plan_notes(&self, changes: &[Change]) -> Vec<String> {
        let mut notes: Vec<String> = std::mem::take(&mut *self.aws.notes.lock().expect("notes lock"));
        notes.extend(changes.iter().filter_map(|c| self.kinds.get(c.kind.as_str())?.plan_note(c)));
        notes
    }

    async fn read(&self, kinds: &[&str]) -> Result<Vec<Live>> {
        // Each read sees the cloud as it is now: listings shared by the
        // kinds of a service are shared within one read only (`apply
        // --check` reads again after the apply changed them).
        self.aws.cache.lock().expect("cache lock").clear();
        // (Cleared before the first await: a `prepare` polled beside this
        // read, as `ops::plan` does, shares the read's listings.)
        let reads = kinds.iter().map(|name| async move {
            let k = self.kind(name)?;
            k.read(&self.aws).await.with_context(|| format!("reading {name} resources"))
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(reads).await {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn create(&self, d: &Resource, ctx: &StepContext<'_>) -> Result<Live> {
        self.kind(&d.kind)?.create(&self.aws, d, ctx).await
    }

    async fn update(&self, d: &Resource, live: &Live, changed: &[String], ctx: &StepContext<'_>) -> Result<Live> {
        self.kind(&d.kind)?.update(&self.aws, d, live, changed, ctx).await
    }

    fn releases(&self, live: &Live) -> bool {
        self.kinds.get(live.kind.as_str()).is_some_and(|k| k.releases(live))
    }

    async fn release(&self, live: &Live, ctx: &StepContext<'_>) -> Result<()> {
        self.kind(&live.kind)?.release(&self.aws, live, ctx).await
    }

    async fn delete(&self, live: &Live, ctx: &StepContext<'_>) -> Result<Option<String>> {
        self.kind(&live.kind)?.delete(&self.aws, live, ctx).await
    }

    async fn verify(&self, resources: &[&Live], all: &[Live]) -> Vec<Finding> {
        let checks = resources.iter().map(|l| async move {
            let got = match self.kind(&l.kind) {
                Ok(k) => k.verify(&self.aws, l, all).await,
                Err(e) => Err(e),
            };
            // A check that could not run is a failed check, named.
            got.unwrap_or_else(|e| vec![Finding::new(&l.address, "read its state", false, format!("{e:#}"))])
        });
        futures::future::join_all(checks).await.into_iter().flatten().collect()
    }
}
