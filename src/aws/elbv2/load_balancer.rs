//! The Application Load Balancer.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancer as ApiLoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerStateEnum, LoadBalancerTypeEnum,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Tagging, VISIBLE, arn_suffix, tag_list, tags_at, tags_of};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::pricing::Prices;
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, Codes, create_guarded, wait_for};
use crate::engine::cost::Cost;
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

/// Cache key of the stack's load balancers, read by the load balancer and
/// listener kinds ([`Aws::cached`]).
const LOAD_BALANCERS: &str = "elbv2.load_balancers";
/// How long a load balancer may take to become active, or to release its
/// network interfaces once deleted.
const SETTLE: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadBalancerProps {
    pub name: String,
    pub scheme: String,
    pub ip_address_type: String,
    pub subnet_ids: Vec<Ref>,
    pub security_group_ids: Vec<Ref>,
    /// Load balancer attributes the stack sets (`routing.http.drop_invalid_header_fields.enabled`,
    /// `deletion_protection.enabled`): only these keys are read and compared.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Tags,
}

/// The attributes the stack manages; AWS's defaults stand for the others.
pub const MANAGED_ATTRIBUTES: &[&str] =
    &["deletion_protection.enabled", "routing.http.drop_invalid_header_fields.enabled"];

/// The managed attributes of the load balancer `arn`.
async fn attributes(aws: &Aws, arn: &str) -> Result<BTreeMap<String, String>> {
    let out = aws.elbv2.describe_load_balancer_attributes().load_balancer_arn(arn).send().await.aws()?;
    Ok(out
        .attributes()
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .filter(|(k, _)| MANAGED_ATTRIBUTES.contains(&k.as_str()))
        .collect())
}

/// Sets `want` on the load balancer `arn` (those that differ from `have`).
async fn set_attributes(
    aws: &Aws, arn: &str, want: &BTreeMap<String, String>, have: &BTreeMap<String, String>,
) -> Result<()> {
    let changed: Vec<_> = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| LoadBalancerAttribute::builder().key(k).value(v).build())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    aws.elbv2
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .set_attributes(Some(changed))
        .send()
        .await
        .aws()
        .context("setting the load balancer's attributes")?;
    Ok(())
}

impl Props for LoadBalancerProps {
    const KIND: &'static str = "elbv2.load_balancer";
}

pub struct LoadBalancer;

/// The load balancer's attributes others reference.
fn with_attrs(c: Current<LoadBalancerProps>, lb: &ApiLoadBalancer) -> Current<LoadBalancerProps> {
    let arn = lb.load_balancer_arn().unwrap_or_default();
    c.with("arn", arn)
        .with("arn_suffix", arn_suffix(arn, ":loadbalancer/"))
        .with("dns_name", lb.dns_name())
        .with("zone_id", lb.canonical_hosted_zone_id())
        .with("name", lb.load_balancer_name())
}

async fn describe(aws: &Aws, arn: Option<&str>) -> Result<Vec<ApiLoadBalancer>> {
    let mut req = aws.elbv2.describe_load_balancers();
    if let Some(a) = arn {
        req = req.load_balancer_arns(a);
    }
    Ok(paginated!(req).or_absent()?.unwrap_or_default())
}

/// Cache key of the region's application load balancers as listed, shared
/// within one read by the load balancer and listener kinds.
const LISTING: &str = "elbv2.load_balancer_listing";

/// The region's application load balancers, as DescribeLoadBalancers
/// lists them (no tags).
async fn list(aws: &Aws) -> Result<Vec<ApiLoadBalancer>> {
    Ok(describe(aws, None)
        .await?
        .into_iter()
        .filter(|l| l.r#type() == Some(&LoadBalancerTypeEnum::Application))
        .collect())
}

/// [`list`], listed once per read.
pub async fn listing(aws: &Aws) -> Result<Arc<Vec<ApiLoadBalancer>>> {
    aws.cached(LISTING, || list(aws)).await
}

/// The ARNs of those of `lbs` named like the stack's (`<stack>-...`): the
/// stack's, unless their tags say otherwise. Reads that need the stack's
/// load balancers start on these beside the tag read, a plan's chain one
/// round trip shorter; a load balancer of the stack not named so is read
/// after its tags.
pub fn likely<'a>(aws: &Aws, lbs: &'a [ApiLoadBalancer]) -> Vec<&'a str> {
    let prefix = format!("{}-", aws.stack);
    lbs.iter()
        .filter(|l| l.load_balancer_name().is_some_and(|n| n.starts_with(&prefix)))
        .filter_map(|l| l.load_balancer_arn())
        .collect()
}

/// The stack's load balancers, read once per run and shared with the
/// listener kind (which lists the listeners of each).
pub async fn cached(aws: &Aws) -> Result<Arc<Vec<Current<LoadBalancerProps>>>> {
    aws.cached(LOAD_BALANCERS, || async { build(aws, None, listing(aws).await?.to_vec()).await }).await
}

/// Drops the cached listings: a load balancer was created, changed or deleted.
fn forget(aws: &Aws) {
    aws.forget(LOAD_BALANCERS);
    aws.forget(LISTING);
}

/// The stack's load balancers among `lbs` (at `address` only, when
/// given), with their attributes.
async fn build(aws: &Aws, address: Option<&str>, lbs: Vec<ApiLoadBalancer>) -> Result<Vec<Current<LoadBalancerProps>>> {
    let arns: Vec<String> = lbs.iter().filter_map(|l| l.load_balancer_arn().map(str::to_string)).collect();
    // The attributes of those named like the stack's are read beside the
    // tags; any other the tags show to be the stack's is read after.
    let (tags, early) = tokio::try_join!(
        tags_of(aws, arns),
        futures::future::try_join_all(
            likely(aws, &lbs)
                .into_iter()
                .map(|arn| async move { Ok::<_, anyhow::Error>((arn.to_string(), attributes(aws, arn).await?)) })
        ),
    )?;
    let early: HashMap<String, BTreeMap<String, String>> = early.into_iter().collect();
    let found = owned(
        aws,
        address,
        lbs,
        |lb| tags_at(&tags, lb.load_balancer_arn()),
        |lb, owner| {
            let mut subnets: Vec<Ref> =
                lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(Ref::from)).collect();
            subnets.sort();
            let mut sgs: Vec<Ref> = lb.security_groups().iter().map(|g| Ref::from(g.as_str())).collect();
            sgs.sort();
            let props = LoadBalancerProps {
                name: lb.load_balancer_name().unwrap_or_default().into(),
                scheme: lb.scheme().map(|s| s.as_str()).unwrap_or_default().into(),
                ip_address_type: lb.ip_address_type().map(|s| s.as_str()).unwrap_or("ipv4").into(),
                subnet_ids: subnets,
                security_group_ids: sgs,
                attributes: BTreeMap::new(),
                tags: owner.tags,
            };
            let arn = lb.load_balancer_arn()?;
            Some(with_attrs(Current::new(owner.address, arn, props), &lb))
        },
    );
    futures::future::try_join_all(found.into_iter().map(|mut c| async {
        c.props.attributes = match early.get(&c.id) {
            Some(a) => a.clone(),
            None => attributes(aws, &c.id).await?,
        };
        Ok::<_, anyhow::Error>(c)
    }))
    .await
}

/// `refs`' values, sorted (a set).
fn sorted(refs: &[Ref]) -> Result<Vec<String>> {
    let mut v = Ref::all(refs)?;
    v.sort();
    Ok(v)
}

#[async_trait]
impl Kind for LoadBalancer {
    type Props = LoadBalancerProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name", "scheme"],
            // The scheme is part of the name, so the new one can exist next
            // to the old one while the listeners move.
            create_before_destroy: true,
            weight: 10,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "subnet_ids");
        sort_set(props, "security_group_ids");
    }

    fn protected(&self, p: &LoadBalancerProps) -> bool {
        p.attributes.get("deletion_protection.enabled").is_some_and(|v| v == "true")
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        match change.action {
            Action::Replace => vec![
                "a new load balancer is created first and the listeners move to it; its DNS name changes (update your DNS records)".into(),
            ],
            _ => Vec::new(),
        }
    }

    /// Uncached: the create path looks for what an earlier attempt made.
    /// An Application Load Balancer's hours, and when internet-facing its
    /// public IPv4 address in each subnet's AZ; LCUs come with traffic.
    fn cost(&self, props: &LoadBalancerProps, prices: &Prices) -> Option<Cost> {
        let public = if props.scheme == "internet-facing" { props.subnet_ids.len() as f64 } else { 0.0 };
        let bill = prices.bill().hourly("load balancer", (1.0, 1.0), &["elb", "alb", "hour"]).hourly(
            "public IPv4, one per AZ",
            (public, public),
            &["vpc", "public_ipv4", "hour"],
        );
        Some(bill.plus(&["elb", "alb", "lcu_hour"], "per LCU-hour").done())
    }

    /// Turning internet-facing (or made so) opens it to the internet.
    fn widens(&self, before: Option<&LoadBalancerProps>, after: &LoadBalancerProps) -> Vec<String> {
        let public = |p: &LoadBalancerProps| p.scheme == "internet-facing";
        if public(after) && !before.is_some_and(public) {
            vec!["internet-facing: reachable from the internet".into()]
        } else {
            Vec::new()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<LoadBalancerProps>>> {
        build(aws, address, list(aws).await?).await
    }

    async fn read(&self, aws: &Aws) -> Result<Vec<Current<LoadBalancerProps>>> {
        Ok(cached(aws).await?.to_vec())
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<LoadBalancerProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<LoadBalancerProps>> {
        forget(aws);
        let p = &d.props;
        let (subnets, sgs) = (Ref::all(&p.subnet_ids)?, Ref::all(&p.security_group_ids)?);
        let t = aws.tags_for(&d.address, &p.tags);
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
            ctx,
            || async {
                let out = aws
                    .elbv2_once
                    .create_load_balancer()
                    .name(&p.name)
                    .r#type(LoadBalancerTypeEnum::Application)
                    .scheme(LoadBalancerSchemeEnum::from(p.scheme.as_str()))
                    .ip_address_type(IpAddressType::from(p.ip_address_type.as_str()))
                    .set_subnets(Some(subnets.clone()))
                    .set_security_groups(Some(sgs.clone()))
                    .set_tags(Some(tag_list(&t)))
                    .send()
                    .await
                    .aws()?;
                Ok(out.load_balancers().first().and_then(|l| l.load_balancer_arn()).unwrap_or_default().to_string())
            },
            || async {
                Ok(self.find(aws, Some(&d.address)).await?.into_iter().find(|l| l.props.name == p.name).map(|l| l.id))
            },
        )
        .await
        .with_context(|| format!("load balancer {} in {} (stack {})", p.name, aws.region, aws.stack))?;
        let lb = wait_for("the load balancer to become active", SETTLE, ctx, || async {
            let Some(lb) = describe(aws, Some(&arn)).await?.into_iter().next() else {
                return Ok(None);
            };
            match lb.state().and_then(|s| s.code()) {
                Some(LoadBalancerStateEnum::Active) => Ok(Some(lb)),
                Some(LoadBalancerStateEnum::Failed) => bail!(
                    "the load balancer failed: {}",
                    lb.state().and_then(|s| s.reason()).unwrap_or("no reason given")
                ),
                _ => Ok(None),
            }
        })
        .await?;
        set_attributes(aws, &arn, &p.attributes, &BTreeMap::new()).await?;
        Ok(with_attrs(d.current(&arn), &lb))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<LoadBalancerProps>, l: &Current<LoadBalancerProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<LoadBalancerProps>> {
        forget(aws);
        let (p, old) = (&d.props, &l.props);
        let subnets = sorted(&p.subnet_ids)?;
        if subnets != sorted(&old.subnet_ids)? {
            aws.elbv2
                .set_subnets()
                .load_balancer_arn(&l.id)
                .set_subnets(Some(subnets))
                .send()
                .await
                .aws()
                .context("moving the load balancer to its subnets")?;
        }
        let sgs = sorted(&p.security_group_ids)?;
        if sgs != sorted(&old.security_group_ids)? {
            aws.elbv2
                .set_security_groups()
                .load_balancer_arn(&l.id)
                .set_security_groups(Some(sgs))
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
        set_attributes(aws, &l.id, &p.attributes, &old.attributes).await?;
        tags::sync(&Tagging, aws, &l.id, &old.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<LoadBalancerProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        forget(aws);
        aws.elbv2
            .delete_load_balancer()
            .load_balancer_arn(&l.id)
            .send()
            .await
            .aws()
            .or_absent()
            .context("deleting the load balancer")?;
        wait_for("the load balancer to be deleted", SETTLE, ctx, || async {
            Ok(describe(aws, Some(&l.id)).await?.is_empty().then_some(()))
        })
        .await?;
        // Its network interfaces outlive it for a while, and hold on to its
        // security group and subnets: wait until they are released.
        let suffix = arn_suffix(&l.id, ":loadbalancer/");
        if !suffix.is_empty() {
            let description = format!("ELB {suffix}");
            wait_for("the load balancer's network interfaces to be released", SETTLE, ctx, || async {
                let enis = aws
                    .ec2
                    .describe_network_interfaces()
                    .filters(aws_sdk_ec2::types::Filter::builder().name("description").values(&description).build())
                    .send()
                    .await
                    .aws()?;
                Ok(enis.network_interfaces().is_empty().then_some(()))
            })
            .await?;
        }
        Ok(None)
    }
}
