#!/usr/bin/env bash
# The security team's view of the reference stack, on a local emulator: start a
# private moto, deploy stack.yaml with infra, scan it with prowler (limited to
# the stack's services), lint its IAM and resource policies with parliament,
# and sort every prowler FAIL into account-level, emulator artifact or
# stack-level (rules: scripts/security-scan-rules.yaml). Prints the table and
# the counts per class; exits non-zero only when a tool fails, never for
# findings. Nothing leaves this machine: moto listens on 127.0.0.1 and prowler
# runs behind a dead loopback proxy (only 127.0.0.1 is reached directly).
#
#   INFRA=target/debug/infra scripts/security-scan.sh [STACK_FILE]
#
# Environment: INFRA (the binary, default target/debug/infra; not built here),
# SCAN_OUT (where reports go, default a new /tmp/infra-security-scan.XXXXXX),
# SCAN_VENV (the scanner's virtualenv, created on first use with pinned
# prowler and parliament), SCAN_SERVICES (prowler services to run).
# Results in $SCAN_OUT: prowler/scan.ocsf.json and .csv (every finding),
# findings.json (the classified FAILs), iam/ (the policies read back and
# parliament.json), and the logs of moto, apply and prowler.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FILE="${1:-stack.yaml}"
INFRA="${INFRA:-target/debug/infra}"
case "$INFRA" in /*) ;; *) INFRA="$ROOT/$INFRA" ;; esac
VENV="${SCAN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/infra-security-scan/venv}"
PROWLER_VERSION=5.46.0
PARLIAMENT_VERSION=1.6.4
# The stack's services (prowler's names: awslambda, cloudwatch for CloudWatch
# Logs), plus kms, wafv2 and cognito, which judge what the stack does not use.
SERVICES="${SCAN_SERVICES:-ec2 vpc elbv2 autoscaling s3 cloudfront rds dynamodb awslambda apigateway iam cloudwatch secretsmanager kms wafv2 cognito}"

die() { echo "security-scan: $*" >&2; exit 2; }
[ -x "$INFRA" ] || die "no infra binary at $INFRA (build it, or set INFRA)"
[ -f "$FILE" ] || die "no stack file $FILE"
OUT="${SCAN_OUT:-$(mktemp -d /tmp/infra-security-scan.XXXXXX)}"
mkdir -p "$OUT"

# Tools: moto and the AWS CLI in the system Python (as scripts/test.sh installs
# them); prowler and parliament in their own virtualenv, since prowler pins
# boto3/botocore versions the rest of the project does not use.
py() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }
python3 -c 'import moto.server' 2>/dev/null || py 'moto[server]'
command -v aws >/dev/null 2>&1 || py awscli
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('prowler') != '$PROWLER_VERSION' or m.version('parliament') != '$PARLIAMENT_VERSION')" 2>/dev/null; then
  echo "security-scan: installing prowler $PROWLER_VERSION and parliament $PARLIAMENT_VERSION into $VENV (a few minutes, once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "prowler==$PROWLER_VERSION" "parliament==$PARLIAMENT_VERSION" || die "installing the scanners failed"
fi
SCAN=("$VENV/bin/python" "$ROOT/scripts/security_scan.py")

# Stack name and region from the file (the overlay flags are not used here).
read -r STACK REGION < <("$VENV/bin/python" - "$FILE" <<'EOF'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(d["stack"], d.get("region") or "us-east-1")
EOF
) || die "cannot read stack/region from $FILE"

# A private moto, torn down on exit.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_IAM_LOAD_MANAGED_POLICIES=true python3 tests/support/moto_patched.py -H 127.0.0.1 -p "$PORT" >"$OUT/moto.log" 2>&1 &
MOTO_PID=$!
WORK=$(mktemp -d /tmp/infra-security-scan-stack.XXXXXX)
cleanup() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
(echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || die "moto did not start (see $OUT/moto.log)"

unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION" AWS_EC2_METADATA_DISABLED=true \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# Deploy the stack from a copy of the file and what it points at.
SRC_DIR=$(dirname "$FILE")
cp "$FILE" "$WORK/stack.yaml"
for d in site functions web; do [ -e "$SRC_DIR/$d" ] && cp -R "$SRC_DIR/$d" "$WORK/"; done
echo "security-scan: applying $FILE as stack $STACK on moto :$PORT" >&2
(cd "$WORK" && "$INFRA" apply --auto-approve --no-color) >"$OUT/apply.log" 2>&1 \
  || { tail -20 "$OUT/apply.log" >&2; die "infra apply failed (see $OUT/apply.log)"; }

"${SCAN[@]}" inventory --stack "$STACK" --region "$REGION" -o "$OUT/inventory.json" \
  || die "reading the stack's resources back failed"

# prowler. --scan-unused-services: moto makes no network interfaces for the
# load balancer or the database, so prowler's "in use" test (resources with
# interfaces) would skip subnets and groups that are in use on AWS.
echo "security-scan: prowler $PROWLER_VERSION on services: $SERVICES" >&2
start=$(date +%s)
# shellcheck disable=SC2086
HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
  "${SCAN[@]}" prowler aws --region "$REGION" --service $SERVICES --scan-unused-services \
    --output-formats json-ocsf csv -o "$OUT/prowler" -F scan \
    --no-banner --no-color --ignore-exit-code-3 --log-level ERROR --log-file "$OUT/prowler-errors.log" \
    >"$OUT/prowler.log" 2>&1 \
  || { tail -20 "$OUT/prowler.log" >&2; die "prowler failed (see $OUT/prowler.log)"; }
secs=$(( $(date +%s) - start ))
[ -s "$OUT/prowler/scan.ocsf.json" ] || die "prowler wrote no findings file (see $OUT/prowler.log)"

"${SCAN[@]}" iam --stack "$STACK" --inventory "$OUT/inventory.json" -o "$OUT/iam" \
  || die "reading back or linting the IAM policies failed"

"${SCAN[@]}" classify --ocsf "$OUT/prowler/scan.ocsf.json" --inventory "$OUT/inventory.json" \
  --rules "$ROOT/scripts/security-scan-rules.yaml" --parliament "$OUT/iam/parliament.json" \
  --moto-log "$OUT/moto.log" --json "$OUT/findings.json" \
  || die "classifying the findings failed"
echo
echo "prowler $PROWLER_VERSION scan: ${secs}s; reports in $OUT"
