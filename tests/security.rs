//! Secure by default (issue 19), read back with the AWS CLI from moto: the
//! reference stack as a new user deploys it, then its production overlay.
//! Each default is a setting of stack.yaml, so each is also read back
//! turned off where the file can turn it off.

mod common;

use common::{Moto, Workdir};
use serde_json::{Value, json};

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// The statement of `policy` (a JSON string) with this Sid.
fn statement(policy: &Value, sid: &str) -> Option<Value> {
    let doc: Value = serde_json::from_str(policy.as_str()?).ok()?;
    arr(&doc["Statement"]).into_iter().find(|s| s["Sid"] == sid)
}

fn assert_tls_only(moto: &Moto, bucket: &str) {
    let policy = moto.aws(&["s3api", "get-bucket-policy", "--bucket", bucket]);
    let deny = statement(&policy["Policy"], "DenyInsecureTransport")
        .unwrap_or_else(|| panic!("{bucket}: no TLS-only statement in {policy}"));
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Action"], "s3:*");
    assert_eq!(deny["Condition"], json!({ "Bool": { "aws:SecureTransport": "false" } }));
    assert_eq!(deny["Resource"], json!([format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]));
}

#[test]
fn the_reference_stack_is_hardened_by_default_and_prod_protects_what_it_must() {
    let moto = Moto::start();
    let w = Workdir::reference();
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let account = moto.aws(&["sts", "get-caller-identity"])["Account"].as_str().unwrap().to_string();

    // Buckets: the site's and the tool's lock bucket refuse plain HTTP; the
    // lock bucket is versioned and expires old versions.
    let buckets: Vec<String> = arr(&moto.aws(&["s3api", "list-buckets"])["Buckets"])
        .iter()
        .filter_map(|b| b["Name"].as_str().map(str::to_string))
        .collect();
    let site = buckets.iter().find(|b| b.starts_with("webapp-site-")).expect("no site bucket");
    assert_tls_only(&moto, site);
    let lock = format!("infra-locks-{account}-us-east-1");
    assert!(buckets.contains(&lock), "{buckets:?}");
    assert_tls_only(&moto, &lock);
    assert_eq!(moto.aws(&["s3api", "get-bucket-versioning", "--bucket", &lock])["Status"], "Enabled");
    let rules = moto.aws(&["s3api", "get-bucket-lifecycle-configuration", "--bucket", &lock]);
    assert_eq!(rules["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 30, "{rules}");

    // The load balancer drops invalid header fields; deletion protection
    // only in production.
    let lb = moto.aws(&["elbv2", "describe-load-balancers"])["LoadBalancers"][0]["LoadBalancerArn"]
        .as_str()
        .unwrap()
        .to_string();
    let lb_attr = |key: &str| {
        let attrs = moto.aws(&["elbv2", "describe-load-balancer-attributes", "--load-balancer-arn", &lb]);
        arr(&attrs["Attributes"]).into_iter().find(|a| a["Key"] == key).map(|a| a["Value"].clone())
    };
    assert_eq!(lb_attr("routing.http.drop_invalid_header_fields.enabled"), Some(json!("true")));
    assert_eq!(lb_attr("deletion_protection.enabled"), Some(json!("false")));

    // The API stage is traced; the functions' logs are kept a year.
    let api = moto.aws(&["apigateway", "get-rest-apis"])["items"][0]["id"].as_str().unwrap().to_string();
    let stage = moto.aws(&["apigateway", "get-stage", "--rest-api-id", &api, "--stage-name", "prod"]);
    assert_eq!(stage["tracingEnabled"], true, "{stage}");
    let groups = moto.aws(&["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/webapp-"]);
    let groups = arr(&groups["logGroups"]);
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.iter().all(|g| g["retentionInDays"] == 365), "{groups:?}");

    // The database: IAM authentication, its logs in CloudWatch Logs.
    let db = moto.aws(&["rds", "describe-db-instances"])["DBInstances"][0].clone();
    assert_eq!(db["IAMDatabaseAuthenticationEnabled"], true, "{db}");
    assert_eq!(db["EnabledCloudwatchLogsExports"], json!(["postgresql", "upgrade"]), "{db}");
    assert_eq!(db["DeletionProtection"], false);
    // Enhanced Monitoring every minute, with a role RDS assumes for this
    // account only and AWS's managed policy for the metrics.
    assert_eq!(db["MonitoringInterval"], 60, "{db}");
    let monitoring_role = "webapp-rds-monitoring-us-east-1";
    assert!(db["MonitoringRoleArn"].as_str().is_some_and(|a| a.ends_with(&format!("/{monitoring_role}"))), "{db}");
    assert!(db["EnhancedMonitoringResourceArn"].as_str().is_some_and(|a| a.contains("RDSOSMetrics")), "{db}");
    let attached = moto.aws(&["iam", "list-attached-role-policies", "--role-name", monitoring_role]);
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyArn"],
        "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
        "{attached}"
    );

    // Writes need a signed-in user: the method's authorizer is the stack's pool's.
    let resources = arr(&moto.aws(&["apigateway", "get-resources", "--rest-api-id", &api])["items"]);
    let orders = resources.iter().find(|r| r["path"] == "/api/orders").unwrap()["id"].as_str().unwrap().to_string();
    let method = |verb: &str| {
        moto.aws(&["apigateway", "get-method", "--rest-api-id", &api, "--resource-id", &orders, "--http-method", verb])
    };
    assert_eq!(method("POST")["authorizationType"], "COGNITO_USER_POOLS");
    assert_eq!(method("GET")["authorizationType"], "NONE");
    let authorizers = arr(&moto.aws(&["apigateway", "get-authorizers", "--rest-api-id", &api])["items"]);
    let pools = arr(&moto.aws(&["cognito-idp", "list-user-pools", "--max-results", "60"])["UserPools"]);
    assert_eq!(pools.len(), 1, "{pools:?}");
    let pool = moto.aws(&["cognito-idp", "describe-user-pool", "--user-pool-id", pools[0]["Id"].as_str().unwrap()]);
    assert_eq!(authorizers[0]["providerARNs"], json!([pool["UserPool"]["Arn"]]));
    assert_eq!(pool["UserPool"]["Policies"]["PasswordPolicy"]["MinimumLength"], 15);
    assert_eq!(pool["UserPool"]["DeletionProtection"], "INACTIVE");
    // Every inline policy of the stack's roles, as IAM holds it, passes
    // parliament (the IAM policy linter security teams run): no unknown
    // action, no resource an action cannot take, no needless `*`.
    let roles_listed = moto.aws(&["iam", "list-roles", "--path-prefix", "/infra/webapp/us-east-1/"]);
    let roles: Vec<String> =
        arr(&roles_listed["Roles"]).iter().filter_map(|r| r["RoleName"].as_str().map(str::to_string)).collect();
    assert!(roles.len() >= 4, "functions, instances and flow logs: {roles:?}");
    // Trust: the services that send `aws:SourceAccount` (Lambda, VPC Flow
    // Logs) may assume the stack's roles only for this account; EC2 sends
    // none, so the instance roles have no such condition.
    let account = moto.aws(&["sts", "get-caller-identity"])["Account"].clone();
    let mut conditioned = 0;
    for r in arr(&roles_listed["Roles"]) {
        let trust = &r["AssumeRolePolicyDocument"]["Statement"][0];
        let service = trust["Principal"]["Service"].as_str().unwrap_or_default();
        if service == "ec2.amazonaws.com" {
            assert!(trust.get("Condition").is_none(), "{r}");
        } else {
            assert_eq!(trust["Condition"]["StringEquals"]["aws:SourceAccount"], account, "{r}");
            conditioned += 1;
        }
    }
    assert!(conditioned >= 4, "two functions, the flow logs and RDS monitoring: {conditioned}");
    let mut linted = 0;
    for role in &roles {
        let names = moto.aws(&["iam", "list-role-policies", "--role-name", role]);
        for name in arr(&names["PolicyNames"]).iter().filter_map(Value::as_str) {
            let doc =
                &moto.aws(&["iam", "get-role-policy", "--role-name", role, "--policy-name", name])["PolicyDocument"];
            let out = std::process::Command::new("parliament")
                .args(["--string", &doc.to_string()])
                .output()
                .expect("parliament not found (pip install parliament)");
            let findings = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && findings.trim().is_empty(), "{role}/{name}: {findings}\n{doc}");
            linted += 1;
        }
    }
    assert!(linted >= 5, "only {linted} policies linted");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Production: what holds data, and the load balancer, cannot be deleted
    // (by infra or AWS).
    moto.infra(w.path(), &["apply", "--auto-approve", "-e", "prod"]).ok();
    let prod_db = arr(&moto.aws(&["rds", "describe-db-instances"])["DBInstances"])
        .into_iter()
        .find(|d| d["DBInstanceIdentifier"].as_str().is_some_and(|i| i.contains("prod")))
        .expect("no prod database");
    assert_eq!(prod_db["DeletionProtection"], true);
    let prod_lb = arr(&moto.aws(&["elbv2", "describe-load-balancers"])["LoadBalancers"])
        .into_iter()
        .find(|l| l["LoadBalancerName"].as_str().is_some_and(|n| n.contains("prod")))
        .expect("no prod load balancer");
    let attrs = moto.aws(&[
        "elbv2",
        "describe-load-balancer-attributes",
        "--load-balancer-arn",
        prod_lb["LoadBalancerArn"].as_str().unwrap(),
    ]);
    assert!(
        arr(&attrs["Attributes"]).iter().any(|a| a["Key"] == "deletion_protection.enabled" && a["Value"] == "true"),
        "{attrs}"
    );
    let prod_pool = arr(&moto.aws(&["cognito-idp", "list-user-pools", "--max-results", "60"])["UserPools"])
        .into_iter()
        .find(|p| p["Name"].as_str().is_some_and(|n| n.contains("prod")))
        .expect("no prod user pool");
    let prod_pool =
        moto.aws(&["cognito-idp", "describe-user-pool", "--user-pool-id", prod_pool["Id"].as_str().unwrap()]);
    assert_eq!(prod_pool["UserPool"]["DeletionProtection"], "ACTIVE");
    let refused = moto.infra(w.path(), &["destroy", "--auto-approve", "-e", "prod"]);
    refused.code(1);
    assert!(
        refused.stderr.contains("backend.user_pool") && refused.stderr.contains("compute.lb"),
        "{}",
        refused.stderr
    );

    // Each default is the file's to change: turned off, read back off.
    w.edit("    stage: prod\n", "    stage: prod\n    tracing: false\n");
    w.edit(
        "    apply_immediately: true\n",
        "    apply_immediately: true\n    iam_auth: false\n    log_exports: []\n    monitoring_interval: 0\n",
    );
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let stage = moto.aws(&["apigateway", "get-stage", "--rest-api-id", &api, "--stage-name", "prod"]);
    assert_eq!(stage["tracingEnabled"], false, "{stage}");
    let db = moto.aws(&[
        "rds",
        "describe-db-instances",
        "--db-instance-identifier",
        db["DBInstanceIdentifier"].as_str().unwrap(),
    ])["DBInstances"][0]
        .clone();
    assert_eq!(db["IAMDatabaseAuthenticationEnabled"], false, "{db}");
    assert!(arr(&db["EnabledCloudwatchLogsExports"]).is_empty(), "{db}");
    assert_eq!(db["MonitoringInterval"], 0, "{db}");
    let roles = moto.aws(&["iam", "list-roles", "--path-prefix", "/infra/webapp/us-east-1/"]);
    assert!(!arr(&roles["Roles"]).iter().any(|r| r["RoleName"] == monitoring_role), "{roles}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);
}

/// Runs parliament (the IAM policy linter security teams run) on `doc`.
fn assert_lints_clean(doc: &str, what: &str) {
    let out = std::process::Command::new("parliament")
        .args(["--string", doc])
        .output()
        .expect("parliament not found (pip install parliament)");
    let findings = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && findings.trim().is_empty(), "{what}: {findings}\n{doc}");
}

/// `infra policy` (issue 18): the deploy role's policy passes parliament;
/// its writes reach only the stack's resources (by name, or by the
/// `infra:stack` tag); a saved destroy plan's policy covers deleting what
/// the file no longer has. Which actions it holds is checked against the
/// calls of every integration test by scripts/test.sh (`--covered`).
#[test]
fn the_deploy_policy_passes_parliament_and_writes_only_to_the_stack() {
    let moto = Moto::start();
    let w = Workdir::reference();
    let run = moto.infra(w.path(), &["policy"]);
    run.ok();
    assert_lints_clean(&run.stdout, "the reference stack's deploy policy");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    // The account is the caller's, from STS.
    let account = moto.aws(&["sts", "get-caller-identity"])["Account"].as_str().unwrap().to_string();
    let statements = arr(&doc["Statement"]);
    let allowing = |action: &str| -> Vec<Value> {
        statements.iter().filter(|s| arr(&s["Action"]).iter().any(|a| a == action)).cloned().collect()
    };
    let one = |action: &str| -> Value {
        let found = allowing(action);
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        found[0].clone()
    };
    let roles = format!("arn:aws:iam::{account}:role/infra/webapp/*");
    assert_eq!(
        one("iam:DeleteRole")["Resource"],
        json!([format!("arn:aws:iam::{account}:instance-profile/infra/webapp/*"), roles])
    );
    let pass = one("iam:PassRole");
    assert_eq!(pass["Resource"], json!([roles]));
    let services = arr(&pass["Condition"]["StringEquals"]["iam:PassedToService"]);
    assert!(services.contains(&json!("lambda.amazonaws.com")) && services.len() == 4, "{pass}");
    assert_eq!(
        one("lambda:DeleteFunction")["Resource"],
        json!([format!("arn:aws:lambda:us-east-1:{account}:function:webapp-*")])
    );
    assert_eq!(
        one("dynamodb:DeleteTable")["Resource"],
        json!([format!("arn:aws:dynamodb:us-east-1:{account}:table/webapp-*")])
    );
    assert_eq!(
        one("rds:DeleteDBInstance")["Resource"][0],
        json!(format!("arn:aws:rds:us-east-1:{account}:db:webapp-*"))
    );
    // EC2 ids are random: what exists by its tag, what a call makes by the
    // tags the call writes.
    assert_eq!(
        one("ec2:DeleteSubnet")["Condition"],
        json!({"StringEquals": {"aws:ResourceTag/infra:stack": "webapp"}})
    );
    assert_eq!(one("ec2:CreateVpc")["Condition"], json!({"StringEquals": {"aws:RequestTag/infra:stack": "webapp"}}));
    let tagging = allowing("ec2:CreateTags");
    assert_eq!(
        tagging.len(),
        3,
        "tags written by a create, changed on what is the stack's, or by a launch: {tagging:?}"
    );
    assert!(tagging.iter().any(|s| s["Condition"] == json!({"StringEquals": {"ec2:CreateAction": ["RunInstances"]}})));
    // `*` only for actions IAM scopes to no resource.
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(common::repo_root().join("policy/actions.json")).unwrap())
            .unwrap();
    for s in statements.iter().filter(|s| s["Resource"] == json!(["*"])) {
        for a in arr(&s["Action"]) {
            let resources = &table["actions"][a.as_str().unwrap()]["resources"];
            assert!(arr(resources).iter().all(|r| r["required"] == false), "{a} on *: {resources}");
        }
    }
    // Reads reach every resource of a type (the tool reads the tags of what
    // is not the stack's to find what is); the writes of the services whose
    // ARNs hold names reach only the stack's names (and its lock).
    let reads = |a: &str| {
        let access = table["actions"][a]["access"].as_str().unwrap_or_default();
        matches!(access, "List" | "Read")
            || a.contains(":ListTags")
            || a.ends_with(":DescribeTags")
            || a.ends_with(":GetBucketTagging")
    };
    let named = ["iam", "lambda", "dynamodb", "logs", "s3", "autoscaling", "elasticloadbalancing"];
    let mut checked = 0;
    for s in statements.iter().filter(|s| s.get("Condition").is_none()) {
        let list = arr(&s["Action"]);
        let actions: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        if actions.iter().any(|a| reads(a)) || !actions.iter().all(|a| named.contains(&a.split(':').next().unwrap())) {
            continue;
        }
        for r in arr(&s["Resource"]).iter().filter_map(Value::as_str) {
            assert!(r.contains("webapp") || r.contains(":::infra-locks-"), "{} writes to {r}", s["Sid"]);
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
    // In parts that each fit one managed policy (6,144 characters, white
    // space not counted), each clean, together the whole.
    let parts = moto.infra(w.path(), &["policy", "--out-dir", "deploy-policy"]);
    parts.ok();
    let files: Vec<&str> = parts.stdout.lines().collect();
    assert!(files.len() >= 2, "{}", parts.stdout);
    let mut together = 0;
    for f in &files {
        let text = std::fs::read_to_string(w.path().join(f)).unwrap();
        assert!(text.chars().filter(|c| !c.is_whitespace()).count() <= 6144, "{f}");
        assert_lints_clean(&text, f);
        let part: Value = serde_json::from_str(&text).unwrap();
        together += arr(&part["Statement"]).iter().map(|s| arr(&s["Action"]).len()).sum::<usize>();
    }
    assert!(together >= statements.iter().map(|s| arr(&s["Action"]).len()).sum::<usize>());
    // One policy for the stack and its pull-request stacks.
    let previews = moto.infra(w.path(), &["policy", "--stacks", "webapp*"]);
    previews.ok();
    assert_lints_clean(&previews.stdout, "the policy of webapp*");
    assert!(previews.stdout.contains("\"StringLike\"") && previews.stdout.contains("role/infra/webapp*/*"));
    // With --account no AWS call is made (moto's identity would differ).
    let offline = moto.infra(w.path(), &["policy", "--account", "210987654321"]);
    offline.ok();
    assert!(offline.stdout.contains("arn:aws:iam::210987654321:role/infra/webapp/*"));
    moto.infra(w.path(), &["policy", "--account", "12345"]).code(1);

    // A file of the network alone writes no user pools; the saved destroy
    // plan of the deployed reference stack does delete them.
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    moto.infra(w.path(), &["plan", "--destroy", "-o", "destroy.json"]).ok();
    let network = tempfile::tempdir().unwrap();
    moto.infra(network.path(), &["--stack", "webapp", "init", ".", "--tiers", "network"]).ok();
    let small = moto.infra(network.path(), &["policy"]);
    small.ok();
    assert_lints_clean(&small.stdout, "a network-only stack's deploy policy");
    assert!(!small.stdout.contains("cognito-idp:DeleteUserPool"), "{}", small.stdout);
    assert!(small.stdout.contains("cognito-idp:ListUserPools"), "a plan reads every kind");
    let destroy = moto.infra(w.path(), &["policy", "--plan", "destroy.json"]);
    destroy.ok();
    assert_lints_clean(&destroy.stdout, "the destroy plan's policy");
    assert!(destroy.stdout.contains("cognito-idp:DeleteUserPool"));
}
