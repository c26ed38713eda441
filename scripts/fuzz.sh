#!/usr/bin/env bash
# Fuzzes the stack.yaml loader (fuzz/fuzz_targets/parse_yaml.rs) for SECONDS
# (default 60), seeded with the malformed-file corpus of tests/corpus.
# Exits non-zero, with the crashing input saved under fuzz/artifacts/, when
# any input panics, hangs or breaks the loader's promises.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
# cargo fuzz needs nightly flags (-Zsanitizer); on a machine with only a
# stable toolchain, RUSTC_BOOTSTRAP lets stable accept them.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    run=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    run=(cargo fuzz)
fi
# Its own target directory: the fuzz flags would invalidate a shared one.
unset CARGO_TARGET_DIR
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd fuzz
"${run[@]}" run parse_yaml "$work" ../tests/corpus -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -Ev '^#[0-9]+\s+(NEW|REDUCE|pulse)' | tail -n 25
