//! Semantic checks of a schema-valid stack file, tier by tier, and the
//! resolved stack they derive. Everything AWS would reject mid-apply, and
//! everything moto would wrongly accept, is caught here, all at once.

use std::path::PathBuf;

use super::diagnostics::PathError;
use super::limits as rules;
use super::resolved::{Overrides, Place, Stack};
use super::spec::StackFile;
use super::yaml::PathSeg;
use super::{backend, compute, data, frontend, network};

/// The region the AWS environment names (`AWS_REGION`, then
/// `AWS_DEFAULT_REGION`; an empty value counts as unset), as the SDKs read it.
pub fn region_from_env() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn key(k: &str) -> PathSeg {
    PathSeg::Key(k.to_string())
}

fn path(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|p| key(p)).collect()
}

pub fn validate(mut spec: StackFile, ov: &Overrides, base_dir: PathBuf) -> Result<Stack, Vec<PathError>> {
    let mut errs: Vec<PathError> = Vec::new();

    // Stack name (the flag wins over the file).
    let name = ov.stack.clone().unwrap_or_else(|| spec.stack.clone());
    if let Err(e) = rules::validate_stack_name(&name) {
        let e = PathError::new(path(&["stack"]), e);
        errs.push(if ov.stack.is_some() {
            e.help("the name comes from --stack; pick a shorter lowercase name")
        } else {
            e.help("use lowercase letters, digits and hyphens, e.g. `webapp`")
        });
    }

    // Region.
    let region = ov.region.clone().or_else(|| spec.region.clone()).or_else(region_from_env);
    let region = match region {
        Some(r) => r,
        None => {
            errs.push(
                PathError::new(vec![], "no AWS region")
                    .help("set `region:` in the file, pass --region, or set AWS_REGION"),
            );
            String::new()
        }
    };
    let region_azs = rules::region_azs(&region);
    if !region.is_empty() && region_azs.is_none() && !spec.allow_unknown_region {
        let names: Vec<&str> = rules::REGIONS.iter().map(|r| r.name).collect();
        let help = match rules::did_you_mean(&region, &names) {
            Some(m) => format!("did you mean `{m}`? (for a region newer than infra, set `allow_unknown_region: true`)"),
            None => {
                "use an AWS region such as us-east-1; for a region newer than infra, set `allow_unknown_region: true`"
                    .into()
            }
        };
        errs.push(PathError::new(path(&["region"]), format!("unknown region `{region}`")).help(help));
    }

    // Tags.
    for (k, v) in &spec.tags {
        if let Err(e) = rules::validate_tag_key(k) {
            errs.push(PathError {
                path: path(&["tags", k]),
                message: e,
                help: Some("rename the tag".into()),
                at_key: true,
            });
        }
        if let Err(e) = rules::validate_tag_value(v) {
            errs.push(PathError::new(path(&["tags", k]), e).help("change the value"));
        }
        if k.starts_with("infra:") {
            errs.push(PathError {
                path: path(&["tags", k]),
                message: "tags starting with `infra:` are reserved for the tool".into(),
                help: Some("rename the tag".into()),
                at_key: true,
            });
        }
    }

    let network::check::Layout { azs, public_subnets, private_subnets } =
        network::check::check(&spec.network, &name, &region, region_azs, &mut errs);
    let db_port = spec
        .data
        .as_ref()
        .and_then(|d| d.database.as_ref())
        .map(|db| db.engine.port())
        .unwrap_or(network::spec::DEFAULT_DB_PORT);
    let security_groups = network::check::groups(&spec.network, db_port);
    let partition = rules::partition_of(&region);
    frontend::check::validate(&mut spec, &name, &region, partition, &base_dir, &mut errs);
    compute::check::check(
        &mut spec,
        &security_groups,
        &Place { stack: &name, region: &region, partition, az_count: azs.len(), base_dir: &base_dir },
        &mut errs,
    );
    let functions = backend::check::validate(&spec, &name, &region, &base_dir, &mut errs);
    let user_data = compute::check::wiring(
        &spec,
        &backend::check::data_names(&spec),
        &Place { stack: &name, region: &region, partition, az_count: azs.len(), base_dir: &base_dir },
        &mut errs,
    );
    // Which of the database's attributes something reads: the database
    // create waits for `available` (15+ minutes on AWS) only when one does.
    let reads_address = |p: &super::template::Part| matches!(p, super::template::Part::Database { attr } if attr == "endpoint" || attr == "port");
    let database_read = functions.values().any(|f| f.environment.values().flatten().any(reads_address))
        || user_data.values().flatten().any(reads_address);
    data::check::validate(&spec, &name, azs.len(), &mut errs);
    let endpoints = network::endpoints::resolve(&spec, &mut errs);

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Stack {
        name,
        partition: rules::partition_of(&region),
        region,
        azs,
        public_subnets,
        private_subnets,
        base_dir,
        endpoints,
        security_groups,
        db_port,
        functions,
        user_data,
        database_read,
        spec,
    })
}
