"""Tests of scripts/iam_actions.py: a logged request named as its API
operation, the operation as its IAM action, and `--covered` failing on a
call the policy does not allow."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import iam_actions  # noqa: E402


def call(service, method="POST", path="/", query="", target="", action=""):
    return {"service": service, "method": method, "path": path, "query": query, "target": target, "action": action}


def test_requests_are_named_by_their_protocol():
    assert iam_actions.request_operation(call("ec2", action="DescribeVpcs")) == ("ec2", "DescribeVpcs")
    assert iam_actions.request_operation(call("dynamodb", target="DynamoDB_20120810.DescribeTable")) == (
        "dynamodb",
        "DescribeTable",
    )
    assert iam_actions.request_operation(call("elasticloadbalancing", action="DescribeTags")) == ("elbv2", "DescribeTags")
    # REST: by method, path and the query the operation requires.
    assert iam_actions.request_operation(call("lambda", "GET", "/2015-03-31/functions/webapp-users/configuration")) == (
        "lambda",
        "GetFunctionConfiguration",
    )
    assert iam_actions.request_operation(call("s3", "GET", "/webapp-site/", "tagging")) == ("s3", "GetBucketTagging")
    assert iam_actions.request_operation(call("s3", "PUT", "/webapp-site/", "lifecycle")) == (
        "s3",
        "PutBucketLifecycleConfiguration",
    ), "the current operation, not the deprecated one on the same URI"
    # The Rust SDK names the operation of an S3 URI several share.
    assert iam_actions.request_operation(call("s3", "PUT", "/b/index.html", "x-id=PutObject")) == ("s3", "PutObject")
    assert iam_actions.request_operation(call("apigateway", "GET", "/restapis/abc/stages")) == ("apigateway", "GetStages")
    assert iam_actions.request_operation(call("unknown-service")) is None


def test_operations_are_authorized_by_their_iam_actions():
    assert iam_actions.actions_of("s3", "HeadBucket") == ["s3:ListBucket"]
    assert iam_actions.actions_of("s3", "GetBucketEncryption") == ["s3:GetEncryptionConfiguration"]
    assert iam_actions.actions_of("apigateway", "GetStages") == ["apigateway:GET"]
    assert iam_actions.actions_of("apigateway", "UpdateStage") == ["apigateway:PATCH"]
    assert iam_actions.actions_of("elbv2", "DescribeTags") == ["elasticloadbalancing:DescribeTags"]
    assert iam_actions.actions_of("sts", "GetCallerIdentity") == [], "needs no permission"
    assert "iam:PassRole" in iam_actions.indirect_of("lambda", "CreateFunction")
    assert "ec2:CreateTags" in iam_actions.indirect_of("ec2", "CreateVpc")


def test_the_table_is_what_the_code_calls():
    table = json.loads((ROOT / "policy" / "actions.json").read_text())
    assert table == iam_actions.build(), "run scripts/iam_actions.py"
    role = table["actions"]["iam:CreateRole"]
    assert "src/aws/iam/role.rs" in role["calls"]
    assert role["resources"] == [{"type": "role", "required": True, "tags": ["resource"]}]


def test_covered_fails_on_a_call_the_policy_lacks(tmp_path, capsys):
    calls = tmp_path / "calls.jsonl"
    calls.write_text(json.dumps(call("ec2", action="DescribeVpcs")) + "\n" + json.dumps(call("iam", action="GetRole")) + "\n")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Statement": [{"Action": ["ec2:DescribeVpcs"], "Resource": "*"}]}))
    assert iam_actions.covered(calls, policy) == 1
    assert "iam:GetRole" in capsys.readouterr().err
    policy.write_text(json.dumps({"Statement": [{"Action": ["ec2:DescribeVpcs", "iam:GetRole"], "Resource": "*"}]}))
    assert iam_actions.covered(calls, policy) == 0
    calls.write_text("")
    assert iam_actions.covered(calls, policy) == 1, "nothing logged is a failure, not a pass"
