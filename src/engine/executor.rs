//! Runs a plan as a graph of steps, in parallel.
//!
//! A change becomes one or two steps (a replacement is a create and a delete,
//! ordered by the kind's replace policy; a creation whose late properties
//! wait for something is a create and the update that fills them in; a
//! deletion of a kind with an early release is the release, run at once, and
//! the delete, run when its dependants are gone). A
//! step starts as soon as every step it depends on has finished; among ready
//! steps the one heading the heaviest remaining chain goes first (long poles such as databases start early). A
//! failed step skips what depends on it; independent steps carry on. Steps
//! already running are always allowed to finish, also on Ctrl-C.

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use petgraph::algo::toposort;
use petgraph::graph::DiGraph;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::plan::{Action, Change, Plan};
use super::provider::{SharedProvider, StepContext, StepOptions, StepReporter};
use super::resource::{Live, Resource};
use super::value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Create,
    Update,
    /// The first part of a delete, which needs nothing deleted before it
    /// (see `KindInfo::early_release`).
    Release,
    Delete,
}

impl Op {
    pub fn progressive(self) -> &'static str {
        match self {
            Op::Create => "creating",
            Op::Update => "updating",
            Op::Release => "releasing",
            Op::Delete => "destroying",
        }
    }
    pub fn past(self) -> &'static str {
        match self {
            Op::Create => "created",
            Op::Update => "updated",
            Op::Release => "released",
            Op::Delete => "destroyed",
        }
    }
}

/// One unit of work: an operation on the change at `change`.
#[derive(Clone, Debug)]
pub struct Step {
    pub change: usize,
    pub op: Op,
    pub deps: Vec<usize>,
    /// The update that fills in a creation's late properties once what they
    /// take values from exists (see `Change::fill_in_after`).
    pub fill_in: bool,
}

/// What the executor reports while it runs.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        address: String,
        kind: String,
        op: Op,
    },
    Status {
        address: String,
        op: Op,
        text: String,
    },
    Finished {
        address: String,
        op: Op,
        seconds: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Failed {
        address: String,
        op: Op,
        seconds: f64,
        error: String,
    },
    Skipped {
        address: String,
        op: Op,
        reason: String,
    },
}

pub trait EventSink: Send + Sync {
    fn event(&self, e: Event);
}

/// Cooperative cancellation (Ctrl-C): no new steps start once set.
#[derive(Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Clone)]
pub struct ExecOptions {
    /// Steps running at once, overall.
    pub parallelism: usize,
    /// Steps running at once against one service.
    pub per_service: usize,
    /// What every step is told (final backups, waiting for propagation).
    pub step: StepOptions,
    pub cancel: Cancel,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions { parallelism: 16, per_service: 8, step: StepOptions::default(), cancel: Cancel::default() }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub done: usize,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub not_started: Vec<String>,
    pub cancelled: bool,
    pub notes: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.not_started.is_empty() && !self.cancelled
    }
}

/// Turns changes into steps with their ordering constraints.
pub fn build_steps(changes: &[Change], provider: &dyn super::provider::Provider) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    let mut up: HashMap<&str, usize> = HashMap::new(); // address -> create/update step
    let mut del: HashMap<usize, usize> = HashMap::new(); // change -> delete step
    let mut fill: HashMap<usize, usize> = HashMap::new(); // change -> fill-in step
    for (i, c) in changes.iter().enumerate() {
        let mut push = |op| {
            steps.push(Step { change: i, op, deps: Vec::new(), fill_in: false });
            steps.len() - 1
        };
        match c.action {
            Action::NoOp => {}
            Action::Create => {
                up.insert(&c.address, push(Op::Create));
                if !c.fill_in_after.is_empty() {
                    let f = push(Op::Update);
                    steps[f].fill_in = true;
                    fill.insert(i, f);
                }
            }
            Action::Update => {
                up.insert(&c.address, push(Op::Update));
            }
            Action::Replace => {
                up.insert(&c.address, push(Op::Create));
                del.insert(i, push(Op::Delete));
            }
            Action::Delete => {
                // The release starts at once; the delete waits for it and
                // for its dependants' deletes (edges below).
                let release = c.live.as_ref().is_some_and(|l| provider.releases(l)).then(|| push(Op::Release));
                let d = push(Op::Delete);
                if let Some(r) = release {
                    steps[d].deps.push(r);
                }
                del.insert(i, d);
            }
        }
    }

    // Which live resource references which, found by their identifiers.
    // Identifiers are unique within a kind, not across kinds (a table and a
    // function may both be named `webapp-orders`): a string names every
    // holder, and a resource's own identifiers in its props name itself only.
    let mut by_ident: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut own: Vec<Vec<&str>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        if let Some(l) = &c.live {
            for id in provider.identifiers(l) {
                by_ident.entry(id).or_default().push(i);
                own[i].push(id);
            }
        }
    }
    // live_users[j] = changes whose live props mention change j's live resource.
    let mut live_users: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if let Some(l) = &c.live {
            for x in provider.mentions(l).into_iter().filter(|x| !own[i].contains(x)) {
                for &j in by_ident.get(x).into_iter().flatten().filter(|&&j| j != i) {
                    live_users.entry(j).or_default().push(i);
                }
            }
        }
    }
    for users in live_users.values_mut() {
        users.sort_unstable();
        users.dedup();
    }
    // desired_users[address] = changes whose desired resource depends on address.
    let mut desired_users: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if let Some(d) = &c.desired {
            for dep in d.dependencies() {
                desired_users.entry(dep).or_default().push(i);
            }
        }
    }

    let mut edges: Vec<(usize, usize)> = Vec::new(); // (before, after)
    for (i, c) in changes.iter().enumerate() {
        let cbd = provider.kind_info(&c.kind).create_before_destroy;
        if let (Some(&u), Some(d)) = (up.get(c.address.as_str()), &c.desired) {
            let fill_in = fill.get(&i).copied();
            for dep in d.dependencies() {
                if let Some(&du) = up.get(dep.as_str()) {
                    match fill_in {
                        Some(f) if c.fill_in_after.contains(&dep) => edges.push((du, f)),
                        _ => edges.push((du, u)),
                    }
                }
            }
            if let Some(f) = fill_in {
                edges.push((u, f));
            }
            if c.action == Action::Replace && !cbd {
                edges.push((del[&i], u));
            }
        }
        if let Some(&d) = del.get(&i) {
            for &x in live_users.get(&i).into_iter().flatten() {
                if let Some(&dx) = del.get(&x) {
                    edges.push((dx, d));
                }
                let repointing = c.action == Action::Delete || cbd;
                if repointing && let Some(&ux) = up.get(changes[x].address.as_str()) {
                    edges.push((ux, d));
                }
            }
            if c.action == Action::Replace && cbd {
                edges.push((up[c.address.as_str()], d));
                for &x in desired_users.get(&c.address).into_iter().flatten() {
                    if let Some(&ux) = up.get(changes[x].address.as_str()) {
                        edges.push((ux, d));
                    }
                }
            }
        }
    }
    // Those set with the steps (a delete after its release).
    for (b, s) in steps.iter_mut().enumerate() {
        edges.extend(s.deps.drain(..).map(|a| (a, b)));
    }
    edges.sort_unstable();
    edges.dedup();
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..steps.len()).map(|i| g.add_node(i)).collect();
    for &(a, b) in &edges {
        if a != b {
            g.add_edge(nodes[a], nodes[b], ());
            steps[b].deps.push(a);
        }
    }
    if let Err(cycle) = toposort(&g, None) {
        let s = &steps[g[cycle.node_id()]];
        bail!(
            "the plan cannot be ordered: {} of {} is part of a dependency cycle",
            s.op.progressive(),
            changes[s.change].address
        );
    }
    Ok(steps)
}

/// Remaining-chain weight of each step: its own weight plus the heaviest dependant's.
fn priorities(steps: &[Step], changes: &[Change], provider: &dyn super::provider::Provider) -> Vec<u64> {
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &d in &s.deps {
            dependants[d].push(i);
        }
    }
    let mut prio = vec![0u64; steps.len()];
    let mut done = vec![false; steps.len()];
    fn visit(i: usize, deps: &[Vec<usize>], w: &dyn Fn(usize) -> u64, prio: &mut [u64], done: &mut [bool]) -> u64 {
        if done[i] {
            return prio[i];
        }
        let mut best = 0;
        for &j in &deps[i] {
            best = best.max(visit(j, deps, w, prio, done));
        }
        prio[i] = w(i) + best;
        done[i] = true;
        prio[i]
    }
    let weight = |i: usize| u64::from(provider.kind_info(&changes[steps[i].change].kind).weight.max(1));
    for i in 0..steps.len() {
        visit(i, &dependants, &weight, &mut prio, &mut done);
    }
    prio
}

struct Reporter {
    sink: Arc<dyn EventSink>,
    address: String,
    op: Op,
}

impl StepReporter for Reporter {
    fn status(&self, text: &str) {
        self.sink.event(Event::Status { address: self.address.clone(), op: self.op, text: text.to_string() });
    }
}

/// Where a step is in its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done,
    Failed,
    /// Not run because a step it depends on failed.
    Skipped,
}

/// Executes `plan` against `provider`.
pub async fn execute(
    plan: &Plan, provider: SharedProvider, opts: &ExecOptions, sink: Arc<dyn EventSink>,
) -> Result<Report> {
    let started = Instant::now();
    let changes = &plan.changes;
    let steps = build_steps(changes, provider.as_ref())?;
    let prio = priorities(&steps, changes, provider.as_ref());

    // Attributes known so far, by address: live ones that stay, then created ones.
    let mut known: HashMap<String, Live> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::NoOp | Action::Update))
        .filter_map(|c| c.live.clone().map(|l| (c.address.clone(), l)))
        .collect();

    let mut waiting: Vec<usize> = steps.iter().map(|s| s.deps.len()).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &d in &s.deps {
            dependants[d].push(i);
        }
    }
    let mut ready: BinaryHeap<(u64, std::cmp::Reverse<usize>)> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.deps.is_empty())
        .map(|(i, _)| (prio[i], std::cmp::Reverse(i)))
        .collect();
    let mut state = vec![State::Pending; steps.len()];
    let mut per_service: HashMap<&'static str, usize> = HashMap::new();
    let mut running: JoinSet<(usize, Duration, Result<StepOutcome>)> = JoinSet::new();
    let mut report = Report::default();
    // Late properties each create left values out of, for its fill-in.
    let mut left_out: HashMap<usize, Vec<String>> = HashMap::new();

    loop {
        // Start what may start.
        if !opts.cancel.is_cancelled() {
            let mut deferred = Vec::new();
            while running.len() < opts.parallelism.max(1) {
                let Some((p, std::cmp::Reverse(i))) = ready.pop() else {
                    break;
                };
                let service = provider.kind_info(&changes[steps[i].change].kind).service;
                let n = per_service.entry(service).or_default();
                if *n >= opts.per_service.max(1) {
                    deferred.push((p, std::cmp::Reverse(i)));
                    continue;
                }
                *n += 1;
                state[i] = State::Running;
                let step = &steps[i];
                let change = &changes[step.change];
                sink.event(Event::Started { address: change.address.clone(), kind: change.kind.clone(), op: step.op });
                let mut desired = change.desired.as_ref().map(|d| resolve(d, &known));
                let (mut live, mut changed) = (change.live.clone(), changed_fields(change));
                if step.fill_in {
                    // The update after the create: exactly the late
                    // properties the create had to leave values out of.
                    live = known.get(&change.address).cloned();
                    changed = left_out.remove(&step.change).unwrap_or_default();
                } else if step.op == Op::Create
                    && !change.fill_in_after.is_empty()
                    && let Some(d) = desired.as_mut()
                {
                    left_out.insert(step.change, leave_out_unknown(d, provider.kind_info(&change.kind).late_fields));
                }
                let task = StepTask {
                    op: step.op,
                    desired,
                    live,
                    changed,
                    provider: provider.clone(),
                    options: opts.step,
                    reporter: Reporter { sink: sink.clone(), address: change.address.clone(), op: step.op },
                };
                running.spawn(async move {
                    let t0 = Instant::now();
                    let r = task.run().await;
                    (i, t0.elapsed(), r)
                });
            }
            ready.extend(deferred);
        }
        if running.is_empty() {
            break;
        }
        let joined = tokio::select! {
            j = running.join_next() => j,
            _ = opts.cancel.notify.notified() => continue,
        };
        let Some(joined) = joined else { break };
        let (i, elapsed, result) = match joined {
            Ok(v) => v,
            Err(e) => bail!("internal error: a step panicked: {e}"),
        };
        let step = &steps[i];
        let change = &changes[step.change];
        let service = provider.kind_info(&change.kind).service;
        if let Some(n) = per_service.get_mut(service) {
            *n = n.saturating_sub(1);
        }
        match result {
            Ok(outcome) => {
                state[i] = State::Done;
                report.done += 1;
                let note = match outcome {
                    StepOutcome::Live(l) => {
                        known.insert(change.address.clone(), *l);
                        None
                    }
                    StepOutcome::Released => None,
                    StepOutcome::Deleted(note) => note,
                };
                if let Some(n) = &note {
                    report.notes.push(format!("{}: {n}", change.address));
                }
                sink.event(Event::Finished {
                    address: change.address.clone(),
                    op: step.op,
                    seconds: elapsed.as_secs_f64(),
                    note,
                });
                for &j in &dependants[i] {
                    waiting[j] -= 1;
                    if waiting[j] == 0 && state[j] == State::Pending {
                        ready.push((prio[j], std::cmp::Reverse(j)));
                    }
                }
            }
            Err(e) => {
                state[i] = State::Failed;
                let msg = format!("{e:#}");
                report.failed.push((change.address.clone(), msg.clone()));
                sink.event(Event::Failed {
                    address: change.address.clone(),
                    op: step.op,
                    seconds: elapsed.as_secs_f64(),
                    error: msg,
                });
                // Skip everything downstream.
                let mut stack = dependants[i].clone();
                while let Some(j) = stack.pop() {
                    if state[j] == State::Pending {
                        state[j] = State::Skipped;
                        let c = &changes[steps[j].change];
                        report.skipped.push(c.address.clone());
                        sink.event(Event::Skipped {
                            address: c.address.clone(),
                            op: steps[j].op,
                            reason: format!("{} failed", change.address),
                        });
                        stack.extend(dependants[j].iter().copied());
                    }
                }
            }
        }
    }
    report.cancelled = opts.cancel.is_cancelled();
    report.not_started = steps
        .iter()
        .enumerate()
        .filter(|(i, _)| state[*i] == State::Pending)
        .map(|(_, s)| changes[s.change].address.clone())
        .collect();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn resolve(d: &Resource, known: &HashMap<String, Live>) -> Resource {
    let mut r = d.clone();
    r.props = value::resolve(&d.props, &|addr, attr| known.get(addr).and_then(|l| l.attr(attr)));
    r
}

/// Keeps of each late property of `d` what is known now
/// ([`value::known_part`]); returns the properties that lost something.
fn leave_out_unknown(d: &mut Resource, late: &[&str]) -> Vec<String> {
    let mut lost = Vec::new();
    if let Some(props) = d.props.as_object_mut() {
        for f in late {
            if let Some(v) = props.get_mut(*f) {
                let kept = value::known_part(v);
                if kept != *v {
                    *v = kept;
                    lost.push(f.to_string());
                }
            }
        }
    }
    lost
}

fn changed_fields(c: &Change) -> Vec<String> {
    let mut v: Vec<String> = c.fields.iter().map(|f| f.path.split('.').next().unwrap_or(&f.path).to_string()).collect();
    v.dedup();
    v
}

enum StepOutcome {
    Live(Box<Live>),
    Released,
    Deleted(Option<String>),
}

struct StepTask {
    op: Op,
    desired: Option<Resource>,
    live: Option<Live>,
    changed: Vec<String>,
    provider: SharedProvider,
    options: StepOptions,
    reporter: Reporter,
}

impl StepTask {
    async fn run(self) -> Result<StepOutcome> {
        let ctx = StepContext { options: self.options, reporter: &self.reporter };
        // A reference the cloud left unanswered (an attribute it did not
        // return) is named, never sent on as a placeholder.
        let resolved = |d: &Resource| match value::first_unresolved(&d.props) {
            None => Ok(()),
            Some(missing) => {
                let (addr, attr) = missing.split_once('#').unwrap_or((&missing, "?"));
                bail!(
                    "{} needs attribute `{attr}` of {addr}, which is not known: {addr} was not created, or the cloud did not return `{attr}` for it (run `infra plan` to see its state)",
                    d.address
                )
            }
        };
        match (self.op, &self.desired, &self.live) {
            (Op::Create, Some(d), _) => {
                resolved(d)?;
                Ok(StepOutcome::Live(Box::new(self.provider.create(d, &ctx).await?)))
            }
            // A fill-in with nothing left to fill in (what the late
            // properties take was known at the create).
            (Op::Update, Some(_), Some(l)) if self.changed.is_empty() => Ok(StepOutcome::Live(Box::new(l.clone()))),
            (Op::Update, Some(d), Some(l)) => {
                resolved(d)?;
                Ok(StepOutcome::Live(Box::new(self.provider.update(d, l, &self.changed, &ctx).await?)))
            }
            (Op::Release, _, Some(l)) => {
                self.provider.release(l, &ctx).await?;
                Ok(StepOutcome::Released)
            }
            (Op::Delete, _, Some(l)) => Ok(StepOutcome::Deleted(self.provider.delete(l, &ctx).await?)),
            _ => bail!("internal error: malformed step"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::diff::{destroy_all, diff};
    use crate::engine::memory::MemoryProvider;
    use crate::engine::plan::Mode;
    use crate::engine::provider::Provider;
    use crate::engine::value::reference;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Event>>);
    impl EventSink for Collect {
        fn event(&self, e: Event) {
            self.0.lock().unwrap().push(e);
        }
    }

    fn stack(cidr: &str, subs: usize) -> Vec<Resource> {
        let mut v = vec![Resource::new("vpc", "mem.net", json!({"cidr": cidr}))];
        for i in 0..subs {
            v.push(Resource::new(
                format!("sub.{i}"),
                "mem.sub",
                json!({"net": reference("vpc", "id"), "cidr": format!("{i}")}),
            ));
            v.push(Resource::new(format!("rt.{i}"), "mem.rt", json!({"subnet": reference(&format!("sub.{i}"), "id")})));
        }
        v
    }

    async fn converge(p: &Arc<MemoryProvider>, desired: &[Resource]) -> (Plan, Report) {
        let live = p.read(&p.kinds()).await.unwrap();
        let changes = diff(desired, live.clone(), p.as_ref()).unwrap();
        let plan = Plan::new("s", "r", Mode::Apply, changes, &live);
        let sink = Arc::new(Collect::default());
        let shared: SharedProvider = p.clone();
        let rep = execute(&plan, shared, &ExecOptions::default(), sink).await.unwrap();
        (plan, rep)
    }

    /// A destroy: the site uses the CDN, which uses the bucket. The CDN's
    /// release (its disable) starts with the first wave, beside the slow
    /// site's delete; its delete still waits for the site, the bucket's for it.
    #[tokio::test]
    async fn a_release_starts_at_once_and_its_delete_waits_for_the_dependants() {
        let p = Arc::new(MemoryProvider::with_delay(Duration::from_millis(5)));
        let desired = vec![
            Resource::new("bucket", "mem.thing", json!({})),
            Resource::new("cdn", "mem.cdn", json!({"origin": reference("bucket", "id")})),
            Resource::new("site", "mem.thing", json!({"cdn": reference("cdn", "id")})),
        ];
        let (_, rep) = converge(&p, &desired).await;
        assert!(rep.ok(), "{rep:?}");
        p.slow.lock().unwrap().insert("site".into());
        p.calls.lock().unwrap().clear();
        let live = p.read(&p.kinds()).await.unwrap();
        let plan = Plan::new("s", "r", Mode::Destroy, destroy_all(live.clone(), p.as_ref()), &live);
        let shared: SharedProvider = p.clone();
        let rep = execute(&plan, shared, &ExecOptions::default(), Arc::new(Collect::default())).await.unwrap();
        assert!(rep.ok(), "{rep:?}");
        let calls: Vec<String> = p.calls().into_iter().filter(|c| c != "read").collect();
        let at = |c: &str| calls.iter().position(|x| x == c).unwrap_or_else(|| panic!("no {c} in {calls:?}"));
        let mut first_wave = calls[..2].to_vec();
        first_wave.sort();
        assert_eq!(first_wave, ["delete site", "release cdn"], "{calls:?}");
        assert!(at("delete site") < at("delete cdn") && at("delete cdn") < at("delete bucket"), "{calls:?}");
        assert!(p.live().is_empty());

        // A failed release keeps the resource and what it uses.
        let (_, rep) = converge(&p, &desired).await;
        assert!(rep.ok(), "{rep:?}");
        p.fail("cdn");
        let live = p.read(&p.kinds()).await.unwrap();
        let plan = Plan::new("s", "r", Mode::Destroy, destroy_all(live.clone(), p.as_ref()), &live);
        let shared: SharedProvider = p.clone();
        let rep = execute(&plan, shared, &ExecOptions::default(), Arc::new(Collect::default())).await.unwrap();
        assert_eq!(rep.failed.len(), 1, "{rep:?}");
        assert_eq!(rep.skipped, ["cdn", "bucket"], "{rep:?}");
        let left: Vec<String> =
            p.live().into_iter().map(|l| l.address).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        assert_eq!(left, ["bucket", "cdn"]);
    }

    #[tokio::test]
    async fn apply_then_noop_then_destroy() {
        let p = Arc::new(MemoryProvider::new());
        let desired = stack("10.0.0.0/16", 3);
        let (plan, rep) = converge(&p, &desired).await;
        assert_eq!(plan.summary.add, 7);
        assert!(rep.ok(), "{rep:?}");
        // Each create came after its dependencies.
        let calls = p.calls();
        let pos = |s: &str| calls.iter().position(|c| c == s).unwrap();
        assert!(pos("create vpc") < pos("create sub.0"));
        assert!(pos("create sub.2") < pos("create rt.2"));
        // Subnet ids flowed into route tables.
        let live = p.live();
        let rt = live.iter().find(|l| l.address == "rt.1").unwrap();
        let sub = live.iter().find(|l| l.address == "sub.1").unwrap();
        assert_eq!(rt.props["subnet"], json!(sub.id));

        let (plan, _) = converge(&p, &desired).await;
        assert!(!plan.has_changes(), "{:?}", plan.summary);

        let live = p.read(&["mem.net", "mem.sub", "mem.rt"]).await.unwrap();
        let plan = Plan::new("s", "r", Mode::Destroy, destroy_all(live.clone(), p.as_ref()), &live);
        let rep = execute(&plan, p.clone(), &ExecOptions::default(), Arc::new(Collect::default())).await.unwrap();
        assert!(rep.ok());
        assert!(p.live().is_empty());
        let calls = p.calls();
        let pos = |s: &str| calls.iter().position(|c| c == s).unwrap();
        assert!(pos("delete rt.0") < pos("delete sub.0"));
        assert!(pos("delete sub.0") < pos("delete vpc"));
    }

    #[tokio::test]
    async fn an_attribute_the_cloud_did_not_return_is_named_not_sent() {
        let p = Arc::new(MemoryProvider::new());
        let desired = vec![
            Resource::new("vpc", "mem.net", json!({"cidr": "10.0.0.0/16"})),
            // The memory cloud returns only `id`.
            Resource::new("sub.0", "mem.sub", json!({"net": reference("vpc", "ipv6_cidr"), "cidr": "0"})),
        ];
        let (_, rep) = converge(&p, &desired).await;
        assert_eq!(rep.failed.len(), 1, "{rep:?}");
        let (addr, err) = &rep.failed[0];
        assert_eq!(addr, "sub.0");
        assert!(err.contains("sub.0 needs attribute `ipv6_cidr` of vpc"), "{err}");
        assert!(!err.contains("internal error"), "{err}");
        assert!(!p.calls().iter().any(|c| c == "create sub.0"), "nothing was sent for sub.0");
    }

    #[tokio::test]
    async fn a_failure_skips_dependants_only() {
        let p = Arc::new(MemoryProvider::new());
        p.fail("sub.1");
        let (_, rep) = converge(&p, &stack("10.0.0.0/16", 3)).await;
        assert_eq!(rep.failed.len(), 1);
        assert_eq!(rep.skipped, vec!["rt.1".to_string()]);
        assert_eq!(rep.done, 5);
        // A rerun continues from where the cloud is.
        p.fail_on.lock().unwrap().clear();
        let (plan, rep) = converge(&p, &stack("10.0.0.0/16", 3)).await;
        assert_eq!(plan.summary.add, 2);
        assert!(rep.ok());
    }

    #[tokio::test]
    async fn replacement_orders_create_before_destroy_and_repoints() {
        let p = Arc::new(MemoryProvider::new());
        converge(&p, &stack("10.0.0.0/16", 1)).await;
        // Change the subnet's cidr: replace (create before destroy), rt updated in between.
        let mut d = stack("10.0.0.0/16", 1);
        d[1].props["cidr"] = json!("changed");
        let before = p.calls().len();
        let (plan, rep) = converge(&p, &d).await;
        assert!(rep.ok(), "{rep:?}");
        assert_eq!(plan.summary.replace, 1);
        assert_eq!(plan.summary.change, 1);
        let calls = p.calls()[before..].to_vec();
        let pos = |s: &str| calls.iter().position(|c| c.starts_with(s)).unwrap();
        assert!(pos("create sub.0") < pos("update rt.0"));
        assert!(pos("update rt.0") < pos("delete sub.0"));
        let (plan, _) = converge(&p, &d).await;
        assert!(!plan.has_changes());
    }

    #[tokio::test]
    async fn runs_independent_steps_in_parallel_within_the_limit() {
        let p = Arc::new(MemoryProvider::with_delay(Duration::from_millis(20)));
        let desired: Vec<_> = (0..40).map(|i| Resource::new(format!("t.{i}"), "mem.thing", json!({}))).collect();
        let live = vec![];
        let plan = Plan::new("s", "r", Mode::Apply, diff(&desired, live, p.as_ref()).unwrap(), &[]);
        let opts = ExecOptions { parallelism: 5, per_service: 100, ..ExecOptions::default() };
        let rep = execute(&plan, p.clone(), &opts, Arc::new(Collect::default())).await.unwrap();
        assert!(rep.ok());
        assert_eq!(p.concurrency.lock().unwrap().1, 5);
    }

    #[tokio::test]
    async fn long_poles_start_first() {
        let p = Arc::new(MemoryProvider::with_delay(Duration::from_millis(5)));
        let mut desired: Vec<_> = (0..5).map(|i| Resource::new(format!("a.{i}"), "mem.thing", json!({}))).collect();
        desired.push(Resource::new("z.db", "mem.db", json!({"engine": "pg"})));
        let plan = Plan::new("s", "r", Mode::Apply, diff(&desired, vec![], p.as_ref()).unwrap(), &[]);
        let opts = ExecOptions { parallelism: 1, ..ExecOptions::default() };
        execute(&plan, p.clone(), &opts, Arc::new(Collect::default())).await.unwrap();
        assert_eq!(p.calls()[0], "create z.db");
    }

    /// A function whose environment holds a database's id, and an API in
    /// front of the function.
    fn late_stack() -> Vec<Resource> {
        vec![
            Resource::new("vpc", "mem.net", json!({"cidr": "10.0.0.0/16"})),
            Resource::new("db", "mem.db", json!({"engine": "pg", "net": reference("vpc", "id")})),
            Resource::new(
                "fn",
                "mem.fn",
                json!({"net": reference("vpc", "id"), "env": {"DB": reference("db", "id"), "MODE": "x"}}),
            ),
            Resource::new("api", "mem.thing", json!({"target": reference("fn", "id")})),
        ]
    }

    #[tokio::test]
    async fn a_late_property_waits_alone_for_what_it_takes() {
        let p = Arc::new(MemoryProvider::with_delay(Duration::from_millis(10)));
        p.slow.lock().unwrap().insert("db".into());
        let desired = late_stack();
        let live = p.read(&p.kinds()).await.unwrap();
        let changes = diff(&desired, live.clone(), p.as_ref()).unwrap();
        let f = changes.iter().find(|c| c.address == "fn").unwrap();
        assert_eq!(f.fill_in_after, vec!["db".to_string()]);
        assert!(f.notes.iter().any(|n| n.contains("`env`") && n.contains("db")), "{:?}", f.notes);
        let steps = build_steps(&changes, p.as_ref()).unwrap();
        let step = |address: &str, fill_in: bool| {
            steps.iter().position(|s| changes[s.change].address == address && s.fill_in == fill_in).unwrap()
        };
        let (create_fn, fill_fn, create_db) = (step("fn", false), step("fn", true), step("db", false));
        assert!(!steps[create_fn].deps.contains(&create_db), "the create does not wait for the database");
        assert!(steps[fill_fn].deps.contains(&create_db) && steps[fill_fn].deps.contains(&create_fn));

        let plan = Plan::new("s", "r", Mode::Apply, changes, &live);
        let rep = execute(&plan, p.clone(), &ExecOptions::default(), Arc::new(Collect::default())).await.unwrap();
        assert!(rep.ok(), "{rep:?}");
        let calls = p.calls();
        let pos = |s: &str| calls.iter().position(|c| c == s).unwrap();
        // The API was made while the database was still being created.
        assert!(pos("create api") < pos("update fn env"), "{calls:?}");
        let live = p.live();
        let (db, func) =
            (live.iter().find(|l| l.address == "db").unwrap(), live.iter().find(|l| l.address == "fn").unwrap());
        assert_eq!(func.props["env"], json!({"DB": db.id, "MODE": "x"}));
        let (plan, _) = converge(&p, &desired).await;
        assert!(!plan.has_changes(), "{:?}", plan.summary);
    }

    #[tokio::test]
    async fn a_late_property_whose_source_exists_is_sent_at_once() {
        let p = Arc::new(MemoryProvider::new());
        let mut desired = late_stack();
        desired.retain(|r| r.address != "fn" && r.address != "api");
        converge(&p, &desired).await;
        let before = p.calls().len();
        let (plan, rep) = converge(&p, &late_stack()).await;
        assert!(rep.ok(), "{rep:?}");
        assert!(plan.changes.iter().all(|c| c.fill_in_after.is_empty()));
        let calls = p.calls()[before..].to_vec();
        assert!(!calls.iter().any(|c| c.starts_with("update fn")), "{calls:?}");
        let func = p.live().into_iter().find(|l| l.address == "fn").unwrap();
        assert!(func.props["env"]["DB"].as_str().is_some_and(|s| s.starts_with("mem.db-")));
    }

    #[tokio::test]
    async fn a_failed_source_leaves_the_late_property_for_the_next_apply() {
        let p = Arc::new(MemoryProvider::new());
        p.fail("db");
        let (_, rep) = converge(&p, &late_stack()).await;
        assert_eq!(rep.failed.len(), 1);
        assert_eq!(rep.skipped, vec!["fn".to_string()], "only the fill-in waits for the database");
        assert!(p.live().iter().any(|l| l.address == "api"));
        p.fail_on.lock().unwrap().clear();
        let (plan, rep) = converge(&p, &late_stack()).await;
        assert!(rep.ok(), "{rep:?}");
        let f = plan.changes.iter().find(|c| c.address == "fn").unwrap();
        assert_eq!(f.action, Action::Update);
        let (plan, _) = converge(&p, &late_stack()).await;
        assert!(!plan.has_changes());
    }

    #[test]
    fn resources_of_two_kinds_sharing_a_name_are_deleted_in_any_plan_order() {
        let p = MemoryProvider::new();
        let live = |address: &str, kind: &str, id: &str, props: serde_json::Value| Live {
            address: address.into(),
            kind: kind.into(),
            id: id.into(),
            props,
            attrs: Default::default(),
        };
        let table = live("data.table", "mem.table", "orders", json!({"name": "orders"}));
        let role = live("backend.role", "mem.role", "orders-role", json!({"name": "orders-role"}));
        let func = live(
            "backend.fn",
            "mem.fn",
            "orders",
            json!({"name": "orders", "role": "orders-role", "env": {"TABLE": "orders"}}),
        );
        let all = destroy_all(vec![table, role, func], &p);
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let changes: Vec<Change> = order.iter().map(|&i| all[i].clone()).collect();
            let steps = build_steps(&changes, &p).unwrap();
            let step_of = |a: &str| steps.iter().position(|s| changes[s.change].address == a).unwrap();
            let (t, f, r) = (step_of("data.table"), step_of("backend.fn"), step_of("backend.role"));
            assert!(steps[r].deps.contains(&f), "the role goes after the function that names it");
            assert!(!steps[t].deps.contains(&f) && !steps[f].deps.contains(&t), "a shared name is no reference");
        }
    }

    #[tokio::test]
    async fn cancel_starts_nothing_new() {
        let p = Arc::new(MemoryProvider::with_delay(Duration::from_millis(30)));
        let desired: Vec<_> = (0..10).map(|i| Resource::new(format!("t.{i}"), "mem.thing", json!({}))).collect();
        let plan = Plan::new("s", "r", Mode::Apply, diff(&desired, vec![], p.as_ref()).unwrap(), &[]);
        let opts = ExecOptions { parallelism: 2, ..ExecOptions::default() };
        let cancel = opts.cancel.clone();
        let h = tokio::spawn({
            let p = p.clone();
            async move { execute(&plan, p, &opts, Arc::new(Collect::default())).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
        let rep = h.await.unwrap();
        assert!(rep.cancelled);
        assert_eq!(rep.done, 2, "the two running steps finish");
        assert_eq!(rep.not_started.len(), 8);
    }
}
