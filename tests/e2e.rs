//! End to end: the reference stack deployed to an emulator that runs its
//! code (ministack, with its gaps against AWS patched in
//! `tests/support/ministack_patched.py`), then proven by the requests its
//! users send, each result read back independently (the AWS CLI, psql).
//!
//! The database instance's endpoint is a real PostgreSQL server
//! (`tests/support/postgres_cluster.py`), and the public AWS names
//! (`https://{api}.execute-api.us-east-1.amazonaws.com`,
//! `https://{d}.cloudfront.net`) reach ministack through a TLS front
//! (`tests/support/aws_front.py`) that clients use as their HTTPS proxy:
//! `infra check` and the requests below use the AWS URLs as they are.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, Workdir, free_port, repo_root};
use serde_json::{Value, json};

/// The emulators of one test: PostgreSQL, ministack, the TLS front.
struct Cloud {
    children: Vec<Child>,
    endpoint: String,
    proxy: String,
    ca: PathBuf,
    pg: String,
    _dir: tempfile::TempDir,
}

/// The first line a helper prints once it is ready (its port or address).
fn first_line(out: ChildStdout, what: &str) -> String {
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!line.trim().is_empty(), "{what} stopped before it was ready");
    line.trim().to_string()
}

fn python(script: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(repo_root().join("tests/support").join(script));
    c
}

impl Cloud {
    fn start() -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        // INFRA_E2E_KEEP=1 keeps the emulators' logs for a post-mortem.
        if std::env::var_os("INFRA_E2E_KEEP").is_some() {
            eprintln!("e2e logs: {}", dir.path().display());
        }
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let mut children = Vec::new();

        let mut pg = python("postgres_cluster.py")
            .args(["--tmpdir", &dir.path().display().to_string()])
            .stdout(Stdio::piped())
            .stderr(log("postgres.log"))
            .spawn()
            .unwrap();
        let pg_addr = first_line(pg.stdout.take().unwrap(), "postgres_cluster.py");
        children.push(pg);

        let port = free_port();
        let ms = python("ministack_patched.py")
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--postgres", &pg_addr])
            .args(["--postgres-user", "postgres", "--postgres-password", "postgres"])
            .args(["--state-dir", &dir.path().join("ministack").display().to_string()])
            .stdout(log("ministack.out"))
            .stderr(log("ministack.log"))
            .spawn()
            .unwrap();
        children.push(ms);
        let endpoint = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(90), "ministack did not start: see its log");
            std::thread::sleep(Duration::from_millis(200));
        }

        let ca = dir.path().join("front-ca.pem");
        let mut front = python("aws_front.py")
            .args(["--upstream", &format!("127.0.0.1:{port}"), "--ca-out", &ca.display().to_string()])
            .args(["--log", &dir.path().join("front.log").display().to_string()])
            .stdout(Stdio::piped())
            .stderr(log("front.err"))
            .spawn()
            .unwrap();
        let front_port = first_line(front.stdout.take().unwrap(), "aws_front.py");
        children.push(front);
        Cloud { children, endpoint, proxy: format!("http://127.0.0.1:{front_port}"), ca, pg: pg_addr, _dir: dir }
    }

    fn env(&self, cmd: &mut Command) {
        common::aws_env(cmd, &self.endpoint);
        // What a user behind a TLS-inspecting proxy sets, nothing more.
        cmd.env("HTTPS_PROXY", &self.proxy).env("NO_PROXY", "127.0.0.1,localhost").env("SSL_CERT_FILE", &self.ca);
    }

    fn infra(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra"));
        cmd.args(args).current_dir(dir).stdin(Stdio::null());
        self.env(&mut cmd);
        Run::from(cmd.output().unwrap())
    }

    /// The AWS CLI, as the independent reader.
    fn aws(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new("aws");
        cmd.args(args).args(["--output", "json", "--endpoint-url", &self.endpoint]);
        self.env(&mut cmd);
        cmd.env_remove("HTTPS_PROXY").env_remove("SSL_CERT_FILE");
        let out = cmd.output().expect("aws CLI not found");
        assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A request as a user's client sends it (curl, through the HTTPS proxy).
    fn http(&self, method: &str, url: &str, body: Option<&str>) -> Http {
        self.http_as(None, method, url, body)
    }

    /// The same, signed in: the user's ID token in `Authorization`.
    fn http_as(&self, token: Option<&str>, method: &str, url: &str, body: Option<&str>) -> Http {
        let headers = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "60", "-X", method, "-o", "-", "-D"])
            .arg(headers.path())
            .args(["--proxy", &self.proxy, "--cacert"])
            .arg(&self.ca)
            .arg(url);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: {t}")]);
        }
        let out = cmd.output().expect("curl not found");
        assert!(out.status.success(), "curl {method} {url}: {}", String::from_utf8_lossy(&out.stderr));
        let raw = std::fs::read_to_string(headers.path()).unwrap();
        // The last response (after a 100 Continue).
        let block = raw.trim_end().rsplit("\r\n\r\n").next().unwrap_or_default();
        let mut lines = block.lines();
        let status: u16 = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Http { status, headers, body: String::from_utf8_lossy(&out.stdout).into_owned() }
    }

    /// `psql` as the cluster's superuser: the database as it really is.
    fn sql(&self, db: &str, query: &str) -> String {
        let (host, port) = self.pg.rsplit_once(':').unwrap();
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-c", query])
            .arg(format!("host={host} port={port} user=postgres dbname={db} sslmode=require"))
            .env("PGPASSWORD", "postgres")
            .output()
            .expect("psql not found");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("INFRA_E2E_KEEP").is_some() {
            let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
            let _ = dir.keep();
        }
    }
}

struct Http {
    status: u16,
    headers: std::collections::BTreeMap<String, String>,
    body: String,
}

impl Http {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or_default()
    }
    fn is_json(&self) -> bool {
        self.header("content-type").starts_with("application/json")
    }
}

/// Polls `f` until it gives a value, for what arrives asynchronously.
fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_reference_stack_serves_its_users_and_destroy_keeps_only_the_backups() {
    let cloud = Cloud::start();
    let w = Workdir::reference();

    // 1. Deploy, then `--check` proves it serves (routes, site, targets,
    // functions, database), from the live stack.
    let apply = cloud.infra(w.path(), &["apply", "--auto-approve", "--check", "--check-timeout", "3m"]);
    apply.ok();
    assert!(apply.stdout.contains("checks passed"), "{}", apply.stdout);
    for check in ["GET /api/orders", "POST /api/orders", "GET / through CloudFront", "Multi-AZ", "targets healthy in"] {
        assert!(apply.stdout.contains(check), "{check} not checked:\n{}", apply.stdout);
    }
    let out = |name: &str| {
        let r = cloud.infra(w.path(), &["output", name]);
        r.ok();
        r.stdout.trim().to_string()
    };
    let api = out("api_url");
    let site = format!("https://{}", out("site_domain"));
    assert!(api.starts_with("https://") && api.contains(".execute-api.us-east-1.amazonaws.com/prod"), "{api}");

    // 2a. Who may call what, read back: reads open, writes through the
    // Cognito authorizer of the stack's pool; the site's client is public
    // (no secret) and signs in with SRP only.
    let (pool, client) = (out("user_pool_id"), out("user_pool_client_id"));
    let pool_arn = cloud.aws(&["cognito-idp", "describe-user-pool", "--user-pool-id", &pool])["UserPool"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    let app = &cloud.aws(&[
        "cognito-idp",
        "describe-user-pool-client",
        "--user-pool-id",
        &pool,
        "--client-id",
        &client,
    ])["UserPoolClient"];
    assert!(app.get("ClientSecret").is_none_or(Value::is_null), "{app}");
    assert_eq!(app["ExplicitAuthFlows"], json!(["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]));
    let api_id = api.trim_start_matches("https://").split('.').next().unwrap().to_string();
    let authorizers = cloud.aws(&["apigateway", "get-authorizers", "--rest-api-id", &api_id])["items"].clone();
    assert_eq!(authorizers.as_array().unwrap().len(), 1, "{authorizers}");
    assert_eq!(authorizers[0]["type"], "COGNITO_USER_POOLS");
    assert_eq!(authorizers[0]["providerARNs"], json!([pool_arn]));
    let resources = cloud.aws(&["apigateway", "get-resources", "--rest-api-id", &api_id])["items"].clone();
    let method = |path: &str, verb: &str| {
        let r = resources.as_array().unwrap().iter().find(|r| r["path"] == path).unwrap();
        cloud.aws(&[
            "apigateway",
            "get-method",
            "--rest-api-id",
            &api_id,
            "--resource-id",
            r["id"].as_str().unwrap(),
            "--http-method",
            verb,
        ])
    };
    let post = method("/api/orders", "POST");
    assert_eq!(post["authorizationType"], "COGNITO_USER_POOLS");
    assert_eq!(post["authorizerId"], authorizers[0]["id"]);
    assert_eq!(method("/api/orders", "GET")["authorizationType"], "NONE");
    assert_eq!(method("/api/users", "ANY")["authorizationType"], "COGNITO_USER_POOLS");

    // A user of the pool (made with the CLI, as an admin would), signed in
    // as the site does (SRP, tests/support/sign_in.py).
    let email = "zoe@example.com";
    cloud.aws(&[
        "cognito-idp",
        "admin-create-user",
        "--user-pool-id",
        &pool,
        "--username",
        email,
        "--message-action",
        "SUPPRESS",
        "--user-attributes",
        &format!("Name=email,Value={email}"),
        "Name=email_verified,Value=true",
    ]);
    let password = "Correct-Horse-Battery-9";
    cloud.aws(&[
        "cognito-idp",
        "admin-set-user-password",
        "--user-pool-id",
        &pool,
        "--username",
        email,
        "--password",
        password,
        "--permanent",
    ]);
    let token = {
        use std::io::Write;
        let mut cmd = Command::new("python3");
        cmd.arg(common::repo_root().join("tests/support/sign_in.py")).args([&cloud.endpoint, &pool, &client, email]);
        cloud.env(&mut cmd);
        cmd.env_remove("HTTPS_PROXY").env_remove("SSL_CERT_FILE");
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sign-in: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(token.split('.').count(), 3, "an ID token (JWT): {token}");
    let token = Some(token.as_str());

    // 2. Orders through API Gateway → Lambda → DynamoDB: keys made by the
    // service; numbers, nested objects and non-ASCII text round-trip.
    let order = json!({
        "customer": "Zoë Ångström ☕",
        "items": [{"sku": "mug-01", "quantity": 3, "price": 12.5}, {"sku": "tea", "quantity": 1, "price": 4.99}],
        "currency": "EUR",
        "metadata": {"gift": true, "wrap": {"colour": "grün", "layers": 2}},
    });
    // Without a token, or with a forged one, API Gateway refuses the write
    // before the function runs; signed in, it goes through.
    let anonymous = cloud.http("POST", &format!("{api}/api/orders"), Some(&order.to_string()));
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let forged = token.map(|t| format!("{}.{}.AAAA", t.split('.').next().unwrap(), t.split('.').nth(1).unwrap()));
    let forged = cloud.http_as(forged.as_deref(), "POST", &format!("{api}/api/orders"), Some(&order.to_string()));
    assert_eq!(forged.status, 401, "{}", forged.body);
    let created = cloud.http_as(token, "POST", &format!("{api}/api/orders"), Some(&order.to_string()));
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.is_json());
    let c = created.json();
    let id = c["id"].as_str().expect("the service makes the id").to_string();
    assert_eq!(c["total"], json!(42.49));
    let got = cloud.http("GET", &format!("{api}/api/orders/{id}"), None);
    assert_eq!(got.status, 200, "{}", got.body);
    let g = got.json();
    assert_eq!(g["customer"], order["customer"]);
    assert_eq!(g["items"], order["items"]);
    assert_eq!(g["metadata"], order["metadata"]);
    let list = cloud.http("GET", &format!("{api}/api/orders?limit=10"), None);
    assert_eq!(list.status, 200, "a list with numbers in it: {}", list.body);
    let listed = list.json();
    let items = listed["orders"].as_array().expect("a list of orders");
    assert!(items.iter().any(|o| o["id"] == id.as_str()), "{listed}");
    // Read back from DynamoDB itself.
    let tables = cloud.aws(&["dynamodb", "list-tables"]);
    let table =
        tables["TableNames"].as_array().unwrap().iter().filter_map(Value::as_str).find(|t| t.ends_with("-orders"));
    let scan = cloud.aws(&["dynamodb", "scan", "--table-name", table.unwrap()]);
    let item = scan["Items"].as_array().unwrap().iter().find(|i| i["id"]["S"] == id.as_str()).expect("stored");
    assert_eq!(item["pk"]["S"], format!("ORDER#{id}"));
    assert_eq!(item["customer"]["S"], "Zoë Ångström ☕");
    assert_eq!(item["items"]["L"][0]["M"]["price"]["N"], "12.5");

    // Bad input: 400 with a JSON error; an unknown route: JSON, never HTML.
    for (body, why) in [("{\"customer\": ", "malformed JSON"), ("{}", "missing fields")] {
        let r = cloud.http_as(token, "POST", &format!("{api}/api/orders"), Some(body));
        assert_eq!(r.status, 400, "{why}: {}", r.body);
        assert!(r.is_json() && r.json()["error"].is_string(), "{why}: {} {:?}", r.body, r.headers);
    }
    let unknown = cloud.http("GET", &format!("{api}/api/nope"), None);
    assert!(matches!(unknown.status, 403 | 404), "{} {}", unknown.status, unknown.body);
    assert!(unknown.is_json(), "{:?} {}", unknown.headers, unknown.body);

    // 3. The orders table's stream reaches its consumer: the consumer's log
    // (CloudWatch Logs, read with the CLI) names the new order.
    eventually("the stream consumer logs the new order", Duration::from_secs(90), || {
        let groups =
            cloud.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/webapp-orders"]);
        let name = groups["logGroups"][0]["logGroupName"].as_str()?.to_string();
        let events = cloud.aws(&["logs", "filter-log-events", "--log-group-name", &name]);
        events["events"]
            .as_array()?
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains(&id)))
            .then_some(())
    });

    // 4. The users service reads the database's managed secret and answers;
    // what it writes is in PostgreSQL.
    assert_eq!(cloud.http("GET", &format!("{api}/api/users/health"), None).status, 401, "users: signed in only");
    let health = cloud.http_as(token, "GET", &format!("{api}/api/users/health"), None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["database"], "reachable");
    let user =
        cloud.http_as(token, "POST", &format!("{api}/api/users"), Some(r#"{"email":"zoe@example.com","name":"Zoë"}"#));
    assert_eq!(user.status, 201, "{}", user.body);
    assert_eq!(cloud.sql("app", "select name from users where email = 'zoe@example.com'"), "Zoë");
    let missing = cloud.http_as(token, "GET", &format!("{api}/api/users/00000000-0000-4000-8000-000000000000"), None);
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.is_json());
    // The secret never reaches a log.
    let pass = cloud.aws(&["rds", "describe-db-instances"])["DBInstances"][0]["MasterUserSecret"]["SecretArn"]
        .as_str()
        .map(|arn| cloud.aws(&["secretsmanager", "get-secret-value", "--secret-id", arn]))
        .and_then(|s| serde_json::from_str::<Value>(s["SecretString"].as_str()?).ok())
        .and_then(|s| s["password"].as_str().map(str::to_string))
        .expect("the managed secret");
    let groups = cloud.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/webapp-users"]);
    if let Some(name) = groups["logGroups"][0]["logGroupName"].as_str() {
        let events = cloud.aws(&["logs", "filter-log-events", "--log-group-name", name]);
        assert!(!events.to_string().contains(&pass), "the password is in the users log");
    }

    // 5. The site through CloudFront (OAC): the root, assets with their
    // types and cache headers, client-side routes → index.html, while the
    // API's errors keep their status and JSON body.
    let root = cloud.http("GET", &format!("{site}/"), None);
    assert_eq!(root.status, 200, "{}", root.body);
    assert!(root.header("content-type").starts_with("text/html"), "{:?}", root.headers);
    let index = root.body.clone();
    let asset = std::fs::read_dir(w.path().join("site/assets")).unwrap().next().unwrap().unwrap().file_name();
    let asset = cloud.http("GET", &format!("{site}/assets/{}", asset.to_string_lossy()), None);
    assert_eq!(asset.status, 200);
    assert!(asset.header("content-type").contains("javascript"), "{:?}", asset.headers);
    assert!(asset.header("cache-control").contains("immutable"), "hashed assets cache forever: {:?}", asset.headers);
    let route = cloud.http("GET", &format!("{site}/orders/42"), None);
    assert_eq!(route.status, 200, "a client-side route loads the app");
    assert_eq!(route.body, index);
    let api_404 = cloud.http("GET", &format!("{site}/api/orders/no-such-order"), None);
    assert_eq!(api_404.status, 404, "{}", api_404.body);
    assert!(api_404.is_json() && api_404.json()["error"] == "not_found", "{:?} {}", api_404.headers, api_404.body);
    let via_cdn = cloud.http("GET", &format!("{site}/api/orders/{id}"), None);
    assert_eq!(via_cdn.status, 200);
    assert_eq!(via_cdn.json()["customer"], order["customer"]);

    // 6. `infra check` fails, naming the route, when a route is broken on
    // purpose: API Gateway may no longer invoke the orders function.
    let policy = cloud.aws(&["lambda", "get-policy", "--function-name", "webapp-orders"]);
    let doc: Value = serde_json::from_str(policy["Policy"].as_str().unwrap()).unwrap();
    for s in doc["Statement"].as_array().unwrap() {
        cloud.aws(&[
            "lambda",
            "remove-permission",
            "--function-name",
            "webapp-orders",
            "--statement-id",
            s["Sid"].as_str().unwrap(),
        ]);
    }
    let broken = cloud.infra(w.path(), &["check", "--timeout", "5s", "--json"]);
    broken.code(1);
    let report: Value = serde_json::from_str(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed: Vec<&Value> = report["checks"].as_array().unwrap().iter().filter(|c| c["ok"] == false).collect();
    assert!(
        failed.iter().any(|c| c["check"] == "GET /api/orders" && c["detail"].as_str().unwrap().starts_with('5')),
        "{report:#}"
    );
    let text = cloud.infra(w.path(), &["check", "--timeout", "5s"]);
    text.code(1);
    assert!(text.stdout.contains("FAIL  backend.stage"), "{}", text.stdout);
    // apply repairs the drift, and the check passes again.
    cloud.infra(w.path(), &["apply", "--auto-approve", "--check", "--check-timeout", "2m"]).ok();

    // 6b. Partners read an order with an API key of the stage's usage plan:
    // without one (or with a wrong one) API Gateway refuses, with it the
    // route answers; the key's value, read with the CLI, never appears in
    // the tool's output.
    w.edit(
        r#"      - { method: GET, path: "/api/orders/{id}", function: orders }"#,
        r#"      - { method: GET, path: "/api/orders/{id}", function: orders, auth: api_key }"#,
    );
    w.edit(
        "    user_pool: {}",
        "    user_pool: {}\n    api_keys: { clients: [partner], quota: { limit: 1000, period: day }, throttling: { rate_limit: 5, burst_limit: 10 } }",
    );
    let keyed = cloud.infra(w.path(), &["apply", "--auto-approve"]);
    keyed.ok();
    let keys = cloud.aws(&["apigateway", "get-api-keys", "--include-values"])["items"].clone();
    let key = keys.as_array().unwrap().iter().find(|k| k["name"] == "webapp-partner").expect("no partner key").clone();
    let value = key["value"].as_str().unwrap().to_string();
    assert!(!keyed.stdout.contains(&value) && !keyed.stderr.contains(&value), "the key's value was printed");
    let plans = cloud.aws(&["apigateway", "get-usage-plans"])["items"].clone();
    let plan = &plans[0];
    assert_eq!(plan["apiStages"], json!([{ "apiId": api_id, "stage": "prod" }]), "{plan}");
    assert_eq!(plan["quota"]["limit"], 1000);
    assert_eq!(plan["quota"]["period"], "DAY");
    let url = format!("{api}/api/orders/{id}");
    let curl_key = |k: Option<&str>| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--proxy", &cloud.proxy, "--cacert"]).arg(&cloud.ca);
        if let Some(k) = k {
            cmd.args(["-H", &format!("x-api-key: {k}")]);
        }
        let out = cmd.arg(&url).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(curl_key(None), "403", "no key");
    assert_eq!(curl_key(Some("not-a-key")), "403", "a wrong key");
    assert_eq!(curl_key(Some(&value)), "200", "the partner's key");
    cloud.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // 7. Destroy leaves nothing but the final snapshot and the table backup.
    let destroy = cloud.infra(w.path(), &["destroy", "--auto-approve"]);
    destroy.ok();
    assert!(cloud.aws(&["rds", "describe-db-instances"])["DBInstances"].as_array().unwrap().is_empty());
    let snaps = cloud.aws(&["rds", "describe-db-snapshots"]);
    assert_eq!(snaps["DBSnapshots"].as_array().unwrap().len(), 1, "{snaps}");
    let backups = cloud.aws(&["dynamodb", "list-backups"]);
    assert_eq!(backups["BackupSummaries"].as_array().unwrap().len(), 1, "{backups}");
    assert!(cloud.aws(&["dynamodb", "list-tables"])["TableNames"].as_array().unwrap().is_empty());
    let functions = cloud.aws(&["lambda", "list-functions"]);
    assert!(functions["Functions"].as_array().unwrap().is_empty(), "{functions}");
    assert!(cloud.aws(&["apigateway", "get-rest-apis"])["items"].as_array().is_none_or(Vec::is_empty));
    let dists = cloud.aws(&["cloudfront", "list-distributions"]);
    assert!(dists["DistributionList"]["Items"].as_array().is_none_or(Vec::is_empty), "{dists}");
    let vpcs = cloud.aws(&["ec2", "describe-vpcs", "--filters", "Name=tag:infra:stack,Values=webapp"]);
    assert!(vpcs["Vpcs"].as_array().unwrap().is_empty());
    cloud.infra(w.path(), &["plan", "--destroy", "--detailed-exitcode"]).code(0);
}
