//! A Cognito user pool: the users who may call the API's `auth: jwt` routes
//! (they sign in with their email address; Cognito keeps their passwords).
//! It holds data: replacing or deleting it loses every user, so the plan
//! marks it, and deletion protection (the stack's `protect`) refuses it.

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::types::{
    DeletionProtectionType, PasswordPolicyType, UserPoolMfaType, UserPoolPolicyType, UserPoolType,
    UsernameAttributeType, VerifiedAttributeType,
};
use serde::{Deserialize, Serialize};

use super::{pools, tag_map, tags_of};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::owned;
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, create_once};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::sort_set;

/// What a password must be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub min_length: i32,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserPoolProps {
    pub name: String,
    /// What users sign in with instead of a username (`email`).
    pub username_attributes: Vec<String>,
    /// Attributes Cognito verifies by sending a code (`email`).
    pub auto_verified_attributes: Vec<String>,
    pub password: PasswordPolicy,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for UserPoolProps {
    const KIND: &'static str = "cognito.user_pool";
}

pub struct UserPool;

/// A pool as a resource of this kind, with what others reference of it:
/// its id, ARN, and the issuer of its tokens.
fn current(aws: &Aws, address: String, p: &UserPoolType, props: UserPoolProps) -> Current<UserPoolProps> {
    let id = p.id().unwrap_or_default().to_string();
    Current::new(address, id.clone(), props)
        .with("arn", p.arn())
        .with("name", p.name())
        .with("issuer", format!("https://cognito-idp.{}.amazonaws.com/{id}", aws.region))
}

fn read(p: &UserPoolType, tags: Tags) -> UserPoolProps {
    let pw = p.policies().and_then(|x| x.password_policy());
    UserPoolProps {
        name: p.name().unwrap_or_default().to_string(),
        username_attributes: p.username_attributes().iter().map(|a| a.as_str().to_string()).collect(),
        auto_verified_attributes: p.auto_verified_attributes().iter().map(|a| a.as_str().to_string()).collect(),
        password: PasswordPolicy {
            min_length: pw.and_then(|p| p.minimum_length()).unwrap_or(8),
            require_lowercase: pw.is_some_and(|p| p.require_lowercase()),
            require_uppercase: pw.is_some_and(|p| p.require_uppercase()),
            require_numbers: pw.is_some_and(|p| p.require_numbers()),
            require_symbols: pw.is_some_and(|p| p.require_symbols()),
        },
        deletion_protection: p.deletion_protection() == Some(&DeletionProtectionType::Active),
        tags,
    }
}

fn policies(p: &UserPoolProps) -> UserPoolPolicyType {
    let pw = &p.password;
    UserPoolPolicyType::builder()
        .password_policy(
            PasswordPolicyType::builder()
                .minimum_length(pw.min_length)
                .require_lowercase(pw.require_lowercase)
                .require_uppercase(pw.require_uppercase)
                .require_numbers(pw.require_numbers)
                .require_symbols(pw.require_symbols)
                .build(),
        )
        .build()
}

fn protection(on: bool) -> DeletionProtectionType {
    if on { DeletionProtectionType::Active } else { DeletionProtectionType::Inactive }
}

/// This stack's pools at `address` (any, without), read fresh or from the
/// read's shared listing.
async fn find(aws: &Aws, address: Option<&str>, fresh: bool) -> Result<Vec<Current<UserPoolProps>>> {
    if fresh {
        aws.forget("cognito.pools");
    }
    let listed = pools(aws).await?;
    Ok(owned(
        aws,
        address,
        listed.iter().map(|p| &p.pool),
        |p| tags_of(p),
        |p, owner| Some(current(aws, owner.address, p, read(p, owner.tags))),
    ))
}

#[async_trait]
impl Kind for UserPool {
    type Props = UserPoolProps;

    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name", "username_attributes"],
            holds_data: true,
            weight: 2,
            ..KindInfo::default()
        }
    }

    fn normalize(&self, props: &mut serde_json::Value) {
        sort_set(props, "username_attributes");
        sort_set(props, "auto_verified_attributes");
    }

    fn protected(&self, p: &UserPoolProps) -> bool {
        p.deletion_protection
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<UserPoolProps>>> {
        find(aws, address, address.is_some()).await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<UserPoolProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<UserPoolProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        // Pool names are not unique and CreateUserPool takes no client
        // token: a lost answer is looked for by tag, never retried blindly.
        create_once(
            &format!("user pool {}", p.name),
            || async {
                let out = aws
                    .cognito_once
                    .create_user_pool()
                    .pool_name(&p.name)
                    .policies(policies(p))
                    .set_username_attributes(Some(
                        p.username_attributes.iter().map(|a| UsernameAttributeType::from(a.as_str())).collect(),
                    ))
                    .set_auto_verified_attributes(Some(
                        p.auto_verified_attributes.iter().map(|a| VerifiedAttributeType::from(a.as_str())).collect(),
                    ))
                    .mfa_configuration(UserPoolMfaType::Off)
                    .deletion_protection(protection(p.deletion_protection))
                    .set_user_pool_tags(Some(tag_map(&t)))
                    .send()
                    .await
                    .aws()?;
                let pool = out.user_pool.unwrap_or_else(|| UserPoolType::builder().build());
                aws.forget("cognito.pools");
                Ok(current(aws, d.address.clone(), &pool, p.clone()))
            },
            || async { Ok(find(aws, Some(&d.address), true).await?.into_iter().next()) },
        )
        .await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<UserPoolProps>, l: &Current<UserPoolProps>, _changed: &[String],
        _ctx: &StepContext<'_>,
    ) -> Result<Current<UserPoolProps>> {
        let p = &d.props;
        // UpdateUserPool resets what it is not given to the default: every
        // setting the stack manages is sent each time (the rest stays at
        // Cognito's defaults, as created).
        aws.cognito
            .update_user_pool()
            .user_pool_id(&l.id)
            .policies(policies(p))
            .set_auto_verified_attributes(Some(
                p.auto_verified_attributes.iter().map(|a| VerifiedAttributeType::from(a.as_str())).collect(),
            ))
            .mfa_configuration(UserPoolMfaType::Off)
            .deletion_protection(protection(p.deletion_protection))
            .set_user_pool_tags(Some(tag_map(&aws.tags_for(&d.address, &p.tags))))
            .send()
            .await
            .aws()
            .with_context(|| format!("updating user pool {}", p.name))?;
        // Keys the file dropped (UpdateUserPool only adds and overwrites).
        let (_, removed) = tags::delta(&l.props.tags, &p.tags);
        if !removed.is_empty() {
            let arn = l.attr("arn").ok_or_else(|| anyhow!("user pool {} has no ARN", p.name))?;
            aws.cognito
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(removed))
                .send()
                .await
                .aws()
                .context("untagging")?;
        }
        aws.forget("cognito.pools");
        Ok(l.clone().with_props(p.clone()))
    }

    async fn delete(&self, aws: &Aws, l: &Current<UserPoolProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        aws.cognito.delete_user_pool().user_pool_id(&l.id).send().await.aws().or_absent()?;
        aws.forget("cognito.pools");
        Ok(None)
    }
}
