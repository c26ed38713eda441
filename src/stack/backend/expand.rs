//! The backend tier: per function a log group, a least-privilege execution
//! role, the Lambda function and optionally a stream mapping; then the REST
//! API (routes as nested resources, methods and Lambda proxy integrations),
//! an invoke permission per routed function, a deployment and a stage.

use crate::stack::address::*;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::aws::apigateway::api_key::ApiKeyProps;
use crate::aws::apigateway::deployment::DeploymentProps;
use crate::aws::apigateway::rest_api::{Authorizer, RestApiProps, Route};
use crate::aws::apigateway::stage::{AccessLog, StageProps, Throttling};
use crate::aws::apigateway::usage_plan::{Quota, Throttle, UsagePlanProps};
use crate::aws::cognito::user_pool::{PasswordPolicy, UserPoolProps};
use crate::aws::cognito::user_pool_client::{self, UserPoolClientProps};
use crate::aws::iam::role::RoleProps;
use crate::aws::lambda::event_source_mapping::EventSourceMappingProps;
use crate::aws::lambda::function::{Code, EnvText, FunctionProps, FunctionVpc};
use crate::aws::lambda::package::CodeSource;
use crate::aws::lambda::permission::PermissionProps;
use crate::aws::logs::log_group::LogGroupProps;
use crate::engine::resource::Props;
use crate::engine::value::{Ref, reference};
use crate::stack::Stack;
use crate::stack::access::{self, document, statement};
use crate::stack::backend::spec::{ApiSpec, Auth, Backend, FunctionSpec};
use crate::stack::desired::{Desired, Output, tags};
use crate::stack::names::function_name;
use crate::stack::template::Part;

/// Format of the API access log lines (JSON, one per request).
pub const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","resourcePath":"$context.resourcePath","status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength","integrationLatency":"$context.integrationLatency"}"#;

/// An environment value: text with `${...}` references (parsed by the checks).
pub fn template(parts: &[Part]) -> Ref<EnvText> {
    EnvText::of(Ref::concat(crate::stack::template::values(parts)))
}

/// The stream a function consumes: a table's (a reference) or an ARN.
fn stream_arn(f: &FunctionSpec) -> Option<Ref> {
    let s = f.stream.as_ref()?;
    match (&s.table, &s.arn) {
        (Some(t), _) => Some(Ref::to(&table(t), "stream_arn")),
        (None, Some(a)) => Some(a.as_str().into()),
        _ => None,
    }
}

/// The execution role's inline policies: exactly what the function declares.
fn policies(name: &str, f: &FunctionSpec) -> BTreeMap<String, Value> {
    let mut p = BTreeMap::new();
    p.insert(
        "logs".into(),
        document(vec![statement(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![Ref::concat(vec![reference(&log_group(name), "arn"), json!(":*")])],
        )]),
    );
    if !f.tables.is_empty() {
        p.insert("tables".into(), access::tables(&f.tables));
    }
    if let Some(arn) = stream_arn(f) {
        // A table of the stack: its streams (`<table arn>/stream/*`), so a
        // re-created stream (a new view type, a new label) needs no policy
        // change, and linters that split ARNs at `:` (the label holds a
        // time) see the shape they expect.
        let arn = match f.stream.as_ref().and_then(|s| s.table.as_ref()) {
            Some(t) => Ref::concat(vec![reference(&table(t), "arn"), json!("/stream/*")]),
            None => arn,
        };
        p.insert(
            "stream".into(),
            document(vec![
                statement(
                    "ReadStream",
                    &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                    vec![arn],
                ),
                // ListStreams has no resource-level permissions.
                statement("ListStreams", &["dynamodb:ListStreams"], vec!["*".into()]),
            ]),
        );
    }
    if f.database {
        p.insert("database".into(), access::database_secret());
    }
    p
}

/// One API key per client and the stage's usage plan holding them, after
/// the stage (a plan names an existing stage).
fn api_keys(stack: &Stack, api: &ApiSpec, d: &mut Desired) {
    let Some(k) = &api.api_keys else { return };
    let mut key_ids = Vec::new();
    for client in &k.clients {
        let address = format!("{API_KEY_PREFIX}{client}");
        d.resources.push(
            ApiKeyProps {
                name: format!("{}-{client}", stack.name),
                description: format!("API key of client {client} of stack {}", stack.name),
                enabled: true,
                tags: tags(stack, &format!("key-{client}")),
            }
            .at(&address),
        );
        key_ids.push(Ref::to(&address, "id"));
    }
    d.resources.push(
        UsagePlanProps {
            name: format!("{}-api", stack.name),
            api_id: Ref::to(API, "id"),
            stage: api.stage.clone(),
            quota: k.quota.as_ref().map(|q| Quota { limit: q.limit as i32, period: q.period.api().into() }),
            throttle: k
                .throttling
                .as_ref()
                .map(|t| Throttle { rate_limit: t.rate_limit, burst_limit: t.burst_limit as i32 }),
            key_ids,
            tags: tags(stack, "usage-plan"),
        }
        .at(USAGE_PLAN)
        .after(STAGE),
    );
}

/// The name of the API's Cognito authorizer.
const AUTHORIZER: &str = "cognito";

/// The user pool of `auth: jwt` routes (made by the stack unless the file
/// names one, with an app client for the site) and the API's authorizer
/// that accepts its tokens.
fn user_pool(stack: &Stack, api: &ApiSpec, d: &mut Desired) -> Vec<Authorizer> {
    let Some(pool) = &api.user_pool else { return Vec::new() };
    let arn: Ref = match &pool.arn {
        Some(arn) => arn.as_str().into(),
        None => {
            let name = format!("{}-users", stack.name);
            d.resources.push(
                UserPoolProps {
                    name: name.clone(),
                    username_attributes: vec!["email".into()],
                    auto_verified_attributes: vec!["email".into()],
                    password: PasswordPolicy {
                        min_length: i32::from(pool.password_min_length),
                        require_lowercase: true,
                        require_uppercase: true,
                        require_numbers: true,
                        require_symbols: true,
                    },
                    deletion_protection: stack.spec.protect,
                    tags: tags(stack, "users"),
                }
                .at(USER_POOL),
            );
            d.resources.push(
                UserPoolClientProps {
                    name: format!("{}-site", stack.name),
                    user_pool_id: Ref::to(USER_POOL, "id"),
                    // SRP: the password never leaves the browser.
                    explicit_auth_flows: vec!["ALLOW_REFRESH_TOKEN_AUTH".into(), "ALLOW_USER_SRP_AUTH".into()],
                    prevent_user_existence_errors: "ENABLED".into(),
                    enable_token_revocation: true,
                }
                .at(user_pool_client::address_of(USER_POOL)),
            );
            d.outputs.push(Output {
                name: "user_pool_id",
                address: USER_POOL.into(),
                attr: "id",
                description: "Id of the Cognito user pool whose users may call the `auth: jwt` routes",
            });
            d.outputs.push(Output {
                name: "user_pool_client_id",
                address: user_pool_client::address_of(USER_POOL),
                attr: "client_id",
                description: "App client the site signs users in with (public: no secret)",
            });
            Ref::to(USER_POOL, "arn")
        }
    };
    vec![Authorizer {
        name: AUTHORIZER.into(),
        provider_arns: vec![arn],
        identity_source: "method.request.header.Authorization".into(),
    }]
}

/// A short, stable hash of what a deployment snapshots: every route's
/// method, path, target function and who may call it.
fn routes_hash(stack: &Stack, b: &Backend) -> String {
    let mut routes: Vec<(String, String, String, &str)> = b
        .api
        .iter()
        .flat_map(|a| a.routes.iter().map(move |r| (a, r)))
        .map(|(a, r)| {
            let auth = match r.auth.or(a.auth).unwrap_or(Auth::None) {
                Auth::ApiKey => "API_KEY",
                other => other.api(),
            };
            (r.path.clone(), r.method.api().to_string(), function_name(&stack.name, &r.function), auth)
        })
        .collect();
    routes.sort();
    let mut h = Sha256::new();
    h.update(b"AWS_PROXY\n");
    for (path, method, f, auth) in &routes {
        // Open routes hash as they always did: adding auth to the file
        // redeploys only where it changes what a route accepts.
        match *auth {
            "NONE" => h.update(format!("{method} {path} {f}\n")),
            auth => h.update(format!("{method} {path} {f} {auth}\n")),
        }
    }
    hex::encode(&h.finalize()[..8])
}

pub fn expand(stack: &Stack, d: &mut Desired) {
    let Some(b) = &stack.spec.backend else { return };
    let routed: std::collections::BTreeSet<&str> =
        b.api.iter().flat_map(|a| &a.routes).map(|r| r.function.as_str()).collect();

    for (name, f) in &b.functions {
        let Some(resolved) = stack.functions.get(name) else {
            continue;
        };
        let fname = resolved.function_name.clone();
        d.resources.push(
            LogGroupProps {
                name: format!("/aws/lambda/{fname}"),
                retention_days: Some(b.log_retention_days as i32),
                tags: tags(stack, &format!("fn-{name}")),
            }
            .at(log_group(name)),
        );

        let managed: Vec<String> = if f.vpc {
            vec![format!("arn:{}:iam::aws:policy/service-role/AWSLambdaENIManagementAccess", stack.partition)]
        } else {
            vec![]
        };
        d.resources.push(
            RoleProps {
                name: resolved.role_name.clone(),
                path: crate::stack::names::role_path(&stack.name, &stack.region),
                description: format!("Execution role of Lambda function {fname}"),
                assume_role_policy: access::assumed_by_this_account("lambda.amazonaws.com"),
                policies: policies(name, f),
                managed_policies: managed,
                tags: tags(stack, &format!("fn-{name}")),
            }
            .at(role(name)),
        );

        let (sha, source) = match &resolved.code {
            Some(c) => {
                let path = c.source.path().display().to_string();
                let code = match c.source {
                    CodeSource::Dir(_) => Code::Dir(path),
                    CodeSource::Zip(_) => Code::Zip(path),
                };
                (c.sha256.clone(), Some(code))
            }
            None => (String::new(), None),
        };
        let vpc = f.vpc.then(|| FunctionVpc {
            subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet("private", az), "id")).collect(),
            security_group_ids: vec![Ref::to(&security_group("functions"), "id")],
        });
        d.resources.push(
            FunctionProps {
                function_name: fname.clone(),
                role: Ref::to(&role(name), "arn"),
                runtime: f.runtime.clone(),
                handler: f.handler.clone(),
                memory_size: f.memory as i32,
                timeout: f.timeout as i32,
                architecture: f.architecture.api().to_string(),
                environment: resolved.environment.iter().map(|(k, parts)| (k.clone(), template(parts))).collect(),
                vpc_config: vpc,
                reserved_concurrency: f.reserved_concurrency.map(|n| n as i32),
                code_sha256: sha,
                code_source: source,
                tags: tags(stack, &format!("fn-{name}")),
            }
            .at(function(name))
            // Lambda creates the log group itself if it does not exist yet.
            .after(&log_group(name)),
        );

        if let (Some(s), Some(arn)) = (&f.stream, stream_arn(f)) {
            d.resources.push(
                EventSourceMappingProps {
                    function_arn: Ref::to(&function(name), "arn"),
                    event_source_arn: arn,
                    batch_size: s.batch_size as i32,
                    starting_position: s.starting_position.api().to_string(),
                    enabled: true,
                    tags: tags(stack, &format!("stream-{name}")),
                }
                .at(stream(name)),
            );
        }

        if routed.contains(name.as_str()) {
            d.resources.push(
                PermissionProps {
                    function_name: Ref::to(&function(name), "name"),
                    action: "lambda:InvokeFunction".into(),
                    principal: "apigateway.amazonaws.com".into(),
                    // Any stage, method and path of this API only.
                    source_arn: Ref::concat(vec![reference(API, "execution_arn"), json!("/*/*/*")]),
                }
                .at(permission(name)),
            );
        }
    }

    let Some(api) = &b.api else { return };
    let api_name = api.name.clone().unwrap_or_else(|| format!("{}-api", stack.name));
    let authorizers = user_pool(stack, api, d);
    let mut routes: Vec<Route> = api
        .routes
        .iter()
        .map(|r| {
            let auth = r.auth.or(api.auth).unwrap_or(Auth::None);
            Route {
                path: r.path.clone(),
                method: r.method.api().to_string(),
                function_arn: Ref::to(&function(&r.function), "arn"),
                authorization: auth.api().to_string(),
                authorizer: (auth == Auth::Jwt).then(|| AUTHORIZER.to_string()),
                api_key_required: auth == Auth::ApiKey,
            }
        })
        .collect();
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    d.resources.push(
        RestApiProps {
            name: api_name,
            description: format!("API of stack {}", stack.name),
            endpoint_type: "REGIONAL".into(),
            routes,
            authorizers,
            tags: tags(stack, "api"),
        }
        .at(API),
    );
    d.resources
        .push(DeploymentProps { rest_api_id: Ref::to(API, "id"), routes_hash: routes_hash(stack, b) }.at(DEPLOYMENT));
    let access_log = api.access_logs.then(|| {
        d.resources.push(
            LogGroupProps {
                name: format!("/aws/apigateway/{}-access", stack.name),
                retention_days: Some(b.log_retention_days as i32),
                tags: tags(stack, "api-access"),
            }
            .at(API_LOG_GROUP),
        );
        AccessLog { destination_arn: Ref::to(API_LOG_GROUP, "arn"), format: ACCESS_LOG_FORMAT.into() }
    });
    d.resources.push(
        StageProps {
            rest_api_id: Ref::to(API, "id"),
            stage_name: api.stage.clone(),
            deployment_id: Ref::to(DEPLOYMENT, "id"),
            throttling: api
                .throttling
                .as_ref()
                .map(|t| Throttling { rate_limit: t.rate_limit, burst_limit: t.burst_limit as i32 }),
            access_log,
            tracing: api.tracing,
            tags: tags(stack, "stage"),
        }
        .at(STAGE),
    );
    api_keys(stack, api, d);
    d.outputs.push(Output {
        name: "api_url",
        address: STAGE.into(),
        attr: "invoke_url",
        description: "Invoke URL of the backend API",
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::resource::Resource;
    use crate::engine::value::referenced_addresses;
    use crate::stack::Overrides;

    fn stack(yaml_backend: &str) -> (tempfile::TempDir, Stack) {
        let dir = tempfile::tempdir().unwrap();
        for f in ["orders", "users"] {
            std::fs::create_dir_all(dir.path().join("functions").join(f)).unwrap();
            std::fs::write(
                dir.path().join("functions").join(f).join("app.py"),
                format!("def handler(event, context):\n    return '{f}'\n"),
            )
            .unwrap();
        }
        let text = format!("stack: webapp\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{yaml_backend}");
        let path = dir.path().join("stack.yaml");
        std::fs::write(&path, text).unwrap();
        let s = crate::stack::load(&path, &Overrides::default()).unwrap_or_else(|d| panic!("{}", d.render()));
        (dir, s)
    }

    const BACKEND: &str = r#"
backend:
  functions:
    orders:
      source: functions/orders
      runtime: python3.12
      handler: app.handler
      memory: 256
      timeout: 10
      environment: { PAYMENTS_URL: "https://payments.example.com" }
    users:
      source: functions/users
      runtime: python3.12
      handler: app.handler
      vpc: true
      reserved_concurrency: 5
  api:
    auth: none
    routes:
      - { method: GET, path: /orders, function: orders }
      - { method: ANY, path: "/users/{proxy+}", function: users }
    throttling: { rate_limit: 100, burst_limit: 200 }
"#;

    fn find<'a>(d: &'a Desired, a: &str) -> &'a Resource {
        d.resources.iter().find(|r| r.address == a).unwrap_or_else(|| panic!("no {a}"))
    }

    #[test]
    fn the_checks_resolve_names_packages_and_templates_once() {
        let (_d, s) = stack(
            "data:\n  database: { engine: postgres }\nbackend:\n  functions:\n    orders:\n      source: functions/orders\n      runtime: python3.12\n      handler: app.handler\n      environment:\n        DB: ${database.endpoint}\n",
        );
        assert!(s.database_read, "a function reads the endpoint");
        let f = &s.functions["orders"];
        assert_eq!(f.function_name, "webapp-orders");
        assert_eq!(f.role_name, "webapp-orders-us-east-1");
        let code = f.code.as_ref().unwrap();
        assert_eq!(code.sha256.len(), 44, "base64 SHA-256 of the package");
        assert!(code.source.path().is_absolute());
        assert_eq!(f.environment["DB"], vec![Part::Database { attr: "endpoint".into() }]);
        let (_d, s) = stack(BACKEND);
        assert!(!s.database_read);
    }

    #[test]
    fn expands_functions_roles_and_api() {
        let (_d, s) = stack(BACKEND);
        let mut d = Desired::default();
        expand(&s, &mut d);
        let addrs: Vec<&str> = d.resources.iter().map(|r| r.address.as_str()).collect();
        for a in [
            "backend.log_group.orders",
            "backend.role.orders",
            "backend.function.orders",
            "backend.permission.orders",
            "backend.function.users",
            "backend.api",
            "backend.deployment",
            "backend.stage",
        ] {
            assert!(addrs.contains(&a), "{a} missing from {addrs:?}");
        }
        assert!(!addrs.iter().any(|a| a.starts_with("backend.stream.")));
        let f = find(&d, "backend.function.orders");
        assert_eq!(f.props["function_name"], "webapp-orders");
        assert_eq!(f.props["role"], reference("backend.role.orders", "arn"));
        assert_eq!(f.props["vpc_config"], Value::Null);
        assert_eq!(f.props["reserved_concurrency"], Value::Null);
        assert_eq!(f.props["code_sha256"].as_str().unwrap().len(), 44);
        let u = find(&d, "backend.function.users");
        assert_eq!(u.props["reserved_concurrency"], 5);
        let mut deps = vec![];
        referenced_addresses(&u.props["vpc_config"], &mut deps);
        assert!(deps.contains(&"network.sg.functions".to_string()));
        assert!(deps.contains(&"network.subnet.private.us-east-1a".to_string()));
        // VPC functions get the ENI permissions, others do not.
        assert_eq!(
            find(&d, "backend.role.users").props["managed_policies"],
            json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaENIManagementAccess"])
        );
        assert_eq!(find(&d, "backend.role.orders").props["managed_policies"], json!([]));
        let r = find(&d, "backend.role.orders");
        assert_eq!(r.props["name"], "webapp-orders-us-east-1");
        assert_eq!(r.props["policies"].as_object().unwrap().keys().collect::<Vec<_>>(), vec!["logs"]);
        let api = find(&d, "backend.api");
        assert_eq!(api.props["name"], "webapp-api");
        assert_eq!(api.props["routes"].as_array().unwrap().len(), 2);
        let st = find(&d, "backend.stage");
        assert_eq!(st.props["stage_name"], "prod");
        assert_eq!(st.props["throttling"], json!({"rate_limit": 100.0, "burst_limit": 200}));
        assert_eq!(d.outputs.iter().filter(|o| o.name == "api_url").count(), 1);
        // Every address is tag-safe.
        for r in &d.resources {
            assert!(r.address.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:/@".contains(c)), "{}", r.address);
        }
    }

    #[test]
    fn a_route_change_changes_the_deployment_only_then() {
        let (_d, s) = stack(BACKEND);
        let mut a = Desired::default();
        expand(&s, &mut a);
        let (_d2, s2) = stack(BACKEND);
        let mut b = Desired::default();
        expand(&s2, &mut b);
        assert_eq!(find(&a, DEPLOYMENT).props["routes_hash"], find(&b, DEPLOYMENT).props["routes_hash"]);
        let more = BACKEND.replace(
            "      - { method: GET, path: /orders, function: orders }\n",
            "      - { method: GET, path: /orders, function: orders }\n      - { method: POST, path: /orders, function: orders }\n",
        );
        let (_d3, s3) = stack(&more);
        let mut c = Desired::default();
        expand(&s3, &mut c);
        assert_ne!(find(&a, DEPLOYMENT).props["routes_hash"], find(&c, DEPLOYMENT).props["routes_hash"]);
    }

    #[test]
    fn data_references_become_references() {
        // The data tier defines `data.table.<name>` and `data.database`;
        // expansion only needs the validated spec, so build it directly.
        let (_d, mut s) = stack(BACKEND);
        let b = s.spec.backend.as_mut().unwrap();
        let f = b.functions.get_mut("orders").unwrap();
        f.environment.insert("TABLE_NAME".into(), "${tables.orders.name}".into());
        f.environment.insert("DB_URL".into(), "postgres://${database.endpoint}:${database.port}/app".into());
        f.tables = vec!["orders".into()];
        f.database = true;
        f.stream = Some(crate::stack::backend::spec::StreamSpec {
            table: Some("orders".into()),
            arn: None,
            batch_size: 50,
            starting_position: crate::stack::backend::spec::StartingPosition::TrimHorizon,
        });
        // What the checks resolve from the environment (parsed once).
        let env: Vec<(String, String)> = f.environment.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let resolved = s.functions.get_mut("orders").unwrap();
        for (k, v) in env {
            resolved.environment.insert(k, crate::stack::template::parse_template(&v).unwrap());
        }
        let mut d = Desired::default();
        expand(&s, &mut d);
        let f = find(&d, "backend.function.orders");
        assert_eq!(f.props["environment"]["TABLE_NAME"], reference("data.table.orders", "name"));
        assert_eq!(
            f.props["environment"]["DB_URL"],
            json!({"$concat": ["postgres://", reference("data.database", "endpoint"), ":", reference("data.database", "port"), "/app"]})
        );
        let deps = f.dependencies();
        assert!(deps.contains("data.table.orders") && deps.contains("data.database"));

        let role = find(&d, "backend.role.orders");
        let p = &role.props["policies"];
        assert_eq!(
            p["tables"]["Statement"][0]["Resource"],
            json!([
                reference("data.table.orders", "arn"),
                {"$concat": [reference("data.table.orders", "arn"), "/index/*"]}
            ])
        );
        assert_eq!(p["tables"]["Statement"][0]["Action"].as_array().unwrap().len(), access::TABLE_ACTIONS.len());
        assert_eq!(p["database"]["Statement"][0]["Resource"], json!([reference("data.database", "secret_arn")]));
        assert_eq!(
            p["stream"]["Statement"][0]["Resource"],
            json!([{ "$concat": [reference("data.table.orders", "arn"), "/stream/*"] }])
        );
        let m = find(&d, "backend.stream.orders");
        assert_eq!(m.props["event_source_arn"], reference("data.table.orders", "stream_arn"));
        assert_eq!(m.props["batch_size"], 50);
        assert_eq!(m.props["starting_position"], "TRIM_HORIZON");
        // The users function declared nothing: logs only.
        let users = find(&d, "backend.role.users");
        assert_eq!(users.props["policies"].as_object().unwrap().len(), 1);
        every_resource_fits_its_kind(&d);
    }

    /// What the expansion writes reads back as its kind's props (references
    /// unresolved), so the provider can act on it.
    fn every_resource_fits_its_kind(d: &Desired) {
        let kinds = crate::aws::registry::kinds();
        for r in &d.resources {
            let k = kinds.iter().find(|k| k.name() == r.kind).unwrap_or_else(|| panic!("no kind {}", r.kind));
            k.check(&r.props).unwrap_or_else(|e| panic!("{} does not fit {}: {e}", r.address, r.kind));
        }
    }

    #[test]
    fn expanded_resources_fit_their_kinds() {
        let (_d, s) = stack(BACKEND);
        let mut d = Desired::default();
        expand(&s, &mut d);
        every_resource_fits_its_kind(&d);
    }
}
