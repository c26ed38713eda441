//! The frontend tier against moto, read back with the AWS CLI: the private
//! bucket, the origin access control, the distribution, the bucket policy,
//! site publishing (only changed files uploaded and invalidated), and a
//! destroy that leaves nothing.

mod common;

use common::{Moto, Workdir};
use serde_json::Value;

// moto gaps are patched for every test in tests/support/moto_patched.py.

const ACCOUNT: &str = "123456789012";
const BUCKET: &str = "webapp-site-123456789012-us-east-1";

fn account(moto: &Moto) -> String {
    moto.aws(&["sts", "get-caller-identity"])["Account"].as_str().unwrap().to_string()
}

fn bucket_names(moto: &Moto) -> Vec<String> {
    moto.aws(&["s3api", "list-buckets"])["Buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b["Name"].as_str().map(str::to_string))
        .collect()
}

fn distributions(moto: &Moto) -> Vec<Value> {
    moto.aws(&["cloudfront", "list-distributions"])["DistributionList"]["Items"].as_array().cloned().unwrap_or_default()
}

fn oacs(moto: &Moto) -> Vec<Value> {
    moto.aws(&["cloudfront", "list-origin-access-controls"])["OriginAccessControlList"]["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn invalidation_paths(moto: &Moto, dist: &str) -> Vec<Vec<String>> {
    let list = moto.aws(&["cloudfront", "list-invalidations", "--distribution-id", dist]);
    let mut out = Vec::new();
    for i in list["InvalidationList"]["Items"].as_array().cloned().unwrap_or_default() {
        let id = i["Id"].as_str().unwrap();
        let got = moto.aws(&["cloudfront", "get-invalidation", "--distribution-id", dist, "--id", id]);
        let mut paths: Vec<String> = got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        paths.sort();
        out.push(paths);
    }
    out
}

/// Number of stored versions of each key (one per upload: the bucket is versioned).
fn versions(moto: &Moto, bucket: &str) -> std::collections::BTreeMap<String, usize> {
    let v = moto.aws(&["s3api", "list-object-versions", "--bucket", bucket]);
    let mut out = std::collections::BTreeMap::new();
    for x in v["Versions"].as_array().cloned().unwrap_or_default() {
        *out.entry(x["Key"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    out
}

fn current_keys(moto: &Moto, bucket: &str) -> Vec<String> {
    let v = moto.aws(&["s3api", "list-objects-v2", "--bucket", bucket]);
    v["Contents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| o["Key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn publishes_a_private_site_through_cloudfront_and_destroys_it() {
    let moto = Moto::start();
    let w = Workdir::reference();
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert_eq!(account(&moto), ACCOUNT);

    // 1. The bucket: private, owner-enforced, encrypted, versioned, tagged.
    assert!(bucket_names(&moto).contains(&BUCKET.to_string()), "{:?}", bucket_names(&moto));
    let pab = &moto.aws(&["s3api", "get-public-access-block", "--bucket", BUCKET])["PublicAccessBlockConfiguration"];
    for k in ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"] {
        assert_eq!(pab[k], true, "{k}: {pab}");
    }
    let own = moto.aws(&["s3api", "get-bucket-ownership-controls", "--bucket", BUCKET]);
    assert_eq!(own["OwnershipControls"]["Rules"][0]["ObjectOwnership"], "BucketOwnerEnforced");
    let enc = moto.aws(&["s3api", "get-bucket-encryption", "--bucket", BUCKET]);
    assert_eq!(
        enc["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "AES256"
    );
    let ver = moto.aws(&["s3api", "get-bucket-versioning", "--bucket", BUCKET]);
    assert_eq!(ver["Status"], "Enabled");
    let tags = moto.aws(&["s3api", "get-bucket-tagging", "--bucket", BUCKET]);
    let tag = |k: &str| tags["TagSet"].as_array().unwrap().iter().find(|t| t["Key"] == k).map(|t| t["Value"].clone());
    assert_eq!(tag("infra:stack"), Some("webapp".into()));
    assert_eq!(tag("infra:address"), Some("frontend.bucket".into()));
    assert_eq!(tag("project"), Some("webapp".into()));

    // The origin access control: sigv4, always signing, for S3.
    let oac = oacs(&moto);
    assert_eq!(oac.len(), 1, "{oac:?}");
    let oac = &oac[0];
    assert_eq!(oac["Name"], "webapp-us-east-1-site");
    assert_eq!(oac["SigningProtocol"], "sigv4");
    assert_eq!(oac["SigningBehavior"], "always");
    assert_eq!(oac["OriginAccessControlOriginType"], "s3");
    let oac_id = oac["Id"].as_str().unwrap();

    // The distribution: the S3 origin through the OAC, root object, HTTPS, SPA fallback.
    let dists = distributions(&moto);
    assert_eq!(dists.len(), 1);
    let dist_id = dists[0]["Id"].as_str().unwrap().to_string();
    let arn_echo = dists[0]["ARN"].as_str().unwrap();
    let dtags = moto.aws(&["cloudfront", "list-tags-for-resource", "--resource", arn_echo]);
    let dtag =
        |k: &str| dtags["Tags"]["Items"].as_array().unwrap().iter().find(|t| t["Key"] == k).map(|t| t["Value"].clone());
    assert_eq!(dtag("infra:address"), Some("frontend.distribution".into()));
    assert_eq!(dtag("infra:region"), Some("us-east-1".into()));
    let conf = &moto.aws(&["cloudfront", "get-distribution-config", "--id", &dist_id])["DistributionConfig"];
    assert_eq!(conf["DefaultRootObject"], "index.html");
    assert_eq!(conf["Enabled"], true);
    assert_eq!(conf["PriceClass"], "PriceClass_100");
    let origins = conf["Origins"]["Items"].as_array().unwrap();
    // The reference stack has a backend: its stage is the second origin, for /api/*.
    assert_eq!(origins.len(), 2, "the site and the API");
    assert!(origins[1]["DomainName"].as_str().unwrap().contains(".execute-api.us-east-1.amazonaws.com"), "{origins:?}");
    assert_eq!(origins[0]["DomainName"], format!("{BUCKET}.s3.us-east-1.amazonaws.com"));
    // /api/* goes to the stage root (origin path /<stage>) with its path
    // unchanged, so /api/orders reaches the API's /api/orders resource.
    assert_eq!(origins[1]["OriginPath"], "/prod");
    let behaviors = conf["CacheBehaviors"]["Items"].as_array().unwrap();
    assert_eq!(behaviors.len(), 1, "{behaviors:?}");
    assert_eq!(behaviors[0]["PathPattern"], "/api/*");
    assert_eq!(behaviors[0]["TargetOriginId"], origins[1]["Id"]);
    let api_id = origins[1]["DomainName"].as_str().unwrap().split('.').next().unwrap().to_string();
    let resources = moto.aws(&["apigateway", "get-resources", "--rest-api-id", &api_id]);
    let paths: Vec<&str> = resources["items"].as_array().unwrap().iter().filter_map(|r| r["path"].as_str()).collect();
    assert!(paths.contains(&"/api/orders"), "{paths:?}");
    assert_eq!(origins[0]["OriginAccessControlId"], oac_id);
    let dcb = &conf["DefaultCacheBehavior"];
    assert_eq!(dcb["TargetOriginId"], origins[0]["Id"]);
    assert_eq!(dcb["ViewerProtocolPolicy"], "redirect-to-https");
    assert_eq!(dcb["Compress"], true);
    // Client-side routes: a CloudFront Function on the bucket's behaviour
    // only; no distribution-wide error rewrite that would hide the API's.
    assert_eq!(conf["CustomErrorResponses"]["Quantity"], 0, "{conf}");
    let fa = &dcb["FunctionAssociations"];
    assert_eq!(fa["Quantity"], 1, "{dcb}");
    assert_eq!(fa["Items"][0]["EventType"], "viewer-request");
    assert_eq!(behaviors[0]["FunctionAssociations"]["Quantity"], 0, "the API's behaviour runs no function");
    let fn_arn = fa["Items"][0]["FunctionARN"].as_str().unwrap();
    let fn_name = fn_arn.rsplit('/').next().unwrap();
    let live = moto.aws(&["cloudfront", "describe-function", "--name", fn_name, "--stage", "LIVE"]);
    assert_eq!(live["FunctionSummary"]["FunctionMetadata"]["FunctionARN"], fn_arn);
    assert_eq!(live["FunctionSummary"]["FunctionConfig"]["Runtime"], "cloudfront-js-2.0");

    // The bucket policy: CloudFront may read, only as this distribution,
    // whose ARN is built from the account and partition (moto's own ARN
    // echo is malformed: it lacks the empty region field).
    let pol = moto.aws(&["s3api", "get-bucket-policy", "--bucket", BUCKET]);
    let doc: Value = serde_json::from_str(pol["Policy"].as_str().unwrap()).unwrap();
    let stmts = doc["Statement"].as_array().unwrap();
    let read = stmts.iter().find(|s| s["Effect"] == "Allow").unwrap();
    assert_eq!(read["Principal"]["Service"], "cloudfront.amazonaws.com");
    assert_eq!(read["Action"], "s3:GetObject");
    assert_eq!(read["Resource"], format!("arn:aws:s3:::{BUCKET}/*"));
    assert_eq!(
        read["Condition"]["StringEquals"]["AWS:SourceArn"],
        format!("arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}")
    );
    assert_eq!(stmts.iter().filter(|s| s["Effect"] == "Allow").count(), 1, "nothing else may read");

    // 2. The site: every file, with its content type and caching.
    let mut keys = current_keys(&moto, BUCKET);
    keys.sort();
    let js = keys.iter().find(|k| k.ends_with(".js")).unwrap().clone();
    let css = keys.iter().find(|k| k.ends_with(".css")).unwrap().clone();
    assert_eq!(keys.len(), 4, "{keys:?}");
    let head = |k: &str| moto.aws(&["s3api", "head-object", "--bucket", BUCKET, "--key", k]);
    let index = head("index.html");
    assert_eq!(index["ContentType"], "text/html; charset=utf-8");
    assert_eq!(index["CacheControl"], "public, max-age=0, must-revalidate");
    let h = head(&js);
    assert!(h["ContentType"].as_str().unwrap().contains("javascript"), "{h}");
    assert_eq!(h["CacheControl"], "public, max-age=31536000, immutable");
    let h = head(&css);
    assert_eq!(h["ContentType"], "text/css; charset=utf-8");
    assert_eq!(h["CacheControl"], "public, max-age=31536000, immutable");
    let h = head("robots.txt");
    assert_eq!(h["ContentType"], "text/plain; charset=utf-8");
    assert_eq!(h["CacheControl"], "public, max-age=300");
    // The first publish to an empty bucket has nothing cached to invalidate.
    assert_eq!(invalidation_paths(&moto, &dist_id), Vec::<Vec<String>>::new());

    // Plan right after apply: nothing to do, the site counted as unchanged.
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(0);
    assert!(plan.stdout.contains("site: 0 to upload, 0 to delete, 4 unchanged"), "{}", plan.stdout);

    // Edit one file: only it is uploaded, only its path invalidated.
    let before = versions(&moto, BUCKET);
    w.write("site/robots.txt", "User-agent: *\nDisallow: /admin\n");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("site: 1 to upload, 0 to delete, 3 unchanged"), "{}", plan.stdout);
    assert!(plan.stdout.contains("files.robots.txt"), "{}", plan.stdout);
    // --wait: until CloudFront reports the invalidation completed.
    moto.infra(w.path(), &["apply", "--auto-approve", "--wait"]).ok();
    let after = versions(&moto, BUCKET);
    for (k, n) in &after {
        let expected = before[k] + usize::from(k == "robots.txt");
        assert_eq!(*n, expected, "{k} was uploaded {n} time(s)");
    }
    let got = moto.aws(&["s3api", "get-object", "--bucket", BUCKET, "--key", "robots.txt", "/dev/null"]);
    assert_eq!(got["ContentLength"], 31);
    assert_eq!(invalidation_paths(&moto, &dist_id), vec![vec!["/robots.txt".to_string()]]);
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Remove one file and add another: one deleted, one uploaded, both invalidated.
    std::fs::remove_file(w.path().join("site/robots.txt")).unwrap();
    w.write("site/favicon.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("site: 1 to upload, 1 to delete, 3 unchanged"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let keys = current_keys(&moto, BUCKET);
    assert!(keys.contains(&"favicon.svg".to_string()) && !keys.contains(&"robots.txt".to_string()), "{keys:?}");
    assert_eq!(head("favicon.svg")["ContentType"], "image/svg+xml; charset=utf-8");
    let inv = invalidation_paths(&moto, &dist_id);
    assert_eq!(inv.len(), 2, "{inv:?}");
    assert!(inv.contains(&vec!["/favicon.svg".to_string(), "/robots.txt".to_string()]), "{inv:?}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // 3. Destroy leaves nothing of the tier: bucket (every version), policy,
    // distribution, origin access control.
    moto.infra(w.path(), &["destroy", "--auto-approve"]).ok();
    assert!(!bucket_names(&moto).contains(&BUCKET.to_string()));
    assert_eq!(distributions(&moto), Vec::<Value>::new());
    assert_eq!(oacs(&moto), Vec::<Value>::new());
    assert_eq!(cloudfront_functions(&moto), Vec::<Value>::new());
    moto.infra(w.path(), &["plan", "--destroy", "--detailed-exitcode"]).code(0);
}

/// Every CloudFront Function of the account.
fn cloudfront_functions(moto: &Moto) -> Vec<Value> {
    let got = moto.aws(&["cloudfront", "list-functions"]);
    got["FunctionList"]["Items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn distribution_updates_in_place_through_the_etag_protocol() {
    let moto = Moto::start();
    let w = Workdir::with_stack(
        "stack: shop\nregion: us-east-1\nnetwork: { cidr: 10.1.0.0/16 }\nfrontend:\n  bucket_name: shop-frontend-bucket\n  site: ./dist\n  spa: true\n  price_class: PriceClass_100\n",
    );
    w.write("dist/index.html", "<!doctype html><title>v1</title>");
    moto.infra(w.path(), &["apply", "--auto-approve", "--wait"]).ok();
    let dists = distributions(&moto);
    assert_eq!(dists.len(), 1);
    let id = dists[0]["Id"].as_str().unwrap().to_string();
    assert!(bucket_names(&moto).contains(&"shop-frontend-bucket".to_string()));

    // A new price class and no SPA fallback: the same distribution, changed.
    w.edit("price_class: PriceClass_100", "price_class: PriceClass_All");
    w.edit("spa: true", "spa: false");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(
        plan.stdout.contains("frontend.distribution (cloudfront.distribution) will be updated in place"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("price_class"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve", "--wait"]).ok();
    let dists = distributions(&moto);
    assert_eq!(dists.len(), 1);
    assert_eq!(dists[0]["Id"], id.as_str(), "updated in place, not replaced");
    let got = moto.aws(&["cloudfront", "get-distribution-config", "--id", &id]);
    assert_eq!(got["DistributionConfig"]["PriceClass"], "PriceClass_All");
    assert_eq!(got["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"]["Quantity"], 0);
    assert_eq!(cloudfront_functions(&moto), Vec::<Value>::new(), "the SPA router goes with spa: false");
    assert_eq!(got["DistributionConfig"]["DefaultRootObject"], "index.html");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // A hand-made change to the bucket policy is drift, put back by apply.
    let open_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Public","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::shop-frontend-bucket/*"}]}"#;
    moto.aws(&["s3api", "put-bucket-policy", "--bucket", "shop-frontend-bucket", "--policy", open_policy]);
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("frontend.bucket_policy"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let pol = moto.aws(&["s3api", "get-bucket-policy", "--bucket", "shop-frontend-bucket"]);
    assert!(!pol["Policy"].as_str().unwrap().contains("\"Public\""), "{pol}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Removing the section removes the tier and only it.
    let yaml = w.read("stack.yaml");
    w.write("stack.yaml", &yaml[..yaml.find("frontend:").unwrap()]);
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("0 to add, 0 to change, 0 to replace, 5 to destroy"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert!(!bucket_names(&moto).contains(&"shop-frontend-bucket".to_string()));
    assert_eq!(distributions(&moto), Vec::<Value>::new());
    assert_eq!(oacs(&moto), Vec::<Value>::new());
    assert!(!moto.ec2_by_stack("describe-vpcs", "Vpcs", "shop").is_empty(), "the network stays");
}

#[test]
fn never_takes_over_a_bucket_it_did_not_create() {
    let moto = Moto::start();
    let w = Workdir::with_stack(
        "stack: shop\nregion: us-east-1\nnetwork: { cidr: 10.1.0.0/16 }\nfrontend:\n  bucket_name: someone-elses-bucket\n  site: ./dist\n",
    );
    w.write("precious.txt", "data");
    let body = w.path().join("precious.txt");
    moto.aws(&["s3api", "create-bucket", "--bucket", "someone-elses-bucket"]);
    moto.aws(&[
        "s3api",
        "put-object",
        "--bucket",
        "someone-elses-bucket",
        "--key",
        "precious.txt",
        "--body",
        body.to_str().unwrap(),
    ]);
    w.write("dist/index.html", "<!doctype html>");
    let run = moto.infra(w.path(), &["apply", "--auto-approve"]);
    run.code(1);
    assert!(run.stderr.contains("already exists in this account"), "{}", run.stderr);
    assert!(run.stderr.contains("bucket_name"), "{}", run.stderr);
    // Untouched: no tags, no policy, its object still there.
    assert!(!moto.aws_ok(&["s3api", "get-bucket-tagging", "--bucket", "someone-elses-bucket"]));
    assert!(!moto.aws_ok(&["s3api", "get-bucket-policy", "--bucket", "someone-elses-bucket"]));
    assert_eq!(current_keys(&moto, "someone-elses-bucket"), vec!["precious.txt".to_string()]);
}

#[test]
fn bad_frontend_settings_fail_validation_with_their_location() {
    let w = Workdir::with_stack(
        "stack: shop\nregion: us-east-1\nnetwork: { cidr: 10.1.0.0/16 }\nfrontend:\n  bucket_name: Shop_Site\n  site: ./missing\n  aliases: [www.example.com]\n  price_class: PriceClass_50\n",
    );
    // No emulator: validation makes no AWS call.
    let moto_less = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["validate"])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(moto_less.status.code(), Some(1));
    let err = String::from_utf8_lossy(&moto_less.stderr);
    assert!(err.contains("price_class"), "{err}");

    w.edit("  price_class: PriceClass_50\n", "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["validate"])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "frontend.bucket_name",
        "frontend.site: cannot read the site directory",
        "frontend.aliases: custom domain names need a certificate",
        "stack.yaml:",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
