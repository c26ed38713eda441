//! The kind contract: everything one kind of AWS resource declares and does,
//! in one place.
//!
//! A kind is a type implementing [`Kind`]. Its `Props` struct (see
//! [`Props`]) is shared by the stack's expansion, which builds desired props
//! from it, and by the kind, which reads live props into it and writes the
//! desired ones to AWS: the two sides cannot drift apart, and the contract
//! test (`registry::tests`) checks every resource the expansion makes against
//! its kind without any AWS call. The registry (`super::registry`) holds each
//! kind once behind [`DynKind`], which turns the engine's JSON into the typed
//! props and back.

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Aws;
use super::pricing::Prices;
use crate::engine::concat;
use crate::engine::cost::Cost;
use crate::engine::plan::{Change, FieldChange};
use crate::engine::provider::{Finding, KindInfo, StepContext};
use crate::engine::resource::{Live, Props, Resource};
use crate::engine::value;

/// A resource of kind `P` as it exists: its address in the stack, its
/// provider id, its props, and the attributes others may reference (`id`
/// always; `arn`, `dns_name`... as the kind adds them).
#[derive(Clone, Debug)]
pub struct Current<P> {
    pub address: String,
    pub id: String,
    pub props: P,
    pub attrs: Map<String, Value>,
}

impl<P: Props> Current<P> {
    pub fn new(address: impl Into<String>, id: impl Into<String>, props: P) -> Self {
        Current { address: address.into(), id: id.into(), props, attrs: Map::new() }
    }

    /// Adds an attribute others may reference (`null` values are skipped).
    pub fn with(mut self, attr: &str, v: impl Serialize) -> Self {
        let v = json!(v);
        if !v.is_null() {
            self.attrs.insert(attr.to_string(), v);
        }
        self
    }

    /// A string attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    /// The same resource with other props (after an update).
    pub fn with_props(mut self, props: P) -> Self {
        self.props = props;
        self
    }

    pub fn into_live(self) -> Result<Live> {
        let mut attrs = self.attrs;
        attrs.entry("id".to_string()).or_insert_with(|| Value::String(self.id.clone()));
        Ok(Live {
            props: serde_json::to_value(&self.props)
                .with_context(|| format!("internal error: props of {}", self.address))?,
            address: self.address,
            kind: P::KIND.to_string(),
            id: self.id,
            attrs,
        })
    }

    pub fn from_live(l: &Live) -> Result<Self> {
        Ok(Current {
            address: l.address.clone(),
            id: l.id.clone(),
            props: serde_json::from_value(l.props.clone()).with_context(|| {
                format!("internal error: the live properties of {} do not fit {}", l.address, P::KIND)
            })?,
            attrs: l.attrs.clone(),
        })
    }
}

/// A resource of kind `P` the stack wants, every reference resolved.
#[derive(Clone, Debug)]
pub struct Desired<P> {
    pub address: String,
    pub props: P,
}

impl<P: Props> Desired<P> {
    /// The typed props of a desired resource whose references the engine
    /// has resolved; names the first attribute that is still unknown (the
    /// cloud did not return it) instead of sending a placeholder to AWS.
    pub fn from_resource(d: &Resource) -> Result<Self> {
        let mut props = d.props.clone();
        concat::join(&mut props);
        if let Some(missing) = value::first_unresolved(&props) {
            let (addr, attr) = missing.split_once('#').unwrap_or((&missing, "?"));
            return Err(anyhow!(
                "{} needs attribute `{attr}` of {addr}, which AWS did not return; run `infra plan` to see {addr}'s state",
                d.address
            ));
        }
        Ok(Desired { address: d.address.clone(), props: parse(d, props)? })
    }

    /// A live resource at this address with the desired props and `id`.
    pub fn current(&self, id: impl Into<String>) -> Current<P>
    where
        P: Clone,
    {
        Current::new(self.address.clone(), id, self.props.clone())
    }
}

/// Props as the kind's type, concatenations joined (references may stay
/// symbolic: `Ref` holds them), for what judges desired and live alike.
fn typed<P: Props>(props: &Value) -> serde_json::Result<P> {
    let mut props = props.clone();
    concat::join(&mut props);
    serde_json::from_value(props)
}

fn parse<P: Props>(d: &Resource, props: Value) -> Result<P> {
    serde_json::from_value(props)
        .with_context(|| format!("internal error: the properties of {} do not fit {}", d.address, P::KIND))
}

/// One kind of AWS resource.
///
/// Required: `find` (the stack's resources of this kind by their tags,
/// optionally only the one at an address, for guarded creates), `create`,
/// `update`, `delete`. Everything else has a default.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    type Props: Props + Clone;

    /// How the engine treats the kind. `service` may stay empty: it is then
    /// the kind name's prefix (`ec2` for `ec2.vpc`).
    fn info(&self) -> KindInfo {
        KindInfo::default()
    }

    /// Canonical form of the props on both sides of a diff (sorted sets).
    /// Concatenations are joined before this is called.
    fn normalize(&self, _props: &mut Value) {}

    /// Whether AWS refuses to delete the resource as configured (deletion
    /// protection): the plan refuses before any change.
    fn protected(&self, _props: &Self::Props) -> bool {
        false
    }

    /// Plan-time look-ups in the desired resources (an AMI by name), before
    /// they are diffed. It sees the resources of this kind the plan keeps,
    /// runs beside the other kinds' look-ups and the plan's read (a look-up
    /// shared by several kinds is shared through [`Aws::cached`]), and
    /// changes only what it resolves.
    async fn prepare(&self, _aws: &Aws, _desired: &mut [&mut Resource]) -> Result<()> {
        Ok(())
    }

    /// What a planned change of this kind will do beyond its fields.
    fn notes(&self, _change: &Change) -> Vec<String> {
        Vec::new()
    }

    /// Plan notes for an update or replacement (downtime, reboot...), from
    /// the desired props as written (references unresolved).
    fn annotate(&self, _desired: &Value, _fields: &[FieldChange]) -> Vec<String> {
        Vec::new()
    }

    /// A line for the plan's summary about the changes of this kind (site
    /// upload counts).
    fn plan_note(&self, _change: &Change) -> Option<String> {
        None
    }

    /// What the resource costs per month at `prices` (props live, or
    /// desired with references unresolved). Default: `None`, nothing by
    /// itself (a VPC, a subnet, a role).
    fn cost(&self, _props: &Self::Props, _prices: &Prices) -> Option<Cost> {
        None
    }

    /// How a change from `before` (live; `None` for a creation) to `after`
    /// widens access, one line each, for the plan's review (see
    /// `engine::widening`). Default: never.
    fn widens(&self, _before: Option<&Self::Props>, _after: &Self::Props) -> Vec<String> {
        Vec::new()
    }

    /// The stack's resources of this kind, found by their tags; with
    /// `address`, only the one there (a guarded create looking for what a
    /// lost answer made).
    async fn find(&self, aws: &Aws, address: Option<&str>) -> Result<Vec<Current<Self::Props>>>;

    /// Every resource of this kind in the stack (a plan's read).
    async fn read(&self, aws: &Aws) -> Result<Vec<Current<Self::Props>>> {
        self.find(aws, None).await
    }

    async fn create(&self, aws: &Aws, d: &Desired<Self::Props>, ctx: &StepContext<'_>) -> Result<Current<Self::Props>>;

    /// Brings `live` to `d`; `changed` lists the top-level props that differ.
    async fn update(
        &self, aws: &Aws, d: &Desired<Self::Props>, live: &Current<Self::Props>, changed: &[String],
        ctx: &StepContext<'_>,
    ) -> Result<Current<Self::Props>>;

    /// Whether this resource has a release (asked only of kinds with
    /// `early_release`; a function outside any VPC has none). Default: yes.
    fn releases(&self, _live: &Current<Self::Props>) -> bool {
        true
    }

    /// The first part of a delete, run at the start of a destroy beside
    /// everything else, for kinds whose `info()` sets `early_release` (see
    /// `KindInfo::early_release`). Default: nothing.
    async fn release(&self, _aws: &Aws, _live: &Current<Self::Props>, _ctx: &StepContext<'_>) -> Result<()> {
        Ok(())
    }

    /// Deletes `live`; returns a note for the user (the final backup's id).
    async fn delete(&self, aws: &Aws, live: &Current<Self::Props>, ctx: &StepContext<'_>) -> Result<Option<String>>;

    /// Whether the deployed resource works (`infra check`): it answers, its
    /// targets are healthy, it is available. `all`: the whole live stack.
    /// Default: nothing to check beyond its existence.
    async fn verify(&self, _aws: &Aws, _live: &Current<Self::Props>, _all: &[Live]) -> Result<Vec<Finding>> {
        Ok(Vec::new())
    }
}

/// A kind behind the engine's JSON: what the registry holds.
#[async_trait]
pub trait DynKind: Send + Sync {
    fn name(&self) -> &'static str;
    fn info(&self) -> KindInfo;
    /// Whether `props` (desired, references unresolved) fit the kind's props.
    fn check(&self, props: &Value) -> Result<()>;
    fn normalize(&self, props: &mut Value);
    fn protected(&self, props: &Value) -> bool;
    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()>;
    fn notes(&self, change: &Change) -> Vec<String>;
    fn annotate(&self, desired: &Value, fields: &[FieldChange]) -> Vec<String>;
    fn plan_note(&self, change: &Change) -> Option<String>;
    fn cost(&self, props: &Value, prices: &Prices) -> Option<Cost>;
    fn widens(&self, before: Option<&Value>, after: &Value) -> Vec<String>;
    async fn read(&self, aws: &Aws) -> Result<Vec<Live>>;
    async fn create(&self, aws: &Aws, d: &Resource, ctx: &StepContext<'_>) -> Result<Live>;
    async fn update(
        &self, aws: &Aws, d: &Resource, live: &Live, changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Live>;
    fn releases(&self, live: &Live) -> bool;
    async fn release(&self, aws: &Aws, live: &Live, ctx: &StepContext<'_>) -> Result<()>;
    async fn delete(&self, aws: &Aws, live: &Live, ctx: &StepContext<'_>) -> Result<Option<String>>;
    async fn verify(&self, aws: &Aws, live: &Live, all: &[Live]) -> Result<Vec<Finding>>;
}

#[async_trait]
impl<K: Kind> DynKind for K {
    fn name(&self) -> &'static str {
        K::Props::KIND
    }

    fn info(&self) -> KindInfo {
        let mut info = Kind::info(self);
        if info.service.is_empty() {
            info.service = K::Props::KIND.split_once('.').map(|(s, _)| s).unwrap_or(K::Props::KIND);
        }
        info.weight = info.weight.max(1);
        info
    }

    fn check(&self, props: &Value) -> Result<()> {
        serde_json::from_value::<K::Props>(props.clone()).map(|_| ()).map_err(|e| anyhow!("{e}"))
    }

    fn normalize(&self, props: &mut Value) {
        concat::join(props);
        Kind::normalize(self, props);
    }

    fn protected(&self, props: &Value) -> bool {
        serde_json::from_value::<K::Props>(props.clone()).is_ok_and(|p| Kind::protected(self, &p))
    }

    async fn prepare(&self, aws: &Aws, desired: &mut [&mut Resource]) -> Result<()> {
        Kind::prepare(self, aws, desired).await
    }

    fn notes(&self, change: &Change) -> Vec<String> {
        Kind::notes(self, change)
    }

    fn annotate(&self, desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        Kind::annotate(self, desired, fields)
    }

    fn plan_note(&self, change: &Change) -> Option<String> {
        Kind::plan_note(self, change)
    }

    fn cost(&self, props: &Value, prices: &Prices) -> Option<Cost> {
        Kind::cost(self, &typed::<K::Props>(props).ok()?, prices)
    }

    fn widens(&self, before: Option<&Value>, after: &Value) -> Vec<String> {
        let after = match typed::<K::Props>(after) {
            Ok(a) => a,
            Err(e) => return vec![format!("its access could not be judged ({e}): review it by hand")],
        };
        let before = before.and_then(|b| typed::<K::Props>(b).ok());
        Kind::widens(self, before.as_ref(), &after)
    }

    async fn read(&self, aws: &Aws) -> Result<Vec<Live>> {
        Kind::read(self, aws).await?.into_iter().map(Current::into_live).collect()
    }

    async fn create(&self, aws: &Aws, d: &Resource, ctx: &StepContext<'_>) -> Result<Live> {
        let d = Desired::<K::Props>::from_resource(d)?;
        Kind::create(self, aws, &d, ctx).await?.into_live()
    }

    async fn update(
        &self, aws: &Aws, d: &Resource, live: &Live, changed: &[String], ctx: &StepContext<'_>,
    ) -> Result<Live> {
        let d = Desired::<K::Props>::from_resource(d)?;
        let l = Current::<K::Props>::from_live(live)?;
        Kind::update(self, aws, &d, &l, changed, ctx).await?.into_live()
    }

    fn releases(&self, live: &Live) -> bool {
        DynKind::info(self).early_release
            && Current::<K::Props>::from_live(live).is_ok_and(|l| Kind::releases(self, &l))
    }

    async fn release(&self, aws: &Aws, live: &Live, ctx: &StepContext<'_>) -> Result<()> {
        let l = Current::<K::Props>::from_live(live)?;
        Kind::release(self, aws, &l, ctx).await
    }

    async fn delete(&self, aws: &Aws, live: &Live, ctx: &StepContext<'_>) -> Result<Option<String>> {
        let l = Current::<K::Props>::from_live(live)?;
        Kind::delete(self, aws, &l, ctx).await
    }

    async fn verify(&self, aws: &Aws, live: &Live, all: &[Live]) -> Result<Vec<Finding>> {
        let l = Current::<K::Props>::from_live(live)?;
        Kind::verify(self, aws, &l, all).await
    }
}
