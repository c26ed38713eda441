//! The backend tier: Lambda functions with least-privilege roles behind an API Gateway REST API.

pub mod check;
pub mod expand;
pub mod spec;
