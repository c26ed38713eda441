//! Every kind this tool manages, each registered once: the engine asks the
//! provider for this list (which kinds a plan reads), and the provider
//! dispatches by the kinds' names (`Props::KIND`).
//!
//! Each service lists its kinds in its `mod.rs` (`kinds()`, next to the
//! kinds' module declarations): adding a kind to a service is its file, one
//! line there (`pub mod` and the list entry side by side), and its test.
//! A new service adds its `kinds()` here.

use super::kind::DynKind;
use super::{apigateway, autoscaling, cloudfront, cognito, dynamodb, ec2, elbv2, iam, lambda, logs, rds, s3};

pub fn kinds() -> Vec<Box<dyn DynKind>> {
    [
        ec2::kinds(),
        s3::kinds(),
        cloudfront::kinds(),
        elbv2::kinds(),
        autoscaling::kinds(),
        logs::kinds(),
        iam::kinds(),
        lambda::kinds(),
        cognito::kinds(),
        apigateway::kinds(),
        rds::kinds(),
        dynamodb::kinds(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
