//! `infra`: provision a highly available AWS web stack from one stack.yaml.
//!
//! Data flows one way: stack.yaml -> resolved stack ([`stack`]) -> desired
//! resources ([`stack::expand`]) -> live state read from AWS ([`aws`]) ->
//! plan ([`engine::diff`]) -> executor ([`engine::executor`]). The engine
//! knows nothing of AWS; each AWS service is a folder of [`aws`], one file
//! per kind of resource. See docs/ARCHITECTURE.md.

pub mod aws;
pub mod cli;
pub mod engine;
pub mod init;
pub mod ops;
pub mod stack;
pub mod ui;
