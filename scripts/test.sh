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
# The end-to-end suite: ministack runs the functions (pinned: its patches in
# tests/support/ministack_patched.py are written against this version),
# cryptography signs its Cognito tokens, PostgreSQL stands behind the RDS
# endpoint, pytest runs the functions' and the support scripts' own tests.
python3 -c 'import ministack' 2>/dev/null || py 'ministack==1.5.33'
python3 -c 'import cryptography' 2>/dev/null || py cryptography
# pycognito signs the end-to-end test's user in with SRP, as the site would.
python3 -c 'import pycognito' 2>/dev/null || py 'pycognito==2024.5.1'
# parliament lints the stack's IAM policies as security teams do (tests/security.rs).
command -v parliament >/dev/null 2>&1 || py 'parliament==1.6.4'
python3 -c 'import pytest' 2>/dev/null || py pytest
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get install -y -qq postgresql >/dev/null
fi
command -v curl >/dev/null 2>&1 || apt-get install -y -qq curl >/dev/null
# man renders the manual page `infra man` prints (tests/install.rs).
command -v man >/dev/null 2>&1 || apt-get install -y -qq man-db >/dev/null
[ -d tests/tools/node_modules ] || npm ci --prefix tests/tools --silent --no-audit --no-fund
hash -r
locked=()
[ "${1:-}" = --locked ] && locked=(--locked)
# `cargo test` builds the proxy example only as its unit-test harness.
cargo build "${locked[@]}" --example proxy
# The table of IAM actions `infra policy` reads is what the code calls.
python3 scripts/iam_actions.py --check
# Every call the tool makes to moto in the integration tests is logged
# (tests/support/moto_patched.py), then checked against `infra policy`.
calls="$(mktemp -d)"
trap 'rm -rf "$calls"' EXIT
export MOTO_CALLS_LOG="$calls/calls.jsonl"
cargo test "$@"
# (A run of some of the tests, `scripts/test.sh --test network`, checks the
# calls it made; the whole suite must have made some.)
filtered=$(( $# - ${#locked[@]} ))
if [ "$filtered" = 0 ] || [ -s "$MOTO_CALLS_LOG" ]; then
  unset MOTO_CALLS_LOG
  cargo run --quiet "${locked[@]}" -- -f stack.yaml policy --account 123456789012 > "$calls/policy.json"
  python3 scripts/iam_actions.py --covered "$calls/calls.jsonl" "$calls/policy.json"
fi
# The example services and the test support scripts have their own tests.
python3 -m pytest -q functions
python3 -m pytest -q tests/support pricing
secs="${INFRA_FUZZ_SECONDS:-60}"
[ "$secs" = 0 ] || scripts/fuzz.sh "$secs"
