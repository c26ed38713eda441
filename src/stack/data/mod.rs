//! The data tier: an RDS database (Multi-AZ, managed secret) and DynamoDB tables.

pub mod check;
pub mod expand;
pub mod spec;
