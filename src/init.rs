//! `infra init`: a new project that starts itself. The files are this
//! repository's own reference project (stack.yaml's tier sections, the two
//! services with their tests, the site, the web tier's user data), embedded at
//! build time so that what `init` writes is what the test suite deploys, plus
//! the stack's JSON Schema for editors and a GitHub Actions workflow.
//!
//! Only the chosen tiers are written. A tier the chosen ones need comes too,
//! and `init` says why: the web tier's user data proxies `/api/` to the
//! backend and `/` to the site, and the example services read the data tier.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::stack::{self, limits};

/// The reference stack, whose tier sections a new project takes.
const REFERENCE: &str = include_str!("../stack.yaml");

/// (path in the project, contents) of each tier's own files.
type Files = &'static [(&'static str, &'static [u8])];

const COMPUTE_FILES: Files = &[("web/user-data.sh", include_bytes!("../web/user-data.sh"))];

const FRONTEND_FILES: Files = &[
    ("site/index.html", include_bytes!("../site/index.html")),
    ("site/robots.txt", include_bytes!("../site/robots.txt")),
    ("site/assets/app.07d455e9.js", include_bytes!("../site/assets/app.07d455e9.js")),
    ("site/assets/style.b8928695.css", include_bytes!("../site/assets/style.b8928695.css")),
];

const BACKEND_FILES: Files = &[
    ("functions/orders/app.py", include_bytes!("../functions/orders/app.py")),
    ("functions/orders/test_app.py", include_bytes!("../functions/orders/test_app.py")),
    ("functions/users/app.py", include_bytes!("../functions/users/app.py")),
    ("functions/users/pg.py", include_bytes!("../functions/users/pg.py")),
    ("functions/users/test_app.py", include_bytes!("../functions/users/test_app.py")),
    ("functions/conftest.py", include_bytes!("../functions/conftest.py")),
    ("functions/pytest.ini", include_bytes!("../functions/pytest.ini")),
    ("functions/requirements-test.txt", include_bytes!("../functions/requirements-test.txt")),
    ("functions/.gitignore", include_bytes!("../functions/.gitignore")),
];

/// What a tier's example content needs of the other tiers, and why.
const NEEDS: &[(&str, &[&str], &str)] = &[
    ("compute", &["frontend", "backend"], "the web tier's user data proxies / to the site and /api/ to the backend"),
    ("backend", &["data"], "the example services read the orders table and the database"),
];

/// A project to write: its files and the tiers it holds.
#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub region: String,
    pub tiers: Tiers,
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// The stack name for a project in `dir`: the folder's name made into a
/// valid stack name (lowercase letters, digits, hyphens), else `webapp`.
pub fn default_name(dir: &Path) -> String {
    // The folder may not exist yet: made absolute, not canonical.
    let base = std::path::absolute(dir).ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut name: String = base
        .unwrap_or_default()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = name.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    name.truncate(24);
    let name = name.trim_end_matches('-').to_string();
    if limits::validate_stack_name(&name).is_ok() { name } else { "webapp".into() }
}

/// The tiers a project gets: those asked for and those they need.
#[derive(Debug)]
pub struct Tiers {
    /// In [`stack::TIERS`] order.
    pub tiers: Vec<&'static str>,
    /// Tiers added because a chosen one needs them, each with why.
    pub added: Vec<(&'static str, String)>,
}

/// The tiers of `--tiers` (comma-separated, `network` implied), with the
/// ones they need.
pub fn resolve_tiers(chosen: &[String]) -> Result<Tiers> {
    let mut want: Vec<&'static str> = vec!["network"];
    for t in chosen.iter().flat_map(|t| t.split(',')).map(str::trim).filter(|t| !t.is_empty()) {
        let Some(known) = stack::TIERS.iter().find(|k| **k == t) else {
            let help = match limits::did_you_mean(t, &stack::TIERS) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!("the tiers are {}", stack::TIERS.join(", ")),
            };
            bail!("--tiers: there is no tier `{t}`; {help}");
        };
        want.push(known);
    }
    let mut added = Vec::new();
    // Needs are one level deep today (compute -> backend -> data): loop to
    // a fixed point all the same.
    loop {
        let mut grew = false;
        for (tier, needs, why) in NEEDS {
            if !want.contains(tier) {
                continue;
            }
            for &n in *needs {
                if !want.contains(&n) {
                    want.push(n);
                    added.push((n, format!("{tier} needs it: {why}")));
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    let tiers = stack::TIERS.iter().copied().filter(|t| want.contains(t)).collect();
    Ok(Tiers { tiers, added })
}

/// The project for `tiers` (see [`resolve_tiers`]).
pub fn project(name: &str, region: &str, chosen: &[String]) -> Result<Project> {
    limits::validate_stack_name(name).map_err(|e| anyhow::anyhow!("--stack: {e}"))?;
    if limits::region(region).is_none() {
        bail!("unknown region `{region}`; pass a region such as us-east-1 with --region");
    }
    let resolved = resolve_tiers(chosen)?;
    let tiers = &resolved.tiers;
    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        ("stack.yaml".into(), stack_file(name, region, tiers).into_bytes()),
        ("schema/stack.schema.json".into(), {
            let mut s = serde_json::to_string_pretty(&stack::spec::json_schema())?;
            s.push('\n');
            s.into_bytes()
        }),
        (".github/workflows/infra.yml".into(), workflow(name, region, tiers.contains(&"backend")).into_bytes()),
        (".gitignore".into(), b"# infra's saved plans and apply logs\nplan.json\napply.jsonl\n".to_vec()),
    ];
    for (tier, own) in [("compute", COMPUTE_FILES), ("frontend", FRONTEND_FILES), ("backend", BACKEND_FILES)] {
        if tiers.contains(&tier) {
            files.extend(own.iter().map(|(p, b)| (PathBuf::from(p), b.to_vec())));
        }
    }
    Ok(Project { name: name.into(), region: region.into(), tiers: resolved, files })
}

/// Writes `project` into `dir` (made if missing). Refuses, writing nothing,
/// when any of its files already exists.
pub fn write(dir: &Path, project: &Project) -> Result<()> {
    let taken: Vec<String> =
        project.files.iter().filter(|(p, _)| dir.join(p).exists()).map(|(p, _)| p.display().to_string()).collect();
    if !taken.is_empty() {
        bail!(
            "{} already holds {}: nothing was written. Run `infra init` in an empty folder (`infra init DIR`)",
            dir.display(),
            taken.join(", ")
        );
    }
    for (p, bytes) in &project.files {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The reference stack's top-level sections: (key, text), each with the
/// comment lines right above it; the first one, keyed "", is the header.
fn sections(text: &str) -> Vec<(&str, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let key = l
            .split_once(':')
            .map(|(k, _)| k)
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !l.starts_with(' '));
        if let Some(k) = key {
            let mut s = i;
            while s > 0 && lines[s - 1].starts_with('#') {
                s -= 1;
            }
            starts.push((s, k));
        }
    }
    let mut bounds: Vec<(usize, &str)> = vec![(0, "")];
    bounds.extend(starts);
    let mut out = Vec::new();
    for (n, &(s, k)) in bounds.iter().enumerate() {
        let end = bounds.get(n + 1).map_or(lines.len(), |b| b.0);
        out.push((k, lines[s..end].iter().map(|l| format!("{l}\n")).collect()));
    }
    out
}

/// stack.yaml for `tiers`: a header of its own, then the reference stack's
/// sections of those tiers and its environments, comments and all.
fn stack_file(name: &str, region: &str, tiers: &[&str]) -> String {
    let mut out = format!(
        "# yaml-language-server: $schema=./schema/stack.schema.json\n\
         #\n\
         # Stack `{name}`, made by `infra init` with the tiers {}.\n\
         # `infra validate` checks it offline; `infra plan` shows what `infra apply`\n\
         # would make; `infra destroy` removes it (taking backups of the data first).\n\
         # Every key is in the README's stack.yaml reference.\n\
         stack: {name}\n\
         region: {region}\n\
         tags:\n  project: {name}\n\n",
        tiers.join(", ")
    );
    for (key, body) in sections(REFERENCE) {
        if tiers.contains(&key) || key == "environments" {
            out.push_str(&body);
        }
    }
    out
}

/// The project's CI: the services' tests, a plan on each pull request as the
/// job summary (the saved plan as an artifact), and on main the plan applied
/// exactly, then `infra check` proving the stack serves.
fn workflow(name: &str, region: &str, tests: bool) -> String {
    const HEAD: &str = r#"# The stack's CI, made by `infra init`. Set, in the repository's settings:
#   secrets.AWS_ROLE_ARN   a role GitHub's OIDC provider may assume, allowed to
#                          manage the stack: attach the least-privilege policies
#                          `infra policy --out-dir policies` writes
#   vars.INFRA_GIT_URL     the git URL of infra's source, for `cargo install`
name: infra
on:
  pull_request:
  push:
    branches: [main]
  # A plan that widens access (a port opened to the internet, a policy
  # gaining actions) stops the apply on main; once reviewed, run the
  # workflow by hand on main with allow_broadening ticked.
  workflow_dispatch:
    inputs:
      allow_broadening:
        description: apply even though the plan widens access (reviewed)
        type: boolean
        default: false
permissions:
  id-token: write   # OIDC to AWS: no long-lived keys
  contents: read
jobs:
"#;
    const TESTS: &str = r#"  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: { python-version: "3.12" }
      - run: python -m pip install -r functions/requirements-test.txt
      - run: python -m pytest -q functions
"#;
    const JOBS: &str = r#"  plan:
    if: github.event_name == 'pull_request'@NEEDS@
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with: { role-to-assume: "${{ secrets.AWS_ROLE_ARN }}", aws-region: @REGION@ }
      - run: cargo install --locked --git "${{ vars.INFRA_GIT_URL }}" infra
      - run: infra validate
      - run: infra plan -o plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"
      - uses: actions/upload-artifact@v4
        with: { name: plan, path: plan.json }
  apply:
    if: (github.event_name == 'push' || github.event_name == 'workflow_dispatch') && github.ref == 'refs/heads/main'@NEEDS@
    runs-on: ubuntu-latest
    concurrency: infra-@STACK@   # one apply at a time (the stack's lock also waits)
    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        with: { role-to-assume: "${{ secrets.AWS_ROLE_ARN }}", aws-region: @REGION@ }
      - run: cargo install --locked --git "${{ vars.INFRA_GIT_URL }}" infra
      - run: infra plan -o plan.json --format markdown >> "$GITHUB_STEP_SUMMARY"
      - run: infra apply plan.json --json --lock-timeout 10m ${{ inputs.allow_broadening && '--allow-broadening' || '' }} > apply.jsonl
      - run: infra check --timeout 10m
      - run: infra output --json
"#;
    let needs = if tests { "\n    needs: [test]" } else { "" };
    let jobs = JOBS.replace("@NEEDS@", needs).replace("@REGION@", region).replace("@STACK@", name);
    format!("{HEAD}{}{jobs}", if tests { TESTS } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_brings_what_it_needs_and_says_why() {
        let Tiers { tiers, added } = resolve_tiers(&["network,backend".into()]).unwrap();
        assert_eq!(tiers, ["network", "data", "backend"]);
        assert_eq!(added.iter().map(|a| a.0).collect::<Vec<_>>(), ["data"]);
        let tiers = resolve_tiers(&["compute".into()]).unwrap().tiers;
        assert_eq!(tiers, stack::TIERS);
        let Tiers { tiers, added } = resolve_tiers(&[]).unwrap();
        assert_eq!((tiers, added.len()), (vec!["network"], 0));
        let e = resolve_tiers(&["netwrk".into()]).unwrap_err().to_string();
        assert!(e.contains("did you mean `network`"), "{e}");
    }

    #[test]
    fn the_stack_file_holds_the_chosen_tiers_only() {
        let text = stack_file("shop", "eu-west-1", &["network", "data"]);
        assert!(text.starts_with("# yaml-language-server: $schema=./schema/stack.schema.json\n"));
        assert!(text.contains("\nstack: shop\nregion: eu-west-1\n"));
        for (key, present) in
            [("network", true), ("data", true), ("environments", true), ("compute", false), ("backend", false)]
        {
            assert_eq!(text.contains(&format!("\n{key}:\n")), present, "{key}:\n{text}");
        }
        assert!(text.contains("# The data tier:"), "the section's comment comes with it");
        assert!(!text.contains("stack: webapp"));
    }

    #[test]
    fn folder_names_become_stack_names() {
        let root = std::env::temp_dir().join(format!("infra-init-name-{}", std::process::id()));
        for (dir, name) in
            [("My Shop", "my-shop"), ("9lives", "webapp"), ("a_b", "a-b"), ("not-made-yet", "not-made-yet")]
        {
            let d = root.join(dir);
            if dir != "not-made-yet" {
                std::fs::create_dir_all(&d).unwrap();
            }
            assert_eq!(default_name(&d), name, "{dir}");
        }
        std::fs::create_dir_all(root.join("here")).unwrap();
        assert_eq!(default_name(&root.join("here").join(".")), "here");
        std::fs::remove_dir_all(root).unwrap();
    }
}
