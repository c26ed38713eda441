//! The operations behind the commands: load, plan, lock, execute. Commands in
//! `main.rs` only parse flags, call these and choose exit codes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::aws::lock::{Lock, LockHeld};
use crate::aws::{Aws, AwsProvider};
use crate::engine::diff::{destroy_all, diff};
use crate::engine::executor::{self, Cancel, EventSink, ExecOptions, Report};
use crate::engine::filter::{self, Scope};
use crate::engine::plan::{self, Action, FORMAT_VERSION, Mode, Plan};
use crate::engine::provider::{Finding, Provider, StepOptions};
use crate::stack::desired::Desired;
use crate::stack::{self, Overrides, Stack};
use crate::ui::progress::{PlainProgress, TtyProgress};
use crate::ui::{self, Style};

/// Exit codes (documented in `infra --help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const CHANGES: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

/// An error already shown to the user; only the exit code is left.
#[derive(Debug)]
pub struct Reported(pub i32);
impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}
impl std::error::Error for Reported {}

/// The exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if let Some(Reported(c)) = e.downcast_ref::<Reported>() {
        *c
    } else if e.downcast_ref::<LockHeld>().is_some() {
        exit::LOCKED
    } else {
        exit::ERROR
    }
}

/// The stack file, the command line's overrides of it, and how to reach AWS.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub file: std::path::PathBuf,
    pub overrides: Overrides,
    /// AWS shared-config profile.
    pub profile: Option<String>,
}

/// How `apply` and `destroy` run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Don't ask for confirmation.
    pub auto_approve: bool,
    /// Steps at once, at most.
    pub parallelism: usize,
    pub skip_final_backup: bool,
    /// JSON lines instead of the terminal view.
    pub json: bool,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
    pub scope: Scope,
    /// Wait for slow propagation (CloudFront) before a step counts as done.
    pub wait: bool,
    /// After a successful apply, check that the stack serves (`apply
    /// --check`), for at most this long.
    pub check: Option<Duration>,
    /// Refuse an apply that leaves the stack costing more than this a month.
    pub budget: Option<f64>,
    /// Apply a saved plan that widens access.
    pub allow_broadening: bool,
}

/// Loads and validates the stack file, printing located errors.
pub fn load(src: &Source) -> Result<Stack> {
    match stack::load(&src.file, &src.overrides) {
        Ok(s) => Ok(s),
        Err(d) => {
            eprint!("{}", d.render());
            Err(Reported(exit::ERROR).into())
        }
    }
}

/// The AWS provider for a stack name in a region.
pub async fn connect(name: &str, region: &str, src: &Source) -> Result<Arc<AwsProvider>> {
    let aws = Aws::connect(name, region, src.profile.as_deref()).await?;
    Ok(Arc::new(AwsProvider::new(aws)))
}

/// The AWS provider for a stack.
pub async fn provider(stack: &Stack, src: &Source) -> Result<Arc<AwsProvider>> {
    connect(&stack.name, &stack.region, src).await
}

/// The chain that sets how long a first apply of `resources` takes (what
/// `infra graph` draws in red), by the registered kinds' `KindInfo`: known
/// without AWS.
pub fn critical_path(resources: &[crate::engine::resource::Resource]) -> Result<Vec<String>> {
    let infos: std::collections::HashMap<&str, crate::engine::provider::KindInfo> =
        crate::aws::registry::kinds().iter().map(|k| (k.name(), k.info())).collect();
    crate::engine::graph::critical_path(resources, &|kind| infos.get(kind).copied().unwrap_or_default())
}

/// Reads the live stack and plans `mode`, restricted to `scope`.
pub async fn plan(stack: &Stack, p: &dyn Provider, mode: Mode, scope: &Scope) -> Result<Plan> {
    let mut desired: Desired = stack::expand(stack);
    let kinds = p.kinds();
    // The look-ups and the read run side by side (neither needs the other):
    // a plan takes as many round trips as the longest of the two chains,
    // not their sum. The read is polled first (see `AwsProvider::read`).
    let read = p.read(&kinds);
    let prepare = async {
        if mode == Mode::Apply {
            // Look-ups only for what the plan keeps (`--target`, `--exclude`).
            let keep = filter::selected(&desired.resources, &scope.targets, &scope.excludes);
            let mut kept: Vec<&mut crate::engine::resource::Resource> =
                desired.resources.iter_mut().zip(keep).filter_map(|(r, k)| k.then_some(r)).collect();
            p.prepare(&mut kept).await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (live, prepared) = futures::join!(read, prepare);
    prepared?;
    let live = live?;
    let changes = match mode {
        Mode::Apply => diff(&desired.resources, live.clone(), p)?,
        Mode::Destroy => destroy_all(live.clone(), p),
    };
    let (changes, unmatched) = filter::restrict(changes, &scope.targets, &scope.excludes, p);
    if !unmatched.is_empty() {
        bail!(
            "no resource matches {}; addresses look like `network.subnet.public.us-east-1a` (see `infra plan`)",
            unmatched.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
        );
    }
    let mut plan = Plan::new(&stack.name, &stack.region, mode, changes, &live);
    plan.order_by_group(&stack::TIERS);
    plan.notes.extend(p.plan_notes(&plan.changes));
    plan.cost = crate::engine::review::price(&plan, p);
    plan.widens = crate::engine::review::widenings(&plan.changes, p);
    Ok(plan)
}

/// Whose deploy policy `infra policy` prints, and for what.
#[derive(Clone, Debug, Default)]
pub struct PolicyOptions {
    /// A saved plan: its stack, region and changed kinds instead of the file's.
    pub plan: Option<std::path::PathBuf>,
    /// A pattern of stack names (`webapp*`) instead of the one stack.
    pub stacks: Option<String>,
    pub account: Option<String>,
    pub partition: Option<String>,
}

/// The stack's name and the least-privilege policy document of a principal
/// that plans, applies and destroys it (see `aws::deploy_policy`).
pub async fn policy(src: &Source, opts: &PolicyOptions) -> Result<(String, serde_json::Value)> {
    let (name, region, kinds): (String, String, Vec<String>) = match &opts.plan {
        Some(path) => {
            let saved = read_saved(path)?;
            let kinds = saved.changes.iter().map(|c| c.kind.clone()).collect();
            (saved.stack, saved.region, kinds)
        }
        None => {
            let stack = load(src)?;
            let kinds = stack::expand(&stack).resources.into_iter().map(|r| r.kind).collect();
            (stack.name, stack.region, kinds)
        }
    };
    if let Some(a) = &opts.account
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        bail!("--account {a}: an AWS account ID is 12 digits (e.g. 123456789012)");
    }
    let (account, partition) = match &opts.account {
        Some(a) => (a.clone(), opts.partition.clone().unwrap_or_else(|| "aws".into())),
        None => {
            let p = connect(&name, &region, src).await?;
            let (account, partition) = p.aws.identity().await?.clone();
            (account, opts.partition.clone().unwrap_or(partition))
        }
    };
    if let Some(p) = &opts.stacks
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*'))
    {
        bail!(
            "--stacks {p}: a stack name with `*` for any characters (lowercase letters, digits, hyphens), e.g. `{name}*`"
        );
    }
    let stack = opts.stacks.clone().unwrap_or_else(|| name.clone());
    let who = crate::aws::deploy_policy::Principal { stack, region, account, partition };
    Ok((name, crate::aws::deploy_policy::document(&who, kinds.iter().map(String::as_str))))
}

/// Reads a saved plan.
pub fn read_saved(path: &Path) -> Result<Plan> {
    let text = std::fs::read(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_slice(&text).with_context(|| {
        format!("{} is not a saved plan (not JSON); make one with `infra plan -o FILE`", path.display())
    })?;
    let version = v.get("format_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        bail!(
            "{} is not a plan this version of infra can apply (format {:?}, expected {FORMAT_VERSION}); make a new one with `infra plan -o FILE`",
            path.display(),
            version
        );
    }
    serde_json::from_value(v).with_context(|| format!("{} is not a valid saved plan", path.display()))
}

/// Refuses a saved plan when the cloud moved since it was made.
pub async fn check_fresh(saved: &Plan, p: &dyn Provider) -> Result<()> {
    let live = p.read(&p.kinds()).await?;
    let drift = plan::fingerprint_drift(&saved.state, &plan::fingerprints(&live));
    if !drift.is_empty() {
        bail!(
            "the saved plan is stale: the cloud changed since it was made ({}). Nothing was changed; run `infra plan -o FILE` again",
            drift.join("; ")
        );
    }
    Ok(())
}

/// The stack's outputs, resolved against the live cloud: (name, value, description).
/// A value is `None` when its resource does not exist (yet).
pub async fn outputs(stack: &Stack, p: &dyn Provider) -> Result<Vec<(String, Option<serde_json::Value>, String)>> {
    let desired = stack::expand(stack);
    let live = p.read(&p.kinds()).await?;
    Ok(desired
        .outputs
        .iter()
        .map(|o| {
            let v = live.iter().find(|l| l.address == o.address).and_then(|l| l.attr(o.attr));
            (o.name.to_string(), v, o.description.to_string())
        })
        .collect())
}

/// Takes the stack lock, telling the user when it has to wait.
pub async fn lock(p: &AwsProvider, command: &str, timeout: Duration) -> Result<Lock> {
    p.aws
        .acquire(command, timeout, &|holder| {
            eprintln!("Waiting up to {} for the stack lock held by {holder}...", humantime::format_duration(timeout));
        })
        .await
}

/// Asks for confirmation on a terminal; without one, requires --auto-approve.
/// Ctrl-C while asking answers no.
pub async fn confirm(plan: &Plan, auto_approve: bool) -> Result<()> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to confirm on: pass --auto-approve to {} without confirmation", verb(plan.mode));
    }
    eprint!("\nDo you want to {} stack \"{}\"? Only 'yes' will be accepted: ", verb(plan.mode), plan.stack);
    std::io::stderr().flush()?;
    let answer = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    });
    let line = answer.await??;
    if line.trim() != "yes" {
        bail!("{} cancelled", verb(plan.mode));
    }
    Ok(())
}

fn verb(m: Mode) -> &'static str {
    match m {
        Mode::Apply => "apply",
        Mode::Destroy => "destroy",
    }
}

/// Refuses to delete what the file protects.
pub fn check_protection(plan: &Plan) -> Result<()> {
    let protected: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter(|c| c.deletion_protected)
        .map(|c| c.address.as_str())
        .collect();
    if !protected.is_empty() {
        bail!(
            "refusing to delete {}: deletion protection is on (`deletion_protection: true`). To lift it, set `deletion_protection: false` for it in the stack file and run `infra apply` on its own first; nothing was changed.",
            protected.join(", ")
        );
    }
    Ok(())
}

/// Refuses a plan that leaves the stack over `budget` dollars a month.
pub fn check_budget(plan: &Plan, budget: Option<f64>) -> Result<()> {
    let Some(budget) = budget else { return Ok(()) };
    let Some(cost) = &plan.cost else {
        bail!(
            "--budget: this plan has no cost (it was saved by a version of infra without prices); make a new one with `infra plan -o FILE`"
        )
    };
    match crate::engine::cost::over_budget(cost, budget) {
        Some(why) => bail!("{why}"),
        None => Ok(()),
    }
}

/// How a run reports: JSON lines, a live terminal view, or plain lines.
pub enum Output {
    Json,
    Tty,
    Plain,
}

impl Output {
    pub fn choose(json: bool) -> Output {
        if json {
            Output::Json
        } else if std::io::stdout().is_terminal() {
            Output::Tty
        } else {
            Output::Plain
        }
    }
}

/// Prints a plan in the run's output mode.
pub fn show_plan(plan: &Plan, out: &Output, style: Style) {
    match out {
        Output::Json => {
            let v = serde_json::json!({ "event": "plan", "time": plan::now_rfc3339(), "plan": plan });
            println!("{v}");
        }
        _ => print!("{}", ui::render::text(plan, style)),
    }
}

/// Runs a plan with progress output and Ctrl-C handling.
pub async fn execute(
    plan: &Plan, p: Arc<AwsProvider>, args: &RunOptions, style: Style, out: &Output, cancel: &Cancel,
) -> Result<Report> {
    let opts = ExecOptions {
        parallelism: args.parallelism.max(1),
        step: StepOptions { skip_final_backup: args.skip_final_backup, wait: args.wait },
        cancel: cancel.clone(),
        ..ExecOptions::default()
    };
    if args.skip_final_backup && plan.changes.iter().any(|c| c.data_loss) {
        eprintln!(
            "{} --skip-final-backup: databases and tables are deleted WITHOUT a final snapshot or backup.",
            style.red("Warning:")
        );
    }
    let total = executor::build_steps(&plan.changes, p.as_ref())?.len();
    let plain = PlainProgress::new(style, matches!(out, Output::Json));
    let tty = matches!(out, Output::Tty).then(|| TtyProgress::new(style, total));
    let sink: Arc<dyn EventSink> = match &tty {
        Some(t) => t.clone(),
        None => plain.clone(),
    };
    let ticker = (tty.is_none()).then(|| {
        let plain = plain.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            every.tick().await;
            loop {
                every.tick().await;
                plain.tick(Duration::from_secs(30));
            }
        })
    });
    let provider: Arc<dyn Provider> = p;
    let report = executor::execute(plan, provider, &opts, sink).await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(t) = &tty {
        t.finish();
    }
    report
}

/// Watches for Ctrl-C: the first cancels (no new step starts, running ones
/// finish, the lock is released); the second aborts at once.
fn watch_interrupts(cancel: Cancel) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupted: no new steps will start; waiting for the running ones to finish (Ctrl-C again to abort at once)."
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Aborted. The stack lock may remain: `infra unlock` removes it.");
                std::process::exit(exit::INTERRUPTED);
            }
        }
    })
}

/// Prints the end-of-run summary and returns the exit code.
pub fn summarize(plan: &Plan, report: &Report, style: Style, out: &Output) -> i32 {
    let code = if report.ok() {
        exit::OK
    } else if report.cancelled && report.failed.is_empty() {
        exit::INTERRUPTED
    } else {
        exit::ERROR
    };
    if let Output::Json = out {
        let v = serde_json::json!({ "event": "summary", "time": plan::now_rfc3339(), "ok": report.ok(), "report": report, "plan_summary": plan.summary });
        println!("{v}");
        return code;
    }
    for n in &report.notes {
        println!("{n}");
    }
    if report.ok() {
        println!(
            "\n{} {} step(s) in {}.",
            style.green(if plan.mode == Mode::Apply { "Apply complete:" } else { "Destroy complete:" }),
            report.done,
            ui::progress::elapsed(Duration::from_secs_f64(report.seconds))
        );
        return code;
    }
    eprintln!();
    for (a, e) in &report.failed {
        eprintln!("{} {a}: {e}", style.red("Error:"));
    }
    if !report.skipped.is_empty() {
        eprintln!("Skipped because a dependency failed: {}", report.skipped.join(", "));
    }
    if report.cancelled {
        eprintln!("Interrupted: {} step(s) done, {} not started.", report.done, report.not_started.len());
    }
    eprintln!("Run the same command again to continue from where the cloud is now.");
    code
}

/// Plan (or take a saved plan), lock, confirm, execute, release: apply and destroy.
/// `wait`: wait for changes that propagate slowly (CloudFront) to be deployed.
pub async fn run(src: &Source, mode: Mode, args: &RunOptions, saved: Option<&Path>, style: Style) -> Result<i32> {
    let out = Output::choose(args.json);
    let (p, saved_plan, stack) = match saved {
        Some(path) => {
            let plan = read_saved(path)?;
            if let Some(s) = &src.overrides.stack
                && s != &plan.stack
            {
                bail!("the saved plan belongs to stack \"{}\", not \"{s}\"; nothing was changed", plan.stack);
            }
            if src.file.exists()
                && let Ok(s) = stack::load(&src.file, &src.overrides)
                && (s.name != plan.stack || s.region != plan.region)
            {
                bail!(
                    "the saved plan belongs to stack \"{}\" in {}, but {} is stack \"{}\" in {}; nothing was changed",
                    plan.stack,
                    plan.region,
                    src.file.display(),
                    s.name,
                    s.region
                );
            }
            (connect(&plan.stack, &plan.region, src).await?, Some(plan), None)
        }
        None => {
            let stack = load(src)?;
            (provider(&stack, src).await?, None, Some(stack))
        }
    };
    let cancel = Cancel::default();
    let watcher = watch_interrupts(cancel.clone());
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let lock = tokio::select! {
        l = lock(&p, &command, args.lock_timeout) => l?,
        _ = cancel.cancelled() => {
            eprintln!("Interrupted before anything was changed.");
            return Ok(exit::INTERRUPTED);
        }
    };
    let result: Result<i32> = async {
        let prepare = async {
            match (&saved_plan, &stack) {
                (Some(plan), _) => {
                    check_fresh(plan, p.as_ref()).await?;
                    Ok(plan.clone())
                }
                (None, Some(stack)) => self::plan(stack, p.as_ref(), mode, &args.scope).await,
                (None, None) => bail!("internal error: neither a saved plan nor a stack file"),
            }
        };
        let plan: Plan = tokio::select! {
            p = prepare => p?,
            _ = cancel.cancelled() => {
                eprintln!("Interrupted before anything was changed.");
                return Ok(exit::INTERRUPTED);
            }
        };
        show_plan(&plan, &out, style);
        if !plan.has_changes() {
            return after_apply(stack.as_ref(), p.as_ref(), plan.mode, args, style).await;
        }
        check_protection(&plan)?;
        if plan.mode == Mode::Apply {
            check_budget(&plan, args.budget)?;
        }
        // A saved plan applies unattended (CI): what it opens must have been
        // allowed. Judged again here, not read from the file.
        if saved_plan.is_some() && !args.allow_broadening {
            let widens = crate::engine::review::widenings(&plan.changes, p.as_ref());
            if !widens.is_empty() {
                let said: Vec<String> = widens.iter().map(|w| format!("{}: {}", w.address, w.what)).collect();
                bail!(
                    "the saved plan widens access ({}). Nothing was changed; once it is reviewed, apply it with --allow-broadening",
                    said.join("; ")
                );
            }
        }
        // A saved plan was reviewed when it was made.
        if saved_plan.is_none() {
            tokio::select! {
                c = confirm(&plan, args.auto_approve) => c?,
                _ = cancel.cancelled() => bail!("{} cancelled", verb(plan.mode)),
            }
        }
        let report = execute(&plan, p.clone(), args, style, &out, &cancel).await?;
        let code = summarize(&plan, &report, style, &out);
        if code == exit::OK
            && plan.mode == Mode::Apply
            && !matches!(out, Output::Json)
            && let Some(stack) = &stack
        {
            print_outputs(stack, p.as_ref()).await;
        }
        if code != exit::OK {
            return Ok(code);
        }
        after_apply(stack.as_ref(), p.as_ref(), plan.mode, args, style).await
    }
    .await;
    watcher.abort();
    let released = p.aws.release(&lock).await;
    let code = result?;
    released?;
    Ok(code)
}

/// `apply --check`: once the stack is as the file says, whether it serves.
async fn after_apply(
    stack: Option<&Stack>, p: &dyn Provider, mode: Mode, args: &RunOptions, style: Style,
) -> Result<i32> {
    match (stack, args.check) {
        (Some(stack), Some(timeout)) if mode == Mode::Apply => {
            if !args.json {
                println!();
            }
            check(stack, p, timeout, args.json, style).await
        }
        _ => Ok(exit::OK),
    }
}

/// Longest pause between two rounds of a check.
const CHECK_PAUSE: Duration = Duration::from_secs(15);

/// `infra check`: whether the deployed stack serves. Every resource of the
/// file must exist; each kind then checks its own (routes answer, targets
/// are healthy, the database is available...). Failing checks are tried
/// again, with growing pauses, until they pass or `timeout` is spent: what
/// is still warming up (instances passing their health checks, a cold
/// function) gets its time, and the run always ends. Prints the report;
/// exit 1 when any check failed.
pub async fn check(stack: &Stack, p: &dyn Provider, timeout: Duration, json: bool, style: Style) -> Result<i32> {
    let start = std::time::Instant::now();
    let desired = stack::expand(stack);
    let live = p.read(&p.kinds()).await?;
    let mut findings: Vec<Finding> = Vec::new();
    let mut pending: Vec<&crate::engine::resource::Live> = Vec::new();
    for r in &desired.resources {
        match live.iter().find(|l| l.address == r.address) {
            Some(l) => pending.push(l),
            None => findings.push(Finding::new(&r.address, "deployed", false, "not found: run `infra apply`")),
        }
    }
    let mut by_address: std::collections::BTreeMap<String, Vec<Finding>> = Default::default();
    let mut rounds = 0;
    let mut pause = Duration::from_secs(2);
    loop {
        rounds += 1;
        for f in p.verify(&pending, &live).await {
            by_address.entry(f.address.clone()).or_default().push(f);
        }
        // Only the resources with a failing check run again; their latest
        // findings replace the earlier ones.
        let failing: Vec<String> =
            by_address.iter().filter(|(_, fs)| fs.iter().any(|f| !f.ok)).map(|(a, _)| a.clone()).collect();
        pending.retain(|l| failing.contains(&l.address));
        if pending.is_empty() || start.elapsed() + pause > timeout {
            break;
        }
        if !json {
            eprintln!("{} check(s) failing, again in {}s…", failing.len(), pause.as_secs());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(CHECK_PAUSE);
        for a in &failing {
            by_address.remove(a);
        }
    }
    // In the file's order.
    for r in &desired.resources {
        if let Some(fs) = by_address.remove(&r.address) {
            findings.extend(fs);
        }
    }
    let report = ui::check::CheckReport {
        stack: &stack.name,
        region: &stack.region,
        findings: &findings,
        seconds: start.elapsed().as_secs_f64(),
        rounds,
    };
    if json {
        println!("{}", ui::check::json(&report));
    } else {
        print!("{}", ui::check::text(&report, style));
    }
    Ok(if report.failed() == 0 { exit::OK } else { exit::ERROR })
}

/// Prints the stack's outputs (e.g. the load balancer's DNS name), read
/// from the cloud: only the kinds that hold them are read.
pub async fn print_outputs(stack: &Stack, p: &dyn Provider) {
    let desired = stack::expand(stack);
    let mut kinds: Vec<&str> = desired
        .outputs
        .iter()
        .filter_map(|o| desired.resources.iter().find(|r| r.address == o.address))
        .map(|r| r.kind.as_str())
        .collect();
    kinds.sort();
    kinds.dedup();
    if kinds.is_empty() {
        return;
    }
    let live = match p.read(&kinds).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("(outputs not shown: {e:#})");
            return;
        }
    };
    println!("\nOutputs:");
    for o in &desired.outputs {
        let v = live.iter().find(|l| l.address == o.address).and_then(|l| l.attr(o.attr));
        let shown = match v {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => "(not created)".into(),
        };
        println!("  {} = {shown}", o.name);
    }
}
