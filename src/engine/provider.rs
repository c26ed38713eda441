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

/// Options that change how a step deletes.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteOptions {
    /// Skip the final snapshot / backup of data-holding resources.
    pub skip_final_backup: bool,
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn kind_info(&self, kind: &str) -> KindInfo;

    /// Canonical form of a kind's properties (sort sets, drop defaults), applied
    /// to desired and live props alike before they are compared.
    fn normalize(&self, _kind: &str, _props: &mut Value) {}

    /// Resolves plan-time look-ups in the desired properties (e.g. an AMI
    /// given by name becomes the id of the newest matching image), before
    /// they are diffed. Default: nothing to resolve.
    async fn prepare(&self, _desired: &mut [Resource]) -> anyhow::Result<()> {
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

    /// Every live resource of the stack, of the given kinds.
    async fn read(&self, kinds: &[String]) -> anyhow::Result<Vec<Live>>;

    /// Creates `desired` (references already resolved) and returns it as live.
    async fn create(&self, desired: &Resource, rep: &dyn StepReporter) -> anyhow::Result<Live>;

    /// Brings `live` to `desired`; `changed` lists the top-level properties that differ.
    async fn update(
        &self,
        desired: &Resource,
        live: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> anyhow::Result<Live>;

    /// Deletes `live`; returns a note for the user (e.g. the id of a final backup).
    async fn delete(
        &self,
        live: &Live,
        opts: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> anyhow::Result<Option<String>>;
}

pub type SharedProvider = Arc<dyn Provider>;
