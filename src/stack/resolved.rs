//! The resolved stack: the file as checked, with every default and derived
//! value computed once (zones, subnets, VPC endpoints, names...), which the
//! tiers' expansions read and nothing else.

use std::collections::BTreeMap;

use super::backend::check::Function;
use super::network::check::Group;
use super::network::endpoints::Endpoint;
use super::spec::StackFile;

/// Where a stack goes, as the tiers' checks need it: its effective name,
/// region and partition, zones, and the directory its paths are relative to.
#[derive(Clone, Debug)]
pub struct Place<'a> {
    pub stack: &'a str,
    pub region: &'a str,
    pub partition: &'static str,
    pub az_count: usize,
    pub base_dir: &'a std::path::Path,
}

/// Command-line choices that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub stack: Option<String>,
    pub region: Option<String>,
    pub environment: Option<String>,
}

/// A validated stack, ready to expand into resources.
#[derive(Clone, Debug)]
pub struct Stack {
    pub spec: StackFile,
    /// Effective stack name (after `--stack` / environment).
    pub name: String,
    pub region: String,
    pub partition: &'static str,
    /// Availability Zones, in order.
    pub azs: Vec<String>,
    /// Public and private subnet CIDRs, one per AZ.
    pub public_subnets: Vec<String>,
    pub private_subnets: Vec<String>,
    /// Directory of the stack file (relative paths in it are from here).
    pub base_dir: std::path::PathBuf,
    /// The VPC endpoints the network gets, with why.
    pub endpoints: Vec<Endpoint>,
    /// Every security group with its rules (the built-in tiers' defaults
    /// filled in), the built-in tiers first.
    pub security_groups: Vec<(String, Group)>,
    /// The port the database listens on (its engine's; PostgreSQL's when
    /// the stack has none, for the `database` group's default rule).
    pub db_port: u16,
    /// The backend's functions, resolved (names, package digests, parsed
    /// environments), by name.
    pub functions: BTreeMap<String, Function>,
    /// Each web group's user data, parsed into text and references to the
    /// stack's values, by group.
    pub user_data: BTreeMap<String, Vec<super::template::Part>>,
    /// Whether anything reads the database's endpoint or port (then its
    /// create waits for it to be available).
    pub database_read: bool,
}
