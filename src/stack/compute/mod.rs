//! The compute tier: web groups (launch template, Auto Scaling group, target group) behind an Application Load Balancer.

pub mod check;
pub mod expand;
pub mod spec;
