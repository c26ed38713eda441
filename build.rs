//! Names the commit `infra --version` was built from (`INFRA_COMMIT`,
//! `INFRA_COMMIT_DATE`): asked of git when the source is a checkout,
//! "unknown" otherwise (a crate tarball, a copy without `.git`). It names the
//! commit only, not uncommitted changes on top of it: telling those would
//! mean rebuilding on every edit of any file.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let commit = git(&["rev-parse", "--short=7", "HEAD"]);
    let date = git(&["log", "-1", "--format=%cs"]);
    println!("cargo:rustc-env=INFRA_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=INFRA_COMMIT_DATE={}", date.as_deref().unwrap_or("unknown"));
    // Built again when HEAD moves: a checkout, or a commit on the branch.
    // (Only files that exist: cargo runs a build script again on every build
    // when one it watches is missing.)
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let branch = git(&["symbolic-ref", "-q", "HEAD"]);
        let watched = ["HEAD".to_string(), "packed-refs".to_string()].into_iter().chain(branch);
        for f in watched.map(|f| format!("{dir}/{f}")) {
            if std::path::Path::new(&f).exists() {
                println!("cargo:rerun-if-changed={f}");
            }
        }
    }
}
