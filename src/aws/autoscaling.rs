//! EC2 Auto Scaling groups of the web groups, with their target tracking
//! policies and scheduled actions (untaggable parts, so properties of the
//! group: drift in them shows as an update of the group).
//!
//! A group's `instances` property is read from the launch template version
//! the group really uses. When it changes, the update points the group at
//! the template's new default version and starts a rolling instance refresh
//! (not waited for: it takes as long as the instances need to become
//! healthy; `aws autoscaling describe-instance-refreshes` follows it).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    Filter, InstanceRefreshStatus, LaunchTemplateSpecification, LifecycleState, MetricType,
    PredefinedMetricSpecification, RefreshPreferences, RefreshStrategy, Tag,
    TargetTrackingConfiguration,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::compute_common::{live, live_props, props, sort_array};
use super::errors::{AwsError, AwsResultExt};
use super::launch_template::read_version;
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use super::{Aws, retry_on, wait_for};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};
use crate::model::compute::instances_view;

pub const KIND: &str = "autoscaling.group";
/// Tag holding the instance refresh preferences, which AWS does not keep on
/// the group (they are part of each refresh): the cloud is our only state.
const REFRESH_TAG: &str = "infra:refresh";

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(Group)]
}

/// How long the group may take to have its instances in service.
const CAPACITY: Duration = Duration::from_secs(15 * 60);
/// How long terminating the group's instances may take.
const TERMINATE: Duration = Duration::from_secs(20 * 60);
const VISIBLE: Duration = Duration::from_secs(120);

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct LtRef {
    id: String,
    version: String,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct PolicyP {
    name: String,
    metric: String,
    target: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    load_balancer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_group: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct ScheduledP {
    name: String,
    recurrence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct RefreshP {
    min_healthy_percentage: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_warmup: Option<i64>,
}

impl RefreshP {
    fn tag_value(&self) -> String {
        match self.instance_warmup {
            Some(w) => format!(
                "min_healthy_percentage={} instance_warmup={w}",
                self.min_healthy_percentage
            ),
            None => format!("min_healthy_percentage={}", self.min_healthy_percentage),
        }
    }

    fn from_tag(v: Option<&String>) -> Option<RefreshP> {
        let v = v?;
        let mut r = RefreshP {
            min_healthy_percentage: -1,
            instance_warmup: None,
        };
        for part in v.split_whitespace() {
            match part.split_once('=') {
                Some(("min_healthy_percentage", n)) => r.min_healthy_percentage = n.parse().ok()?,
                Some(("instance_warmup", n)) => r.instance_warmup = Some(n.parse().ok()?),
                _ => {}
            }
        }
        (r.min_healthy_percentage >= 0).then_some(r)
    }
}

#[derive(Serialize, Deserialize)]
struct GroupProps {
    name: String,
    launch_template: LtRef,
    /// What the instances are launched with (see `model::compute`).
    instances: Value,
    min_size: i64,
    max_size: i64,
    /// Only in the desired props when the file pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired_capacity: Option<i64>,
    subnet_ids: Vec<String>,
    target_group_arns: Vec<String>,
    health_check_type: String,
    health_check_grace_period: i64,
    policies: Vec<PolicyP>,
    scheduled_actions: Vec<ScheduledP>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<RefreshP>,
    #[serde(default)]
    tags: Tags,
}

/// "AutoScalingGroup name not found": Auto Scaling answers a missing group
/// with a ValidationError rather than a NotFound code.
fn group_missing(e: &AwsError) -> bool {
    e.not_found() || (e.is("ValidationError") && e.message.contains("not found"))
}

fn asg_tags(name: &str, t: &Tags) -> Vec<Tag> {
    t.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                // The launch template tags instances and volumes.
                .propagate_at_launch(false)
                .build()
        })
        .collect()
}

struct Group;

impl Group {
    async fn describe(
        aws: &Aws,
        name: Option<&str>,
    ) -> Result<Vec<aws_sdk_autoscaling::types::AutoScalingGroup>> {
        let mut req = aws.autoscaling.describe_auto_scaling_groups();
        req = match name {
            Some(n) => req.auto_scaling_group_names(n),
            None => req.filters(
                Filter::builder()
                    .name(format!("tag:{}", super::STACK_TAG))
                    .values(&aws.stack)
                    .build(),
            ),
        };
        req.into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("reading Auto Scaling groups")
    }

    async fn policies(aws: &Aws, name: &str) -> Result<Vec<PolicyP>> {
        let ps: Vec<_> = aws
            .autoscaling
            .describe_policies()
            .auto_scaling_group_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("reading scaling policies")?;
        let mut out: Vec<PolicyP> = ps
            .iter()
            .map(|p| {
                let tt = p.target_tracking_configuration();
                let spec = tt.and_then(|t| t.predefined_metric_specification());
                let label = spec.and_then(|s| s.resource_label());
                let (lb, tg) = match label.and_then(|l| l.split_once("/targetgroup/")) {
                    Some((lb, tg)) => (Some(lb.to_string()), Some(format!("targetgroup/{tg}"))),
                    None => (None, None),
                };
                PolicyP {
                    name: p.policy_name().unwrap_or_default().into(),
                    // Policies of other types show as such, so they are
                    // visibly replaced by the file's.
                    metric: spec
                        .and_then(|s| s.predefined_metric_type())
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_else(|| p.policy_type().unwrap_or("unknown").to_string()),
                    target: tt.and_then(|t| t.target_value()).unwrap_or(0.0),
                    load_balancer: lb,
                    target_group: tg,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn scheduled(aws: &Aws, name: &str) -> Result<Vec<ScheduledP>> {
        let acts: Vec<_> = aws
            .autoscaling
            .describe_scheduled_actions()
            .auto_scaling_group_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()
            .context("reading scheduled actions")?;
        let mut out: Vec<ScheduledP> = acts
            .iter()
            .map(|a| ScheduledP {
                name: a.scheduled_action_name().unwrap_or_default().into(),
                recurrence: a.recurrence().unwrap_or_default().into(),
                min_size: a.min_size().map(i64::from),
                max_size: a.max_size().map(i64::from),
                desired_capacity: a.desired_capacity().map(i64::from),
                time_zone: a.time_zone().map(str::to_string),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn to_live(
        aws: &Aws,
        address: &str,
        g: &aws_sdk_autoscaling::types::AutoScalingGroup,
    ) -> Result<Live> {
        let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
        let all: Tags = g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        let lt = g.launch_template();
        let lt_ref = LtRef {
            id: lt
                .and_then(|l| l.launch_template_id())
                .unwrap_or_default()
                .into(),
            version: lt.and_then(|l| l.version()).unwrap_or("$Default").into(),
        };
        let (policies, scheduled, data) = tokio::try_join!(
            Self::policies(aws, &name),
            Self::scheduled(aws, &name),
            async {
                if lt_ref.id.is_empty() {
                    Ok(None)
                } else {
                    read_version(aws, &lt_ref.id, &lt_ref.version).await
                }
            },
        )?;
        let mut subnets: Vec<String> = g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        subnets.sort();
        let mut tgs = g.target_group_arns().to_vec();
        tgs.sort();
        let p = GroupProps {
            name: name.clone(),
            launch_template: lt_ref,
            instances: data
                .map(|d| instances_view(&json!(d)))
                .unwrap_or(Value::Null),
            min_size: g.min_size().map(i64::from).unwrap_or(0),
            max_size: g.max_size().map(i64::from).unwrap_or(0),
            desired_capacity: g.desired_capacity().map(i64::from),
            subnet_ids: subnets,
            target_group_arns: tgs,
            health_check_type: g.health_check_type().unwrap_or_default().into(),
            health_check_grace_period: g.health_check_grace_period().map(i64::from).unwrap_or(0),
            policies,
            scheduled_actions: scheduled,
            refresh: RefreshP::from_tag(all.get(REFRESH_TAG)),
            tags: tags::visible(all),
        };
        // The id is the ARN, not the name: other resources' properties
        // hold the same string as the name (the template's, the Name tag),
        // and the executor orders deletions by ids found in properties.
        let arn = g.auto_scaling_group_arn().unwrap_or(&name).to_string();
        Ok(live(
            KIND,
            address,
            &arn,
            json!(p),
            json!({ "arn": arn, "name": name }),
        ))
    }

    async fn put_policy(aws: &Aws, group: &str, p: &PolicyP) -> Result<()> {
        let mut spec = PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::from(p.metric.as_str()));
        if let (Some(lb), Some(tg)) = (&p.load_balancer, &p.target_group) {
            spec = spec.resource_label(format!("{lb}/{tg}"));
        }
        aws.autoscaling
            .put_scaling_policy()
            .auto_scaling_group_name(group)
            .policy_name(&p.name)
            .policy_type("TargetTrackingScaling")
            .target_tracking_configuration(
                TargetTrackingConfiguration::builder()
                    .predefined_metric_specification(spec.build())
                    .target_value(p.target)
                    .build(),
            )
            .send()
            .await
            .aws()
            .with_context(|| format!("setting scaling policy {}", p.name))?;
        Ok(())
    }

    async fn put_scheduled(aws: &Aws, group: &str, s: &ScheduledP) -> Result<()> {
        aws.autoscaling
            .put_scheduled_update_group_action()
            .auto_scaling_group_name(group)
            .scheduled_action_name(&s.name)
            .recurrence(&s.recurrence)
            .set_min_size(s.min_size.map(|v| v as i32))
            .set_max_size(s.max_size.map(|v| v as i32))
            .set_desired_capacity(s.desired_capacity.map(|v| v as i32))
            .set_time_zone(s.time_zone.clone())
            .send()
            .await
            .aws()
            .with_context(|| format!("setting scheduled action {}", s.name))?;
        Ok(())
    }

    /// Puts what is new or changed, deletes what is gone.
    async fn converge_parts(
        aws: &Aws,
        group: &str,
        want: &GroupProps,
        have: Option<&GroupProps>,
    ) -> Result<()> {
        let old_p: BTreeMap<&str, &PolicyP> = have
            .map(|h| h.policies.iter().map(|p| (p.name.as_str(), p)).collect())
            .unwrap_or_default();
        for p in &want.policies {
            if old_p.get(p.name.as_str()) != Some(&p) {
                Self::put_policy(aws, group, p).await?;
            }
        }
        for name in old_p.keys() {
            if !want.policies.iter().any(|p| p.name == *name) {
                match aws
                    .autoscaling
                    .delete_policy()
                    .auto_scaling_group_name(group)
                    .policy_name(*name)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if !group_missing(&e) => {
                        return Err(anyhow!(e).context(format!("deleting scaling policy {name}")));
                    }
                    _ => {}
                }
            }
        }
        let old_s: BTreeMap<&str, &ScheduledP> = have
            .map(|h| {
                h.scheduled_actions
                    .iter()
                    .map(|s| (s.name.as_str(), s))
                    .collect()
            })
            .unwrap_or_default();
        for s in &want.scheduled_actions {
            if old_s.get(s.name.as_str()) != Some(&s) {
                Self::put_scheduled(aws, group, s).await?;
            }
        }
        for name in old_s.keys() {
            if !want.scheduled_actions.iter().any(|s| s.name == *name) {
                match aws
                    .autoscaling
                    .delete_scheduled_action()
                    .auto_scaling_group_name(group)
                    .scheduled_action_name(*name)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if !group_missing(&e) => {
                        return Err(anyhow!(e).context(format!("deleting scheduled action {name}")));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Waits until at least `n` instances are in service and healthy.
    async fn wait_capacity(aws: &Aws, name: &str, n: i64, rep: &dyn StepReporter) -> Result<()> {
        if n <= 0 {
            return Ok(());
        }
        wait_for(
            &format!("{n} healthy instance(s) in service"),
            CAPACITY,
            rep,
            || async {
                let g = Self::describe(aws, Some(name)).await?;
                let ready = g
                    .first()
                    .map(|g| {
                        g.instances()
                            .iter()
                            .filter(|i| {
                                i.lifecycle_state() == Some(&LifecycleState::InService)
                                    && i.health_status() == Some("Healthy")
                            })
                            .count() as i64
                    })
                    .unwrap_or(0);
                Ok((ready >= n).then_some(()))
            },
        )
        .await
        .with_context(|| format!("Auto Scaling group {name} did not reach {n} healthy instance(s): check the image, the user data and the health check path (`aws autoscaling describe-scaling-activities --auto-scaling-group-name {name}`)"))
    }

    /// Starts a rolling instance refresh, cancelling one in progress first
    /// (its instances are on a version that is no longer wanted).
    async fn refresh(
        aws: &Aws,
        name: &str,
        r: Option<&RefreshP>,
        rep: &dyn StepReporter,
    ) -> Result<String> {
        let mut prefs = RefreshPreferences::builder().skip_matching(true);
        if let Some(r) = r {
            prefs = prefs
                .min_healthy_percentage(r.min_healthy_percentage as i32)
                .set_instance_warmup(r.instance_warmup.map(|w| w as i32));
        }
        let prefs = prefs.build();
        let start = || {
            aws.autoscaling
                .start_instance_refresh()
                .auto_scaling_group_name(name)
                .strategy(RefreshStrategy::Rolling)
                .preferences(prefs.clone())
                .send()
        };
        let out = match start().await.aws() {
            Err(e) if e.is("InstanceRefreshInProgress") => {
                rep.status("cancelling the instance refresh in progress");
                match aws
                    .autoscaling
                    .cancel_instance_refresh()
                    .auto_scaling_group_name(name)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if !e.is("ActiveInstanceRefreshNotFound") => {
                        return Err(anyhow!(e).context("cancelling the instance refresh"));
                    }
                    _ => {}
                }
                wait_for(
                    "the previous instance refresh to stop",
                    CAPACITY,
                    rep,
                    || async {
                        let r = aws
                            .autoscaling
                            .describe_instance_refreshes()
                            .auto_scaling_group_name(name)
                            .send()
                            .await
                            .aws()?;
                        let busy = r.instance_refreshes().iter().any(|i| {
                            matches!(
                                i.status(),
                                Some(
                                    InstanceRefreshStatus::Pending
                                        | InstanceRefreshStatus::InProgress
                                        | InstanceRefreshStatus::Cancelling
                                        | InstanceRefreshStatus::RollbackInProgress
                                        | InstanceRefreshStatus::Baking
                                )
                            )
                        });
                        Ok((!busy).then_some(()))
                    },
                )
                .await?;
                start().await.aws()
            }
            other => other,
        }
        .context("starting the instance refresh")?;
        Ok(out.instance_refresh_id().unwrap_or_default().to_string())
    }
}

#[async_trait]
impl Kind for Group {
    fn name(&self) -> &'static str {
        KIND
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name"],
            weight: 5,
            service: "autoscaling",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "subnet_ids");
        sort_array(props, "target_group_arns");
        for k in ["policies", "scheduled_actions"] {
            if let Some(Value::Array(a)) = props.get_mut(k) {
                a.sort_by_key(|v| {
                    v.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                });
            }
        }
        // JSON numbers: 50 and 50.0 are the same target.
        if let Some(Value::Array(a)) = props.get_mut("policies") {
            for p in a {
                if let Some(t) = p.get("target").and_then(Value::as_f64) {
                    p["target"] = json!(t);
                }
            }
        }
        if let Some(inst) = props.get_mut("instances") {
            sort_array(inst, "security_group_ids");
        }
    }
    fn notes(&self, change: &Change) -> Vec<String> {
        if change.action != Action::Update {
            return Vec::new();
        }
        let mut out = Vec::new();
        if change
            .fields
            .iter()
            .any(|f| f.path.starts_with("instances"))
        {
            let pct = change
                .desired
                .as_ref()
                .and_then(|d| d.props.pointer("/refresh/min_healthy_percentage"))
                .and_then(Value::as_i64)
                .unwrap_or(90);
            out.push(format!(
                "moves to the launch template's new version and starts an instance refresh: instances are replaced in rolling fashion, keeping at least {pct}% in service"
            ));
        } else if change
            .fields
            .iter()
            .any(|f| f.path.starts_with("launch_template"))
        {
            out.push("moves to the launch template's current version".into());
        }
        out
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        let groups = Self::describe(aws, None).await?;
        let reads = groups.iter().filter_map(|g| {
            // A group being deleted is gone for planning purposes.
            if g.status().is_some_and(|s| s.contains("Delete")) {
                return None;
            }
            let all: Tags = g
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            let addr = tags::owner(aws, &all)?.to_string();
            Some(async move { Self::to_live(aws, &addr, g).await })
        });
        futures::future::try_join_all(reads).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live> {
        let p: GroupProps = props(d)?;
        let mut t = tags::for_create(aws, &d.address, &d.props);
        if let Some(r) = &p.refresh {
            t.insert(REFRESH_TAG.into(), r.tag_value());
        }
        let desired = p.desired_capacity.unwrap_or(p.min_size);
        let create = || async {
            aws.autoscaling_once
                .create_auto_scaling_group()
                .auto_scaling_group_name(&p.name)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(&p.launch_template.id)
                        .version(&p.launch_template.version)
                        .build(),
                )
                .min_size(p.min_size as i32)
                .max_size(p.max_size as i32)
                .desired_capacity(desired as i32)
                .vpc_zone_identifier(p.subnet_ids.join(","))
                .set_target_group_arns(Some(p.target_group_arns.clone()))
                .health_check_type(&p.health_check_type)
                .health_check_grace_period(p.health_check_grace_period as i32)
                .set_tags(Some(asg_tags(&p.name, &t)))
                .send()
                .await
                .aws()
        };
        let ours = |g: &aws_sdk_autoscaling::types::AutoScalingGroup| {
            let has = |k: &str, v: &str| {
                g.tags()
                    .iter()
                    .any(|t| t.key() == Some(k) && t.value() == Some(v))
            };
            has(super::ADDRESS_TAG, &d.address) && has(super::STACK_TAG, &aws.stack)
        };
        // Without the SDK's blind retries: an endpoint that answers a second
        // CreateAutoScalingGroup by replacing the group (instead of
        // AlreadyExists) would leave the first group's instances running.
        // After an ambiguous failure, look for the group before trying again.
        let mut attempt = 0;
        let mut delay = Duration::from_millis(200);
        let first = loop {
            attempt += 1;
            match create().await {
                Err(e) if e.retryable() && attempt < 8 => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    if !e.throttled()
                        && Self::describe(aws, Some(&p.name))
                            .await?
                            .first()
                            .is_some_and(ours)
                    {
                        break Ok(());
                    }
                }
                other => break other.map(|_| ()),
            }
        };
        match first {
            Ok(_) => {}
            Err(e) if e.is("AlreadyExists") => {
                // A retry after a lost response (ours: carry on), a group of
                // the same name being deleted (wait, then create), or
                // someone else's (stop).
                let existing = Self::describe(aws, Some(&p.name)).await?;
                match existing.first() {
                    Some(g) if g.status().is_some_and(|s| s.contains("Delete")) => {
                        wait_for(
                            "the previous group of this name to be deleted",
                            TERMINATE,
                            rep,
                            || async {
                                Ok(Self::describe(aws, Some(&p.name))
                                    .await?
                                    .is_empty()
                                    .then_some(()))
                            },
                        )
                        .await?;
                        retry_on(
                            &["AlreadyExists"],
                            "creating the Auto Scaling group",
                            VISIBLE,
                            rep,
                            create,
                        )
                        .await?;
                    }
                    Some(g) if ours(g) => {}
                    Some(_) => bail!(
                        "an Auto Scaling group named {} already exists and is not part of stack {}: delete or rename it",
                        p.name,
                        aws.stack
                    ),
                    None => {
                        retry_on(
                            &["AlreadyExists"],
                            "creating the Auto Scaling group",
                            VISIBLE,
                            rep,
                            create,
                        )
                        .await?;
                    }
                }
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("creating Auto Scaling group {}", p.name)));
            }
        }
        Self::converge_parts(aws, &p.name, &p, None).await?;
        Self::wait_capacity(aws, &p.name, desired, rep).await?;
        let g = Self::describe(aws, Some(&p.name)).await?;
        let g = g
            .first()
            .ok_or_else(|| anyhow!("Auto Scaling group {} vanished after creation", p.name))?;
        Self::to_live(aws, &d.address, g).await
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _c: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let mut p: GroupProps = props(d)?;
        let old: GroupProps = live_props(l)?;
        p.subnet_ids.sort();
        p.target_group_arns.sort();
        let new_template = p.instances != old.instances;
        let lt_changed = p.launch_template != old.launch_template || new_template;
        let mut req = aws
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(&p.name);
        let mut any = false;
        if lt_changed {
            req = req.launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_id(&p.launch_template.id)
                    .version(&p.launch_template.version)
                    .build(),
            );
            any = true;
        }
        if p.min_size != old.min_size {
            req = req.min_size(p.min_size as i32);
            any = true;
        }
        if p.max_size != old.max_size {
            req = req.max_size(p.max_size as i32);
            any = true;
        }
        if let Some(dc) = p.desired_capacity
            && Some(dc) != old.desired_capacity
        {
            req = req.desired_capacity(dc as i32);
            any = true;
        }
        if p.subnet_ids != old.subnet_ids {
            req = req.vpc_zone_identifier(p.subnet_ids.join(","));
            any = true;
        }
        if p.health_check_type != old.health_check_type {
            req = req.health_check_type(&p.health_check_type);
            any = true;
        }
        if p.health_check_grace_period != old.health_check_grace_period {
            req = req.health_check_grace_period(p.health_check_grace_period as i32);
            any = true;
        }
        if any {
            req.send()
                .await
                .aws()
                .with_context(|| format!("updating Auto Scaling group {}", p.name))?;
        }

        // Target groups: attach the new before detaching the old, so a
        // replaced target group never leaves the group unregistered.
        let attach: Vec<String> = p
            .target_group_arns
            .iter()
            .filter(|a| !old.target_group_arns.contains(a))
            .cloned()
            .collect();
        let detach: Vec<String> = old
            .target_group_arns
            .iter()
            .filter(|a| !p.target_group_arns.contains(a))
            .cloned()
            .collect();
        if !attach.is_empty() {
            aws.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(&p.name)
                .set_target_group_arns(Some(attach))
                .send()
                .await
                .aws()
                .context("attaching target groups")?;
        }
        if !detach.is_empty() {
            aws.autoscaling
                .detach_load_balancer_target_groups()
                .auto_scaling_group_name(&p.name)
                .set_target_group_arns(Some(detach))
                .send()
                .await
                .aws()
                .context("detaching target groups")?;
        }

        Self::converge_parts(aws, &p.name, &p, Some(&old)).await?;

        let mut want_tags = p.tags.clone();
        let mut have_tags = old.tags.clone();
        if let Some(r) = &p.refresh {
            want_tags.insert(REFRESH_TAG.into(), r.tag_value());
        }
        if let Some(r) = &old.refresh {
            have_tags.insert(REFRESH_TAG.into(), r.tag_value());
        }
        let (set, remove) = tags::delta(&have_tags, &want_tags);
        let mut remove = remove;
        if p.refresh.is_none() && old.refresh.is_some() {
            remove.push(REFRESH_TAG.into());
        }
        if !set.is_empty() {
            aws.autoscaling
                .create_or_update_tags()
                .set_tags(Some(asg_tags(&p.name, &set)))
                .send()
                .await
                .aws()
                .context("tagging the Auto Scaling group")?;
        }
        if !remove.is_empty() {
            aws.autoscaling
                .delete_tags()
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| {
                            Tag::builder()
                                .resource_id(&p.name)
                                .resource_type("auto-scaling-group")
                                .key(k)
                                .build()
                        })
                        .collect(),
                ))
                .send()
                .await
                .aws()
                .context("untagging the Auto Scaling group")?;
        }

        if new_template {
            let id = match Self::refresh(aws, &p.name, p.refresh.as_ref(), rep).await {
                Ok(id) => id,
                Err(e) => {
                    // Without a refresh the running instances stay on the old
                    // version while the group says the new one, and the next
                    // plan would see nothing to do: put the group back, so
                    // the change (and its refresh) is still pending.
                    let back = aws
                        .autoscaling
                        .update_auto_scaling_group()
                        .auto_scaling_group_name(&p.name)
                        .launch_template(
                            LaunchTemplateSpecification::builder()
                                .launch_template_id(&old.launch_template.id)
                                .version(&old.launch_template.version)
                                .build(),
                        )
                        .send()
                        .await
                        .aws();
                    let hint = match back {
                        Ok(_) => format!(
                            "the group is back on launch template version {}; apply again to retry",
                            old.launch_template.version
                        ),
                        Err(b) => format!(
                            "the group could not be put back on version {} ({b}); start the refresh by hand: aws autoscaling start-instance-refresh --auto-scaling-group-name {}",
                            old.launch_template.version, p.name
                        ),
                    };
                    return Err(e.context(hint));
                }
            };
            rep.status(&format!(
                "instance refresh {id} started (follow it with `aws autoscaling describe-instance-refreshes --auto-scaling-group-name {}`)",
                p.name
            ));
        }

        let g = Self::describe(aws, Some(&p.name)).await?;
        let g = g
            .first()
            .ok_or_else(|| anyhow!("Auto Scaling group {} vanished during its update", p.name))?;
        Self::to_live(aws, &d.address, g).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        let name = l
            .attrs
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                l.props
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .ok_or_else(|| anyhow!("internal error: no name for {}", l.address))?;
        // ForceDelete terminates the instances with the group.
        let r = retry_on(
            &["ScalingActivityInProgress", "ResourceInUse"],
            "deleting the Auto Scaling group",
            TERMINATE,
            rep,
            || async {
                match aws
                    .autoscaling
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(&name)
                    .force_delete(true)
                    .send()
                    .await
                    .aws()
                {
                    Err(e) if group_missing(&e) => Ok(()),
                    other => other.map(|_| ()),
                }
            },
        )
        .await;
        r?;
        wait_for("the group to be deleted", TERMINATE, rep, || async {
            Ok(Self::describe(aws, Some(&name))
                .await?
                .is_empty()
                .then_some(()))
        })
        .await?;
        // Instances still shutting down hold network interfaces in the
        // group's subnets and security group: wait until they are gone.
        wait_for("its instances to terminate", TERMINATE, rep, || async {
            let out = aws
                .ec2
                .describe_instances()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("tag:aws:autoscaling:groupName")
                        .values(&name)
                        .build(),
                )
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-state-name")
                        .set_values(Some(
                            ["pending", "running", "shutting-down", "stopping", "stopped"]
                                .iter()
                                .map(|s| s.to_string())
                                .collect(),
                        ))
                        .build(),
                )
                .send()
                .await
                .aws()?;
            let left: usize = out.reservations().iter().map(|r| r.instances().len()).sum();
            Ok((left == 0).then_some(()))
        })
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_preferences_round_trip_through_the_tag() {
        for r in [
            RefreshP {
                min_healthy_percentage: 90,
                instance_warmup: None,
            },
            RefreshP {
                min_healthy_percentage: 50,
                instance_warmup: Some(120),
            },
        ] {
            let v = r.tag_value();
            crate::config::aws_rules::validate_tag_value(&v).unwrap();
            assert_eq!(RefreshP::from_tag(Some(&v)), Some(r));
        }
        assert_eq!(RefreshP::from_tag(Some(&"junk".to_string())), None);
    }

    #[test]
    fn missing_group_errors() {
        let e = AwsError {
            code: Some("ValidationError".into()),
            message: "AutoScalingGroup name not found - null".into(),
            status: Some(400),
            no_response: false,
        };
        assert!(group_missing(&e));
    }
}
