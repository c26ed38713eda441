//! Changes that widen access: what a reviewer must not miss in a plan (a
//! port opened to the internet, a policy gaining actions, a database made
//! public).
//!
//! What widens access is each kind's knowledge
//! ([`super::provider::Provider::widens`]); [`super::review::widenings`]
//! asks it of every change. This is the plan's type only.

use serde::{Deserialize, Serialize};

/// One way a change widens access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Widening {
    pub address: String,
    /// What it opens, e.g. `opens tcp/22 to the internet (0.0.0.0/0)`.
    pub what: String,
}
