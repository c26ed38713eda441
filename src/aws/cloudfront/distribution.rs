//! The distribution: the bucket through the origin access control (and, with
//! a backend tier, `/api/*` from its API Gateway stage), HTTPS, the SPA
//! fallback. Found by its tags, which carry the region too (CloudFront is
//! global); changed through the ETag protocol, over the live config (what
//! the stack does not manage stays as it is).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomErrorResponse, CustomErrorResponses,
    CustomOriginConfig, DefaultCacheBehavior, DistributionConfig, DistributionConfigWithTags, EventType,
    FunctionAssociation, FunctionAssociations, HttpVersion, Method, MinimumProtocolVersion, Origin,
    OriginProtocolPolicy, OriginSslProtocols, Origins, PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod,
    ViewerCertificate, ViewerProtocolPolicy,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{REGION_TAG, Tagging, cf_tags, if_match, list, tag_map};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{self, Owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::{Prices, money};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, probe, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{Finding, KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Live, Props};
use crate::engine::value::{Ref, sort_set};

/// CloudFront takes 15 minutes and more to deploy a change on AWS.
const DEPLOY: Duration = Duration::from_secs(60 * 60);
/// Concurrent tag reads while listing distributions.
const CONCURRENCY: usize = 8;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OriginProps {
    pub id: String,
    /// S3 (or any non-API) origin: its domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_access_control_id: Option<Ref>,
    /// API Gateway origin: the REST API id and stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Ref>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BehaviorProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_pattern: Option<String>,
    pub target_origin_id: String,
    pub viewer_protocol_policy: String,
    pub allowed_methods: Vec<String>,
    pub compress: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_request_policy_id: Option<String>,
    /// CloudFront Functions run on this behaviour's requests or responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionAssociationProps>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionAssociationProps {
    /// `viewer-request` or `viewer-response`.
    pub event_type: String,
    pub function_arn: Ref,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponseProps {
    pub error_code: i32,
    pub response_code: String,
    pub response_page_path: String,
    pub error_caching_min_ttl: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DistributionProps {
    pub comment: String,
    pub enabled: bool,
    pub price_class: String,
    pub default_root_object: String,
    pub http_version: String,
    pub ipv6: bool,
    pub aliases: Vec<String>,
    /// Always written (`null` without one): a removed certificate is compared.
    pub certificate_arn: Option<String>,
    pub origins: Vec<OriginProps>,
    pub default_behavior: BehaviorProps,
    pub behaviors: Vec<BehaviorProps>,
    pub error_responses: Vec<ErrorResponseProps>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for DistributionProps {
    const KIND: &'static str = "cloudfront.distribution";
}

pub struct Distribution;

/// `<api>.execute-api.<region>.amazonaws.com[.cn]`.
fn api_domain(api_id: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("{api_id}.execute-api.{region}.{suffix}")
}

/// The API id of an API Gateway domain of this region.
fn api_id_of(domain: &str, region: &str) -> Option<String> {
    let (id, _) = domain.split_once('.')?;
    (api_domain(id, region) == domain && !id.is_empty()).then(|| id.to_string())
}

fn methods(list: &[String]) -> Result<AllowedMethods> {
    let cached = CachedMethods::builder().quantity(2).items(Method::Get).items(Method::Head).build()?;
    Ok(AllowedMethods::builder()
        .quantity(list.len() as i32)
        .set_items(Some(list.iter().map(|m| Method::from(m.as_str())).collect()))
        .cached_methods(cached)
        .build()?)
}

/// The value of an optional reference (resolved by then).
fn resolved(r: &Option<Ref>) -> Result<Option<String>> {
    Ok(r.as_ref().map(Ref::get).transpose()?.cloned())
}

fn origin(p: &OriginProps, region: &str) -> Result<Origin> {
    if let (Some(api), Some(stage)) = (resolved(&p.api_id)?, resolved(&p.stage)?) {
        let tls = OriginSslProtocols::builder().quantity(1).items(SslProtocol::TlSv12).build()?;
        return Ok(Origin::builder()
            .id(&p.id)
            .domain_name(api_domain(&api, region))
            .origin_path(format!("/{stage}"))
            .custom_origin_config(
                CustomOriginConfig::builder()
                    .http_port(80)
                    .https_port(443)
                    .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                    .origin_ssl_protocols(tls)
                    .build()?,
            )
            .build()?);
    }
    Ok(Origin::builder()
        .id(&p.id)
        .domain_name(resolved(&p.domain_name)?.unwrap_or_default())
        .origin_path("")
        // With an origin access control the legacy identity stays empty.
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .set_origin_access_control_id(resolved(&p.origin_access_control_id)?)
        .build()?)
}

fn function_associations(list: &[FunctionAssociationProps]) -> Result<FunctionAssociations> {
    let items: Vec<FunctionAssociation> = list
        .iter()
        .map(|f| {
            Ok(FunctionAssociation::builder()
                .event_type(EventType::from(f.event_type.as_str()))
                .function_arn(f.function_arn.get()?)
                .build()?)
        })
        .collect::<Result<_>>()?;
    Ok(list!(FunctionAssociations, items))
}

/// A default or path behaviour from its props: two SDK types, one builder
/// shape.
macro_rules! behavior {
    ($builder:expr, $b:expr) => {{
        let b: &BehaviorProps = $b;
        $builder
            .target_origin_id(&b.target_origin_id)
            .viewer_protocol_policy(ViewerProtocolPolicy::from(b.viewer_protocol_policy.as_str()))
            .allowed_methods(methods(&b.allowed_methods)?)
            .compress(b.compress)
            .set_cache_policy_id(b.cache_policy_id.clone())
            .set_origin_request_policy_id(b.origin_request_policy_id.clone())
            .function_associations(function_associations(&b.functions)?)
            .build()?
    }};
}

/// Our config over `base` (the live one on update): managed fields are
/// replaced, the rest (logging, restrictions, WAF...) kept as they are.
fn distribution_config(
    p: &DistributionProps, caller_reference: &str, base: Option<&DistributionConfig>, region: &str,
) -> Result<DistributionConfig> {
    let origins: Vec<Origin> = p.origins.iter().map(|o| origin(o, region)).collect::<Result<_>>()?;
    let default = behavior!(DefaultCacheBehavior::builder(), &p.default_behavior);
    let behaviors: Vec<CacheBehavior> = p
        .behaviors
        .iter()
        .map(|b| {
            let path = CacheBehavior::builder().path_pattern(b.path_pattern.clone().unwrap_or_default());
            Ok(behavior!(path, b))
        })
        .collect::<Result<_>>()?;
    let errors: Vec<CustomErrorResponse> = p
        .error_responses
        .iter()
        .map(|e| {
            Ok(CustomErrorResponse::builder()
                .error_code(e.error_code)
                .response_code(&e.response_code)
                .response_page_path(&e.response_page_path)
                .error_caching_min_ttl(e.error_caching_min_ttl)
                .build()?)
        })
        .collect::<Result<_>>()?;
    let cert = match &p.certificate_arn {
        Some(arn) => ViewerCertificate::builder()
            .acm_certificate_arn(arn)
            .ssl_support_method(SslSupportMethod::SniOnly)
            .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
            .build(),
        None => ViewerCertificate::builder().cloud_front_default_certificate(true).build(),
    };
    let b = DistributionConfig::builder()
        .caller_reference(caller_reference)
        .comment(&p.comment)
        .enabled(p.enabled)
        .price_class(PriceClass::from(p.price_class.as_str()))
        .default_root_object(&p.default_root_object)
        .http_version(HttpVersion::from(p.http_version.as_str()))
        .is_ipv6_enabled(p.ipv6)
        .aliases(list!(Aliases, p.aliases.clone()))
        .viewer_certificate(cert)
        .origins(list!(Origins, origins))
        .default_cache_behavior(default)
        .cache_behaviors(list!(CacheBehaviors, behaviors))
        .custom_error_responses(list!(CustomErrorResponses, errors));
    let b = match base {
        Some(c) => b
            .set_logging(c.logging().cloned())
            .set_restrictions(c.restrictions().cloned())
            .set_web_acl_id(c.web_acl_id().map(str::to_string))
            .set_origin_groups(c.origin_groups().cloned())
            .set_continuous_deployment_policy_id(c.continuous_deployment_policy_id().map(str::to_string))
            .set_staging(c.staging()),
        None => b,
    };
    Ok(b.build()?)
}

/// The props of a live config, in the desired shape; `tags` are the
/// visible ones.
fn dist_props(c: &DistributionConfig, tags: Tags, region: &str) -> DistributionProps {
    let behavior = |path: Option<&str>,
                    target: &str,
                    vpp: &ViewerProtocolPolicy,
                    am: Option<&AllowedMethods>,
                    compress: Option<bool>,
                    cache: Option<&str>,
                    orp: Option<&str>,
                    fns: Option<&FunctionAssociations>| {
        let mut allowed: Vec<String> =
            am.map(|m| m.items().iter().map(|x| x.as_str().to_string()).collect()).unwrap_or_default();
        allowed.sort();
        BehaviorProps {
            path_pattern: path.map(str::to_string),
            target_origin_id: target.to_string(),
            viewer_protocol_policy: vpp.as_str().to_string(),
            allowed_methods: allowed,
            compress: compress.unwrap_or(false),
            cache_policy_id: cache.filter(|s| !s.is_empty()).map(str::to_string),
            origin_request_policy_id: orp.filter(|s| !s.is_empty()).map(str::to_string),
            functions: fns
                .map(|f| f.items())
                .unwrap_or_default()
                .iter()
                .map(|f| FunctionAssociationProps {
                    event_type: f.event_type().as_str().to_string(),
                    function_arn: f.function_arn().into(),
                })
                .collect(),
        }
    };
    let mut origins: Vec<OriginProps> = c
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let api = o.custom_origin_config().and(api_id_of(o.domain_name(), region));
            match api {
                Some(api_id) => OriginProps {
                    id: o.id().to_string(),
                    api_id: Some(api_id.into()),
                    stage: o.origin_path().map(|p| p.trim_start_matches('/').into()),
                    ..OriginProps::default()
                },
                None => OriginProps {
                    id: o.id().to_string(),
                    domain_name: Some(o.domain_name().into()),
                    origin_access_control_id: o.origin_access_control_id().filter(|s| !s.is_empty()).map(Ref::from),
                    ..OriginProps::default()
                },
            }
        })
        .collect();
    origins.sort_by(|a, b| a.id.cmp(&b.id));
    let default_behavior = c
        .default_cache_behavior()
        .map(|d| {
            behavior(
                None,
                d.target_origin_id(),
                d.viewer_protocol_policy(),
                d.allowed_methods(),
                d.compress(),
                d.cache_policy_id(),
                d.origin_request_policy_id(),
                d.function_associations(),
            )
        })
        .unwrap_or_default();
    let mut behaviors: Vec<BehaviorProps> = c
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
        .iter()
        .map(|b| {
            behavior(
                Some(b.path_pattern()),
                b.target_origin_id(),
                b.viewer_protocol_policy(),
                b.allowed_methods(),
                b.compress(),
                b.cache_policy_id(),
                b.origin_request_policy_id(),
                b.function_associations(),
            )
        })
        .collect();
    behaviors.sort_by(|a, b| a.path_pattern.cmp(&b.path_pattern));
    let mut error_responses: Vec<ErrorResponseProps> = c
        .custom_error_responses()
        .map(|e| e.items())
        .unwrap_or_default()
        .iter()
        .map(|e| ErrorResponseProps {
            error_code: e.error_code(),
            response_code: e.response_code().unwrap_or_default().to_string(),
            response_page_path: e.response_page_path().unwrap_or_default().to_string(),
            error_caching_min_ttl: e.error_caching_min_ttl().unwrap_or(0),
        })
        .collect();
    error_responses.sort_by_key(|e| e.error_code);
    let mut aliases: Vec<String> = c.aliases().map(|a| a.items().to_vec()).unwrap_or_default();
    aliases.sort();
    DistributionProps {
        comment: c.comment().to_string(),
        enabled: c.enabled(),
        price_class: c.price_class().map(|p| p.as_str().to_string()).unwrap_or_default(),
        default_root_object: c.default_root_object().unwrap_or_default().to_string(),
        http_version: c.http_version().map(|h| h.as_str().to_string()).unwrap_or_default(),
        ipv6: c.is_ipv6_enabled().unwrap_or(false),
        aliases,
        certificate_arn: c
            .viewer_certificate()
            .and_then(|v| v.acm_certificate_arn())
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        origins,
        default_behavior,
        behaviors,
        error_responses,
        tags,
    }
}

/// The distribution's ARN, built from the account and partition (STS), never
/// taken from an API echo: the bucket policy trusts exactly this string.
async fn distribution_arn(aws: &Aws, id: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!("arn:{partition}:cloudfront::{account}:distribution/{id}"))
}

/// The distribution with the attributes others reference.
async fn current(
    aws: &Aws, address: String, dist: &aws_sdk_cloudfront::types::Distribution, props: DistributionProps,
) -> Result<Current<DistributionProps>> {
    Ok(Current::new(address, dist.id(), props)
        .with("arn", distribution_arn(aws, dist.id()).await?)
        .with("domain_name", dist.domain_name())
        .with("status", dist.status()))
}

/// Our distributions (of this stack and region; at `address`, when given)
/// by id, found by tag: one listing, then the tags of each distribution (no
/// batch API exists).
async fn tagged(aws: &Aws, address: Option<&str>) -> Result<Vec<(String, Owned)>> {
    let all = paginated!(aws.cloudfront.list_distributions()).context("listing CloudFront distributions")?;
    let found: Vec<Option<(String, Owned)>> = futures::stream::iter(all)
        .map(|s| async move {
            let got = aws
                .cloudfront
                .list_tags_for_resource()
                .resource(s.arn())
                .send()
                .await
                .aws()
                .or_absent()
                .context("reading distribution tags")?;
            let Some(t) = got.map(|o| tag_map(o.tags())) else {
                return Ok(None);
            };
            // The same stack may be deployed in other regions.
            if t.get(REGION_TAG) != Some(&aws.region) {
                return Ok(None);
            }
            Ok::<_, anyhow::Error>(find::owner(aws, address, t).map(|o| (s.id().to_string(), o)))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Waits until CloudFront reports the distribution Deployed; returns its
/// ETag (`None`: it is gone).
async fn wait_deployed(aws: &Aws, id: &str, rep: &dyn StepReporter) -> Result<Option<String>> {
    wait_for("the distribution to be deployed", DEPLOY, rep, || async {
        match aws.cloudfront.get_distribution().id(id).send().await.aws().or_absent()? {
            None => Ok(Some(None)),
            Some(o) => Ok(o
                .distribution()
                .is_some_and(|d| d.status() == "Deployed")
                .then(|| Some(o.e_tag().unwrap_or_default().to_string()))),
        }
    })
    .await
}

/// The live config changed by `change`, through the ETag protocol; `None`
/// when the distribution is gone.
async fn modify(
    aws: &Aws, id: &str, change: &(dyn Fn(&DistributionConfig) -> Result<DistributionConfig> + Sync),
) -> Result<Option<aws_sdk_cloudfront::types::Distribution>> {
    let out = if_match(
        &format!("updating distribution {id}"),
        || async {
            let Some(got) = aws.cloudfront.get_distribution_config().id(id).send().await.aws().or_absent()? else {
                return Ok(None);
            };
            let current =
                got.distribution_config().ok_or_else(|| anyhow!("CloudFront returned no configuration for {id}"))?;
            Ok(Some((got.e_tag().unwrap_or_default().to_string(), change(current)?)))
        },
        |etag, conf| async move {
            aws.cloudfront.update_distribution().id(id).if_match(etag).distribution_config(conf).send().await.aws()
        },
    )
    .await?;
    Ok(out.and_then(|o| o.distribution().cloned()))
}

/// Disables distribution `id` if it is enabled (an update that deploys
/// again, so none is sent when it is disabled already); false if it is gone.
async fn disable(aws: &Aws, id: &str) -> Result<bool> {
    let Some(got) = aws.cloudfront.get_distribution_config().id(id).send().await.aws().or_absent()? else {
        return Ok(false);
    };
    if got.distribution_config().is_some_and(|c| !c.enabled()) {
        return Ok(true);
    }
    let disabled = modify(aws, id, &|current| {
        let mut c = current.clone();
        c.enabled = false;
        Ok(c)
    })
    .await?;
    Ok(disabled.is_some())
}

/// A distribution as CloudFront has it now.
async fn get(aws: &Aws, id: &str, what: &str) -> Result<aws_sdk_cloudfront::types::Distribution> {
    aws.cloudfront
        .get_distribution()
        .id(id)
        .send()
        .await
        .aws()
        .context(what.to_string())?
        .distribution()
        .cloned()
        .ok_or_else(|| anyhow!("distribution {id} disappeared"))
}

#[async_trait]
impl Kind for Distribution {
    type Props = DistributionProps;

    fn info(&self) -> KindInfo {
        // The disable and its deployment (minutes on AWS) start a destroy,
        // beside the deletes of the site and the web tier.
        KindInfo { weight: 5, early_release: true, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        // Sets, in the order CloudFront does not promise to keep.
        let sort_by = |v: Option<&mut Value>, key: &str| {
            if let Some(Value::Array(a)) = v {
                a.sort_by(|x, y| x[key].to_string().cmp(&y[key].to_string()));
            }
        };
        sort_by(props.get_mut("origins"), "id");
        sort_by(props.get_mut("behaviors"), "path_pattern");
        sort_by(props.get_mut("error_responses"), "error_code");
        sort_set(props, "aliases");
        if let Some(b) = props.get_mut("default_behavior") {
            sort_set(b, "allowed_methods");
        }
        if let Some(Value::Array(list)) = props.get_mut("behaviors") {
            list.iter_mut().for_each(|b| sort_set(b, "allowed_methods"));
        }
    }

    /// No monthly fee: data out and requests, at the rates of the price
    /// class's cheapest edges (North America and Europe).
    fn cost(&self, p: &DistributionProps, prices: &Prices) -> Option<Cost> {
        let gb = prices.global_usd(&["cloudfront", "data_out_per_gb", "north_america"]);
        let req = prices.global_usd(&["cloudfront", "https_requests_per_10k", "north_america"]);
        Some(match (gb, req) {
            (Ok(gb), Ok(req)) => Cost::Usage {
                basis: format!(
                    "{}: {} per GB out + {} per 10K HTTPS requests (North America, Europe)",
                    p.price_class,
                    money(gb),
                    money(req)
                ),
            },
            (Err(reason), _) | (_, Err(reason)) => Cost::Unknown { reason },
        })
    }

    /// A behaviour turning to plain HTTP for viewers (`allow-all`).
    fn widens(&self, before: Option<&DistributionProps>, after: &DistributionProps) -> Vec<String> {
        let behaviors = |p: &DistributionProps| {
            std::iter::once(&p.default_behavior).chain(&p.behaviors).cloned().collect::<Vec<BehaviorProps>>()
        };
        let was = before.map(behaviors).unwrap_or_default();
        behaviors(after)
            .into_iter()
            .filter(|b| b.viewer_protocol_policy == "allow-all")
            .filter(|b| {
                !was.iter().any(|w| w.path_pattern == b.path_pattern && w.viewer_protocol_policy == "allow-all")
            })
            .map(|b| format!("serves {} over plain HTTP (allow-all)", b.path_pattern.as_deref().unwrap_or("*")))
            .collect()
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DistributionProps>>> {
        let reads = tagged(aws, address).await?.into_iter().map(|(id, owner)| async move {
            let Some(got) = aws.cloudfront.get_distribution().id(&id).send().await.aws().or_absent()? else {
                return Ok(None);
            };
            let Some((dist, conf)) = got.distribution().and_then(|d| Some((d, d.distribution_config()?))) else {
                return Ok(None);
            };
            let p = dist_props(conf, owner.tags, &aws.region);
            Ok::<_, anyhow::Error>(Some(current(aws, owner.address, dist, p).await?))
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<DistributionProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<DistributionProps>> {
        let p = &d.props;
        let mut t = aws.tags_for(&d.address, &p.tags);
        t.insert(REGION_TAG.into(), aws.region.clone());
        // Unique per attempt: CloudFront refuses a reused reference with a
        // different config; a lost response is resolved by the tag look-up.
        let reference =
            format!("infra:{}:{}:{}", aws.stack, d.address, time::OffsetDateTime::now_utc().unix_timestamp_nanos());
        let conf = distribution_config(p, &reference, None, &aws.region)?;
        let with_tags = DistributionConfigWithTags::builder().distribution_config(conf).tags(cf_tags(&t)).build();
        let created = create_once(
            &d.address,
            || async {
                let out = aws
                    .cloudfront_once
                    .create_distribution_with_tags()
                    .distribution_config_with_tags(with_tags.clone())
                    .send()
                    .await
                    .aws()?;
                Ok(out.distribution().map(|x| x.id().to_string()).unwrap_or_default())
            },
            || async {
                let found = tagged(aws, Some(&d.address)).await?;
                Ok(found.into_iter().next().map(|(id, _)| id))
            },
        )
        .await?;
        if ctx.options.wait {
            wait_deployed(aws, &created, ctx).await?;
        }
        let dist = get(aws, &created, "reading the new distribution").await?;
        current(aws, d.address.clone(), &dist, p.clone()).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<DistributionProps>, l: &Current<DistributionProps>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<DistributionProps>> {
        let p = &d.props;
        let region = aws.region.clone();
        let config_changed = changed.iter().any(|c| c != "tags");
        let dist = if config_changed {
            modify(aws, &l.id, &|current| distribution_config(p, current.caller_reference(), Some(current), &region))
                .await?
                .ok_or_else(|| anyhow!("distribution {} disappeared", l.id))?
        } else {
            get(aws, &l.id, "reading the distribution").await?
        };
        // Tags are addressed by the ARN CloudFront reports for the resource.
        tags::sync(&Tagging, aws, dist.arn(), &l.props.tags, &p.tags).await?;
        if ctx.options.wait && config_changed {
            wait_deployed(aws, &l.id, ctx).await?;
        }
        current(aws, d.address.clone(), &dist, p.clone()).await
    }

    /// The site's root answers 200 through the distribution, as a visitor
    /// gets it.
    async fn verify(&self, _aws: &Aws, l: &Current<DistributionProps>, _all: &[Live]) -> Result<Vec<Finding>> {
        if !l.props.enabled {
            return Ok(Vec::new());
        }
        let domain = l.attr("domain_name").unwrap_or_default();
        let check = "GET / through CloudFront";
        Ok(vec![match probe::send("GET", &format!("https://{domain}/"), None).await {
            Ok(a) => Finding::new(&l.address, check, a.status == 200, a.summary()),
            Err(e) => Finding::new(&l.address, check, false, format!("{e:#}")),
        }])
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        match change.action {
            Action::Delete => vec![
                "disabled as the run starts (the disable deploys for minutes), deleted once nothing uses it".into(),
            ],
            _ => Vec::new(),
        }
    }

    /// Disables the distribution: its deployment runs while what uses it
    /// (the site, the web tier) is deleted; the delete waits for it.
    async fn release(&self, aws: &Aws, l: &Current<DistributionProps>, _ctx: &StepContext<'_>) -> Result<()> {
        disable(aws, &l.id).await.map(|_| ())
    }

    async fn delete(&self, aws: &Aws, l: &Current<DistributionProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let id = &l.id;
        for attempt in 1..=super::ETAG_ATTEMPTS {
            // 1. Disable (CloudFront deletes only disabled distributions),
            // unless the release did.
            if !disable(aws, id).await? {
                return Ok(None);
            }
            // 2. Wait until the disabled state is deployed everywhere.
            let Some(etag) = wait_deployed(aws, id, ctx).await? else {
                return Ok(None);
            };
            // 3. Delete with the fresh ETag.
            match aws.cloudfront.delete_distribution().id(id).if_match(&etag).send().await.aws().or_absent() {
                Ok(_) => return Ok(None),
                Err(e)
                    if (e.is("PreconditionFailed") || e.is("DistributionNotDisabled"))
                        && attempt < super::ETAG_ATTEMPTS =>
                {
                    ctx.status("the distribution changed meanwhile; again");
                }
                Err(e) => return Err(anyhow!(e).context(format!("deleting distribution {id}"))),
            }
        }
        bail!("distribution {id} kept changing while being deleted; run destroy again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_domains_round_trip() {
        let d = api_domain("abc123", "eu-west-1");
        assert_eq!(d, "abc123.execute-api.eu-west-1.amazonaws.com");
        assert_eq!(api_id_of(&d, "eu-west-1").as_deref(), Some("abc123"));
        assert_eq!(api_id_of(&d, "us-east-1"), None);
        assert_eq!(api_id_of("b.s3.us-east-1.amazonaws.com", "us-east-1"), None);
    }

    #[test]
    fn config_round_trips_to_the_same_props() {
        let p: DistributionProps = serde_json::from_value(json!({
            "comment": "shop frontend", "enabled": true, "price_class": "PriceClass_100",
            "default_root_object": "index.html", "http_version": "http2and3", "ipv6": true,
            "aliases": ["www.example.com"],
            "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "origins": [
                {"id": "api", "api_id": "a1b2c3", "stage": "prod"},
                {"id": "s3-site", "domain_name": "b.s3.us-east-1.amazonaws.com", "origin_access_control_id": "E2OAC"},
            ],
            "default_behavior": {"target_origin_id": "s3-site", "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD"], "compress": true, "cache_policy_id": "c1",
                "functions": [{"event_type": "viewer-request",
                    "function_arn": "arn:aws:cloudfront::123456789012:function/shop-spa"}]},
            "behaviors": [{"path_pattern": "/api/*", "target_origin_id": "api", "viewer_protocol_policy": "https-only",
                "allowed_methods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"], "compress": true,
                "cache_policy_id": "c2", "origin_request_policy_id": "o1"}],
            "error_responses": [{"error_code": 403, "response_code": "200", "response_page_path": "/index.html", "error_caching_min_ttl": 0}],
        }))
        .unwrap();
        let c = distribution_config(&p, "ref", None, "us-east-1").unwrap();
        let back = dist_props(&c, Tags::new(), "us-east-1");
        let mut want = json!(p);
        let mut got = json!(back);
        Distribution.normalize(&mut want);
        Distribution.normalize(&mut got);
        assert_eq!(want, got);
        assert_eq!(c.origins().unwrap().items()[0].origin_path(), Some("/prod"));
    }
}
