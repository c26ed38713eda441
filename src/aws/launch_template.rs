//! EC2 launch templates of the web groups, and the plan-time AMI look-ups.
//!
//! A template is never changed in place: a change of what instances are
//! launched with creates a new version (with the full data: a version does
//! not inherit from another), which becomes the default. Older versions stay
//! for rollback and go with the template.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateTagSpecificationRequest,
    RequestLaunchTemplateData, ResourceType, ResponseLaunchTemplateData, TagSpecification,
    VolumeType,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Aws;
use super::compute_common::{
    ec2_filters, ec2_tag_map, ec2_tags, ignore_not_found, live, live_props, props, sort_array,
};
use super::errors::AwsResultExt;
use super::legacy::DeleteOptions;
use super::legacy::Kind;
use super::tags::{self, Tags};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepReporter};
use crate::engine::resource::{Live, Resource};
use crate::model::compute::IMAGE_KEY;

pub const KIND: &str = "ec2.launch_template";

pub fn kinds() -> Vec<Box<dyn Kind>> {
    vec![Box::new(LaunchTemplate)]
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct Metadata {
    pub http_endpoint: String,
    pub http_tokens: String,
    pub http_put_response_hop_limit: i64,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct RootVolume {
    pub device_name: String,
    pub encrypted: bool,
    pub delete_on_termination: bool,
    pub volume_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<i64>,
}

/// What instances are launched with: a template version's data, in the
/// shape of the desired props (see `model::compute`).
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct TemplateData {
    pub image_id: String,
    pub instance_type: String,
    pub user_data: String,
    pub security_group_ids: Vec<String>,
    pub metadata_options: Metadata,
    pub root_volume: RootVolume,
    /// Tags of the instances and their volumes.
    pub instance_tags: Tags,
}

#[derive(Serialize, Deserialize)]
struct LtProps {
    name: String,
    #[serde(flatten)]
    data: TemplateData,
    #[serde(default)]
    tags: Tags,
}

impl TemplateData {
    fn from_response(d: &ResponseLaunchTemplateData) -> TemplateData {
        let user_data = d
            .user_data()
            .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let mut sgs: Vec<String> = d.security_group_ids().to_vec();
        sgs.sort();
        let md = d.metadata_options();
        let bdm = d.block_device_mappings().first();
        let ebs = bdm.and_then(|b| b.ebs());
        let instance_tags = d
            .tag_specifications()
            .iter()
            .find(|t| t.resource_type() == Some(&ResourceType::Instance))
            .map(|t| tags::visible(ec2_tag_map(t.tags())))
            .unwrap_or_default();
        TemplateData {
            image_id: d.image_id().unwrap_or_default().into(),
            instance_type: d
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            user_data,
            security_group_ids: sgs,
            metadata_options: Metadata {
                http_endpoint: md
                    .and_then(|m| m.http_endpoint())
                    .map(|e| e.as_str().to_string())
                    .unwrap_or_default(),
                http_tokens: md
                    .and_then(|m| m.http_tokens())
                    .map(|e| e.as_str().to_string())
                    .unwrap_or_default(),
                http_put_response_hop_limit: md
                    .and_then(|m| m.http_put_response_hop_limit())
                    .map(i64::from)
                    .unwrap_or(0),
            },
            root_volume: RootVolume {
                device_name: bdm.and_then(|b| b.device_name()).unwrap_or_default().into(),
                encrypted: ebs.and_then(|e| e.encrypted()).unwrap_or(false),
                delete_on_termination: ebs.and_then(|e| e.delete_on_termination()).unwrap_or(false),
                volume_type: ebs
                    .and_then(|e| e.volume_type())
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
                volume_size: ebs.and_then(|e| e.volume_size()).map(i64::from),
            },
            instance_tags,
        }
    }

    fn request(&self, aws: &Aws) -> RequestLaunchTemplateData {
        // The stack tag goes onto instances and volumes too, so everything
        // the stack launches can be found by it.
        let mut itags = self.instance_tags.clone();
        itags.insert(super::STACK_TAG.into(), aws.stack.clone());
        let spec = |rt: ResourceType| {
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(rt)
                .set_tags(Some(ec2_tags(&itags)))
                .build()
        };
        let mut b = RequestLaunchTemplateData::builder()
            .image_id(&self.image_id)
            .instance_type(InstanceType::from(self.instance_type.as_str()))
            .set_security_group_ids(Some(self.security_group_ids.clone()))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                        self.metadata_options.http_endpoint.as_str(),
                    ))
                    .http_tokens(LaunchTemplateHttpTokensState::from(
                        self.metadata_options.http_tokens.as_str(),
                    ))
                    .http_put_response_hop_limit(
                        self.metadata_options.http_put_response_hop_limit as i32,
                    )
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name(&self.root_volume.device_name)
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .encrypted(self.root_volume.encrypted)
                            .delete_on_termination(self.root_volume.delete_on_termination)
                            .volume_type(VolumeType::from(self.root_volume.volume_type.as_str()))
                            .set_volume_size(self.root_volume.volume_size.map(|s| s as i32))
                            .build(),
                    )
                    .build(),
            )
            .tag_specifications(spec(ResourceType::Instance))
            .tag_specifications(spec(ResourceType::Volume));
        if !self.user_data.is_empty() {
            b = b.user_data(base64::engine::general_purpose::STANDARD.encode(&self.user_data));
        }
        b.build()
    }

    fn digest(&self) -> String {
        crate::model::compute::sha256_hex(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// The data of one version of a template (`$Default`, `$Latest` or a
/// number); `None` when the template or version does not exist.
pub async fn read_version(aws: &Aws, id: &str, version: &str) -> Result<Option<TemplateData>> {
    let out = ignore_not_found(
        aws.ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions(version)
            .send()
            .await
            .aws(),
    )
    .with_context(|| format!("reading version {version} of launch template {id}"))?;
    Ok(out.and_then(|o| {
        o.launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .map(TemplateData::from_response)
    }))
}

struct LaunchTemplate;

impl LaunchTemplate {
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Live>> {
        let lts: Vec<_> = aws
            .ec2
            .describe_launch_templates()
            .set_filters(Some(ec2_filters(aws, address)))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .aws()?;
        let reads = lts.into_iter().filter_map(|t| {
            let all = ec2_tag_map(t.tags());
            let addr = tags::owner(aws, &all)?.to_string();
            Some(async move {
                let id = t.launch_template_id().unwrap_or_default().to_string();
                let Some(data) = read_version(aws, &id, "$Default").await? else {
                    return Ok::<_, anyhow::Error>(None);
                };
                let p = LtProps {
                    name: t.launch_template_name().unwrap_or_default().into(),
                    data,
                    tags: tags::visible(all),
                };
                Ok(Some(live(
                    KIND,
                    &addr,
                    &id,
                    json!(p),
                    attrs(
                        &p.name,
                        t.default_version_number().unwrap_or(1),
                        t.latest_version_number().unwrap_or(1),
                    ),
                )))
            })
        });
        Ok(futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

fn attrs(name: &str, default: i64, latest: i64) -> Value {
    json!({ "name": name, "version": default.to_string(), "latest_version": latest.to_string() })
}

#[async_trait]
impl Kind for LaunchTemplate {
    fn name(&self) -> &'static str {
        KIND
    }
    fn info(&self) -> KindInfo {
        KindInfo {
            replace_fields: &["name"],
            weight: 1,
            service: "ec2",
            ..KindInfo::default()
        }
    }
    fn normalize(&self, props: &mut Value) {
        sort_array(props, "security_group_ids");
    }

    /// Resolves every `$image` look-up of the stack (templates and the
    /// groups' `instances`), each distinct one once, so both see the same
    /// image; checks a pinned root volume size against the image's.
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        let mut lookups: BTreeMap<String, (Value, String)> = BTreeMap::new();
        for r in desired.iter() {
            visit(&r.props, &mut |l| {
                lookups
                    .entry(l.to_string())
                    .or_insert_with(|| (l.clone(), r.address.clone()));
            });
        }
        if lookups.is_empty() {
            return Ok(());
        }
        let found =
            futures::future::try_join_all(lookups.into_iter().map(|(k, (l, addr))| async move {
                let img = resolve_image(aws, &l)
                    .await
                    .with_context(|| format!("{addr}: finding its image"))?;
                Ok::<_, anyhow::Error>((k, img))
            }))
            .await?;
        let images: HashMap<String, Image> = found.into_iter().collect();
        for r in desired.iter_mut() {
            // An explicit size (a look-up is an object) below the image's.
            if r.kind == KIND
                && let Some(size) = r.props["root_volume"]["volume_size"].as_i64()
                && let Some(l) = r.props["image_id"].get(IMAGE_KEY)
                && let Some(img) = images.get(&l.to_string())
                && let Some(min) = img.root_size
                && size < i64::from(min)
            {
                bail!(
                    "{}: root_volume.size {size} GiB is smaller than image {}'s {min} GiB root snapshot; use at least {min}",
                    r.address,
                    img.id
                );
            }
            replace(&mut r.props, &images)?;
        }
        Ok(())
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        let new_version = change
            .fields
            .iter()
            .any(|f| !f.path.starts_with("tags") && !f.forces_replacement);
        if change.action == Action::Update && new_version {
            let next = change
                .live
                .as_ref()
                .and_then(|l| l.attrs.get("latest_version"))
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|v| format!("version {}", v + 1))
                .unwrap_or_else(|| "a new version".into());
            return vec![format!(
                "creates {next} of the launch template and makes it the default"
            )];
        }
        Vec::new()
    }

    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.find(aws, None).await
    }

    async fn create(&self, aws: &Aws, d: &Resource, _rep: &dyn StepReporter) -> Result<Live> {
        let p: LtProps = props(d)?;
        let t = tags::for_create(aws, &d.address, &d.props);
        // The client token makes the SDK's retries of this create safe.
        let token = super::ec2::client_token(aws, &d.address, &[&p.data.digest()]);
        let out = aws
            .ec2
            .create_launch_template()
            .launch_template_name(&p.name)
            .launch_template_data(p.data.request(aws))
            .client_token(token)
            .version_description("infra")
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(ec2_tags(&t)))
                    .build(),
            )
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
                return match mine.into_iter().find(|l| l.props["name"] == json!(p.name)) {
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
                return Err(anyhow!(e))
                    .with_context(|| format!("creating launch template {}", p.name));
            }
        };
        let lt = out
            .launch_template()
            .ok_or_else(|| anyhow!("AWS returned no launch template"))?;
        let id = lt.launch_template_id().unwrap_or_default().to_string();
        Ok(live(
            KIND,
            &d.address,
            &id,
            json!(p),
            attrs(
                &p.name,
                lt.default_version_number().unwrap_or(1),
                lt.latest_version_number().unwrap_or(1),
            ),
        ))
    }

    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        l: &Live,
        _changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live> {
        let p: LtProps = props(d)?;
        let old: LtProps = live_props(l)?;
        let mut attrs_now = l.attrs.clone();
        if p.data != old.data {
            // Same template, same data: same token, so a retry (or going
            // back to earlier data within the token's lifetime) returns the
            // existing version instead of piling up copies.
            let token = super::ec2::client_token(aws, &l.id, &[&p.data.digest()]);
            let out = aws
                .ec2
                .create_launch_template_version()
                .launch_template_id(&l.id)
                .launch_template_data(p.data.request(aws))
                .client_token(token)
                .version_description("infra")
                .send()
                .await
                .aws()
                .context("creating a launch template version")?;
            let v = out
                .launch_template_version()
                .and_then(|v| v.version_number())
                .ok_or_else(|| anyhow!("AWS returned no version number"))?;
            rep.status(&format!("version {v} created; making it the default"));
            let m = aws
                .ec2
                .modify_launch_template()
                .launch_template_id(&l.id)
                .default_version(v.to_string())
                .send()
                .await
                .aws()
                .context("making the new version the default")?;
            let latest = m
                .launch_template()
                .and_then(|t| t.latest_version_number())
                .unwrap_or(v)
                .max(v);
            if let Value::Object(a) = attrs(&p.name, v, latest) {
                attrs_now.extend(a);
            }
        }
        let (set, remove) = tags::delta(&old.tags, &p.tags);
        if !set.is_empty() {
            aws.ec2
                .create_tags()
                .resources(&l.id)
                .set_tags(Some(ec2_tags(&set)))
                .send()
                .await
                .aws()
                .context("tagging the launch template")?;
        }
        if !remove.is_empty() {
            aws.ec2
                .delete_tags()
                .resources(&l.id)
                .set_tags(Some(
                    remove
                        .iter()
                        .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
                        .collect(),
                ))
                .send()
                .await
                .aws()
                .context("untagging the launch template")?;
        }
        let mut out = live(KIND, &d.address, &l.id, json!(p), json!({}));
        out.attrs.extend(attrs_now);
        Ok(out)
    }

    async fn delete(
        &self,
        aws: &Aws,
        l: &Live,
        _o: DeleteOptions,
        _rep: &dyn StepReporter,
    ) -> Result<Option<String>> {
        ignore_not_found(
            aws.ec2
                .delete_launch_template()
                .launch_template_id(&l.id)
                .send()
                .await
                .aws(),
        )
        .context("deleting the launch template")?;
        Ok(None)
    }
}

// ---------------------------------------------------------------- images

/// An image resolved at plan time.
#[derive(Clone, Debug)]
struct Image {
    id: String,
    root_device_name: String,
    /// Size of the root snapshot in GiB.
    root_size: Option<i32>,
}

/// Calls `f` on every `$image` look-up inside `v`.
fn visit(v: &Value, f: &mut dyn FnMut(&Value)) {
    match v {
        Value::Object(o) => {
            if let Some(l) = o.get(IMAGE_KEY) {
                f(l);
            } else {
                o.values().for_each(|x| visit(x, f));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| visit(x, f)),
        _ => {}
    }
}

/// The attribute a look-up asks for (`None`: the image has no such value).
fn lookup_value(
    o: &serde_json::Map<String, Value>,
    images: &HashMap<String, Image>,
) -> Result<Option<Value>> {
    let l = &o[IMAGE_KEY];
    let img = images
        .get(&l.to_string())
        .ok_or_else(|| anyhow!("internal error: unresolved image {l}"))?;
    Ok(match o.get("get").and_then(Value::as_str) {
        Some("root_device_name") => Some(json!(img.root_device_name)),
        Some("root_size") => img.root_size.map(|s| json!(s)),
        _ => Some(json!(img.id)),
    })
}

/// Replaces every `$image` look-up inside `v` with the attribute it asks
/// for; a look-up without an answer removes its key.
fn replace(v: &mut Value, images: &HashMap<String, Image>) -> Result<()> {
    match v {
        Value::Object(o) => {
            if o.contains_key(IMAGE_KEY) {
                *v = lookup_value(o, images)?.unwrap_or(Value::Null);
                return Ok(());
            }
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                let child = o.get_mut(&k).expect("key listed above");
                if let Value::Object(c) = child
                    && c.contains_key(IMAGE_KEY)
                {
                    match lookup_value(c, images)? {
                        Some(val) => *child = val,
                        None => {
                            o.remove(&k);
                        }
                    }
                } else {
                    replace(child, images)?;
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                replace(x, images)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One `describe_images` call: by id, or the newest available image whose
/// name matches, from the given owners.
async fn resolve_image(aws: &Aws, lookup: &Value) -> Result<Image> {
    use aws_sdk_ec2::types::{Filter, ImageState};
    let region = &aws.region;
    let to_image = |i: &aws_sdk_ec2::types::Image| {
        let root = i.root_device_name().unwrap_or("/dev/xvda").to_string();
        let root_size = i
            .block_device_mappings()
            .iter()
            .find(|b| b.device_name() == Some(root.as_str()))
            .and_then(|b| b.ebs())
            .and_then(|e| e.volume_size());
        Image {
            id: i.image_id().unwrap_or_default().to_string(),
            root_device_name: root,
            root_size,
        }
    };
    if let Some(id) = lookup.get("id").and_then(Value::as_str) {
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
                img.state()
                    .map(|s| s.as_str())
                    .unwrap_or("in an unknown state")
            );
        }
        return Ok(to_image(img));
    }
    let name = lookup
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("internal error: bad image look-up {lookup}"))?;
    let owners: Vec<String> = lookup
        .get("owners")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let images: Vec<_> = aws
        .ec2
        .describe_images()
        .set_owners(Some(owners.clone()))
        .filters(Filter::builder().name("name").values(name).build())
        .filters(Filter::builder().name("state").values("available").build())
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws()
        .with_context(|| format!("looking up images named {name}"))?;
    // Newest first; the name breaks ties (versions are in the names).
    let best = images
        .iter()
        .filter(|i| i.state() == Some(&ImageState::Available))
        .max_by(|a, b| {
            (a.creation_date(), a.name()).cmp(&(b.creation_date(), b.name()))
        })
        .ok_or_else(|| {
            anyhow!(
                "no available image named `{name}` owned by {} in {region}; check the pattern (`*` matches anything) and the owners",
                owners.join(", ")
            )
        })?;
    Ok(to_image(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_lookups_everywhere() {
        let l = json!({"id": "ami-12345678"});
        let mut v = json!({
            "image_id": {IMAGE_KEY: l, "get": "id"},
            "root_volume": {
                "device_name": {IMAGE_KEY: l, "get": "root_device_name"},
                "volume_size": {IMAGE_KEY: l, "get": "root_size"},
            },
            "instances": [{"image_id": {IMAGE_KEY: l, "get": "id"}}],
        });
        let mut seen = Vec::new();
        visit(&v, &mut |x| seen.push(x.clone()));
        assert_eq!(seen.len(), 4);
        let images = HashMap::from([(
            l.to_string(),
            Image {
                id: "ami-12345678".into(),
                root_device_name: "/dev/sda1".into(),
                root_size: Some(8),
            },
        )]);
        replace(&mut v, &images).unwrap();
        assert_eq!(v["image_id"], "ami-12345678");
        assert_eq!(v["root_volume"]["device_name"], "/dev/sda1");
        assert_eq!(v["root_volume"]["volume_size"], 8);
        assert_eq!(v["instances"][0]["image_id"], "ami-12345678");
        // An image without a root snapshot size: the key goes.
        let images = HashMap::from([(
            l.to_string(),
            Image {
                id: "ami-12345678".into(),
                root_device_name: "/dev/sda1".into(),
                root_size: None,
            },
        )]);
        let mut v = json!({"root_volume": {"volume_size": {IMAGE_KEY: l, "get": "root_size"}}});
        replace(&mut v, &images).unwrap();
        assert_eq!(v, json!({"root_volume": {}}));
    }

    #[test]
    fn template_data_round_trips_through_the_api_shapes() {
        let data = TemplateData {
            image_id: "ami-12345678".into(),
            instance_type: "t3.micro".into(),
            user_data: "#!/bin/sh\necho hi\n".into(),
            security_group_ids: vec!["sg-1".into()],
            metadata_options: Metadata {
                http_endpoint: "enabled".into(),
                http_tokens: "required".into(),
                http_put_response_hop_limit: 2,
            },
            root_volume: RootVolume {
                device_name: "/dev/xvda".into(),
                encrypted: true,
                delete_on_termination: true,
                volume_type: "gp3".into(),
                volume_size: Some(20),
            },
            instance_tags: Tags::from([("Name".into(), "webapp-web".into())]),
        };
        // What AWS answers for that request, in the response types.
        let req = data.clone();
        let resp = ResponseLaunchTemplateData::builder()
            .image_id(&req.image_id)
            .instance_type(InstanceType::from(req.instance_type.as_str()))
            .user_data(base64::engine::general_purpose::STANDARD.encode(&req.user_data))
            .security_group_ids("sg-1")
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
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("Name")
                            .value("webapp-web")
                            .build(),
                    )
                    .tags(
                        aws_sdk_ec2::types::Tag::builder()
                            .key("infra:stack")
                            .value("webapp")
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(TemplateData::from_response(&resp), data);
    }
}
