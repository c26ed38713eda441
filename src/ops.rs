//! The operations behind the commands: load, plan, execute. Commands in
//! `main.rs` only parse flags, call these and choose exit codes.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::aws::{Aws, AwsProvider};
use crate::cli::{ExecArgs, Global};
use crate::config::{self, Overrides, Stack};
use crate::engine::diff::{destroy_all, diff};
use crate::engine::executor::{self, ExecOptions, Report};
use crate::engine::plan::{Action, Mode, Plan};
use crate::engine::provider::{DeleteOptions, Provider};
use crate::model::{self, Desired};
use crate::ui::progress::PlainProgress;
use crate::ui::{self, Style};

/// Exit codes (documented in `infra --help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = 1;
    pub const CHANGES: i32 = 2;
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

/// Loads and validates the stack file, printing located errors.
pub fn load(g: &Global) -> Result<Stack> {
    let ov = Overrides {
        stack: g.stack.clone(),
        region: g.region.clone(),
        environment: g.env.clone(),
    };
    match config::load(&g.file, &ov) {
        Ok(s) => Ok(s),
        Err(d) => {
            eprint!("{}", d.render());
            Err(Reported(exit::ERROR).into())
        }
    }
}

/// The AWS provider for a stack.
pub async fn provider(stack: &Stack, g: &Global) -> Result<Arc<AwsProvider>> {
    let aws = Aws::connect(&stack.name, &stack.region, g.profile.as_deref()).await?;
    Ok(Arc::new(AwsProvider::new(aws)))
}

/// Reads the live stack and plans `mode`.
pub async fn plan(stack: &Stack, p: &dyn Provider, mode: Mode) -> Result<Plan> {
    let desired: Desired = model::expand(stack);
    let live = p.read(&Desired::kinds()).await?;
    let changes = match mode {
        Mode::Apply => diff(&desired.resources, live.clone(), p)?,
        Mode::Destroy => destroy_all(live.clone(), p),
    };
    Ok(Plan::new(&stack.name, &stack.region, mode, changes, &live))
}

/// Asks for confirmation on a terminal; without one, requires --auto-approve.
pub fn confirm(plan: &Plan, auto_approve: bool) -> Result<()> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to confirm on: pass --auto-approve to {} without confirmation",
            verb(plan.mode)
        );
    }
    print!(
        "\nDo you want to {} stack \"{}\"? Only 'yes' will be accepted: ",
        verb(plan.mode),
        plan.stack
    );
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
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
pub fn check_protection(plan: &Plan, stack: &Stack) -> Result<()> {
    let desired = model::expand(stack);
    let protected: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter(|c| {
            c.desired.as_ref().is_some_and(|d| d.deletion_protected())
                || desired
                    .resources
                    .iter()
                    .any(|d| d.address == c.address && d.deletion_protected())
                // Protected in the cloud (AWS would refuse, after the backup).
                || c.live.as_ref().is_some_and(|l| {
                    l.props.get("deletion_protection").and_then(serde_json::Value::as_bool)
                        == Some(true)
                })
        })
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

/// Runs a plan with progress output and Ctrl-C handling.
pub async fn execute(
    plan: &Plan,
    p: Arc<AwsProvider>,
    args: &ExecArgs,
    style: Style,
    json: bool,
) -> Result<Report> {
    let opts = ExecOptions {
        parallelism: args.parallelism.max(1),
        delete: DeleteOptions {
            skip_final_backup: args.skip_final_backup,
        },
        ..ExecOptions::default()
    };
    if args.skip_final_backup && plan.changes.iter().any(|c| c.data_loss) {
        eprintln!(
            "{} --skip-final-backup: databases and tables are deleted WITHOUT a final snapshot or backup.",
            style.red("Warning:")
        );
    }
    let progress = PlainProgress::new(style, json);
    let cancel = opts.cancel.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nInterrupted: no new steps will start; waiting for running steps to finish (Ctrl-C again to abort)."
            );
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let ticker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            every.tick().await;
            loop {
                every.tick().await;
                progress.tick(Duration::from_secs(10));
            }
        })
    };
    let provider: Arc<dyn Provider> = p;
    let report = executor::execute(plan, provider, &opts, progress.clone()).await;
    ticker.abort();
    ctrl_c.abort();
    report
}

/// Prints the end-of-run summary and returns the exit code.
pub fn summarize(plan: &Plan, report: &Report, style: Style, json: bool) -> i32 {
    if json {
        let v = serde_json::json!({ "event": "summary", "ok": report.ok(), "report": report, "plan_summary": plan.summary });
        println!("{v}");
        return if report.ok() { exit::OK } else { exit::ERROR };
    }
    for n in &report.notes {
        println!("{n}");
    }
    if report.ok() {
        println!(
            "\n{} {} step(s) in {}.",
            style.green(&format!(
                "{} complete:",
                verb(plan.mode)
                    .replace("apply", "Apply")
                    .replace("destroy", "Destroy")
            )),
            report.done,
            ui::progress::elapsed(Duration::from_secs_f64(report.seconds))
        );
        return exit::OK;
    }
    eprintln!();
    for (a, e) in &report.failed {
        eprintln!("{} {a}: {e}", style.red("Error:"));
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "Skipped because a dependency failed: {}",
            report.skipped.join(", ")
        );
    }
    if report.cancelled {
        eprintln!(
            "Interrupted: {} step(s) done, {} not started.",
            report.done,
            report.not_started.len()
        );
    }
    eprintln!("Run the same command again to continue from where the cloud is now.");
    exit::ERROR
}
