#!/usr/bin/env bash
# Runs the whole test suite: installs the independent readers and parsers the
# integration tests use when they are missing, then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
py() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
command -v moto_server >/dev/null 2>&1 || py 'moto[server]'
command -v aws >/dev/null 2>&1 || py awscli
python3 -c 'import boto3' 2>/dev/null || py boto3
python3 -c 'import pydot' 2>/dev/null || py pydot
[ -d tests/tools/node_modules ] || npm ci --prefix tests/tools --silent --no-audit --no-fund
hash -r
exec cargo test "$@"
