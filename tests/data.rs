//! The data tier against moto, read back with the AWS CLI: RDS Multi-AZ with
//! a managed secret, DynamoDB with streams and PITR, in-place changes, and
//! destroys that keep backups or refuse to delete protected data.

mod common;

use common::{Moto, Run, Workdir, tag};
use serde_json::Value;

/// `aws rds ...`. The AWS CLI v1 overrides AWS_ENDPOINT_URL for RDS with its
/// own (legacy `update_endpoint_url` customization), so pass moto's explicitly.
fn rds(moto: &Moto, args: &[&str]) -> Value {
    let mut a = vec!["rds"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--endpoint-url", &moto.endpoint]);
    moto.aws(&a)
}

fn db(moto: &Moto, id: &str) -> Value {
    rds(moto, &["describe-db-instances", "--db-instance-identifier", id])["DBInstances"][0].clone()
}

fn table(moto: &Moto, name: &str) -> Value {
    moto.aws(&["dynamodb", "describe-table", "--table-name", name])["Table"].clone()
}

fn table_names(moto: &Moto) -> Vec<String> {
    moto.aws(&["dynamodb", "list-tables"])["TableNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn instance_ids(moto: &Moto) -> Vec<String> {
    rds(moto, &["describe-db-instances"])["DBInstances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["DBInstanceIdentifier"].as_str().unwrap().to_string())
        .collect()
}

/// Id of the EC2 resource tagged with `address`.
fn ec2_id(moto: &Moto, describe: &str, list: &str, id_key: &str, stack: &str, address: &str) -> String {
    moto.ec2_by_stack(describe, list, stack)
        .into_iter()
        .find(|r| tag(r, "infra:address") == Some(address))
        .unwrap_or_else(|| panic!("no {address}"))[id_key]
        .as_str()
        .unwrap()
        .to_string()
}

fn sorted(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v.as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_string()).collect();
    out.sort();
    out
}

/// Asserts the secret's value is in none of the runs' output.
fn assert_no_secret(secret: &str, runs: &[&Run]) {
    assert!(secret.len() >= 6, "suspiciously short password: the check would be vacuous");
    for r in runs {
        assert!(!r.stdout.contains(secret), "password in stdout:\n{}", r.stdout);
        assert!(!r.stderr.contains(secret), "password in stderr:\n{}", r.stderr);
    }
}

/// Must show 1, 3 (unprotected destroy) and 4 on the reference stack.
#[test]
fn reference_stack_data_tier_applies_reads_back_and_destroys_keeping_backups() {
    let moto = Moto::start();
    let w = Workdir::reference();
    let apply = moto.infra(w.path(), &["apply", "--auto-approve", "-v"]);
    apply.ok();

    // The subnet group spans the private subnets.
    let group = &rds(&moto, &["describe-db-subnet-groups", "--db-subnet-group-name", "webapp-db"])["DBSubnetGroups"][0];
    let mut private = vec![
        ec2_id(&moto, "describe-subnets", "Subnets", "SubnetId", "webapp", "network.subnet.private.us-east-1a"),
        ec2_id(&moto, "describe-subnets", "Subnets", "SubnetId", "webapp", "network.subnet.private.us-east-1b"),
    ];
    private.sort();
    assert_eq!(sorted(&group["Subnets"], "SubnetIdentifier"), private);

    // The instance: Multi-AZ, encrypted, private, in the database group, managed secret.
    let d = db(&moto, "webapp-db");
    assert_eq!(d["Engine"], "postgres");
    assert!(d["EngineVersion"].as_str().unwrap().starts_with("16"), "{d}");
    assert_eq!(d["DBInstanceClass"], "db.t3.micro");
    assert_eq!(d["AllocatedStorage"], 20);
    assert_eq!(d["StorageType"], "gp3");
    assert_eq!(d["MultiAZ"], true);
    assert_eq!(d["StorageEncrypted"], true);
    assert_eq!(d["PubliclyAccessible"], false);
    assert_eq!(d["DBName"], "app");
    assert_eq!(d["MasterUsername"], "app_admin");
    assert_eq!(d["BackupRetentionPeriod"], 7);
    assert_eq!(d["PreferredBackupWindow"], "03:00-04:00");
    assert_eq!(d["PreferredMaintenanceWindow"], "sun:04:30-sun:05:30");
    assert_eq!(d["DeletionProtection"], false);
    assert_eq!(d["DBSubnetGroup"]["DBSubnetGroupName"], "webapp-db");
    let db_sg = ec2_id(&moto, "describe-security-groups", "SecurityGroups", "GroupId", "webapp", "network.sg.database");
    assert_eq!(sorted(&d["VpcSecurityGroups"], "VpcSecurityGroupId"), vec![db_sg.clone()]);
    assert_eq!(tag(&serde_json::json!({"Tags": d["TagList"]}), "infra:address"), Some("data.database"));
    let secret_arn = d["MasterUserSecret"]["SecretArn"].as_str().expect("no managed secret").to_string();
    let described = moto.aws(&["secretsmanager", "describe-secret", "--secret-id", &secret_arn]);
    assert_eq!(described["ARN"], secret_arn.as_str());
    // Read now: the managed secret goes away with the instance.
    let password = password_of(&moto, &secret_arn);
    // The database group lets the web and function groups in on PostgreSQL's port.
    let sg = moto.aws(&["ec2", "describe-security-groups", "--group-ids", &db_sg])["SecurityGroups"][0].clone();
    assert!(sg["IpPermissions"].as_array().unwrap().iter().all(|p| p["FromPort"] == 5432), "{sg}");

    // The table: keys, stream and its view type, PITR, TTL, index.
    let t = table(&moto, "webapp-orders");
    let keys: Vec<(String, String)> = t["KeySchema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap().into(), k["KeyType"].as_str().unwrap().into()))
        .collect();
    assert_eq!(keys, vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]);
    assert_eq!(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(t["StreamSpecification"]["StreamEnabled"], true);
    assert_eq!(t["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert!(t["LatestStreamArn"].as_str().is_some_and(|a| a.contains("webapp-orders/stream/")));
    assert_eq!(sorted(&t["GlobalSecondaryIndexes"], "IndexName"), vec!["by_status"]);
    let pitr = moto.aws(&["dynamodb", "describe-continuous-backups", "--table-name", "webapp-orders"]);
    assert_eq!(
        pitr["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        "ENABLED"
    );
    let ttl = moto.aws(&["dynamodb", "describe-time-to-live", "--table-name", "webapp-orders"]);
    assert_eq!(ttl["TimeToLiveDescription"]["AttributeName"], "expires_at");
    let tags = moto.aws(&["dynamodb", "list-tags-of-resource", "--resource-arn", t["TableArn"].as_str().unwrap()]);
    assert_eq!(tag(&tags, "infra:address"), Some("data.table.orders"));

    // Nothing left to do.
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode", "-v"]);
    plan.code(0);
    let trace = moto.infra(w.path(), &["plan", "-vvv"]);
    trace.ok();

    // Destroy keeps a final snapshot and a table backup, and deletes the rest.
    let destroy = moto.infra(w.path(), &["destroy", "--auto-approve", "-v"]);
    destroy.ok();
    assert!(destroy.stdout.contains("DATA-LOSS RISK"), "{}", destroy.stdout);
    assert!(destroy.stdout.contains("final snapshot webapp-db-final-"), "{}", destroy.stdout);
    assert!(destroy.stdout.contains("backup webapp-orders-final-"), "{}", destroy.stdout);
    let snaps = rds(&moto, &["describe-db-snapshots", "--snapshot-type", "manual"])["DBSnapshots"].clone();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let snap_id = snaps[0]["DBSnapshotIdentifier"].as_str().unwrap();
    assert!(snap_id.starts_with("webapp-db-final-"), "{snap_id}");
    assert!(destroy.stdout.contains(snap_id), "the printed id is the snapshot's");
    let backups = moto.aws(&["dynamodb", "list-backups"])["BackupSummaries"].clone();
    let backups = backups.as_array().unwrap();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0]["TableName"], "webapp-orders");
    assert!(destroy.stdout.contains(backups[0]["BackupArn"].as_str().unwrap()));
    assert!(instance_ids(&moto).is_empty());
    assert!(table_names(&moto).is_empty());
    assert!(
        rds(&moto, &["describe-db-subnet-groups"])["DBSubnetGroups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["DBSubnetGroupName"] != "webapp-db")
    );
    assert!(moto.ec2_by_stack("describe-vpcs", "Vpcs", "webapp").is_empty());

    // The password RDS generated is nowhere in what the tool printed.
    let runs = [&apply, &plan, &trace, &destroy];
    assert_no_secret(&password, &runs);
}

/// The master password, read from its managed secret (the tool never reads it).
fn password_of(moto: &Moto, secret_arn: &str) -> String {
    let value = moto.aws(&["secretsmanager", "get-secret-value", "--secret-id", secret_arn]);
    let creds: Value = serde_json::from_str(value["SecretString"].as_str().unwrap()).unwrap();
    creds["password"].as_str().unwrap().to_string()
}

const SMALL: &str = r#"
stack: shop
region: us-east-1
network:
  cidr: 10.1.0.0/16
data:
  database:
    engine: mysql
    engine_version: "8.0.42"
    instance_class: db.t3.micro
    username: shop_admin
    backup_retention_days: 3
  tables:
    orders:
      partition_key: { name: pk, type: S }
      billing: { provisioned: { read: 2, write: 2 } }
      stream: keys_only
      indexes:
        - { name: by_status, partition_key: { name: status, type: S }, projection: keys_only }
"#;

/// Must show 2: a class change and a new index plan and apply in place; an
/// index is removed in place too; key or engine changes are data-loss risks.
#[test]
fn class_change_and_index_changes_apply_in_place() {
    let moto = Moto::start();
    let w = Workdir::with_stack(SMALL);
    let first = moto.infra(w.path(), &["apply", "--auto-approve", "-vv"]);
    first.ok();
    let before = db(&moto, "shop-db");
    let password = password_of(&moto, before["MasterUserSecret"]["SecretArn"].as_str().unwrap());
    assert_eq!(before["DBInstanceClass"], "db.t3.micro");
    assert_eq!(before["Engine"], "mysql");
    // The default database rule follows the engine's port.
    let db_sg = ec2_id(&moto, "describe-security-groups", "SecurityGroups", "GroupId", "shop", "network.sg.database");
    let sg = moto.aws(&["ec2", "describe-security-groups", "--group-ids", &db_sg])["SecurityGroups"][0].clone();
    assert!(sg["IpPermissions"].as_array().unwrap().iter().all(|p| p["FromPort"] == 3306), "{sg}");
    let t0 = table(&moto, "shop-orders");
    assert_eq!(t0["ProvisionedThroughput"]["ReadCapacityUnits"], 2);
    assert_eq!(t0["StreamSpecification"]["StreamViewType"], "KEYS_ONLY");

    w.edit("instance_class: db.t3.micro", "instance_class: db.t3.small");
    w.edit(
        "projection: keys_only }\n",
        "projection: keys_only }\n        - { name: by_day, partition_key: { name: day, type: S }, sort_key: { name: pk, type: S }, projection: { include: [total] }, provisioned: { read: 1, write: 1 } }\n",
    );
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("data.database (rds.db_instance) will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("instance_class: \"db.t3.micro\" → \"db.t3.small\""), "{}", plan.stdout);
    assert!(plan.stdout.contains("note: DOWNTIME"), "{}", plan.stdout);
    assert!(plan.stdout.contains("data.table.orders (dynamodb.table) will be updated in place"), "{}", plan.stdout);
    assert!(plan.stdout.contains("index by_day is built in the background"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("replaced") && !plan.stdout.contains("DATA-LOSS"), "{}", plan.stdout);
    assert!(plan.stdout.contains("0 to add, 2 to change, 0 to replace, 0 to destroy"), "{}", plan.stdout);

    let second = moto.infra(w.path(), &["apply", "--auto-approve", "-v"]);
    second.ok();
    assert_no_secret(&password, &[&first, &plan, &second]);
    let after = db(&moto, "shop-db");
    assert_eq!(after["DBInstanceClass"], "db.t3.small");
    assert_eq!(after["InstanceCreateTime"], before["InstanceCreateTime"], "same instance");
    let t1 = table(&moto, "shop-orders");
    assert_eq!(t1["CreationDateTime"], t0["CreationDateTime"], "same table");
    assert_eq!(sorted(&t1["GlobalSecondaryIndexes"], "IndexName"), vec!["by_day", "by_status"]);
    let by_day =
        t1["GlobalSecondaryIndexes"].as_array().unwrap().iter().find(|i| i["IndexName"] == "by_day").unwrap().clone();
    assert_eq!(by_day["Projection"]["ProjectionType"], "INCLUDE");
    assert_eq!(by_day["Projection"]["NonKeyAttributes"], serde_json::json!(["total"]));
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Removing an index is in place too.
    w.edit("        - { name: by_status, partition_key: { name: status, type: S }, projection: keys_only }\n", "");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("index by_status is removed"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert_eq!(sorted(&table(&moto, "shop-orders")["GlobalSecondaryIndexes"], "IndexName"), vec!["by_day"]);
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // Turning the stream off is in place. (Turning one back on or changing
    // its view type cannot be shown: moto refuses to re-enable a stream.)
    w.edit("      stream: keys_only\n", "");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    assert!(plan.stdout.contains("disabling the stream"), "{}", plan.stdout);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let t2 = table(&moto, "shop-orders");
    assert_ne!(t2["StreamSpecification"]["StreamEnabled"], true, "{t2}");
    moto.infra(w.path(), &["plan", "--detailed-exitcode"]).code(0);

    // A key schema change or an engine change would replace: marked as a data-loss risk.
    w.edit("partition_key: { name: pk, type: S }", "partition_key: { name: id, type: S }");
    w.edit("engine: mysql", "engine: mariadb");
    w.edit("engine_version: \"8.0.42\"", "engine_version: \"10.11.11\"");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(2);
    for a in ["data.table.orders (dynamodb.table) will be replaced", "data.database (rds.db_instance) will be replaced"]
    {
        let line = plan.stdout.lines().find(|l| l.contains(a)).unwrap_or_else(|| panic!("no {a} in {}", plan.stdout));
        assert!(line.contains("DATA-LOSS RISK"), "{line}");
    }
}

const PROTECTED: &str = r#"
stack: vault
region: us-east-1
network:
  cidr: 10.2.0.0/16
data:
  database:
    engine: postgres
    deletion_protection: true
  tables:
    orders:
      partition_key: { name: pk, type: S }
      deletion_protection: true
    events:
      partition_key: { name: id, type: S }
      sort_key: { name: at, type: N }
"#;

/// Must show 3: protection makes destroy refuse and delete nothing; removing
/// a table from the file backs it up first; lifting protection then
/// `--skip-final-backup` deletes without backups.
#[test]
fn deletion_protection_refuses_and_skip_final_backup_skips() {
    let moto = Moto::start();
    let w = Workdir::with_stack(PROTECTED);
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert_eq!(db(&moto, "vault-db")["DeletionProtection"], true);
    assert_eq!(table(&moto, "vault-orders")["DeletionProtectionEnabled"], true);

    let refused = moto.infra(w.path(), &["destroy", "--auto-approve"]);
    refused.code(1);
    for s in ["refusing to delete", "data.database", "data.table.orders", "deletion_protection: false"] {
        assert!(refused.stderr.contains(s), "{s:?} not in {}", refused.stderr);
    }
    assert!(!refused.stderr.contains("data.table.events"), "{}", refused.stderr);
    // Nothing at all was deleted.
    assert_eq!(instance_ids(&moto), vec!["vault-db".to_string()]);
    let mut names = table_names(&moto);
    names.sort();
    assert_eq!(names, vec!["vault-events".to_string(), "vault-orders".to_string()]);
    assert_eq!(moto.ec2_by_stack("describe-vpcs", "Vpcs", "vault").len(), 1);
    assert!(moto.aws(&["dynamodb", "list-backups"])["BackupSummaries"].as_array().unwrap().is_empty());

    // Apply refuses to replace a protected table (a key schema change), and changes nothing.
    w.edit(
        "    orders:\n      partition_key: { name: pk, type: S }",
        "    orders:\n      partition_key: { name: id, type: S }",
    );
    let refused = moto.infra(w.path(), &["apply", "--auto-approve"]);
    refused.code(1);
    assert!(refused.stderr.contains("refusing to delete data.table.orders"), "{}", refused.stderr);
    assert_eq!(table(&moto, "vault-orders")["KeySchema"][0]["AttributeName"], "pk");
    w.edit(
        "    orders:\n      partition_key: { name: id, type: S }",
        "    orders:\n      partition_key: { name: pk, type: S }",
    );

    // A table removed from the file: a data-loss risk in the plan, backed up before deletion.
    let events = "    events:\n      partition_key: { name: id, type: S }\n      sort_key: { name: at, type: N }\n";
    w.edit(events, "");
    let plan = moto.infra(w.path(), &["plan"]);
    plan.ok();
    let line = plan.stdout.lines().find(|l| l.contains("data.table.events")).unwrap().to_string();
    assert!(line.contains("will be destroyed") && line.contains("DATA-LOSS RISK"), "{line}");
    let apply = moto.infra(w.path(), &["apply", "--auto-approve"]);
    apply.ok();
    assert!(apply.stdout.contains("backup vault-events-final-"), "{}", apply.stdout);
    let backups = moto.aws(&["dynamodb", "list-backups"])["BackupSummaries"].clone();
    assert_eq!(sorted(&backups, "TableName"), vec!["vault-events"]);
    assert!(!table_names(&moto).contains(&"vault-events".to_string()));

    // Lift the protection (in place), then destroy without final backups.
    w.edit("    deletion_protection: true\n  tables", "    deletion_protection: false\n  tables");
    w.edit("      deletion_protection: true\n", "      deletion_protection: false\n");
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    assert_eq!(db(&moto, "vault-db")["DeletionProtection"], false);
    assert_eq!(table(&moto, "vault-orders")["DeletionProtectionEnabled"], false);
    let destroy = moto.infra(w.path(), &["destroy", "--auto-approve", "--skip-final-backup"]);
    destroy.ok();
    assert!(destroy.stdout.contains("no final snapshot (--skip-final-backup)"), "{}", destroy.stdout);
    assert!(instance_ids(&moto).is_empty());
    assert!(table_names(&moto).is_empty());
    assert!(
        rds(&moto, &["describe-db-snapshots", "--snapshot-type", "manual"])["DBSnapshots"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Only the earlier backup of `events`.
    assert_eq!(moto.aws(&["dynamodb", "list-backups"])["BackupSummaries"].as_array().unwrap().len(), 1);
}

/// Bad data settings fail before any AWS call, located, saying what to do.
#[test]
fn invalid_data_section_fails_validation_without_aws() {
    let w = Workdir::with_stack(
        r#"
stack: shop
region: us-east-1
network:
  cidr: 10.1.0.0/16
data:
  database:
    engine: postgres
    storage_gb: 10
    username: rdsadmin
    backup_window: "04:00-04:10"
  tables:
    orders:
      partition_key: { name: pk, type: S }
      indexes:
        - { name: by_pk, partition_key: { name: pk, type: N } }
"#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(["validate"])
        .current_dir(w.path())
        // Unreachable endpoint: a call to AWS would fail differently.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let run = Run::from(out);
    run.code(1);
    for s in [
        "data.database.storage_gb",
        "data.database.username",
        "data.database.backup_window",
        "data.tables.orders.indexes[0].partition_key.type",
    ] {
        assert!(run.stderr.contains(s), "{s:?} not in {}", run.stderr);
    }
}

const CLASS: &str = "instance_class: db.t3.micro";

/// Issue 15: versions the way RDS manages them. A major pin follows RDS's
/// minor upgrades, a full version is a floor, an older major is refused, an
/// unknown version fails at plan time naming the offered ones.
#[test]
fn engine_versions_follow_rds_minor_upgrades_and_never_go_back() {
    let moto = Moto::start();
    let w = Workdir::with_stack(
        &SMALL
            .replace("engine: mysql", "engine: postgres")
            .replace("engine_version: \"8.0.42\"", "engine_version: \"16\""),
    );
    moto.infra(w.path(), &["apply", "--auto-approve"]).ok();
    let id = "shop-db";
    assert_eq!(db(&moto, id)["AutoMinorVersionUpgrade"], true);

    // RDS applies a minor upgrade (here by hand): not drift.
    rds(
        &moto,
        &["modify-db-instance", "--db-instance-identifier", id, "--engine-version", "16.9", "--apply-immediately"],
    );
    assert_eq!(db(&moto, id)["EngineVersion"], "16.9");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(0);
    assert!(plan.stdout.contains("runs postgres 16.9, which meets engine_version \"16\""), "{}", plan.stdout);

    // An older minor in the file: nothing destructive, and the plan says why.
    w.edit("engine_version: \"16\"", "engine_version: \"16.8\"");
    let plan = moto.infra(w.path(), &["plan", "--detailed-exitcode"]);
    plan.code(0);
    assert!(plan.stdout.contains("cannot downgrade"), "{}", plan.stdout);

    // An older major: refused before any change, with the fix.
    w.edit("engine_version: \"16.8\"", "engine_version: \"15.12\"");
    let plan = moto.infra(w.path(), &["plan"]);
    plan.code(1);
    assert!(
        plan.stderr.contains("cannot go back to an older major version") && plan.stderr.contains("\"16\""),
        "{}",
        plan.stderr
    );

    // A version RDS does not offer (retired): the plan fails naming the offered ones.
    let w2 = Workdir::with_stack(
        &SMALL
            .replace("stack: shop", "stack: shop2")
            .replace("engine_version: \"8.0.42\"", "engine_version: \"8.0.39\""),
    );
    let plan = moto.infra(w2.path(), &["plan"]);
    plan.code(1);
    assert!(
        plan.stderr.contains("RDS does not offer mysql 8.0.39") && plan.stderr.contains("8.4.5"),
        "{}",
        plan.stderr
    );
    assert_eq!(instance_ids(&moto), vec![id.to_string()], "nothing was created for the refused file");

    // A class RDS does not offer for the version (db.t2 is not offered for
    // current versions): the plan fails naming offered ones, same family
    // first; so does a class change of the running database.
    let w3 = Workdir::with_stack(
        &SMALL.replace("stack: shop", "stack: shop3").replace(CLASS, "instance_class: db.t2.micro"),
    );
    let plan = moto.infra(w3.path(), &["plan"]);
    plan.code(1);
    assert!(
        plan.stderr.contains("instance class db.t2.micro is not offered for mysql 8.0.42 with Multi-AZ in us-east-1")
            && plan.stderr.contains("offered: db.t3.micro, db.t4g.micro, "),
        "{}",
        plan.stderr
    );
    w.edit("engine_version: \"15.12\"", "engine_version: \"16\"");
    w.edit(CLASS, "instance_class: db.m1.small");
    let plan = moto.infra(w.path(), &["plan"]);
    plan.code(1);
    assert!(plan.stderr.contains("instance class db.m1.small is not offered for postgres 16.9"), "{}", plan.stderr);
    assert_eq!(instance_ids(&moto), vec![id.to_string()], "nothing was created for the refused files");
}
