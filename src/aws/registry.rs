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
        Box::new(rds::db_subnet_group::DbSubnetGroup),
        Box::new(rds::db_instance::DbInstance),
        Box::new(dynamodb::table::Table),
    ];
    // Not yet on the typed contract.
    for k in s3::kinds()
        .into_iter()
        .chain(cloudfront::kinds())
        .chain(elbv2::kinds())
        .chain(launch_template::kinds())
        .chain(autoscaling::kinds())
        .chain(logs::kinds())
        .chain(iam::kinds())
        .chain(lambda::kinds())
        .chain(apigateway::kinds())
    {
        kinds.push(Box::new(Legacy(k)));
    }
    kinds
}
