//! EC2 launch templates of the web groups, and the plan-time image look-ups.
//!
//! A template is never changed in place: a change of what instances are
//! launched with creates a new version (with the full data: a version does
//! not inherit from another), which becomes the default. Older versions stay
//! for rollback and go with the template.
//!
//! What instances are launched with ([`LaunchData`]) is held by the template
//! and, as a view with the user data's digest, by the Auto Scaling group
//! (`autoscaling::group`): both name the image to find, which `prepare`
//! looks up once per run for every kind that holds it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, ImageState, InstanceType, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData,
    VolumeType,
};
use base64::Engine;
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Tagging, client_token, filters, tag_list, tag_map, tag_spec};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::find::{owned_then, paginated};
use crate::aws::kind::{Current, Desired, Kind};
use crate::aws::tags::{self, Tags};
use crate::aws::{Aws, STACK_TAG};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Props, Resource};
use crate::engine::value::{Ref, sort_set};

/// Key of a value that an image look-up gives, before the plan's look-ups
/// (`{"$image": {"id": ..}}` for the image id, `{"$image": true}` for a root
/// volume setting the image decides).
pub const IMAGE_KEY: &str = "$image";

/// An image as the file names it: by id (checked to exist, and its root
/// device read), by the SSM parameter AWS publishes its latest id under
/// (`/aws/service/ami-amazon-linux-latest/...`), or the newest available
/// image whose name matches, from these owners.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Image {
    Id { id: String },
    Ssm { ssm: String },
    Lookup { name: String, owners: Vec<String> },
}

/// The image instances boot from: its id, or (in the desired props before
/// the plan's look-ups) the image to find.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageId {
    Id(String),
    Find(Image),
}

impl ImageId {
    pub fn get(&self) -> Result<&str> {
        match self {
            ImageId::Id(id) => Ok(id),
            ImageId::Find(i) => bail!("internal error: image {i:?} was not looked up"),
        }
    }
}

/// A root volume setting: a value, or (in the desired props before the
/// plan's look-ups) the image's own.
#[derive(Clone, Debug, PartialEq)]
pub enum OfImage<T> {
    Value(T),
    Image,
}

impl<T> OfImage<T> {
    pub fn get(&self) -> Result<&T> {
        match self {
            OfImage::Value(v) => Ok(v),
            OfImage::Image => bail!("internal error: a root volume setting was not looked up"),
        }
    }
}

/// `{"$image": v}`.
fn placeholder<S: Serializer>(s: S, v: &impl Serialize) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(IMAGE_KEY, v)?;
    m.end()
}

/// What `{"$image": ..}` holds, if `v` is one.
fn placeholder_of(v: &Value) -> Option<&Value> {
    v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(IMAGE_KEY))
}

impl Serialize for ImageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageId::Id(id) => id.serialize(s),
            ImageId::Find(i) => placeholder(s, i),
        }
    }
}

impl<'de> Deserialize<'de> for ImageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match placeholder_of(&v) {
            Some(i) => Image::deserialize(i).map(ImageId::Find),
            None => String::deserialize(v).map(ImageId::Id),
        }
        .map_err(D::Error::custom)
    }
}

impl<T: Serialize> Serialize for OfImage<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OfImage::Value(v) => v.serialize(s),
            OfImage::Image => placeholder(s, &true),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for OfImage<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if placeholder_of(&v).is_some() {
            return Ok(OfImage::Image);
        }
        T::deserialize(v).map(OfImage::Value).map_err(D::Error::custom)
    }
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Metadata {
    pub http_endpoint: String,
    pub http_tokens: String,
    pub http_put_response_hop_limit: i64,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RootVolume {
    pub device_name: OfImage<String>,
    pub encrypted: bool,
    pub delete_on_termination: bool,
    pub volume_type: String,
    /// Absent when the image has no root snapshot size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<OfImage<i64>>,
}

/// What instances are launched with. `U` is the user data: the text in the
/// template ([`UserData`]), its digest in the group's view ([`UserDataDigest`]).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct LaunchData<U> {
    pub image_id: ImageId,
    pub instance_type: String,
    #[serde(flatten)]
    pub user: U,
    pub security_group_ids: Vec<Ref>,
    /// Whether instances get a public IPv4 address (in public subnets without
    /// NAT), set on the template's network interface so the subnets need not
    /// hand one to everything launched in them (`MapPublicIpOnLaunch` off:
    /// CIS/FSBP EC2.15). Always written: a template without one reads as
    /// `false`, and the plan must see a move from `true` to `false`.
    #[serde(default)]
    pub associate_public_ip_address: bool,
    /// ARN of the instance profile the instances run with (their role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<Ref>,
    pub metadata_options: Metadata,
    pub root_volume: RootVolume,
    /// Tags of the instances and their volumes.
    pub instance_tags: Tags,
}

/// The user data script: text, with references to the stack's values (the
/// API's URL...) until the engine resolves them.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct UserData {
    pub user_data: Ref,
}

/// The user data's SHA-256 (hex), known once the text is.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct UserDataDigest {
    pub user_data_sha256: Ref,
}

/// A template version's data.
pub type TemplateData = LaunchData<UserData>;
/// What a group's instances are launched with, as the group shows it: the
/// template's data with the user data replaced by its digest (the template
/// shows the text).
pub type Instances = LaunchData<UserDataDigest>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchTemplateProps {
    pub name: String,
    #[serde(flatten)]
    pub data: TemplateData,
    #[serde(default)]
    pub tags: Tags,
}

impl Props for LaunchTemplateProps {
    const KIND: &'static str = "ec2.launch_template";
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl<U> LaunchData<U> {
    /// The same data with other user data.
    fn with_user<V>(&self, user: V) -> LaunchData<V> {
        LaunchData {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            user,
            security_group_ids: self.security_group_ids.clone(),
            associate_public_ip_address: self.associate_public_ip_address,
            iam_instance_profile: self.iam_instance_profile.clone(),
            metadata_options: self.metadata_options.clone(),
            root_volume: self.root_volume.clone(),
            instance_tags: self.instance_tags.clone(),
        }
    }

    /// The image to look up, if not done yet.
    fn lookup(&self) -> Option<&Image> {
        match &self.image_id {
            ImageId::Find(i) => Some(i),
            ImageId::Id(_) => None,
        }
    }

    /// Fills in what the image decides; a root size it does not have
    /// leaves the size out.
    fn fill(&mut self, img: &Found) {
        self.image_id = ImageId::Id(img.id.clone());
        let rv = &mut self.root_volume;
        if rv.device_name == OfImage::Image {
            rv.device_name = OfImage::Value(img.root_device_name.clone());
        }
        if rv.volume_size == Some(OfImage::Image) {
            rv.volume_size = img.root_size.map(|s| OfImage::Value(i64::from(s)));
        }
    }
}

impl TemplateData {
    /// The group's view of this data.
    pub fn view(&self) -> Instances {
        self.with_user(UserDataDigest { user_data_sha256: Ref::sha256(self.user.user_data.parts()) })
    }

    fn from_response(d: &ResponseLaunchTemplateData) -> TemplateData {
        let user_data = d
            .user_data()
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // With a network interface, the groups are the interface's (EC2
        // refuses both).
        let nic = d.network_interfaces().iter().find(|n| n.device_index().unwrap_or(0) == 0);
        let groups = match nic {
            Some(n) => n.groups(),
            None => d.security_group_ids(),
        };
        let mut sgs: Vec<Ref> = groups.iter().map(|g| Ref::from(g.as_str())).collect();
        sgs.sort();
        let md = d.metadata_options();
        let bdm = d.block_device_mappings().first();
        let ebs = bdm.and_then(|b| b.ebs());
        let instance_tags = d
            .tag_specifications()
            .iter()
            .find(|t| t.resource_type() == Some(&ResourceType::Instance))
            .map(|t| tags::visible(tag_map(t.tags())))
            .unwrap_or_default();
        TemplateData {
            image_id: ImageId::Id(d.image_id().unwrap_or_default().into()),
            instance_type: d.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            user: UserData { user_data: Ref::Value(user_data) },
            security_group_ids: sgs,
            associate_public_ip_address: nic.and_then(|n| n.associate_public_ip_address()).unwrap_or(false),
            iam_instance_profile: d.iam_instance_profile().and_then(|p| p.arn()).map(|a| Ref::Value(a.to_string())),
            metadata_options: Metadata {
                http_endpoint: md.and_then(|m| m.http_endpoint()).map(|e| e.as_str().to_string()).unwrap_or_default(),
                http_tokens: md.and_then(|m| m.http_tokens()).map(|e| e.as_str().to_string()).unwrap_or_default(),
                http_put_response_hop_limit: md
                    .and_then(|m| m.http_put_response_hop_limit())
                    .map(i64::from)
                    .unwrap_or(0),
            },
            root_volume: RootVolume {
                device_name: OfImage::Value(bdm.and_then(|b| b.device_name()).unwrap_or_default().into()),
                encrypted: ebs.and_then(|e| e.encrypted()).unwrap_or(false),
                delete_on_termination: ebs.and_then(|e| e.delete_on_termination()).unwrap_or(false),
                volume_type: ebs.and_then(|e| e.volume_type()).map(|v| v.as_str().to_string()).unwrap_or_default(),
                volume_size: ebs.and_then(|e| e.volume_size()).map(|s| OfImage::Value(i64::from(s))),
            },
            instance_tags,
        }
    }

    fn request(&self, aws: &Aws) -> Result<RequestLaunchTemplateData> {
        // The stack tag goes onto instances and volumes too, so everything
        // the stack launches can be found by it.
        let mut itags = self.instance_tags.clone();
        itags.insert(STACK_TAG.into(), aws.stack.clone());
        let spec = |rt: ResourceType| {
            LaunchTemplateTagSpecificationRequest::builder().resource_type(rt).set_tags(Some(tag_list(&itags))).build()
        };
        let rv = &self.root_volume;
        let size = rv.volume_size.as_ref().map(OfImage::get).transpose()?;
        let groups = Ref::all(&self.security_group_ids)?;
        let mut b = RequestLaunchTemplateData::builder()
            .image_id(self.image_id.get()?)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                        self.metadata_options.http_endpoint.as_str(),
                    ))
                    .http_tokens(LaunchTemplateHttpTokensState::from(self.metadata_options.http_tokens.as_str()))
                    .http_put_response_hop_limit(self.metadata_options.http_put_response_hop_limit as i32)
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name(rv.device_name.get()?)
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .encrypted(rv.encrypted)
                            .delete_on_termination(rv.delete_on_termination)
                            .volume_type(VolumeType::from(rv.volume_type.as_str()))
                            .set_volume_size(size.map(|s| *s as i32))
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume));
        b = if self.associate_public_ip_address {
            // "If you specify a network interface, you must specify any
            // security groups as part of the network interface" (EC2 API
            // reference, RequestLaunchTemplateData).
            b.network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(true)
                    .delete_on_termination(true)
                    .set_groups(Some(groups))
                    .build(),
            )
        } else {
            b.set_security_group_ids(Some(groups))
        };
        let user_data = self.user.user_data.get()?;
        if !user_data.is_empty() {
            b = b.user_data(base64::engine::general_purpose::STANDARD.encode(user_data));
        }
        if let Some(arn) = &self.iam_instance_profile {
            b = b.iam_instance_profile(
                aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .arn(arn.get()?)
                    .build(),
            );
        }
        Ok(b.build())
    }

    fn digest(&self) -> String {
        sha256_hex(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// The data of one version of a template (`$Default`, `$Latest` or a
/// number); `None` when the template or version does not exist.
pub async fn read_version(aws: &Aws, id: &str, version: &str) -> Result<Option<TemplateData>> {
    let out = aws
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions(version)
        .send()
        .await
        .aws()
        .or_absent()
        .with_context(|| format!("reading version {version} of launch template {id}"))?;
    Ok(out.and_then(|o| {
        o.launch_template_versions().first().and_then(|v| v.launch_template_data()).map(TemplateData::from_response)
    }))
}

pub struct LaunchTemplate;

/// A template with its name and version numbers as attributes.
fn current(
    address: String, id: &str, props: LaunchTemplateProps, default: i64, latest: i64,
) -> Current<LaunchTemplateProps> {
    let name = props.name.clone();
    versions(Current::new(address, id, props).with("name", name), default, latest)
}

fn versions(c: Current<LaunchTemplateProps>, default: i64, latest: i64) -> Current<LaunchTemplateProps> {
    c.with("version", default.to_string()).with("latest_version", latest.to_string())
}

/// A pinned root volume smaller than the image's root snapshot.
fn check_root_size(address: &str, p: &LaunchTemplateProps, img: &Found) -> Result<()> {
    if let Some(OfImage::Value(size)) = p.data.root_volume.volume_size
        && let Some(min) = img.root_size
        && size < i64::from(min)
    {
        bail!(
            "{address}: root_volume.size {size} GiB is smaller than image {}'s {min} GiB root snapshot; use at least {min}",
            img.id
        );
    }
    Ok(())
}

#[async_trait]
impl Kind for LaunchTemplate {
    type Props = LaunchTemplateProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["name"], ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        sort_set(props, "security_group_ids");
    }

    /// Resolves the templates' image look-ups (each distinct one once per
    /// run, shared with the groups' `instances`, so both see the same
    /// image); checks a pinned root volume size against the image's.
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        prepare_images(aws, desired, |p: &mut LaunchTemplateProps| Some(&mut p.data), check_root_size).await
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        let new_version = change.fields.iter().any(|f| !f.path.starts_with("tags") && !f.forces_replacement);
        if change.action == Action::Update && new_version {
            let next = change
                .live
                .as_ref()
                .and_then(|l| l.attrs.get("latest_version"))
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|v| format!("version {}", v + 1))
                .unwrap_or_else(|| "a new version".into());
            return vec![format!("creates {next} of the launch template and makes it the default")];
        }
        Vec::new()
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<LaunchTemplateProps>>> {
        let lts = paginated!(aws.ec2.describe_launch_templates().set_filters(Some(filters(aws, address))))?;
        owned_then(
            aws,
            address,
            lts,
            |t| tag_map(t.tags()),
            |t, owner| async move {
                let id = t.launch_template_id().unwrap_or_default().to_string();
                let Some(data) = read_version(aws, &id, "$Default").await? else {
                    return Ok(None);
                };
                let props = LaunchTemplateProps {
                    name: t.launch_template_name().unwrap_or_default().into(),
                    data,
                    tags: owner.tags,
                };
                Ok(Some(current(
                    owner.address,
                    &id,
                    props,
                    t.default_version_number().unwrap_or(1),
                    t.latest_version_number().unwrap_or(1),
                )))
            },
        )
        .await
    }

    async fn create(
        &self, aws: &Aws, d: &Desired<LaunchTemplateProps>, _ctx: &StepContext<'_>,
    ) -> Result<Current<LaunchTemplateProps>> {
        let p = &d.props;
        let t = aws.tags_for(&d.address, &p.tags);
        // The client token makes the SDK's retries of this create safe.
        let token = client_token(aws, &d.address, &[&p.data.digest()]);
        let out = aws
            .ec2
            .create_launch_template()
            .launch_template_name(&p.name)
            .launch_template_data(p.data.request(aws)?)
            .client_token(token)
            .version_description("infra")
            .tag_specifications(tag_spec(ResourceType::LaunchTemplate, &t))
            .send()
            .await
            .aws();
        let out = match out {
            Ok(out) => out,
            // A create whose answer was lost (then retried by the SDK), on an
            // endpoint that ignores the client token: the template exists and
            // its tags, set in the same call, say it is this address's.
            Err(e) if e.is("InvalidLaunchTemplateName.AlreadyExistsException") => {
                let mine = self.find(aws, Some(&d.address)).await?;
                return match mine.into_iter().find(|l| l.props.name == p.name) {
                    Some(l) => Ok(l),
                    None => Err(anyhow!(e)).with_context(|| {
                        format!(
                            "creating launch template {}: the name is taken by a template this stack did not create; delete or rename it",
                            p.name
                        )
                    }),
                };
            }
            Err(e) => {
                return Err(anyhow!(e)).with_context(|| format!("creating launch template {}", p.name));
            }
        };
        let lt = out.launch_template().ok_or_else(|| anyhow!("AWS returned no launch template"))?;
        Ok(current(
            d.address.clone(),
            lt.launch_template_id().unwrap_or_default(),
            p.clone(),
            lt.default_version_number().unwrap_or(1),
            lt.latest_version_number().unwrap_or(1),
        ))
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<LaunchTemplateProps>, l: &Current<LaunchTemplateProps>, _changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<LaunchTemplateProps>> {
        let p = &d.props;
        let mut out = l.clone().with_props(p.clone());
        if p.data != l.props.data {
            // Same template, same data: same token, so a retry (or going
            // back to earlier data within the token's lifetime) returns the
            // existing version instead of piling up copies.
            let token = client_token(aws, &l.id, &[&p.data.digest()]);
            let created = aws
                .ec2
                .create_launch_template_version()
                .launch_template_id(&l.id)
                .launch_template_data(p.data.request(aws)?)
                .client_token(token)
                .version_description("infra")
                .send()
                .await
                .aws()
                .context("creating a launch template version")?;
            let v = created
                .launch_template_version()
                .and_then(|v| v.version_number())
                .ok_or_else(|| anyhow!("AWS returned no version number"))?;
            ctx.status(&format!("version {v} created; making it the default"));
            let m = aws
                .ec2
                .modify_launch_template()
                .launch_template_id(&l.id)
                .default_version(v.to_string())
                .send()
                .await
                .aws()
                .context("making the new version the default")?;
            let latest = m.launch_template().and_then(|t| t.latest_version_number()).unwrap_or(v).max(v);
            out = versions(out.with("name", &p.name), v, latest);
        }
        tags::sync(&Tagging, aws, &l.id, &l.props.tags, &p.tags).await?;
        Ok(out)
    }

    async fn delete(
        &self, aws: &Aws, l: &Current<LaunchTemplateProps>, _ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        aws.ec2
            .delete_launch_template()
            .launch_template_id(&l.id)
            .send()
            .await
            .aws()
            .or_absent()
            .context("deleting the launch template")?;
        Ok(None)
    }
}

// ---------------------------------------------------------------- images

/// An image found at plan time.
#[derive(Clone, Debug)]
pub struct Found {
    id: String,
    root_device_name: String,
    /// Size of the root snapshot in GiB.
    root_size: Option<i32>,
}

/// Cache key of the images found in this run ([`Aws::cached`]).
const IMAGES: &str = "ec2.images";

/// Fills in the image look-ups of the resources of kind `P` among
/// `desired` (`data` gives a resource's launch data, if it has any). Each
/// distinct image is looked up once per run, whichever kind asks first;
/// `check` may refuse a resource given its image.
pub async fn prepare_images<P: Props, U: Serialize + DeserializeOwned>(
    aws: &Aws, desired: &mut [&mut Resource], data: impl Fn(&mut P) -> Option<&mut LaunchData<U>>,
    check: impl Fn(&str, &P, &Found) -> Result<()>,
) -> Result<()> {
    let mut holders = Vec::new();
    for r in desired.iter_mut().filter(|r| r.kind == P::KIND) {
        let mut p: P = serde_json::from_value(r.props.clone())
            .with_context(|| format!("internal error: the properties of {} do not fit {}", r.address, P::KIND))?;
        if let Some(img) = data(&mut p).and_then(|d| d.lookup().cloned()) {
            holders.push((r, p, img));
        }
    }
    if holders.is_empty() {
        return Ok(());
    }
    let images = find_images(aws, holders.iter().map(|(r, _, img)| (img, r.address.as_str()))).await?;
    for (r, mut p, img) in holders {
        let found = images.get(&img).ok_or_else(|| anyhow!("internal error: unresolved image {img:?}"))?;
        check(&r.address, &p, found)?;
        if let Some(d) = data(&mut p) {
            d.fill(found);
        }
        r.props = serde_json::to_value(&p).with_context(|| format!("internal error: props of {}", r.address))?;
    }
    Ok(())
}

/// The images `wanted` names (each with the first address that names it,
/// for errors), each looked up once per run: the kinds that name images
/// prepare concurrently, and the first to ask for an image looks it up
/// while the others wait for its answer.
async fn find_images<'a>(
    aws: &Aws, wanted: impl Iterator<Item = (&'a Image, &'a str)>,
) -> Result<HashMap<Image, Found>> {
    type Memo = Mutex<HashMap<Image, Arc<tokio::sync::OnceCell<Found>>>>;
    let memo = aws.cached(IMAGES, || async { Ok(Memo::default()) }).await?;
    let mut todo: BTreeMap<&Image, (&str, Arc<tokio::sync::OnceCell<Found>>)> = BTreeMap::new();
    {
        let mut known = memo.lock().expect("image cache lock");
        for (img, addr) in wanted {
            let cell = known.entry(img.clone()).or_default().clone();
            todo.entry(img).or_insert((addr, cell));
        }
    }
    let found = futures::future::try_join_all(todo.into_iter().map(|(img, (addr, cell))| async move {
        let f = cell
            .get_or_try_init(|| resolve_image(aws, img))
            .await
            .with_context(|| format!("{addr}: finding its image"))?;
        Ok::<_, anyhow::Error>((img.clone(), f.clone()))
    }))
    .await?;
    Ok(found.into_iter().collect())
}

/// One `describe_images` call: by id, or the newest available image whose
/// name matches, from the given owners.
async fn resolve_image(aws: &Aws, image: &Image) -> Result<Found> {
    let region = &aws.region;
    let to_found = |i: &aws_sdk_ec2::types::Image| {
        let root = i.root_device_name().unwrap_or("/dev/xvda").to_string();
        let root_size = i
            .block_device_mappings()
            .iter()
            .find(|b| b.device_name() == Some(root.as_str()))
            .and_then(|b| b.ebs())
            .and_then(|e| e.volume_size());
        Found { id: i.image_id().unwrap_or_default().to_string(), root_device_name: root, root_size }
    };
    let (name, owners) = match image {
        Image::Ssm { ssm } => {
            let got = aws.ssm.get_parameter().name(ssm).send().await.aws().or_absent();
            let value = got
                .with_context(|| format!("reading the SSM parameter {ssm}"))?
                .and_then(|o| o.parameter().and_then(|p| p.value()).map(str::to_string))
                .ok_or_else(|| {
                    anyhow!(
                        "no SSM parameter {ssm} in {region}; AWS publishes its images under /aws/service/ (e.g. /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64)"
                    )
                })?;
            let found = Box::pin(resolve_image(aws, &Image::Id { id: value.clone() }))
                .await
                .with_context(|| format!("the image SSM parameter {ssm} names ({value})"))?;
            return Ok(found);
        }
        Image::Id { id } => {
            let r = aws.ec2.describe_images().image_ids(id).send().await.aws();
            let images = match r {
                Ok(o) => o.images().to_vec(),
                Err(e) if e.not_found() || e.is("InvalidAMIID.Malformed") => Vec::new(),
                Err(e) => return Err(anyhow!(e).context(format!("looking up image {id}"))),
            };
            let img = images.first().ok_or_else(|| {
                anyhow!("image {id} does not exist in {region} (or this account may not use it); check `ami` (AMI ids differ per region)")
            })?;
            if img.state() != Some(&ImageState::Available) {
                bail!(
                    "image {id} is {}, not available",
                    img.state().map(|s| s.as_str()).unwrap_or("in an unknown state")
                );
            }
            return Ok(to_found(img));
        }
        Image::Lookup { name, owners } => (name, owners),
    };
    let images = paginated!(
        aws.ec2
            .describe_images()
            .set_owners(Some(owners.clone()))
            .filters(Filter::builder().name("name").values(name).build())
            .filters(Filter::builder().name("state").values("available").build())
    )
    .with_context(|| format!("looking up images named {name}"))?;
    // Newest first; the name breaks ties (versions are in the names).
    let best = images
        .iter()
        .filter(|i| i.state() == Some(&ImageState::Available))
        .max_by(|a, b| (a.creation_date(), a.name()).cmp(&(b.creation_date(), b.name())))
        .ok_or_else(|| {
            anyhow!(
                "no available image named `{name}` owned by {} in {region}; check the pattern (`*` matches anything) and the owners",
                owners.join(", ")
            )
        })?;
    Ok(to_found(best))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every `$image` placeholder inside `v`.
    fn placeholders(v: &Value) -> usize {
        match v {
            Value::Object(o) if o.contains_key(IMAGE_KEY) => 1,
            Value::Object(o) => o.values().map(placeholders).sum(),
            Value::Array(a) => a.iter().map(placeholders).sum(),
            _ => 0,
        }
    }

    fn unprepared(image: Image) -> TemplateData {
        TemplateData {
            image_id: ImageId::Find(image),
            instance_type: "t3.micro".into(),
            user: UserData { user_data: "".into() },
            security_group_ids: vec![Ref::to("network.sg.web", "id")],
            associate_public_ip_address: false,
            iam_instance_profile: None,
            metadata_options: Metadata {
                http_endpoint: "enabled".into(),
                http_tokens: "required".into(),
                http_put_response_hop_limit: 2,
            },
            root_volume: RootVolume {
                device_name: OfImage::Image,
                encrypted: true,
                delete_on_termination: true,
                volume_type: "gp3".into(),
                volume_size: Some(OfImage::Image),
            },
            instance_tags: Tags::new(),
        }
    }

    #[test]
    fn replaces_lookups_everywhere() {
        let l = Image::Id { id: "ami-12345678".into() };
        let mut data = unprepared(l.clone());
        let mut instances = data.view();
        let v = json!({ "lt": data, "instances": instances });
        assert_eq!(placeholders(&v), 6);
        assert_eq!(v["lt"]["image_id"], json!({ IMAGE_KEY: {"id": "ami-12345678"} }));
        // Unprepared props read back as they were written.
        let back: TemplateData = serde_json::from_value(v["lt"].clone()).unwrap();
        assert_eq!(back, data);
        assert_eq!(data.lookup(), Some(&l));
        let img = Found { id: "ami-12345678".into(), root_device_name: "/dev/sda1".into(), root_size: Some(8) };
        data.fill(&img);
        instances.fill(&img);
        let v = json!({ "lt": data, "instances": instances });
        assert_eq!(placeholders(&v), 0);
        assert_eq!(v["lt"]["image_id"], "ami-12345678");
        assert_eq!(v["lt"]["root_volume"]["device_name"], "/dev/sda1");
        assert_eq!(v["lt"]["root_volume"]["volume_size"], 8);
        assert_eq!(v["instances"]["image_id"], "ami-12345678");
        assert_eq!(data.lookup(), None);
        // An image without a root snapshot size: the key goes.
        let mut data = unprepared(l);
        data.fill(&Found { root_size: None, ..img });
        let v = json!(data);
        assert_eq!(
            v["root_volume"],
            json!({
                "device_name": "/dev/sda1",
                "encrypted": true,
                "delete_on_termination": true,
                "volume_type": "gp3",
            })
        );
    }

    #[test]
    fn a_pinned_root_volume_below_the_image_is_refused() {
        let mut data = unprepared(Image::Lookup { name: "amzn2-*".into(), owners: vec!["amazon".into()] });
        data.root_volume.volume_size = Some(OfImage::Value(4));
        let p = LaunchTemplateProps { name: "webapp-web".into(), data, tags: Tags::new() };
        let img = Found { id: "ami-1".into(), root_device_name: "/dev/xvda".into(), root_size: Some(8) };
        let e = check_root_size("compute.lt.web", &p, &img).unwrap_err();
        assert!(e.to_string().contains("use at least 8"), "{e}");
        let mut p = p;
        p.data.root_volume.volume_size = Some(OfImage::Value(8));
        check_root_size("compute.lt.web", &p, &img).unwrap();
    }

    #[test]
    fn template_data_round_trips_through_the_api_shapes() {
        let data = TemplateData {
            image_id: ImageId::Id("ami-12345678".into()),
            instance_type: "t3.micro".into(),
            user: UserData { user_data: "#!/bin/sh\necho hi\n".into() },
            security_group_ids: vec!["sg-1".into()],
            associate_public_ip_address: false,
            iam_instance_profile: Some("arn:aws:iam::123456789012:instance-profile/webapp-web".into()),
            metadata_options: Metadata {
                http_endpoint: "enabled".into(),
                http_tokens: "required".into(),
                http_put_response_hop_limit: 2,
            },
            root_volume: RootVolume {
                device_name: OfImage::Value("/dev/xvda".into()),
                encrypted: true,
                delete_on_termination: true,
                volume_type: "gp3".into(),
                volume_size: Some(OfImage::Value(20)),
            },
            instance_tags: Tags::from([("Name".into(), "webapp-web".into())]),
        };
        // What AWS answers for that request, in the response types.
        let req = data.clone();
        let base = || {
            ResponseLaunchTemplateData::builder()
                .image_id(req.image_id.get().unwrap())
                .instance_type(InstanceType::from(req.instance_type.as_str()))
                .user_data(base64::engine::general_purpose::STANDARD.encode(req.user.user_data.get().unwrap()))
                .iam_instance_profile(
                    aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecification::builder()
                        .arn("arn:aws:iam::123456789012:instance-profile/webapp-web")
                        .build(),
                )
                .metadata_options(
                    aws_sdk_ec2::types::LaunchTemplateInstanceMetadataOptions::builder()
                        .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                        .http_tokens(LaunchTemplateHttpTokensState::Required)
                        .http_put_response_hop_limit(2)
                        .build(),
                )
                .block_device_mappings(
                    aws_sdk_ec2::types::LaunchTemplateBlockDeviceMapping::builder()
                        .device_name("/dev/xvda")
                        .ebs(
                            aws_sdk_ec2::types::LaunchTemplateEbsBlockDevice::builder()
                                .encrypted(true)
                                .delete_on_termination(true)
                                .volume_type(VolumeType::Gp3)
                                .volume_size(20)
                                .build(),
                        )
                        .build(),
                )
                .tag_specifications(
                    aws_sdk_ec2::types::LaunchTemplateTagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").value("webapp-web").build())
                        .tags(aws_sdk_ec2::types::Tag::builder().key("infra:stack").value("webapp").build())
                        .build(),
                )
        };
        assert_eq!(TemplateData::from_response(&base().security_group_ids("sg-1").build()), data);
        // A public address is asked for on the first interface, which then
        // holds the groups.
        let nic = aws_sdk_ec2::types::LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .associate_public_ip_address(true)
            .groups("sg-1")
            .build();
        let public = TemplateData { associate_public_ip_address: true, ..data.clone() };
        assert_eq!(TemplateData::from_response(&base().network_interfaces(nic).build()), public);
        // The JSON of the data, field by field (the version's client token
        // hashes it: a change here is a new token for the same data).
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            r##"{"image_id":"ami-12345678","instance_type":"t3.micro","user_data":"#!/bin/sh\necho hi\n","security_group_ids":["sg-1"],"associate_public_ip_address":false,"iam_instance_profile":"arn:aws:iam::123456789012:instance-profile/webapp-web","metadata_options":{"http_endpoint":"enabled","http_tokens":"required","http_put_response_hop_limit":2},"root_volume":{"device_name":"/dev/xvda","encrypted":true,"delete_on_termination":true,"volume_type":"gp3","volume_size":20},"instance_tags":{"Name":"webapp-web"}}"##
        );
    }
}
