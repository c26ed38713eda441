#!/usr/bin/env python3
"""ministack (pip install ministack) with its gaps against AWS patched, for the
tests only: the product is never changed to suit the emulator. Each patch
below names the AWS behaviour it restores.

Usage:
    python3 ministack_patched.py --host 127.0.0.1 --port PORT [--state-dir DIR]
        [--lambda-python PYTHON] [--postgres HOST:PORT --postgres-user U --postgres-password P]

Needs, in the interpreter that runs this file: ministack, boto3 (the Lambda
Python runtime ships it) and cryptography (Cognito token signatures). `node`
on PATH runs CloudFront Functions.

Addressing (unchanged ministack behaviour, written down for the tests):
* REST API stage:  http://127.0.0.1:PORT/_aws/execute-api/{api_id}/{stage}/{path}
                   or Host: {api_id}.execute-api.localhost:PORT, path /{stage}/{path}
* distribution:    Host: {label}.cloudfront.localhost:PORT where {label} is the
                   first label of the distribution's DomainName (d...), not its Id;
                   add `X-Forwarded-Proto: https` to count as an HTTPS viewer.

The patches (search for "PATCH" to find each one):
 1. Lambda Python runtime: stdlib + boto3 only, clean environment.
 2. API Gateway REST: a stage serves the routes of ITS deployment.
 3. API Gateway REST: a deployment used by a stage cannot be deleted.
 4. API Gateway REST: Lambda errors and malformed proxy answers are a bare 502.
 5. API Gateway REST: invoking a function needs its resource policy to allow it.
 6. S3: anonymous requests get only what the bucket's ACLs and policy make public.
 7. CloudFront: an API Gateway stage as a custom origin is served.
 8. RDS: ManageMasterUserPassword creates the managed secret (MasterUserSecret).
 9. RDS: engine versions and parameter group families as RDS lists them;
    orderable options for every storage type.
10. RDS (optional, --postgres): the instance endpoint is a real PostgreSQL.
11. Auto Scaling: groups keep their target groups; instances are registered in
    them; UpdateAutoScalingGroup changes the launch template; AZs come from
    the subnets.
12. Policies: requests count as made over TLS (aws:SecureTransport).
13. Lambda: DynamoDB stream batches honour ReportBatchItemFailures.
14. EC2: flow logs keep their tags and report their log group and role.
15. EC2: interface VPC endpoints keep their security groups and private DNS.
16. RDS: log exports are kept.
17. API Gateway: UpdateMethod's apiKeyRequired is stored as a boolean.
18. Cognito: AdminCreateUser's temporary password meets the pool's policy.
19. EC2: network ACLs: subnets on their VPC's default ACL, association moves,
    the association.subnet-id filter, entries' port ranges; a launch
    template's network interfaces name their groups as EC2 does.
"""
import argparse
import contextvars
import copy
import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading


def _args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("--state-dir", help="ministack STATE_DIR (Cognito keys); default a fresh temp dir")
    p.add_argument("--lambda-python", default=sys.executable,
                   help="interpreter for python* functions (default: this one)")
    p.add_argument("--postgres", help="HOST:PORT of a PostgreSQL server that backs postgres DB instances")
    p.add_argument("--postgres-user", default="postgres")
    p.add_argument("--postgres-password", default="")
    return p.parse_args()


ARGS = _args()

# ministack reads its address from the environment when its modules are imported.
os.environ["BIND_HOST"] = ARGS.host
os.environ["GATEWAY_PORT"] = str(ARGS.port)
os.environ.setdefault("MINISTACK_HOST", "localhost")
os.environ["STATE_DIR"] = ARGS.state_dir or tempfile.mkdtemp(prefix="ministack-state-")
# ministack also opens an IoT MQTT-over-TLS listener on 0.0.0.0:8883 by default:
# not used by the stack, and a fixed port collides between parallel emulators.
os.environ.setdefault("IOT_MTLS_ENABLED", "0")
# Functions must call this emulator, never what the test harness points its own
# clients at (a fault-injecting proxy, another emulator).
for _k in [k for k in os.environ if k == "AWS_ENDPOINT_URL" or k.startswith("AWS_ENDPOINT_URL_")]:
    del os.environ[_k]

for _mod, _why in (("boto3", "the Lambda Python runtime ships boto3"),
                   ("cryptography", "Cognito signs its tokens with RS256")):
    if importlib.util.find_spec(_mod) is None:
        sys.exit(f"ministack_patched: `pip install {_mod}` first ({_why})")

import ministack.app as ms_app  # noqa: E402  (after the environment is set)
from ministack.core import lambda_runtime  # noqa: E402
from ministack.services import apigateway_v1 as apigw  # noqa: E402
from ministack.services import autoscaling, alb, cloudfront, ec2, rds  # noqa: E402
from ministack.services import lambda_svc, secretsmanager  # noqa: E402


# ---------------------------------------------------------------------------
# PATCH 1. The Lambda Python runtime. ministack runs python* functions with its
# own interpreter and its own site-packages, with boto3 only if it happens to be
# installed there, and hands them its whole process environment (the test
# harness's AWS_PROFILE, AWS_ENDPOINT_URL_..., anything). On AWS a function
# sees the standard library, boto3/botocore (and their dependencies), its own
# package, and an environment of Lambda's variables plus its own.
# Here: the interpreter runs with -S (no site-packages) and PYTHONPATH = a
# directory holding exactly boto3 and its dependencies; the environment is
# ministack's Lambda variables, the function's variables and a few process
# basics (PATH, HOME, TMPDIR, locale, CA bundle), plus the Lambda variables
# ministack omits (AWS_EXECUTION_ENV, _HANDLER, AWS_LAMBDA_LOG_GROUP_NAME,
# AWS_LAMBDA_INITIALIZATION_TYPE, TZ, LANG).
# ---------------------------------------------------------------------------
_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


def _runtime_dir():
    d = tempfile.mkdtemp(prefix="ministack-lambda-python-")
    probe = ("import importlib.util, json, os, sys\n"
             "out = {}\n"
             "for m in sys.argv[1:]:\n"
             "    s = importlib.util.find_spec(m)\n"
             "    if s is None: continue\n"
             "    out[m] = os.path.dirname(s.origin) if s.submodule_search_locations else s.origin\n"
             "print(json.dumps(out))\n")
    found = json.loads(subprocess.check_output([ARGS.lambda_python, "-c", probe, *_RUNTIME_PACKAGES]))
    missing = [m for m in ("boto3", "botocore") if m not in found]
    if missing:
        sys.exit(f"ministack_patched: {ARGS.lambda_python} cannot import {', '.join(missing)}")
    for path in found.values():
        os.symlink(path, os.path.join(d, os.path.basename(path)))
    return d


_LAMBDA_PYTHONPATH = _runtime_dir()
_HOST_KEEP = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR",
              "AWS_CA_BUNDLE", "LD_LIBRARY_PATH", "NODE_PATH"}
_spawning = threading.local()
_orig_spawn = lambda_runtime.Worker._spawn


def _spawn(self):
    _spawning.config = self.config
    try:
        return _orig_spawn(self)
    finally:
        _spawning.config = None


class _LambdaSubprocess:
    """lambda_runtime's `subprocess`, with Popen building the runtime's process."""

    def __getattr__(self, name):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(cmd, *args, env=None, **kwargs):
        config = getattr(_spawning, "config", None)
        if config is None or env is None:
            return subprocess.Popen(cmd, *args, env=env, **kwargs)
        own = set((config.get("Environment") or {}).get("Variables") or {})
        clean = {}
        for k, v in env.items():
            inherited = k in os.environ and os.environ[k] == v
            if k in own or k in _HOST_KEEP or not inherited:
                clean[k] = v
        runtime = config.get("Runtime", "")
        name = config.get("FunctionName", "")
        clean.setdefault("AWS_EXECUTION_ENV", f"AWS_Lambda_{runtime}")
        clean.setdefault("_HANDLER", config.get("Handler", ""))
        clean.setdefault("AWS_LAMBDA_LOG_GROUP_NAME",
                         (config.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}")
        clean.setdefault("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        clean.setdefault("TZ", ":UTC")
        clean.setdefault("LANG", "en_US.UTF-8")
        if runtime.startswith("python") and isinstance(cmd, list) and cmd and cmd[0] == ARGS.lambda_python:
            cmd = [cmd[0], "-S", *cmd[1:]]
            clean["PYTHONPATH"] = _LAMBDA_PYTHONPATH
            clean.pop("PYTHONHOME", None)
        return subprocess.Popen(cmd, *args, env=clean, **kwargs)


_orig_detect = lambda_runtime._detect_runtime_binary


def _detect_runtime_binary(runtime):
    binary, script = _orig_detect(runtime)
    if runtime.startswith("python"):
        binary = ARGS.lambda_python
    return binary, script


# The AWS Python runtime gives the root logger a handler (stderr, which is the
# function's log): a function's `logging.getLogger(x).setLevel(INFO)` lines
# reach CloudWatch Logs. ministack's worker installs none, so only WARNING and
# above come out (through logging's last-resort handler).
lambda_runtime._PYTHON_WORKER_SCRIPT = (
    "import logging as _ms_logging, sys as _ms_sys\n"
    "_ms_h = _ms_logging.StreamHandler(_ms_sys.stderr)\n"
    "_ms_h.setFormatter(_ms_logging.Formatter('[%(levelname)s]\\t%(asctime)s\\t%(message)s'))\n"
    "_ms_logging.getLogger().addHandler(_ms_h)\n"
    "_ms_logging.getLogger().setLevel(_ms_logging.WARNING)\n"
) + lambda_runtime._PYTHON_WORKER_SCRIPT
lambda_runtime.Worker._spawn = _spawn
lambda_runtime.subprocess = _LambdaSubprocess()
lambda_runtime._detect_runtime_binary = _detect_runtime_binary


# ---------------------------------------------------------------------------
# PATCH 2. A REST API stage serves the routes (resources, methods,
# integrations) of the deployment it points to: on AWS a change to the API is
# live only after a new deployment. ministack routes every stage on the live
# resource tree. Here CreateDeployment snapshots the tree and a stage's
# requests are matched against its deployment's snapshot.
# ---------------------------------------------------------------------------
_deployment_trees = {}  # (api_id, deployment_id) -> {resource_id: resource}
_routing_tree = contextvars.ContextVar("ministack_patched_routing_tree", default=None)
_orig_create_deployment = apigw._create_deployment


def _create_deployment(api_id, data):
    response = _orig_create_deployment(api_id, data)
    if response[0] == 201:
        deployment_id = json.loads(response[2])["id"]
        _deployment_trees[(api_id, deployment_id)] = copy.deepcopy(dict(apigw._resources.get(api_id, {})))
    return response


def _resources_for(api_id):
    tree = _routing_tree.get()
    if tree is not None and tree[0] == api_id:
        return tree[1]
    return apigw._resources.get(api_id, {})


def _match_resource_tree(api_id, segments):
    resources = _resources_for(api_id)
    root = next((r for r in resources.values() if r.get("path") == "/"), None)
    if not root:
        return None, {}
    if not segments or segments == [""]:
        return root, {}
    return apigw._match_recursive(resources, root["id"], segments, {})


def _match_greedy_fallback(api_id, segments, http_method):
    # ministack's own fallback (the most specific {proxy+} serving the method
    # whose parent path prefixes the request), on the deployment's tree.
    best = None
    for res in _resources_for(api_id).values():
        part = res.get("pathPart", "")
        if not (part.startswith("{") and part.endswith("+}")):
            continue
        methods = res.get("resourceMethods") or {}
        if http_method not in methods and "ANY" not in methods:
            continue
        prefix = [s for s in res.get("path", "").strip("/").split("/")[:-1] if s]
        if len(prefix) >= len(segments):
            continue
        params = {}
        for want, got in zip(prefix, segments):
            if want.startswith("{") and want.endswith("}") and not want.endswith("+}"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            params[part[1:-2]] = "/".join(segments[len(prefix):])
            if best is None or len(prefix) > best[0]:
                best = (len(prefix), res, params)
    return (best[1], best[2]) if best else (None, None)


_orig_handle_execute_in_scope = apigw._handle_execute_in_scope


async def _handle_execute_in_scope(api_id, stage_name, *args, **kwargs):
    stage = apigw._stages_v1.get(api_id, {}).get(stage_name) or {}
    tree = _deployment_trees.get((api_id, stage.get("deploymentId")))
    token = _routing_tree.set((api_id, tree) if tree is not None else None)
    try:
        return await _orig_handle_execute_in_scope(api_id, stage_name, *args, **kwargs)
    finally:
        _routing_tree.reset(token)


apigw._create_deployment = _create_deployment
apigw._match_resource_tree = _match_resource_tree
apigw._match_greedy_fallback = _match_greedy_fallback
apigw._handle_execute_in_scope = _handle_execute_in_scope


# ---------------------------------------------------------------------------
# PATCH 3. DeleteDeployment of a deployment a stage still points to fails on
# AWS (BadRequestException: "Active stages pointing to this deployment must be
# moved or deleted"); ministack deletes it and leaves the stage dangling.
# ---------------------------------------------------------------------------
_orig_delete_deployment = apigw._delete_deployment


def _delete_deployment(api_id, deployment_id):
    stages = apigw._stages_v1.get(api_id, {})
    if any(s.get("deploymentId") == deployment_id for s in stages.values()):
        return apigw._v1_error("BadRequestException",
                               "Active stages pointing to this deployment must be moved or deleted", 400)
    response = _orig_delete_deployment(api_id, deployment_id)
    if response[0] == 202:
        _deployment_trees.pop((api_id, deployment_id), None)
    return response


apigw._delete_deployment = _delete_deployment


# ---------------------------------------------------------------------------
# PATCH 4. When the function of an AWS_PROXY integration fails (unhandled
# exception, timeout, crash) API Gateway answers 502 {"message": "Internal
# server error"}, and the same when it returns something that is not a proxy
# response (an object with an integer statusCode): it never shows the
# function's error to the caller. ministack puts the function's errorMessage in
# the body, and passes any non-proxy answer through as a 200.
# ---------------------------------------------------------------------------
def _lambda_proxy_response(result):
    if result.get("throttle"):
        return lambda_svc.lambda_execute_result_to_api_proxy_response(result)[0], None
    if result.get("error"):
        return None, "Internal server error"
    answer = result.get("body")
    if isinstance(answer, (str, bytes)):
        try:
            answer = json.loads(answer)
        except (ValueError, UnicodeDecodeError):
            return None, "Internal server error"
    status = answer.get("statusCode") if isinstance(answer, dict) else None
    if isinstance(status, bool) or not isinstance(status, (int, str)) or not str(status).isdigit():
        return None, "Internal server error"
    body = answer.get("body")
    if body is not None and not isinstance(body, str):
        return None, "Internal server error"
    return {**answer, "statusCode": int(status), "body": body or ""}, None


apigw._lambda_proxy_response = _lambda_proxy_response


# ---------------------------------------------------------------------------
# PATCH 5. API Gateway may invoke a function only when the function's resource
# policy allows apigateway.amazonaws.com for this API (lambda:AddPermission,
# SourceArn arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH); else
# the caller gets 500 {"message": "Internal server error"}. ministack invokes
# regardless.
# ---------------------------------------------------------------------------
def _arn_like(pattern, value):
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value) is not None


def _apigateway_may_invoke(policy, function_arn, source_arn, account):
    for st in (policy or {}).get("Statement", []):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        services = principal.get("Service") if isinstance(principal, dict) else principal
        services = services if isinstance(services, list) else [services]
        if not any(s in ("apigateway.amazonaws.com", "*") for s in services):
            continue
        actions = st.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if not any(a in ("lambda:InvokeFunction", "lambda:*", "*") for a in actions):
            continue
        resources = st.get("Resource")
        resources = resources if isinstance(resources, list) else [resources]
        if not any(_arn_like(r, function_arn) or _arn_like(r, function_arn.split(":$")[0]) for r in resources):
            continue
        cond = st.get("Condition") or {}
        ok = True
        for op, pairs in cond.items():
            for key, want in pairs.items():
                want = want if isinstance(want, list) else [want]
                if key.lower() == "aws:sourcearn":
                    ok = ok and any(_arn_like(w, source_arn) if op.startswith("ArnLike") or op.startswith("StringLike")
                                    else w == source_arn for w in want)
                elif key.lower() == "aws:sourceaccount":
                    ok = ok and account in want
        if ok:
            return True
    return False


_orig_invoke_lambda_proxy_v1 = apigw._invoke_lambda_proxy_v1


async def _invoke_lambda_proxy_v1(integration, api_id, stage_name, stage, resource, request_path, method,
                                  *args, owner_account_id=None, owner_region=None, **kwargs):
    ref = apigw._extract_lambda_ref_from_integration_uri(integration.get("uri", ""))
    func, config, _name = lambda_svc._get_func_record_for_ref_in_scope(
        ref, account_id=owner_account_id, region=owner_region)
    if func is not None and config is not None:
        source_arn = (f"arn:aws:execute-api:{owner_region}:{owner_account_id}:{api_id}/{stage_name}/"
                      f"{method}/{request_path.lstrip('/')}")
        if not _apigateway_may_invoke(func.get("policy"), config.get("FunctionArn", ""), source_arn,
                                      owner_account_id):
            return apigw._gw_error("API_CONFIGURATION_ERROR", "Internal server error")
    return await _orig_invoke_lambda_proxy_v1(integration, api_id, stage_name, stage, resource, request_path,
                                              method, *args, owner_account_id=owner_account_id,
                                              owner_region=owner_region, **kwargs)


apigw._invoke_lambda_proxy_v1 = _invoke_lambda_proxy_v1


# ---------------------------------------------------------------------------
# PATCH 6. S3 answers an anonymous request (no Authorization header, not
# presigned) from the bucket's ACLs and policy, under Block Public Access:
# a private bucket answers 403 AccessDenied, so its objects are reachable only
# through CloudFront (OAC) or signed requests. ministack (without AUTH) serves
# every unsigned request as the account owner.
# ---------------------------------------------------------------------------
from ministack.services import s3 as s3svc  # noqa: E402

_orig_s3_handle_request = s3svc.handle_request
_PRESIGNED_KEYS = {"X-Amz-Signature", "Signature", "X-Amz-Credential", "AWSAccessKeyId"}


async def _s3_handle_request(method, path, headers, body, query_params, *args, **kwargs):
    internal = kwargs.get("internal", False)
    unsigned = not any(k.lower() == "authorization" for k in (headers or {})) and \
        not (_PRESIGNED_KEYS & set(query_params or {}))
    if unsigned and not internal and method != "OPTIONS":
        bucket, key = s3svc._parse_bucket_key(path, headers)
        if bucket and s3svc._ensure_bucket(bucket) is not None:
            owner = s3svc._bucket_owner_account(bucket) or s3svc.get_account_id()
            if not s3svc._foreign_bucket_allows(owner, bucket, key or "", method, query_params or {}, "", headers):
                return s3svc._error("AccessDenied", "Access Denied", 403, f"/{bucket}/{key or ''}")
    return await _orig_s3_handle_request(method, path, headers, body, query_params, *args, **kwargs)


s3svc.handle_request = _s3_handle_request


# ---------------------------------------------------------------------------
# PATCH 7. A CloudFront origin `{api_id}.execute-api.{region}.amazonaws.com`
# (with OriginPath `/{stage}`) reaches that API Gateway stage. ministack
# refuses to dial AWS-owned hosts (502) and has no in-process route for API
# Gateway (it has one for S3, ALB and Function URLs). Here the request is
# handed to the REST API data plane in-process, with the headers CloudFront
# sends an origin (Host = the origin's domain, Via, X-Amz-Cf-Id,
# X-Forwarded-For) and the path OriginPath + URI, as CloudFront forwards it.
# An unknown API is unreachable, as its DNS name would be (502).
# ---------------------------------------------------------------------------
_EXECUTE_API_ORIGIN = re.compile(r"^([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com\.?$")
_orig_fetch_from_origin = cloudfront._fetch_from_origin


async def _fetch_from_origin(origin, method, uri, query_string, headers, body, viewer_is_https, client_ip,
                             viewer_xff, dist_arn):
    m = _EXECUTE_API_ORIGIN.match((origin.get("domain_name") or "").lower())
    if m is None or origin.get("s3_bucket"):
        return await _orig_fetch_from_origin(origin, method, uri, query_string, headers, body,
                                             viewer_is_https, client_ip, viewer_xff, dist_arn)
    api_id = m.group(1)
    if apigw.find_api_scope(api_id) is None:
        raise cloudfront.OriginUnreachable(f"no REST API {api_id}")
    path = (origin.get("origin_path") or "") + uri
    stage, _, rest = path.lstrip("/").partition("/")
    send = {k.lower(): v for k, v in cloudfront._origin_request_headers(origin, headers, client_ip, viewer_xff).items()}
    from urllib.parse import parse_qs
    status, resp_headers, data = await apigw.handle_execute(
        api_id, stage, method, "/" + rest, send, body or b"", parse_qs(query_string or "", keep_blank_values=True))
    pairs = [(k, v) for k, vs in resp_headers.items() for v in (vs if isinstance(vs, list) else [vs])]
    import http.client
    return status, http.client.responses.get(status, ""), cloudfront._multidict_from_pairs(pairs), data


cloudfront._fetch_from_origin = _fetch_from_origin


# ---------------------------------------------------------------------------
# PATCH 8. CreateDBInstance with ManageMasterUserPassword: RDS generates the
# master password, stores {"username", "password"} in a Secrets Manager secret
# `rds!db-<uuid>` and reports it as MasterUserSecret {SecretArn, SecretStatus,
# KmsKeyId} in every DBInstance; DeleteDBInstance deletes that secret.
# ministack does this for clusters only; for an instance it ignores the flag
# (no secret, and the password is "password").
# ---------------------------------------------------------------------------
_orig_create_db_instance_impl = rds._create_db_instance_impl
_orig_instance_xml = rds._instance_xml


def _create_db_instance_impl(p):
    if rds._p(p, "ManageMasterUserPassword") != "true" or rds._p(p, "DBClusterIdentifier"):
        return _orig_create_db_instance_impl(p)
    if rds._p(p, "MasterUserPassword"):
        return rds._error("InvalidParameterCombination",
                          "You can't specify MasterUserPassword when ManageMasterUserPassword is turned on.", 400)
    p = dict(p)
    password = rds._generate_master_user_password()
    p["MasterUserPassword"] = password
    response = _orig_create_db_instance_impl(p)
    db_id = rds._p(p, "DBInstanceIdentifier")
    instance = rds._instances.get(db_id)
    if response[0] == 200 and instance is not None and not instance.get("MasterUserSecret"):
        import uuid
        arn = secretsmanager.create_secret_in_process(
            f"rds!db-{uuid.uuid4()}",
            json.dumps({"username": instance["MasterUsername"], "password": password}),
            description=f"Secret managed by RDS for DB instance {db_id}",
        )
        instance["MasterUserSecret"] = {
            "SecretArn": arn,
            "SecretStatus": "active",
            "KmsKeyId": rds._p(p, "MasterUserSecretKmsKeyId")
            or f"arn:aws:kms:{rds.get_region()}:{rds.get_account_id()}:key/aws-secretsmanager-default",
        }
        _on_managed_instance(instance, password)
        # The create answer was rendered before the secret existed.
        response = (response[0], response[1],
                    response[2].replace(b"</TagList>", b"</TagList>" + _secret_xml(instance).encode(), 1))
    return response


def _secret_xml(i):
    s = i.get("MasterUserSecret")
    if not s:
        return ""
    return (f"<MasterUserSecret><SecretArn>{s['SecretArn']}</SecretArn><SecretStatus>{s['SecretStatus']}"
            f"</SecretStatus><KmsKeyId>{s['KmsKeyId']}</KmsKeyId></MasterUserSecret>")


def _instance_xml(i):
    return _orig_instance_xml(i) + _secret_xml(i)


rds._create_db_instance_impl = _create_db_instance_impl
rds._instance_xml = _instance_xml


def _wrap_delete_db_instance(orig):
    def delete(p):
        instance = rds._instances.get(rds._p(p, "DBInstanceIdentifier")) or {}
        secret = (instance.get("MasterUserSecret") or {}).get("SecretArn")
        response = orig(p)
        if response[0] == 200 and secret:
            secretsmanager.delete_secret_in_process(secret)
        return response
    return delete


# ---------------------------------------------------------------------------
# PATCH 9. DescribeDBEngineVersions as RDS answers it: the versions RDS offers
# (16.3 among them) and DBParameterGroupFamily `postgres16` (ministack says
# `16`, and lists 16.4 only, so a stack pinned to 16.3 finds no family).
# DescribeOrderableDBInstanceOptions: one option per storage type (gp2, gp3,
# io1, io2), not gp2 only.
# ---------------------------------------------------------------------------
_ENGINE_VERSIONS = {
    "postgres": ["12.22", "13.18", "13.20", "14.15", "14.17", "15.10", "15.12", "16.3", "16.4", "16.6",
                 "16.8", "17.2", "17.4", "17.5"],
    "mysql": ["5.7.44", "8.0.36", "8.0.39", "8.0.40", "8.0.41", "8.4.3", "8.4.4"],
    "mariadb": ["10.5.27", "10.6.20", "10.11.10", "11.4.4"],
}
_DEFAULT_VERSIONS = {"postgres": "17.4", "mysql": "8.0.40", "mariadb": "10.11.10"}


def _family(engine, version):
    major = version.split(".")[0]
    if engine == "postgres":
        return f"postgres{major}"
    return f"{engine}{'.'.join(version.split('.')[:2])}"


_orig_describe_engine_versions = rds._describe_engine_versions


def _describe_engine_versions(p):
    engine = rds._p(p, "Engine")
    if engine not in _ENGINE_VERSIONS:
        return _orig_describe_engine_versions(p)
    want = rds._p(p, "EngineVersion")
    family_filter = rds._p(p, "DBParameterGroupFamily")
    default_only = rds._p(p, "DefaultOnly") == "true"
    members = ""
    for v in _ENGINE_VERSIONS[engine]:
        if want and v != want and not (want.isdigit() and v.split(".")[0] == want):
            continue
        if default_only and not want and v != _DEFAULT_VERSIONS[engine]:
            continue
        if family_filter and family_filter != _family(engine, v):
            continue
        members += (f"<DBEngineVersion><Engine>{engine}</Engine><EngineVersion>{v}</EngineVersion>"
                    f"<DBParameterGroupFamily>{_family(engine, v)}</DBParameterGroupFamily>"
                    f"<DBEngineDescription>{engine}</DBEngineDescription>"
                    f"<DBEngineVersionDescription>{engine} {v}</DBEngineVersionDescription>"
                    f"<Status>available</Status><SupportsReadReplica>true</SupportsReadReplica>"
                    f"</DBEngineVersion>")
    if default_only and want and members:
        members = members[:members.index("</DBEngineVersion>") + len("</DBEngineVersion>")]
    return rds._xml(200, "DescribeDBEngineVersionsResponse",
                    f"<DescribeDBEngineVersionsResult><DBEngineVersions>{members}</DBEngineVersions>"
                    f"</DescribeDBEngineVersionsResult>")


_orig_describe_orderable = rds._describe_orderable_options


def _describe_orderable_options(p):
    status, headers, body = _orig_describe_orderable(p)
    if status != 200:
        return status, headers, body
    text = body.decode() if isinstance(body, bytes) else body
    wanted = rds._p(p, "StorageType") if hasattr(rds, "_p") else ""
    out = []
    for m in re.finditer(r"<OrderableDBInstanceOption>.*?</OrderableDBInstanceOption>", text, re.S):
        for st in ("gp2", "gp3", "io1", "io2"):
            if wanted and st != wanted:
                continue
            opt = m.group(0).replace("<StorageType>gp2</StorageType>", f"<StorageType>{st}</StorageType>")
            if st != "gp2":
                opt = opt.replace("<SupportsIops>false</SupportsIops>", "<SupportsIops>true</SupportsIops>")
            out.append(opt)
    start = text.index("<OrderableDBInstanceOptions>") + len("<OrderableDBInstanceOptions>")
    end = text.index("</OrderableDBInstanceOptions>")
    text = text[:start] + "".join(out) + text[end:]
    return status, headers, text.encode()


rds._describe_engine_versions = _describe_engine_versions
rds._describe_orderable_options = _describe_orderable_options


# ---------------------------------------------------------------------------
# PATCH 10 (only with --postgres). A DB instance's endpoint answers: RDS runs
# the engine at Endpoint.Address:Endpoint.Port with the master user and the
# initial database. ministack needs Docker for that; without it nothing
# listens there. Here a postgres instance is backed by the PostgreSQL server
# given on the command line: its master user (with the instance's password, the
# managed one included) and its DBName are created there, and the endpoint is
# that server's address.
# ---------------------------------------------------------------------------
_PG = None
if ARGS.postgres:
    _pg_host, _, _pg_port = ARGS.postgres.rpartition(":")
    _PG = (_pg_host or "127.0.0.1", int(_pg_port or 5432))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "functions", "users"))
    import pg as _pgclient  # functions/users/pg.py: the stdlib PostgreSQL client


def _pg_ident(name):
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(value):
    return "'" + value.replace("'", "''") + "'"


def _provision_postgres(instance, password):
    if _PG is None or instance.get("Engine") != "postgres":
        return
    user, db = instance["MasterUsername"], instance.get("DBName") or "postgres"
    with _pgclient.connect(host=_PG[0], port=_PG[1], user=ARGS.postgres_user, password=ARGS.postgres_password,
                           database="postgres", sslmode="prefer") as conn:
        exists = conn.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [user]).rows
        verb = "ALTER" if exists else "CREATE"
        conn.execute(f"{verb} ROLE {_pg_ident(user)} LOGIN CREATEDB CREATEROLE PASSWORD {_pg_literal(password)}")
        if not conn.query("SELECT 1 FROM pg_database WHERE datname = $1", [db]).rows:
            conn.execute(f"CREATE DATABASE {_pg_ident(db)} OWNER {_pg_ident(user)}")
    instance["Endpoint"]["Address"] = _PG[0]
    instance["Endpoint"]["Port"] = _PG[1]
    instance["_patched_postgres"] = True


def _on_managed_instance(instance, password):
    try:
        _provision_postgres(instance, password)
    except Exception as e:  # the instance still exists, as RDS would report it; its database does not answer
        print(f"ministack_patched: could not provision {instance['DBInstanceIdentifier']} on {ARGS.postgres}: {e}",
              file=sys.stderr)


_orig_create_db_instance_impl_2 = rds._create_db_instance_impl


def _create_db_instance_with_engine(p):
    response = _orig_create_db_instance_impl_2(p)
    instance = rds._instances.get(rds._p(p, "DBInstanceIdentifier"))
    if _PG is None or response[0] != 200 or instance is None:
        return response
    if not instance.get("_patched_postgres"):
        _on_managed_instance(instance, instance.get("_MasterUserPassword") or "password")
    if instance.get("_patched_postgres"):
        response = (response[0], response[1], re.sub(
            rb"<Endpoint>\s*<Address>[^<]*</Address>\s*<Port>[^<]*</Port>",
            f"<Endpoint><Address>{instance['Endpoint']['Address']}</Address>"
            f"<Port>{instance['Endpoint']['Port']}</Port>".encode(), response[2], count=1))
    return response


rds._create_db_instance_impl = _create_db_instance_with_engine


# ---------------------------------------------------------------------------
# PATCH 11. Auto Scaling groups and target groups. On AWS a group created or
# updated with TargetGroupARNs (or AttachLoadBalancerTargetGroups) keeps them
# (DescribeAutoScalingGroups -> TargetGroupARNs, DescribeLoadBalancerTargetGroups)
# and registers its instances in them (ELBv2 DescribeTargetHealth lists them).
# ministack drops TargetGroupARNs and has no Attach/Detach/Describe for them.
# Also: UpdateAutoScalingGroup with a LaunchTemplate changes it (ministack
# ignores it), and a group in subnets (VPCZoneIdentifier) runs in those
# subnets' AZs (ministack says us-east-1a).
# ---------------------------------------------------------------------------
def _member_list(p, prefix):
    return autoscaling._parse_member_list(p, prefix)


def _sync_targets(asg):
    ids = [i["InstanceId"] for i in asg["Instances"]]
    mine = set(asg.get("_registered", {}))
    for tg in set(asg.get("TargetGroupARNs", [])) | mine:
        current = alb._targets.get(tg, [])
        previous = set(asg.get("_registered", {}).get(tg, []))
        keep = [t for t in current if t["Id"] not in previous]
        if tg in asg.get("TargetGroupARNs", []) and tg in alb._tgs:
            port = alb._tgs[tg].get("Port", 80)
            keep += [{"Id": i, "Port": port} for i in ids]
            asg.setdefault("_registered", {})[tg] = ids
        else:
            asg.get("_registered", {}).pop(tg, None)
        alb._targets[tg] = keep


def _azs_from_subnets(asg):
    subnets = [s for s in (asg.get("VPCZoneIdentifier") or "").split(",") if s]
    if not subnets:
        return
    ec2._ensure_defaults_initialized()
    azs = []
    for s in subnets:
        az = (ec2._subnets.get(s) or {}).get("AvailabilityZone")
        if az and az not in azs:
            azs.append(az)
    if azs:
        asg["AvailabilityZones"] = azs
        # instances are spread over the subnets' AZs
        for n, inst in enumerate(asg["Instances"]):
            inst["AvailabilityZone"] = azs[n % len(azs)]


def _launch_template_from(p):
    lt_id = autoscaling._p(p, "LaunchTemplate.LaunchTemplateId")
    lt_name = autoscaling._p(p, "LaunchTemplate.LaunchTemplateName")
    if not (lt_id or lt_name):
        return None
    ver = autoscaling._p(p, "LaunchTemplate.Version") or "$Default"
    lt = {"LaunchTemplateId": lt_id, "LaunchTemplateName": lt_name, "Version": ver}
    try:
        for t in ec2._launch_templates.values():
            if t.get("LaunchTemplateId") == lt_id or t.get("LaunchTemplateName") == lt_name:
                lt["LaunchTemplateId"] = t.get("LaunchTemplateId", lt_id)
                lt["LaunchTemplateName"] = t.get("LaunchTemplateName", lt_name)
    except AttributeError:
        pass
    lt["LaunchTemplateId"] = lt["LaunchTemplateId"] or lt["LaunchTemplateName"]
    lt["LaunchTemplateName"] = lt["LaunchTemplateName"] or lt["LaunchTemplateId"]
    return lt


def _tg_xml(asg):
    return "<TargetGroupARNs>" + "".join(f"<member>{a}</member>" for a in asg.get("TargetGroupARNs", [])) \
        + "</TargetGroupARNs>"


_orig_create_asg = autoscaling._create_asg


def _create_asg(p):
    response = _orig_create_asg(p)
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if response[0] == 200 and asg is not None:
        asg["TargetGroupARNs"] = _member_list(p, "TargetGroupARNs")
        lt = _launch_template_from(p)
        if lt:
            asg["LaunchTemplate"] = lt
            for inst in asg["Instances"]:
                inst["LaunchTemplate"] = lt
        _azs_from_subnets(asg)
        _sync_targets(asg)
    return response


_orig_update_asg = autoscaling._update_asg


def _update_asg(p):
    response = _orig_update_asg(p)
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if response[0] == 200 and asg is not None:
        lt = _launch_template_from(p)
        if lt:
            asg["LaunchTemplate"] = lt
        if _member_list(p, "AvailabilityZones"):
            asg["AvailabilityZones"] = _member_list(p, "AvailabilityZones")
        _azs_from_subnets(asg)
        _sync_targets(asg)
    return response


def _after(orig):
    def run(p):
        response = orig(p)
        asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
        if asg is not None:
            _azs_from_subnets(asg)
            _sync_targets(asg)
        return response
    return run


_orig_delete_asg = autoscaling._delete_asg


def _delete_asg(p):
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if asg is not None:
        asg["TargetGroupARNs"] = []
        _sync_targets(asg)
    return _orig_delete_asg(p)


def _attach_tgs(p):
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if asg is None:
        return autoscaling._error("ValidationError", "AutoScalingGroup name not found")
    for arn in _member_list(p, "TargetGroupARNs"):
        if arn not in alb._tgs:
            return autoscaling._error("ValidationError", f"Provided Target Groups may not be valid: {arn}")
        if arn not in asg.setdefault("TargetGroupARNs", []):
            asg["TargetGroupARNs"].append(arn)
    _sync_targets(asg)
    return autoscaling._xml(200, "AttachLoadBalancerTargetGroupsResponse", "<AttachLoadBalancerTargetGroupsResult/>")


def _detach_tgs(p):
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if asg is None:
        return autoscaling._error("ValidationError", "AutoScalingGroup name not found")
    gone = set(_member_list(p, "TargetGroupARNs"))
    asg["TargetGroupARNs"] = [a for a in asg.get("TargetGroupARNs", []) if a not in gone]
    _sync_targets(asg)
    return autoscaling._xml(200, "DetachLoadBalancerTargetGroupsResponse", "<DetachLoadBalancerTargetGroupsResult/>")


def _describe_lb_tgs(p):
    asg = autoscaling._asgs.get(autoscaling._p(p, "AutoScalingGroupName"))
    if asg is None:
        return autoscaling._error("ValidationError", "AutoScalingGroup name not found")
    members = "".join(f"<member><LoadBalancerTargetGroupARN>{a}</LoadBalancerTargetGroupARN>"
                      f"<State>InService</State></member>" for a in asg.get("TargetGroupARNs", []))
    return autoscaling._xml(200, "DescribeLoadBalancerTargetGroupsResponse",
                            f"<DescribeLoadBalancerTargetGroupsResult><LoadBalancerTargetGroups>{members}"
                            f"</LoadBalancerTargetGroups></DescribeLoadBalancerTargetGroupsResult>")


_orig_describe_asgs = autoscaling._describe_asgs


def _describe_asgs(p):
    status, headers, body = _orig_describe_asgs(p)
    text = body.decode() if isinstance(body, bytes) else body

    def add(m):
        name = m.group(1)
        asg = autoscaling._asgs.get(name) or {}
        return m.group(0) + _tg_xml(asg)
    text = re.sub(r"<member><AutoScalingGroupName>([^<]+)</AutoScalingGroupName>", add, text)
    return status, headers, text.encode()


autoscaling._create_asg = _create_asg
autoscaling._update_asg = _update_asg
autoscaling._delete_asg = _delete_asg
autoscaling._describe_asgs = _describe_asgs
autoscaling._ACTION_MAP.update({
    "CreateAutoScalingGroup": _create_asg,
    "UpdateAutoScalingGroup": _update_asg,
    "DeleteAutoScalingGroup": _delete_asg,
    "DescribeAutoScalingGroups": _describe_asgs,
    "SetDesiredCapacity": _after(autoscaling._set_desired_capacity),
    "AttachLoadBalancerTargetGroups": _attach_tgs,
    "DetachLoadBalancerTargetGroups": _detach_tgs,
    "DescribeLoadBalancerTargetGroups": _describe_lb_tgs,
})

if "DeleteDBInstance" in getattr(rds, "_ACTION_MAP", {}):
    rds._ACTION_MAP["DeleteDBInstance"] = _wrap_delete_db_instance(rds._ACTION_MAP["DeleteDBInstance"])
for _action, _fn in (("CreateDBInstance", None), ("DescribeDBEngineVersions", _describe_engine_versions),
                     ("DescribeOrderableDBInstanceOptions", _describe_orderable_options)):
    if _fn is not None and _action in getattr(rds, "_ACTION_MAP", {}):
        rds._ACTION_MAP[_action] = _fn


# ---------------------------------------------------------------------------
# PATCH 12. aws:SecureTransport. ministack serves plain HTTP on the loopback,
# standing in for AWS's TLS endpoints (every AWS API call the tool makes, and
# CloudFront's reads of its S3 origin, use TLS on AWS); without AUTH it never
# pins a request's transport, so policies see every request as plain HTTP
# and a TLS-only bucket policy denies even CloudFront. Here the transport
# defaults to TLS.
# ---------------------------------------------------------------------------
from ministack.core import iam_evaluator  # noqa: E402

iam_evaluator._request_origin = contextvars.ContextVar("ministack_request_origin", default=("127.0.0.1", True))


# ---------------------------------------------------------------------------
# PATCH 13. DynamoDB stream mappings with FunctionResponseTypes
# [ReportBatchItemFailures]: when the function answers {"batchItemFailures":
# [{"itemIdentifier": <SequenceNumber>}]}, Lambda checkpoints before the first
# failed record and retries from it (an answer naming an unknown record fails
# the whole batch). ministack ignores the answer and moves past the batch.
# Here such a batch is reported to the poller as failed, with the mapping's
# position moved to the first failed record (the poller keeps the position of a
# failed batch and retries it after its back-off).
# ---------------------------------------------------------------------------
_orig_execute_function = lambda_svc._execute_function


def _execute_function(func, event):
    from_poller = sys._getframe(1).f_code.co_name == "_poll_dynamodb_streams"
    result = _orig_execute_function(func, event)
    records = event.get("Records") if isinstance(event, dict) else None
    if (not from_poller or not records or result.get("error") or not isinstance(result.get("body"), dict)
            or records[0].get("eventSource") != "aws:dynamodb"):
        return result
    failures = result["body"].get("batchItemFailures") or []
    if not failures:
        return result
    config = func.get("config") or func
    source = records[0].get("eventSourceARN", "")
    for esm in lambda_svc._esms.values():
        if (esm.get("EventSourceArn") == source and esm.get("FunctionName") == config.get("FunctionName")
                and "ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or [])):
            seqs = [r.get("dynamodb", {}).get("SequenceNumber") for r in records]
            ids = [f.get("itemIdentifier") for f in failures if isinstance(f, dict)]
            first = min((seqs.index(i) for i in ids if i in seqs), default=0)
            with lambda_svc._dynamodb_stream_positions_lock:
                pos = lambda_svc._dynamodb_stream_positions.get(esm["UUID"])
                if pos is not None:
                    lambda_svc._dynamodb_stream_positions[esm["UUID"]] = pos + first
            return {"error": True, "log": result.get("log", ""),
                    "body": {"errorType": "BatchItemFailures",
                             "errorMessage": f"{len(ids)} record(s) reported as failed"}}
    return result


lambda_svc._execute_function = _execute_function


# ---------------------------------------------------------------------------
# PATCH 14. VPC flow logs as EC2 keeps them. CreateFlowLogs tags a flow log
# from its TagSpecification of ResourceType `vpc-flow-log` (AWS's name; ministack
# reads `flow-log` only, so the tags were lost), and DescribeFlowLogs returns
# what AWS returns for a CloudWatch Logs destination: logGroupName,
# deliverLogsPermissionArn and maxAggregationInterval (600 unless set).
# ---------------------------------------------------------------------------
_orig_create_flow_logs = ec2._create_flow_logs


def _create_flow_logs(params):
    before = set(ec2._flow_logs.keys())
    out = _orig_create_flow_logs(params)
    for fl_id in set(ec2._flow_logs.keys()) - before:
        fl = ec2._flow_logs[fl_id]
        fl["DeliverLogsPermissionArn"] = ec2._p(params, "DeliverLogsPermissionArn") or ""
        fl["MaxAggregationInterval"] = int(ec2._p(params, "MaxAggregationInterval") or 600)
        if fl.get("LogDestinationType") == "cloud-watch-logs":
            fl["LogGroupName"] = ec2._p(params, "LogGroupName") or (fl.get("LogDestination") or "").split(":log-group:")[-1]
        ec2._parse_tag_specs(params, "vpc-flow-log", fl_id)
    return out


def _describe_flow_logs(params):
    ids = ec2._parse_member_list(params, "FlowLogId")
    filters = ec2._parse_filters(params)
    items = ""
    for fl in ec2._flow_logs.values():
        if ids and fl["FlowLogId"] not in ids:
            continue
        if not ec2._resource_matches_tag_filters(fl["FlowLogId"], filters):
            continue
        if filters.get("resource-id") and fl["ResourceId"] not in filters["resource-id"]:
            continue
        group = f"<logGroupName>{fl['LogGroupName']}</logGroupName>" if fl.get("LogGroupName") else ""
        role = fl.get("DeliverLogsPermissionArn") or ""
        items += f"""<item>
            <flowLogId>{fl['FlowLogId']}</flowLogId>
            <resourceId>{fl['ResourceId']}</resourceId>
            <trafficType>{fl['TrafficType']}</trafficType>
            <logDestinationType>{fl['LogDestinationType']}</logDestinationType>
            <logDestination>{fl.get('LogDestination') or ''}</logDestination>
            {group}
            <deliverLogsPermissionArn>{role}</deliverLogsPermissionArn>
            <deliverLogsStatus>SUCCESS</deliverLogsStatus>
            <maxAggregationInterval>{fl.get('MaxAggregationInterval', 600)}</maxAggregationInterval>
            <flowLogStatus>{fl['FlowLogStatus']}</flowLogStatus>
            <creationTime>{fl['CreationTime']}</creationTime>
            {ec2._tag_set_xml(fl['FlowLogId'])}
        </item>"""
    return ec2._xml(200, "DescribeFlowLogsResponse", f"<flowLogSet>{items}</flowLogSet>")


ec2._create_flow_logs = _create_flow_logs
ec2._describe_flow_logs = _describe_flow_logs
ec2._ACTION_MAP["CreateFlowLogs"] = _create_flow_logs
ec2._ACTION_MAP["DescribeFlowLogs"] = _describe_flow_logs


# ---------------------------------------------------------------------------
# PATCH 15. Interface VPC endpoints keep their security groups and private DNS
# setting: CreateVpcEndpoint's SecurityGroupId.N and PrivateDnsEnabled (AWS's
# default for an interface endpoint: true), changed by ModifyVpcEndpoint's
# Add/RemoveSecurityGroupId.N and PrivateDnsEnabled, and returned by
# DescribeVpcEndpoints as groupSet and privateDnsEnabled. ministack drops them.
# Every endpoint keeps its policy the same way (PolicyDocument; AWS's
# full-access default when none is sent or ResetPolicy is true), returned as
# policyDocument: ministack stores a modified one only and returns none.
# ---------------------------------------------------------------------------
_orig_create_vpc_endpoint = ec2._create_vpc_endpoint
_orig_modify_vpc_endpoint = ec2._modify_vpc_endpoint
_orig_vpce_fields_xml = ec2._vpce_fields_xml


_FULL_ACCESS = json.dumps({"Version": "2008-10-17", "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]})


def _flag(value, default):
    return default if value in (None, "") else str(value).lower() == "true"


def _create_vpc_endpoint(p):
    before = set(ec2._vpc_endpoints.keys())
    out = _orig_create_vpc_endpoint(p)
    for vpce_id in set(ec2._vpc_endpoints.keys()) - before:
        ep = ec2._vpc_endpoints[vpce_id]
        interface = ep.get("VpcEndpointType") == "Interface"
        ep["SecurityGroupIds"] = ec2._parse_member_list(p, "SecurityGroupId") if interface else []
        ep["PrivateDnsEnabled"] = _flag(ec2._p(p, "PrivateDnsEnabled"), interface) if interface else False
        ep["PolicyDocument"] = ec2._p(p, "PolicyDocument") or _FULL_ACCESS
    # The answer was rendered before the fields were stored: render it again.
    for vpce_id in set(ec2._vpc_endpoints.keys()) - before:
        return ec2._xml(200, "CreateVpcEndpointResponse",
                        _vpce_fields_xml(ec2._vpc_endpoints[vpce_id], tag="vpcEndpoint"))
    return out


def _modify_vpc_endpoint(p):
    out = _orig_modify_vpc_endpoint(p)
    ep = ec2._vpc_endpoints.get(ec2._p(p, "VpcEndpointId"))
    if ep is not None:
        groups = [g for g in ep.get("SecurityGroupIds", []) if g not in ec2._parse_member_list(p, "RemoveSecurityGroupId")]
        groups += [g for g in ec2._parse_member_list(p, "AddSecurityGroupId") if g not in groups]
        ep["SecurityGroupIds"] = groups
        ep["PrivateDnsEnabled"] = _flag(ec2._p(p, "PrivateDnsEnabled"), ep.get("PrivateDnsEnabled", False))
        if _flag(ec2._p(p, "ResetPolicy"), False):
            ep["PolicyDocument"] = _FULL_ACCESS
    return out


def _vpce_fields_xml(ep, tag="item"):
    xml = _orig_vpce_fields_xml(ep, tag=tag)
    groups = "".join(f"<item><groupId>{g}</groupId></item>" for g in ep.get("SecurityGroupIds", []))
    policy = html.escape(ep.get("PolicyDocument") or _FULL_ACCESS, quote=False)
    extra = (f"<groupSet>{groups}</groupSet><policyDocument>{policy}</policyDocument>"
             f"<privateDnsEnabled>{'true' if ep.get('PrivateDnsEnabled') else 'false'}</privateDnsEnabled>")
    closing = f"</{tag}>"
    i = xml.rindex(closing)
    return xml[:i] + extra + xml[i:]


ec2._create_vpc_endpoint = _create_vpc_endpoint
ec2._modify_vpc_endpoint = _modify_vpc_endpoint
ec2._vpce_fields_xml = _vpce_fields_xml
ec2._ACTION_MAP["CreateVpcEndpoint"] = _create_vpc_endpoint
ec2._ACTION_MAP["ModifyVpcEndpoint"] = _modify_vpc_endpoint



# ---------------------------------------------------------------------------
# PATCH 16. RDS log exports: CreateDBInstance's EnableCloudwatchLogsExports
# and ModifyDBInstance's CloudwatchLogsExportConfiguration (EnableLogTypes,
# DisableLogTypes; applied at once, whatever ApplyImmediately says) set the
# instance's EnabledCloudwatchLogsExports, which DescribeDBInstances returns.
# ministack ignores both and always answers an empty list.
# ---------------------------------------------------------------------------
def _members(p, prefix):
    keyed = [(int(k[len(prefix):]), rds._p(p, k)) for k in p if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [v for _, v in sorted(keyed)]


def _wrap_create_log_exports(orig):
    def create(p):
        response = orig(p)
        instance = rds._instances.get(rds._p(p, "DBInstanceIdentifier"))
        if response[0] == 200 and instance is not None:
            instance["EnabledCloudwatchLogsExports"] = _members(p, "EnableCloudwatchLogsExports.member.")
            response = (response[0], response[1], _with_log_exports(response[2], instance))
        return response
    return create


def _wrap_modify_log_exports(orig):
    def modify(p):
        response = orig(p)
        instance = rds._instances.get(rds._p(p, "DBInstanceIdentifier"))
        if response[0] == 200 and instance is not None:
            on = _members(p, "CloudwatchLogsExportConfiguration.EnableLogTypes.member.")
            off = set(_members(p, "CloudwatchLogsExportConfiguration.DisableLogTypes.member."))
            kept = [t for t in instance.get("EnabledCloudwatchLogsExports", []) if t not in off]
            instance["EnabledCloudwatchLogsExports"] = kept + [t for t in on if t not in kept]
            response = (response[0], response[1], _with_log_exports(response[2], instance))
        return response
    return modify


def _log_exports_xml(i):
    members = "".join(f"<member>{t}</member>" for t in i.get("EnabledCloudwatchLogsExports", []))
    return f"<EnabledCloudwatchLogsExports>{members}</EnabledCloudwatchLogsExports>"


_LOG_EXPORTS = re.compile(rb"<EnabledCloudwatchLogsExports/>|<EnabledCloudwatchLogsExports>.*?</EnabledCloudwatchLogsExports>",
                          re.S)


def _with_log_exports(body, instance):
    """The answer, rendered before the exports were stored, with them."""
    return _LOG_EXPORTS.sub(lambda _: _log_exports_xml(instance).encode(), body, count=1)


_orig_instance_xml_logs = rds._instance_xml


def _instance_xml_logs(i):
    return _with_log_exports(_orig_instance_xml_logs(i).encode(), i).decode()


rds._instance_xml = _instance_xml_logs
rds._ACTION_MAP["CreateDBInstance"] = _wrap_create_log_exports(rds._ACTION_MAP["CreateDBInstance"])
rds._ACTION_MAP["ModifyDBInstance"] = _wrap_modify_log_exports(rds._ACTION_MAP["ModifyDBInstance"])


# ---------------------------------------------------------------------------
# PATCH 17. UpdateMethod's patch values are strings ("true"), and API Gateway
# stores the fields they set as the fields' types: /apiKeyRequired becomes the
# boolean the method then reports. ministack stores the string, and answers
# "apiKeyRequired": "true", which no SDK reads as a boolean.
# ---------------------------------------------------------------------------
_orig_update_method = apigw._update_method


def _update_method(api_id, resource_id, http_method, data):
    out = _orig_update_method(api_id, resource_id, http_method, data)
    method_obj = apigw._resources.get(api_id, {}).get(resource_id, {}).get("resourceMethods", {}).get(http_method)
    if method_obj is not None and isinstance(method_obj.get("apiKeyRequired"), str):
        method_obj["apiKeyRequired"] = method_obj["apiKeyRequired"].lower() == "true"
        return apigw._v1_response(method_obj)
    return out


apigw._update_method = _update_method


# ---------------------------------------------------------------------------
# PATCH 18. AdminCreateUser without TemporaryPassword: Cognito generates a
# temporary password that meets the pool's password policy, whatever its
# minimum length. ministack always generates 12 characters, which a pool
# asking for more then refuses (InvalidPasswordException).
# ---------------------------------------------------------------------------
from ministack.services import cognito  # noqa: E402

_orig_admin_create_user = cognito._admin_create_user


def _conforming_password(length):
    import secrets
    import string
    symbols = "!@#$%^&*"
    chars = string.ascii_letters + string.digits + symbols
    password = [secrets.choice(string.ascii_uppercase), secrets.choice(string.ascii_lowercase),
                secrets.choice(string.digits), secrets.choice(symbols)]
    password += [secrets.choice(chars) for _ in range(length - len(password))]
    secrets.SystemRandom().shuffle(password)
    return "".join(password)


def _admin_create_user(data):
    if not data.get("TemporaryPassword"):
        pool, err = cognito._resolve_pool(data.get("UserPoolId"))
        if not err:
            length = pool.get("Policies", {}).get("PasswordPolicy", {}).get("MinimumLength", 8)
            data = dict(data, TemporaryPassword=_conforming_password(max(length, 12)))
    return _orig_admin_create_user(data)


cognito._admin_create_user = _admin_create_user


# ---------------------------------------------------------------------------
# PATCH 19. Network ACLs as EC2 keeps them: every subnet is associated with
# exactly one ACL, its VPC's default one from CreateSubnet on (ministack makes
# no association); DescribeNetworkAcls filters by association.subnet-id;
# ReplaceNetworkAclAssociation moves the subnet of the association it names
# (ministack records a new association without its subnet) and answers an
# unknown association InvalidAssociationID.NotFound; DeleteSubnet drops the
# subnet's association; entries keep their PortRange (ministack drops it) and
# a second entry with a taken (rule number, direction) is refused
# NetworkAclEntryAlreadyExists.
# ---------------------------------------------------------------------------
_orig_create_subnet = ec2._create_subnet
_orig_delete_subnet = ec2._delete_subnet
_orig_describe_network_acls = ec2._describe_network_acls
_orig_create_network_acl_entry = ec2._create_network_acl_entry
_orig_replace_network_acl_entry = ec2._replace_network_acl_entry
_orig_network_acl_entry_xml = ec2._network_acl_entry_xml


def _new_acl_association_id():
    return "aclassoc-" + os.urandom(9).hex()[:17]


def _create_subnet_on_default_acl(p):
    before = set(ec2._subnets)
    out = _orig_create_subnet(p)
    for subnet_id in set(ec2._subnets) - before:
        vpc_id = ec2._subnets[subnet_id].get("VpcId")
        for acl in ec2._network_acls.values():
            if acl["VpcId"] == vpc_id and acl.get("IsDefault"):
                acl["Associations"].append({"NetworkAclAssociationId": _new_acl_association_id(),
                                            "SubnetId": subnet_id})
    return out


def _delete_subnet_and_its_acl_association(p):
    subnet_id = ec2._p(p, "SubnetId")
    out = _orig_delete_subnet(p)
    if subnet_id not in ec2._subnets:
        for acl in ec2._network_acls.values():
            acl["Associations"] = [a for a in acl["Associations"] if a.get("SubnetId") != subnet_id]
    return out


def _describe_network_acls_by_subnet(p):
    subnets = ec2._parse_filters(p).get("association.subnet-id")
    if not subnets:
        return _orig_describe_network_acls(p)
    ids = [acl_id for acl_id, acl in ec2._network_acls.items()
           if any(a.get("SubnetId") in subnets for a in acl["Associations"])]
    wanted = ec2._parse_member_list(p, "NetworkAclId")
    ids = [i for i in ids if not wanted or i in wanted]
    if not ids:
        return ec2._xml(200, "DescribeNetworkAclsResponse", "<networkAclSet></networkAclSet>")
    q = {k: v for k, v in p.items() if not k.startswith("NetworkAclId.")}
    for n, acl_id in enumerate(ids, 1):
        q[f"NetworkAclId.{n}"] = [acl_id]
    return _orig_describe_network_acls(q)


def _replace_network_acl_association(p):
    assoc_id = ec2._p(p, "AssociationId")
    acl_id = ec2._p(p, "NetworkAclId")
    if acl_id not in ec2._network_acls:
        return ec2._error("InvalidNetworkAclID.NotFound", f"The network ACL '{acl_id}' does not exist", 400)
    subnet_id = None
    for acl in ec2._network_acls.values():
        for a in acl["Associations"]:
            if a["NetworkAclAssociationId"] == assoc_id:
                subnet_id = a["SubnetId"]
        acl["Associations"] = [a for a in acl["Associations"] if a["NetworkAclAssociationId"] != assoc_id]
    if subnet_id is None:
        return ec2._error("InvalidAssociationID.NotFound", f"The association ID '{assoc_id}' does not exist", 400)
    new_id = _new_acl_association_id()
    ec2._network_acls[acl_id]["Associations"].append({"NetworkAclAssociationId": new_id, "SubnetId": subnet_id})
    return ec2._xml(200, "ReplaceNetworkAclAssociationResponse", f"<newAssociationId>{new_id}</newAssociationId>")


def _keep_port_range(orig, refuse_taken):
    def handler(p):
        acl = ec2._network_acls.get(ec2._p(p, "NetworkAclId"))
        key = (int(ec2._p(p, "RuleNumber") or 0), ec2._p(p, "Egress") == "true")
        if refuse_taken and acl and any((e["RuleNumber"], e["Egress"]) == key for e in acl["Entries"]):
            return ec2._error("NetworkAclEntryAlreadyExists",
                              f"The network acl entry identified by {key[0]} already exists.", 400)
        out = orig(p)
        start = ec2._p(p, "PortRange.From")
        if acl and start != "":
            for e in acl["Entries"]:
                if (e["RuleNumber"], e["Egress"]) == key:
                    e["PortRange"] = {"From": int(start), "To": int(ec2._p(p, "PortRange.To") or start)}
        return out
    return handler


def _network_acl_entry_xml(entry):
    xml = _orig_network_acl_entry_xml(entry)
    ports = entry.get("PortRange")
    if not ports:
        return xml
    i = xml.rindex("</item>")
    return xml[:i] + f"<portRange><from>{ports['From']}</from><to>{ports['To']}</to></portRange>" + xml[i:]


ec2._network_acl_entry_xml = _network_acl_entry_xml


# A launch template's network interfaces list their groups as
# <groupSet><groupId>sg-..</groupId></groupSet> (the EC2 model's member name
# for LaunchTemplateInstanceNetworkInterfaceSpecification.Groups); ministack
# writes <item>, which SDKs read as no groups.
_orig_lt_data_xml = ec2._lt_data_xml


def _lt_data_xml(data):
    xml = _orig_lt_data_xml(data)
    for ni in data.get("NetworkInterfaces") or []:
        if ni.get("Groups"):
            wrong = "".join(f"<item>{ec2._esc(g)}</item>" for g in ni["Groups"])
            right = "".join(f"<groupId>{ec2._esc(g)}</groupId>" for g in ni["Groups"])
            xml = xml.replace(f"<groupSet>{wrong}</groupSet>", f"<groupSet>{right}</groupSet>", 1)
    return xml


ec2._lt_data_xml = _lt_data_xml
for _action, _handler in {
    "CreateSubnet": _create_subnet_on_default_acl,
    "DeleteSubnet": _delete_subnet_and_its_acl_association,
    "DescribeNetworkAcls": _describe_network_acls_by_subnet,
    "ReplaceNetworkAclAssociation": _replace_network_acl_association,
    "CreateNetworkAclEntry": _keep_port_range(_orig_create_network_acl_entry, True),
    "ReplaceNetworkAclEntry": _keep_port_range(_orig_replace_network_acl_entry, False),
}.items():
    ec2._ACTION_MAP[_action] = _handler


if __name__ == "__main__":
    sys.argv = [sys.argv[0]]
    sys.exit(ms_app.main())
