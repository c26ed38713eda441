//! `infra`: provision a highly available AWS web stack from one stack.yaml.
//!
//! Data flows one way: stack.yaml -> validated spec ([`config`]) -> desired
//! resources ([`model`]) -> live state read from AWS ([`aws`]) -> plan
//! ([`engine::diff`]) -> executor ([`engine::executor`]). The engine knows
//! nothing of AWS; each AWS service is one module of [`aws`].

pub mod aws;
pub mod cli;
pub mod config;
pub mod engine;
pub mod model;
pub mod ops;
pub mod ui;
