//! A binary that installs like a tool: `--version` names the commit, the
//! completion script loads in bash, the manual page renders with `man`.
//! No AWS and no emulator: the binary alone, read by the shell and by man.

use std::path::Path;
use std::process::Command;

fn infra(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_infra")).args(args).output().expect("infra runs");
    assert!(out.status.success(), "infra {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let v = infra(&["--version"]);
    assert!(v.starts_with(&format!("infra {} (", env!("CARGO_PKG_VERSION"))), "{v}");
    let head = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    assert!(head.status.success(), "the tests run in a git checkout");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert!(v.contains(&format!("({head} ")), "{v} does not name HEAD {head}");
}

#[test]
fn the_bash_completion_script_loads_and_completes_the_commands() {
    let dir = tempfile_dir("completions");
    let script = dir.join("infra.bash");
    std::fs::write(&script, infra(&["completions", "bash"])).unwrap();
    // Loaded as a user's shell would, then asked what `infra ap<TAB>` offers.
    let probe = format!(
        "source {s} && complete -p infra && COMP_WORDS=(infra ap) COMP_CWORD=1 COMP_LINE='infra ap' COMP_POINT=8 && _infra infra ap infra && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        s = script.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("-F _infra infra"), "{text}");
    assert!(text.lines().any(|l| l == "apply"), "{text}");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        assert!(infra(&["completions", shell]).contains("infra"), "{shell}");
    }
}

#[test]
fn the_manual_page_renders_with_man() {
    let dir = tempfile_dir("man");
    let page = dir.join("infra.1");
    std::fs::write(&page, infra(&["man"])).unwrap();
    let out = Command::new("man")
        .args(["-l", page.to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man runs (scripts/test.sh installs man-db)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for part in ["NAME", "SYNOPSIS", "infra", "apply", "destroy", "completions"] {
        assert!(text.contains(part), "no {part} in the rendered page:\n{text}");
    }
}

/// A fresh folder for one test's files.
fn tempfile_dir(what: &str) -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("install-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
