//! The `frontend:` section of stack.yaml: a private S3 bucket served through
//! CloudFront with origin access control, and the built site published to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

fn default_api_path() -> String {
    "/api".into()
}

/// The frontend tier: the JavaScript site, from S3 through CloudFront.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    /// Name of the site bucket. Default: `<stack>-site-<account>-<region>`,
    /// unique across AWS because it holds the account id. 3 to 63 lowercase
    /// letters, digits and hyphens. Changing it replaces the bucket.
    #[serde(default)]
    pub bucket_name: Option<String>,
    /// Directory of the built site (e.g. `./site` or `./dist`), relative to
    /// the stack file, uploaded on apply: new and changed files are uploaded,
    /// files removed locally are deleted, and one CloudFront invalidation
    /// lists the paths that changed. It must contain `index.html`. Absent:
    /// nothing is published.
    #[serde(default)]
    pub site: Option<String>,
    /// Single-page application: client-side routes (`/orders/42`: a path
    /// whose last segment has no file extension) load `/index.html`, by a
    /// CloudFront Function on the bucket's behaviour only, so the API's own
    /// 403 and 404 reach its clients as the API sent them.
    #[serde(default = "yes")]
    pub spa: bool,
    /// CloudFront price class: which edge locations serve the site
    /// (`PriceClass_100`: North America and Europe; `PriceClass_200`; `PriceClass_All`).
    #[serde(default)]
    pub price_class: PriceClass,
    /// Custom domain names (e.g. `[www.example.com]`); they need `certificate_arn`.
    /// Point their DNS records at the distribution's domain name.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// ARN of an ACM certificate in us-east-1 (CloudFront's region for
    /// certificates) that covers every alias.
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// Route `<api_path>/*` to the backend tier's API Gateway stage, so the
    /// site and its API share one domain. Ignored when the stack has no
    /// backend tier.
    #[serde(default = "yes")]
    pub api_origin: bool,
    /// Path prefix forwarded to the API (default `/api`): CloudFront sends
    /// `/api/orders` to the stage as `/<stage>/api/orders`, so the API's
    /// routes must include the prefix.
    #[serde(default = "default_api_path")]
    pub api_path: String,
    /// The site's files, read and hashed by validation (never in the file).
    #[serde(skip)]
    #[schemars(skip)]
    pub manifest: Vec<SiteFile>,
    /// Absolute path of the site directory, set by validation.
    #[serde(skip)]
    #[schemars(skip)]
    pub site_dir: Option<std::path::PathBuf>,
}

/// One file of the site, as validation found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteFile {
    /// Object key: the path below the site directory, `/`-separated.
    pub key: String,
    /// Hex MD5 of the content: S3's ETag of a single-part upload.
    pub md5: String,
    pub size: u64,
}

/// CloudFront price classes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum PriceClass {
    /// North America, Europe and Israel (cheapest).
    #[default]
    #[serde(rename = "PriceClass_100")]
    Class100,
    /// Adds Asia, Africa and the Middle East.
    #[serde(rename = "PriceClass_200")]
    Class200,
    /// Every edge location.
    #[serde(rename = "PriceClass_All")]
    All,
}

impl PriceClass {
    /// The CloudFront API value.
    pub fn api(self) -> &'static str {
        match self {
            PriceClass::Class100 => "PriceClass_100",
            PriceClass::Class200 => "PriceClass_200",
            PriceClass::All => "PriceClass_All",
        }
    }
}
