//! The network tier: VPC, public and private subnets per Availability Zone,
//! internet gateway, routes, NAT, VPC endpoints, flow logs and the security
//! groups of every tier.

pub mod check;
pub mod endpoints;
pub mod expand;
pub mod spec;
