//! `infra`: provision a highly available AWS web stack from one stack.yaml.
//!
//! Data flows one way: stack.yaml -> validated spec (`config`) -> desired
//! resources (`model`) -> live state read from AWS (`aws`) -> plan
//! (`engine::diff`) -> executor (`engine::executor`).

mod aws;
mod cli;
mod config;
mod engine;
mod model;
mod ops;
mod ui;

use clap::Parser;

use cli::{Cli, Command, Format};
use engine::plan::Mode;
use ops::{Reported, exit};
use ui::Style;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(exit::ERROR);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => match e.downcast_ref::<Reported>() {
            Some(Reported(code)) => *code,
            None => {
                eprintln!("Error: {e:#}");
                exit::ERROR
            }
        },
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
    let filter = if v == 0 {
        std::env::var("INFRA_LOG").unwrap_or_else(|_| filter.to_string())
    } else {
        filter.to_string()
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(v >= 2)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    let style = Style {
        on: ui::color_enabled(g.no_color),
    };
    match &cli.command {
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&config::spec::json_schema())?
            );
            Ok(exit::OK)
        }
        Command::Validate => {
            let stack = ops::load(g)?;
            let desired = model::expand(&stack);
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
        Command::Plan(args) => {
            let stack = ops::load(g)?;
            let p = ops::provider(&stack, g).await?;
            let mode = if args.destroy {
                Mode::Destroy
            } else {
                Mode::Apply
            };
            let plan = ops::plan(&stack, p.as_ref(), mode).await?;
            let format = if args.json { Format::Json } else { args.format };
            match format {
                Format::Text => print!("{}", ui::render::text(&plan, style)),
                Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
                Format::Markdown => print!("{}", ui::render::markdown(&plan)),
            }
            Ok(if args.detailed_exitcode && plan.has_changes() {
                exit::CHANGES
            } else {
                exit::OK
            })
        }
        Command::Apply(args) => {
            let stack = ops::load(g)?;
            let p = ops::provider(&stack, g).await?;
            let plan = ops::plan(&stack, p.as_ref(), Mode::Apply).await?;
            print!("{}", ui::render::text(&plan, style));
            if !plan.has_changes() {
                ops::print_outputs(&stack, p.as_ref()).await;
                return Ok(exit::OK);
            }
            ops::check_protection(&plan, &stack)?;
            ops::confirm(&plan, args.exec.auto_approve)?;
            let report = ops::execute(&plan, p.clone(), &args.exec, style, false).await?;
            let code = ops::summarize(&plan, &report, style, false);
            if code == exit::OK {
                ops::print_outputs(&stack, p.as_ref()).await;
            }
            Ok(code)
        }
        Command::Destroy(args) => {
            let stack = ops::load(g)?;
            let p = ops::provider(&stack, g).await?;
            let plan = ops::plan(&stack, p.as_ref(), Mode::Destroy).await?;
            print!("{}", ui::render::text(&plan, style));
            if !plan.has_changes() {
                return Ok(exit::OK);
            }
            ops::check_protection(&plan, &stack)?;
            ops::confirm(&plan, args.exec.auto_approve)?;
            let report = ops::execute(&plan, p, &args.exec, style, false).await?;
            Ok(ops::summarize(&plan, &report, style, false))
        }
    }
}
