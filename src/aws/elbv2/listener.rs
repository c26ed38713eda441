//! The load balancer's listeners, with their rules as properties.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as ApiAction, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig,
    PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Rule as ApiRule,
    RuleCondition,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Tagging, VISIBLE, load_balancer, tag_list, tags_at, tags_of};
use crate::aws::collection::delta;
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned_then, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, Codes, create_guarded, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

/// A listener's (or rule's) action.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Action {
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

impl Action {
    fn api(&self) -> Result<ApiAction> {
        let b = ApiAction::builder().r#type(ActionTypeEnum::from(self.r#type.as_str()));
        Ok(match self.r#type.as_str() {
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
            _ => b.set_target_group_arn(self.target_group_arn.as_ref().map(Ref::get).transpose()?.cloned()).build(),
        })
    }

    fn from_api(a: &ApiAction) -> Action {
        let kind = a.r#type().map(|t| t.as_str()).unwrap_or_default().to_string();
        let mut out = Action {
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
                out.status_code = r.and_then(|r| r.status_code()).map(|s| s.as_str().to_string());
            }
            "fixed-response" => {
                let f = a.fixed_response_config();
                out.status_code = f.and_then(|f| f.status_code()).map(str::to_string);
                out.content_type = f.and_then(|f| f.content_type()).map(str::to_string);
                out.message_body = f.and_then(|f| f.message_body()).map(str::to_string);
            }
            _ => {
                out.target_group_arn = a
                    .target_group_arn()
                    .or_else(|| {
                        a.forward_config().and_then(|f| f.target_groups().first()).and_then(|t| t.target_group_arn())
                    })
                    .map(Ref::from);
            }
        }
        out
    }
}

/// A rule: requests matching its paths and hosts go to its target group.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Rule {
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_patterns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_headers: Option<Vec<String>>,
    pub target_group_arn: Ref,
}

impl Rule {
    fn conditions(&self) -> Vec<RuleCondition> {
        let mut c = Vec::new();
        if let Some(p) = &self.path_patterns {
            c.push(
                RuleCondition::builder()
                    .field("path-pattern")
                    .path_pattern_config(PathPatternConditionConfig::builder().set_values(Some(p.clone())).build())
                    .build(),
            );
        }
        if let Some(h) = &self.host_headers {
            c.push(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(HostHeaderConditionConfig::builder().set_values(Some(h.clone())).build())
                    .build(),
            );
        }
        c
    }

    fn action(&self) -> Result<ApiAction> {
        Ok(ApiAction::builder().r#type(ActionTypeEnum::Forward).target_group_arn(self.target_group_arn.get()?).build())
    }

    fn from_api(r: &ApiRule) -> Option<Rule> {
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
        let action = r.actions().first().map(Action::from_api)?;
        Some(Rule {
            priority,
            path_patterns: values("path-pattern"),
            host_headers: values("host-header"),
            target_group_arn: action.target_group_arn.unwrap_or_else(|| "".into()),
        })
    }
}

/// The oldest TLS version an ELB security policy accepts, from its name
/// (AWS's "Security policies for your Application Load Balancer":
/// `ELBSecurityPolicy-TLS13-1-2-2021-06` accepts 1.2 and up,
/// `ELBSecurityPolicy-TLS-1-1-2017-01` 1.1, `ELBSecurityPolicy-2016-08` and
/// the other undated-version names 1.0), as tenths: 10, 11, 12, 13.
fn minimum_tls(policy: &str) -> u8 {
    for marker in ["TLS13-1-", "TLS-1-", "FS-1-"] {
        if let Some(rest) = policy.split_once(marker).map(|(_, r)| r)
            && let Some(minor) = rest.chars().next().and_then(|c| c.to_digit(10))
        {
            return 10 + minor as u8;
        }
    }
    10
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListenerProps {
    pub load_balancer_arn: Ref,
    pub port: i64,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
    pub default_action: Action,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for ListenerProps {
    const KIND: &'static str = "elbv2.listener";
}

pub struct Listener;

/// Rule ARNs by priority, kept as an attribute for updates.
type RuleArns = BTreeMap<String, String>;

fn rule_arns(rules: &[ApiRule]) -> RuleArns {
    rules
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .filter_map(|r| Some((r.priority()?.to_string(), r.rule_arn()?.to_string())))
        .collect()
}

async fn rules(aws: &Aws, listener: &str) -> Result<Vec<ApiRule>> {
    paginated!(aws.elbv2.describe_rules().listener_arn(listener)).context("reading listener rules")
}

/// A listener with its ARN and its rules' ARNs as attributes.
fn current(address: String, arn: &str, p: ListenerProps, rules: &[ApiRule]) -> Current<ListenerProps> {
    Current::new(address, arn, p).with("arn", arn).with("rules", rule_arns(rules))
}

/// The listener with its rules as they are now (their ARNs).
async fn reread(aws: &Aws, address: &str, arn: &str, p: &ListenerProps) -> Result<Current<ListenerProps>> {
    let rules = rules(aws, arn).await?;
    Ok(current(address.to_string(), arn, p.clone(), &rules))
}

/// The certificate of an HTTPS listener, as the API takes it.
fn certificates(p: &ListenerProps) -> Option<Vec<Certificate>> {
    p.certificate_arn.as_ref().map(|c| vec![Certificate::builder().certificate_arn(c).build()])
}

/// Brings the listener's rules from `have` to `want`: rules are matched by
/// priority; changed ones are modified in place, so traffic never falls
/// through to the default action.
async fn converge_rules(
    aws: &Aws, listener: &str, want: &[Rule], have: &[Rule], arns: &RuleArns, rule_tags: &Tags, ctx: &StepContext<'_>,
) -> Result<()> {
    let d = delta(want, have, |r| r.priority);
    for (_, w) in &d.changed {
        let arn = arns
            .get(&w.priority.to_string())
            .ok_or_else(|| anyhow!("internal error: no ARN for rule {}", w.priority))?;
        aws.elbv2
            .modify_rule()
            .rule_arn(arn)
            .set_conditions(Some(w.conditions()))
            .actions(w.action()?)
            .send()
            .await
            .aws()
            .with_context(|| format!("changing rule {}", w.priority))?;
    }
    for w in &d.added {
        let action = w.action()?;
        retry_on(&["TargetGroupNotFound"], &format!("creating rule {}", w.priority), VISIBLE, ctx, || async {
            aws.elbv2
                .create_rule()
                .listener_arn(listener)
                .priority(w.priority as i32)
                .set_conditions(Some(w.conditions()))
                .actions(action.clone())
                // Rules are parts of the listener (its properties),
                // tagged like it for cost and ownership reports.
                .set_tags(Some(tag_list(rule_tags)))
                .send()
                .await
                .aws()
        })
        .await?;
    }
    for h in &d.removed {
        if let Some(arn) = arns.get(&h.priority.to_string()) {
            aws.elbv2
                .delete_rule()
                .rule_arn(arn)
                .send()
                .await
                .aws()
                .or_absent()
                .with_context(|| format!("deleting rule {}", h.priority))?;
        }
    }
    Ok(())
}

#[async_trait]
impl Kind for Listener {
    type Props = ListenerProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["load_balancer_arn"],
            // A new load balancer gets its listeners before the old one goes.
            create_before_destroy: true,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        if let Some(Value::Array(rules)) = props.get_mut("rules") {
            rules.sort_by_key(|r| r.get("priority").and_then(Value::as_i64).unwrap_or(0));
        }
    }

    /// The listeners of the stack's load balancers (the listing the load
    /// balancer kind reads, shared).
    /// A listener turning to plain HTTP, or to a TLS policy that accepts
    /// older protocol versions.
    fn widens(&self, before: Option<&ListenerProps>, after: &ListenerProps) -> Vec<String> {
        let Some(before) = before else { return Vec::new() };
        let mut out = Vec::new();
        if before.protocol == "HTTPS" && after.protocol == "HTTP" {
            out.push(format!("port {} turns from HTTPS to plain HTTP", after.port));
        }
        if let (Some(was), Some(now)) = (before.ssl_policy.as_deref(), after.ssl_policy.as_deref())
            && minimum_tls(now) < minimum_tls(was)
        {
            out.push(format!("TLS policy {now} accepts older TLS versions than {was}"));
        }
        out
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<ListenerProps>>> {
        let list_of = |lb: String| async move {
            let r = paginated!(aws.elbv2.describe_listeners().load_balancer_arn(&lb));
            Ok::<_, anyhow::Error>((lb, r.or_absent()?.unwrap_or_default()))
        };
        // The listeners of the load balancers named like the stack's are
        // listed while the load balancers' tags are read.
        let listed = load_balancer::listing(aws).await?;
        let likely = load_balancer::likely(aws, &listed).into_iter().map(|a| list_of(a.to_string()));
        let (lbs, early) = tokio::try_join!(load_balancer::cached(aws), futures::future::try_join_all(likely))?;
        let early: HashMap<String, Vec<_>> = early.into_iter().collect();
        let early = &early;
        let per_lb = lbs.iter().map(|lb| async move {
            match early.get(&lb.id) {
                Some(l) => Ok::<_, anyhow::Error>(l.clone()),
                None => Ok(list_of(lb.id.clone()).await?.1),
            }
        });
        let listeners: Vec<_> = futures::future::try_join_all(per_lb).await?.into_iter().flatten().collect();
        let arns: Vec<String> = listeners.iter().filter_map(|l| l.listener_arn().map(str::to_string)).collect();
        // The listeners of the stack's load balancers are the stack's: their
        // rules are read beside their tags.
        let (tags, all_rules) = tokio::try_join!(
            tags_of(aws, arns.clone()),
            futures::future::try_join_all(
                arns.iter().map(|arn| async move { Ok::<_, anyhow::Error>((arn.clone(), rules(aws, arn).await?)) })
            ),
        )?;
        let all_rules: HashMap<String, Vec<ApiRule>> = all_rules.into_iter().collect();
        let all_rules = &all_rules;
        owned_then(
            aws,
            address,
            listeners,
            |l| tags_at(&tags, l.listener_arn()),
            |l, owner| async move {
                let arn = l.listener_arn().unwrap_or_default().to_string();
                let rules = all_rules.get(&arn).cloned().unwrap_or_default();
                let mut rp: Vec<Rule> = rules.iter().filter_map(Rule::from_api).collect();
                rp.sort_by_key(|r| r.priority);
                let p = ListenerProps {
                    load_balancer_arn: l.load_balancer_arn().unwrap_or_default().into(),
                    port: l.port().map(i64::from).unwrap_or(0),
                    protocol: l.protocol().map(|p| p.as_str()).unwrap_or_default().into(),
                    certificate_arn: l.certificates().first().and_then(|c| c.certificate_arn()).map(str::to_string),
                    ssl_policy: l
                        .ssl_policy()
                        .map(str::to_string)
                        .filter(|_| l.protocol() == Some(&ProtocolEnum::Https)),
                    default_action: l
                        .default_actions()
                        .first()
                        .map(Action::from_api)
                        .ok_or_else(|| anyhow!("listener {arn} has no default action"))?,
                    rules: rp,
                    tags: owner.tags,
                };
                Ok(Some(current(owner.address, &arn, p, &rules)))
            },
        )
        .await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<ListenerProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<ListenerProps>> {
        let p = &d.props;
        let lb = p.load_balancer_arn.get()?;
        let default_action = p.default_action.api()?;
        let t = aws.tags_for(&d.address, &p.tags);
        // CreateListener is idempotent for the same settings on AWS, not on
        // every endpoint: no blind retry. A listener on this load balancer's
        // port (one per port) after an ambiguous failure is an earlier
        // attempt's.
        let arn = create_guarded(
            "the listener",
            Codes {
                exists: &["DuplicateListener"],
                wait: &["TargetGroupNotFound", "LoadBalancerNotFound", "CertificateNotFound"],
                timeout: VISIBLE,
            },
            ctx,
            || async {
                let out = aws
                    .elbv2_once
                    .create_listener()
                    .load_balancer_arn(lb)
                    .port(p.port as i32)
                    .protocol(ProtocolEnum::from(p.protocol.as_str()))
                    .set_certificates(certificates(p))
                    .set_ssl_policy(p.ssl_policy.clone())
                    .default_actions(default_action.clone())
                    .set_tags(Some(tag_list(&t)))
                    .send()
                    .await
                    .aws()?;
                Ok(out.listeners().first().and_then(|l| l.listener_arn()).unwrap_or_default().to_string())
            },
            || async {
                let out = aws.elbv2.describe_listeners().load_balancer_arn(lb).send().await.aws()?;
                Ok(out
                    .listeners()
                    .iter()
                    .find(|l| l.port() == Some(p.port as i32))
                    .and_then(|l| l.listener_arn())
                    .map(str::to_string))
            },
        )
        .await?;
        converge_rules(aws, &arn, &p.rules, &[], &RuleArns::new(), &t, ctx).await?;
        reread(aws, &d.address, &arn, p).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<ListenerProps>, l: &Current<ListenerProps>, _changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<ListenerProps>> {
        let (p, old) = (&d.props, &l.props);
        let listener_changed = p.port != old.port
            || p.protocol != old.protocol
            || p.certificate_arn != old.certificate_arn
            || p.ssl_policy != old.ssl_policy
            || p.default_action != old.default_action;
        if listener_changed {
            let default_action = p.default_action.api()?;
            retry_on(
                &["TargetGroupNotFound", "CertificateNotFound"],
                "changing the listener",
                VISIBLE,
                ctx,
                || async {
                    aws.elbv2
                        .modify_listener()
                        .listener_arn(&l.id)
                        .port(p.port as i32)
                        .protocol(ProtocolEnum::from(p.protocol.as_str()))
                        .set_certificates(certificates(p))
                        .set_ssl_policy(p.ssl_policy.clone())
                        .default_actions(default_action.clone())
                        .send()
                        .await
                        .aws()
                },
            )
            .await?;
        }
        let arns: RuleArns =
            l.attrs.get("rules").map(|v| serde_json::from_value(v.clone())).transpose()?.unwrap_or_default();
        let t = aws.tags_for(&d.address, &p.tags);
        converge_rules(aws, &l.id, &p.rules, &old.rules, &arns, &t, ctx).await?;
        tags::sync(&Tagging, aws, &l.id, &old.tags, &p.tags).await?;
        reread(aws, &d.address, &l.id, p).await
    }

    async fn delete(&self, aws: &Aws, l: &Current<ListenerProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.elbv2
            .delete_listener()
            .listener_arn(&l.id)
            .send()
            .await
            .aws()
            .or_absent()
            .context("deleting the listener")?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_policies_are_ordered_by_the_oldest_version_they_accept() {
        assert_eq!(minimum_tls("ELBSecurityPolicy-TLS13-1-2-2021-06"), 12);
        assert_eq!(minimum_tls("ELBSecurityPolicy-TLS13-1-3-2021-06"), 13);
        assert_eq!(minimum_tls("ELBSecurityPolicy-TLS-1-1-2017-01"), 11);
        assert_eq!(minimum_tls("ELBSecurityPolicy-FS-1-2-Res-2020-10"), 12);
        assert_eq!(minimum_tls("ELBSecurityPolicy-2016-08"), 10);
        assert_eq!(minimum_tls("ELBSecurityPolicy-TLS13-1-0-2021-06"), 10);
    }

    #[test]
    fn actions_round_trip() {
        for a in [
            Action {
                r#type: "forward".into(),
                target_group_arn: Some("arn:tg".into()),
                protocol: None,
                port: None,
                status_code: None,
                content_type: None,
                message_body: None,
            },
            Action {
                r#type: "redirect".into(),
                target_group_arn: None,
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                status_code: Some("HTTP_301".into()),
                content_type: None,
                message_body: None,
            },
            Action {
                r#type: "fixed-response".into(),
                target_group_arn: None,
                protocol: None,
                port: None,
                status_code: Some("404".into()),
                content_type: Some("text/plain".into()),
                message_body: Some("Not found".into()),
            },
        ] {
            assert_eq!(Action::from_api(&a.api().unwrap()), a);
        }
    }

    #[test]
    fn rules_round_trip() {
        let r = Rule {
            priority: 10,
            path_patterns: Some(vec!["/api/*".into()]),
            host_headers: None,
            target_group_arn: "arn:tg".into(),
        };
        let api = ApiRule::builder()
            .priority("10")
            .is_default(false)
            .set_conditions(Some(r.conditions()))
            .actions(r.action().unwrap())
            .build();
        assert_eq!(Rule::from_api(&api), Some(r));
    }
}
