//! The DB subnet group: the subnets the database may live in.

use anyhow::{Context, Result};
use async_trait::async_trait;
use aws_sdk_rds::types::DbSubnetGroup as Group;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LONG, Tagging, VISIBLE, adopt, tag_list, tag_map};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::{Ref, sort_set};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DbSubnetGroupProps {
    pub name: String,
    pub description: String,
    pub subnet_ids: Vec<Ref>,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for DbSubnetGroupProps {
    const KIND: &'static str = "rds.db_subnet_group";
}

pub struct DbSubnetGroup;

fn current(address: String, name: &str, arn: &str, props: DbSubnetGroupProps) -> Current<DbSubnetGroupProps> {
    Current::new(address, name, props).with("arn", arn).with("name", name)
}

/// The stack's subnet groups (named `name`, when given; at `address`, when
/// given): one paginated describe, then the tags of those named like ours
/// (RDS returns no tags with the describe, and has no tag filter).
async fn list(aws: &Aws, name: Option<&str>, address: Option<&str>) -> Result<Vec<Current<DbSubnetGroupProps>>> {
    let prefix = format!("{}-", aws.stack);
    let groups = paginated!(aws.rds.describe_db_subnet_groups().set_db_subnet_group_name(name.map(str::to_string)))
        .or_absent()?
        .unwrap_or_default();
    let reads = groups.into_iter().filter(|g| g.db_subnet_group_name().is_some_and(|n| n.starts_with(&prefix))).map(
        |g| async move {
            let t = aws
                .rds
                .list_tags_for_resource()
                .resource_name(g.db_subnet_group_arn().unwrap_or_default())
                .send()
                .await
                .aws()
                .or_absent()?;
            Ok::<_, anyhow::Error>(t.map(|t| (g, tag_map(t.tag_list()))))
        },
    );
    let tagged = futures::future::try_join_all(reads).await?;
    Ok(owned(
        aws,
        address,
        tagged.into_iter().flatten(),
        |(_, all)| all.clone(),
        |(g, _): (Group, Tags), owner| {
            let name = g.db_subnet_group_name().unwrap_or_default();
            let mut subnet_ids: Vec<Ref> =
                g.subnets().iter().filter_map(|s| s.subnet_identifier().map(Ref::from)).collect();
            subnet_ids.sort();
            let props = DbSubnetGroupProps {
                name: name.to_string(),
                description: g.db_subnet_group_description().unwrap_or_default().into(),
                subnet_ids,
                tags: owner.tags,
            };
            Some(current(owner.address, name, g.db_subnet_group_arn().unwrap_or_default(), props))
        },
    ))
}

#[async_trait]
impl Kind for DbSubnetGroup {
    type Props = DbSubnetGroupProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name"], weight: 1, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "subnet_ids");
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<DbSubnetGroupProps>>> {
        list(aws, None, address).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<DbSubnetGroupProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<DbSubnetGroupProps>> {
        let p = &d.props;
        let subnets = Ref::all(&p.subnet_ids)?;
        let t = aws.tags_for(&d.address, &p.tags);
        let created = retry_on(&["InvalidSubnet"], "creating the DB subnet group", VISIBLE, ctx, || async {
            aws.rds
                .create_db_subnet_group()
                .db_subnet_group_name(&p.name)
                .db_subnet_group_description(&p.description)
                .set_subnet_ids(Some(subnets.clone()))
                .set_tags(Some(tag_list(&t)))
                .send()
                .await
                .aws()
        })
        .await;
        let mine = || async { Ok(list(aws, Some(&p.name), Some(&d.address)).await?.pop()) };
        match created {
            Ok(out) => match out.db_subnet_group().and_then(|g| g.db_subnet_group_arn()) {
                Some(arn) => Ok(current(d.address.clone(), &p.name, arn, p.clone())),
                None => mine().await?.context("the DB subnet group vanished right after its creation"),
            },
            // A retried create whose first attempt went through.
            Err(e) => adopt(e, "DBSubnetGroupAlreadyExists", "a DB subnet group", &p.name, aws, mine()).await,
        }
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<DbSubnetGroupProps>, l: &Current<DbSubnetGroupProps>, changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<DbSubnetGroupProps>> {
        let p = &d.props;
        if changed.iter().any(|c| c == "subnet_ids" || c == "description") {
            aws.rds
                .modify_db_subnet_group()
                .db_subnet_group_name(&p.name)
                .db_subnet_group_description(&p.description)
                .set_subnet_ids(Some(Ref::all(&p.subnet_ids)?))
                .send()
                .await
                .aws()
                .context("modifying the DB subnet group")?;
        }
        let arn = l.attr("arn").unwrap_or_default();
        tags::sync(&Tagging, aws, arn, &l.props.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<DbSubnetGroupProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        // Still in use while the instance in it is being deleted.
        retry_on(
            &["InvalidDBSubnetGroupStateFault", "InvalidDBSubnetGroupState"],
            "deleting the DB subnet group",
            LONG,
            ctx,
            || async { aws.rds.delete_db_subnet_group().db_subnet_group_name(&l.id).send().await.aws().or_absent() },
        )
        .await?;
        Ok(None)
    }
}
