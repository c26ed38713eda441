//! Security groups, with their ingress and egress rules as properties.

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, UserIdGroupPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{DRAIN, Tagging, VISIBLE, filters, stack_groups, tag_map, tag_spec};
use crate::aws::collection::set_delta;
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

/// One rule, at the EC2 API's granularity: one source per rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group_id: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Rule {
    /// All traffic to anywhere: what AWS gives a new group as egress.
    pub fn all_outbound() -> Rule {
        Rule {
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr: Some("0.0.0.0/0".into()),
            source_group_id: None,
            description: None,
        }
    }
}

impl Rule {
    /// `tcp/22`, `tcp/1024-2048`, `all traffic`.
    fn ports(&self) -> String {
        let proto = match self.protocol.as_str() {
            "-1" => return "all traffic".into(),
            "6" => "tcp",
            "17" => "udp",
            p => p,
        };
        if self.from_port == self.to_port {
            format!("{proto}/{}", self.from_port)
        } else {
            format!("{proto}/{}-{}", self.from_port, self.to_port)
        }
    }

    /// Whether `self` already lets in everything `other` does: the same
    /// protocol, ports that include `other`'s, and a CIDR that contains
    /// `other`'s.
    fn covers(&self, other: &Rule) -> bool {
        let net = |c: &Option<String>| c.as_deref().and_then(|c| c.parse::<ipnet::IpNet>().ok());
        let ports = self.protocol == "-1"
            || (self.protocol == other.protocol && self.from_port <= other.from_port && self.to_port >= other.to_port);
        ports && matches!((net(&self.cidr), net(&other.cidr)), (Some(a), Some(b)) if a.contains(&b))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecurityGroupProps {
    pub vpc_id: Ref,
    pub group_name: String,
    pub description: String,
    pub ingress: Vec<Rule>,
    pub egress: Vec<Rule>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for SecurityGroupProps {
    const KIND: &'static str = "ec2.security_group";
}

pub struct SecurityGroup;

/// A group's permissions as rules, one source each.
pub fn flatten(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let all = protocol == "-1";
        let port = |p: Option<i32>| {
            if all { -1 } else { p.map(i64::from).unwrap_or(-1) }
        };
        let (from_port, to_port) = (port(p.from_port()), port(p.to_port()));
        let rule = |cidr: Option<&str>, group: Option<&str>, description: Option<&str>| Rule {
            protocol: protocol.clone(),
            from_port,
            to_port,
            cidr: cidr.map(str::to_string),
            source_group_id: group.map(Ref::from),
            description: description.filter(|d| !d.is_empty()).map(str::to_string),
        };
        for r in p.ip_ranges() {
            out.push(rule(r.cidr_ip(), None, r.description()));
        }
        for g in p.user_id_group_pairs() {
            out.push(rule(None, g.group_id(), g.description()));
        }
    }
    out
}

fn permission(r: &Rule) -> Result<IpPermission> {
    let mut b = IpPermission::builder().ip_protocol(&r.protocol);
    if r.protocol != "-1" {
        b = b.from_port(r.from_port as i32).to_port(r.to_port as i32);
    }
    if let Some(c) = &r.cidr {
        b = b.ip_ranges(IpRange::builder().cidr_ip(c).set_description(r.description.clone()).build());
    }
    if let Some(g) = &r.source_group_id {
        b = b.user_id_group_pairs(
            UserIdGroupPair::builder().group_id(g.get()?).set_description(r.description.clone()).build(),
        );
    }
    Ok(b.build())
}

fn permissions<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Result<Vec<IpPermission>> {
    rules.into_iter().map(permission).collect()
}

/// Which direction a rule change applies to.
#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

async fn revoke(aws: &Aws, id: &str, dir: Direction, perms: Vec<IpPermission>) -> Result<()> {
    if perms.is_empty() {
        return Ok(());
    }
    retry_on(&["InvalidGroup.NotFound"], "revoking rules", VISIBLE, &StepContext::quiet(), || async {
        let r: Result<(), AwsError> = match dir {
            Direction::Ingress => aws
                .ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(perms.clone()))
                .send()
                .await
                .aws()
                .map(|_| ()),
            Direction::Egress => aws
                .ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(perms.clone()))
                .send()
                .await
                .aws()
                .map(|_| ()),
        };
        r.or_absent()
    })
    .await?;
    Ok(())
}

async fn authorize(aws: &Aws, id: &str, dir: Direction, perms: Vec<IpPermission>) -> Result<()> {
    if perms.is_empty() {
        return Ok(());
    }
    retry_on(&["InvalidGroup.NotFound"], "authorizing rules", VISIBLE, &StepContext::quiet(), || async {
        let r: Result<(), AwsError> = match dir {
            Direction::Ingress => aws
                .ec2
                .authorize_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(perms.clone()))
                .send()
                .await
                .aws()
                .map(|_| ()),
            Direction::Egress => aws
                .ec2
                .authorize_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(perms.clone()))
                .send()
                .await
                .aws()
                .map(|_| ()),
        };
        match r {
            // A retry after a lost answer.
            Err(e) if e.is("InvalidPermission.Duplicate") => Ok(()),
            other => other,
        }
    })
    .await
}

/// Revokes what `old` has and `new` lacks, then authorizes the rest.
async fn converge(aws: &Aws, id: &str, new: &SecurityGroupProps, old_in: &[Rule], old_out: &[Rule]) -> Result<()> {
    converge_rules(aws, id, (&new.ingress, &new.egress), (old_in, old_out)).await
}

/// Moves a group's (ingress, egress) rules from `old` to `new`: revokes
/// first, then authorizes.
pub async fn converge_rules(aws: &Aws, id: &str, new: (&[Rule], &[Rule]), old: (&[Rule], &[Rule])) -> Result<()> {
    let ingress = set_delta(new.0, old.0);
    let egress = set_delta(new.1, old.1);
    revoke(aws, id, Direction::Ingress, permissions(ingress.removed)?).await?;
    revoke(aws, id, Direction::Egress, permissions(egress.removed)?).await?;
    authorize(aws, id, Direction::Ingress, permissions(ingress.added)?).await?;
    authorize(aws, id, Direction::Egress, permissions(egress.added)?).await
}

#[async_trait]
impl Kind for SecurityGroup {
    type Props = SecurityGroupProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id", "group_name", "description"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "ingress");
        sort_set(props, "egress");
    }

    /// An ingress rule from a CIDR that no rule before let in: from
    /// anywhere (`0.0.0.0/0`, `::/0`), or from a source wider than before
    /// on those ports. Rules from other groups stay inside the VPC's trust.
    fn widens(&self, before: Option<&SecurityGroupProps>, after: &SecurityGroupProps) -> Vec<String> {
        let was: &[Rule] = before.map(|b| b.ingress.as_slice()).unwrap_or_default();
        let mut out = Vec::new();
        for r in after.ingress.iter().filter(|r| r.cidr.is_some()) {
            if was.iter().any(|w| w.covers(r)) {
                continue;
            }
            let cidr = r.cidr.as_deref().unwrap_or_default();
            let anywhere = cidr.ends_with("/0");
            let narrower = was.iter().filter(|w| r.covers(w)).filter_map(|w| w.cidr.as_deref()).next();
            out.push(match (anywhere, narrower) {
                (true, _) => format!("opens {} to the internet ({cidr})", r.ports()),
                (false, Some(n)) => format!("opens {} to {cidr}, wider than {n}", r.ports()),
                (false, None) => format!("opens {} to {cidr}", r.ports()),
            });
        }
        out
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<SecurityGroupProps>>> {
        let groups = paginated!(aws.ec2.describe_security_groups().set_filters(Some(filters(aws, address))))?;
        Ok(Self::build(aws, address, &groups))
    }

    /// From the listing shared with the default-group kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<SecurityGroupProps>>> {
        Ok(Self::build(aws, None, &stack_groups(aws).await?))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<SecurityGroupProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<SecurityGroupProps>> {
        let p = &d.props;
        let vpc_id = p.vpc_id.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let id = create_once(
            &d.address,
            || async {
                let out = aws
                    .ec2_once
                    .create_security_group()
                    .group_name(&p.group_name)
                    .description(&p.description)
                    .vpc_id(vpc_id)
                    .tag_specifications(tag_spec(ResourceType::SecurityGroup, &t))
                    .send()
                    .await
                    .aws()?;
                Ok(out.group_id().unwrap_or_default().to_string())
            },
            || async { Ok(self.find(aws, Some(&d.address)).await?.pop().map(|l| l.id)) },
        )
        .await?;
        // A new group allows all egress; converge from that.
        converge(aws, &id, p, &[], &[Rule::all_outbound()]).await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<SecurityGroupProps>, l: &Current<SecurityGroupProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<SecurityGroupProps>> {
        converge(aws, &l.id, &d.props, &l.props.ingress, &l.props.egress).await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<SecurityGroupProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        retry_on(&["DependencyViolation", "InvalidGroup.InUse"], "deleting the security group", DRAIN, ctx, || async {
            aws.ec2.delete_security_group().group_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}

impl SecurityGroup {
    /// The stack's groups among `groups`, the VPCs' default groups left to
    /// their own kind (`ec2.default_security_group`).
    fn build(
        aws: &Aws, address: Option<&str>, groups: &[aws_sdk_ec2::types::SecurityGroup],
    ) -> Vec<Current<SecurityGroupProps>> {
        owned(
            aws,
            address,
            groups.iter().filter(|g| g.group_name() != Some("default")),
            |g| tag_map(g.tags()),
            |g, owner| {
                let mut props = SecurityGroupProps {
                    vpc_id: g.vpc_id().unwrap_or_default().into(),
                    group_name: g.group_name().unwrap_or_default().into(),
                    description: g.description().unwrap_or_default().into(),
                    ingress: flatten(g.ip_permissions()),
                    egress: flatten(g.ip_permissions_egress()),
                    tags: owner.tags,
                };
                props.ingress.sort();
                props.ingress.dedup();
                props.egress.sort();
                props.egress.dedup();
                Some(
                    Current::new(owner.address, g.group_id().unwrap_or_default(), props)
                        .with("arn", json!(g.security_group_arn())),
                )
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rules: &[(i64, &str)]) -> SecurityGroupProps {
        SecurityGroupProps {
            vpc_id: Ref::Value("vpc-1".into()),
            group_name: "g".into(),
            description: "d".into(),
            ingress: rules
                .iter()
                .map(|(port, cidr)| Rule {
                    protocol: "tcp".into(),
                    from_port: *port,
                    to_port: *port,
                    cidr: Some(cidr.to_string()),
                    source_group_id: None,
                    description: None,
                })
                .collect(),
            egress: vec![Rule::all_outbound()],
            tags: Tags::default(),
        }
    }

    #[test]
    fn an_ingress_rule_widens_when_no_rule_before_let_its_source_in() {
        let was = group(&[(22, "10.0.1.0/24"), (443, "0.0.0.0/0")]);
        let now = group(&[(22, "10.0.0.0/16"), (443, "0.0.0.0/0"), (80, "::/0"), (22, "10.0.1.128/25")]);
        assert_eq!(
            SecurityGroup.widens(Some(&was), &now),
            ["opens tcp/22 to 10.0.0.0/16, wider than 10.0.1.0/24", "opens tcp/80 to the internet (::/0)"]
        );
        assert!(SecurityGroup.widens(Some(&now), &was).is_empty(), "narrowing is not flagged");
        assert_eq!(SecurityGroup.widens(None, &group(&[(5432, "10.0.0.0/8")])), ["opens tcp/5432 to 10.0.0.0/8"]);
    }
}
