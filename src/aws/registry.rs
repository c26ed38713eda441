//! Every kind this tool manages, each registered once: the engine asks the
//! provider for this list (which kinds a plan reads), and the provider
//! dispatches by the kinds' names (`Props::KIND`).
//!
//! Adding a kind: its file in its service's folder, one line here, its test.

use super::kind::DynKind;
use super::legacy::Legacy;
use super::{
    apigateway, autoscaling, cloudfront, dynamodb, ec2, elbv2, iam, lambda, logs, rds, s3,
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
        Box::new(elbv2::load_balancer::LoadBalancer),
        Box::new(elbv2::target_group::TargetGroup),
        Box::new(elbv2::listener::Listener),
        Box::new(ec2::launch_template::LaunchTemplate),
        Box::new(autoscaling::group::Group),
    ];
    // Not yet on the typed contract.
    for k in s3::kinds()
        .into_iter()
        .chain(cloudfront::kinds())
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
