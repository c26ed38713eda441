//! An in-memory cloud for the engine's tests: same trait as AWS, with
//! injectable failures and a log of calls, so graph, diff, plan and scheduling
//! are tested without any network.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::cost::{Cost, PriceList};
use super::plan::FieldChange;
use super::provider::{KindInfo, Provider, StepContext};
use super::resource::{Live, Resource};

#[derive(Default)]
pub struct MemoryProvider {
    pub resources: Mutex<BTreeMap<String, Live>>,
    pub calls: Mutex<Vec<String>>,
    pub fail_on: Mutex<HashSet<String>>,
    pub delay: Option<Duration>,
    /// Addresses whose every operation takes ten times `delay` (long poles).
    pub slow: Mutex<HashSet<String>>,
    next: AtomicU64,
    /// (running now, max seen), to check parallelism.
    pub concurrency: Mutex<(usize, usize)>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_delay(delay: Duration) -> Self {
        MemoryProvider { delay: Some(delay), ..Self::default() }
    }

    /// Makes every operation on `address` fail.
    pub fn fail(&self, address: &str) {
        self.fail_on.lock().unwrap().insert(address.to_string());
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn live(&self) -> Vec<Live> {
        self.resources.lock().unwrap().values().cloned().collect()
    }

    async fn enter(&self, call: String, address: &str) -> Result<()> {
        self.calls.lock().unwrap().push(call);
        {
            let mut c = self.concurrency.lock().unwrap();
            c.0 += 1;
            c.1 = c.1.max(c.0);
        }
        if let Some(d) = self.delay {
            let slow = self.slow.lock().unwrap().contains(address);
            tokio::time::sleep(if slow { d * 10 } else { d }).await;
        }
        self.concurrency.lock().unwrap().0 -= 1;
        if self.fail_on.lock().unwrap().contains(address) {
            bail!("injected failure on {address}");
        }
        Ok(())
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn kinds(&self) -> Vec<&'static str> {
        vec!["mem.net", "mem.sub", "mem.rt", "mem.db", "mem.fn", "mem.cdn", "mem.thing"]
    }

    fn protected(&self, _kind: &str, props: &Value) -> bool {
        props.get("deletion_protection").and_then(Value::as_bool) == Some(true)
    }

    /// A resource's `usd` prop is its monthly cost: 0 free, -1 billed by
    /// use, -2 of unknown price.
    fn cost(&self, _kind: &str, props: &Value) -> Option<Cost> {
        let usd = props.get("usd").and_then(Value::as_f64)?;
        if usd == 0.0 {
            None
        } else if usd == -1.0 {
            Some(Cost::Usage { basis: "by use".into() })
        } else if usd == -2.0 {
            Some(Cost::Unknown { reason: "not in the list".into() })
        } else {
            Some(Cost::Fixed { low: usd, high: usd, basis: "fixed".into() })
        }
    }

    /// Each string of `open` missing before opens it.
    fn widens(&self, _kind: &str, before: Option<&Value>, after: &Value) -> Vec<String> {
        let list = |v: Option<&Value>| -> Vec<String> {
            v.and_then(|v| v.get("open"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|s| s.to_string())
                .collect()
        };
        let was = list(before);
        list(Some(after))
            .into_iter()
            .filter(|s| !was.contains(s))
            .map(|s| format!("opens {}", s.trim_matches('"')))
            .collect()
    }

    fn price_list(&self) -> Option<PriceList> {
        Some(PriceList { currency: "USD".into(), as_of: "today".into(), source: "memory".into() })
    }

    fn kind_info(&self, kind: &str) -> KindInfo {
        match kind {
            "mem.net" => KindInfo { replace_fields: &["cidr"], weight: 1, service: "net", ..KindInfo::default() },
            "mem.sub" => KindInfo {
                replace_fields: &["net", "cidr"],
                create_before_destroy: true,
                weight: 1,
                service: "net",
                ..KindInfo::default()
            },
            "mem.db" => KindInfo {
                replace_fields: &["engine"],
                holds_data: true,
                weight: 50,
                service: "db",
                ..KindInfo::default()
            },
            // A function: its environment may be filled in after the create.
            "mem.fn" => KindInfo { weight: 1, service: "fn", late_fields: &["env"], ..KindInfo::default() },
            // A CDN: its delete begins with a disable that needs nothing gone.
            "mem.cdn" => KindInfo { weight: 1, service: "cdn", early_release: true, ..KindInfo::default() },
            _ => KindInfo { weight: 1, service: "other", ..KindInfo::default() },
        }
    }

    fn annotate(&self, kind: &str, _desired: &Value, fields: &[FieldChange]) -> Vec<String> {
        let reboots = kind == "mem.db" && fields.iter().any(|f| f.path == "class");
        if reboots { vec!["class change: reboot".into()] } else { Vec::new() }
    }

    async fn read(&self, kinds: &[&str]) -> Result<Vec<Live>> {
        self.calls.lock().unwrap().push("read".into());
        Ok(self.live().into_iter().filter(|l| kinds.contains(&l.kind.as_str())).collect())
    }

    async fn create(&self, d: &Resource, _ctx: &StepContext<'_>) -> Result<Live> {
        self.enter(format!("create {}", d.address), &d.address).await?;
        let id = format!("{}-{}", d.kind, self.next.fetch_add(1, Ordering::SeqCst));
        let mut attrs = Map::new();
        attrs.insert("id".into(), Value::String(id.clone()));
        let live =
            Live { address: d.address.clone(), kind: d.kind.clone(), id: id.clone(), props: d.props.clone(), attrs };
        self.resources.lock().unwrap().insert(id, live.clone());
        Ok(live)
    }

    async fn update(&self, d: &Resource, live: &Live, changed: &[String], _ctx: &StepContext<'_>) -> Result<Live> {
        self.enter(format!("update {} {}", d.address, changed.join(",")), &d.address).await?;
        let mut res = self.resources.lock().unwrap();
        let Some(l) = res.get_mut(&live.id) else { bail!("{} not found", live.id) };
        l.props = d.props.clone();
        Ok(l.clone())
    }

    async fn release(&self, live: &Live, _ctx: &StepContext<'_>) -> Result<()> {
        self.enter(format!("release {}", live.address), &live.address).await
    }

    async fn delete(&self, live: &Live, _ctx: &StepContext<'_>) -> Result<Option<String>> {
        self.enter(format!("delete {}", live.address), &live.address).await?;
        self.resources.lock().unwrap().remove(&live.id);
        Ok(None)
    }
}
