#!/usr/bin/env bash
# Regenerates the files the tests keep in step with the code: the published
# JSON Schema of stack.yaml, README.md's diagram of the reference stack and
# the IAM actions `infra policy` reads (policy/actions.json).
#   scripts/refresh-generated.sh [path/to/infra]   (default: target/debug/infra)
set -euo pipefail
cd "$(dirname "$0")/.."
infra="${1:-${CARGO_TARGET_DIR:-target}/debug/infra}"
python3 scripts/iam_actions.py
"$infra" schema > schema/stack.schema.json
"$infra" schema --plan > schema/plan.schema.json
"$infra" graph > /tmp/infra-graph.$$
python3 - /tmp/infra-graph.$$ <<'PY'
import re, sys
graph = open(sys.argv[1]).read()
readme = open("README.md").read()
new, n = re.subn(r"```mermaid\n.*?```", lambda m: "```mermaid\n" + graph + "```", readme, count=1, flags=re.S)
if n != 1:
    sys.exit("README.md has no mermaid block")
open("README.md", "w").write(new)
PY
rm -f /tmp/infra-graph.$$
