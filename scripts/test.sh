#!/usr/bin/env bash
# Runs the whole test suite: installs the independent readers and parsers the
# integration tests use when they are missing, builds the loopback proxy the
# fault-injection tests start, runs `cargo test`, then fuzzes the stack.yaml
# parser briefly (INFRA_FUZZ_SECONDS, default 60; 0 skips it).
#   scripts/test.sh [--locked] [cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
py() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
command -v moto_server >/dev/null 2>&1 || py 'moto[server]'
command -v aws >/dev/null 2>&1 || py awscli
python3 -c 'import boto3' 2>/dev/null || py boto3
python3 -c 'import pydot' 2>/dev/null || py pydot
[ -d tests/tools/node_modules ] || npm ci --prefix tests/tools --silent --no-audit --no-fund
hash -r
locked=()
[ "${1:-}" = --locked ] && locked=(--locked)
# `cargo test` builds the proxy example only as its unit-test harness.
cargo build "${locked[@]}" --example proxy
cargo test "$@"
secs="${INFRA_FUZZ_SECONDS:-60}"
[ "$secs" = 0 ] || scripts/fuzz.sh "$secs"
