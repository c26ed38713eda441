//! The backend tier against moto, read back with the AWS CLI: two Lambda
//! functions with least-privilege roles, a stream mapping, the REST API
//! (resources, methods, proxy integrations), invoke permissions, the stage;
//! code and route changes; destroy.
//!
//! moto gaps worked around here (never in the product): the data tier lives
//! on another branch, so the stream consumed is a table created with the CLI
//! and named by ARN; moto creates no Lambda network interfaces, so one is
//! made with the CLI to check that destroy removes it.

mod common;

use common::{Moto, Workdir, tag};
use serde_json::Value;

const ACCOUNT: &str = "123456789012";

fn plan_json(moto: &Moto, w: &Workdir) -> Value {
    let r = moto.infra(w.path(), &["plan", "--json"]);
    r.ok();
    serde_json::from_str(&r.stdout).expect("plan --json prints JSON")
}

/// Address -> action of every change that is not a no-op.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["action"].as_str().unwrap().to_string()))
        .collect()
}

fn function(moto: &Moto, name: &str) -> Value {
    moto.aws(&["lambda", "get-function", "--function-name", name])
}

fn role_policy(moto: &Moto, role: &str, policy: &str) -> Value {
    moto.aws(&["iam", "get-role-policy", "--role-name", role, "--policy-name", policy])["PolicyDocument"].clone()
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

fn api_id(moto: &Moto) -> String {
    let apis = moto.aws(&["apigateway", "get-rest-apis"])["items"].clone();
    let ours: Vec<&Value> =
        apis.as_array().unwrap().iter().filter(|a| a["tags"]["infra:address"] == "backend.api").collect();
    assert_eq!(ours.len(), 1, "{apis}");
    ours[0]["id"].as_str().unwrap().to_string()
}

/// (path, method) -> integration URI of every method of the API.
fn routes(moto: &Moto, api: &str) -> Vec<(String, String, String)> {
    let res = moto.aws(&["apigateway", "get-resources", "--rest-api-id", api, "--embed", "methods"]);
    let mut out = Vec::new();
    for r in res["items"].as_array().unwrap() {
        if let Some(m) = r["resourceMethods"].as_object() {
            for (verb, method) in m {
                let i = &method["methodIntegration"];
                assert_eq!(i["type"], "AWS_PROXY", "{method}");
                assert_eq!(i["httpMethod"], "POST", "{method}");
                out.push((
                    r["path"].as_str().unwrap().to_string(),
                    verb.clone(),
                    i["uri"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn uri(name: &str) -> String {
    format!(
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}/invocations"
    )
}

#[test]
fn reference_backend_is_built_as_declared_and_destroyed_completely() {
    let moto = Moto::start();
    let w = Workdir::reference();
    // The table whose stream `orders` consumes (the data tier is not on this branch).
    let table = moto.aws(&[
        "dynamodb",
        "create-table",
        "--table-name",
        "external-orders",
        "--attribute-definitions",
        "AttributeName=id,AttributeType=S",
        "--key-schema",
        "AttributeName=id,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
        "--stream-specification",
        "StreamEnabled=true,StreamViewType=NEW_IMAGE",
    ]);
    let stream = table["TableDescription"]["LatestStreamArn"].as_str().unwrap().to_string();
    // The reference consumes its own table's stream; here, the external one.
    w.edit(
        "      stream: { table: orders, batch_size: 100, starting_position: LATEST }",
        &format!("      stream: {{ arn: \"{stream}\", batch_size: 50 }}"),
    );
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();

    // Functions: runtime, handler, memory, environment, role, tags.
    let orders = function(&moto, "webapp-orders");
    let c = &orders["Configuration"];
    assert_eq!(c["Runtime"], "python3.12");
    assert_eq!(c["Handler"], "app.handler");
    assert_eq!(c["MemorySize"], 256);
    assert_eq!(c["Timeout"], 10);
    assert_eq!(c["Environment"]["Variables"]["PAYMENTS_URL"], "https://payments.example.com");
    assert_eq!(c["Role"], format!("arn:aws:iam::{ACCOUNT}:role/infra/webapp/us-east-1/webapp-orders-us-east-1"));
    assert_eq!(orders["Tags"]["infra:address"], "backend.function.orders");
    assert_eq!(orders["Tags"]["project"], "webapp");

    let users = function(&moto, "webapp-users");
    let c = &users["Configuration"];
    assert_eq!(c["Role"], format!("arn:aws:iam::{ACCOUNT}:role/infra/webapp/us-east-1/webapp-users-us-east-1"));
    // In the private subnets, with the functions security group.
    let private: Vec<String> = moto
        .ec2_by_stack("describe-subnets", "Subnets", "webapp")
        .iter()
        .filter(|s| tag(s, "infra:address").unwrap().starts_with("network.subnet.private."))
        .map(|s| s["SubnetId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(private.len(), 2);
    let mut private_sorted = private.clone();
    private_sorted.sort();
    assert_eq!(sorted(&c["VpcConfig"]["SubnetIds"]), private_sorted);
    let groups = moto.ec2_by_stack("describe-security-groups", "SecurityGroups", "webapp");
    let fn_sg = groups.iter().find(|g| tag(g, "infra:address") == Some("network.sg.functions")).unwrap()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sorted(&c["VpcConfig"]["SecurityGroupIds"]), vec![fn_sg.clone()]);

    // Roles: logs on their own log group only; the stream's actions on that
    // stream only; network interface permissions only for the VPC function.
    let logs = role_policy(&moto, "webapp-orders-us-east-1", "logs");
    assert_eq!(
        logs["Statement"][0]["Resource"],
        serde_json::json!([format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/webapp-orders:*")])
    );
    assert_eq!(sorted(&logs["Statement"][0]["Action"]), vec!["logs:CreateLogStream", "logs:PutLogEvents"]);
    let names = moto.aws(&["iam", "list-role-policies", "--role-name", "webapp-orders-us-east-1"]);
    assert_eq!(sorted(&names["PolicyNames"]), vec!["logs", "stream", "tables"]);
    let sp = role_policy(&moto, "webapp-orders-us-east-1", "stream");
    // A stream given by ARN: exactly that stream.
    assert_eq!(sp["Statement"][0]["Resource"], serde_json::json!([stream]));
    let names = moto.aws(&["iam", "list-role-policies", "--role-name", "webapp-users-us-east-1"]);
    // users declares `database: true`: it may read the database's secret.
    assert_eq!(sorted(&names["PolicyNames"]), vec!["database", "logs"]);
    let attached = |role: &str| -> Vec<String> {
        moto.aws(&["iam", "list-attached-role-policies", "--role-name", role])["AttachedPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["PolicyArn"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        attached("webapp-users-us-east-1"),
        vec!["arn:aws:iam::aws:policy/service-role/AWSLambdaENIManagementAccess"]
    );
    assert!(attached("webapp-orders-us-east-1").is_empty());
    let trust =
        moto.aws(&["iam", "get-role", "--role-name", "webapp-orders-us-east-1"])["Role"]["AssumeRolePolicyDocument"]
            .clone();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "lambda.amazonaws.com");

    // Log groups with retention.
    let lgs = moto.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/webapp-"])["logGroups"]
        .clone();
    let lg_names: Vec<&str> = lgs.as_array().unwrap().iter().map(|g| g["logGroupName"].as_str().unwrap()).collect();
    assert_eq!(lg_names, vec!["/aws/lambda/webapp-orders", "/aws/lambda/webapp-users"]);
    assert!(lgs.as_array().unwrap().iter().all(|g| g["retentionInDays"] == 365));

    // The stream mapping.
    // (moto filters --function-name on the exact string the mapping was
    // created with, an ARN here: list all and look at FunctionArn.)
    let esm: Vec<Value> =
        moto.aws(&["lambda", "list-event-source-mappings"])["EventSourceMappings"].as_array().unwrap().clone();
    assert_eq!(esm.len(), 1, "{esm:?}");
    assert_eq!(esm[0]["EventSourceArn"], stream.as_str());
    assert_eq!(esm[0]["BatchSize"], 50);
    assert_eq!(esm[0]["StartingPosition"], "LATEST");
    assert_eq!(esm[0]["FunctionArn"], format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:webapp-orders"));

    // The API: nested resources, methods and proxy integrations to the right functions.
    let api = api_id(&moto);
    let rest = moto.aws(&["apigateway", "get-rest-api", "--rest-api-id", &api]);
    assert_eq!(rest["name"], "webapp-api");
    assert_eq!(rest["endpointConfiguration"]["types"], serde_json::json!(["REGIONAL"]));
    assert_eq!(
        routes(&moto, &api),
        vec![
            ("/api/orders".into(), "GET".into(), uri("webapp-orders")),
            ("/api/orders".into(), "POST".into(), uri("webapp-orders")),
            ("/api/orders/{id}".into(), "GET".into(), uri("webapp-orders")),
            ("/api/users".into(), "ANY".into(), uri("webapp-users")),
            ("/api/users/{proxy+}".into(), "ANY".into(), uri("webapp-users")),
        ]
    );
    let res = moto.aws(&["apigateway", "get-resources", "--rest-api-id", &api]);
    let by_path = |p: &str| {
        res["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == p)
            .unwrap_or_else(|| panic!("no resource {p}"))
            .clone()
    };
    assert_eq!(by_path("/api/users/{proxy+}")["parentId"], by_path("/api/users")["id"]);

    // One invoke permission per function, scoped to this API.
    for f in ["webapp-orders", "webapp-users"] {
        let policy: Value =
            serde_json::from_str(moto.aws(&["lambda", "get-policy", "--function-name", f])["Policy"].as_str().unwrap())
                .unwrap();
        let st = policy["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 1, "{policy}");
        assert_eq!(st[0]["Principal"]["Service"], "apigateway.amazonaws.com");
        assert_eq!(st[0]["Action"], "lambda:InvokeFunction");
        assert_eq!(
            st[0]["Condition"]["ArnLike"]["AWS:SourceArn"],
            format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:{api}/*/*/*")
        );
    }

    // The stage, on the only deployment, with throttling.
    let deployments = moto.aws(&["apigateway", "get-deployments", "--rest-api-id", &api])["items"].clone();
    assert_eq!(deployments.as_array().unwrap().len(), 1, "{deployments}");
    let stages = moto.aws(&["apigateway", "get-stages", "--rest-api-id", &api])["item"].clone();
    assert_eq!(stages.as_array().unwrap().len(), 1, "{stages}");
    let stage = &stages[0];
    assert_eq!(stage["stageName"], "prod");
    assert_eq!(stage["deploymentId"], deployments[0]["id"]);
    assert_eq!(stage["tags"]["infra:address"], "backend.stage");
    assert_eq!(stage["methodSettings"]["*/*"]["throttlingRateLimit"], 100.0);
    assert_eq!(stage["methodSettings"]["*/*"]["throttlingBurstLimit"], 200);

    // Nothing left to do, and the stage's invoke URL is known.
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    let plan = plan_json(&moto, &w);
    let stage = plan["changes"].as_array().unwrap().iter().find(|c| c["address"] == "backend.stage").unwrap();
    assert_eq!(stage["live"]["attrs"]["invoke_url"], format!("https://{api}.execute-api.us-east-1.amazonaws.com/prod"));

    // Lambda leaves network interfaces behind in the VPC (moto does not): one
    // must not block the subnets and the security group.
    let eni = moto.aws(&[
        "ec2",
        "create-network-interface",
        "--subnet-id",
        &private[0],
        "--groups",
        &fn_sg,
        "--description",
        "AWS Lambda VPC ENI-webapp-users-5e1f0c2a",
    ])["NetworkInterface"]["NetworkInterfaceId"]
        .as_str()
        .unwrap()
        .to_string();

    moto.infra(w.path(), &["destroy", "--auto-approve"]).ok();

    let fns = moto.aws(&["lambda", "list-functions"])["Functions"].clone();
    assert!(fns.as_array().unwrap().is_empty(), "{fns}");
    let roles = moto.aws(&["iam", "list-roles", "--path-prefix", "/infra/webapp/"])["Roles"].clone();
    assert!(roles.as_array().unwrap().is_empty(), "{roles}");
    let lgs = moto.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/"])["logGroups"].clone();
    assert!(lgs.as_array().unwrap().is_empty(), "{lgs}");
    let esms = moto.aws(&["lambda", "list-event-source-mappings"])["EventSourceMappings"].clone();
    assert!(esms.as_array().unwrap().is_empty(), "{esms}");
    let apis = moto.aws(&["apigateway", "get-rest-apis"])["items"].clone();
    assert!(apis.as_array().unwrap().is_empty(), "{apis}");
    let enis = moto.aws(&["ec2", "describe-network-interfaces"])["NetworkInterfaces"].clone();
    assert!(!enis.as_array().unwrap().iter().any(|n| n["NetworkInterfaceId"] == eni.as_str()), "{enis}");
    assert!(moto.ec2_by_stack("describe-subnets", "Subnets", "webapp").is_empty());
    moto.infra(w.path(), &["plan", "--destroy", "--detailed-exitcode"]).code(0);
}

const SMALL: &str = r#"
stack: shop
region: us-east-1
network:
  cidr: 10.1.0.0/16
backend:
  log_retention_days: 7
  functions:
    orders:
      source: functions/orders
      runtime: python3.12
      handler: app.handler
      architecture: arm64
    users:
      source: functions/users
      runtime: python3.12
      handler: app.handler
  api:
    auth: none
    routes:
      - { method: GET, path: /orders, function: orders }
      - { method: ANY, path: "/users/{proxy+}", function: users }
    access_logs: true
"#;

#[test]
fn code_and_route_changes_touch_only_what_changed() {
    let moto = Moto::start();
    let w = Workdir::with_stack(SMALL);
    w.write("functions/orders/app.py", "def handler(e, c):\n    return {'statusCode': 200, 'body': 'orders v1'}\n");
    w.write("functions/users/app.py", "def handler(e, c):\n    return {'statusCode': 200, 'body': 'users'}\n");
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
    assert_eq!(function(&moto, "shop-orders")["Configuration"]["Architectures"], serde_json::json!(["arm64"]));
    // Access logs go to a log group of the stack, kept 7 days like the functions' logs.
    let api = api_id(&moto);
    let stage = moto.aws(&["apigateway", "get-stages", "--rest-api-id", &api])["item"][0].clone();
    assert_eq!(
        stage["accessLogSettings"]["destinationArn"],
        format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/apigateway/shop-access")
    );
    assert!(stage["accessLogSettings"]["format"].as_str().unwrap().contains("$context.requestId"));
    let groups = moto.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/"])["logGroups"].clone();
    let retention: Vec<(String, i64)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["logGroupName"].as_str().unwrap().to_string(), g["retentionInDays"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        retention,
        vec![
            ("/aws/apigateway/shop-access".to_string(), 7),
            ("/aws/lambda/shop-orders".to_string(), 7),
            ("/aws/lambda/shop-users".to_string(), 7),
        ]
    );
    let before_orders = function(&moto, "shop-orders")["Configuration"].clone();
    let before_users = function(&moto, "shop-users")["Configuration"].clone();

    // Unchanged source rewritten (new timestamps): the same package, nothing to do.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.write("functions/users/app.py", "def handler(e, c):\n    return {'statusCode': 200, 'body': 'users'}\n");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // One function's code changes: only that function is updated.
    w.write("functions/orders/app.py", "def handler(e, c):\n    return {'statusCode': 200, 'body': 'orders v2'}\n");
    let plan = plan_json(&moto, &w);
    assert_eq!(actions(&plan), vec![("backend.function.orders".to_string(), "update".to_string())]);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let after_orders = function(&moto, "shop-orders")["Configuration"].clone();
    let after_users = function(&moto, "shop-users")["Configuration"].clone();
    assert_ne!(after_orders["CodeSha256"], before_orders["CodeSha256"]);
    assert_eq!(after_users["CodeSha256"], before_users["CodeSha256"]);
    assert_eq!(after_users["LastModified"], before_users["LastModified"]);
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // A configuration change updates the configuration only.
    w.edit(
        "      source: functions/users\n      runtime: python3.12\n      handler: app.handler\n",
        "      source: functions/users\n      runtime: python3.12\n      handler: app.handler\n      memory: 512\n      reserved_concurrency: 5\n      environment: { MODE: strict }\n",
    );
    assert_eq!(actions(&plan_json(&moto, &w)), vec![("backend.function.users".to_string(), "update".to_string())]);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert_eq!(
        moto.aws(&["lambda", "get-function-concurrency", "--function-name", "shop-users"])["ReservedConcurrentExecutions"],
        5
    );
    let users = function(&moto, "shop-users")["Configuration"].clone();
    assert_eq!(users["MemorySize"], 512);
    assert_eq!(users["Environment"]["Variables"]["MODE"], "strict");
    assert_eq!(users["CodeSha256"], before_users["CodeSha256"]);

    // Adding a route: the API's routes change and a new deployment is planned.
    let old_deployment =
        moto.aws(&["apigateway", "get-stages", "--rest-api-id", &api])["item"][0]["deploymentId"].clone();
    w.edit(
        "      - { method: GET, path: /orders, function: orders }\n",
        "      - { method: GET, path: /orders, function: orders }\n      - { method: POST, path: \"/orders/{id}/items\", function: orders }\n",
    );
    let plan = plan_json(&moto, &w);
    let a = actions(&plan);
    assert!(a.contains(&("backend.deployment".into(), "replace".into())), "{a:?}");
    assert!(a.contains(&("backend.api".into(), "update".into())), "{a:?}");
    assert!(a.contains(&("backend.stage".into(), "update".into())), "{a:?}");
    assert!(!a.iter().any(|(addr, _)| addr.starts_with("backend.function.")), "{a:?}");
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert!(routes(&moto, &api).contains(&("/orders/{id}/items".into(), "POST".into(), uri("shop-orders"))));
    let deployments = moto.aws(&["apigateway", "get-deployments", "--rest-api-id", &api])["items"].clone();
    assert_eq!(deployments.as_array().unwrap().len(), 1, "the old deployment is deleted: {deployments}");
    let stage = moto.aws(&["apigateway", "get-stages", "--rest-api-id", &api])["item"][0].clone();
    assert_eq!(stage["deploymentId"], deployments[0]["id"]);
    assert_ne!(stage["deploymentId"], old_deployment);
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Removing a route removes its method and the resources only it needed.
    w.edit("      - { method: POST, path: \"/orders/{id}/items\", function: orders }\n", "");
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let paths: Vec<String> = moto.aws(&["apigateway", "get-resources", "--rest-api-id", &api])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!paths.iter().any(|p| p.starts_with("/orders/")), "{paths:?}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn bad_backends_fail_validation_with_located_messages() {
    let w = Workdir::with_stack(&SMALL.replace(
        "    access_logs: true\n",
        "      - { method: GET, path: /x, function: payments }\n    access_logs: true\n",
    ));
    w.write("functions/orders/app.py", "def handler(e, c):\n    return 1\n");
    w.write("functions/users/main.py", "def handler(e, c):\n    return 1\n");
    let s = w.read("stack.yaml").replace(
        "      source: functions/orders\n",
        "      source: functions/orders\n      environment: { TABLE: \"${tables.orders.name}\" }\n",
    );
    w.write("stack.yaml", &s);
    let err = validate_fails(&w);
    for want in [
        "backend.api.routes[2].function: no function named `payments`",
        "backend.functions.orders.environment.TABLE: no table named `orders`",
        "backend.functions.users.handler: handler `app.handler` needs app.py",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("stack.yaml:"), "errors are located: {err}");
}

/// `infra validate` in `w`, which must fail (exit 1): its error output. No
/// AWS is needed: validation runs before any call.
fn validate_fails(w: &Workdir) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
        .arg("validate")
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    err
}

/// Who may call the API is checked before any call: a route that does not
/// say, `jwt` without a pool, `api_key` without keys, keys and a pool no
/// route uses, bad client names and an ARN from another region.
#[test]
fn api_auth_mistakes_fail_validation_with_located_messages() {
    let validate = |yaml: &str| {
        let w = Workdir::with_stack(yaml);
        w.write("functions/orders/app.py", "def handler(e, c):\n    return 1\n");
        w.write("functions/users/app.py", "def handler(e, c):\n    return 1\n");
        validate_fails(&w)
    };
    let open = SMALL.replace("    auth: none\n", "");
    let err = validate(&open);
    assert!(err.contains("backend.api.routes[0]: route GET /orders does not say who may call it"), "{err}");
    let err = validate(&SMALL.replace("    auth: none\n", "    auth: jwt\n"));
    assert!(err.contains("`auth: jwt` routes need a user pool"), "{err}");
    let err = validate(&SMALL.replace("    auth: none\n", "    auth: api_key\n"));
    assert!(err.contains("`auth: api_key` routes need `api_keys`"), "{err}");
    let err = validate(&SMALL.replace(
        "    auth: none\n",
        "    auth: none\n    api_keys: { clients: [Partner, b, b], quota: { limit: 0, period: day } }\n    user_pool: { arn: \"arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC\" }\n",
    ));
    for want in [
        "backend.api.api_keys: API keys, but no route takes `auth: api_key`",
        "backend.api.api_keys.clients[0]: client `Partner` must be",
        "backend.api.api_keys.clients[2]: client `b` is listed twice",
        "backend.api.api_keys.quota.limit: a quota of 0 refuses every request",
        "backend.api.user_pool.arn: the user pool is in eu-west-1, the API in us-east-1",
        "backend.api.user_pool: a user pool, but no route takes `auth: jwt`",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

/// A stream mapping whose create answer was lost is retried; Lambda answers
/// the retry `ResourceConflictException` (one mapping per function and
/// stream; moto patched to, as Lambda does), and the tool takes the mapping
/// its first attempt made, tagged as its own, instead of failing or making
/// a second one.
#[test]
fn a_retried_stream_mapping_takes_the_one_its_first_attempt_made() {
    use common::{Proxy, ProxyOpts};
    let moto = Moto::start();
    let p = Proxy::start(
        &moto,
        ProxyOpts { lose_first: "POST /2015-03-31/event-source-mappings".into(), ..ProxyOpts::default() },
    );
    let w = Workdir::reference();
    w.write(
        "stack.yaml",
        r#"stack: feed
region: us-east-1
network: { cidr: 10.30.0.0/16, nat: none }
data:
  tables:
    orders:
      partition_key: { name: pk, type: S }
      stream: new_image
backend:
  functions:
    orders:
      source: functions/orders
      runtime: python3.12
      handler: app.handler
      tables: [orders]
      stream: { table: orders, batch_size: 25, starting_position: LATEST }
"#,
    );
    p.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let stats = p.stats();
    assert_eq!(stats["faults_injected"]["error_after"], 1, "the create's answer was not lost: {stats}");
    let mappings = moto.aws(&["lambda", "list-event-source-mappings"]);
    let mappings = mappings["EventSourceMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    assert_eq!(mappings[0]["BatchSize"], 25);
    let arn =
        format!("arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:{}", mappings[0]["UUID"].as_str().unwrap());
    let tags = moto.aws(&["lambda", "list-tags", "--resource", &arn]);
    assert_eq!(tags["Tags"]["infra:address"], "backend.stream.orders");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
}
