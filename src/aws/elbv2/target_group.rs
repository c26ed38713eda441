//! The target groups of the web groups.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetTypeEnum};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Tagging, VISIBLE, arn_suffix, tag_list, tags_at, tags_of};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, Codes, create_guarded, retry_on};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

/// How long a target group may stay in use by a listener being deleted.
const DRAIN: Duration = Duration::from_secs(10 * 60);

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct HealthCheck {
    pub protocol: String,
    pub port: String,
    pub path: String,
    pub matcher: String,
    pub interval: i64,
    pub timeout: i64,
    pub healthy_threshold: i64,
    pub unhealthy_threshold: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetGroupProps {
    /// The name is this plus `-` and 4 characters derived from what forces
    /// a replacement, so a replacement can exist next to the old group.
    pub name_prefix: String,
    pub port: i64,
    pub protocol: String,
    pub vpc_id: Ref,
    pub target_type: String,
    pub health_check: HealthCheck,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for TargetGroupProps {
    const KIND: &'static str = "elbv2.target_group";
}

pub struct TargetGroup;

/// A target group with the attributes others reference.
fn current(address: String, arn: &str, name: &str, p: TargetGroupProps) -> Current<TargetGroupProps> {
    Current::new(address, arn, p)
        .with("arn", arn)
        .with("arn_suffix", format!("targetgroup/{}", arn_suffix(arn, ":targetgroup/")))
        .with("name", name)
}

/// The health check settings on a create or a modify request (two builder
/// types with the same setters).
macro_rules! health_check {
    ($req:expr, $h:expr) => {{
        let h: &HealthCheck = $h;
        $req.health_check_protocol(ProtocolEnum::from(h.protocol.as_str()))
            .health_check_port(&h.port)
            .health_check_path(&h.path)
            .matcher(Matcher::builder().http_code(&h.matcher).build())
            .health_check_interval_seconds(h.interval as i32)
            .health_check_timeout_seconds(h.timeout as i32)
            .healthy_threshold_count(h.healthy_threshold as i32)
            .unhealthy_threshold_count(h.unhealthy_threshold as i32)
    }};
}

/// `prefix-xxxx`: the suffix hashes the address, what forces replacement
/// and a salt (bumped when the name is taken).
fn tg_name(aws: &Aws, address: &str, p: &TargetGroupProps, vpc: &str, salt: u32) -> String {
    let h = hex::encode(Sha256::digest(
        format!("{}/{address}/{vpc}/{}/{}/{}/{salt}", aws.stack, p.port, p.protocol, p.target_type).as_bytes(),
    ));
    format!("{}-{}", p.name_prefix, &h[..4])
}

#[async_trait]
impl Kind for TargetGroup {
    type Props = TargetGroupProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name_prefix", "port", "protocol", "vpc_id", "target_type"],
            create_before_destroy: true,
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

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<TargetGroupProps>>> {
        let tgs = paginated!(aws.elbv2.describe_target_groups())?;
        let arns = tgs.iter().filter_map(|t| t.target_group_arn().map(str::to_string)).collect();
        let tags = tags_of(aws, arns).await?;
        Ok(owned(
            aws,
            address,
            tgs,
            |t| tags_at(&tags, t.target_group_arn()),
            |t, owner| {
                let name = t.target_group_name().unwrap_or_default();
                let props = TargetGroupProps {
                    name_prefix: name.rsplit_once('-').map(|(a, _)| a).unwrap_or(name).to_string(),
                    port: t.port().map(i64::from).unwrap_or(0),
                    protocol: t.protocol().map(|p| p.as_str()).unwrap_or_default().into(),
                    vpc_id: t.vpc_id().unwrap_or_default().into(),
                    target_type: t.target_type().map(|p| p.as_str()).unwrap_or("instance").into(),
                    health_check: HealthCheck {
                        protocol: t.health_check_protocol().map(|p| p.as_str()).unwrap_or_default().into(),
                        port: t.health_check_port().unwrap_or("traffic-port").into(),
                        path: t.health_check_path().unwrap_or_default().into(),
                        matcher: t.matcher().and_then(|m| m.http_code()).unwrap_or_default().into(),
                        interval: t.health_check_interval_seconds().map(i64::from).unwrap_or(0),
                        timeout: t.health_check_timeout_seconds().map(i64::from).unwrap_or(0),
                        healthy_threshold: t.healthy_threshold_count().map(i64::from).unwrap_or(0),
                        unhealthy_threshold: t.unhealthy_threshold_count().map(i64::from).unwrap_or(0),
                    },
                    tags: owner.tags,
                };
                Some(current(owner.address, t.target_group_arn()?, name, props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<TargetGroupProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<TargetGroupProps>> {
        let p = &d.props;
        let vpc = p.vpc_id.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let h = &p.health_check;
        // CreateTargetGroup is idempotent for the same name and settings; a
        // name taken by another group (such as the one this replaces) moves
        // on to the next salt.
        for salt in 0..8 {
            let name = tg_name(aws, &d.address, p, vpc, salt);
            // Found by name among this stack's groups, at this address, with
            // these settings (the name hashes them): an earlier attempt's.
            let mine = || async {
                Ok(self
                    .find(aws, Some(&d.address))
                    .await?
                    .into_iter()
                    .find(|l| {
                        let o = &l.props;
                        l.attr("name") == Some(name.as_str())
                            && (o.vpc_id.known(), o.port, &o.protocol, &o.target_type)
                                == (Some(vpc), p.port, &p.protocol, &p.target_type)
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
                ctx,
                || async {
                    let req = aws
                        .elbv2_once
                        .create_target_group()
                        .name(&name)
                        .port(p.port as i32)
                        .protocol(ProtocolEnum::from(p.protocol.as_str()))
                        .vpc_id(vpc)
                        .target_type(TargetTypeEnum::from(p.target_type.as_str()))
                        .health_check_enabled(true);
                    let out = health_check!(req, h).set_tags(Some(tag_list(&t))).send().await.aws()?;
                    Ok(out.target_groups().first().and_then(|g| g.target_group_arn()).unwrap_or_default().to_string())
                },
                mine,
            )
            .await;
            match r {
                Ok(arn) => return Ok(current(d.address.clone(), &arn, &name, p.clone())),
                // Taken by another group (such as the one this replaces).
                Err(e) if format!("{e:#}").contains("DuplicateTargetGroupName") => continue,
                Err(e) => return Err(e),
            }
        }
        bail!("every name tried for the target group ({}-…) is taken; delete unused target groups", p.name_prefix)
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<TargetGroupProps>, l: &Current<TargetGroupProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<TargetGroupProps>> {
        let p = &d.props;
        let h = &p.health_check;
        if *h != l.props.health_check {
            let req = aws.elbv2.modify_target_group().target_group_arn(&l.id);
            health_check!(req, h).send().await.aws().context("changing the health check")?;
        }
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<TargetGroupProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        // In use until the listeners and rules pointing at it are gone.
        retry_on(&["ResourceInUse"], "deleting the target group", DRAIN, ctx, || async {
            aws.elbv2.delete_target_group().target_group_arn(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_suffixes() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/webapp-web-1a2b/943f017f100becff";
        let p = TargetGroupProps {
            name_prefix: "webapp-web".into(),
            port: 80,
            protocol: "HTTP".into(),
            vpc_id: "vpc-1".into(),
            target_type: "instance".into(),
            health_check: HealthCheck {
                protocol: "HTTP".into(),
                port: "traffic-port".into(),
                path: "/".into(),
                matcher: "200".into(),
                interval: 30,
                timeout: 5,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
            },
            tags: Tags::new(),
        };
        assert_eq!(
            current("compute.tg.web".into(), tg, "webapp-web-1a2b", p).attr("arn_suffix"),
            Some("targetgroup/webapp-web-1a2b/943f017f100becff")
        );
    }
}
