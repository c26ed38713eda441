//! Semantic checks of the `backend:` section: names AWS would reject, code
//! packages Lambda would refuse, routes API Gateway cannot build, and
//! `${...}` references to things the file does not define. Everything is
//! reported at once, located at its YAML path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::aws::lambda::package::{self, CodeSource};
use crate::stack::backend::spec::{ApiSpec, Auth, Backend, FunctionSpec, RouteSpec};
use crate::stack::diagnostics::PathError;
use crate::stack::limits as rules;
use crate::stack::names::{function_name, role_name};
use crate::stack::spec::StackFile;
use crate::stack::template::{Part, parse_template};
use crate::stack::yaml::PathSeg;

/// What the `data:` section defines, as far as the backend can reference it.
#[derive(Clone, Debug, Default)]
pub struct DataNames {
    /// Table names, with whether the table has a stream enabled.
    pub tables: BTreeMap<String, bool>,
    /// Whether the stack has a database.
    pub database: bool,
}

/// What the file's `data:` section defines: its tables (and whether each has
/// a stream) and whether there is a database.
pub fn data_names(spec: &StackFile) -> DataNames {
    let Some(data) = &spec.data else {
        return DataNames::default();
    };
    DataNames {
        tables: data.tables.iter().map(|(name, t)| (name.clone(), t.stream.is_some())).collect(),
        database: data.database.is_some(),
    }
}

/// Runtimes Lambda accepts for new functions (deprecated ones are refused at creation).
///
/// Per the Lambda Developer Guide, "Lambda runtimes" (supported runtimes).
pub const RUNTIMES: &[&str] = &[
    "nodejs24.x",
    "nodejs22.x",
    "nodejs20.x",
    "python3.14",
    "python3.13",
    "python3.12",
    "python3.11",
    "python3.10",
    "java25",
    "java21",
    "java17",
    "java11",
    "java8.al2",
    "dotnet10",
    "dotnet8",
    "ruby3.4",
    "ruby3.3",
    "ruby3.2",
    "provided.al2023",
    "provided.al2",
];

/// Environment variable names Lambda reserves (CreateFunction refuses them).
///
/// Per the Lambda Developer Guide, "Defined runtime environment variables".
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Total size of a function's environment variables (keys and values).
///
/// Per the Lambda Developer Guide, "Lambda quotas" (4 KB).
const MAX_ENV_BYTES: usize = 4096;
/// Room counted for a value only known after apply (an ARN or endpoint).
const REF_ESTIMATE: usize = 100;

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn at(base: &[PathSeg], more: &[&str]) -> Vec<PathSeg> {
    let mut p = base.to_vec();
    p.extend(more.iter().map(|k| key(k)));
    p
}

/// Whether `name` is a valid function key: it becomes part of AWS names and
/// of addresses (which only allow letters, digits and `. - _ : / @`).
fn valid_key(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// The function's code, resolved against the stack file's directory.
pub fn code_source(f: &FunctionSpec, base_dir: &Path) -> Option<CodeSource> {
    match (&f.source, &f.zip) {
        (Some(s), None) => Some(CodeSource::Dir(base_dir.join(s))),
        (None, Some(z)) => Some(CodeSource::Zip(base_dir.join(z))),
        _ => None,
    }
}

/// A function as the checks resolved it: its AWS names, its code's package
/// digest (built once, here) and its environment's parsed templates.
#[derive(Clone, Debug)]
pub struct Function {
    pub function_name: String,
    pub role_name: String,
    /// Absent when the code could not be found or packaged (an error says so).
    pub code: Option<Code>,
    pub environment: BTreeMap<String, Vec<Part>>,
}

/// A function's code: where it is (absolute) and the SHA-256 of its package.
#[derive(Clone, Debug)]
pub struct Code {
    pub source: CodeSource,
    pub sha256: String,
}

/// Checks the `backend:` section, if any; returns its resolved functions.
pub fn validate(
    spec: &StackFile, stack: &str, region: &str, base_dir: &Path, errs: &mut Vec<PathError>,
) -> BTreeMap<String, Function> {
    let Some(b) = &spec.backend else {
        return BTreeMap::new();
    };
    let data = data_names(spec);
    let functions = check_backend(b, &data, stack, region, base_dir, errs);
    if let (Some(f), Some(api)) = (&spec.frontend, &b.api)
        && f.api_origin
    {
        check_routes_reachable(&api.routes, &f.api_path, errs);
    }
    functions
}

/// With `frontend.api_origin`, CloudFront sends `<api_path>/*` to the stage
/// with the path unchanged (`/api/orders` reaches the stage as `/api/orders`),
/// and sends every other path to the bucket. A route outside `api_path` could
/// never be reached through the site's domain, so it is refused here rather
/// than found broken in a browser.
fn check_routes_reachable(routes: &[RouteSpec], api_path: &str, errs: &mut Vec<PathError>) {
    let prefix = api_path.trim_end_matches('/');
    for (i, r) in routes.iter().enumerate() {
        let under = r.path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'));
        if !under {
            errs.push(
                PathError::new(
                    vec![key("backend"), key("api"), key("routes"), PathSeg::Index(i), key("path")],
                    format!("`{}` is outside `{prefix}/`, the only paths CloudFront sends to the API", r.path),
                )
                .help(format!(
                    "CloudFront forwards `{prefix}/...` to the stage unchanged: write the route as \
                     `{prefix}{}`, or set `frontend.api_origin: false` (or another \
                     `frontend.api_path`)",
                    if r.path == "/" { "" } else { &r.path }
                )),
            );
        }
    }
}

pub fn check_backend(
    b: &Backend, data: &DataNames, stack: &str, region: &str, base_dir: &Path, errs: &mut Vec<PathError>,
) -> BTreeMap<String, Function> {
    let root = vec![key("backend")];
    if b.functions.is_empty() {
        errs.push(
            PathError::new(at(&root, &["functions"]), "no functions")
                .help("define at least one, e.g. `orders: { source: functions/orders, runtime: python3.12, handler: app.handler }`"),
        );
    }
    if !rules::RETENTION_DAYS.contains(&b.log_retention_days) {
        errs.push(
            PathError::new(
                at(&root, &["log_retention_days"]),
                format!("CloudWatch Logs cannot keep logs for {} days", b.log_retention_days),
            )
            .help(format!(
                "use one of {}",
                rules::RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            )),
        );
    }
    let mut functions = BTreeMap::new();
    for (name, f) in &b.functions {
        let fp = at(&root, &["functions", name]);
        let resolved = check_function(name, f, &fp, data, stack, region, base_dir, errs);
        functions.insert(name.clone(), resolved);
    }
    if let Some(api) = &b.api {
        let ap = at(&root, &["api"]);
        if let Some(n) = &api.name
            && let Err(e) = rules::validate_api_name(n)
        {
            errs.push(PathError::new(at(&ap, &["name"]), e).help("choose another name"));
        }
        if let Err(e) = rules::validate_stage_name(&api.stage) {
            errs.push(PathError::new(at(&ap, &["stage"]), e).help("e.g. `stage: prod`"));
        }
        if let Some(t) = &api.throttling {
            if !(t.rate_limit.is_finite() && t.rate_limit > 0.0) {
                errs.push(
                    PathError::new(
                        at(&ap, &["throttling", "rate_limit"]),
                        "the rate limit must be a positive number of requests per second",
                    )
                    .help("e.g. `rate_limit: 100`; remove `throttling` for the account's default"),
                );
            }
            if t.burst_limit == 0 {
                errs.push(
                    PathError::new(at(&ap, &["throttling", "burst_limit"]), "a burst limit of 0 rejects every request")
                        .help("e.g. `burst_limit: 200`"),
                );
            }
        }
        if api.routes.is_empty() {
            errs.push(
                PathError::new(at(&ap, &["routes"]), "an API needs at least one route")
                    .help("e.g. `- { method: GET, path: /orders, function: orders }`, or remove `api:`"),
            );
        }
        check_routes(&api.routes, &ap, b, errs);
        check_auth(api, &ap, region, errs);
    }
    functions
}

/// Every route says who may call it (its own `auth` or the API's): an API
/// open to anyone is written so. `jwt` needs a user pool; a pool's ARN must
/// be one of this region's.
fn check_auth(api: &ApiSpec, ap: &[PathSeg], region: &str, errs: &mut Vec<PathError>) {
    let mut jwt = false;
    let mut keyed = false;
    for (i, r) in api.routes.iter().enumerate() {
        let mut rp = ap.to_vec();
        rp.push(key("routes"));
        rp.push(PathSeg::Index(i));
        match r.auth.or(api.auth) {
            None => errs.push(
                PathError::new(rp, format!("route {} {} does not say who may call it", r.method.api(), r.path)).help(
                    "add `auth: none` (anyone), `auth: jwt` (users signed in to `user_pool`), `auth: iam` (AWS-signed callers) or `auth: api_key` (clients of `api_keys`) to the route, or `auth:` to `backend.api` for every route",
                ),
            ),
            Some(Auth::Jwt) => jwt = true,
            Some(Auth::ApiKey) => keyed = true,
            Some(_) => {}
        }
    }
    if jwt && api.user_pool.is_none() {
        errs.push(
            PathError::new(at(ap, &["auth"]), "`auth: jwt` routes need a user pool whose tokens they accept")
                .help("add `user_pool: {}` to `backend.api` (the stack makes one), or `user_pool: { arn: ... }`"),
        );
    }
    match &api.api_keys {
        None if keyed => errs.push(
            PathError::new(at(ap, &["auth"]), "`auth: api_key` routes need `api_keys`: no client could call them")
                .help(
                    "add `api_keys: { clients: [partner], quota: { limit: 10000, period: month } }` to `backend.api`",
                ),
        ),
        None => {}
        Some(k) => {
            let kp = at(ap, &["api_keys"]);
            if !keyed {
                errs.push(
                    PathError::new(kp.clone(), "API keys, but no route takes `auth: api_key`")
                        .help("give the routes clients call with a key `auth: api_key`, or remove `api_keys`"),
                );
            }
            if k.clients.is_empty() {
                errs.push(
                    PathError::new(at(&kp, &["clients"]), "no clients: no key would be made")
                        .help("e.g. `clients: [partner]`"),
                );
            }
            let mut seen = BTreeSet::new();
            for (i, c) in k.clients.iter().enumerate() {
                let mut cp = at(&kp, &["clients"]);
                cp.push(PathSeg::Index(i));
                // Also part of the key's address and name `<stack>-<client>`
                // (API Gateway allows 1024 characters; kept short for the address).
                if !valid_key(c) || c.len() > 64 {
                    errs.push(
                        PathError::new(cp.clone(), format!("client `{c}` must be 1 to 64 lowercase letters, digits or hyphens, starting with a letter"))
                            .help("e.g. `partner-a`"),
                    );
                }
                if !seen.insert(c) {
                    errs.push(
                        PathError::new(cp, format!("client `{c}` is listed twice")).help("list each client once"),
                    );
                }
            }
            if let Some(q) = &k.quota
                && q.limit == 0
            {
                errs.push(
                    PathError::new(at(&kp, &["quota", "limit"]), "a quota of 0 refuses every request")
                        .help("e.g. `limit: 10000`, or remove `quota`"),
                );
            }
            if let Some(t) = &k.throttling
                && (t.rate_limit <= 0.0 || t.burst_limit == 0)
            {
                errs.push(
                    PathError::new(at(&kp, &["throttling"]), "a key's rate and burst must be positive")
                        .help("e.g. `throttling: { rate_limit: 10, burst_limit: 20 }`"),
                );
            }
        }
    }
    if let Some(pool) = &api.user_pool {
        let pp = at(ap, &["user_pool"]);
        if let Some(arn) = &pool.arn {
            let f: Vec<&str> = arn.splitn(6, ':').collect();
            let ok = f.len() == 6
                && f[0] == "arn"
                && f[2] == "cognito-idp"
                && f[4].len() == 12
                && f[4].chars().all(|c| c.is_ascii_digit())
                && f[5].strip_prefix("userpool/").is_some_and(|id| id.starts_with(&format!("{}_", f[3])));
            if !ok {
                errs.push(
                    PathError::new(at(&pp, &["arn"]), format!("`{arn}` is not a Cognito user pool ARN"))
                        .help("it looks like arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"),
                );
            } else if f[3] != region {
                errs.push(
                    PathError::new(at(&pp, &["arn"]), format!("the user pool is in {}, the API in {region}", f[3]))
                        .help("an API's Cognito authorizer takes pools of its own region"),
                );
            }
        } else if !(8..=99).contains(&pool.password_min_length) {
            // Cognito's PasswordPolicyType: MinimumLength 6 to 99; 8 is
            // the least a pool of this stack asks (NIST SP 800-63B).
            errs.push(
                PathError::new(
                    at(&pp, &["password_min_length"]),
                    format!("a minimum password length of {} is outside 8 to 99", pool.password_min_length),
                )
                .help("e.g. `password_min_length: 15`"),
            );
        }
        if !jwt {
            errs.push(
                PathError::new(pp, "a user pool, but no route takes `auth: jwt`")
                    .help("give the routes users must sign in for `auth: jwt`, or remove `user_pool`"),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_function(
    name: &str, f: &FunctionSpec, fp: &[PathSeg], data: &DataNames, stack: &str, region: &str, base_dir: &Path,
    errs: &mut Vec<PathError>,
) -> Function {
    let mut resolved = Function {
        function_name: function_name(stack, name),
        role_name: role_name(stack, name, region),
        code: None,
        environment: BTreeMap::new(),
    };
    if !valid_key(name) {
        errs.push(PathError {
            path: fp.to_vec(),
            message: format!(
                "function name `{name}` must be lowercase letters, digits and single hyphens, starting with a letter"
            ),
            help: Some("rename it, e.g. `orders`".into()),
            at_key: true,
        });
    } else {
        for r in [
            rules::validate_lambda_function_name(&function_name(stack, name)),
            rules::validate_iam_role_name(&role_name(stack, name, region)),
        ] {
            if let Err(e) = r {
                errs.push(PathError {
                    path: fp.to_vec(),
                    message: e,
                    help: Some("use a shorter function name (it is combined with the stack name and region)".into()),
                    at_key: true,
                });
            }
        }
    }

    // Code.
    match code_source(f, base_dir) {
        None => errs.push(
            PathError::new(fp.to_vec(), "give exactly one of `source` (a directory) or `zip` (a prebuilt package)")
                .help("e.g. `source: functions/orders`"),
        ),
        Some(src) => {
            let field = if f.source.is_some() { "source" } else { "zip" };
            let p = at(fp, &[field]);
            let exists = match &src {
                CodeSource::Dir(d) => d.is_dir(),
                CodeSource::Zip(z) => z.is_file(),
            };
            if !exists {
                errs.push(
                    PathError::new(
                        p,
                        format!(
                            "{} does not exist or is not a {}",
                            src.path().display(),
                            if field == "source" { "directory" } else { "file" }
                        ),
                    )
                    .help("paths are relative to the directory of stack.yaml"),
                );
            } else {
                match package::build(&src) {
                    Err(e) => errs.push(PathError::new(p, e).help("fix the package")),
                    Ok(pkg) => {
                        // Absolute, so a plan applied from another directory still finds it.
                        let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                        resolved.code = Some(Code {
                            source: match &src {
                                CodeSource::Dir(d) => CodeSource::Dir(absolute(d)),
                                CodeSource::Zip(z) => CodeSource::Zip(absolute(z)),
                            },
                            sha256: pkg.sha256.clone(),
                        });
                        if pkg.bytes.len() as u64 > package::MAX_ZIPPED {
                            errs.push(
                                PathError::new(
                                    p.clone(),
                                    format!(
                                        "the package is {} MB zipped; Lambda accepts at most 50 MB uploaded directly",
                                        pkg.bytes.len() / (1024 * 1024)
                                    ),
                                )
                                .help("make it smaller (move dependencies to a layer or a container image)"),
                            );
                        }
                        if pkg.unzipped_size > package::MAX_UNZIPPED {
                            errs.push(
                                PathError::new(
                                    p.clone(),
                                    format!(
                                        "the code is {} MB unzipped; Lambda allows at most 250 MB",
                                        pkg.unzipped_size / (1024 * 1024)
                                    ),
                                )
                                .help("make it smaller"),
                            );
                        }
                        if pkg.entries.is_empty() {
                            errs.push(
                                PathError::new(p.clone(), "the package is empty").help("put the function's code there"),
                            );
                        } else if let Some(missing) = missing_handler_file(&f.runtime, &f.handler, &pkg.entries) {
                            errs.push(
                                PathError::new(
                                    at(fp, &["handler"]),
                                    format!(
                                        "handler `{}` needs {missing} in the package, which has no such file",
                                        f.handler
                                    ),
                                )
                                .help(format!(
                                    "the package has: {}",
                                    pkg.entries.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
                                )),
                            );
                        }
                    }
                }
            }
        }
    }

    if !RUNTIMES.contains(&f.runtime.as_str()) {
        let help = match rules::did_you_mean(&f.runtime, RUNTIMES) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("supported runtimes: {}", RUNTIMES.join(", ")),
        };
        errs.push(
            PathError::new(
                at(fp, &["runtime"]),
                format!("`{}` is not a runtime Lambda accepts for new functions", f.runtime),
            )
            .help(help),
        );
    }
    if f.handler.is_empty() || f.handler.chars().count() > 128 || f.handler.chars().any(char::is_whitespace) {
        errs.push(
            PathError::new(at(fp, &["handler"]), "a handler is 1 to 128 characters without spaces")
                .help("e.g. `app.handler`"),
        );
    }
    if let Err(e) = rules::validate_lambda_memory(i64::from(f.memory)) {
        errs.push(PathError::new(at(fp, &["memory"]), e).help("e.g. `memory: 256`"));
    }
    if let Err(e) = rules::validate_lambda_timeout(i64::from(f.timeout)) {
        errs.push(PathError::new(at(fp, &["timeout"]), e).help("e.g. `timeout: 10`"));
    }

    // Environment.
    let mut size = 0usize;
    for (k, v) in &f.environment {
        let kp = at(fp, &["environment", k]);
        let ok_key = k.len() >= 2
            && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok_key {
            errs.push(PathError {
                path: kp.clone(),
                message: format!("`{k}` is not a valid environment variable name for Lambda (a letter, then letters, digits or underscores; at least 2 characters)"),
                help: Some("rename it".into()),
                at_key: true,
            });
        }
        if RESERVED_ENV.contains(&k.as_str()) {
            errs.push(PathError {
                path: kp.clone(),
                message: format!("`{k}` is reserved by Lambda, which sets it itself"),
                help: Some("use another name".into()),
                at_key: true,
            });
        }
        size += k.len();
        match parse_template(v) {
            Err(e) => errs.push(
                PathError::new(kp.clone(), e)
                    .help("e.g. `TABLE_NAME: ${tables.orders.name}` or `DB_ENDPOINT: ${database.endpoint}`"),
            ),
            Ok(parts) => {
                resolved.environment.insert(k.clone(), parts.clone());
                for part in &parts {
                    match part {
                        Part::Text(t) => size += t.len(),
                        Part::Table { table, attr } => {
                            size += REF_ESTIMATE;
                            check_table_ref(table, &kp, data, errs);
                            if attr == "stream_arn" && data.tables.get(table) == Some(&false) {
                                errs.push(
                                    PathError::new(
                                        kp.clone(),
                                        format!("table `{table}` has no stream, so no `stream_arn`"),
                                    )
                                    .help("enable the table's stream in `data:`"),
                                );
                            }
                        }
                        Part::Database { .. } => {
                            size += REF_ESTIMATE;
                            check_database_ref(&kp, data, errs);
                        }
                        Part::ApiUrl | Part::FrontendDomain => errs.push(
                            PathError::new(
                                kp.clone(),
                                "a function's environment cannot name the API's URL or the site's domain: they are made after the function (the API invokes it, the site's /api/* reaches it through the API), so each would wait for the other",
                            )
                            .help("pass them in the request (API Gateway gives the function the host and stage in `requestContext`), or write the value into the file"),
                        ),
                    }
                }
                if looks_secret(k) && parts.iter().all(|p| matches!(p, Part::Text(_))) {
                    errs.push(PathError::new(kp.clone(), format!("`{k}` looks like a secret written into stack.yaml; secrets must not be in the file (it is in version control, plans and logs)")).help("store it in AWS Secrets Manager and pass its ARN (for the database: `DB_SECRET_ARN: ${database.secret_arn}` with `database: true`)"));
                }
            }
        }
    }
    if size > MAX_ENV_BYTES {
        errs.push(
            PathError::new(
                at(fp, &["environment"]),
                format!("the environment variables take about {size} bytes; Lambda allows 4 KB in total"),
            )
            .help("move large values to a file in the package or to a parameter store"),
        );
    }

    // Tables and database.
    let mut seen = BTreeSet::new();
    for (i, t) in f.tables.iter().enumerate() {
        let mut p = at(fp, &["tables"]);
        p.push(PathSeg::Index(i));
        if !seen.insert(t) {
            errs.push(PathError::new(p.clone(), format!("`{t}` is listed twice")).help("list each table once"));
        }
        check_table_ref(t, &p, data, errs);
    }
    if f.database {
        check_database_ref(&at(fp, &["database"]), data, errs);
    }

    if let Some(s) = &f.stream {
        let sp = at(fp, &["stream"]);
        match (&s.table, &s.arn) {
            (Some(t), None) => {
                let tp = at(&sp, &["table"]);
                check_table_ref(t, &tp, data, errs);
                if data.tables.get(t) == Some(&false) {
                    errs.push(
                        PathError::new(tp, format!("table `{t}` has no stream enabled"))
                            .help("enable the table's stream in `data:`"),
                    );
                }
            }
            (None, Some(a)) => {
                if !is_stream_arn(a) {
                    errs.push(
                        PathError::new(at(&sp, &["arn"]), format!("`{a}` is not a DynamoDB stream ARN"))
                            .help("it looks like arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL"),
                    );
                }
            }
            _ => errs.push(
                PathError::new(sp.clone(), "give exactly one of `table` (a table of `data:`) or `arn` (a stream ARN)")
                    .help("e.g. `stream: { table: orders }`"),
            ),
        }
        if !(1..=10000).contains(&s.batch_size) {
            errs.push(
                PathError::new(
                    at(&sp, &["batch_size"]),
                    format!(
                        "batch size {} is out of range; Lambda allows 1 to 10000 for DynamoDB streams",
                        s.batch_size
                    ),
                )
                .help("e.g. `batch_size: 100`"),
            );
        }
    }
    resolved
}

/// The file a handler's module must be, for runtimes where it is a file
/// (`None` when present or when the runtime's handler is not a file path).
fn missing_handler_file(runtime: &str, handler: &str, entries: &[String]) -> Option<String> {
    let (module, _) = handler.rsplit_once('.')?;
    let candidates: Vec<String> = if runtime.starts_with("python") {
        vec![format!("{}.py", module.replace('.', "/"))]
    } else if runtime.starts_with("nodejs") {
        ["js", "mjs", "cjs"].iter().map(|e| format!("{module}.{e}")).collect()
    } else {
        return None;
    };
    if candidates.iter().any(|c| entries.contains(c)) { None } else { Some(candidates.join(" or ")) }
}

fn looks_secret(k: &str) -> bool {
    let u = k.to_ascii_uppercase();
    let names_a_reference = ["_ARN", "_NAME", "_ID", "_URL"].iter().any(|s| u.ends_with(s));
    !names_a_reference
        && ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY"].iter().any(|s| u.contains(s))
}

fn is_stream_arn(a: &str) -> bool {
    let f: Vec<&str> = a.splitn(6, ':').collect();
    f.len() == 6
        && f[0] == "arn"
        && f[2] == "dynamodb"
        && !f[3].is_empty()
        && f[4].len() == 12
        && f[4].chars().all(|c| c.is_ascii_digit())
        && f[5].starts_with("table/")
        && f[5].contains("/stream/")
}

pub fn check_table_ref(t: &str, p: &[PathSeg], data: &DataNames, errs: &mut Vec<PathError>) {
    if data.tables.contains_key(t) {
        return;
    }
    let names: Vec<&str> = data.tables.keys().map(String::as_str).collect();
    let help = match rules::did_you_mean(t, &names) {
        Some(m) => format!("did you mean `{m}`?"),
        None if names.is_empty() => "define the table under `data: tables:`".into(),
        None => format!("tables of this stack: {}", names.join(", ")),
    };
    errs.push(PathError::new(p.to_vec(), format!("no table named `{t}` in this stack")).help(help));
}

pub fn check_database_ref(p: &[PathSeg], data: &DataNames, errs: &mut Vec<PathError>) {
    if !data.database {
        errs.push(
            PathError::new(p.to_vec(), "this stack has no database")
                .help("define one under `data: database:`, or remove the reference"),
        );
    }
}

/// A path's segments (`/` alone has none).
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn check_routes(routes: &[RouteSpec], ap: &[PathSeg], b: &Backend, errs: &mut Vec<PathError>) {
    let fnames: Vec<&str> = b.functions.keys().map(String::as_str).collect();
    let mut seen: BTreeMap<(String, &str), usize> = BTreeMap::new();
    // Variable segment name under each parent path (API Gateway allows one).
    let mut variables: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (i, r) in routes.iter().enumerate() {
        let mut rp = ap.to_vec();
        rp.push(key("routes"));
        rp.push(PathSeg::Index(i));
        let pp = at(&rp, &["path"]);
        if !b.functions.contains_key(&r.function) {
            let help = match rules::did_you_mean(&r.function, &fnames) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("functions: {}", fnames.join(", ")),
            };
            errs.push(PathError::new(at(&rp, &["function"]), format!("no function named `{}`", r.function)).help(help));
        }
        if !r.path.starts_with('/') || r.path.contains("//") || (r.path.len() > 1 && r.path.ends_with('/')) {
            errs.push(
                PathError::new(pp.clone(), format!("`{}` is not a resource path", r.path))
                    .help("start with `/`, no empty segments, no trailing `/`, e.g. `/orders/{id}`"),
            );
            continue;
        }
        let segs = segments(&r.path);
        let mut parent = String::new();
        for (j, s) in segs.iter().enumerate() {
            let var = s.starts_with('{') && s.ends_with('}');
            let greedy = var && s.ends_with("+}");
            let name = s.trim_start_matches('{').trim_end_matches('}').trim_end_matches('+');
            let ok = if var {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            } else {
                s.chars().all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
            };
            if !ok {
                errs.push(
                    PathError::new(pp.clone(), format!("`{s}` is not a valid path segment"))
                        .help("segments are letters, digits and `. _ - :`, or a parameter `{name}` / `{name+}`"),
                );
            }
            if greedy && j + 1 != segs.len() {
                errs.push(
                    PathError::new(
                        pp.clone(),
                        format!("`{s}` matches the rest of the path, so it must be the last segment"),
                    )
                    .help("e.g. `/users/{proxy+}`"),
                );
            }
            if var {
                match variables.get(&parent) {
                    Some((other, _)) if other != s => {
                        errs.push(PathError::new(pp.clone(), format!("`{s}` and `{other}` are both parameters under `{}`; API Gateway allows one parameter name per level", if parent.is_empty() { "/" } else { &parent })).help(format!("use `{other}` here too")));
                    }
                    _ => {
                        variables.insert(parent.clone(), (s.to_string(), i));
                    }
                }
            }
            parent = format!("{parent}/{s}");
        }
        if let Some(first) = seen.insert((r.path.clone(), r.method.api()), i) {
            errs.push(
                PathError::new(
                    rp.clone(),
                    format!("{} {} is already routed by route {}", r.method.api(), r.path, first + 1),
                )
                .help("route each method and path once"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::backend::spec::{ApiSpec, Architecture, HttpMethod, StartingPosition, StreamSpec};

    fn function(dir: &Path) -> FunctionSpec {
        FunctionSpec {
            source: Some(dir.display().to_string()),
            zip: None,
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            memory: 256,
            timeout: 10,
            architecture: Architecture::X86_64,
            environment: BTreeMap::new(),
            tables: vec![],
            database: false,
            vpc: false,
            reserved_concurrency: None,
            stream: None,
        }
    }

    fn backend(dir: &Path) -> Backend {
        let mut functions = BTreeMap::new();
        functions.insert("orders".to_string(), function(dir));
        Backend {
            functions,
            api: Some(ApiSpec {
                name: None,
                stage: "prod".into(),
                routes: vec![RouteSpec {
                    method: HttpMethod::Get,
                    path: "/orders".into(),
                    function: "orders".into(),
                    auth: None,
                }],
                throttling: None,
                access_logs: false,
                tracing: true,
                auth: Some(Auth::None),
                user_pool: None,
                api_keys: None,
            }),
            log_retention_days: 30,
        }
    }

    fn src() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("app.py"), "def handler(e, c):\n    return {}\n").unwrap();
        d
    }

    fn errors(b: &Backend, data: &DataNames) -> Vec<String> {
        let mut errs = Vec::new();
        check_backend(b, data, "webapp", "us-east-1", Path::new("/"), &mut errs);
        errs.into_iter()
            .map(|e| format!("{}: {}", crate::stack::diagnostics::path_string(&e.path), e.message))
            .collect()
    }

    #[test]
    fn a_good_backend_passes() {
        let d = src();
        assert_eq!(errors(&backend(d.path()), &DataNames::default()), Vec::<String>::new());
    }

    #[test]
    fn templates_parse() {
        assert_eq!(
            parse_template("postgres://${database.endpoint}:${ database.port }/x").unwrap(),
            vec![
                Part::Text("postgres://".into()),
                Part::Database { attr: "endpoint".into() },
                Part::Text(":".into()),
                Part::Database { attr: "port".into() },
                Part::Text("/x".into()),
            ]
        );
        assert_eq!(parse_template("cost $5 $${literal}").unwrap(), vec![Part::Text("cost $5 ${literal}".into())]);
        assert!(parse_template("${tables.orders.size}").unwrap_err().contains("no attribute `size`"));
        assert!(parse_template("${buckets.x}").unwrap_err().contains("unknown reference"));
        assert!(parse_template("${tables.orders.name").is_err());
    }

    #[test]
    fn references_must_name_what_the_file_defines() {
        let d = src();
        let mut b = backend(d.path());
        let f = b.functions.get_mut("orders").unwrap();
        f.environment.insert("TABLE".into(), "${tables.order.name}".into());
        f.environment.insert("DB".into(), "${database.endpoint}".into());
        f.tables = vec!["orders".into()];
        f.database = true;
        f.stream = Some(StreamSpec {
            table: Some("orders".into()),
            arn: None,
            batch_size: 100,
            starting_position: StartingPosition::Latest,
        });
        let e = errors(&b, &DataNames::default());
        assert!(e.iter().any(|m| m.contains("environment.TABLE: no table named `order`")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("environment.DB: this stack has no database")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("tables[0]: no table named `orders`")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("database: this stack has no database")), "{e:?}");
        assert!(e.iter().any(|m| m.contains("stream.table: no table named `orders`")), "{e:?}");

        let mut data = DataNames::default();
        data.tables.insert("orders".into(), true);
        data.database = true;
        let e = errors(&b, &data);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("did you mean") || e[0].contains("no table named `order`"));
    }

    #[test]
    fn bad_functions_are_located() {
        let d = src();
        let mut b = backend(d.path());
        let mut f = function(d.path());
        f.runtime = "python3.8".into();
        f.handler = "main.handler".into();
        f.memory = 64;
        f.timeout = 901;
        f.environment.insert("AWS_REGION".into(), "x".into());
        f.environment.insert("DB_PASSWORD".into(), "hunter2".into());
        b.functions.insert("Bad_Name".into(), f);
        let e = errors(&b, &DataNames::default()).join("\n");
        for want in [
            "function name `Bad_Name`",
            "runtime: `python3.8`",
            "handler: handler `main.handler` needs main.py",
            "memory: Lambda memory of 64 MB",
            "timeout: Lambda timeout of 901",
            "environment.AWS_REGION: `AWS_REGION` is reserved",
            "environment.DB_PASSWORD: `DB_PASSWORD` looks like a secret",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
    }

    #[test]
    fn long_names_are_refused_before_aws() {
        let d = src();
        let mut b = backend(d.path());
        let f = function(d.path());
        b.functions.insert("a-very-long-function-name-that-overflows-iam-role-limit".into(), f);
        let e = errors(&b, &DataNames::default()).join("\n");
        assert!(e.contains("IAM role name"), "{e}");
    }

    #[test]
    fn routes_must_be_reachable_through_the_api_origin() {
        let routes = |paths: &[&str]| {
            paths
                .iter()
                .map(|p| RouteSpec {
                    method: HttpMethod::Get,
                    path: p.to_string(),
                    function: "orders".into(),
                    auth: None,
                })
                .collect::<Vec<_>>()
        };
        let mut errs = Vec::new();
        check_routes_reachable(&routes(&["/api/orders", "/api/users/{proxy+}"]), "/api", &mut errs);
        assert!(errs.is_empty());
        check_routes_reachable(&routes(&["/orders", "/api", "/apix/a"]), "/api", &mut errs);
        let e: Vec<String> = errs.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("`/orders` is outside `/api/`") && e[0].contains("/api/orders"), "{}", e[0]);
    }

    #[test]
    fn routes_are_checked() {
        let d = src();
        let mut b = backend(d.path());
        let api = b.api.as_mut().unwrap();
        let route = |m, p: &str, f: &str| RouteSpec { method: m, path: p.into(), function: f.into(), auth: None };
        api.routes = vec![
            route(HttpMethod::Get, "/orders", "orders"),
            route(HttpMethod::Get, "/orders", "orders"),
            route(HttpMethod::Any, "/users/{proxy+}/x", "orders"),
            route(HttpMethod::Get, "/orders/{id}", "order"),
            route(HttpMethod::Get, "/orders/{oid}/items", "orders"),
            route(HttpMethod::Get, "orders", "orders"),
            route(HttpMethod::Get, "/a b", "orders"),
        ];
        let e = errors(&b, &DataNames::default()).join("\n");
        for want in [
            "routes[1]: GET /orders is already routed by route 1",
            "routes[2].path: `{proxy+}` matches the rest",
            "routes[3].function: no function named `order`",
            "routes[4].path: `{oid}` and `{id}` are both parameters",
            "routes[5].path: `orders` is not a resource path",
            "routes[6].path: `a b` is not a valid path segment",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
    }

    #[test]
    fn streams_need_one_source() {
        let d = src();
        let mut b = backend(d.path());
        b.functions.get_mut("orders").unwrap().stream = Some(StreamSpec {
            table: None,
            arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/t".into()),
            batch_size: 0,
            starting_position: StartingPosition::Latest,
        });
        let e = errors(&b, &DataNames::default()).join("\n");
        assert!(
            e.contains("stream.arn: `arn:aws:dynamodb:us-east-1:123456789012:table/t` is not a DynamoDB stream ARN"),
            "{e}"
        );
        assert!(e.contains("stream.batch_size: batch size 0"), "{e}");
    }
}
