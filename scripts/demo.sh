#!/usr/bin/env bash
# The main job end to end against a local AWS emulator this script starts:
# build infra, start moto, apply the reference stack, show the no-op plan and
# the outputs, destroy, stop moto. Usage: scripts/demo.sh [STACK_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-stack.yaml}"

command -v moto_server >/dev/null 2>&1 || python3 -m pip install --quiet 'moto[server]'
cargo build --quiet
INFRA="${CARGO_TARGET_DIR:-target}/debug/infra"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# moto with its known gaps patched for local runs (see the file's docstring).
MOTO_IAM_LOAD_MANAGED_POLICIES=true python3 tests/support/moto_patched.py -H 127.0.0.1 -p "$PORT" >/tmp/infra-demo-moto.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$INFRA" validate -f "$FILE"
step "$INFRA" apply -f "$FILE" --auto-approve
step "$INFRA" plan -f "$FILE" --detailed-exitcode
step "$INFRA" output -f "$FILE"
step "$INFRA" destroy -f "$FILE" --auto-approve
step "$INFRA" plan -f "$FILE" --destroy --detailed-exitcode
