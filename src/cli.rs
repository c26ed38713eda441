//! Command-line interface (clap). Every command and flag is documented here;
//! `infra --help` and `infra <command> --help` print it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `infra --version`: the package version, and the commit and date it was
/// built from (`build.rs`; "unknown" outside a git checkout).
pub const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (", env!("INFRA_COMMIT"), " ", env!("INFRA_COMMIT_DATE"), ")");

/// Provision a highly available AWS web stack from one declarative stack.yaml.
///
/// The cloud is the state: resources are found by their `infra:stack` and
/// `infra:address` tags, so there is no state file to keep, share or lock.
/// Credentials, region and endpoint come from the standard AWS chain
/// (environment, profiles, SSO, instance metadata); set AWS_ENDPOINT_URL to
/// point every client at an emulator such as moto.
///
/// Exit codes: 0 success (plan: no changes with --detailed-exitcode),
/// 1 error, 2 changes present (plan --detailed-exitcode), 3 the stack is
/// locked by another run.
#[derive(Parser, Debug)]
#[command(name = "infra", version = VERSION, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The stack file.
    #[arg(short = 'f', long = "file", global = true, default_value = "stack.yaml", value_name = "FILE")]
    pub file: PathBuf,
    /// Deploy the file under another stack name (side-by-side stacks, e.g. one per pull request).
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// Environment overlay from the file's `environments:` to merge over the base.
    #[arg(short = 'e', long = "env", global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// AWS region (else the file's `region`, else AWS_REGION / the profile).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS shared-config profile to use.
    #[arg(long, global = true, value_name = "NAME", env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Log what happens on stderr (-v info, -vv debug, -vvv AWS SDK traces).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and check the stack file; makes no network call.
    Validate,
    /// Show what apply would change, diffed against the live cloud.
    Plan(PlanArgs),
    /// Show the plan, ask for confirmation, then make the cloud match the file
    /// (or apply a plan saved with `infra plan -o FILE`, exactly, without asking).
    Apply(ApplyArgs),
    /// Delete every resource tagged with this stack.
    Destroy(DestroyArgs),
    /// Remove the stack's lock left by a run that died (prints who held it).
    Unlock,
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// PowerShell: `source <(infra completions bash)`, or save it where your
    /// shell loads completions (e.g. ~/.local/share/bash-completion/completions/infra).
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `infra man | man -l -`, or save it as
    /// infra.1 in a man directory (e.g. ~/.local/share/man/man1/).
    Man,
    /// Print the architecture diagram of the stack (Mermaid renders on GitHub).
    Graph(GraphArgs),
    /// Print the stack's outputs (load balancer DNS name, API URL...), read from the live cloud.
    Output(OutputArgs),
    /// Prove the deployed stack serves: every API route answers without a
    /// 5xx, the site answers through CloudFront, the load balancer's targets
    /// are healthy in every AZ, functions are active, the database is
    /// available and Multi-AZ. Exit 1 naming what failed.
    Check(CheckArgs),
    /// Print the JSON Schema of stack.yaml (for editors), or of the JSON plan.
    Schema(SchemaArgs),
    /// Print the least-privilege IAM policy (JSON) of a principal that plans,
    /// applies and destroys this stack: reads across the account, writes
    /// only to the stack's resources (by name or by its `infra:stack` tag).
    /// Give it to the CI role instead of administrator rights. Makes no AWS
    /// call with --account.
    Policy(PolicyArgs),
    /// Start a new project in DIR (default: here): a commented stack.yaml
    /// (named after the folder, or --stack), its schema for editors, the two
    /// example services with their tests, the site, the web tier's user data
    /// and a GitHub Actions workflow; only the chosen tiers (and what they need).
    /// Makes no network call and overwrites nothing.
    Init(InitArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to write the project in (made if missing).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The tiers to write: network (always) and any of compute, frontend,
    /// data, backend, comma-separated. Default: all of them.
    #[arg(long, value_delimiter = ',', value_name = "TIERS")]
    pub tiers: Option<Vec<String>>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan a destroy instead.
    #[arg(long)]
    pub destroy: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Shorthand for --format json.
    #[arg(long)]
    pub json: bool,
    /// Save the plan to FILE, for `infra apply FILE`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Fail when the stack's monthly cost after the change (with every
    /// Auto Scaling group at its maximum size) would exceed USD.
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    pub budget: Option<f64>,
    #[command(flatten)]
    pub scope: Scope,
}

/// Part of the stack.
#[derive(Args, Debug, Clone, Default)]
pub struct Scope {
    /// Only this address (or everything under it, e.g. `network.subnet`) and
    /// what it needs. Repeatable.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Leave out this address (or everything under it) and what depends on it. Repeatable.
    #[arg(long = "exclude", value_name = "ADDRESS")]
    pub excludes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// The policy to apply this saved plan (`infra plan -o FILE`, or `infra
    /// plan --destroy -o FILE` for a destroy): writes to the kinds it
    /// changes, which include what a part removed from the file left.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// The policy for every stack whose name matches PATTERN, `*` matching
    /// any characters: `webapp*` for webapp and its pull-request stacks
    /// (`--stack webapp-pr-12`). Default: the file's stack.
    #[arg(long, value_name = "PATTERN")]
    pub stacks: Option<String>,
    /// The 12-digit account the stack is in (default: the caller's, from
    /// sts:GetCallerIdentity).
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// The partition: aws, aws-cn, aws-us-gov (default: the caller's, or
    /// aws with --account).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Write the policy to DIR as documents that each fit one managed policy
    /// (IAM counts at most 6,144 characters), `<stack>-deploy-N.json`, and
    /// print their paths.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// The schema of the JSON plan (`infra plan --json`, saved plans) instead.
    #[arg(long)]
    pub plan: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Skip the interactive confirmation (required without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Steps run at once, at most.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub parallelism: usize,
    /// Delete databases and tables without taking a final backup first.
    #[arg(long)]
    pub skip_final_backup: bool,
    /// JSON output: the plan, then one JSON event per line (step started,
    /// finished, failed, with timings), then a summary.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for another run's lock on the stack (e.g. 30s, 5m).
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: humantime::Duration,
    #[command(flatten)]
    pub scope: Scope,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved with `infra plan -o FILE`: applied exactly, refused if the
    /// cloud changed since it was made.
    #[arg(value_name = "PLAN")]
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Wait until CloudFront has deployed the changes (15+ minutes on AWS).
    #[arg(long)]
    pub wait: bool,
    /// Then run `infra check`: exit 1 when the stack does not serve.
    #[arg(long)]
    pub check: bool,
    /// How long `--check` may retry what is still warming up.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub check_timeout: humantime::Duration,
    /// Apply a saved plan even though it widens access (a port opened to the
    /// internet, a policy gaining actions...), once someone has reviewed it.
    #[arg(long)]
    pub allow_broadening: bool,
    /// Fail when the stack's monthly cost after the change (with every
    /// Auto Scaling group at its maximum size) would exceed USD.
    #[arg(long, value_name = "USD", value_parser = parse_budget)]
    pub budget: Option<f64>,
}

/// A monthly budget: a positive amount of dollars.
fn parse_budget(s: &str) -> Result<f64, String> {
    match s.trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a monthly budget: give a positive amount in USD, e.g. --budget 500")),
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Print one JSON document: every check, with `ok` and what was seen.
    #[arg(long)]
    pub json: bool,
    /// How long failing checks are retried (instances still passing their
    /// health checks, cold functions) before the run fails.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: humantime::Duration,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Print only this output's value.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

impl Global {
    /// The stack file and overrides, for `ops`.
    pub fn source(&self) -> crate::ops::Source {
        crate::ops::Source {
            file: self.file.clone(),
            overrides: crate::stack::Overrides {
                stack: self.stack.clone(),
                region: self.region.clone(),
                environment: self.env.clone(),
            },
            profile: self.profile.clone(),
        }
    }
}

impl Scope {
    pub fn scope(&self) -> crate::engine::filter::Scope {
        crate::engine::filter::Scope { targets: self.targets.clone(), excludes: self.excludes.clone() }
    }
}

impl ExecArgs {
    /// How to run, for `ops::run` (`wait`: `apply --wait`).
    pub fn options(&self, wait: bool, check: Option<std::time::Duration>) -> crate::ops::RunOptions {
        crate::ops::RunOptions {
            auto_approve: self.auto_approve,
            parallelism: self.parallelism,
            skip_final_backup: self.skip_final_backup,
            json: self.json,
            lock_timeout: *self.lock_timeout,
            scope: self.scope.scope(),
            wait,
            check,
            budget: None,
            allow_broadening: false,
        }
    }
}
