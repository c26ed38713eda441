//! The frontend tier: a private S3 bucket, an origin access control, a
//! CloudFront distribution reading the bucket through it (and, when the
//! stack has a backend tier, `/api/*` from its API Gateway stage), the
//! bucket policy that lets only this distribution read, and the published
//! site.

use serde_json::{Map, Value, json};

use super::{Desired, Output, tags};
use crate::config::Stack;
use crate::config::validate_frontend::derived_bucket_name;
use crate::engine::plan::{Action, Plan};
use crate::engine::resource::Resource;
use crate::engine::value::reference;

pub const BUCKET: &str = "frontend.bucket";
pub const OAC: &str = "frontend.oac";
pub const DISTRIBUTION: &str = "frontend.distribution";
pub const BUCKET_POLICY: &str = "frontend.bucket_policy";
pub const SITE: &str = "frontend.site";
/// The backend tier's API and stage (cross-tier contract).
pub const BACKEND_API: &str = "backend.api";
pub const BACKEND_STAGE: &str = "backend.stage";

pub const SITE_KIND: &str = "s3.site";

/// Stands for the caller's account id in a derived bucket name until the
/// provider knows it (validation makes no network call; the provider
/// substitutes it from STS). `{` cannot appear in a bucket name.
pub const ACCOUNT_PLACEHOLDER: &str = "{account}";

/// AWS managed cache policy "CachingOptimized": long TTLs, gzip and brotli,
/// no cookies, headers or query strings in the key (static assets).
pub const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// AWS managed cache policy "CachingDisabled" (the API: never cached).
pub const CACHING_DISABLED: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
/// AWS managed origin request policy "AllViewerExceptHostHeader": forwards
/// query strings, cookies and headers except Host, which API Gateway needs
/// to be its own.
pub const ALL_VIEWER_EXCEPT_HOST: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";

/// Origin ids inside the distribution.
pub const S3_ORIGIN_ID: &str = "s3-site";
pub const API_ORIGIN_ID: &str = "api";

pub fn expand(stack: &Stack, d: &mut Desired) {
    let Some(f) = &stack.spec.frontend else {
        return;
    };
    let bucket_name = f
        .bucket_name
        .clone()
        .unwrap_or_else(|| derived_bucket_name(&stack.name, ACCOUNT_PLACEHOLDER, &stack.region));
    d.resources.push(Resource::new(
        BUCKET,
        "s3.bucket",
        json!({
            "bucket": bucket_name,
            "block_public_access": true,
            "object_ownership": "BucketOwnerEnforced",
            "encryption": "AES256",
            "versioning": true,
            "tags": tags(stack, "site"),
        }),
    ));

    d.resources.push(Resource::new(
        OAC,
        "cloudfront.origin_access_control",
        json!({
            "name": oac_name(stack),
            "origin_type": "s3",
            "signing_behavior": "always",
            "signing_protocol": "sigv4",
        }),
    ));

    // The API origin exists only with a backend tier, whose expansion runs first.
    let has_api = f.api_origin && d.resources.iter().any(|r| r.address == BACKEND_API);
    let mut origins = vec![json!({
        "id": S3_ORIGIN_ID,
        "domain_name": reference(BUCKET, "regional_domain_name"),
        "origin_access_control_id": reference(OAC, "id"),
    })];
    let mut behaviors = Vec::new();
    if has_api {
        origins.push(json!({
            "id": API_ORIGIN_ID,
            "api_id": reference(BACKEND_API, "id"),
            "stage": reference(BACKEND_STAGE, "name"),
        }));
        behaviors.push(json!({
            "path_pattern": format!("{}/*", f.api_path),
            "target_origin_id": API_ORIGIN_ID,
            "viewer_protocol_policy": "https-only",
            "allowed_methods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"],
            "compress": true,
            "cache_policy_id": CACHING_DISABLED,
            "origin_request_policy_id": ALL_VIEWER_EXCEPT_HOST,
        }));
    }
    let error_responses: Vec<Value> = if f.spa {
        [403, 404]
            .iter()
            .map(|code| {
                json!({
                    "error_code": code,
                    "response_code": "200",
                    "response_page_path": "/index.html",
                    "error_caching_min_ttl": 0,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    d.resources.push(Resource::new(
        DISTRIBUTION,
        "cloudfront.distribution",
        json!({
            "comment": format!("{} frontend", stack.name),
            "enabled": true,
            "price_class": f.price_class.api(),
            "default_root_object": "index.html",
            "http_version": "http2and3",
            "ipv6": true,
            "aliases": f.aliases,
            "certificate_arn": f.certificate_arn,
            "origins": origins,
            "default_behavior": {
                "target_origin_id": S3_ORIGIN_ID,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD"],
                "compress": true,
                "cache_policy_id": CACHING_OPTIMIZED,
            },
            "behaviors": behaviors,
            "error_responses": error_responses,
            "tags": tags(stack, "site"),
        }),
    ));

    d.resources.push(Resource::new(
        BUCKET_POLICY,
        "s3.bucket_policy",
        json!({
            "bucket": reference(BUCKET, "name"),
            "bucket_arn": reference(BUCKET, "arn"),
            "distribution_arn": reference(DISTRIBUTION, "arn"),
            "only_managed_statements": true,
        }),
    ));

    if let Some(dir) = &f.site_dir {
        let files: Map<String, Value> = f
            .manifest
            .iter()
            .map(|x| (x.key.clone(), json!(x.md5)))
            .collect();
        d.resources.push(Resource::new(
            SITE,
            SITE_KIND,
            json!({
                "bucket": reference(BUCKET, "name"),
                "distribution_id": reference(DISTRIBUTION, "id"),
                "source": dir.display().to_string(),
                "files": files,
            }),
        ));
    }

    d.outputs.push(Output {
        name: "site_domain",
        address: DISTRIBUTION.into(),
        attr: "domain_name",
        description: "CloudFront domain name of the site (https://<it>/)",
    });
    d.outputs.push(Output {
        name: "distribution_id",
        address: DISTRIBUTION.into(),
        attr: "id",
        description: "CloudFront distribution id",
    });
    d.outputs.push(Output {
        name: "site_bucket",
        address: BUCKET.into(),
        attr: "name",
        description: "S3 bucket holding the site",
    });
}

/// Name of the origin access control: unique per account, hence the region.
pub fn oac_name(stack: &Stack) -> String {
    format!("{}-{}-site", stack.name, stack.region)
}

/// What publishing the site will do, from the desired and live file maps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SiteDelta {
    pub upload: Vec<String>,
    pub delete: Vec<String>,
    pub unchanged: usize,
}

impl SiteDelta {
    pub fn new(desired: Option<&Value>, live: Option<&Value>) -> SiteDelta {
        let empty = Map::new();
        let want = desired.and_then(Value::as_object).unwrap_or(&empty);
        let have = live.and_then(Value::as_object).unwrap_or(&empty);
        let mut d = SiteDelta::default();
        for (k, md5) in want {
            if have.get(k) == Some(md5) {
                d.unchanged += 1;
            } else {
                d.upload.push(k.clone());
            }
        }
        d.delete = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        d
    }

    pub fn summary(&self) -> String {
        format!(
            "site: {} to upload, {} to delete, {} unchanged",
            self.upload.len(),
            self.delete.len(),
            self.unchanged
        )
    }
}

/// Adds the site publishing summary to the plan ("site: N to upload, ...").
pub fn annotate(plan: &mut Plan) {
    for c in &plan.changes {
        if c.kind != SITE_KIND {
            continue;
        }
        let want = match c.action {
            Action::Delete => None,
            _ => c.desired.as_ref().and_then(|d| d.props.get("files")),
        };
        let have = c.live.as_ref().and_then(|l| l.props.get("files"));
        plan.notes.push(SiteDelta::new(want, have).summary());
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::{Limits, parse};
    use crate::config::{Overrides, check};
    use crate::engine::value;

    const MD5_OF_HTML: &str = "c83301425b2ad1d496473a5ff3d9ecca";
    const BASE: &str = "stack: shop\nregion: us-east-1\nnetwork: { cidr: 10.0.0.0/16 }\n";

    fn load(extra: &str, dir: &std::path::Path) -> Result<Stack, Vec<String>> {
        let text = format!("{BASE}{extra}");
        let root = parse(text.as_bytes(), &Limits::default()).unwrap();
        check(&root, &Overrides::default(), dir.to_path_buf())
            .map_err(|e| e.into_iter().map(|d| d.message).collect())
    }

    fn site() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("site/assets")).unwrap();
        std::fs::write(d.path().join("site/index.html"), "<html></html>").unwrap();
        std::fs::write(d.path().join("site/assets/app.1a2b3c4d.js"), "1").unwrap();
        d
    }

    fn find<'a>(d: &'a Desired, addr: &str) -> &'a Resource {
        d.resources.iter().find(|r| r.address == addr).unwrap()
    }

    #[test]
    fn no_frontend_section_no_resources() {
        let d = site();
        let s = load("", d.path()).unwrap();
        let mut out = Desired::default();
        expand(&s, &mut out);
        assert!(out.resources.is_empty());
    }

    #[test]
    fn expands_bucket_oac_distribution_policy_and_site() {
        let d = site();
        let s = load("frontend: { site: ./site }\n", d.path()).unwrap();
        let mut out = Desired::default();
        expand(&s, &mut out);
        let addrs: Vec<&str> = out.resources.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addrs, vec![BUCKET, OAC, DISTRIBUTION, BUCKET_POLICY, SITE]);
        let b = find(&out, BUCKET);
        assert_eq!(b.props["bucket"], json!("shop-site-{account}-us-east-1"));
        let dist = find(&out, DISTRIBUTION);
        assert_eq!(
            dist.props["origins"].as_array().unwrap().len(),
            1,
            "no backend tier: no API origin"
        );
        assert_eq!(dist.props["behaviors"], json!([]));
        assert_eq!(dist.props["error_responses"].as_array().unwrap().len(), 2);
        assert_eq!(
            dist.props["certificate_arn"],
            Value::Null,
            "explicit null: a removed certificate is compared"
        );
        assert_eq!(dist.props["price_class"], json!("PriceClass_100"));
        let deps = find(&out, BUCKET_POLICY).dependencies();
        assert!(deps.contains(DISTRIBUTION) && deps.contains(BUCKET));
        let site = find(&out, SITE);
        assert_eq!(site.props["files"].as_object().unwrap().len(), 2);
        assert_eq!(site.props["files"]["index.html"], json!(MD5_OF_HTML));
        assert!(site.dependencies().contains(DISTRIBUTION));
    }

    #[test]
    fn api_origin_only_with_a_backend_tier() {
        let d = site();
        let s = load(
            "frontend: { site: ./site, spa: false, bucket_name: my-site-bucket }\n",
            d.path(),
        )
        .unwrap();
        let mut out = Desired::default();
        out.resources
            .push(Resource::new(BACKEND_API, "apigateway.rest_api", json!({})));
        out.resources
            .push(Resource::new(BACKEND_STAGE, "apigateway.stage", json!({})));
        expand(&s, &mut out);
        let dist = find(&out, DISTRIBUTION);
        let origins = dist.props["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 2);
        assert_eq!(
            value::as_ref(&origins[1]["api_id"]),
            Some((BACKEND_API, "id"))
        );
        assert_eq!(
            value::as_ref(&origins[1]["stage"]),
            Some((BACKEND_STAGE, "name"))
        );
        assert_eq!(dist.props["behaviors"][0]["path_pattern"], json!("/api/*"));
        assert_eq!(dist.props["error_responses"], json!([]));
        assert_eq!(find(&out, BUCKET).props["bucket"], json!("my-site-bucket"));

        // Opting out keeps the API off the distribution.
        let s = load("frontend: { site: ./site, api_origin: false }\n", d.path()).unwrap();
        let mut out = Desired::default();
        out.resources
            .push(Resource::new(BACKEND_API, "apigateway.rest_api", json!({})));
        expand(&s, &mut out);
        assert_eq!(
            find(&out, DISTRIBUTION).props["origins"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn validation_errors_are_located_and_actionable() {
        let d = site();
        let errs = load(
            "frontend:\n  site: ./nope\n  bucket_name: Bad_Name\n  aliases: [www.example.com]\n  api_path: api/\n",
            d.path(),
        )
        .unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("frontend.site"), "{all}");
        assert!(all.contains("frontend.bucket_name"), "{all}");
        assert!(
            all.contains("frontend.aliases: custom domain names need a certificate"),
            "{all}"
        );
        assert!(all.contains("frontend.api_path"), "{all}");

        let errs = load("frontend: { price_class: PriceClass_999 }\n", d.path()).unwrap_err();
        assert!(errs.join("\n").contains("price_class"), "{errs:?}");

        std::fs::remove_file(d.path().join("site/index.html")).unwrap();
        let errs = load("frontend: { site: ./site }\n", d.path()).unwrap_err();
        assert!(errs.join("\n").contains("has no index.html"), "{errs:?}");
    }

    #[test]
    fn site_delta_counts() {
        let want = json!({"a": "1", "b": "2", "c": "3"});
        let have = json!({"a": "1", "b": "0", "z": "9"});
        let d = SiteDelta::new(Some(&want), Some(&have));
        assert_eq!(d.upload, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(d.delete, vec!["z".to_string()]);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.summary(), "site: 2 to upload, 1 to delete, 1 unchanged");
    }

    #[test]
    fn headers_by_extension_and_hash() {
        assert_eq!(
            object_headers("index.html"),
            ("text/html; charset=utf-8".into(), CACHE_REVALIDATE)
        );
        let (ct, cache) = object_headers("assets/app.3f2a1b9c.js");
        assert!(ct.contains("javascript"), "{ct}");
        assert_eq!(cache, CACHE_IMMUTABLE);
        assert_eq!(
            object_headers("assets/index-4f9a2b7c.css").1,
            CACHE_IMMUTABLE
        );
        assert_eq!(
            object_headers("assets/style.css").0,
            "text/css; charset=utf-8"
        );
        assert_eq!(object_headers("assets/style.css").1, CACHE_SHORT);
        assert_eq!(object_headers("logo.png").0, "image/png");
        assert_eq!(object_headers("data.bin").0, "application/octet-stream");
        // Words are not hashes.
        assert!(!is_hashed("bootstrap.min.js"));
        assert!(!is_hashed("components/MyComponent.js"));
        assert!(!is_hashed("jquery-3.7.1.js"));
    }
}
