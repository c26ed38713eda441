//! The `infra` command: parses flags, dispatches to `infra::ops`, and turns
//! the outcome into an exit code.

use clap::Parser;

use infra::cli::{Cli, Command, Format, GraphFormat};
use infra::engine::plan::Mode;
use infra::ops::{self, exit};
use infra::stack;
use infra::ui::{self, Style};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(exit::ERROR);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            if e.downcast_ref::<ops::Reported>().is_none() {
                eprintln!("Error: {e:#}");
            }
            ops::exit_code(&e)
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(code);
}

fn init_logging(v: u8) {
    let filter = match v {
        0 => "warn,aws_config=error,aws_smithy_runtime=error",
        1 => "info,infra=info,aws=warn,aws_config=warn,aws_smithy_runtime=warn",
        2 => "debug,hyper=info,rustls=info,h2=info,aws_smithy_runtime=info",
        _ => "trace,hyper=debug,rustls=info,h2=info",
    };
    let filter =
        if v == 0 { std::env::var("INFRA_LOG").unwrap_or_else(|_| filter.to_string()) } else { filter.to_string() };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(v >= 2)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let src = &cli.global.source();
    let g = &cli.global;
    let style = Style { on: ui::color_enabled(g.no_color) };
    match &cli.command {
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "infra", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?;
            Ok(exit::OK)
        }
        Command::Schema(args) => {
            let schema = if args.plan {
                serde_json::to_value(schemars::schema_for!(infra::engine::plan::Plan))?
            } else {
                stack::spec::json_schema()
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(exit::OK)
        }
        Command::Init(args) => {
            let name = g.stack.clone().unwrap_or_else(|| infra::init::default_name(&args.dir));
            let region = g.region.clone().or_else(stack::check::region_from_env).unwrap_or_else(|| "us-east-1".into());
            let all: Vec<String> = stack::TIERS.iter().map(|t| t.to_string()).collect();
            let project = infra::init::project(&name, &region, args.tiers.as_deref().unwrap_or(&all))?;
            infra::init::write(&args.dir, &project)?;
            for (tier, why) in &project.tiers.added {
                eprintln!("note: {tier} is included: {why}");
            }
            println!(
                "Wrote stack \"{}\" ({}; {}) in {}: {} files.",
                project.name,
                project.region,
                project.tiers.tiers.join(", "),
                args.dir.display(),
                project.files.len()
            );
            for (p, _) in &project.files {
                println!("  {}", p.display());
            }
            let cd = if args.dir == std::path::Path::new(".") {
                String::new()
            } else {
                format!("cd {} && ", args.dir.display())
            };
            println!("Next: {cd}infra validate && infra plan");
            Ok(exit::OK)
        }
        Command::Validate => {
            let stack = ops::load(src)?;
            let desired = stack::expand(&stack);
            println!(
                "{} is valid: stack \"{}\" in {} across {} ({} resources).",
                g.file.display(),
                stack.name,
                stack.region,
                stack.azs.join(", "),
                desired.resources.len()
            );
            Ok(exit::OK)
        }
        Command::Graph(args) => {
            let stack = ops::load(src)?;
            let desired = stack::expand(&stack);
            let critical = ops::critical_path(&desired.resources)?;
            match args.format {
                GraphFormat::Mermaid => {
                    print!("{}", ui::graph::mermaid(&desired.resources, &stack.azs, &critical))
                }
                GraphFormat::Dot => print!("{}", ui::graph::dot(&desired.resources, &stack.azs, &critical)),
            }
            Ok(exit::OK)
        }
        Command::Plan(args) => {
            let stack = ops::load(src)?;
            let p = ops::provider(&stack, src).await?;
            let mode = if args.destroy { Mode::Destroy } else { Mode::Apply };
            let plan = ops::plan(&stack, p.as_ref(), mode, &args.scope.scope()).await?;
            if let Some(path) = &args.out {
                std::fs::write(path, serde_json::to_vec_pretty(&plan)?)
                    .map_err(|e| anyhow::anyhow!("cannot write the plan to {}: {e}", path.display()))?;
            }
            let format = if args.json { Format::Json } else { args.format };
            match format {
                Format::Text => print!("{}", ui::render::text(&plan, style)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
                Format::Markdown => print!("{}", ui::render::markdown(&plan)),
            }
            if let Some(path) = &args.out
                && format == Format::Text
            {
                println!(
                    "\nSaved the plan to {}. Apply exactly this plan with: infra apply {}",
                    path.display(),
                    path.display()
                );
            }
            if mode == Mode::Apply {
                ops::check_budget(&plan, args.budget)?;
            }
            Ok(if args.detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::OK })
        }
        Command::Apply(args) => {
            let check = args.check.then_some(*args.check_timeout);
            let options = ops::RunOptions {
                budget: args.budget,
                allow_broadening: args.allow_broadening,
                ..args.exec.options(args.wait, check)
            };
            ops::run(src, Mode::Apply, &options, args.plan_file.as_deref(), style).await
        }
        Command::Destroy(args) => ops::run(src, Mode::Destroy, &args.exec.options(false, None), None, style).await,
        Command::Check(args) => {
            let stack = ops::load(src)?;
            let p = ops::provider(&stack, src).await?;
            ops::check(&stack, p.as_ref(), *args.timeout, args.json, style).await
        }
        Command::Policy(args) => {
            let opts = ops::PolicyOptions {
                plan: args.plan.clone(),
                stacks: args.stacks.clone(),
                account: args.account.clone(),
                partition: args.partition.clone(),
            };
            let (stack, doc) = ops::policy(src, &opts).await?;
            use anyhow::Context;
            use infra::aws::deploy_policy::{MANAGED_POLICY_CHARS, size, split};
            match &args.out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                    for (i, part) in split(&doc, MANAGED_POLICY_CHARS).iter().enumerate() {
                        let path = dir.join(format!("{stack}-deploy-{}.json", i + 1));
                        std::fs::write(&path, serde_json::to_string_pretty(part)? + "\n")
                            .with_context(|| format!("writing {}", path.display()))?;
                        println!("{}", path.display());
                    }
                }
                None => {
                    println!("{}", serde_json::to_string_pretty(&doc)?);
                    if size(&doc) > MANAGED_POLICY_CHARS {
                        eprintln!(
                            "note: {} characters, more than one managed policy holds ({MANAGED_POLICY_CHARS}); \
                             `infra policy --out-dir DIR` writes it in parts that fit",
                            size(&doc)
                        );
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Unlock => {
            let stack = ops::load(src)?;
            let p = ops::provider(&stack, src).await?;
            match p.aws.force_unlock().await? {
                Some(holder) => {
                    println!("Removed the lock of stack \"{}\" held by {holder}.", stack.name)
                }
                None => println!("Stack \"{}\" is not locked.", stack.name),
            }
            Ok(exit::OK)
        }
        Command::Output(args) => {
            let stack = ops::load(src)?;
            let p = ops::provider(&stack, src).await?;
            let outs = ops::outputs(&stack, p.as_ref()).await?;
            if let Some(name) = &args.name {
                let Some((_, v, _)) = outs.iter().find(|(n, _, _)| n == name) else {
                    let names: Vec<&str> = outs.iter().map(|(n, _, _)| n.as_str()).collect();
                    anyhow::bail!("no output named `{name}`; outputs: {}", names.join(", "));
                };
                let Some(v) = v else {
                    anyhow::bail!("output `{name}` has no value: its resource does not exist (run infra apply)");
                };
                match (args.json, v) {
                    (false, serde_json::Value::String(s)) => println!("{s}"),
                    _ => println!("{v}"),
                }
                return Ok(exit::OK);
            }
            if args.json {
                let map: serde_json::Map<String, serde_json::Value> =
                    outs.into_iter().map(|(n, v, _)| (n, v.unwrap_or(serde_json::Value::Null))).collect();
                println!("{}", serde_json::to_string_pretty(&map)?);
            } else {
                for (n, v, d) in outs {
                    let v = match v {
                        Some(serde_json::Value::String(s)) => s,
                        Some(v) => v.to_string(),
                        None => "(not created)".into(),
                    };
                    println!("{n} = {v}  {}", style.dim(&format!("# {d}")));
                }
            }
            Ok(exit::OK)
        }
    }
}
