//! Auto Scaling groups of the web groups, with their target tracking
//! policies and scheduled actions (untaggable parts, so properties of the
//! group: drift in them shows as an update of the group).
//!
//! A group's `instances` property is read from the launch template version
//! the group really uses. When it changes, the update points the group at
//! the template's new default version and starts a rolling instance refresh
//! (not waited for: it takes as long as the instances need to become
//! healthy; `aws autoscaling describe-instance-refreshes` follows it).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, InstanceRefreshStatus, LaunchTemplateSpecification, LifecycleState, MetricType,
    PredefinedMetricSpecification, RefreshPreferences, RefreshStrategy, TargetTrackingConfiguration,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Tagging, filters, group_missing, tag_list, tag_map};
use crate::aws::collection::{delta, set_delta};
use crate::aws::ec2::launch_template::{Instances, OfImage, prepare_images, read_version};
use crate::aws::errors::{AwsError, AwsResultExt};
use crate::aws::find::{owned_then, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, TagApi, Tags};
use crate::aws::{ADDRESS_TAG, Aws, Codes, STACK_TAG, create_guarded, retry_on, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{Finding, KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Live, Props, Resource};
use crate::engine::value::{Ref, sort_set};

/// Tag holding the instance refresh preferences, which AWS does not keep on
/// the group (they are part of each refresh): the cloud is our only state.
const REFRESH_TAG: &str = "infra:refresh";

/// How long the group may take to have its instances in service.
const CAPACITY: Duration = Duration::from_secs(15 * 60);
/// How long terminating the group's instances may take.
const TERMINATE: Duration = Duration::from_secs(20 * 60);
const VISIBLE: Duration = Duration::from_secs(120);

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct LaunchTemplateRef {
    pub id: Ref,
    pub version: Ref,
}

impl LaunchTemplateRef {
    fn api(&self) -> Result<LaunchTemplateSpecification> {
        Ok(LaunchTemplateSpecification::builder()
            .launch_template_id(self.id.get()?)
            .version(self.version.get()?)
            .build())
    }
}

/// A target tracking policy.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Policy {
    pub name: String,
    pub metric: String,
    pub target: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<Ref>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct ScheduledAction {
    pub name: String,
    pub recurrence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// How an instance refresh replaces the instances.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Refresh {
    pub min_healthy_percentage: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_warmup: Option<i64>,
}

impl Refresh {
    fn tag_value(&self) -> String {
        match self.instance_warmup {
            Some(w) => format!("min_healthy_percentage={} instance_warmup={w}", self.min_healthy_percentage),
            None => format!("min_healthy_percentage={}", self.min_healthy_percentage),
        }
    }

    fn from_tag(v: Option<&String>) -> Option<Refresh> {
        let v = v?;
        let mut r = Refresh { min_healthy_percentage: -1, instance_warmup: None };
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupProps {
    pub name: String,
    pub launch_template: LaunchTemplateRef,
    /// What the instances are launched with, read from the template
    /// version the group uses (`null` when that cannot be read).
    pub instances: Option<Instances>,
    pub min_size: i64,
    pub max_size: i64,
    /// Only in the desired props when the file pins it: otherwise the
    /// scaling policies own it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<i64>,
    pub subnet_ids: Vec<Ref>,
    pub target_group_arns: Vec<Ref>,
    pub health_check_type: String,
    pub health_check_grace_period: i64,
    pub policies: Vec<Policy>,
    pub scheduled_actions: Vec<ScheduledAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Refresh>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for GroupProps {
    const KIND: &'static str = "autoscaling.group";
}

pub struct Group;

/// The group named `name` (none, or one).
async fn named(aws: &Aws, name: &str) -> Result<Vec<AutoScalingGroup>> {
    paginated!(aws.autoscaling.describe_auto_scaling_groups().auto_scaling_group_names(name))
        .context("reading Auto Scaling groups")
}

/// A group being deleted: gone for planning purposes, still holding its name.
fn deleting(g: &AutoScalingGroup) -> bool {
    g.status().is_some_and(|s| s.contains("Delete"))
}

async fn policies(aws: &Aws, name: &str) -> Result<Vec<Policy>> {
    let ps = paginated!(aws.autoscaling.describe_policies().auto_scaling_group_name(name))
        .context("reading scaling policies")?;
    let mut out: Vec<Policy> = ps
        .iter()
        .map(|p| {
            let tt = p.target_tracking_configuration();
            let spec = tt.and_then(|t| t.predefined_metric_specification());
            let label = spec.and_then(|s| s.resource_label());
            let (lb, tg) = match label.and_then(|l| l.split_once("/targetgroup/")) {
                Some((lb, tg)) => (Some(lb.into()), Some(format!("targetgroup/{tg}").into())),
                None => (None, None),
            };
            Policy {
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

async fn scheduled(aws: &Aws, name: &str) -> Result<Vec<ScheduledAction>> {
    let acts = paginated!(aws.autoscaling.describe_scheduled_actions().auto_scaling_group_name(name))
        .context("reading scheduled actions")?;
    let mut out: Vec<ScheduledAction> = acts
        .iter()
        .map(|a| ScheduledAction {
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

/// The group at `address` as it is: its parts and the launch data of the
/// template version it uses are read concurrently.
async fn current(aws: &Aws, address: String, g: &AutoScalingGroup) -> Result<Current<GroupProps>> {
    let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
    let all = tag_map(g.tags());
    let lt = g.launch_template();
    let lt_id = lt.and_then(|l| l.launch_template_id()).unwrap_or_default().to_string();
    let lt_version = lt.and_then(|l| l.version()).unwrap_or("$Default").to_string();
    let (policies, scheduled, data) = tokio::try_join!(policies(aws, &name), scheduled(aws, &name), async {
        if lt_id.is_empty() { Ok(None) } else { read_version(aws, &lt_id, &lt_version).await }
    },)?;
    let mut subnets: Vec<Ref> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Ref::from)
        .collect();
    subnets.sort();
    let mut tgs: Vec<Ref> = g.target_group_arns().iter().map(|a| Ref::from(a.as_str())).collect();
    tgs.sort();
    let p = GroupProps {
        name: name.clone(),
        launch_template: LaunchTemplateRef { id: lt_id.into(), version: lt_version.into() },
        instances: data.map(|d| d.view()),
        min_size: g.min_size().map(i64::from).unwrap_or(0),
        max_size: g.max_size().map(i64::from).unwrap_or(0),
        desired_capacity: g.desired_capacity().map(i64::from),
        subnet_ids: subnets,
        target_group_arns: tgs,
        health_check_type: g.health_check_type().unwrap_or_default().into(),
        health_check_grace_period: g.health_check_grace_period().map(i64::from).unwrap_or(0),
        policies,
        scheduled_actions: scheduled,
        refresh: Refresh::from_tag(all.get(REFRESH_TAG)),
        tags: tags::visible(all),
    };
    // The id is the ARN, not the name: other resources' properties
    // hold the same string as the name (the template's, the Name tag),
    // and the executor orders deletions by ids found in properties.
    let arn = g.auto_scaling_group_arn().unwrap_or(&name).to_string();
    Ok(Current::new(address, &arn, p).with("arn", &arn).with("name", &name))
}

/// The group named `name` as it is now, after a change.
async fn reread(aws: &Aws, address: &str, name: &str, after: &str) -> Result<Current<GroupProps>> {
    let g = named(aws, name).await?;
    let g = g.first().ok_or_else(|| anyhow!("Auto Scaling group {name} vanished {after}"))?;
    current(aws, address.to_string(), g).await
}

async fn put_policy(aws: &Aws, group: &str, p: &Policy) -> Result<()> {
    let mut spec = PredefinedMetricSpecification::builder().predefined_metric_type(MetricType::from(p.metric.as_str()));
    if let (Some(lb), Some(tg)) = (&p.load_balancer, &p.target_group) {
        spec = spec.resource_label(format!("{}/{}", lb.get()?, tg.get()?));
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

async fn put_scheduled(aws: &Aws, group: &str, s: &ScheduledAction) -> Result<()> {
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

/// A delete of a part whose group (or the part itself) is gone: done.
fn gone_is_done<T>(r: Result<T, AwsError>, what: String) -> Result<()> {
    match r {
        Err(e) if !group_missing(&e) => Err(anyhow!(e).context(what)),
        _ => Ok(()),
    }
}

/// Puts the parts of `want` that are new or changed (matched by `name`),
/// deletes those of `have` that are gone.
async fn converge<'a, T, P, PF, D, DF>(
    want: &'a [T], have: &'a [T], name: impl Fn(&T) -> &str, put: P, delete: D,
) -> Result<()>
where
    T: PartialEq,
    P: Fn(&'a T) -> PF,
    PF: Future<Output = Result<()>>,
    D: Fn(&'a T) -> DF,
    DF: Future<Output = Result<()>>,
{
    let d = delta(want, have, |x| name(x).to_string());
    for w in d.added.iter().copied().chain(d.changed.iter().map(|(_, w)| *w)) {
        put(w).await?;
    }
    for h in d.removed {
        delete(h).await?;
    }
    Ok(())
}

/// Brings the group's scaling policies and scheduled actions to `want`'s.
async fn converge_parts(aws: &Aws, group: &str, want: &GroupProps, have: Option<&GroupProps>) -> Result<()> {
    converge(
        &want.policies,
        have.map_or(&[][..], |h| h.policies.as_slice()),
        |p| &p.name,
        |p| put_policy(aws, group, p),
        |p| async move {
            let r =
                aws.autoscaling.delete_policy().auto_scaling_group_name(group).policy_name(&p.name).send().await.aws();
            gone_is_done(r, format!("deleting scaling policy {}", p.name))
        },
    )
    .await?;
    converge(
        &want.scheduled_actions,
        have.map_or(&[][..], |h| h.scheduled_actions.as_slice()),
        |s| &s.name,
        |s| put_scheduled(aws, group, s),
        |s| async move {
            let r = aws
                .autoscaling
                .delete_scheduled_action()
                .auto_scaling_group_name(group)
                .scheduled_action_name(&s.name)
                .send()
                .await
                .aws();
            gone_is_done(r, format!("deleting scheduled action {}", s.name))
        },
    )
    .await
}

/// Waits until at least `n` instances are in service and healthy.
async fn wait_capacity(aws: &Aws, name: &str, n: i64, ctx: &StepContext<'_>) -> Result<()> {
    if n <= 0 {
        return Ok(());
    }
    wait_for(
        &format!("{n} healthy instance(s) in service"),
        CAPACITY,
        ctx,
        || async {
            let g = named(aws, name).await?;
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
async fn refresh(aws: &Aws, name: &str, r: Option<&Refresh>, ctx: &StepContext<'_>) -> Result<String> {
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
            ctx.status("cancelling the instance refresh in progress");
            match aws.autoscaling.cancel_instance_refresh().auto_scaling_group_name(name).send().await.aws() {
                Err(e) if !e.is("ActiveInstanceRefreshNotFound") => {
                    return Err(anyhow!(e).context("cancelling the instance refresh"));
                }
                _ => {}
            }
            wait_for("the previous instance refresh to stop", CAPACITY, ctx, || async {
                let r =
                    aws.autoscaling.describe_instance_refreshes().auto_scaling_group_name(name).send().await.aws()?;
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
            })
            .await?;
            start().await.aws()
        }
        other => other,
    }
    .context("starting the instance refresh")?;
    Ok(out.instance_refresh_id().unwrap_or_default().to_string())
}

/// `refs`' values, sorted (a set).
fn sorted(refs: &[Ref]) -> Result<Vec<String>> {
    let mut v = Ref::all(refs)?;
    v.sort();
    Ok(v)
}

/// The user's tags with the refresh preferences' tag.
fn with_refresh(tags: &Tags, r: Option<&Refresh>) -> Tags {
    let mut t = tags.clone();
    if let Some(r) = r {
        t.insert(REFRESH_TAG.into(), r.tag_value());
    }
    t
}

/// Who holds a group's name, as a create that found it taken sees it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Holder {
    /// This address's group: an earlier attempt whose answer was lost.
    Ours,
    /// A group of that name being deleted: wait, then create.
    Deleting,
    /// Someone else's.
    Other,
}

impl Holder {
    fn of(aws: &Aws, address: &str, g: &AutoScalingGroup) -> Holder {
        let has = |k: &str, v: &str| g.tags().iter().any(|t| t.key() == Some(k) && t.value() == Some(v));
        if deleting(g) {
            Holder::Deleting
        } else if has(ADDRESS_TAG, address) && has(STACK_TAG, &aws.stack) {
            Holder::Ours
        } else {
            Holder::Other
        }
    }
}

#[async_trait]
impl Kind for Group {
    type Props = GroupProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name"], weight: 5, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "subnet_ids");
        sort_set(props, "target_group_arns");
        for k in ["policies", "scheduled_actions"] {
            if let Some(Value::Array(a)) = props.get_mut(k) {
                a.sort_by_key(|v| v.get("name").and_then(Value::as_str).unwrap_or("").to_string());
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
            sort_set(inst, "security_group_ids");
        }
    }

    /// The image look-ups in `instances` (shared with the launch templates:
    /// each distinct image is looked up once per run).
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        prepare_images(aws, desired, |p: &mut GroupProps| p.instances.as_mut(), |_, _, _| Ok(())).await
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        if change.action != Action::Update {
            return Vec::new();
        }
        let mut out = Vec::new();
        if change.fields.iter().any(|f| f.path.starts_with("instances")) {
            let pct = change
                .desired
                .as_ref()
                .and_then(|d| d.props.pointer("/refresh/min_healthy_percentage"))
                .and_then(Value::as_i64)
                .unwrap_or(90);
            out.push(format!(
                "moves to the launch template's new version and starts an instance refresh: instances are replaced in rolling fashion, keeping at least {pct}% in service"
            ));
        } else if change.fields.iter().any(|f| f.path.starts_with("launch_template")) {
            out.push("moves to the launch template's current version".into());
        }
        out
    }

    /// Its instances at the group's minimum..maximum size: their hours,
    /// root volumes and (when they have one) public IPv4 addresses.
    fn cost(&self, props: &GroupProps, prices: &Prices) -> Option<Cost> {
        let Some(i) = &props.instances else {
            return Some(Cost::Unknown { reason: "the launch template the group uses could not be read".into() });
        };
        let n = (props.min_size as f64, props.max_size as f64);
        let mut bill =
            prices.bill().hourly(&format!("{} instances", i.instance_type), n, &["ec2", "instances", &i.instance_type]);
        if let Some(OfImage::Value(gb)) = &i.root_volume.volume_size {
            let gb = *gb as f64;
            let what = format!("{} root volumes", i.root_volume.volume_type);
            bill = bill.monthly(&what, (n.0 * gb, n.1 * gb), "GB-month", &["ebs", &i.root_volume.volume_type]);
        }
        if i.associate_public_ip_address {
            bill = bill.hourly("public IPv4 addresses", n, &["vpc", "public_ipv4", "hour"]);
        }
        Some(bill.done())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<GroupProps>>> {
        let groups =
            paginated!(aws.autoscaling.describe_auto_scaling_groups().set_filters(Some(filters(aws, address))))
                .context("reading Auto Scaling groups")?;
        owned_then(
            aws,
            address,
            groups,
            |g| tag_map(g.tags()),
            |g, owner| async move {
                if deleting(&g) {
                    return Ok(None);
                }
                current(aws, owner.address, &g).await.map(Some)
            },
        )
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired<GroupProps>, ctx: &StepContext<'_>) -> Result<Current<GroupProps>> {
        let p = &d.props;
        let t = with_refresh(&aws.tags_for(&d.address, &p.tags), p.refresh.as_ref());
        let desired = p.desired_capacity.unwrap_or(p.min_size);
        let template = p.launch_template.api()?;
        let (subnets, tgs) = (Ref::all(&p.subnet_ids)?, Ref::all(&p.target_group_arns)?);
        let attempt = || async {
            aws.autoscaling_once
                .create_auto_scaling_group()
                .auto_scaling_group_name(&p.name)
                .launch_template(template.clone())
                .min_size(p.min_size as i32)
                .max_size(p.max_size as i32)
                .desired_capacity(desired as i32)
                .vpc_zone_identifier(subnets.join(","))
                .set_target_group_arns(Some(tgs.clone()))
                .health_check_type(&p.health_check_type)
                .health_check_grace_period(p.health_check_grace_period as i32)
                .set_tags(Some(tag_list(&p.name, &t)))
                .send()
                .await
                .aws()
                .map(|_| ())
        };
        // A just-created instance profile takes a few seconds to reach
        // Auto Scaling ("Invalid IAM Instance Profile"): retried meanwhile.
        let profile_started = std::time::Instant::now();
        let create = || async {
            loop {
                let r = attempt().await;
                match r {
                    Err(e)
                        if e.is("ValidationError")
                            && e.message.contains("Invalid IAM Instance Profile")
                            && profile_started.elapsed() < VISIBLE =>
                    {
                        ctx.status("waiting for the instance profile to reach Auto Scaling");
                        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                    }
                    other => return other,
                }
            }
        };
        // Who holds the name, as the last look-up saw it.
        let holder = Mutex::new(None);
        let ours = || async {
            let h = named(aws, &p.name).await?.first().map(|g| Holder::of(aws, &d.address, g));
            *holder.lock().expect("holder lock") = h;
            Ok((h == Some(Holder::Ours)).then_some(()))
        };
        // Without the SDK's blind retries: an endpoint that answers a second
        // CreateAutoScalingGroup by replacing the group (instead of
        // AlreadyExists) would leave the first group's instances running.
        // After an ambiguous failure, or when the name is taken, a group of
        // this address is an earlier attempt's.
        let made = create_guarded(
            &format!("Auto Scaling group {}", p.name),
            Codes { exists: &["AlreadyExists"], ..Codes::default() },
            ctx,
            create,
            ours,
        )
        .await;
        if let Err(e) = made {
            let taken = e.downcast_ref::<AwsError>().is_some_and(|e| e.is("AlreadyExists"));
            if !taken {
                return Err(e);
            }
            // The name is not this address's: a group of the same name
            // being deleted (wait, then create), gone meanwhile (create),
            // or someone else's (stop).
            let h = *holder.lock().expect("holder lock");
            match h {
                Some(Holder::Other) => bail!(
                    "an Auto Scaling group named {} already exists and is not part of stack {}: delete or rename it",
                    p.name,
                    aws.stack
                ),
                Some(Holder::Deleting) => {
                    wait_for("the previous group of this name to be deleted", TERMINATE, ctx, || async {
                        Ok(named(aws, &p.name).await?.is_empty().then_some(()))
                    })
                    .await?;
                }
                Some(Holder::Ours) | None => {}
            }
            retry_on(&["AlreadyExists"], "creating the Auto Scaling group", VISIBLE, ctx, create).await?;
        }
        converge_parts(aws, &p.name, p, None).await?;
        wait_capacity(aws, &p.name, desired, ctx).await?;
        reread(aws, &d.address, &p.name, "after creation").await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<GroupProps>, l: &Current<GroupProps>, _changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Current<GroupProps>> {
        let (p, old) = (&d.props, &l.props);
        let subnets = sorted(&p.subnet_ids)?;
        let new_template = p.instances != old.instances;
        let lt_changed = p.launch_template != old.launch_template || new_template;
        let mut req = aws.autoscaling.update_auto_scaling_group().auto_scaling_group_name(&p.name);
        let mut any = false;
        if lt_changed {
            req = req.launch_template(p.launch_template.api()?);
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
        if subnets != sorted(&old.subnet_ids)? {
            req = req.vpc_zone_identifier(subnets.join(","));
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
            req.send().await.aws().with_context(|| format!("updating Auto Scaling group {}", p.name))?;
        }

        // Target groups: attach the new before detaching the old, so a
        // replaced target group never leaves the group unregistered.
        let (tgs, old_tgs) = (sorted(&p.target_group_arns)?, sorted(&old.target_group_arns)?);
        let moved = set_delta(&tgs, &old_tgs);
        if !moved.added.is_empty() {
            aws.autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(&p.name)
                .set_target_group_arns(Some(moved.added.into_iter().cloned().collect()))
                .send()
                .await
                .aws()
                .context("attaching target groups")?;
        }
        if !moved.removed.is_empty() {
            aws.autoscaling
                .detach_load_balancer_target_groups()
                .auto_scaling_group_name(&p.name)
                .set_target_group_arns(Some(moved.removed.into_iter().cloned().collect()))
                .send()
                .await
                .aws()
                .context("detaching target groups")?;
        }

        converge_parts(aws, &p.name, p, Some(old)).await?;

        tags::sync(
            &Tagging,
            aws,
            &p.name,
            &with_refresh(&old.tags, old.refresh.as_ref()),
            &with_refresh(&p.tags, p.refresh.as_ref()),
        )
        .await?;
        if p.refresh.is_none() && old.refresh.is_some() {
            // `sync` never removes our own `infra:` tags.
            Tagging.untag(aws, &p.name, &[REFRESH_TAG.to_string()]).await.context("untagging")?;
        }

        if new_template {
            let id = match refresh(aws, &p.name, p.refresh.as_ref(), ctx).await {
                Ok(id) => id,
                Err(e) => {
                    // Without a refresh the running instances stay on the old
                    // version while the group says the new one, and the next
                    // plan would see nothing to do: put the group back, so
                    // the change (and its refresh) is still pending.
                    let back = async {
                        aws.autoscaling
                            .update_auto_scaling_group()
                            .auto_scaling_group_name(&p.name)
                            .launch_template(old.launch_template.api()?)
                            .send()
                            .await
                            .aws()?;
                        Ok::<_, anyhow::Error>(())
                    }
                    .await;
                    let version = old.launch_template.version.known().map_or("?", String::as_str);
                    let hint = match back {
                        Ok(()) => {
                            format!("the group is back on launch template version {version}; apply again to retry")
                        }
                        Err(b) => format!(
                            "the group could not be put back on version {version} ({b}); start the refresh by hand: aws autoscaling start-instance-refresh --auto-scaling-group-name {}",
                            p.name
                        ),
                    };
                    return Err(e.context(hint));
                }
            };
            ctx.status(&format!(
                "instance refresh {id} started (follow it with `aws autoscaling describe-instance-refreshes --auto-scaling-group-name {}`)",
                p.name
            ));
        }

        reread(aws, &d.address, &p.name, "during its update").await
    }

    /// In every Availability Zone of the group, at least one instance is
    /// healthy in each of its target groups (DescribeTargetHealth); without
    /// target groups, in service.
    async fn verify(&self, aws: &Aws, l: &Current<GroupProps>, _all: &[Live]) -> Result<Vec<Finding>> {
        let Some(g) = named(aws, &l.props.name).await?.pop() else {
            return Ok(vec![Finding::new(&l.address, "instances healthy", false, "the group is gone")]);
        };
        let zone_of: std::collections::BTreeMap<&str, &str> =
            g.instances().iter().filter_map(|i| Some((i.instance_id()?, i.availability_zone()?))).collect();
        let mut zones: Vec<&str> = g.availability_zones().iter().map(String::as_str).collect();
        zones.sort();
        let mut found = Vec::new();
        if l.props.target_group_arns.is_empty() {
            for az in &zones {
                let n = g
                    .instances()
                    .iter()
                    .filter(|i| i.availability_zone() == Some(az))
                    .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
                    .count();
                found.push(Finding::new(&l.address, format!("in service in {az}"), n > 0, format!("{n} in service")));
            }
            return Ok(found);
        }
        for tg in &l.props.target_group_arns {
            let arn = tg.get()?;
            let out = aws
                .elbv2
                .describe_target_health()
                .target_group_arn(arn)
                .send()
                .await
                .aws()
                .context("reading target health")?;
            let short = arn.rsplit(':').next().unwrap_or(arn);
            for az in &zones {
                let mut healthy = 0;
                let mut others = Vec::new();
                for t in out.target_health_descriptions() {
                    let id = t.target().and_then(|t| t.id()).unwrap_or_default();
                    if zone_of.get(id) != Some(az) {
                        continue;
                    }
                    let h = t.target_health();
                    match h.and_then(|h| h.state()).map(|s| s.as_str()) {
                        Some("healthy") => healthy += 1,
                        state => others.push(format!(
                            "{id} {}{}",
                            state.unwrap_or("unknown"),
                            h.and_then(|h| h.reason()).map(|r| format!(" ({})", r.as_str())).unwrap_or_default()
                        )),
                    }
                }
                let detail = if others.is_empty() {
                    format!("{healthy} healthy")
                } else {
                    format!("{healthy} healthy; {}", others.join(", "))
                };
                found.push(Finding::new(&l.address, format!("targets healthy in {az} ({short})"), healthy > 0, detail));
            }
        }
        Ok(found)
    }

    async fn delete(&self, aws: &Aws, l: &Current<GroupProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let name = l.attr("name").unwrap_or(&l.props.name);
        // ForceDelete terminates the instances with the group.
        retry_on(
            &["ScalingActivityInProgress", "ResourceInUse"],
            "deleting the Auto Scaling group",
            TERMINATE,
            ctx,
            || async {
                match aws
                    .autoscaling
                    .delete_auto_scaling_group()
                    .auto_scaling_group_name(name)
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
        .await?;
        wait_for("the group to be deleted", TERMINATE, ctx, || async {
            Ok(named(aws, name).await?.is_empty().then_some(()))
        })
        .await?;
        // Instances still shutting down hold network interfaces in the
        // group's subnets and security group: wait until they are gone.
        wait_for("its instances to terminate", TERMINATE, ctx, || async {
            let out = aws
                .ec2
                .describe_instances()
                .filters(
                    aws_sdk_ec2::types::Filter::builder().name("tag:aws:autoscaling:groupName").values(name).build(),
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
            Refresh { min_healthy_percentage: 90, instance_warmup: None },
            Refresh { min_healthy_percentage: 50, instance_warmup: Some(120) },
        ] {
            let v = r.tag_value();
            crate::stack::limits::validate_tag_value(&v).unwrap();
            assert_eq!(Refresh::from_tag(Some(&v)), Some(r));
        }
        assert_eq!(Refresh::from_tag(Some(&"junk".to_string())), None);
    }
}
