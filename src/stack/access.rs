//! What a workload may touch: the IAM policy documents a Lambda function's
//! execution role and a web group's instance role get for the tables and
//! the database secret they declare, and nothing else. One place, so a
//! function and an instance declaring the same `tables:` get the same
//! actions on the same resources.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::aws::iam::role::RoleProps;
use crate::engine::value::{Ref, reference};
use crate::stack::Stack;
use crate::stack::address::{DATABASE, VPC, table};
use crate::stack::desired::tags;
use crate::stack::names;

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

/// The stack's account, as a policy value: the VPC's owner, read from AWS
/// (never written in the file, so the stack deploys to any account).
pub fn this_account() -> Ref<String> {
    Ref::to(VPC, "owner_id")
}

/// The trust policy of a role `service` assumes on behalf of this account
/// only: `aws:SourceAccount` must be the stack's account (the VPC's owner,
/// read from AWS), so another account's resource cannot make the service
/// act with this role (the cross-service confused deputy,
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html>).
/// For services that send the key when they assume a role: Lambda for its
/// execution roles, VPC Flow Logs for its delivery role.
pub fn assumed_by_this_account(service: &str) -> Value {
    document(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
        "Condition": { "StringEquals": { "aws:SourceAccount": this_account() } },
    })])
}

/// The trust policy of a role `service` assumes, without a source
/// condition: for EC2, which assumes an instance profile's role for the
/// instance itself and sends no `aws:SourceAccount` (a condition on it would
/// leave the instances without credentials); what the instance may do is
/// bounded by the role's policies instead.
pub fn assumed_by(service: &str) -> Value {
    document(vec![json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole",
    })])
}

/// A role of the stack that an AWS `service` assumes for this account only
/// (see [`assumed_by_this_account`]), under the stack's role path, with
/// its inline and managed policies; tagged `Name: <stack>-<tag>`.
pub fn service_role(
    stack: &Stack, name: String, service: &str, description: String, policies: BTreeMap<String, Value>,
    managed_policies: Vec<String>, tag: &str,
) -> RoleProps {
    RoleProps {
        name,
        path: names::role_path(&stack.name, &stack.region),
        description,
        assume_role_policy: assumed_by_this_account(service),
        policies,
        managed_policies,
        tags: tags(stack, tag),
    }
}
