//! What a workload may touch: the IAM policy documents a Lambda function's
//! execution role and a web group's instance role get for the tables and
//! the database secret they declare, and nothing else. One place, so a
//! function and an instance declaring the same `tables:` get the same
//! actions on the same resources.

use serde_json::{Value, json};

use crate::engine::value::{Ref, reference};
use crate::stack::address::{DATABASE, table};

/// DynamoDB actions on the tables a workload declares: items and queries,
/// nothing on the table's settings.
pub const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
];

/// An identity policy statement; its resources may be references and
/// concatenations (the engine resolves them inside the document).
pub fn statement(sid: &str, actions: &[&str], resources: Vec<Ref>) -> Value {
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources })
}

/// A policy document of `statements`.
pub fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Item access on exactly these tables and their indexes.
pub fn tables(names: &[String]) -> Value {
    let mut resources = Vec::new();
    for t in names {
        resources.push(Ref::to(&table(t), "arn"));
        resources.push(Ref::concat(vec![reference(&table(t), "arn"), json!("/index/*")]));
    }
    document(vec![statement("TableItems", TABLE_ACTIONS, resources)])
}

/// Reading the database's managed secret (its user and password).
pub fn database_secret() -> Value {
    document(vec![statement(
        "ReadDatabaseSecret",
        &["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
        vec![Ref::to(DATABASE, "secret_arn")],
    )])
}

/// The trust policy of a role `service` (`lambda.amazonaws.com`...) assumes.
pub fn assumed_by(service: &str) -> Value {
    document(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
    })])
}
