//! What the engine needs from a cloud: read everything of a stack, and create,
//! update or delete one resource. AWS implements it in `crate::aws`; tests use
//! [`super::memory::MemoryProvider`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::plan::FieldChange;
use super::resource::{Live, Resource};

/// How the engine must treat a kind of resource.
#[derive(Clone, Copy, Debug, Default)]
pub struct KindInfo {
    /// Top-level properties whose change AWS can only make by replacement.
    pub replace_fields: &'static [&'static str],
    /// Replace by creating the new one first (names don't clash, dependants
    /// can be repointed), else by destroying first.
    pub create_before_destroy: bool,
    /// Deleting it loses user data (databases, tables): a backup is taken first.
    pub holds_data: bool,
    /// Relative expected duration of a create (1 = an ordinary API call);
    /// the scheduler starts the longest chains first.
    pub weight: u32,
    /// Service name, for per-service concurrency limits.
    pub service: &'static str,
    /// Top-level properties that may be filled in after the create (a
    /// function's environment, a role's inline policies): when their values
    /// reference something the same run still makes, the resource is created
    /// without those values and updated once they exist, so that what depends
    /// on it does not wait too (a function's API need not wait for the
    /// database whose endpoint its environment holds). Each must be a map or
    /// a list, whose entries can be left out (see [`super::value::known_part`]).
    pub late_fields: &'static [&'static str],
    /// Deleting it begins with a release ([`Provider::release`]) that needs
    /// nothing else deleted first and starts a long wait the cloud does on
    /// its own (a distribution's disable and its deployment, the release of
    /// a VPC function's network interfaces): a destroy runs it at the start,
    /// beside everything else, and the delete proper still waits for the
    /// resource's dependants, so the wait overlaps theirs.
    pub early_release: bool,
}

/// Reports progress of a running step (e.g. "waiting for available").
pub trait StepReporter: Send + Sync {
    fn status(&self, text: &str);
}

/// A reporter that drops everything.
pub struct Quiet;
impl StepReporter for Quiet {
    fn status(&self, _text: &str) {}
}

/// Options that change what steps do (from the command line).
#[derive(Clone, Copy, Debug, Default)]
pub struct StepOptions {
    /// Skip the final snapshot / backup of data-holding resources.
    pub skip_final_backup: bool,
    /// Wait for changes that propagate slowly (a CDN's deployment, its
    /// invalidations) to be in effect before a step counts as done.
    pub wait: bool,
}

/// What a running step gets besides its resource: the options of the run
/// and where to report progress.
pub struct StepContext<'a> {
    pub options: StepOptions,
    pub reporter: &'a dyn StepReporter,
}

impl StepContext<'_> {
    /// No options, no progress (look-ups inside a step).
    pub fn quiet() -> StepContext<'static> {
        StepContext { options: StepOptions::default(), reporter: &Quiet }
    }
}

impl StepReporter for StepContext<'_> {
    fn status(&self, text: &str) {
        self.reporter.status(text);
    }
}

/// One thing a deployed stack must do, as the kind that owns it saw it
/// (`infra check`): a route answers without a 5xx, a target is healthy...
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The resource it is about.
    pub address: String,
    /// What was checked, e.g. `GET /api/orders` or `targets healthy in us-east-1a`.
    pub check: String,
    pub ok: bool,
    /// What was seen: the status code, the state, the error.
    pub detail: String,
}

impl Finding {
    pub fn new(address: &str, check: impl Into<String>, ok: bool, detail: impl Into<String>) -> Finding {
        Finding { address: address.to_string(), check: check.into(), ok, detail: detail.into() }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Every kind the provider manages: a plan reads them all, so that
    /// resources removed from the file are found and deleted.
    fn kinds(&self) -> Vec<&'static str>;

    fn kind_info(&self, kind: &str) -> KindInfo;

    /// Whether the provider refuses to delete a resource of `kind` with
    /// `props` (deletion protection): plans refuse before any change.
    fn protected(&self, _kind: &str, _props: &Value) -> bool {
        false
    }

    /// The identifiers by which other resources' properties refer to `live`
    /// (its id, an ARN...): deletes are ordered by them.
    fn identifiers<'a>(&self, live: &'a Live) -> Vec<&'a str> {
        vec![live.id.as_str()]
    }

    /// The strings of `live`'s props that may be other resources'
    /// identifiers (see [`Provider::identifiers`]): deletes wait for the
    /// resources that mention them. Default: every string.
    fn mentions<'a>(&self, live: &'a Live) -> Vec<&'a str> {
        let mut out = Vec::new();
        super::value::strings(&live.props, &mut out);
        out
    }

    /// Canonical form of a kind's properties (sort sets, drop defaults), applied
    /// to desired and live props alike before they are compared.
    fn normalize(&self, _kind: &str, _props: &mut Value) {}

    /// Resolves plan-time look-ups in the desired properties (e.g. an AMI
    /// given by name becomes the id of the newest matching image), before
    /// they are diffed. A targeted plan passes only the resources it keeps.
    /// Default: nothing to resolve.
    async fn prepare(&self, _desired: &mut [&mut Resource]) -> anyhow::Result<()> {
        Ok(())
    }

    /// What a planned change will do beyond its field changes, for the plan
    /// (e.g. "starts an instance refresh"). Default: nothing.
    fn notes(&self, _change: &super::plan::Change) -> Vec<String> {
        Vec::new()
    }

    /// Notes for the plan about an update or replacement of `kind` to the
    /// desired props (as in the file, references unresolved): what the
    /// service will do beyond the diff (downtime, reboot, deferred change).
    fn annotate(&self, _kind: &str, _desired: &Value, _fields: &[FieldChange]) -> Vec<String> {
        Vec::new()
    }

    /// Lines about the plan as a whole (e.g. how many site files upload).
    fn plan_notes(&self, _changes: &[super::plan::Change]) -> Vec<String> {
        Vec::new()
    }

    /// What a resource of `kind` with `props` (live, or desired with its
    /// references unresolved) costs per month; `None` when it costs nothing
    /// by itself. Default: nothing is priced.
    fn cost(&self, _kind: &str, _props: &Value) -> Option<super::cost::Cost> {
        None
    }

    /// Where [`Provider::cost`]'s prices come from; `None` when the provider
    /// prices nothing (the plan then has no cost).
    fn price_list(&self) -> Option<super::cost::PriceList> {
        None
    }

    /// How a change of `kind` from `before` (live; `None` for a creation) to
    /// `after` (desired, references to what exists resolved) widens access,
    /// one line each (`opens tcp/22 to the internet (0.0.0.0/0)`). Both are
    /// normalized. Default: never.
    fn widens(&self, _kind: &str, _before: Option<&Value>, _after: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Every live resource of the stack, of the given kinds.
    async fn read(&self, kinds: &[&str]) -> anyhow::Result<Vec<Live>>;

    /// Whether the deployed `resources` work (they answer, are healthy,
    /// available), each judged by its kind; `all` is the whole live stack,
    /// for what a check needs from its neighbours (a stage's routes are its
    /// API's). Default: nothing to check.
    async fn verify(&self, _resources: &[&Live], _all: &[Live]) -> Vec<Finding> {
        Vec::new()
    }

    /// Creates `desired` (references already resolved) and returns it as live.
    async fn create(&self, desired: &Resource, ctx: &StepContext<'_>) -> anyhow::Result<Live>;

    /// Brings `live` to `desired`; `changed` lists the top-level properties that differ.
    async fn update(
        &self, desired: &Resource, live: &Live, changed: &[String], ctx: &StepContext<'_>,
    ) -> anyhow::Result<Live>;

    /// Whether deleting `live` begins with a [`Provider::release`]. Default:
    /// its kind's [`KindInfo::early_release`].
    fn releases(&self, live: &Live) -> bool {
        self.kind_info(&live.kind).early_release
    }

    /// The first part of deleting `live`, for kinds with
    /// [`KindInfo::early_release`]: run before its dependants are deleted,
    /// it must leave the resource usable by them until its delete (a
    /// disabled distribution, a function without its VPC, both about to
    /// go). Default: nothing.
    async fn release(&self, _live: &Live, _ctx: &StepContext<'_>) -> anyhow::Result<()> {
        Ok(())
    }

    /// Deletes `live`; returns a note for the user (e.g. the id of a final backup).
    async fn delete(&self, live: &Live, ctx: &StepContext<'_>) -> anyhow::Result<Option<String>>;
}

pub type SharedProvider = Arc<dyn Provider>;
