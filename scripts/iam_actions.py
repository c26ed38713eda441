#!/usr/bin/env python3
"""The IAM actions `infra` calls, read from its own source, for `infra policy`.

    scripts/iam_actions.py            rewrite policy/actions.json
    scripts/iam_actions.py --check    fail if policy/actions.json is not what the code calls
    scripts/iam_actions.py --covered CALLS.jsonl POLICY.json
                                      fail unless POLICY allows every call in CALLS

Every AWS call in the tool is written `aws.<client>.<operation>()` (the
clients of `src/aws/mod.rs`). This script finds each such call in `src/`,
names its operation as the service's API model does (botocore's models, the
same ones the AWS SDKs are generated from), turns the operation into the IAM
action that authorizes it (mostly the same name; S3, API Gateway and a few
others differ, see ACTION_OF), adds the actions AWS checks on the caller
without a call of their own (INDIRECT: passing a role, creating a
service-linked role, tagging on create), and writes, for each action, the
source files that need it and what IAM says of it: its access level, the
resource types it can be scoped to (with their ARN formats) and the
condition keys each supports. Those come from parliament's copy of the AWS
Service Authorization Reference (`iam_definition.json`, the table parliament
lints policies against), so the policy `infra policy` builds is checked
against the same table it was built from.

`--covered` maps the calls moto saw during the integration tests (moto_patched.py
with MOTO_CALLS_LOG: scripts/test.sh) to actions with the same functions and
checks that `infra policy` allows each.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "policy" / "actions.json"

# The client fields of `Aws` (src/aws/mod.rs): botocore's service name and
# the IAM service prefix. `*_once` clients are the same services without
# the SDK's retries.
CLIENTS = {
    "apigateway": ("apigateway", "apigateway"),
    "autoscaling": ("autoscaling", "autoscaling"),
    "cloudfront": ("cloudfront", "cloudfront"),
    "cognito": ("cognito-idp", "cognito-idp"),
    "dynamodb": ("dynamodb", "dynamodb"),
    "ec2": ("ec2", "ec2"),
    "elbv2": ("elbv2", "elasticloadbalancing"),
    "iam": ("iam", "iam"),
    "lambda": ("lambda", "lambda"),
    "logs": ("logs", "logs"),
    "rds": ("rds", "rds"),
    "s3": ("s3", "s3"),
    "ssm": ("ssm", "ssm"),
    "sts": ("sts", "sts"),
}
# botocore service name -> IAM prefix, for the calls moto records.
PREFIX = {svc: prefix for svc, prefix in CLIENTS.values()}
# The SigV4 signing name of a request -> botocore service name.
SIGNING = {"elasticloadbalancing": "elbv2", "cognito-idp": "cognito-idp", "execute-api": "apigateway"}

CALL = re.compile(r"\.(" + "|".join(CLIENTS) + r")(?:_once)?\s*\.\s*([a-z][a-z0-9_]*)\s*\(")

# Operations whose IAM action has another name (the Service Authorization
# Reference's "Actions" tables list, for each action, the operations it
# authorizes). A list: one call that needs several.
ACTION_OF = {
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"],
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "DeleteObjects"): ["s3:DeleteObject"],
    ("s3", "ListBuckets"): ["s3:ListAllMyBuckets"],
    ("s3", "GetBucketEncryption"): ["s3:GetEncryptionConfiguration"],
    ("s3", "PutBucketEncryption"): ["s3:PutEncryptionConfiguration"],
    ("s3", "GetPublicAccessBlock"): ["s3:GetBucketPublicAccessBlock"],
    ("s3", "PutPublicAccessBlock"): ["s3:PutBucketPublicAccessBlock"],
    ("s3", "DeletePublicAccessBlock"): ["s3:PutBucketPublicAccessBlock"],
    ("s3", "GetBucketLifecycleConfiguration"): ["s3:GetLifecycleConfiguration"],
    ("s3", "PutBucketLifecycleConfiguration"): ["s3:PutLifecycleConfiguration"],
    ("s3", "DeleteBucketLifecycle"): ["s3:PutLifecycleConfiguration"],
    ("s3", "DeleteBucketTagging"): ["s3:PutBucketTagging"],
    ("s3", "DeleteBucketOwnershipControls"): ["s3:PutBucketOwnershipControls"],
    ("s3", "DeleteBucketEncryption"): ["s3:PutEncryptionConfiguration"],
    ("s3", "GetBucketLogging"): ["s3:GetBucketLogging"],
    ("s3", "PutBucketLogging"): ["s3:PutBucketLogging"],
    # CloudFront authorizes a tagged create as the create and the tagging.
    ("cloudfront", "CreateDistributionWithTags"): ["cloudfront:CreateDistribution", "cloudfront:TagResource"],
    # Lambda's event source mappings on a stream read the stream (the
    # function's role reads it later; CreateEventSourceMapping checks the
    # caller may see it).
    ("lambda", "GetFunctionConfiguration"): ["lambda:GetFunctionConfiguration"],
    # GetCallerIdentity needs no permission (AWS: "No permissions are
    # required to perform this operation").
    ("sts", "GetCallerIdentity"): [],
}

# Permissions AWS checks on the caller beyond the call's own action, with
# the operation that needs them and where AWS says so.
INDIRECT = {
    # IAM User Guide, "Granting a user permissions to pass a role": every
    # call that hands a role to a service.
    ("lambda", "CreateFunction"): ["iam:PassRole"],
    ("lambda", "UpdateFunctionConfiguration"): ["iam:PassRole"],
    ("ec2", "CreateFlowLogs"): ["iam:PassRole"],
    ("rds", "CreateDBInstance"): ["iam:PassRole"],
    ("rds", "ModifyDBInstance"): ["iam:PassRole"],
    ("autoscaling", "CreateAutoScalingGroup"): ["iam:PassRole", "ec2:RunInstances", "ec2:CreateTags"],
    ("autoscaling", "UpdateAutoScalingGroup"): ["iam:PassRole", "ec2:RunInstances", "ec2:CreateTags"],
    ("autoscaling", "StartInstanceRefresh"): ["ec2:RunInstances", "ec2:CreateTags"],
    # The first load balancer, group or database of an account creates the
    # service's service-linked role (ELB, Auto Scaling and RDS guides,
    # "Service-linked role permissions").
    ("elbv2", "CreateLoadBalancer"): ["iam:CreateServiceLinkedRole"],
    ("autoscaling", "CreateAutoScalingGroup#slr"): ["iam:CreateServiceLinkedRole"],
    ("rds", "CreateDBInstance#slr"): ["iam:CreateServiceLinkedRole"],
    # RDS manages the master password in Secrets Manager with the caller's
    # rights (RDS User Guide, "Password management with Secrets Manager").
    ("rds", "CreateDBInstance#secret"): [
        "secretsmanager:CreateSecret",
        "secretsmanager:TagResource",
        "secretsmanager:RotateSecret",
        "secretsmanager:DescribeSecret",
    ],
    # A function in a VPC: Lambda checks the caller may see the subnets and
    # security groups (Lambda Developer Guide, "Configuring a Lambda
    # function to access resources in a VPC", user permissions).
    ("lambda", "CreateFunction#vpc"): ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
    # A stream's event source mapping: Lambda reads the stream with the
    # caller's rights when the mapping is made.
    ("lambda", "CreateEventSourceMapping"): ["dynamodb:DescribeStream", "dynamodb:ListStreams"],
    # Tags written in the create call itself are authorized as tagging
    # (each service's "tag on create" documentation).
    ("rds", "CreateDBSubnetGroup"): ["rds:AddTagsToResource"],
    ("rds", "CreateDBInstance#tags"): ["rds:AddTagsToResource"],
    ("dynamodb", "CreateTable"): ["dynamodb:TagResource"],
    ("lambda", "CreateFunction#tags"): ["lambda:TagResource"],
    ("lambda", "CreateEventSourceMapping#tags"): ["lambda:TagResource"],
    ("logs", "CreateLogGroup"): ["logs:TagResource"],
    ("elbv2", "CreateLoadBalancer#tags"): ["elasticloadbalancing:AddTags"],
    ("elbv2", "CreateTargetGroup"): ["elasticloadbalancing:AddTags"],
    ("elbv2", "CreateListener"): ["elasticloadbalancing:AddTags"],
    ("autoscaling", "CreateAutoScalingGroup#tags"): ["autoscaling:CreateOrUpdateTags"],
    ("cognito-idp", "CreateUserPool"): ["cognito-idp:TagResource"],
    ("iam", "CreateRole"): ["iam:TagRole"],
    ("iam", "CreateInstanceProfile"): ["iam:TagInstanceProfile"],
    ("apigateway", "CreateRestApi"): ["apigateway:PUT"],
    # A distribution with an origin access control reads it.
    ("cloudfront", "CreateDistributionWithTags#oac"): ["cloudfront:GetOriginAccessControl"],
    # An EC2 create with TagSpecifications is also authorized as CreateTags.
    ("ec2", "#create"): ["ec2:CreateTags"],
}


@lru_cache(maxsize=None)
def model(service: str) -> dict:
    import botocore.loaders

    return botocore.loaders.Loader().load_service_model(service, "service-2")


@lru_cache(maxsize=None)
def operations(service: str) -> dict[str, str]:
    """Lower-case name without underscores -> the model's operation name."""
    return {name.lower(): name for name in model(service)["operations"]}


def operation_of(client: str, snake: str) -> str | None:
    service = CLIENTS[client][0]
    return operations(service).get(snake.replace("_", ""))


def actions_of(service: str, operation: str) -> list[str]:
    """The IAM actions one call of `operation` is authorized by."""
    prefix = PREFIX[service]
    if (service, operation) in ACTION_OF:
        return list(ACTION_OF[(service, operation)])
    if service == "apigateway":
        # API Gateway's management API is authorized by HTTP method.
        return [f"apigateway:{model(service)['operations'][operation]['http']['method']}"]
    return [f"{prefix}:{operation}"]


def indirect_of(service: str, operation: str) -> list[str]:
    out = []
    for (svc, op), extra in INDIRECT.items():
        if svc == service and op.split("#")[0] == operation:
            out += extra
        if svc == service and op == "#create" and re.match(r"(Create|Allocate)", operation):
            out += extra
    return out


def scan(root: Path = ROOT) -> dict[str, dict[str, set[str]]]:
    """action -> {"calls": files, "operations": "svc:Op" names}."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted((root / "src").rglob("*.rs")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text()
        for m in CALL.finditer(text):
            client, snake = m.group(1), m.group(2)
            op = operation_of(client, snake)
            if op is None:
                continue  # not an SDK call (`.ssm.len()`)
            service = CLIENTS[client][0]
            for action in actions_of(service, op) + indirect_of(service, op):
                entry = found.setdefault(action, {"calls": set(), "operations": set()})
                entry["calls"].add(rel)
                entry["operations"].add(f"{service}:{op}")
    return found


@lru_cache(maxsize=None)
def definitions() -> list[dict]:
    import parliament

    path = Path(parliament.__file__).parent / "iam_definition.json"
    return json.loads(path.read_text())


def privilege_of(prefix: str, name: str) -> tuple[dict, dict] | None:
    """The service and privilege entries of an action. Some prefixes have
    two services (IAM, ELB v1 and v2, API Gateway v1 and v2); like
    parliament, the first that has the action."""
    for service in definitions():
        if service["prefix"] == prefix:
            for p in service["privileges"]:
                if p["privilege"] == name:
                    return service, p
    return None


TAG_KEYS = {"aws:RequestTag/${TagKey}": "request", "aws:ResourceTag/${TagKey}": "resource"}


def describe(action: str, arns: dict[str, dict[str, str]]) -> dict:
    """What IAM says of `action`: its access level, the resource types it can
    be scoped to (required or not, and which tag conditions each takes), the
    condition keys of the action itself; the ARN formats go to `arns`."""
    prefix, name = action.split(":")
    found = privilege_of(prefix, name)
    if found is None:
        raise SystemExit(f"{action}: not in the Service Authorization Reference (add it to ACTION_OF)")
    service, privilege = found
    known = {r["resource"]: r for r in service["resources"]}
    resources = []
    for rt in privilege["resource_types"]:
        kind = rt["resource_type"]
        res = known.get(kind.rstrip("*"))
        if not kind or res is None:
            continue  # a row of the action's own condition keys
        keys = set(rt["condition_keys"]) | set(res["condition_keys"])
        tags = sorted(TAG_KEYS[k] for k in keys if k in TAG_KEYS)
        arns.setdefault(prefix, {})[res["resource"]] = res["arn"]
        resources.append({"type": res["resource"], "required": kind.endswith("*"), "tags": tags})
    keys = sorted({k for rt in privilege["resource_types"] if not rt["resource_type"] for k in rt["condition_keys"]})
    return {"access": privilege["access_level"], "resources": resources, "conditions": keys}


def build(root: Path = ROOT) -> dict:
    import parliament

    found = scan(root)
    arns: dict[str, dict[str, str]] = {}
    actions = {
        action: {"calls": sorted(entry["calls"]), "operations": sorted(entry["operations"]), **describe(action, arns)}
        for action, entry in sorted(found.items())
    }
    return {
        "about": "IAM actions infra calls, from scripts/iam_actions.py; resource types and condition keys "
        f"from the AWS Service Authorization Reference as parliament {parliament.__version__} bundles it",
        "actions": actions,
        "arns": {prefix: dict(sorted(types.items())) for prefix, types in sorted(arns.items())},
    }


def _uri_pattern(uri: str) -> tuple[re.Pattern, dict[str, str | None]]:
    """A model's `requestUri` as a path regex and the query it requires."""
    path, _, query = uri.partition("?")
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            regex += ".+" if part.endswith("+}") else "[^/]+"
        else:
            regex += re.escape(part)
    wanted: dict[str, str | None] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        wanted[key] = value if eq else None
    return re.compile(regex + "/?"), wanted


def request_operation(call: dict) -> tuple[str, str] | None:
    """(botocore service, operation) of one logged request, or None."""
    from urllib.parse import parse_qs

    service = SIGNING.get(call["service"], call["service"])
    if service not in PREFIX:
        return None
    if call.get("target"):
        return service, call["target"].rsplit(".", 1)[-1]
    if call.get("action"):
        return service, call["action"]
    query = parse_qs(call.get("query", ""), keep_blank_values=True)
    # The Rust SDK names the operation of an S3 call whose URI others share.
    if query.get("x-id", [""])[0] in model(service)["operations"]:
        return service, query["x-id"][0]
    best = None
    for name, op in model(service)["operations"].items():
        http = op.get("http", {})
        if http.get("method") != call["method"]:
            continue
        regex, wanted = _uri_pattern(http.get("requestUri", "/"))
        if not regex.fullmatch(call["path"]):
            continue
        if any(k not in query or (v is not None and query[k][0] != v) for k, v in wanted.items()):
            continue
        score = (len(wanted), len(regex.pattern), not op.get("deprecated", False))
        if best is None or score > best[0]:
            best = (score, name)
    return (service, best[1]) if best else None


def covered(calls_log: Path, policy: Path) -> int:
    """Checks that every call in the log is allowed by an action of the policy."""
    doc = json.loads(policy.read_text())
    allowed = set()
    for st in doc["Statement"]:
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        allowed.update(a.lower() for a in acts)
    missing: dict[str, set[str]] = {}
    unknown: set[str] = set()
    seen: set[str] = set()
    lines = calls_log.read_text().splitlines()
    for line in lines:
        call = json.loads(line)
        found = request_operation(call)
        if found is None:
            unknown.add(f"{call['service']} {call['method']} {call['path']}?{call['query']}")
            continue
        service, op = found
        for action in actions_of(service, op):
            seen.add(action)
            if action.lower() not in allowed:
                missing.setdefault(action, set()).add(f"{service}:{op}")
    for action, ops in sorted(missing.items()):
        print(f"not in the policy: {action} (called as {', '.join(sorted(ops))})", file=sys.stderr)
    for u in sorted(unknown):
        print(f"a call of no known operation: {u}", file=sys.stderr)
    if not lines:
        print(f"{calls_log}: no calls logged (was moto started with MOTO_CALLS_LOG?)", file=sys.stderr)
        return 1
    print(f"{len(lines)} distinct requests, {len(seen)} actions: all in the policy" if not (missing or unknown) else "")
    return 1 if missing or unknown else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if policy/actions.json is stale")
    ap.add_argument("--covered", nargs=2, metavar=("CALLS", "POLICY"), type=Path,
                    help="fail unless the policy document allows every call logged by moto_patched.py")
    args = ap.parse_args()
    if args.covered:
        return covered(*args.covered)
    text = json.dumps(build(), indent=1, sort_keys=False) + "\n"
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is not what the code calls: run scripts/iam_actions.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {len(json.loads(text)['actions'])} actions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
