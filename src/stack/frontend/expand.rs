//! The frontend tier: a private S3 bucket, an origin access control, a
//! CloudFront distribution reading the bucket through it (and, when the
//! stack has a backend tier, `/api/*` from its API Gateway stage), the
//! bucket policy that lets only this distribution read, and the published
//! site.

use crate::aws::cloudfront::distribution::{BehaviorProps, DistributionProps, FunctionAssociationProps, OriginProps};
use crate::aws::cloudfront::function::FunctionProps;
use crate::aws::cloudfront::origin_access_control::OriginAccessControlProps;
use crate::aws::s3::bucket::BucketProps;
use crate::aws::s3::bucket_policy::BucketPolicyProps;
use crate::aws::s3::site::SiteProps;
use crate::engine::resource::Props;
use crate::engine::value::Ref;
use crate::stack::Stack;
use crate::stack::address::*;
use crate::stack::desired::{Desired, Output, tags};
use crate::stack::names::{derived_bucket_name, spa_function};

use crate::aws::s3::bucket::ACCOUNT_PLACEHOLDER;

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

/// Client-side routes load the app: on the bucket's behaviour only (the
/// API's behaviour never runs it), a path whose last segment has no file
/// extension (`/orders/42`, `/`) is answered with `/index.html`; assets
/// (`/assets/app.js`) and missing files with an extension keep S3's answer.
/// A distribution-wide custom error response would instead turn the API's
/// own 403 and 404 into the site's HTML.
pub const SPA_ROUTER: &str = r#"// Written by infra: client-side routes of the single-page app load /index.html.
function handler(event) {
    var request = event.request;
    var last = request.uri.substring(request.uri.lastIndexOf('/') + 1);
    if (last.indexOf('.') === -1) {
        request.uri = '/index.html';
    }
    return request;
}
"#;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub fn expand(stack: &Stack, d: &mut Desired) {
    let Some(f) = &stack.spec.frontend else {
        return;
    };
    let bucket_name =
        f.bucket_name.clone().unwrap_or_else(|| derived_bucket_name(&stack.name, ACCOUNT_PLACEHOLDER, &stack.region));
    d.resources.push(
        BucketProps {
            bucket: bucket_name,
            block_public_access: true,
            object_ownership: "BucketOwnerEnforced".into(),
            encryption: "AES256".into(),
            versioning: true,
            tags: tags(stack, "site"),
        }
        .at(BUCKET),
    );

    d.resources.push(
        OriginAccessControlProps {
            name: oac_name(stack),
            origin_type: "s3".into(),
            signing_behavior: "always".into(),
            signing_protocol: "sigv4".into(),
        }
        .at(OAC),
    );

    // The API origin exists only with a backend tier, whose expansion runs first.
    let has_api = f.api_origin && d.resources.iter().any(|r| r.address == API);
    let mut origins = vec![OriginProps {
        id: S3_ORIGIN_ID.into(),
        domain_name: Some(Ref::to(BUCKET, "regional_domain_name")),
        origin_access_control_id: Some(Ref::to(OAC, "id")),
        ..OriginProps::default()
    }];
    let mut behaviors = Vec::new();
    if has_api {
        origins.push(OriginProps {
            id: API_ORIGIN_ID.into(),
            api_id: Some(Ref::to(API, "id")),
            stage: Some(Ref::to(STAGE, "name")),
            ..OriginProps::default()
        });
        behaviors.push(BehaviorProps {
            path_pattern: Some(format!("{}/*", f.api_path)),
            target_origin_id: API_ORIGIN_ID.into(),
            viewer_protocol_policy: "https-only".into(),
            allowed_methods: strings(&["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]),
            compress: true,
            cache_policy_id: Some(CACHING_DISABLED.into()),
            origin_request_policy_id: Some(ALL_VIEWER_EXCEPT_HOST.into()),
            functions: Vec::new(),
        });
    }
    let mut functions = Vec::new();
    if f.spa {
        d.resources.push(
            FunctionProps {
                name: spa_function(&stack.name, &stack.region),
                runtime: "cloudfront-js-2.0".into(),
                code: SPA_ROUTER.into(),
                tags: tags(stack, "site"),
            }
            .at(SPA_FUNCTION),
        );
        functions.push(FunctionAssociationProps {
            event_type: "viewer-request".into(),
            function_arn: Ref::to(SPA_FUNCTION, "arn"),
        });
    }
    d.resources.push(
        DistributionProps {
            comment: format!("{} frontend", stack.name),
            enabled: true,
            price_class: f.price_class.api().into(),
            default_root_object: "index.html".into(),
            http_version: "http2and3".into(),
            ipv6: true,
            aliases: f.aliases.clone(),
            certificate_arn: f.certificate_arn.clone(),
            origins,
            default_behavior: BehaviorProps {
                path_pattern: None,
                target_origin_id: S3_ORIGIN_ID.into(),
                viewer_protocol_policy: "redirect-to-https".into(),
                allowed_methods: strings(&["GET", "HEAD"]),
                compress: true,
                cache_policy_id: Some(CACHING_OPTIMIZED.into()),
                origin_request_policy_id: None,
                functions,
            },
            behaviors,
            error_responses: Vec::new(),
            tags: tags(stack, "site"),
        }
        .at(DISTRIBUTION),
    );

    d.resources.push(
        BucketPolicyProps {
            bucket: Ref::to(BUCKET, "name"),
            bucket_arn: Ref::to(BUCKET, "arn"),
            distribution_arn: Ref::to(DISTRIBUTION, "arn"),
            only_managed_statements: true,
        }
        .at(BUCKET_POLICY),
    );

    if let Some(dir) = &f.site_dir {
        d.resources.push(
            SiteProps {
                bucket: Ref::to(BUCKET, "name"),
                distribution_id: Some(Ref::to(DISTRIBUTION, "id")),
                source: Some(dir.display().to_string()),
                files: f.manifest.iter().map(|x| (x.key.clone(), x.md5.clone())).collect(),
            }
            .at(SITE),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::resource::Resource;
    use crate::engine::value;
    use crate::stack::yaml::{Limits, parse};
    use crate::stack::{Overrides, check_document as check};
    use serde_json::{Value, json};

    const MD5_OF_HTML: &str = "c83301425b2ad1d496473a5ff3d9ecca";
    const BASE: &str = "stack: shop\nregion: us-east-1\nnetwork: { cidr: 10.0.0.0/16 }\n";

    fn load(extra: &str, dir: &std::path::Path) -> Result<Stack, Vec<String>> {
        let text = format!("{BASE}{extra}");
        let root = parse(text.as_bytes(), &Limits::default()).unwrap();
        check(&root, &Overrides::default(), dir.to_path_buf()).map_err(|e| e.into_iter().map(|d| d.message).collect())
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
        assert_eq!(addrs, vec![BUCKET, OAC, SPA_FUNCTION, DISTRIBUTION, BUCKET_POLICY, SITE]);
        let b = find(&out, BUCKET);
        assert_eq!(b.props["bucket"], json!("shop-site-{account}-us-east-1"));
        let dist = find(&out, DISTRIBUTION);
        assert_eq!(dist.props["origins"].as_array().unwrap().len(), 1, "no backend tier: no API origin");
        assert_eq!(dist.props["behaviors"], json!([]));
        assert_eq!(dist.props["error_responses"], json!([]), "no distribution-wide rewrite of errors");
        let spa = &dist.props["default_behavior"]["functions"];
        assert_eq!(spa[0]["event_type"], json!("viewer-request"));
        assert_eq!(value::as_ref(&spa[0]["function_arn"]), Some((SPA_FUNCTION, "arn")));
        assert_eq!(find(&out, SPA_FUNCTION).props["name"], json!("shop-us-east-1-spa"));
        assert_eq!(dist.props["certificate_arn"], Value::Null, "explicit null: a removed certificate is compared");
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
        let s = load("frontend: { site: ./site, spa: false, bucket_name: my-site-bucket }\n", d.path()).unwrap();
        let mut out = Desired::default();
        out.resources.push(Resource::new(API, "apigateway.rest_api", json!({})));
        out.resources.push(Resource::new(STAGE, "apigateway.stage", json!({})));
        expand(&s, &mut out);
        let dist = find(&out, DISTRIBUTION);
        let origins = dist.props["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 2);
        assert_eq!(value::as_ref(&origins[1]["api_id"]), Some((API, "id")));
        assert_eq!(value::as_ref(&origins[1]["stage"]), Some((STAGE, "name")));
        assert_eq!(dist.props["behaviors"][0]["path_pattern"], json!("/api/*"));
        assert!(dist.props["behaviors"][0].get("functions").is_none(), "the API's answers are its own");
        assert!(dist.props["default_behavior"].get("functions").is_none(), "spa: false");
        assert!(!out.resources.iter().any(|r| r.address == SPA_FUNCTION));
        assert_eq!(find(&out, BUCKET).props["bucket"], json!("my-site-bucket"));

        // Opting out keeps the API off the distribution.
        let s = load("frontend: { site: ./site, api_origin: false }\n", d.path()).unwrap();
        let mut out = Desired::default();
        out.resources.push(Resource::new(API, "apigateway.rest_api", json!({})));
        expand(&s, &mut out);
        assert_eq!(find(&out, DISTRIBUTION).props["origins"].as_array().unwrap().len(), 1);
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
        assert!(all.contains("frontend.aliases: custom domain names need a certificate"), "{all}");
        assert!(all.contains("frontend.api_path"), "{all}");

        let errs = load("frontend: { price_class: PriceClass_999 }\n", d.path()).unwrap_err();
        assert!(errs.join("\n").contains("price_class"), "{errs:?}");

        std::fs::remove_file(d.path().join("site/index.html")).unwrap();
        let errs = load("frontend: { site: ./site }\n", d.path()).unwrap_err();
        assert!(errs.join("\n").contains("has no index.html"), "{errs:?}");
    }

    #[test]
    fn the_provider_finds_the_policy_and_the_site_beside_the_bucket() {
        assert_eq!(crate::aws::s3::bucket_policy::address_of(BUCKET), BUCKET_POLICY);
        assert_eq!(crate::aws::s3::site::address_of(BUCKET), SITE);
    }
}
