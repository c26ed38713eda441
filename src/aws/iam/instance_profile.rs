//! IAM instance profiles: how a web group's instances get their role. A
//! profile holds at most one role; EC2 hands the role's credentials to the
//! instances through the metadata service. Read under the stack's path like
//! the roles (one paginated ListInstanceProfiles, then one
//! GetInstanceProfile each: the listing returns no tags).

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_iam::types::InstanceProfile as Profile;
use serde::{Deserialize, Serialize};

use super::{VISIBLE, forget_inventory, inventory, stack_path, tag_list, tag_map};
use crate::aws::errors::{Absent, AwsError, AwsResultExt};
use crate::aws::find::{each, owner, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, TagApi, Tags};
use crate::aws::{Aws, retry_on};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceProfileProps {
    pub name: String,
    pub path: String,
    /// The name of the role the instances run as.
    pub role: Ref,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for InstanceProfileProps {
    const KIND: &'static str = "iam.instance_profile";
}

pub struct InstanceProfile;

/// Tags of an instance profile, by its name.
struct Tagging;

#[async_trait]
impl TagApi for Tagging {
    async fn tag(&self, aws: &Aws, id: &str, tags: &Tags) -> Result<(), AwsError> {
        aws.iam
            .tag_instance_profile()
            .instance_profile_name(id)
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .aws()
            .map(|_| ())
    }

    async fn untag(&self, aws: &Aws, id: &str, keys: &[String]) -> Result<(), AwsError> {
        aws.iam
            .untag_instance_profile()
            .instance_profile_name(id)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .aws()
            .map(|_| ())
    }
}

/// The profile's role names (IAM allows one; an outside change may leave none).
fn roles(p: &Profile) -> Vec<String> {
    p.roles().iter().map(|r| r.role_name().to_string()).collect()
}

/// Reads one profile completely, if it is this stack's (at `address`, when given).
async fn read_one(aws: &Aws, address: Option<&str>, name: &str) -> Result<Option<Current<InstanceProfileProps>>> {
    let Some(got) = aws.iam.get_instance_profile().instance_profile_name(name).send().await.aws().or_absent()? else {
        return Ok(None);
    };
    let Some(p) = got.instance_profile() else { return Ok(None) };
    let Some(owned) = owner(aws, address, tag_map(p.tags())) else {
        return Ok(None);
    };
    let props = InstanceProfileProps {
        name: p.instance_profile_name().to_string(),
        path: p.path().to_string(),
        role: Ref::Value(roles(p).join(",")),
        tags: owned.tags,
    };
    Ok(Some(Current::new(owned.address, name, props).with("arn", p.arn()).with("name", name)))
}

/// The profile as the account's role details show it inside its role, when
/// they carry its tags (whether IAM fills a nested profile's tags is not
/// documented: without them the profile is read on its own).
fn from_details(
    aws: &Aws, name: &str, details: &[aws_sdk_iam::types::RoleDetail],
) -> Option<Current<InstanceProfileProps>> {
    let p = details.iter().flat_map(|d| d.instance_profile_list()).find(|p| p.instance_profile_name() == name)?;
    let owned = owner(aws, None, tag_map(p.tags()))?;
    let props = InstanceProfileProps {
        name: name.to_string(),
        path: p.path().to_string(),
        role: Ref::Value(roles(p).join(",")),
        tags: owned.tags,
    };
    Some(Current::new(owned.address, name, props).with("arn", p.arn()).with("name", name))
}

/// Puts `role` in the profile, once IAM sees both (a just-created role or
/// profile may not be visible yet).
/// A retry whose first answer was lost is answered `LimitExceeded` (the
/// profile's one role is taken): success when the role there is this one.
async fn add_role(aws: &Aws, name: &str, role: &str, ctx: &StepContext<'_>) -> Result<()> {
    let what = format!("adding role {role} to instance profile {name}");
    let added = retry_on(&["NoSuchEntity"], &what, VISIBLE, ctx, || async {
        match aws.iam.add_role_to_instance_profile().instance_profile_name(name).role_name(role).send().await.aws() {
            Err(e) if e.is("LimitExceeded") => Ok(false),
            other => other.map(|_| true),
        }
    })
    .await?;
    if added {
        return Ok(());
    }
    let got = aws.iam.get_instance_profile().instance_profile_name(name).send().await.aws().context(what.clone())?;
    let held = got.instance_profile().map(roles).unwrap_or_default();
    if held.iter().any(|r| r == role) {
        return Ok(());
    }
    bail!(
        "{what}: the profile already holds role {} (changed outside infra; remove it, then apply again)",
        held.join(", ")
    )
}

async fn remove_role(aws: &Aws, name: &str, role: &str) -> Result<()> {
    aws.iam
        .remove_role_from_instance_profile()
        .instance_profile_name(name)
        .role_name(role)
        .send()
        .await
        .aws()
        .or_absent()
        .with_context(|| format!("removing role {role} from instance profile {name}"))?;
    Ok(())
}

/// Leaves exactly `role` in the profile that now holds `have`.
async fn converge(aws: &Aws, name: &str, role: &str, have: &[String], ctx: &StepContext<'_>) -> Result<()> {
    for r in have.iter().filter(|r| *r != role) {
        remove_role(aws, name, r).await?;
    }
    if !have.iter().any(|r| r == role) {
        add_role(aws, name, role, ctx).await?;
    }
    Ok(())
}

#[async_trait]
impl Kind for InstanceProfile {
    type Props = InstanceProfileProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name", "path"], weight: 2, ..KindInfo::default() }
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<InstanceProfileProps>>> {
        let path = stack_path(aws);
        let profiles = paginated!(aws.iam.list_instance_profiles().path_prefix(&path))?;
        // The prefix filter may be ignored by some implementations.
        let ours = profiles.iter().filter(|p| p.path() == path);
        each(ours, |p| read_one(aws, address, p.instance_profile_name())).await
    }

    /// A plan's read: the IAM inventory it shares with the roles.
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<InstanceProfileProps>>> {
        let inv = inventory(aws).await?;
        let details = inv.details.as_deref();
        each(&inv.profiles, |p| async move {
            let name = p.instance_profile_name();
            match details.and_then(|d| from_details(aws, name, d)) {
                Some(found) => Ok(Some(found)),
                None => read_one(aws, None, name).await,
            }
        })
        .await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<InstanceProfileProps>, ctx: &StepContext<'_>,
    ) -> Result<Current<InstanceProfileProps>> {
        forget_inventory(aws);
        let p = &d.props;
        let role = p.role.get()?;
        let t = aws.tags_for(&d.address, &p.tags);
        let created = aws
            .iam
            .create_instance_profile()
            .instance_profile_name(&p.name)
            .path(&p.path)
            .set_tags(Some(tag_list(&t)))
            .send()
            .await
            .aws();
        let have = match created {
            Ok(_) => Vec::new(),
            // A retry after a lost response, or a crash before the role was
            // added: continue from what exists if ours.
            Err(e) if e.is("EntityAlreadyExists") => match read_one(aws, Some(&d.address), &p.name).await? {
                Some(l) => l.props.role.get()?.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect(),
                None => bail!(
                    "an IAM instance profile named {} already exists and is not {} of stack {}; delete or rename it",
                    p.name,
                    d.address,
                    aws.stack
                ),
            },
            Err(e) => return Err(anyhow!(e).context(format!("creating instance profile {}", p.name))),
        };
        converge(aws, &p.name, role, &have, ctx).await?;
        read_one(aws, Some(&d.address), &p.name)
            .await?
            .with_context(|| format!("instance profile {} is not readable after its creation", p.name))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<InstanceProfileProps>, l: &Current<InstanceProfileProps>, _changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<InstanceProfileProps>> {
        forget_inventory(aws);
        let p = &d.props;
        let have: Vec<String> = l.props.role.get()?.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect();
        converge(aws, &p.name, p.role.get()?, &have, ctx).await?;
        tags::sync(&Tagging, aws, &p.name, &l.props.tags, &p.tags).await?;
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<InstanceProfileProps>, ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        forget_inventory(aws);
        let name = &l.id;
        // What it holds now (not what the plan saw): DeleteInstanceProfile
        // refuses a profile that still has a role.
        let Some(got) = aws.iam.get_instance_profile().instance_profile_name(name).send().await.aws().or_absent()?
        else {
            return Ok(None);
        };
        for r in got.instance_profile().map(roles).unwrap_or_default() {
            remove_role(aws, name, &r).await?;
        }
        retry_on(&["DeleteConflict"], &format!("deleting instance profile {name}"), VISIBLE, ctx, || async {
            aws.iam.delete_instance_profile().instance_profile_name(name).send().await.aws().or_absent()
        })
        .await?;
        Ok(None)
    }
}
