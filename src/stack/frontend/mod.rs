//! The frontend tier: the site's private S3 bucket, CloudFront with origin access control, and site publishing.

pub mod check;
pub mod expand;
pub mod spec;
