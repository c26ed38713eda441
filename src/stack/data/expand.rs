//! The data tier: a DB subnet group over the private subnets and one RDS
//! instance (Multi-AZ, encrypted, private, password in Secrets Manager),
//! and DynamoDB tables.
//!
//! The props are the kinds' own (`aws::rds`, `aws::dynamodb`), so they diff
//! with what is read back. Two database props are behaviour, not state
//! (`apply_immediately`, `wait_until_available`): the kind's `normalize`
//! drops them before comparing.

use crate::stack::address::*;
use std::collections::BTreeMap;

use crate::aws::dynamodb::table::{Capacity, IndexProps, Key, TableProps};
use crate::aws::rds::db_instance::DbInstanceProps;
use crate::aws::rds::db_subnet_group::DbSubnetGroupProps;
use crate::engine::resource::Props;
use crate::engine::value::Ref;
use crate::stack::Stack;
use crate::stack::access;
use crate::stack::data::spec::{Billing, Database, Encryption, IndexProjection, KeyAttr, Projection, Table};
use crate::stack::desired::{Desired, Output, tags};
use crate::stack::names::{self, db_identifier, table_name};

/// Expands `data:`. The database waits for `available` during apply (15+
/// minutes on AWS) only when something reads its endpoint
/// (`Stack::database_read`, resolved by the checks).
pub fn expand(stack: &Stack, d: &mut Desired) {
    let Some(data) = &stack.spec.data else { return };
    if let Some(db) = &data.database {
        let waits = stack.database_read;
        database(stack, db, waits, d);
    }
    for (name, t) in &data.tables {
        d.resources.push(table_props(stack, name, t).at(table(name)));
        let out = |suffix: &str| -> &'static str {
            // Output names are `&'static str` in the shared type; a stack has a
            // handful of tables and the process expands once.
            Box::leak(format!("{name}_table_{suffix}").into_boxed_str())
        };
        for (attr, description) in [("name", "DynamoDB table name"), ("arn", "DynamoDB table ARN")] {
            d.outputs.push(Output { name: out(attr), address: table(name), attr, description });
        }
        if t.stream.is_some() {
            d.outputs.push(Output {
                name: out("stream_arn"),
                address: table(name),
                attr: "stream_arn",
                description: "DynamoDB stream ARN",
            });
        }
    }
}

fn database(stack: &Stack, db: &Database, waits: bool, d: &mut Desired) {
    let name = db_identifier(&stack.name);
    let monitored = db.monitoring_interval > 0;
    if monitored {
        // Enhanced Monitoring's role: RDS assumes it for this account only
        // (the confused-deputy condition RDS documents for it) and writes
        // the OS metrics to its own `RDSOSMetrics` log group with AWS's
        // managed policy for exactly that.
        d.resources.push(
            access::service_role(
                stack,
                names::db_monitoring_role(&stack.name, &stack.region),
                "monitoring.rds.amazonaws.com",
                format!("RDS Enhanced Monitoring of stack {}", stack.name),
                BTreeMap::new(),
                vec![format!("arn:{}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole", stack.partition)],
                // Not `db`: a `Name` equal to the database's identifier would
                // read, to the destroy order, as the role using the database.
                "db-monitoring",
            )
            .at(DB_MONITORING_ROLE),
        );
    }
    d.resources.push(
        DbSubnetGroupProps {
            name: name.clone(),
            description: format!("Private subnets of the {} database", stack.name),
            subnet_ids: stack.azs.iter().map(|az| Ref::to(&subnet("private", az), "id")).collect(),
            tags: tags(stack, "db"),
        }
        .at(DB_SUBNET_GROUP),
    );
    d.resources.push(
        DbInstanceProps {
            identifier: name,
            engine: db.engine.api().into(),
            // Settings the file may leave to AWS: absent (not compared) when unpinned.
            engine_version: db.engine_version.clone().map(Some),
            instance_class: db.instance_class.clone(),
            storage_gb: db.storage_gb as i32,
            storage_type: db.storage_type.api().into(),
            iops: db.iops.map(|i| Some(i as i32)),
            multi_az: db.multi_az,
            storage_encrypted: true,
            publicly_accessible: false,
            db_name: db.db_name.clone().map(Some),
            username: db.username.clone(),
            manage_master_password: true,
            subnet_group: Ref::to(DB_SUBNET_GROUP, "id"),
            security_group_ids: vec![Ref::to(&security_group("database"), "id")],
            backup_retention_days: i32::from(db.backup_retention_days),
            backup_window: db.backup_window.clone().map(Some),
            maintenance_window: db.maintenance_window.as_ref().map(|w| Some(w.to_ascii_lowercase())),
            deletion_protection: db.deletion_protection.unwrap_or(stack.spec.protect),
            // Absent means the engine's default group: kept explicit (null) so
            // that removing a custom group from the file reverts to the default.
            parameter_group: db.parameter_group.clone(),
            copy_tags_to_snapshot: true,
            auto_minor_version_upgrade: db.auto_minor_version_upgrade,
            iam_auth: db.iam_auth,
            monitoring_interval: i32::from(db.monitoring_interval),
            monitoring_role_arn: monitored.then(|| Ref::to(DB_MONITORING_ROLE, "arn")),
            log_exports: {
                let mut l: Vec<String> = match &db.log_exports {
                    Some(l) => l.clone(),
                    None => db.engine.default_log_exports().iter().map(|s| s.to_string()).collect(),
                };
                l.sort();
                l.dedup();
                l
            },
            apply_immediately: Some(db.apply_immediately),
            wait_until_available: Some(waits),
            tags: tags(stack, "db"),
        }
        .at(DATABASE),
    );
    for (name, attr, description) in [
        ("database_endpoint", "endpoint", "Database host name"),
        ("database_port", "port", "Database port"),
        ("database_secret_arn", "secret_arn", "Secrets Manager secret holding the database master credentials"),
    ] {
        d.outputs.push(Output { name, address: DATABASE.into(), attr, description });
    }
}

fn key(k: &KeyAttr) -> Key {
    Key { name: k.name.clone(), kind: k.kind.api().into() }
}

fn capacity(c: &crate::stack::data::spec::Capacity) -> Capacity {
    Capacity { read: c.read.into(), write: c.write.into() }
}

fn table_props(stack: &Stack, name: &str, t: &Table) -> TableProps {
    let table_capacity = match &t.billing {
        Billing::OnDemand(_) => None,
        Billing::Provisioned(p) => Some(p.provisioned),
    };
    let mut indexes = BTreeMap::new();
    for ix in &t.indexes {
        let (projection, include) = match &ix.projection {
            IndexProjection::Simple(p) => (
                match p {
                    Projection::All => "ALL",
                    Projection::KeysOnly => "KEYS_ONLY",
                },
                None,
            ),
            IndexProjection::Include(inc) => {
                let mut attrs = inc.include.clone();
                attrs.sort();
                attrs.dedup();
                ("INCLUDE", Some(attrs))
            }
        };
        indexes.insert(
            ix.name.clone(),
            IndexProps {
                partition_key: key(&ix.partition_key),
                sort_key: ix.sort_key.as_ref().map(key),
                projection: projection.into(),
                include,
                capacity: table_capacity.map(|c| capacity(&ix.provisioned.unwrap_or(c))),
            },
        );
    }
    TableProps {
        table_name: table_name(&stack.name, name),
        partition_key: key(&t.partition_key),
        sort_key: t.sort_key.as_ref().map(key),
        billing_mode: if table_capacity.is_some() { "PROVISIONED" } else { "PAY_PER_REQUEST" }.into(),
        capacity: table_capacity.map(|c| capacity(&c)),
        indexes,
        stream: t.stream.map(|s| s.api().into()),
        point_in_time_recovery: t.point_in_time_recovery,
        ttl_attribute: t.ttl_attribute.clone(),
        deletion_protection: t.deletion_protection.unwrap_or(stack.spec.protect),
        kms_key: match &t.encryption {
            Encryption::Mode(_) => None,
            Encryption::Key(k) => Some(k.kms_key.clone()),
        },
        tags: tags(stack, &format!("table-{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Overrides, check_document as check, yaml};
    use serde_json::{Value, json};

    fn stack(extra: &str) -> Stack {
        let text = format!("stack: shop\nregion: us-east-1\nnetwork:\n  cidr: 10.0.0.0/16\n{extra}");
        let root = yaml::parse(text.as_bytes(), &yaml::Limits::default()).unwrap();
        check(&root, &Overrides::default(), ".".into()).unwrap()
    }

    const DATA: &str = r#"data:
  database:
    engine: mysql
    instance_class: db.t3.small
    maintenance_window: "Sun:04:30-Sun:05:30"
  tables:
    orders:
      partition_key: { name: pk, type: S }
      sort_key: { name: sk, type: N }
      billing: { provisioned: { read: 5, write: 2 } }
      stream: new_and_old_images
      indexes:
        - { name: by_status, partition_key: { name: status, type: S }, projection: { include: [total, customer] } }
"#;

    #[test]
    fn protect_turns_deletion_protection_on_unless_each_says_otherwise() {
        let protected = |extra: &str| {
            let s = stack(&format!("protect: true\n{extra}"));
            let mut d = Desired::default();
            expand(&s, &mut d);
            let of =
                |a: &str| d.resources.iter().find(|r| r.address == a).unwrap().props["deletion_protection"].clone();
            (of(DATABASE), of("data.table.orders"))
        };
        assert_eq!(protected(DATA), (Value::Bool(true), Value::Bool(true)));
        let opted_out = DATA.replace("    engine: mysql\n", "    engine: mysql\n    deletion_protection: false\n");
        assert_eq!(protected(&opted_out), (Value::Bool(false), Value::Bool(true)));
    }

    #[test]
    fn expands_subnet_group_database_and_tables() {
        let s = stack(DATA);
        let mut d = Desired::default();
        expand(&s, &mut d);
        let by = |a: &str| d.resources.iter().find(|r| r.address == a).unwrap();

        let g = by(DB_SUBNET_GROUP);
        assert_eq!(g.props["name"], "shop-db");
        assert_eq!(
            g.dependencies().into_iter().collect::<Vec<_>>(),
            vec!["network.subnet.private.us-east-1a".to_string(), "network.subnet.private.us-east-1b".to_string()]
        );

        let db = by(DATABASE);
        let p = &db.props;
        assert_eq!(p["engine"], "mysql");
        assert_eq!(p["multi_az"], true, "Multi-AZ by default");
        assert_eq!(p["storage_encrypted"], true);
        assert_eq!(p["publicly_accessible"], false);
        assert_eq!(p["manage_master_password"], true);
        assert_eq!(p["maintenance_window"], "sun:04:30-sun:05:30");
        assert_eq!(p["parameter_group"], Value::Null);
        assert!(p.get("engine_version").is_none(), "unpinned: not compared");
        assert!(p.get("password").is_none());
        assert!(db.dependencies().contains("network.sg.database"));
        assert_eq!(p["wait_until_available"], false, "nothing reads the endpoint");
        assert_eq!(p["deletion_protection"], false);
        assert_eq!(s.db_port, 3306);

        let t = by("data.table.orders");
        assert_eq!(t.props["table_name"], "shop-orders");
        assert_eq!(t.props["billing_mode"], "PROVISIONED");
        assert_eq!(t.props["stream"], "NEW_AND_OLD_IMAGES");
        assert_eq!(t.props["point_in_time_recovery"], true);
        assert_eq!(t.props["ttl_attribute"], Value::Null);
        let ix = &t.props["indexes"]["by_status"];
        assert_eq!(ix["capacity"], json!({"read": 5, "write": 2}), "index capacity defaults to the table's");
        assert_eq!(ix["include"], json!(["customer", "total"]));
        assert_eq!(ix["sort_key"], Value::Null);

        let names: Vec<&str> = d.outputs.iter().map(|o| o.name).collect();
        for n in [
            "database_endpoint",
            "database_port",
            "database_secret_arn",
            "orders_table_name",
            "orders_table_arn",
            "orders_table_stream_arn",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
    }

    #[test]
    fn waits_for_the_database_only_when_its_endpoint_is_used() {
        // The checks set `database_read` when a function's environment reads
        // the endpoint (tested with the backend's resolution).
        let mut s = stack(DATA);
        s.database_read = true;
        let mut d = Desired::default();
        expand(&s, &mut d);
        let db = d.resources.iter().find(|r| r.address == DATABASE).unwrap();
        assert_eq!(db.props["wait_until_available"], true);
    }

    #[test]
    fn no_data_section_no_resources_and_the_default_port() {
        let s = stack("");
        let mut d = Desired::default();
        expand(&s, &mut d);
        assert!(d.resources.is_empty());
        assert_eq!(s.db_port, 5432);
        let s = stack("data:\n  tables: {}\n");
        let mut d = Desired::default();
        expand(&s, &mut d);
        assert!(d.resources.is_empty());
    }

    #[test]
    fn addresses_are_tag_safe() {
        let s = stack(DATA);
        let mut d = Desired::default();
        expand(&s, &mut d);
        for r in &d.resources {
            assert!(r.address.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:/@".contains(c)), "{}", r.address);
        }
    }

    #[test]
    fn props_fit_their_kinds_and_protection_is_read_from_them() {
        let kinds = crate::aws::registry::kinds();
        let kind = |name: &str| kinds.iter().find(|k| k.name() == name).unwrap();
        let protected =
            DATA.replace("    engine: mysql\n", "    engine: mysql\n    deletion_protection: true\n").replace(
                "      stream: new_and_old_images\n",
                "      stream: new_and_old_images\n      deletion_protection: true\n",
            );
        for (text, on) in [(DATA.to_string(), false), (protected, true)] {
            let mut d = Desired::default();
            expand(&stack(&text), &mut d);
            // The subnet group, the database and its monitoring role, the table.
            assert_eq!(d.resources.len(), 4);
            for r in &d.resources {
                let k = kind(&r.kind);
                k.check(&r.props).unwrap_or_else(|e| panic!("{}: {e}", r.address));
                let holds_data = !["rds.db_subnet_group", "iam.role"].contains(&r.kind.as_str());
                assert_eq!(k.protected(&r.props), on && holds_data, "{}", r.address);
            }
        }
    }
}
