//! The Rust types of `stack.yaml`. They are the single source of truth: the
//! published JSON Schema is generated from them (`infra schema`), and the
//! loader checks a file against that schema before deserializing it, so every
//! unknown key or wrong type is reported at once with its location.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole stack: one highly available AWS web application.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    /// Stack name: prefixes every AWS name and is written to the `infra:stack`
    /// tag by which the stack's resources are found. Lowercase letters, digits
    /// and hyphens, at most 24 characters. `--stack` overrides it.
    pub stack: String,
    /// AWS region (e.g. `us-east-1`). `--region` overrides it; without either
    /// the AWS environment (AWS_REGION, profile) decides.
    #[serde(default)]
    pub region: Option<String>,
    /// Accept a region this version of infra does not know (newer than the tool).
    #[serde(default)]
    pub allow_unknown_region: bool,
    /// Tags added to every resource that takes tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// A production stack: deletion protection is on by default for what
    /// holds data (the database and the tables): apply and destroy then
    /// refuse to delete them, and so does AWS. Each one's own
    /// `deletion_protection` still wins. Set it in the production
    /// environment's overlay.
    #[serde(default)]
    pub protect: bool,
    /// The network tier: VPC, subnets, gateways, routes and security groups.
    pub network: super::network::spec::Network,
    /// The frontend tier: the site's S3 bucket, CloudFront, and site publishing.
    // Schema without `null`: errors inside the section are then located.
    #[serde(default)]
    #[schemars(with = "crate::stack::frontend::spec::Frontend")]
    pub frontend: Option<crate::stack::frontend::spec::Frontend>,
    /// The compute tier: web groups behind an Application Load Balancer.
    /// (The schema is the section's own, not "it or null", so a mistake
    /// inside it is reported key by key.)
    #[serde(default)]
    #[schemars(with = "crate::stack::compute::spec::Compute")]
    pub compute: Option<crate::stack::compute::spec::Compute>,
    /// The backend tier: Lambda functions behind an API Gateway REST API.
    #[serde(default)]
    pub backend: Option<crate::stack::backend::spec::Backend>,
    /// The data tier: an RDS database and DynamoDB tables.
    #[serde(default)]
    pub data: Option<crate::stack::data::spec::Data>,
    /// Named overlays merged over this file with `-e NAME`; each is deployed
    /// as its own stack named `<stack>-<NAME>` unless it sets `stack`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Map<String, serde_json::Value>>")]
    pub environments: BTreeMap<String, serde_json::Value>,
}

/// The JSON Schema of stack.yaml, generated from these types.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(StackFile)).unwrap_or_default();
    if let Some(o) = schema.as_object_mut() {
        o.insert("$id".into(), serde_json::Value::String("https://infra.dev/schema/stack.schema.json".into()));
    }
    schema
}
