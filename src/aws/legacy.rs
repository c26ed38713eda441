//! The kind trait of before the typed contract ([`super::kind::Kind`]), kept
//! only while the services move to it: [`Legacy`] registers an old kind.
//! Remove this file once every kind implements the typed trait.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use super::Aws;
use super::kind::DynKind;
use crate::engine::plan::{Change, FieldChange};
use crate::engine::provider::{KindInfo, StepContext, StepReporter};
use crate::engine::resource::{Live, Resource};

/// Options that change how a step deletes.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteOptions {
    /// Skip the final snapshot / backup of data-holding resources.
    pub skip_final_backup: bool,
}

/// One kind of AWS resource, on untyped props.
#[async_trait]
pub trait Kind: Send + Sync {
    fn name(&self) -> &'static str;
    fn info(&self) -> KindInfo;
    fn normalize(&self, _props: &mut Value) {}
    async fn prepare(&self, _aws: &Aws, _desired: &mut [&mut Resource]) -> Result<()> {
        Ok(())
    }
    fn notes(&self, _change: &Change) -> Vec<String> {
        Vec::new()
    }
    fn annotate(&self, _desired: &Value, _fields: &[FieldChange]) -> Vec<String> {
        Vec::new()
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>>;
    async fn create(&self, aws: &Aws, d: &Resource, rep: &dyn StepReporter) -> Result<Live>;
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        live: &Live,
        changed: &[String],
        rep: &dyn StepReporter,
    ) -> Result<Live>;
    async fn delete(
        &self,
        aws: &Aws,
        live: &Live,
        opts: DeleteOptions,
        rep: &dyn StepReporter,
    ) -> Result<Option<String>>;
}

/// An old kind behind the registry's interface.
pub struct Legacy(pub Box<dyn Kind>);

#[async_trait]
impl DynKind for Legacy {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn info(&self) -> KindInfo {
        self.0.info()
    }
    fn check(&self, _props: &Value) -> Result<()> {
        Ok(())
    }
    fn normalize(&self, props: &mut Value) {
        self.0.normalize(props)
    }
    fn protected(&self, _props: &Value) -> bool {
        // No kind left on this trait has deletion protection.
        false
    }
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        self.0.prepare(aws, desired).await
    }
    fn notes(&self, change: &Change) -> Vec<String> {
        self.0.notes(change)
    }
    fn annotate(&self, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        self.0.annotate(desired, fields)
    }
    fn plan_note(&self, _change: &Change) -> Option<String> {
        None
    }
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        self.0.read(aws).await
    }
    async fn create(&self, aws: &Aws, d: &Resource, ctx: &StepContext<'_>) -> Result<Live> {
        self.0.create(aws, d, ctx).await
    }
    async fn update(
        &self,
        aws: &Aws,
        d: &Resource,
        live: &Live,
        changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Live> {
        self.0.update(aws, d, live, changed, ctx).await
    }
    async fn delete(
        &self,
        aws: &Aws,
        live: &Live,
        ctx: &StepContext<'_>,
    ) -> Result<Option<String>> {
        let opts = DeleteOptions {
            skip_final_backup: ctx.options.skip_final_backup,
        };
        self.0.delete(aws, live, opts, ctx).await
    }
}
