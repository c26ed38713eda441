//! CloudFront: the origin access control (how the distribution signs its
//! requests to the private bucket) and the distribution itself.
//!
//! CloudFront is global: besides `infra:stack` and `infra:address`, the
//! distribution carries `infra:region`, so the same stack name deployed in
//! two regions keeps two distributions apart. Origin access controls take no
//! tags; ownership is written in their description.
//!
//! Every change goes through the ETag protocol: read the config and its
//! ETag, send the change with `IfMatch`, and start over when another writer
//! got in between (PreconditionFailed).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomErrorResponse,
    CustomErrorResponses, CustomOriginConfig, DefaultCacheBehavior, DistributionConfig,
    DistributionConfigWithTags, HttpVersion, Method, MinimumProtocolVersion, Origin,
    OriginAccessControlConfig, OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, OriginProtocolPolicy, OriginSslProtocols, Origins,
    PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod, Tag, TagKeys, Tags as CfTags,
    ViewerCertificate, ViewerProtocolPolicy,
};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::errors::{AwsError, AwsResultExt};
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, create_once, delete_guarded, wait_for};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(OriginAccessControl), Box::new(Distribution)]
}

/// Tag naming the region of a stack's global (CloudFront) resources.
pub const REGION_TAG: &str = "infra:region";

/// CloudFront takes 15 minutes and more to deploy a change on AWS.
const DEPLOY: Duration = Duration::from_secs(60 * 60);
/// How long an origin access control may stay in use by a distribution
/// that is being deleted.
const RELEASE: Duration = Duration::from_secs(30 * 60);
/// Concurrent tag reads while listing distributions.
const CONCURRENCY: usize = 8;
/// Attempts of a read-modify-write cycle that loses the ETag race.
const ETAG_ATTEMPTS: usize = 5;

fn props<T: for<'de> Deserialize<'de>>(d: &Resource) -> Result<T> {
    serde_json::from_value(d.props.clone())
        .with_context(|| format!("internal error: bad properties for {}", d.address))
}

fn ignore_not_found<T>(r: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------- origin access control

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OacProps {
    name: String,
    origin_type: String,
    signing_behavior: String,
    signing_protocol: String,
}

/// The description that marks an origin access control as ours.
fn oac_description(aws: &Aws, address: &str) -> String {
    format!(
        "infra stack={} region={} address={address}",
        aws.stack, aws.region
    )
}

/// The address written in an origin access control's description, if it
/// belongs to this stack and region.
fn oac_owner<'a>(stack: &str, region: &str, description: &'a str) -> Option<&'a str> {
    let mut words = description.split_whitespace();
    if words.next() != Some("infra") {
        return None;
    }
    let (mut stack_, mut region_, mut address) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("stack", v)) => stack_ = Some(v),
            Some(("region", v)) => region_ = Some(v),
            Some(("address", v)) => address = Some(v),
            _ => {}
        }
    }
    (stack_ == Some(stack) && region_ == Some(region))
        .then_some(address)
        .flatten()
}

fn oac_config(aws: &Aws, address: &str, p: &OacProps) -> Result<OriginAccessControlConfig> {
    Ok(OriginAccessControlConfig::builder()
        .name(&p.name)
        .description(oac_description(aws, address))
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::from(
            p.origin_type.as_str(),
        ))
        .signing_behavior(OriginAccessControlSigningBehaviors::from(
            p.signing_behavior.as_str(),
        ))
        .signing_protocol(OriginAccessControlSigningProtocols::from(
            p.signing_protocol.as_str(),
        ))
        .build()?)
}

struct OriginAccessControl;

impl OriginAccessControl {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let items: Vec<_> = aws
            .cloudfront
            .list_origin_access_controls()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("listing origin access controls")?;
        Ok(items
            .into_iter()
            .filter_map(|o| {
                let addr = oac_owner(&aws.stack, &aws.region, o.description())?.to_string();
                if address.is_some_and(|a| a != addr) {
                    return None;
                }
                let p = OacProps {
                    name: o.name().to_string(),
                    origin_type: o.origin_access_control_origin_type().as_str().to_string(),
                    signing_behavior: o.signing_behavior().as_str().to_string(),
                    signing_protocol: o.signing_protocol().as_str().to_string(),
                };
                Some(oac_live(&addr, o.id(), &p))
            })
            .collect())
    }
}

fn oac_live(address: &str, id: &str, p: &OacProps) -> Live {
    let mut attrs = Map::new();
    attrs.insert("id".into(), json!(id));
    Live {
        address: address.to_string(),
        kind: "cloudfront.origin_access_control".into(),
        id: id.to_string(),
        props: json!(p),
        attrs,
    }
}

#[async_trait]
impl Kind for OriginAccessControl {
    fn name(&self) -> &'static str {
        "cloudfront.origin_access_control"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            // Every setting can be changed in place (the name is unique per account).
            replace_fields: &[],
            weight: 1,
            service: "cloudfront",
            ..KindInfo::default()
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: OacProps = props(d)?;
        let conf = oac_config(aws, &d.address, &p)?;
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .cloudfront_once
                    .create_origin_access_control()
                    .origin_access_control_config(conf.clone())
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .origin_access_control()
                    .map(|o| o.id().to_string())
                    .unwrap_or_default())
            },
            || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|l| l.id))
            },
        )
        .await?;
        Ok(oac_live(&d.address, &id, &p))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _changed: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: OacProps = props(d)?;
        let conf = oac_config(aws, &d.address, &p)?;
        for attempt in 1..=ETAG_ATTEMPTS {
            let got = aws
                .cloudfront
                .get_origin_access_control()
                .id(&l.id)
                .send()
                .await
                .aws()
                .context("reading the origin access control")?;
            let r = aws
                .cloudfront
                .update_origin_access_control()
                .id(&l.id)
                .if_match(got.e_tag().unwrap_or_default())
                .origin_access_control_config(conf.clone())
                .send()
                .await
                .aws();
            match r {
                Ok(_) => break,
                Err(e) if e.is("PreconditionFailed") && attempt < ETAG_ATTEMPTS => continue,
                Err(e) => return Err(anyhow!(e).context("updating the origin access control")),
            }
        }
        Ok(oac_live(&d.address, &l.id, &p))
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        // Still in use while a distribution that used it is being deleted.
        delete_guarded(
            "deleting the origin access control",
            &["OriginAccessControlInUse", "PreconditionFailed"],
            RELEASE,
            rep,
            || async {
                Ok(ignore_not_found(
                    aws.cloudfront
                        .get_origin_access_control()
                        .id(&l.id)
                        .send()
                        .await
                        .aws(),
                )?
                .map(|got| got.e_tag().unwrap_or_default().to_string()))
            },
            |etag| async move {
                aws.cloudfront_once
                    .delete_origin_access_control()
                    .id(&l.id)
                    .if_match(etag)
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

// ---------------------------------------------------------------- distribution

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct OriginProps {
    id: String,
    /// S3 (or any non-API) origin: its domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin_access_control_id: Option<String>,
    /// API Gateway origin: the REST API id and stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct BehaviorProps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_pattern: Option<String>,
    target_origin_id: String,
    viewer_protocol_policy: String,
    allowed_methods: Vec<String>,
    compress: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache_policy_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin_request_policy_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ErrorResponseProps {
    error_code: i32,
    response_code: String,
    response_page_path: String,
    error_caching_min_ttl: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct DistProps {
    comment: String,
    enabled: bool,
    price_class: String,
    default_root_object: String,
    http_version: String,
    ipv6: bool,
    aliases: Vec<String>,
    certificate_arn: Option<String>,
    origins: Vec<OriginProps>,
    default_behavior: BehaviorProps,
    behaviors: Vec<BehaviorProps>,
    error_responses: Vec<ErrorResponseProps>,
    #[serde(default)]
    tags: Tags,
}

/// `<api>.execute-api.<region>.amazonaws.com[.cn]`.
fn api_domain(api_id: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{api_id}.execute-api.{region}.{suffix}")
}

/// The API id of an API Gateway domain of this region.
fn api_id_of(domain: &str, region: &str) -> Option<String> {
    let (id, _) = domain.split_once('.')?;
    (api_domain(id, region) == domain && !id.is_empty()).then(|| id.to_string())
}

fn methods(list: &[String]) -> Result<AllowedMethods> {
    let cached = CachedMethods::builder()
        .quantity(2)
        .items(Method::Get)
        .items(Method::Head)
        .build()?;
    Ok(AllowedMethods::builder()
        .quantity(list.len() as i32)
        .set_items(Some(
            list.iter().map(|m| Method::from(m.as_str())).collect(),
        ))
        .cached_methods(cached)
        .build()?)
}

fn origin(p: &OriginProps, region: &str) -> Result<Origin> {
    if let (Some(api), Some(stage)) = (&p.api_id, &p.stage) {
        let tls = OriginSslProtocols::builder()
            .quantity(1)
            .items(SslProtocol::TlSv12)
            .build()?;
        return Ok(Origin::builder()
            .id(&p.id)
            .domain_name(api_domain(api, region))
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
        .domain_name(p.domain_name.clone().unwrap_or_default())
        .origin_path("")
        // With an origin access control the legacy identity stays empty.
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .set_origin_access_control_id(p.origin_access_control_id.clone())
        .build()?)
}

/// Our config over `base` (the live one on update): managed fields are
/// replaced, the rest (logging, restrictions, WAF...) kept as they are.
fn distribution_config(
    p: &DistProps,
    caller_reference: &str,
    base: Option<&DistributionConfig>,
    region: &str,
) -> Result<DistributionConfig> {
    let origins: Vec<Origin> = p
        .origins
        .iter()
        .map(|o| origin(o, region))
        .collect::<Result<_>>()?;
    let d = &p.default_behavior;
    let default = DefaultCacheBehavior::builder()
        .target_origin_id(&d.target_origin_id)
        .viewer_protocol_policy(ViewerProtocolPolicy::from(
            d.viewer_protocol_policy.as_str(),
        ))
        .allowed_methods(methods(&d.allowed_methods)?)
        .compress(d.compress)
        .set_cache_policy_id(d.cache_policy_id.clone())
        .set_origin_request_policy_id(d.origin_request_policy_id.clone())
        .build()?;
    let behaviors: Vec<CacheBehavior> = p
        .behaviors
        .iter()
        .map(|b| {
            Ok(CacheBehavior::builder()
                .path_pattern(b.path_pattern.clone().unwrap_or_default())
                .target_origin_id(&b.target_origin_id)
                .viewer_protocol_policy(ViewerProtocolPolicy::from(
                    b.viewer_protocol_policy.as_str(),
                ))
                .allowed_methods(methods(&b.allowed_methods)?)
                .compress(b.compress)
                .set_cache_policy_id(b.cache_policy_id.clone())
                .set_origin_request_policy_id(b.origin_request_policy_id.clone())
                .build()?)
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
        None => ViewerCertificate::builder()
            .cloud_front_default_certificate(true)
            .build(),
    };
    let b = DistributionConfig::builder()
        .caller_reference(caller_reference)
        .comment(&p.comment)
        .enabled(p.enabled)
        .price_class(PriceClass::from(p.price_class.as_str()))
        .default_root_object(&p.default_root_object)
        .http_version(HttpVersion::from(p.http_version.as_str()))
        .is_ipv6_enabled(p.ipv6)
        .aliases(
            Aliases::builder()
                .quantity(p.aliases.len() as i32)
                .set_items(Some(p.aliases.clone()))
                .build()?,
        )
        .viewer_certificate(cert)
        .origins(
            Origins::builder()
                .quantity(origins.len() as i32)
                .set_items(Some(origins))
                .build()?,
        )
        .default_cache_behavior(default)
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(behaviors.len() as i32)
                .set_items(Some(behaviors))
                .build()?,
        )
        .custom_error_responses(
            CustomErrorResponses::builder()
                .quantity(errors.len() as i32)
                .set_items(Some(errors))
                .build()?,
        );
    let b = match base {
        Some(c) => b
            .set_logging(c.logging().cloned())
            .set_restrictions(c.restrictions().cloned())
            .set_web_acl_id(c.web_acl_id().map(str::to_string))
            .set_origin_groups(c.origin_groups().cloned())
            .set_continuous_deployment_policy_id(
                c.continuous_deployment_policy_id().map(str::to_string),
            )
            .set_staging(c.staging()),
        None => b,
    };
    Ok(b.build()?)
}

/// The props of a live config, in the desired shape.
fn dist_props(c: &DistributionConfig, t: Tags, region: &str) -> DistProps {
    let behavior = |path: Option<&str>,
                    target: &str,
                    vpp: &ViewerProtocolPolicy,
                    am: Option<&AllowedMethods>,
                    compress: Option<bool>,
                    cache: Option<&str>,
                    orp: Option<&str>| {
        let mut allowed: Vec<String> = am
            .map(|m| m.items().iter().map(|x| x.as_str().to_string()).collect())
            .unwrap_or_default();
        allowed.sort();
        BehaviorProps {
            path_pattern: path.map(str::to_string),
            target_origin_id: target.to_string(),
            viewer_protocol_policy: vpp.as_str().to_string(),
            allowed_methods: allowed,
            compress: compress.unwrap_or(false),
            cache_policy_id: cache.filter(|s| !s.is_empty()).map(str::to_string),
            origin_request_policy_id: orp.filter(|s| !s.is_empty()).map(str::to_string),
        }
    };
    let mut origins: Vec<OriginProps> = c
        .origins()
        .map(|o| o.items())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let api = o
                .custom_origin_config()
                .and(api_id_of(o.domain_name(), region));
            match api {
                Some(api_id) => OriginProps {
                    id: o.id().to_string(),
                    api_id: Some(api_id),
                    stage: o
                        .origin_path()
                        .map(|p| p.trim_start_matches('/').to_string()),
                    ..OriginProps::default()
                },
                None => OriginProps {
                    id: o.id().to_string(),
                    domain_name: Some(o.domain_name().to_string()),
                    origin_access_control_id: o
                        .origin_access_control_id()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
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
    DistProps {
        comment: c.comment().to_string(),
        enabled: c.enabled(),
        price_class: c
            .price_class()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        default_root_object: c.default_root_object().unwrap_or_default().to_string(),
        http_version: c
            .http_version()
            .map(|h| h.as_str().to_string())
            .unwrap_or_default(),
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
        tags: tags::visible(t),
    }
}

fn cf_tags(t: &Tags) -> Result<CfTags> {
    let items: Vec<Tag> = t
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()?;
    Ok(CfTags::builder().set_items(Some(items)).build())
}

/// The distribution's ARN, built from the account and partition (STS), never
/// taken from an API echo: the bucket policy trusts exactly this string.
async fn distribution_arn(aws: &Aws, id: &str) -> Result<String> {
    let (account, partition) = aws.identity().await?;
    Ok(format!(
        "arn:{partition}:cloudfront::{account}:distribution/{id}"
    ))
}

struct Distribution;

struct Found {
    address: String,
    id: String,
    tags: Tags,
}

impl Distribution {
    /// Our distributions (of this stack and region), found by tag: one
    /// listing, then the tags of each distribution (no batch API exists).
    async fn owned(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Found>> {
        let all: Vec<_> = aws
            .cloudfront
            .list_distributions()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("listing CloudFront distributions")?;
        let found: Vec<Option<Found>> = futures::stream::iter(all)
            .map(|s| async move {
                let t = match aws
                    .cloudfront
                    .list_tags_for_resource()
                    .resource(s.arn())
                    .send()
                    .await
                    .aws()
                {
                    Ok(o) => o
                        .tags()
                        .map(|t| t.items())
                        .unwrap_or_default()
                        .iter()
                        .map(|t| {
                            (
                                t.key().to_string(),
                                t.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect::<Tags>(),
                    Err(e) if e.not_found() => return Ok(None),
                    Err(e) => return Err(anyhow!(e).context("reading distribution tags")),
                };
                let addr = tags::owner(aws, &t)
                    .filter(|_| t.get(REGION_TAG) == Some(&aws.region))
                    .filter(|a| address.is_none_or(|x| x == *a))
                    .map(str::to_string);
                Ok::<_, anyhow::Error>(addr.map(|address| Found {
                    address,
                    id: s.id().to_string(),
                    tags: t,
                }))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn live(&self, aws: &Aws, f: Found) -> Result<Option<Live>> {
        let Some(got) = ignore_not_found(
            aws.cloudfront
                .get_distribution()
                .id(&f.id)
                .send()
                .await
                .aws(),
        )?
        else {
            return Ok(None);
        };
        let Some(dist) = got.distribution() else {
            return Ok(None);
        };
        let Some(conf) = dist.distribution_config() else {
            return Ok(None);
        };
        let p = dist_props(conf, f.tags, &aws.region);
        Ok(Some(self.to_live(aws, &f.address, dist, &p).await?))
    }

    async fn to_live(
        &self,
        aws: &Aws,
        address: &str,
        dist: &aws_sdk_cloudfront::types::Distribution,
        p: &DistProps,
    ) -> Result<Live> {
        let mut attrs = Map::new();
        attrs.insert("id".into(), json!(dist.id()));
        attrs.insert("arn".into(), json!(distribution_arn(aws, dist.id()).await?));
        attrs.insert("domain_name".into(), json!(dist.domain_name()));
        attrs.insert("status".into(), json!(dist.status()));
        Ok(Live {
            address: address.to_string(),
            kind: "cloudfront.distribution".into(),
            id: dist.id().to_string(),
            props: json!(p),
            attrs,
        })
    }

    /// Waits until CloudFront reports the distribution Deployed; returns its ETag.
    async fn wait_deployed(
        &self,
        aws: &Aws,
        id: &str,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        wait_for("the distribution to be deployed", DEPLOY, rep, || async {
            match ignore_not_found(aws.cloudfront.get_distribution().id(id).send().await.aws())? {
                None => Ok(Some(None)),
                Some(o) => Ok(o
                    .distribution()
                    .is_some_and(|d| d.status() == "Deployed")
                    .then(|| Some(o.e_tag().unwrap_or_default().to_string()))),
            }
        })
        .await
    }

    /// Get config -> ETag -> update with IfMatch, again if another writer
    /// changed it in between. `change` edits the live config.
    async fn modify(
        &self,
        aws: &Aws,
        id: &str,
        change: &(dyn Fn(&DistributionConfig) -> Result<DistributionConfig> + Sync),
    ) -> Result<Option<aws_sdk_cloudfront::types::Distribution>> {
        for attempt in 1..=ETAG_ATTEMPTS {
            let Some(got) = ignore_not_found(
                aws.cloudfront
                    .get_distribution_config()
                    .id(id)
                    .send()
                    .await
                    .aws(),
            )?
            else {
                return Ok(None);
            };
            let current = got
                .distribution_config()
                .ok_or_else(|| anyhow!("CloudFront returned no configuration for {id}"))?;
            let r = aws
                .cloudfront
                .update_distribution()
                .id(id)
                .if_match(got.e_tag().unwrap_or_default())
                .distribution_config(change(current)?)
                .send()
                .await
                .aws();
            match r {
                Ok(o) => return Ok(o.distribution().cloned()),
                Err(e) if e.is("PreconditionFailed") && attempt < ETAG_ATTEMPTS => continue,
                Err(e) => return Err(anyhow!(e).context(format!("updating distribution {id}"))),
            }
        }
        unreachable!("the last attempt returns")
    }
}

#[async_trait]
impl Kind for Distribution {
    fn name(&self) -> &'static str {
        "cloudfront.distribution"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &[],
            weight: 5,
            service: "cloudfront",
            ..KindInfo::default()
        }
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
        if let Some(Value::Array(a)) = props.get_mut("aliases") {
            a.sort_by_key(|v| v.to_string());
        }
        let sort_methods = |b: &mut Value| {
            if let Some(Value::Array(m)) = b.get_mut("allowed_methods") {
                m.sort_by_key(|v| v.to_string());
            }
        };
        if let Some(b) = props.get_mut("default_behavior") {
            sort_methods(b);
        }
        if let Some(Value::Array(list)) = props.get_mut("behaviors") {
            list.iter_mut().for_each(sort_methods);
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let found = self.owned(aws, None).await?;
        let reads = found.into_iter().map(|f| self.live(aws, f));
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: DistProps = props(d)?;
        let mut t = tags::for_create(aws, &d.address, &d.props);
        t.insert(REGION_TAG.into(), aws.region.clone());
        // Unique per attempt: CloudFront refuses a reused reference with a
        // different config; a lost response is resolved by the tag look-up.
        let reference = format!(
            "infra:{}:{}:{}",
            aws.stack,
            d.address,
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        let conf = distribution_config(&p, &reference, None, &aws.region)?;
        let with_tags = DistributionConfigWithTags::builder()
            .distribution_config(conf)
            .tags(cf_tags(&t)?)
            .build();
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
                Ok(out
                    .distribution()
                    .map(|x| x.id().to_string())
                    .unwrap_or_default())
            },
            || async {
                Ok(self
                    .owned(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .next()
                    .map(|f| f.id))
            },
        )
        .await?;
        if aws.wait_deployed() {
            self.wait_deployed(aws, &created, rep).await?;
        }
        let got = aws
            .cloudfront
            .get_distribution()
            .id(&created)
            .send()
            .await
            .aws()
            .context("reading the new distribution")?;
        let dist = got
            .distribution()
            .ok_or_else(|| anyhow!("CloudFront returned no distribution {created}"))?;
        self.to_live(aws, &d.address, dist, &p).await
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: DistProps = props(d)?;
        let region = aws.region.clone();
        let config_changed = changed.iter().any(|c| c != "tags");
        let dist = if config_changed {
            self.modify(aws, &l.id, &|current| {
                distribution_config(&p, current.caller_reference(), Some(current), &region)
            })
            .await?
            .ok_or_else(|| anyhow!("distribution {} disappeared", l.id))?
        } else {
            aws.cloudfront
                .get_distribution()
                .id(&l.id)
                .send()
                .await
                .aws()
                .context("reading the distribution")?
                .distribution()
                .cloned()
                .ok_or_else(|| anyhow!("distribution {} disappeared", l.id))?
        };
        let old: DistProps = serde_json::from_value(l.props.clone())?;
        let (set, remove) = tags::delta(&old.tags, &p.tags);
        // Tags are addressed by the ARN CloudFront reports for the resource.
        if !set.is_empty() {
            aws.cloudfront
                .tag_resource()
                .resource(dist.arn())
                .tags(cf_tags(&set)?)
                .send()
                .await
                .aws()
                .context("tagging the distribution")?;
        }
        if !remove.is_empty() {
            aws.cloudfront
                .untag_resource()
                .resource(dist.arn())
                .tag_keys(TagKeys::builder().set_items(Some(remove)).build())
                .send()
                .await
                .aws()
                .context("untagging the distribution")?;
        }
        if aws.wait_deployed() && config_changed {
            self.wait_deployed(aws, &l.id, rep).await?;
        }
        self.to_live(aws, &d.address, &dist, &p).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let id = &l.id;
        for attempt in 1..=ETAG_ATTEMPTS {
            // 1. Disable (CloudFront deletes only disabled distributions).
            let disabled = self
                .modify(aws, id, &|current| {
                    if !current.enabled() {
                        return Ok(current.clone());
                    }
                    let mut c = current.clone();
                    c.enabled = false;
                    Ok(c)
                })
                .await?;
            if disabled.is_none() {
                return Ok(None);
            }
            // 2. Wait until the disabled state is deployed everywhere.
            let Some(etag) = self.wait_deployed(aws, id, rep).await? else {
                return Ok(None);
            };
            // 3. Delete with the fresh ETag.
            match ignore_not_found(
                aws.cloudfront
                    .delete_distribution()
                    .id(id)
                    .if_match(&etag)
                    .send()
                    .await
                    .aws(),
            ) {
                Ok(_) => return Ok(None),
                Err(e)
                    if (e.is("PreconditionFailed") || e.is("DistributionNotDisabled"))
                        && attempt < ETAG_ATTEMPTS =>
                {
                    rep.status("the distribution changed meanwhile; again");
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
    use crate::model::frontend::{API_ORIGIN_ID, S3_ORIGIN_ID};

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
        let p: DistProps = serde_json::from_value(json!({
            "comment": "shop frontend", "enabled": true, "price_class": "PriceClass_100",
            "default_root_object": "index.html", "http_version": "http2and3", "ipv6": true,
            "aliases": ["www.example.com"],
            "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "origins": [
                {"id": API_ORIGIN_ID, "api_id": "a1b2c3", "stage": "prod"},
                {"id": S3_ORIGIN_ID, "domain_name": "b.s3.us-east-1.amazonaws.com", "origin_access_control_id": "E2OAC"},
            ],
            "default_behavior": {"target_origin_id": S3_ORIGIN_ID, "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD"], "compress": true, "cache_policy_id": "c1"},
            "behaviors": [{"path_pattern": "/api/*", "target_origin_id": API_ORIGIN_ID, "viewer_protocol_policy": "https-only",
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

    #[test]
    fn oac_ownership_is_read_from_the_description() {
        let d = "infra stack=shop region=us-east-1 address=frontend.oac";
        assert_eq!(oac_owner("shop", "us-east-1", d), Some("frontend.oac"));
        assert_eq!(
            oac_owner("shop", "eu-west-1", d),
            None,
            "same stack, other region"
        );
        assert_eq!(oac_owner("shop2", "us-east-1", d), None);
        assert_eq!(
            oac_owner("shop", "us-east-1", "stack=shop region=us-east-1 address=x"),
            None
        );
    }
}
