//! The `backend:` section of stack.yaml: Lambda functions (one per
//! microservice) and the REST API in front of them. See docs/backend.md.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The backend tier: Lambda functions behind an API Gateway REST API.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Functions by name (lowercase letters, digits and hyphens). Each becomes
    /// the Lambda function `<stack>-<name>` with its own execution role.
    pub functions: BTreeMap<String, FunctionSpec>,
    /// The REST API that routes HTTP requests to the functions. Absent: no API
    /// (functions that only consume streams).
    #[serde(default)]
    pub api: Option<ApiSpec>,
    /// Days CloudWatch Logs keeps the functions' logs and the API access logs
    /// (one of the values CloudWatch accepts: 1, 3, 5, 7, 14, 30, 60, 90, ...;
    /// default 365: a year of history, as security reviews ask).
    #[serde(default = "default_retention")]
    pub log_retention_days: u32,
}

fn default_retention() -> u32 {
    365
}

/// One Lambda function.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// Directory of the function's code (relative to stack.yaml), zipped by
    /// infra deterministically. Give either `source` or `zip`.
    #[serde(default)]
    pub source: Option<String>,
    /// A prebuilt deployment package (relative to stack.yaml).
    #[serde(default)]
    pub zip: Option<String>,
    /// Lambda runtime, e.g. `python3.12`, `nodejs20.x`.
    pub runtime: String,
    /// Entry point, e.g. `app.handler` (module `app`, function `handler`).
    pub handler: String,
    /// Memory in MB, 128 to 10240.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Timeout in seconds, 1 to 900.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
    /// Instruction set: `x86_64` (default) or `arm64`.
    #[serde(default)]
    pub architecture: Architecture,
    /// Environment variables. Values may reference the stack:
    /// `${tables.<name>.name|arn|stream_arn}`, `${database.endpoint|port|secret_arn}`.
    /// Never put a secret here: pass the database secret's ARN instead.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// DynamoDB tables of the `data:` section this function reads and writes
    /// (and only those): item and query actions on the tables and their indexes.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Allow reading the database's master secret (Secrets Manager).
    #[serde(default)]
    pub database: bool,
    /// Run in the private subnets with the `functions` security group
    /// (needed to reach the database).
    #[serde(default)]
    pub vpc: bool,
    /// Reserved concurrent executions (absent: the account's unreserved pool;
    /// 0 stops the function from running).
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// Consume a DynamoDB stream (event source mapping).
    #[serde(default)]
    pub stream: Option<StreamSpec>,
}

fn default_memory() -> u32 {
    128
}

fn default_timeout() -> u32 {
    3
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    pub fn api(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

/// A DynamoDB stream the function consumes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// A table of the `data:` section (its stream must be enabled).
    #[serde(default)]
    pub table: Option<String>,
    /// Or the ARN of the stream of a table managed elsewhere.
    #[serde(default)]
    pub arn: Option<String>,
    /// Records per invocation, 1 to 10000.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Where to start reading: `LATEST` (default) or `TRIM_HORIZON`.
    #[serde(default)]
    pub starting_position: StartingPosition,
}

fn default_batch() -> u32 {
    100
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StartingPosition {
    #[default]
    Latest,
    TrimHorizon,
}

impl StartingPosition {
    pub fn api(self) -> &'static str {
        match self {
            StartingPosition::Latest => "LATEST",
            StartingPosition::TrimHorizon => "TRIM_HORIZON",
        }
    }
}

/// The REST API (regional endpoint).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// API name (default `<stack>-api`).
    #[serde(default)]
    pub name: Option<String>,
    /// Stage name (default `prod`): the invoke URL ends with it.
    #[serde(default = "default_stage")]
    pub stage: String,
    /// Routes: each an HTTP method and path sent to a function (Lambda proxy integration).
    pub routes: Vec<RouteSpec>,
    /// Stage-wide throttling. Absent: the account's defaults.
    #[serde(default)]
    pub throttling: Option<Throttling>,
    /// Write one JSON access log line per request to a CloudWatch Logs group
    /// managed by infra. Needs the account's API Gateway CloudWatch role (see docs).
    #[serde(default)]
    pub access_logs: bool,
    /// Trace requests with AWS X-Ray (default true; X-Ray samples the first
    /// request each second and 5% of the others, and bills per trace).
    #[serde(default = "yes")]
    pub tracing: bool,
    /// Who may call the routes that do not say (each route may): `none`
    /// (anyone), `jwt` (users signed in to `user_pool`, with their token in
    /// `Authorization`), `iam` (callers signing with AWS credentials) or
    /// `api_key` (clients of `api_keys`, key in `x-api-key`).
    /// Every route must end up with one: an API open to anyone is written so.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The Cognito user pool whose users `auth: jwt` routes accept: `{}`
    /// makes one (users sign in with their email; an app client for the
    /// site), `{ arn: ... }` takes an existing pool.
    #[serde(default)]
    pub user_pool: Option<UserPoolSpec>,
    /// The API keys of `auth: api_key` routes: one per client, each in the
    /// stage's usage plan with its quota and throttling.
    #[serde(default)]
    pub api_keys: Option<ApiKeysSpec>,
}

/// API keys and their usage plan.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysSpec {
    /// Client names (lowercase letters, digits and hyphens): one key each,
    /// named `<stack>-<client>`. API Gateway generates the values, which
    /// never appear in the file, a plan or the terminal.
    pub clients: Vec<String>,
    /// Requests each key may make per period.
    #[serde(default)]
    pub quota: Option<QuotaSpec>,
    /// Each key's steady rate and burst.
    #[serde(default)]
    pub throttling: Option<Throttling>,
}

/// A usage plan's quota.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSpec {
    pub limit: u32,
    /// `day`, `week` or `month`.
    pub period: QuotaPeriod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

impl QuotaPeriod {
    pub fn api(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "DAY",
            QuotaPeriod::Week => "WEEK",
            QuotaPeriod::Month => "MONTH",
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// Anyone on the internet.
    None,
    /// Users of the API's user pool: a Cognito token in `Authorization`.
    Jwt,
    /// Callers signing the request with AWS credentials (SigV4) their IAM
    /// policies allow `execute-api:Invoke` on the route.
    Iam,
    /// Clients sending one of `api_keys`' keys in `x-api-key`, within its
    /// quota and throttling.
    ApiKey,
}

impl Auth {
    /// The method's authorization type in API Gateway.
    pub fn api(self) -> &'static str {
        match self {
            Auth::None => "NONE",
            Auth::Jwt => "COGNITO_USER_POOLS",
            Auth::Iam => "AWS_IAM",
            Auth::ApiKey => "NONE",
        }
    }
}

/// The user pool of `auth: jwt` routes.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPoolSpec {
    /// An existing pool's ARN (`arn:aws:cognito-idp:REGION:ACCOUNT:userpool/ID`);
    /// absent: the stack makes the pool `<stack>-users` and its app client.
    #[serde(default)]
    pub arn: Option<String>,
    /// Shortest password the stack's pool accepts (8 to 99; default 15, NIST
    /// SP 800-63B-4's minimum for a password that is the only factor).
    /// Passwords also need a lowercase and an uppercase letter, a digit and a symbol.
    #[serde(default = "default_password_length")]
    pub password_min_length: u8,
}

fn yes() -> bool {
    true
}

fn default_password_length() -> u8 {
    15
}

fn default_stage() -> String {
    "prod".into()
}

/// One route.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS` or `ANY`.
    pub method: HttpMethod,
    /// Path from the stage root, e.g. `/orders`, `/orders/{id}`, `/users/{proxy+}`.
    pub path: String,
    /// The function that handles it (a key of `functions`).
    pub function: String,
    /// Who may call it (default: the API's `auth`).
    #[serde(default)]
    pub auth: Option<Auth>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    Any,
}

impl HttpMethod {
    pub fn api(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Any => "ANY",
        }
    }
}

/// Stage throttling (token bucket).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttling {
    /// Steady-state requests per second.
    pub rate_limit: f64,
    /// Burst size (requests).
    pub burst_limit: u32,
}
