//! The provider-agnostic core: desired resources, live resources, diff, plan
//! and the parallel executor. Nothing here knows about AWS.

pub mod concat;
pub mod cost;
pub mod diff;
pub mod executor;
pub mod filter;
pub mod graph;
#[cfg(test)]
pub mod memory;
pub mod plan;
pub mod provider;
pub mod resource;
pub mod review;
pub mod value;
pub mod widening;
