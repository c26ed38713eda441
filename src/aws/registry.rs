//! Every kind this tool manages, each registered once: the engine asks the
//! provider for this list (which kinds a plan reads), and the provider
//! dispatches by the kinds' names (`Props::KIND`).
//!
//! Adding a kind: its file in its service's folder, one line here, its test.

use super::kind::DynKind;
use super::legacy::Legacy;
use super::{
    apigateway, autoscaling, cloudfront, dynamodb, ec2, elbv2, iam, lambda, launch_template, logs,
    rds, s3,
};

pub fn kinds() -> Vec<Box<dyn DynKind>> {
    let mut kinds: Vec<Box<dyn DynKind>> = vec![
        Box::new(ec2::vpc::Vpc),
        Box::new(ec2::subnet::Subnet),
        Box::new(ec2::internet_gateway::InternetGateway),
        Box::new(ec2::route_table::RouteTable),
        Box::new(ec2::eip::Eip),
        Box::new(ec2::nat_gateway::NatGateway),
        Box::new(ec2::security_group::SecurityGroup),
        Box::new(s3::bucket::Bucket::default()),
        Box::new(s3::bucket_policy::BucketPolicy),
        Box::new(s3::site::Site),
        Box::new(cloudfront::origin_access_control::OriginAccessControl),
        Box::new(cloudfront::distribution::Distribution),
    ];
    // Not yet on the typed contract.
    for k in elbv2::kinds()
        .into_iter()
        .chain(launch_template::kinds())
        .chain(autoscaling::kinds())
        .chain(logs::kinds())
        .chain(iam::kinds())
        .chain(lambda::kinds())
        .chain(apigateway::kinds())
        .chain(rds::kinds())
        .chain(dynamodb::kinds())
    {
        kinds.push(Box::new(Legacy(k)));
    }
    kinds
}
