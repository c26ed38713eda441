//! The published site: the bucket's objects, diffed by MD5 against their
//! ETags, uploaded with their content type and caching, and only the
//! changed paths invalidated in the distribution in front of the bucket.
//! It has no tags: it is found through its bucket, at the sibling `site` of
//! the bucket's address ([`address_of`]).

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow, bail};
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectIdentifier;
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CONCURRENCY, delete_objects, in_buckets, when_visible};
use crate::aws::Aws;
use crate::aws::cloudfront::{self, MAX_INVALIDATION_PATHS};
use crate::aws::errors::{Absent, AwsResultExt};
use crate::aws::kind::{Current, Desired, Kind};
use crate::engine::plan::{Action, Change};
use crate::engine::provider::{KindInfo, StepContext};
use crate::engine::resource::Props;
use crate::engine::value::Ref;

/// Object key -> hex MD5 (desired) or ETag (live).
pub type Files = BTreeMap<String, String>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteProps {
    /// The bucket's name.
    pub bucket: Ref,
    /// Where to invalidate changed paths (absent in live props).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<Ref>,
    /// Local directory the files are read from (absent in live props).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub files: Files,
}

impl Props for SiteProps {
    const KIND: &'static str = "s3.site";
}

pub struct Site;

/// Address of the site published into a bucket: the sibling `site` of the
/// bucket's address (`web.bucket` -> `web.site`).
pub fn address_of(bucket_address: &str) -> String {
    match bucket_address.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.site"),
        None => "site".to_string(),
    }
}

fn site_id(bucket: &str) -> String {
    format!("{bucket}/site")
}

/// What publishing the site will do, from the desired and live file maps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SiteDelta {
    pub upload: Vec<String>,
    pub delete: Vec<String>,
    pub unchanged: usize,
}

impl SiteDelta {
    /// By map look-ups: a site may have many thousands of files, too many
    /// for `collection::delta`, which looks each one up in a list.
    pub fn new(want: &Files, have: &Files) -> SiteDelta {
        let mut d = SiteDelta::default();
        for (k, md5) in want {
            if have.get(k) == Some(md5) {
                d.unchanged += 1;
            } else {
                d.upload.push(k.clone());
            }
        }
        d.delete = have.keys().filter(|k| !want.contains_key(*k)).cloned().collect();
        d
    }

    pub fn summary(&self) -> String {
        format!("site: {} to upload, {} to delete, {} unchanged", self.upload.len(), self.delete.len(), self.unchanged)
    }
}

/// The `files` of props as written in a plan (empty when absent).
fn files_of(props: Option<&Value>) -> Files {
    props.and_then(|p| p.get("files")).and_then(|f| serde_json::from_value(f.clone()).ok()).unwrap_or_default()
}

/// Cache lifetime of content-hashed files: a year, never revalidated
/// (a new build gives them new names).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// HTML pages: always revalidated, so a deploy shows at once.
pub const CACHE_REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// Other files without a hash in their name (favicon, robots.txt): short.
pub const CACHE_SHORT: &str = "public, max-age=300";

/// Content-Type and Cache-Control of a site object, from its key.
pub fn object_headers(key: &str) -> (String, &'static str) {
    let mime = mime_guess::from_path(key).first_or_octet_stream();
    let mut content_type = mime.essence_str().to_string();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            content_type.as_str(),
            "application/javascript" | "application/json" | "image/svg+xml" | "application/xml"
        );
    if textual {
        content_type.push_str("; charset=utf-8");
    }
    let cache = if content_type.starts_with("text/html") {
        CACHE_REVALIDATE
    } else if is_hashed(key) {
        CACHE_IMMUTABLE
    } else {
        CACHE_SHORT
    };
    (content_type, cache)
}

/// Whether a file name carries a content hash, as bundlers write them
/// (`app.3f2a1b9c.js`, `index-4f9a2b7c.css`): a dot- or dash-separated part
/// of the name of 8 or more letters and digits with at least one digit and
/// one letter. Misses only cost caching; a false match would pin a changing
/// file for a year, hence the strict rule.
pub fn is_hashed(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    stem.split(['.', '-', '_']).any(|part| {
        part.len() >= 8
            && part.chars().all(|c| c.is_ascii_alphanumeric())
            && part.chars().any(|c| c.is_ascii_digit())
            && part.chars().any(|c| c.is_ascii_alphabetic())
    })
}

/// Uploads what differs from `have`, deletes what is gone, then
/// invalidates exactly those paths in one CloudFront invalidation.
async fn publish(aws: &Aws, d: &Desired<SiteProps>, have: &Files, ctx: &StepContext<'_>) -> Result<Current<SiteProps>> {
    let p = &d.props;
    let bucket = p.bucket.get()?;
    let source = p.source.as_deref().ok_or_else(|| anyhow!("internal error: the site has no source directory"))?;
    let delta = SiteDelta::new(&p.files, have);
    let total = delta.upload.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let jobs: Vec<(String, String)> =
        delta.upload.iter().map(|k| (k.clone(), p.files.get(k).cloned().unwrap_or_default())).collect();
    let done = &done;
    futures::stream::iter(jobs)
        .map(|(key, want)| async move {
            upload(aws, bucket, source, &key, &want).await?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(25) || n == total {
                ctx.reporter.status(&format!("uploaded {n}/{total} files"));
            }
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let gone: Vec<ObjectIdentifier> =
        delta.delete.iter().map(|k| ObjectIdentifier::builder().key(k).build()).collect::<Result<_, _>>()?;
    if !gone.is_empty() {
        delete_objects(aws, bucket, gone).await?;
    }

    let changed: Vec<&String> = delta.upload.iter().chain(&delta.delete).collect();
    if let (Some(dist), false) = (&p.distribution_id, changed.is_empty() || have.is_empty()) {
        cloudfront::invalidate(aws, dist.get()?, &invalidation_paths(&changed), ctx).await?;
    }
    let props = SiteProps { bucket: p.bucket.clone(), distribution_id: None, source: None, files: p.files.clone() };
    Ok(Current::new(d.address.clone(), site_id(bucket), props))
}

/// Uploads one file with its content type and caching, after checking it
/// is still the file the plan was made from.
async fn upload(aws: &Aws, bucket: &str, source: &str, key: &str, md5_hex: &str) -> Result<()> {
    let path = std::path::Path::new(source).join(key);
    let bytes = tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?;
    let digest = Md5::digest(&bytes);
    if hex::encode(&digest[..]) != md5_hex {
        bail!("{} changed since the plan was made; run apply again to publish the current build", path.display());
    }
    let (content_type, cache_control) = object_headers(key);
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(&digest[..]);
    when_visible("uploading", || async {
        aws.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.clone()))
            .content_type(&content_type)
            .cache_control(cache_control)
            .content_md5(&md5_b64)
            .send()
            .await
            .aws()
    })
    .await
    .with_context(|| format!("uploading {key}"))?;
    Ok(())
}

/// CloudFront paths for changed keys: URL-encoded, `/` for the root
/// document too, and `/*` when there are more than one invalidation takes.
fn invalidation_paths(keys: &[&String]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for k in keys {
        if k.as_str() == "index.html" {
            paths.push("/".into());
        }
        paths.push(format!("/{}", encode_path(k)));
    }
    paths.sort();
    paths.dedup();
    if paths.len() > MAX_INVALIDATION_PATHS {
        return vec!["/*".into()];
    }
    paths
}

/// Percent-encodes everything but unreserved characters and `/`
/// (`*` would be a wildcard).
fn encode_path(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every current object of a bucket, key -> ETag (an MD5 for single-part
/// uploads); a bucket gone meanwhile has none.
async fn list_files(aws: &Aws, bucket: &str) -> Result<Files> {
    let pages: Vec<_> = aws.s3.list_objects_v2().bucket(bucket).into_paginator().send().collect::<Vec<_>>().await;
    let mut files = Files::new();
    for page in pages {
        let Some(page) = page.aws().or_absent().with_context(|| format!("listing the objects of {bucket}"))? else {
            return Ok(Files::new());
        };
        for o in page.contents() {
            if let Some(k) = o.key() {
                let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_string();
                files.insert(k.to_string(), etag);
            }
        }
    }
    Ok(files)
}

#[async_trait]
impl Kind for Site {
    type Props = SiteProps;

    fn info(&self) -> KindInfo {
        KindInfo { replace_fields: &["bucket"], weight: 2, ..KindInfo::default() }
    }

    fn normalize(&self, props: &mut Value) {
        // Only the bucket and the files are compared: the local directory and
        // the distribution to invalidate are how to publish, not what.
        if let Some(o) = props.as_object_mut() {
            o.remove("source");
            o.remove("distribution_id");
        }
    }

    /// "site: N to upload, N to delete, N unchanged".
    fn plan_note(&self, c: &Change) -> Option<String> {
        let want = match c.action {
            Action::Delete => Files::new(),
            _ => files_of(c.desired.as_ref().map(|d| &d.props)),
        };
        let have = files_of(c.live.as_ref().map(|l| &l.props));
        Some(SiteDelta::new(&want, &have).summary())
    }

    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<SiteProps>>> {
        in_buckets(aws, address, address_of, |name, owner| async move {
            let files = list_files(aws, &name).await?;
            if files.is_empty() {
                return Ok(None);
            }
            let props = SiteProps { bucket: Ref::from(name.as_str()), distribution_id: None, source: None, files };
            Ok(Some(Current::new(owner.address, site_id(&name), props)))
        })
        .await
    }

    async fn create(&self, aws: &Aws, d: &Desired<SiteProps>, ctx: &StepContext<'_>) -> Result<Current<SiteProps>> {
        publish(aws, d, &Files::new(), ctx).await
    }

    async fn update(
        &self, aws: &Aws, d: &Desired<SiteProps>, l: &Current<SiteProps>, _changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Current<SiteProps>> {
        publish(aws, d, &l.props.files, ctx).await
    }

    async fn delete(&self, aws: &Aws, l: &Current<SiteProps>, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        let bucket = l.props.bucket.get()?;
        let files = list_files(aws, bucket).await?;
        let ids: Vec<ObjectIdentifier> =
            files.keys().map(|k| ObjectIdentifier::builder().key(k).build()).collect::<Result<_, _>>()?;
        let n = delete_objects(aws, bucket, ids).await?;
        Ok((n > 0).then(|| format!("unpublished {n} file(s) from {bucket}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Files {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn site_delta_counts() {
        let want = files(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let have = files(&[("a", "1"), ("b", "0"), ("z", "9")]);
        let d = SiteDelta::new(&want, &have);
        assert_eq!(d.upload, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(d.delete, vec!["z".to_string()]);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.summary(), "site: 2 to upload, 1 to delete, 1 unchanged");
    }

    #[test]
    fn the_site_lives_beside_its_bucket() {
        assert_eq!(address_of("web.bucket"), "web.site");
        assert_eq!(crate::aws::s3::bucket_policy::address_of("web.bucket"), "web.bucket_policy");
    }

    #[test]
    fn headers_by_extension_and_hash() {
        assert_eq!(object_headers("index.html"), ("text/html; charset=utf-8".into(), CACHE_REVALIDATE));
        let (ct, cache) = object_headers("assets/app.3f2a1b9c.js");
        assert!(ct.contains("javascript"), "{ct}");
        assert_eq!(cache, CACHE_IMMUTABLE);
        assert_eq!(object_headers("assets/index-4f9a2b7c.css").1, CACHE_IMMUTABLE);
        assert_eq!(object_headers("assets/style.css").0, "text/css; charset=utf-8");
        assert_eq!(object_headers("assets/style.css").1, CACHE_SHORT);
        assert_eq!(object_headers("logo.png").0, "image/png");
        assert_eq!(object_headers("data.bin").0, "application/octet-stream");
        // Words are not hashes.
        assert!(!is_hashed("bootstrap.min.js"));
        assert!(!is_hashed("components/MyComponent.js"));
        assert!(!is_hashed("jquery-3.7.1.js"));
    }

    #[test]
    fn invalidation_paths_are_encoded_and_bounded() {
        let keys = ["index.html".to_string(), "a b/c*.js".to_string()];
        let refs: Vec<&String> = keys.iter().collect();
        assert_eq!(invalidation_paths(&refs), vec!["/", "/a%20b/c%2A.js", "/index.html"]);
        let many: Vec<String> = (0..3001).map(|i| format!("f{i}")).collect();
        let refs: Vec<&String> = many.iter().collect();
        assert_eq!(invalidation_paths(&refs), vec!["/*"]);
    }

    #[test]
    fn the_plan_note_counts_uploads_deletes_and_unchanged_files() {
        use crate::engine::resource::{Live, Resource};
        let desired = SiteProps {
            bucket: Ref::to("web.bucket", "name"),
            distribution_id: None,
            source: Some("site".into()),
            files: files(&[("a", "1"), ("b", "2")]),
        }
        .at("web.site");
        let live = Live {
            address: "web.site".into(),
            kind: SiteProps::KIND.into(),
            id: "b/site".into(),
            props: serde_json::json!({"bucket": "b", "files": {"a": "1", "z": "9"}}),
            attrs: Default::default(),
        };
        let change = |action, desired: Option<Resource>| Change {
            address: "web.site".into(),
            kind: SiteProps::KIND.into(),
            action,
            desired,
            live: Some(live.clone()),
            fields: vec![],
            data_loss: false,
            reason: None,
            deletion_protected: false,
            notes: vec![],
            fill_in_after: vec![],
        };
        assert_eq!(
            Site.plan_note(&change(Action::Update, Some(desired))),
            Some("site: 1 to upload, 1 to delete, 1 unchanged".into())
        );
        assert_eq!(
            Site.plan_note(&change(Action::Delete, None)),
            Some("site: 0 to upload, 2 to delete, 0 unchanged".into())
        );
    }
}
