//! Network ACLs: the subnets' stateless firewall, one per subnet tier, with
//! its numbered entries and its subnet associations as properties.
//!
//! Security groups are what admit traffic to each tier; an ACL is the
//! second, coarser line (AWS's "defense in depth", and what CIS AWS 5.1/5.2
//! and FSBP EC2.21 check): it keeps the subnets closed to everything from
//! the internet but the ports the tier serves and the answers to its own
//! connections. Being stateless, it must admit those answers explicitly (the
//! ephemeral ports, 1024-65535: NAT gateways and Lambda pick source ports
//! there, per the VPC user guide's "Ephemeral ports").
//!
//! A subnet is always associated with exactly one ACL: associating it with
//! this one *replaces* its association (with the VPC's default ACL, or
//! another), and deleting this one first hands its subnets back to the
//! VPC's default ACL, as AWS requires.

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, PortRange, ResourceType, RuleAction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DRAIN, Tagging, VISIBLE, client_token, filters, stack_acls, tag_map, tag_spec};
use crate::aws::collection::{delta, set_delta};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

/// The rule number AWS gives the implicit final "deny everything" entries
/// (`*`), which cannot be changed or deleted.
const IMPLICIT_RULE: i32 = 32767;

/// One numbered entry. Entries are evaluated in rule-number order, first
/// match wins, ingress and egress separately.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub egress: bool,
    pub rule_number: i32,
    /// IP protocol number: `-1` (all), `6` (TCP), `17` (UDP).
    pub protocol: String,
    /// `allow` or `deny`.
    pub action: String,
    pub cidr_block: String,
    /// Port range, for TCP and UDP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<(i32, i32)>,
}

impl Entry {
    pub fn allow(egress: bool, rule_number: i32, protocol: &str, cidr_block: &str, ports: Option<(i32, i32)>) -> Entry {
        Entry {
            egress,
            rule_number,
            protocol: protocol.into(),
            action: "allow".into(),
            cidr_block: cidr_block.into(),
            ports,
        }
    }

    fn of(e: &aws_sdk_ec2::types::NetworkAclEntry) -> Option<Entry> {
        let protocol = e.protocol()?.to_string();
        let ports = match protocol.as_str() {
            "6" | "17" => e.port_range().map(|p| (p.from().unwrap_or(0), p.to().unwrap_or(0))),
            _ => None,
        };
        Some(Entry {
            egress: e.egress().unwrap_or(false),
            rule_number: e.rule_number()?,
            protocol,
            action: e.rule_action().map(|a| a.as_str().to_string()).unwrap_or_default(),
            // An IPv6 entry (none is ever written here) shows as drift.
            cidr_block: e.cidr_block().or(e.ipv6_cidr_block()).unwrap_or_default().to_string(),
            ports,
        })
    }
}

/// The entries of an ACL that can be managed (without the implicit ones).
pub fn entries_of(acl: &aws_sdk_ec2::types::NetworkAcl) -> Vec<Entry> {
    let mut v: Vec<Entry> = acl
        .entries()
        .iter()
        .filter(|e| e.rule_number().is_some_and(|n| n < IMPLICIT_RULE))
        .filter_map(Entry::of)
        .collect();
    v.sort();
    v
}

async fn put_entry(aws: &Aws, acl: &str, e: &Entry, replace: bool) -> Result<(), AwsError> {
    let range = e.ports.map(|(from, to)| PortRange::builder().from(from).to(to).build());
    let action = RuleAction::from(e.action.as_str());
    if replace {
        return aws
            .ec2
            .replace_network_acl_entry()
            .network_acl_id(acl)
            .rule_number(e.rule_number)
            .egress(e.egress)
            .protocol(&e.protocol)
            .rule_action(action)
            .cidr_block(&e.cidr_block)
            .set_port_range(range)
            .send()
            .await
            .aws()
            .map(|_| ());
    }
    aws.ec2
        .create_network_acl_entry()
        .network_acl_id(acl)
        .rule_number(e.rule_number)
        .egress(e.egress)
        .protocol(&e.protocol)
        .rule_action(action)
        .cidr_block(&e.cidr_block)
        .set_port_range(range)
        .send()
        .await
        .aws()
        .map(|_| ())
}

/// Moves the ACL's entries from `have` to `want`, by (direction, rule
/// number). A create answered `NetworkAclEntryAlreadyExists` (a retry after
/// a lost answer, or a rule added by hand since the read) replaces the entry
/// instead, so it ends as the file says either way.
pub async fn converge_entries(aws: &Aws, acl: &str, want: &[Entry], have: &[Entry]) -> Result<()> {
    let d = delta(want, have, |e| (e.egress, e.rule_number));
    let what =
        |e: &Entry| format!("network ACL {acl} {} rule {}", if e.egress { "egress" } else { "ingress" }, e.rule_number);
    for e in &d.removed {
        aws.ec2
            .delete_network_acl_entry()
            .network_acl_id(acl)
            .rule_number(e.rule_number)
            .egress(e.egress)
            .send()
            .await
            .aws()
            .or_absent()
            .map_err(|err| anyhow::anyhow!(err).context(format!("deleting {}", what(e))))?;
    }
    for (_, e) in &d.changed {
        put_entry(aws, acl, e, true)
            .await
            .map_err(|err| anyhow::anyhow!(err).context(format!("replacing {}", what(e))))?;
    }
    for e in &d.added {
        let r = match put_entry(aws, acl, e, false).await {
            Err(err) if err.is("NetworkAclEntryAlreadyExists") => put_entry(aws, acl, e, true).await,
            other => other,
        };
        r.map_err(|err| anyhow::anyhow!(err).context(format!("adding {}", what(e))))?;
    }
    Ok(())
}

/// The ACL `subnet` is associated with now, and that association's id.
async fn association_of(aws: &Aws, subnet: &str) -> Result<Option<(String, String)>, AwsError> {
    let out = aws
        .ec2
        .describe_network_acls()
        .filters(Filter::builder().name("association.subnet-id").values(subnet).build())
        .send()
        .await
        .aws()?;
    Ok(out.network_acls().iter().find_map(|acl| {
        let a = acl.associations().iter().find(|a| a.subnet_id() == Some(subnet))?;
        Some((acl.network_acl_id()?.to_string(), a.network_acl_association_id()?.to_string()))
    }))
}

/// Associates `subnet` with `acl`, replacing its current association. Read
/// first, so a retry after a lost answer finds the work done; a just-made
/// subnet may not be listed yet.
async fn associate(aws: &Aws, acl: &str, subnet: &str) -> Result<()> {
    let not_listed = || AwsError {
        code: Some("InvalidSubnetID.NotFound".into()),
        message: format!("subnet {subnet} has no network ACL association yet"),
        status: None,
        no_response: false,
    };
    let codes = ["InvalidSubnetID.NotFound", "InvalidAssociationID.NotFound", "InvalidNetworkAclID.NotFound"];
    retry_on(
        &codes,
        &format!("associating {subnet} with network ACL {acl}"),
        VISIBLE,
        &StepContext::quiet(),
        || async {
            let Some((current, association)) = association_of(aws, subnet).await? else {
                return Err(not_listed());
            };
            if current == acl {
                return Ok(());
            }
            aws.ec2
                .replace_network_acl_association()
                .association_id(association)
                .network_acl_id(acl)
                .send()
                .await
                .aws()
                .map(|_| ())
        },
    )
    .await
}

/// The VPC's default network ACL.
pub async fn default_acl(aws: &Aws, vpc: &str) -> Result<Option<aws_sdk_ec2::types::NetworkAcl>, AwsError> {
    let out = aws
        .ec2
        .describe_network_acls()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(Filter::builder().name("default").values("true").build())
        .send()
        .await
        .aws()?;
    Ok(out.network_acls().first().cloned())
}

/// Hands `subnets` back to the VPC's default ACL (looked up once; a subnet
/// already gone is fine: its association went with it).
async fn release(aws: &Aws, vpc: &str, acl: &str, subnets: &[&String]) -> Result<()> {
    if subnets.is_empty() {
        return Ok(());
    }
    let Some(default) = default_acl(aws, vpc).await? else {
        bail!("VPC {vpc} has no default network ACL to hand the subnets back to");
    };
    let default = default.network_acl_id().unwrap_or_default().to_string();
    for subnet in subnets {
        if let Some((current, association)) = association_of(aws, subnet).await.or_absent()?.flatten()
            && current == acl
        {
            aws.ec2
                .replace_network_acl_association()
                .association_id(association)
                .network_acl_id(&default)
                .send()
                .await
                .aws()
                .or_absent()?;
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkAclProps {
    pub vpc_id: Ref,
    /// Ingress and egress entries, without the implicit final deny.
    pub entries: Vec<Entry>,
    /// The subnets that use this ACL.
    pub subnet_ids: Vec<Ref>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for NetworkAclProps {
    const KIND: &'static str = "ec2.network_acl";
}

pub struct NetworkAcl;

/// The stack's own (non-default) ACLs among `acls`.
fn build(aws: &Aws, address: Option<&str>, acls: &[aws_sdk_ec2::types::NetworkAcl]) -> Vec<Current<NetworkAclProps>> {
    owned(
        aws,
        address,
        acls.iter().filter(|a| !a.is_default().unwrap_or(false)),
        |a| tag_map(a.tags()),
        |a, owner| {
            let mut subnets: Vec<Ref> = a.associations().iter().filter_map(|s| s.subnet_id()).map(Ref::from).collect();
            subnets.sort();
            let props = NetworkAclProps {
                vpc_id: a.vpc_id().unwrap_or_default().into(),
                entries: entries_of(a),
                subnet_ids: subnets,
                tags: owner.tags,
            };
            Some(Current::new(owner.address, a.network_acl_id()?, props))
        },
    )
}

async fn converge(aws: &Aws, id: &str, new: &NetworkAclProps, old: &NetworkAclProps) -> Result<()> {
    converge_entries(aws, id, &new.entries, &old.entries).await?;
    let want = Ref::all(&new.subnet_ids)?;
    let have = Ref::all(&old.subnet_ids)?;
    let subnets = set_delta(&want, &have);
    for s in subnets.added {
        associate(aws, id, s).await?;
    }
    release(aws, new.vpc_id.get()?, id, &subnets.removed).await
}

#[async_trait]
impl Kind for NetworkAcl {
    type Props = NetworkAclProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["vpc_id"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "entries");
        sort_set(props, "subnet_ids");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<NetworkAclProps>>> {
        let acls = paginated!(aws.ec2.describe_network_acls().set_filters(Some(filters(aws, address))))?;
        Ok(build(aws, address, &acls))
    }

    /// From the listing shared with the default ACL kind.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<NetworkAclProps>>> {
        Ok(build(aws, None, &stack_acls(aws).await?))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<NetworkAclProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<NetworkAclProps>> {
        let p = &d.props;
        let vpc = p.vpc_id.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        // Idempotent by client token: a retry after a lost answer gets the
        // same ACL back.
        let token = client_token(aws, &d.address, &[vpc]);
        let out = retry_on(&["InvalidVpcID.NotFound"], "creating the network ACL", VISIBLE, ctx, || async {
            aws.ec2
                .create_network_acl()
                .vpc_id(vpc)
                .client_token(&token)
                .tag_specifications(tag_spec(ResourceType::NetworkAcl, &t))
                .send()
                .await
                .aws()
        })
        .await?;
        let Some(acl) = out.network_acl() else {
            bail!("creating the network ACL: AWS returned none");
        };
        let id = acl.network_acl_id().unwrap_or_default().to_string();
        // A new ACL has only the implicit entries; a retried create's may
        // have some of ours already.
        let live = NetworkAclProps {
            vpc_id: p.vpc_id.clone(),
            entries: entries_of(acl),
            subnet_ids: vec![],
            tags: Tags::new(),
        };
        converge(aws, &id, p, &live).await?;
        Ok(d.current(id))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<NetworkAclProps>, l: &Current<NetworkAclProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<NetworkAclProps>> {
        converge(aws, &l.id, &d.props, &l.props).await?;
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    /// Hands the subnets back to the VPC's default ACL, then deletes it.
    async fn delete(&self, aws: &Aws, l: &Current<NetworkAclProps>, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let subnets = Ref::all(&l.props.subnet_ids)?;
        release(aws, l.props.vpc_id.get()?, &l.id, &subnets.iter().collect::<Vec<_>>()).await?;
        retry_on(&["DependencyViolation"], "deleting the network ACL", DRAIN, ctx, || async {
            aws.ec2.delete_network_acl().network_acl_id(&l.id).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::NetworkAclEntry;

    #[test]
    fn entries_read_without_the_implicit_deny_and_ports_only_where_they_apply() {
        let entry = |n: i32, protocol: &str, ports: Option<(i32, i32)>| {
            let mut b = NetworkAclEntry::builder()
                .rule_number(n)
                .protocol(protocol)
                .rule_action(RuleAction::Allow)
                .egress(false)
                .cidr_block("0.0.0.0/0");
            if let Some((from, to)) = ports {
                b = b.port_range(PortRange::builder().from(from).to(to).build());
            }
            b.build()
        };
        let acl = aws_sdk_ec2::types::NetworkAcl::builder()
            .entries(entry(IMPLICIT_RULE, "-1", None))
            .entries(entry(110, "6", Some((1024, 65535))))
            // Some emulators give an all-protocols entry a port range.
            .entries(entry(100, "-1", Some((0, 0))))
            .build();
        assert_eq!(
            entries_of(&acl),
            vec![
                Entry::allow(false, 100, "-1", "0.0.0.0/0", None),
                Entry::allow(false, 110, "6", "0.0.0.0/0", Some((1024, 65535)))
            ]
        );
    }
}
