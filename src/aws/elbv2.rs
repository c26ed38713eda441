//! Elastic Load Balancing v2: the Application Load Balancer, the target
//! groups of the web groups, and the listeners (their rules are properties
//! of the listener, so drift in a rule shows as an update of its listener).
//!
//! ELBv2 has no tag filter on its describe calls: a read lists the region's
//! load balancers (or target groups) and asks for their tags in batches of
//! 20, the API's maximum, keeping those of this stack.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ApiAction, ActionTypeEnum, Certificate, FixedResponseActionConfig,
    HostHeaderConditionConfig, IpAddressType, LoadBalancerSchemeEnum, LoadBalancerStateEnum,
    LoadBalancerTypeEnum, Matcher, PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, Rule as ApiRule, RuleCondition, Tag, TargetTypeEnum,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::compute_common::{ignore_not_found, live, live_props, props, sort_array};
use super::errors::AwsResultExt;
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, Codes, create_guarded, retry_on, wait_for};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![
        Box::new(LoadBalancer),
        Box::new(TargetGroup),
        Box::new(Listener),
    ]
}

/// How long something just created may take to be visible to other calls.
const VISIBLE: Duration = Duration::from_secs(120);
/// Cache key of the stack's load balancers, read by the load balancer and
/// listener kinds ([`Aws::cached`]).
const LOAD_BALANCERS: &str = "elbv2.load_balancers";
/// How long a load balancer may take to become active, or to release its
/// network interfaces once deleted.
const SETTLE: Duration = Duration::from_secs(15 * 60);
/// How long a target group may stay in use by a listener being deleted.
const DRAIN: Duration = Duration::from_secs(10 * 60);

fn elb_tags(t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The part of an ARN after `marker` (`loadbalancer/` -> `app/name/id`),
/// which CloudWatch metrics and scaling policies use as identifiers.
fn arn_suffix(arn: &str, marker: &str) -> String {
    arn.split_once(marker)
        .map(|(_, s)| s.to_string())
        .unwrap_or_default()
}

/// Address and visible tags of each ARN of this stack, from `describe_tags`
/// in batches of 20 (run concurrently).
async fn owned(aws: &Aws, arns: Vec<String>) -> Result<HashMap<String, (String, Tags)>> {
    let batches = arns.chunks(20).map(|chunk| async move {
        let r = aws
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .aws();
        let descs = match r {
            Ok(o) => o.tag_descriptions().to_vec(),
            // One of them vanished since it was listed: ask one by one.
            Err(e) if e.not_found() => {
                let mut v = Vec::new();
                for arn in chunk {
                    if let Some(o) = ignore_not_found(
                        aws.elbv2
                            .describe_tags()
                            .resource_arns(arn)
                            .send()
                            .await
                            .aws(),
                    )? {
                        v.extend(o.tag_descriptions().iter().cloned());
                    }
                }
                v
            }
            Err(e) => return Err(anyhow!(e).context("reading load balancing tags")),
        };
        Ok::<_, anyhow::Error>(descs)
    });
    let mut out = HashMap::new();
    for descs in futures::future::try_join_all(batches).await? {
        for d in descs {
            let all: Tags = d
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            if let (Some(arn), Some(addr)) = (d.resource_arn(), tags::owner(aws, &all)) {
                out.insert(
                    arn.to_string(),
                    (addr.to_string(), tags::visible(all.clone())),
                );
            }
        }
    }
    Ok(out)
}

/// Applies a tag change to one ELBv2 resource.
async fn retag(aws: &Aws, arn: &str, old: &Tags, new: &Tags) -> Result<()> {
    let (set, remove) = tags::delta(old, new);
    if !set.is_empty() {
        aws.elbv2
            .add_tags()
            .resource_arns(arn)
            .set_tags(Some(elb_tags(&set)))
            .send()
            .await
            .aws()
            .context("tagging")?;
    }
    if !remove.is_empty() {
        aws.elbv2
            .remove_tags()
            .resource_arns(arn)
            .set_tag_keys(Some(remove))
            .send()
            .await
            .aws()
            .context("untagging")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- Load balancer

#[derive(Serialize, Deserialize)]
struct LbProps {
    name: String,
    scheme: String,
    ip_address_type: String,
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
    #[serde(default)]
    tags: Tags,
}

struct LoadBalancer;

fn lb_attrs(lb: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> Value {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    json!({
        "arn": arn,
        "arn_suffix": arn_suffix(arn, ":loadbalancer/"),
        "dns_name": lb.dns_name(),
        "zone_id": lb.canonical_hosted_zone_id(),
        "name": lb.load_balancer_name(),
    })
}

impl LoadBalancer {
    async fn describe(
        aws: &Aws,
        arn: Option<&str>,
    ) -> Result<Vec<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>> {
        let mut req = aws.elbv2.describe_load_balancers();
        if let Some(a) = arn {
            req = req.load_balancer_arns(a);
        }
        let r = req
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws();
        Ok(ignore_not_found(r)?.unwrap_or_default())
    }

    /// The stack's load balancers, as live resources (uncached: the create
    /// path looks for what an earlier attempt made).
    async fn find(aws: &Aws) -> Result<Vec<Live>> {
        let lbs: Vec<_> = Self::describe(aws, None)
            .await?
            .into_iter()
            .filter(|l| l.r#type() == Some(&LoadBalancerTypeEnum::Application))
            .collect();
        let arns = lbs
            .iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string))
            .collect();
        let mine = owned(aws, arns).await?;
        Ok(lbs
            .iter()
            .filter_map(|lb| {
                let arn = lb.load_balancer_arn()?;
                let (addr, t) = mine.get(arn)?;
                let mut subnets: Vec<String> = lb
                    .availability_zones()
                    .iter()
                    .filter_map(|z| z.subnet_id().map(str::to_string))
                    .collect();
                subnets.sort();
                let mut sgs = lb.security_groups().to_vec();
                sgs.sort();
                let p = LbProps {
                    name: lb.load_balancer_name().unwrap_or_default().into(),
                    scheme: lb.scheme().map(|s| s.as_str()).unwrap_or_default().into(),
                    ip_address_type: lb
                        .ip_address_type()
                        .map(|s| s.as_str())
                        .unwrap_or("ipv4")
                        .into(),
                    subnet_ids: subnets,
                    security_group_ids: sgs,
                    tags: t.clone(),
                };
                Some(live(
                    "elbv2.load_balancer",
                    addr,
                    arn,
                    json!(p),
                    lb_attrs(lb),
                ))
            })
            .collect())
    }
}

#[async_trait]
impl Kind for LoadBalancer {
    fn name(&self) -> &'static str {
        "elbv2.load_balancer"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name", "scheme"],
            // The scheme is part of the name, so the new one can exist next
            // to the old one while the listeners move.
            create_before_destroy: true,
            weight: 10,
            service: "elbv2",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "subnet_ids");
        sort_array(props, "security_group_ids");
    }
    fn notes(&self, change: &Change) -> Vec<String> {
        match change.action {
            Action::Replace => vec![
                "a new load balancer is created first and the listeners move to it; its DNS name changes (update your DNS records)".into(),
            ],
            _ => Vec::new(),
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        Ok(aws
            .cached(LOAD_BALANCERS, || Self::find(aws))
            .await?
            .to_vec())
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        aws.forget(LOAD_BALANCERS);
        let p: LbProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        // CreateLoadBalancer is idempotent for the same name and settings on
        // AWS, not on every endpoint: no blind retry. A load balancer found
        // with this address's tags (set in the create call) after an
        // ambiguous failure, or when the name is taken, is an earlier
        // attempt's.
        let arn = create_guarded(
            "the load balancer",
            Codes {
                exists: &["DuplicateLoadBalancerName"],
                wait: &["SubnetNotFound", "InvalidSubnet", "InvalidSecurityGroup"],
                timeout: VISIBLE,
            },
            rep,
            || async {
                let out = aws
                    .elbv2_once
                    .create_load_balancer()
                    .name(&p.name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(LoadBalancerSchemeEnum::from(p.scheme.as_str()))
                    .ip_address_type(IpAddressType::from(p.ip_address_type.as_str()))
                    .set_subnets(Some(p.subnet_ids.clone()))
                    .set_security_groups(Some(p.security_group_ids.clone()))
                    .set_tags(Some(elb_tags(&t)))
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .load_balancers()
                    .first()
                    .and_then(|l| l.load_balancer_arn())
                    .unwrap_or_default()
                    .to_string())
            },
            || async {
                Ok(Self::find(aws)
                    .await?
                    .into_iter()
                    .find(|l| l.address == d.address && l.props["name"] == json!(p.name))
                    .map(|l| l.id))
            },
        )
        .await
        .with_context(|| {
            format!(
                "load balancer {} in {} (stack {})",
                p.name, aws.region, aws.stack
            )
        })?;
        let lb = wait_for(
            "the load balancer to become active",
            SETTLE,
            rep,
            || async {
                let now = Self::describe(aws, Some(&arn)).await?;
                let Some(lb) = now.into_iter().next() else {
                    return Ok(None);
                };
                match lb.state().and_then(|s| s.code()) {
                    Some(LoadBalancerStateEnum::Active) => Ok(Some(lb)),
                    Some(LoadBalancerStateEnum::Failed) => bail!(
                        "the load balancer failed: {}",
                        lb.state()
                            .and_then(|s| s.reason())
                            .unwrap_or("no reason given")
                    ),
                    _ => Ok(None),
                }
            },
        )
        .await?;
        Ok(live(self.name(), &d.address, &arn, json!(p), lb_attrs(&lb)))
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        aws.forget(LOAD_BALANCERS);
        let mut p: LbProps = props(d)?;
        let old: LbProps = live_props(l)?;
        p.subnet_ids.sort();
        p.security_group_ids.sort();
        if p.subnet_ids != old.subnet_ids {
            aws.elbv2
                .set_subnets()
                .load_balancer_arn(&l.id)
                .set_subnets(Some(p.subnet_ids.clone()))
                .send()
                .await
                .aws()
                .context("moving the load balancer to its subnets")?;
        }
        if p.security_group_ids != old.security_group_ids {
            aws.elbv2
                .set_security_groups()
                .load_balancer_arn(&l.id)
                .set_security_groups(Some(p.security_group_ids.clone()))
                .send()
                .await
                .aws()
                .context("setting the load balancer's security groups")?;
        }
        if p.ip_address_type != old.ip_address_type {
            aws.elbv2
                .set_ip_address_type()
                .load_balancer_arn(&l.id)
                .ip_address_type(IpAddressType::from(p.ip_address_type.as_str()))
                .send()
                .await
                .aws()
                .context("setting the load balancer's IP address type")?;
        }
        retag(aws, &l.id, &old.tags, &p.tags).await?;
        let mut out = l.clone();
        out.props = json!(p);
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        aws.forget(LOAD_BALANCERS);
        ignore_not_found(
            aws.elbv2
                .delete_load_balancer()
                .load_balancer_arn(&l.id)
                .send()
                .await
                .aws(),
        )
        .context("deleting the load balancer")?;
        wait_for("the load balancer to be deleted", SETTLE, rep, || async {
            Ok(Self::describe(aws, Some(&l.id))
                .await?
                .is_empty()
                .then_some(()))
        })
        .await?;
        // Its network interfaces outlive it for a while, and hold on to its
        // security group and subnets: wait until they are released.
        let suffix = arn_suffix(&l.id, ":loadbalancer/");
        if !suffix.is_empty() {
            let description = format!("ELB {suffix}");
            wait_for(
                "the load balancer's network interfaces to be released",
                SETTLE,
                rep,
                || async {
                    let enis = aws
                        .ec2
                        .describe_network_interfaces()
                        .filters(
                            aws_sdk_ec2::types::Filter::builder()
                                .name("description")
                                .values(&description)
                                .build(),
                        )
                        .send()
                        .await
                        .aws()?;
                    Ok(enis.network_interfaces().is_empty().then_some(()))
                },
            )
            .await?;
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------- Target group

#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct HealthCheck {
    protocol: String,
    port: String,
    path: String,
    matcher: String,
    interval: i64,
    timeout: i64,
    healthy_threshold: i64,
    unhealthy_threshold: i64,
}

#[derive(Serialize, Deserialize)]
struct TgProps {
    /// The name is this plus `-` and 4 characters derived from what forces
    /// a replacement, so a replacement can exist next to the old group.
    name_prefix: String,
    port: i64,
    protocol: String,
    vpc_id: String,
    target_type: String,
    health_check: HealthCheck,
    #[serde(default)]
    tags: Tags,
}

struct TargetGroup;

fn tg_attrs(arn: &str, name: &str) -> Value {
    json!({
        "arn": arn,
        "arn_suffix": format!("targetgroup/{}", arn_suffix(arn, ":targetgroup/")),
        "name": name,
    })
}

/// `prefix-xxxx`: the suffix hashes the address, what forces replacement
/// and a salt (bumped when the name is taken).
fn tg_name(aws: &Aws, address: &str, p: &TgProps, salt: u32) -> String {
    let h = crate::model::compute::sha256_hex(&format!(
        "{}/{address}/{}/{}/{}/{}/{salt}",
        aws.stack, p.vpc_id, p.port, p.protocol, p.target_type
    ));
    format!("{}-{}", p.name_prefix, &h[..4])
}

#[async_trait]
impl Kind for TargetGroup {
    fn name(&self) -> &'static str {
        "elbv2.target_group"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name_prefix", "port", "protocol", "vpc_id", "target_type"],
            create_before_destroy: true,
            weight: 1,
            service: "elbv2",
            ..KindInfo::default()
        }
    }
    fn notes(&self, change: &Change) -> Vec<String> {
        match change.action {
            Action::Replace => vec![
                "the new target group is created first; the listener and the Auto Scaling group move to it before the old one is deleted".into(),
            ],
            _ => Vec::new(),
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let tgs: Vec<_> = aws
            .elbv2
            .describe_target_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        let arns = tgs
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string))
            .collect();
        let mine = owned(aws, arns).await?;
        Ok(tgs
            .iter()
            .filter_map(|t| {
                let arn = t.target_group_arn()?;
                let (addr, tg_tags) = mine.get(arn)?;
                let name = t.target_group_name().unwrap_or_default();
                let p = TgProps {
                    name_prefix: name
                        .rsplit_once('-')
                        .map(|(a, _)| a)
                        .unwrap_or(name)
                        .to_string(),
                    port: t.port().map(i64::from).unwrap_or(0),
                    protocol: t.protocol().map(|p| p.as_str()).unwrap_or_default().into(),
                    vpc_id: t.vpc_id().unwrap_or_default().into(),
                    target_type: t
                        .target_type()
                        .map(|p| p.as_str())
                        .unwrap_or("instance")
                        .into(),
                    health_check: HealthCheck {
                        protocol: t
                            .health_check_protocol()
                            .map(|p| p.as_str())
                            .unwrap_or_default()
                            .into(),
                        port: t.health_check_port().unwrap_or("traffic-port").into(),
                        path: t.health_check_path().unwrap_or_default().into(),
                        matcher: t
                            .matcher()
                            .and_then(|m| m.http_code())
                            .unwrap_or_default()
                            .into(),
                        interval: t
                            .health_check_interval_seconds()
                            .map(i64::from)
                            .unwrap_or(0),
                        timeout: t.health_check_timeout_seconds().map(i64::from).unwrap_or(0),
                        healthy_threshold: t.healthy_threshold_count().map(i64::from).unwrap_or(0),
                        unhealthy_threshold: t
                            .unhealthy_threshold_count()
                            .map(i64::from)
                            .unwrap_or(0),
                    },
                    tags: tg_tags.clone(),
                };
                Some(live(self.name(), addr, arn, json!(p), tg_attrs(arn, name)))
            })
            .collect())
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: TgProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        let h = &p.health_check;
        // CreateTargetGroup is idempotent for the same name and settings; a
        // name taken by another group (such as the one this replaces) moves
        // on to the next salt.
        for salt in 0..8 {
            let name = tg_name(aws, &d.address, &p, salt);
            // Found by name among this stack's groups, at this address, with
            // these settings (the name hashes them): an earlier attempt's.
            let mine = || async {
                Ok(self
                    .read(aws)
                    .await?
                    .into_iter()
                    .find(|l| {
                        l.address == d.address
                            && l.attrs.get("name") == Some(&json!(name))
                            && live_props::<TgProps>(l).is_ok_and(|o| {
                                (&o.vpc_id, o.port, &o.protocol, &o.target_type)
                                    == (&p.vpc_id, p.port, &p.protocol, &p.target_type)
                            })
                    })
                    .map(|l| l.id))
            };
            let r = create_guarded(
                "the target group",
                Codes {
                    exists: &["DuplicateTargetGroupName"],
                    wait: &["InvalidVPCID", "VPCIdNotFound"],
                    timeout: VISIBLE,
                },
                rep,
                || async {
                    let out = aws
                        .elbv2_once
                        .create_target_group()
                        .name(&name)
                        .port(p.port as i32)
                        .protocol(ProtocolEnum::from(p.protocol.as_str()))
                        .vpc_id(&p.vpc_id)
                        .target_type(TargetTypeEnum::from(p.target_type.as_str()))
                        .health_check_enabled(true)
                        .health_check_protocol(ProtocolEnum::from(h.protocol.as_str()))
                        .health_check_port(&h.port)
                        .health_check_path(&h.path)
                        .matcher(Matcher::builder().http_code(&h.matcher).build())
                        .health_check_interval_seconds(h.interval as i32)
                        .health_check_timeout_seconds(h.timeout as i32)
                        .healthy_threshold_count(h.healthy_threshold as i32)
                        .unhealthy_threshold_count(h.unhealthy_threshold as i32)
                        .set_tags(Some(elb_tags(&t)))
                        .send()
                        .await
                        .aws()?;
                    Ok(out
                        .target_groups()
                        .first()
                        .and_then(|g| g.target_group_arn())
                        .unwrap_or_default()
                        .to_string())
                },
                mine,
            )
            .await;
            match r {
                Ok(arn) => {
                    return Ok(live(
                        self.name(),
                        &d.address,
                        &arn,
                        json!(p),
                        tg_attrs(&arn, &name),
                    ));
                }
                // Taken by another group (such as the one this replaces).
                Err(e) if format!("{e:#}").contains("DuplicateTargetGroupName") => continue,
                Err(e) => return Err(e),
            }
        }
        bail!(
            "every name tried for the target group ({}-…) is taken; delete unused target groups",
            p.name_prefix
        )
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        _rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: TgProps = props(d)?;
        let old: TgProps = live_props(l)?;
        let h = &p.health_check;
        if *h != old.health_check {
            aws.elbv2
                .modify_target_group()
                .target_group_arn(&l.id)
                .health_check_protocol(ProtocolEnum::from(h.protocol.as_str()))
                .health_check_port(&h.port)
                .health_check_path(&h.path)
                .matcher(Matcher::builder().http_code(&h.matcher).build())
                .health_check_interval_seconds(h.interval as i32)
                .health_check_timeout_seconds(h.timeout as i32)
                .healthy_threshold_count(h.healthy_threshold as i32)
                .unhealthy_threshold_count(h.unhealthy_threshold as i32)
                .send()
                .await
                .aws()
                .context("changing the health check")?;
        }
        retag(aws, &l.id, &old.tags, &p.tags).await?;
        let mut out = l.clone();
        out.props = json!(p);
        Ok(out)
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        // In use until the listeners and rules pointing at it are gone.
        retry_on(
            &["ResourceInUse"],
            "deleting the target group",
            DRAIN,
            rep,
            || async {
                ignore_not_found(
                    aws.elbv2
                        .delete_target_group()
                        .target_group_arn(&l.id)
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

// ---------------------------------------------------------------- Listener

/// A listener's (or rule's) action, in the shape of the desired props.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct ActionP {
    r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_body: Option<String>,
}

impl ActionP {
    fn api(&self) -> ApiAction {
        let b = ApiAction::builder().r#type(ActionTypeEnum::from(self.r#type.as_str()));
        match self.r#type.as_str() {
            "redirect" => b
                .redirect_config(
                    RedirectActionConfig::builder()
                        .set_protocol(self.protocol.clone())
                        .set_port(self.port.clone())
                        .status_code(RedirectActionStatusCodeEnum::from(
                            self.status_code.as_deref().unwrap_or("HTTP_301"),
                        ))
                        .build(),
                )
                .build(),
            "fixed-response" => b
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .set_status_code(self.status_code.clone())
                        .set_content_type(self.content_type.clone())
                        .set_message_body(self.message_body.clone())
                        .build(),
                )
                .build(),
            _ => b
                .set_target_group_arn(self.target_group_arn.clone())
                .build(),
        }
    }

    fn from_api(a: &ApiAction) -> ActionP {
        let kind = a
            .r#type()
            .map(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        let mut out = ActionP {
            r#type: kind.clone(),
            target_group_arn: None,
            protocol: None,
            port: None,
            status_code: None,
            content_type: None,
            message_body: None,
        };
        match kind.as_str() {
            "redirect" => {
                let r = a.redirect_config();
                out.protocol = r.and_then(|r| r.protocol()).map(str::to_string);
                out.port = r.and_then(|r| r.port()).map(str::to_string);
                out.status_code = r
                    .and_then(|r| r.status_code())
                    .map(|s| s.as_str().to_string());
            }
            "fixed-response" => {
                let f = a.fixed_response_config();
                out.status_code = f.and_then(|f| f.status_code()).map(str::to_string);
                out.content_type = f.and_then(|f| f.content_type()).map(str::to_string);
                out.message_body = f.and_then(|f| f.message_body()).map(str::to_string);
            }
            _ => {
                out.target_group_arn = a.target_group_arn().map(str::to_string).or_else(|| {
                    a.forward_config()
                        .and_then(|f| f.target_groups().first())
                        .and_then(|t| t.target_group_arn())
                        .map(str::to_string)
                });
            }
        }
        out
    }
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct RuleP {
    priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_patterns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_headers: Option<Vec<String>>,
    target_group_arn: String,
}

impl RuleP {
    fn conditions(&self) -> Vec<RuleCondition> {
        let mut c = Vec::new();
        if let Some(p) = &self.path_patterns {
            c.push(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(
                        PathPatternConditionConfig::builder()
                            .set_values(Some(p.clone()))
                            .build(),
                    )
                    .build(),
            );
        }
        if let Some(h) = &self.host_headers {
            c.push(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        HostHeaderConditionConfig::builder()
                            .set_values(Some(h.clone()))
                            .build(),
                    )
                    .build(),
            );
        }
        c
    }

    fn action(&self) -> ApiAction {
        ApiAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn(&self.target_group_arn)
            .build()
    }

    fn from_api(r: &ApiRule) -> Option<RuleP> {
        if r.is_default() == Some(true) {
            return None;
        }
        let priority = r.priority()?.parse().ok()?;
        let values = |field: &str| -> Option<Vec<String>> {
            let c = r.conditions().iter().find(|c| c.field() == Some(field))?;
            let mut v: Vec<String> = match field {
                "path-pattern" => c
                    .path_pattern_config()
                    .map(|p| p.values().to_vec())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| c.values().to_vec()),
                _ => c
                    .host_header_config()
                    .map(|p| p.values().to_vec())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| c.values().to_vec()),
            };
            v.sort();
            Some(v)
        };
        let action = r.actions().first().map(ActionP::from_api)?;
        Some(RuleP {
            priority,
            path_patterns: values("path-pattern"),
            host_headers: values("host-header"),
            target_group_arn: action.target_group_arn.unwrap_or_default(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct ListenerProps {
    load_balancer_arn: String,
    port: i64,
    protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssl_policy: Option<String>,
    default_action: ActionP,
    rules: Vec<RuleP>,
    #[serde(default)]
    tags: Tags,
}

struct Listener;

impl Listener {
    /// Rule ARNs by priority, kept as an attribute for updates.
    fn rule_arns(rules: &[ApiRule]) -> BTreeMap<String, String> {
        rules
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .filter_map(|r| Some((r.priority()?.to_string(), r.rule_arn()?.to_string())))
            .collect()
    }

    async fn rules(aws: &Aws, listener: &str) -> Result<Vec<ApiRule>> {
        aws.elbv2
            .describe_rules()
            .listener_arn(listener)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("reading listener rules")
    }

    /// Brings the listener's rules from `have` to `want`: rules are matched
    /// by priority; changed ones are modified in place, so traffic never
    /// falls through to the default action.
    async fn converge_rules(
        aws: &Aws,
        listener: &str,
        want: &[RuleP],
        have: &[RuleP],
        arns: &BTreeMap<String, String>,
        rule_tags: &Tags,
        rep: &dyn StepReporter,
    ) -> Result<()> {
        let by_priority: HashMap<i64, &RuleP> = have.iter().map(|r| (r.priority, r)).collect();
        for w in want {
            match by_priority.get(&w.priority) {
                Some(h) if *h == w => {}
                Some(_) => {
                    let arn = arns
                        .get(&w.priority.to_string())
                        .ok_or_else(|| anyhow!("internal error: no ARN for rule {}", w.priority))?;
                    aws.elbv2
                        .modify_rule()
                        .rule_arn(arn)
                        .set_conditions(Some(w.conditions()))
                        .actions(w.action())
                        .send()
                        .await
                        .aws()
                        .with_context(|| format!("changing rule {}", w.priority))?;
                }
                None => {
                    retry_on(
                        &["TargetGroupNotFound"],
                        &format!("creating rule {}", w.priority),
                        VISIBLE,
                        rep,
                        || async {
                            aws.elbv2
                                .create_rule()
                                .listener_arn(listener)
                                .priority(w.priority as i32)
                                .set_conditions(Some(w.conditions()))
                                .actions(w.action())
                                // Rules are parts of the listener (its
                                // properties), tagged like it for cost and
                                // ownership reports.
                                .set_tags(Some(elb_tags(rule_tags)))
                                .send()
                                .await
                                .aws()
                        },
                    )
                    .await?;
                }
            }
        }
        for h in have {
            if !want.iter().any(|w| w.priority == h.priority)
                && let Some(arn) = arns.get(&h.priority.to_string())
            {
                ignore_not_found(aws.elbv2.delete_rule().rule_arn(arn).send().await.aws())
                    .with_context(|| format!("deleting rule {}", h.priority))?;
            }
        }
        Ok(())
    }

    async fn live_of(aws: &Aws, address: &str, arn: &str, p: &ListenerProps) -> Result<Live> {
        let rules = Self::rules(aws, arn).await?;
        Ok(live(
            "elbv2.listener",
            address,
            arn,
            json!(p),
            json!({ "arn": arn, "rules": Self::rule_arns(&rules) }),
        ))
    }
}

#[async_trait]
impl Kind for Listener {
    fn name(&self) -> &'static str {
        "elbv2.listener"
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["load_balancer_arn"],
            // A new load balancer gets its listeners before the old one goes.
            create_before_destroy: true,
            weight: 1,
            service: "elbv2",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        if let Some(Value::Array(rules)) = props.get_mut("rules") {
            rules.sort_by_key(|r| r.get("priority").and_then(Value::as_i64).unwrap_or(0));
        }
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let lbs = aws
            .cached(LOAD_BALANCERS, || LoadBalancer::find(aws))
            .await?;
        let per_lb = lbs.iter().map(|lb| async move {
            let r = aws
                .elbv2
                .describe_listeners()
                .load_balancer_arn(&lb.id)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .aws();
            Ok::<_, anyhow::Error>(ignore_not_found(r)?.unwrap_or_default())
        });
        let listeners: Vec<_> = futures::future::try_join_all(per_lb)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let arns = listeners
            .iter()
            .filter_map(|l| l.listener_arn().map(str::to_string))
            .collect();
        let mine = owned(aws, arns).await?;
        let reads = listeners.iter().filter_map(|l| {
            let arn = l.listener_arn()?.to_string();
            let (addr, t) = mine.get(&arn)?.clone();
            Some(async move {
                let rules = Self::rules(aws, &arn).await?;
                let mut rp: Vec<RuleP> = rules.iter().filter_map(RuleP::from_api).collect();
                rp.sort_by_key(|r| r.priority);
                let p = ListenerProps {
                    load_balancer_arn: l.load_balancer_arn().unwrap_or_default().into(),
                    port: l.port().map(i64::from).unwrap_or(0),
                    protocol: l.protocol().map(|p| p.as_str()).unwrap_or_default().into(),
                    certificate_arn: l
                        .certificates()
                        .first()
                        .and_then(|c| c.certificate_arn())
                        .map(str::to_string),
                    ssl_policy: l
                        .ssl_policy()
                        .map(str::to_string)
                        .filter(|_| l.protocol() == Some(&ProtocolEnum::Https)),
                    default_action: l
                        .default_actions()
                        .first()
                        .map(ActionP::from_api)
                        .ok_or_else(|| anyhow!("listener {arn} has no default action"))?,
                    rules: rp,
                    tags: t,
                };
                Ok::<_, anyhow::Error>(live(
                    "elbv2.listener",
                    &addr,
                    &arn,
                    json!(p),
                    json!({ "arn": arn, "rules": Self::rule_arns(&rules) }),
                ))
            })
        });
        futures::future::try_join_all(reads).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: ListenerProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        // CreateListener is idempotent for the same settings on AWS, not on
        // every endpoint: no blind retry. A listener on this load balancer's
        // port (one per port) after an ambiguous failure is an earlier
        // attempt's.
        let arn = create_guarded(
            "the listener",
            Codes {
                exists: &["DuplicateListener"],
                wait: &[
                    "TargetGroupNotFound",
                    "LoadBalancerNotFound",
                    "CertificateNotFound",
                ],
                timeout: VISIBLE,
            },
            rep,
            || async {
                let out = aws
                    .elbv2_once
                    .create_listener()
                    .load_balancer_arn(&p.load_balancer_arn)
                    .port(p.port as i32)
                    .protocol(ProtocolEnum::from(p.protocol.as_str()))
                    .set_certificates(
                        p.certificate_arn
                            .as_ref()
                            .map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                    )
                    .set_ssl_policy(p.ssl_policy.clone())
                    .default_actions(p.default_action.api())
                    .set_tags(Some(elb_tags(&t)))
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .listeners()
                    .first()
                    .and_then(|l| l.listener_arn())
                    .unwrap_or_default()
                    .to_string())
            },
            || async {
                let out = aws
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(&p.load_balancer_arn)
                    .send()
                    .await
                    .aws()?;
                Ok(out
                    .listeners()
                    .iter()
                    .find(|l| l.port() == Some(p.port as i32))
                    .and_then(|l| l.listener_arn())
                    .map(str::to_string))
            },
        )
        .await?;
        Self::converge_rules(aws, &arn, &p.rules, &[], &BTreeMap::new(), &t, rep).await?;
        Self::live_of(aws, &d.address, &arn, &p).await
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: ListenerProps = props(d)?;
        let old: ListenerProps = live_props(l)?;
        let listener_changed = p.port != old.port
            || p.protocol != old.protocol
            || p.certificate_arn != old.certificate_arn
            || p.ssl_policy != old.ssl_policy
            || p.default_action != old.default_action;
        if listener_changed {
            retry_on(
                &["TargetGroupNotFound", "CertificateNotFound"],
                "changing the listener",
                VISIBLE,
                rep,
                || async {
                    aws.elbv2
                        .modify_listener()
                        .listener_arn(&l.id)
                        .port(p.port as i32)
                        .protocol(ProtocolEnum::from(p.protocol.as_str()))
                        .set_certificates(
                            p.certificate_arn
                                .as_ref()
                                .map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                        )
                        .set_ssl_policy(p.ssl_policy.clone())
                        .default_actions(p.default_action.api())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        let arns: BTreeMap<String, String> =
            serde_json::from_value(l.attrs.get("rules").cloned().unwrap_or(json!({})))?;
        let t = tags::for_create(aws, &d.address, &d.props);
        Self::converge_rules(aws, &l.id, &p.rules, &old.rules, &arns, &t, rep).await?;
        retag(aws, &l.id, &old.tags, &p.tags).await?;
        Self::live_of(aws, &d.address, &l.id, &p).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        ignore_not_found(
            aws.elbv2
                .delete_listener()
                .listener_arn(&l.id)
                .send()
                .await
                .aws(),
        )
        .context("deleting the listener")?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_suffixes() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/webapp-alb/50dc6c495c0c9188";
        assert_eq!(
            arn_suffix(lb, ":loadbalancer/"),
            "app/webapp-alb/50dc6c495c0c9188"
        );
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/webapp-web-1a2b/943f017f100becff";
        assert_eq!(
            tg_attrs(tg, "webapp-web-1a2b")["arn_suffix"],
            "targetgroup/webapp-web-1a2b/943f017f100becff"
        );
    }

    #[test]
    fn actions_round_trip() {
        for a in [
            ActionP {
                r#type: "forward".into(),
                target_group_arn: Some("arn:tg".into()),
                protocol: None,
                port: None,
                status_code: None,
                content_type: None,
                message_body: None,
            },
            ActionP {
                r#type: "redirect".into(),
                target_group_arn: None,
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                status_code: Some("HTTP_301".into()),
                content_type: None,
                message_body: None,
            },
            ActionP {
                r#type: "fixed-response".into(),
                target_group_arn: None,
                protocol: None,
                port: None,
                status_code: Some("404".into()),
                content_type: Some("text/plain".into()),
                message_body: Some("Not found".into()),
            },
        ] {
            assert_eq!(ActionP::from_api(&a.api()), a);
        }
    }

    #[test]
    fn rules_round_trip() {
        let r = RuleP {
            priority: 10,
            path_patterns: Some(vec!["/api/*".into()]),
            host_headers: None,
            target_group_arn: "arn:tg".into(),
        };
        let api = ApiRule::builder()
            .priority("10")
            .is_default(false)
            .set_conditions(Some(r.conditions()))
            .actions(r.action())
            .build();
        assert_eq!(RuleP::from_api(&api), Some(r));
    }
}
