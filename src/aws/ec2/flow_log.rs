//! VPC flow logs to CloudWatch Logs: every accepted and rejected connection
//! of the VPC's network interfaces, for incident response (what a security
//! team's scanner checks first: CIS AWS 3.9 / prowler `vpc_flow_logs_enabled`).

use anyhow::{Result, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, ResourceType, TrafficType};
use serde::{Deserialize, Serialize};

use super::{Tagging, VISIBLE, client_token, filters, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowLogProps {
    /// The VPC whose traffic is logged.
    pub vpc_id: Ref,
    /// `ALL`, `ACCEPT` or `REJECT`.
    pub traffic_type: String,
    /// The CloudWatch Logs group the records go to.
    pub log_group_name: Ref,
    /// The role the flow logs service assumes to write them.
    pub role_arn: Ref,
    /// Seconds records are aggregated over: 60 or 600.
    pub max_aggregation_interval: i32,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for FlowLogProps {
    const KIND: &'static str = "ec2.flow_log";
}

pub struct FlowLog;

#[async_trait]
impl Kind for FlowLog {
    type Props = FlowLogProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            // A flow log cannot be changed, only replaced.
            replace_fields: &["vpc_id", "traffic_type", "log_group_name", "role_arn", "max_aggregation_interval"],
            create_before_destroy: true,
            ..KindInfo::default()
        }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<FlowLogProps>>> {
        let logs = paginated!(aws.ec2.describe_flow_logs().set_filter(Some(filters(aws, address))))
            .or_absent()?
            .unwrap_or_default();
        Ok(owned(
            aws,
            address,
            logs,
            |f| tag_map(f.tags()),
            |f, owner| {
                let props = FlowLogProps {
                    vpc_id: f.resource_id().unwrap_or_default().into(),
                    traffic_type: f.traffic_type().map(|t| t.as_str()).unwrap_or("ALL").to_string(),
                    log_group_name: f.log_group_name().unwrap_or_default().into(),
                    role_arn: f.deliver_logs_permission_arn().unwrap_or_default().into(),
                    max_aggregation_interval: f.max_aggregation_interval().unwrap_or(600),
                    tags: owner.tags,
                };
                Some(Current::new(owner.address, f.flow_log_id()?, props))
            },
        ))
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<FlowLogProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<FlowLogProps>> {
        let p = &d.props;
        let (vpc, group, role) = (p.vpc_id.get()?, p.log_group_name.get()?, p.role_arn.get()?);
        let t = aws.tags_for(&d.address, &p.tags);
        let token = client_token(aws, &d.address, &[vpc, group, role, &p.traffic_type]);
        let out = retry_on(
            // A just-created role is not assumable everywhere at once.
            &["InvalidVpcID.NotFound", "InvalidParameter"],
            "creating the flow log",
            VISIBLE,
            ctx,
            || async {
                aws.ec2
                    .create_flow_logs()
                    .resource_ids(vpc)
                    .resource_type(FlowLogsResourceType::Vpc)
                    .traffic_type(TrafficType::from(p.traffic_type.as_str()))
                    .log_destination_type(LogDestinationType::CloudWatchLogs)
                    .log_group_name(group)
                    .deliver_logs_permission_arn(role)
                    .max_aggregation_interval(p.max_aggregation_interval)
                    .client_token(&token)
                    .tag_specifications(tag_spec(ResourceType::VpcFlowLog, &t))
                    .send()
                    .await
                    .aws()
            },
        )
        .await?;
        if let Some(u) = out.unsuccessful().first().and_then(|u| u.error()) {
            bail!("creating the flow log: {}: {}", u.code().unwrap_or_default(), u.message().unwrap_or_default());
        }
        match out.flow_log_ids().first() {
            Some(id) => Ok(d.current(id.clone())),
            None => bail!("creating the flow log: AWS returned no flow log id"),
        }
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<FlowLogProps>, l: &Current<FlowLogProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<FlowLogProps>> {
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &d.props.tags).await?;
        Ok(l.clone().with_props(d.props.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<FlowLogProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        let out = aws.ec2.delete_flow_logs().flow_log_ids(&l.id).send().await.aws().or_absent()?;
        if let Some(u) = out.as_ref().and_then(|o| o.unsuccessful().first()).and_then(|u| u.error())
            && !u.code().unwrap_or_default().contains("NotFound")
        {
            bail!("deleting flow log {}: {}: {}", l.id, u.code().unwrap_or_default(), u.message().unwrap_or_default());
        }
        Ok(None)
    }
}
