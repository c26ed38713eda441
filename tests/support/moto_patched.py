#!/usr/bin/env python3
"""moto_server with its emulator gaps patched, for the tests only (the
product is never changed to suit the emulator):

* moto drops `OriginAccessControlId` from a distribution's origins when it
  stores them; the tool compares that id, as it must on AWS, so on plain moto
  every plan would show the distribution changing.
* moto answers GetBucketVersioning with a `GetBucketVersioningResponse` root
  element instead of S3's `VersioningConfiguration`; the AWS CLI does not mind,
  the Rust SDK rejects the response.
* moto reports finished invalidations as `COMPLETED`; CloudFront says
  `Completed` (what `apply --wait` waits for).
* moto has no CloudFront Functions API (Create/Describe/Get/Update/Publish/
  Delete/ListFunctions, tags on a function ARN), and it drops
  `FunctionAssociations` from a distribution's cache behaviours.
* moto has no DescribeDBEngineVersions (the versions RDS offers), and its
  DescribeOrderableDBInstanceOptions knows only Aurora and Neptune.
* moto evaluates a bucket policy's conditions without the request's
  context (`aws:SecureTransport` is never set) and knows no `Bool` operator
  (an unknown operator counts as met), and a statement whose conditions do
  not hold denies instead of not applying; so a TLS-only statement (deny
  when it is "false") denies every request. The emulator is served over
  plain HTTP on the loopback, standing in for AWS's TLS endpoints: requests
  count as TLS ones here, as the tool's always are on AWS.
* moto answers AssociateRouteTable for a subnet that already has an
  association with that association's id (whatever the table); EC2 refuses
  with `Resource.AlreadyAssociated`.
* moto makes a second VPC endpoint when CreateVpcEndpoint is retried with the
  same ClientToken (AWS returns the first).
* moto ignores CreateFlowLogs' ClientToken: a retry whose first answer was
  lost is refused with `FlowLogAlreadyExists` (AWS returns the first
  answer's flow log ids).
* moto fails with an internal error (a Python ValueError, answered as an
  HTML 500) when RemoveRoleFromInstanceProfile names a role the profile no
  longer holds; IAM answers `NoSuchEntity`.
* moto has no instance refreshes (StartInstanceRefresh,
  DescribeInstanceRefreshes, CancelInstanceRefresh); here a refresh is
  recorded and, as moto's instances are ready at once, reported
  `Successful` (the instances are not replaced).
* moto ignores CreateNetworkAcl's ClientToken (a retry makes a second
  ACL; AWS returns the first), and answers ReplaceNetworkAclAssociation
  for an association id that no longer exists (the retry of a replacement
  whose answer was lost) with an internal error instead of EC2's
  `InvalidAssociationID.NotFound`; likewise DeleteNetworkAclEntry and
  ReplaceNetworkAclEntry of an entry that does not exist (EC2:
  `InvalidNetworkAclEntry.NotFound`). moto keeps a VPC's default network
  ACL after the VPC is deleted (AWS deletes it with the VPC).
* moto makes a second event source mapping of a function to the same
  DynamoDB stream; Lambda refuses with `ResourceConflictException` naming the
  existing mapping's UUID.
* (not a gap) With MOTO_CALLS_LOG naming a file, every request the tool
  under test makes (its user agent names the Rust SDK; the AWS CLI's and
  boto3's reads are left out) is appended to it as one JSON line: service,
  method, path, query, target, action. `scripts/iam_actions.py --covered`
  checks that `infra policy` allows each.

Usage: python3 moto_patched.py -H 127.0.0.1 -p PORT (as moto_server).
"""
import sys
import moto.cloudfront.models as cloudfront
import moto.cloudfront.responses as cf_responses
import moto.cloudfront.urls as cf_urls
from moto.cloudfront.exceptions import CloudFrontException
import moto.s3.responses as s3
from moto.core.responses import ActionResult, EmptyResult

_init = cloudfront.Origin.__init__


def _keep_oac_id(self, origin):
    _init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId") or ""


def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    body = '<?xml version="1.0" encoding="UTF-8"?>'
    body += '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    if status:
        body += "<Status>" + status + "</Status>"
    body += "</VersioningConfiguration>"
    return 200, {"Content-Type": "application/xml"}, body


_invalidation_init = cloudfront.Invalidation.__init__


def _completed(self, *args, **kwargs):
    _invalidation_init(self, *args, **kwargs)
    self.status = "Completed"


# -- CloudFront Functions -------------------------------------------------------------
# moto 5.2.1 routes no /2020-05-31/function URL and has no function model. The
# operations below follow the 2020-05-31 API (botocore's cloudfront
# service-2.json is the spec; moto parses requests and serializes responses
# from that same model once the URLs are routed to CloudFrontResponse).
_STAGES = ("DEVELOPMENT", "LIVE")


def _cf_error(code, message):
    # The model gives each code its HTTP status (404, 409, 412, ...).
    return CloudFrontException(code, message)


def _no_such_function():
    return _cf_error("NoSuchFunctionExists", "The function does not exist.")


def _precondition_failed():
    return _cf_error(
        "PreconditionFailed",
        "The precondition given in one or more of the request header fields evaluated to false.",
    )


def _no_if_match():
    return _cf_error(
        "InvalidIfMatchVersion",
        "The If-Match version is missing or not valid for the resource.",
    )


class _FunctionStage:
    """One stage (DEVELOPMENT or LIVE) of a function: its config, code, ETag."""

    def __init__(self, config, code, created, modified, etag):
        self.config = config
        self.code = code
        self.created = created
        self.modified = modified
        self.etag = etag

    def copy(self):
        return _FunctionStage(dict(self.config), self.code, self.created, self.modified, self.etag)


class _Function:
    def __init__(self, backend, name, config, code):
        self.name = name
        partition = cloudfront.get_partition(backend.region_name)
        # CloudFront function ARNs carry no region: arn:aws:cloudfront::ACCOUNT:function/NAME.
        self.arn = f"arn:{partition}:cloudfront::{backend.account_id}:function/{name}"
        now = cloudfront.utcnow()
        self.stages = {"DEVELOPMENT": _FunctionStage(config, code, now, now, cloudfront.random_id())}

    @property
    def location(self):
        return f"https://cloudfront.amazonaws.com/2020-05-31/function/{self.arn}"

    def status(self, backend, stage):
        # A published function is UNASSOCIATED until a cache behaviour uses
        # it, then DEPLOYED; the DEVELOPMENT copy is UNPUBLISHED while it
        # differs from LIVE (never published, or updated since).
        live = self.stages.get("LIVE")
        if stage == "DEVELOPMENT" and (live is None or live.etag != self.stages["DEVELOPMENT"].etag):
            return "UNPUBLISHED"
        return "DEPLOYED" if backend._function_in_use(self.arn) else "UNASSOCIATED"

    def summary(self, backend, stage):
        st = self.stages[stage]
        return {
            "Name": self.name,
            "Status": self.status(backend, stage),
            "FunctionConfig": st.config,
            "FunctionMetadata": {
                "FunctionARN": self.arn,
                "Stage": stage,
                "CreatedTime": st.created,
                "LastModifiedTime": st.modified,
            },
        }


def _function_config(config):
    config = dict(config or {})
    config.setdefault("Comment", "")
    kvs = config.get("KeyValueStoreAssociations")
    if kvs is not None:
        items = kvs.get("Items") or []
        config["KeyValueStoreAssociations"] = {"Quantity": len(items), "Items": items}
    return config


def _behaviours(dist):
    config = dist.distribution_config
    yield config.DefaultCacheBehavior
    for cb in (config.CacheBehaviors or {}).get("Items") or []:
        yield cb


def _backend_function_in_use(self, arn):
    for dist in self.distributions.values():
        for behaviour in _behaviours(dist):
            assoc = getattr(behaviour, "function_associations", None) or {}
            if any(i.get("FunctionARN") == arn for i in assoc.get("Items") or []):
                return True
    return False


def _functions(self):
    # Backends made before this patch ran (none, in practice) get one lazily.
    if not hasattr(self, "_cf_functions"):
        self._cf_functions = {}
    return self._cf_functions


def _get_function(self, name, stage):
    fn = _functions(self).get(name)
    stage = stage or "DEVELOPMENT"
    if fn is None or stage not in fn.stages:
        raise _no_such_function()
    return fn, stage


def _backend_create_function(self, name, config, code, tags):
    if name in _functions(self):
        raise _cf_error("FunctionAlreadyExists", "A function with the same name already exists in this AWS account.")
    fn = _Function(self, name, _function_config(config), code)
    _functions(self)[name] = fn
    if tags:
        self.tagger.tag_resource(fn.arn, tags)
    return fn


def _backend_update_function(self, name, if_match, config, code):
    fn, _ = _get_function(self, name, "DEVELOPMENT")
    if not if_match:
        raise _no_if_match()
    dev = fn.stages["DEVELOPMENT"]
    if if_match != dev.etag:
        raise _precondition_failed()
    fn.stages["DEVELOPMENT"] = _FunctionStage(
        _function_config(config), code, dev.created, cloudfront.utcnow(), cloudfront.random_id()
    )
    return fn


def _backend_publish_function(self, name, if_match):
    fn, _ = _get_function(self, name, "DEVELOPMENT")
    if not if_match:
        raise _no_if_match()
    dev = fn.stages["DEVELOPMENT"]
    if if_match != dev.etag:
        raise _precondition_failed()
    # Publishing copies DEVELOPMENT to LIVE (same version, so same ETag).
    live = dev.copy()
    live.modified = cloudfront.utcnow()
    fn.stages["LIVE"] = live
    return fn


def _backend_delete_function(self, name, if_match):
    fn, _ = _get_function(self, name, "DEVELOPMENT")
    if not if_match:
        raise _no_if_match()
    if if_match not in {st.etag for st in fn.stages.values()}:
        raise _precondition_failed()
    if self._function_in_use(fn.arn):
        raise _cf_error("FunctionInUse", "Cannot delete function, it's in use by one or more cache behaviors.")
    del _functions(self)[name]
    self.tagger.delete_all_tags_for_resource(fn.arn)


def _backend_list_functions(self, stage):
    out = []
    for name in sorted(_functions(self)):
        fn = _functions(self)[name]
        for st in _STAGES:
            if st in fn.stages and (not stage or stage == st):
                out.append((f"{name}:{st}", fn, st))
    return out


def _check_function_resource(self, resource):
    # Tags on a function ARN need the function to exist (NoSuchResource).
    if resource and ":function/" in resource:
        name = resource.rsplit(":function/", 1)[1]
        fn = _functions(self).get(name)
        if fn is None or fn.arn != resource:
            raise _cf_error("NoSuchResource", "The specified resource does not exist.")


def _checked(method):
    def wrapper(self, resource, *args, **kwargs):
        _check_function_resource(self, resource)
        return method(self, resource, *args, **kwargs)

    return wrapper


def _resp_create_function(self):
    fn = self.backend.create_function(
        name=self._get_param("Name"),
        config=self._get_param("FunctionConfig", {}),
        code=self._get_param("FunctionCode") or b"",
        tags=self._get_param("Tags.Items", []),
    )
    return ActionResult({
        "FunctionSummary": fn.summary(self.backend, "DEVELOPMENT"),
        "ETag": fn.stages["DEVELOPMENT"].etag,
        "Location": fn.location,
    })


def _resp_describe_function(self):
    fn, stage = _get_function(self.backend, self._get_param("Name"), self._get_param("Stage"))
    return ActionResult({"FunctionSummary": fn.summary(self.backend, stage), "ETag": fn.stages[stage].etag})


def _resp_get_function(self):
    fn, stage = _get_function(self.backend, self._get_param("Name"), self._get_param("Stage"))
    st = fn.stages[stage]
    # The code is the raw response body (a blob payload), not XML.
    headers = {"ETag": st.etag, "Content-Type": "application/octet-stream"}
    return 200, headers, st.code


def _resp_update_function(self):
    fn = self.backend.update_function(
        name=self._get_param("Name"),
        if_match=self._get_param("IfMatch"),
        config=self._get_param("FunctionConfig", {}),
        code=self._get_param("FunctionCode") or b"",
    )
    etag = fn.stages["DEVELOPMENT"].etag
    # The model names UpdateFunction's version header `ETtag` (what SDKs
    # read); send the usual `ETag` as well.
    self.response_headers["ETag"] = etag
    return ActionResult({"FunctionSummary": fn.summary(self.backend, "DEVELOPMENT"), "ETag": etag})


def _resp_publish_function(self):
    fn = self.backend.publish_function(name=self._get_param("Name"), if_match=self._get_param("IfMatch"))
    return ActionResult({"FunctionSummary": fn.summary(self.backend, "LIVE")})


def _resp_delete_function(self):
    self.backend.delete_function(name=self._get_param("Name"), if_match=self._get_param("IfMatch"))
    return EmptyResult()


def _resp_list_functions(self):
    items = self.backend.list_functions(self._get_param("Stage"))
    try:
        max_items = int(self._get_param("MaxItems") or 100)
    except ValueError:
        raise _cf_error("InvalidArgument", "MaxItems must be an integer.")
    marker = self._get_param("Marker") or ""
    if marker:
        items = [i for i in items if i[0] >= marker]
    page, rest = items[:max_items], items[max_items:]
    result = {
        "MaxItems": max_items,
        "Quantity": len(page),
        "Items": [fn.summary(self.backend, st) for _, fn, st in page],
    }
    if rest:
        result["NextMarker"] = rest[0][0]
    return ActionResult({"FunctionList": result})


_behaviour_init = cloudfront.DefaultCacheBehaviour.__init__


def _keep_function_associations(self, config):
    # CloudFront keeps a behaviour's FunctionAssociations as sent (Quantity 0
    # when none); moto always stores {"Quantity": 0}.
    _behaviour_init(self, config)
    assoc = config.get("FunctionAssociations")
    if assoc:
        kept = {"Quantity": assoc.get("Quantity", len(assoc.get("Items") or []))}
        if assoc.get("Items"):
            kept["Items"] = [dict(i) for i in assoc["Items"]]
        self.function_associations = kept


def _patch_cloudfront_functions():
    backend = cloudfront.CloudFrontBackend
    backend._function_in_use = _backend_function_in_use
    backend.create_function = _backend_create_function
    backend.update_function = _backend_update_function
    backend.publish_function = _backend_publish_function
    backend.delete_function = _backend_delete_function
    backend.list_functions = _backend_list_functions
    backend.list_tags_for_resource = _checked(backend.list_tags_for_resource)
    backend.tag_resource = _checked(backend.tag_resource)
    backend.untag_resource = _checked(backend.untag_resource)
    response = cf_responses.CloudFrontResponse
    response.create_function = _resp_create_function
    response.describe_function = _resp_describe_function
    response.get_function = _resp_get_function
    response.update_function = _resp_update_function
    response.publish_function = _resp_publish_function
    response.delete_function = _resp_delete_function
    response.list_functions = _resp_list_functions
    for path in (
        "{0}/2020-05-31/function$",
        "{0}/2020-05-31/function/(?P<function_name>[^/]+)$",
        "{0}/2020-05-31/function/(?P<function_name>[^/]+)/describe$",
        "{0}/2020-05-31/function/(?P<function_name>[^/]+)/publish$",
    ):
        cf_urls.url_paths[path] = response.dispatch
    cloudfront.DefaultCacheBehaviour.__init__ = _keep_function_associations


# CreateVpcEndpoint is idempotent by ClientToken on AWS ("a unique,
# case-sensitive identifier that you provide to ensure the idempotency of the
# request"): a retry whose first answer was lost gets the same endpoint back.
# moto stores the token and makes a second endpoint.
import moto.ec2.models.vpcs as ec2_vpcs  # noqa: E402

_create_vpc_endpoint = ec2_vpcs.VPCBackend.create_vpc_endpoint


def _create_vpc_endpoint_once(self, *args, **kwargs):
    token = kwargs.get("client_token")
    if token:
        for ep in self.vpc_end_points.values():
            if getattr(ep, "client_token", None) == token:
                return ep
    return _create_vpc_endpoint(self, *args, **kwargs)


ec2_vpcs.VPCBackend.create_vpc_endpoint = _create_vpc_endpoint_once


# DescribeDBEngineVersions, which moto lacks, as RDS answers it: the versions
# RDS offers for an engine (Engine, EngineVersion filter with a major such as
# "16" matching its minors, DefaultOnly), each with its parameter group family.
# The list is RDS's in 2026 (older minors retired); the default is the newest.
import moto.rds.responses as rds_responses  # noqa: E402

_RDS_VERSIONS = {
    "postgres": ["13.20", "13.21", "14.17", "14.18", "15.12", "15.13", "16.8", "16.9", "17.4", "17.5"],
    "mysql": ["8.0.41", "8.0.42", "8.4.4", "8.4.5"],
    "mariadb": ["10.6.21", "10.11.11", "11.4.5"],
}


def _rds_family(engine, version):
    parts = version.split(".")
    return f"postgres{parts[0]}" if engine == "postgres" else f"{engine}{'.'.join(parts[:2])}"


def _describe_db_engine_versions(self):
    engine = self._get_param("Engine")
    want = self._get_param("EngineVersion")
    default_only = str(self._get_param("DefaultOnly")).lower() == "true"
    found = []
    for e, versions in _RDS_VERSIONS.items():
        if engine and e != engine:
            continue
        matching = [v for v in versions if not want or v == want or v.startswith(want + ".")]
        if default_only and matching:
            matching = matching[-1:]
        found += [{"Engine": e, "EngineVersion": v, "DBParameterGroupFamily": _rds_family(e, v),
                   "DBEngineDescription": e, "DBEngineVersionDescription": f"{e} {v}", "Status": "available"}
                  for v in matching]
    return ActionResult({"DBEngineVersions": found})


rds_responses.RDSResponse.describe_db_engine_versions = _describe_db_engine_versions


# CreateDBInstance's Enhanced Monitoring settings, which moto drops (it
# keeps ModifyDBInstance's): RDS keeps the interval and the role, and names
# the instance's metrics stream in the RDSOSMetrics log group while it is on.
import moto.rds.models as rds_models  # noqa: E402

_db_instance_init = rds_models.DBInstance.__init__


def _db_instance_init_keeping_monitoring(self, *args, **kwargs):
    _db_instance_init(self, *args, **kwargs)
    self.monitoring_interval = int(kwargs.get("monitoring_interval") or 0)
    self.monitoring_role_arn = kwargs.get("monitoring_role_arn")


def _enhanced_monitoring_resource_arn(self):
    if int(getattr(self, "monitoring_interval", 0) or 0) > 0:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:RDSOSMetrics:log-stream:{self.dbi_resource_id}"
    return None


rds_models.DBInstance.__init__ = _db_instance_init_keeping_monitoring
rds_models.DBInstance.enhanced_monitoring_resource_arn = property(_enhanced_monitoring_resource_arn)


# DescribeOrderableDBInstanceOptions for the engines above, as RDS answers it
# in us-east-1 in 2026: the current burstable and general-purpose classes
# (no db.t2 for these versions), each Multi-AZ capable, one option per storage
# type. Filters: Engine, EngineVersion (exact), DBInstanceClass, Vpc.
_RDS_CLASSES = ["db.t3.micro", "db.t3.small", "db.t3.medium", "db.t3.large", "db.t4g.micro", "db.t4g.small",
                "db.t4g.medium", "db.t4g.large", "db.m6g.large", "db.m6i.large", "db.m7g.large", "db.r6g.large",
                "db.r7g.large"]
_orderable = rds_responses.RDSResponse.describe_orderable_db_instance_options


def _describe_orderable_db_instance_options(self):
    engine = self._get_param("Engine")
    if engine not in _RDS_VERSIONS:
        return _orderable(self)
    version = self._get_param("EngineVersion")
    wanted = self._get_param("DBInstanceClass")
    found = []
    for v in _RDS_VERSIONS[engine]:
        if version and v != version:
            continue
        for c in _RDS_CLASSES:
            if wanted and c != wanted:
                continue
            for storage in ["gp2", "gp3", "io1"]:
                found.append({"Engine": engine, "EngineVersion": v, "DBInstanceClass": c, "LicenseModel":
                              "postgresql-license" if engine == "postgres" else "general-public-license",
                              "AvailabilityZones": [{"Name": f"us-east-1{z}"} for z in "abcdf"],
                              "MultiAZCapable": True, "ReadReplicaCapable": True, "Vpc": True,
                              "StorageType": storage, "SupportsStorageEncryption": True})
    return ActionResult({"OrderableDBInstanceOptions": found})


rds_responses.RDSResponse.describe_orderable_db_instance_options = _describe_orderable_db_instance_options


# Bucket policies: evaluated with the request context moto leaves out.
import moto.s3.models as s3_models  # noqa: E402
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult  # noqa: E402
import moto.iam.policy_conditions as policy_conditions  # noqa: E402


def _bool_equals(expected, actual):
    wanted = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in [str(w).lower() for w in wanted]


policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool_equals


_statement_permitted = IAMPolicyStatement.is_action_permitted


def _statement_applies(self, action, resource="*", principal=None, incoming_condition_values=None):
    # A statement whose conditions do not hold does not apply (IAM User
    # Guide, "Policy evaluation logic"): neither allows nor denies.
    if self._statement.get("Condition") and not self._check_conditions(incoming_condition_values):
        return PermissionResult.NEUTRAL
    return _statement_permitted(self, action, resource, principal, incoming_condition_values)


IAMPolicyStatement.is_action_permitted = _statement_applies


def _get_permission(self, action, resource):
    if self.policy is None:
        return PermissionResult.NEUTRAL
    return IAMPolicy(self.policy.decode()).is_action_permitted(
        action, resource, incoming_condition_values={"aws:SecureTransport": "true"})


s3_models.FakeBucket.get_permission = _get_permission


# AssociateRouteTable: one explicit association per subnet, as EC2 enforces
# it ("the specified association for route table ... conflicts with an
# existing association").
import moto.ec2.models.route_tables as ec2_route_tables  # noqa: E402
from moto.ec2.exceptions import EC2ClientError  # noqa: E402

_associate_route_table = ec2_route_tables.RouteBackend.associate_route_table


def _associate_route_table_once(self, route_table_id, gateway_id=None, subnet_id=None):
    if subnet_id:
        for table in self.describe_route_tables(filters={"association.subnet-id": [subnet_id]}):
            if subnet_id in table._associations.values():
                raise EC2ClientError(
                    "Resource.AlreadyAssociated",
                    f"the specified association for route table {route_table_id} conflicts with an existing association",
                )
    return _associate_route_table(self, route_table_id, gateway_id=gateway_id, subnet_id=subnet_id)


ec2_route_tables.RouteBackend.associate_route_table = _associate_route_table_once


# CreateEventSourceMapping: one mapping per function and stream, as Lambda
# enforces it ("The event source arn (...) and function (...) provided mapping
# already exists. Please update or delete the existing mapping with UUID ...").
import moto.awslambda.models as lambda_models  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402

_create_event_source_mapping = lambda_models.LambdaBackend.create_event_source_mapping


def _create_event_source_mapping_once(self, spec):
    source = spec.get("EventSourceArn")
    try:
        function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec.get("FunctionName", ""))
    except Exception:  # moto's own error for an unknown function
        return _create_event_source_mapping(self, spec)
    for esm in self._event_source_mappings.values():
        if esm.event_source_arn == source and esm.function_arn == function.function_arn:
            raise JsonRESTError(
                "ResourceConflictException",
                f"The event source arn ({source}) and function ({function.function_name}) provided mapping already "
                f"exists. Please update or delete the existing mapping with UUID {esm.uuid}",
            )
    return _create_event_source_mapping(self, spec)


lambda_models.LambdaBackend.create_event_source_mapping = _create_event_source_mapping_once

# CreateFlowLogs is idempotent by ClientToken on AWS (EC2's "Ensuring
# idempotency": a retried request with the same token returns the first
# request's result). moto ignores the token and refuses the retry with
# FlowLogAlreadyExists; here a token seen before, whose flow logs still exist,
# is answered with the same ids and makes no new flow log.
import moto.ec2.responses.flow_logs as ec2_flow_logs  # noqa: E402

_create_flow_logs = ec2_flow_logs.FlowLogs.create_flow_logs
_flow_log_tokens = {}  # (account, region, token) -> the ids of the flow logs it made


def _create_flow_logs_once(self):
    token = self._get_param("ClientToken")
    key = (self.current_account, self.region, token)
    existing = self.ec2_backend.flow_logs
    if token and any(i in existing for i in _flow_log_tokens.get(key, [])):
        ids = [i for i in _flow_log_tokens[key] if i in existing]
        return ActionResult({"FlowLogIds": ids, "Unsuccessful": []})
    before = set(existing)
    result = _create_flow_logs(self)
    if token:
        _flow_log_tokens[key] = [i for i in self.ec2_backend.flow_logs if i not in before]
    return result


ec2_flow_logs.FlowLogs.create_flow_logs = _create_flow_logs_once

# RemoveRoleFromInstanceProfile of a role the profile does not hold (the
# retry of a removal whose answer was lost): IAM answers NoSuchEntity; moto's
# list.remove raises ValueError, which its server turns into an HTML 500.
import moto.iam.models as iam_models  # noqa: E402
from moto.iam.exceptions import NoSuchEntity  # noqa: E402


def _remove_role_from_instance_profile(self, profile_name, role_name):
    profile = self.get_instance_profile(profile_name)
    role = self.get_role(role_name)
    if role not in profile.roles:
        raise NoSuchEntity(f"Role {role_name} is not in instance profile {profile_name}.")
    profile.roles.remove(role)


iam_models.IAMBackend.remove_role_from_instance_profile = _remove_role_from_instance_profile

# Instance refreshes, which moto lacks: StartInstanceRefresh records one for
# an existing group (AWS answers ValidationError for an unknown group) and,
# since moto launches instances ready at once, it is Successful at once;
# DescribeInstanceRefreshes lists them newest first; CancelInstanceRefresh
# finds none in progress (ActiveInstanceRefreshNotFound, as AWS answers).
import uuid  # noqa: E402
import moto.autoscaling.responses as asg_responses  # noqa: E402
from moto.core.utils import iso_8601_datetime_with_milliseconds, utcnow  # noqa: E402

_refreshes = {}  # (account, region, group) -> [refresh, newest first]


def _asg_error(code, message):
    from moto.autoscaling.exceptions import AutoscalingClientError

    error = type(code, (AutoscalingClientError,), {"code": code})
    return error(message)


def _start_instance_refresh(self):
    name = self._get_param("AutoScalingGroupName")
    if name not in self.autoscaling_backend.autoscaling_groups:
        raise _asg_error("ValidationError", f"AutoScalingGroup name not found - {name}")
    now = iso_8601_datetime_with_milliseconds(utcnow())
    refresh = {
        "InstanceRefreshId": str(uuid.uuid4()),
        "AutoScalingGroupName": name,
        "Status": "Successful",
        "StatusReason": "",
        "StartTime": now,
        "EndTime": now,
        "PercentageComplete": 100,
        "InstancesToUpdate": 0,
        "Preferences": self._get_params().get("Preferences") or {},
    }
    _refreshes.setdefault((self.current_account, self.region, name), []).insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _describe_instance_refreshes(self):
    name = self._get_param("AutoScalingGroupName")
    wanted = self._get_param("InstanceRefreshIds", [])
    got = _refreshes.get((self.current_account, self.region, name), [])
    return ActionResult({"InstanceRefreshes": [r for r in got if not wanted or r["InstanceRefreshId"] in wanted]})


def _cancel_instance_refresh(self):
    raise _asg_error("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found")


asg_responses.AutoScalingResponse.start_instance_refresh = _start_instance_refresh
asg_responses.AutoScalingResponse.describe_instance_refreshes = _describe_instance_refreshes
asg_responses.AutoScalingResponse.cancel_instance_refresh = _cancel_instance_refresh

# CreateNetworkAcl is idempotent by ClientToken on AWS; moto ignores the
# token. ReplaceNetworkAclAssociation of an association that is gone: EC2
# answers InvalidAssociationID.NotFound, moto's next() raises StopIteration.
import moto.ec2.models.network_acls as ec2_network_acls  # noqa: E402
import moto.ec2.responses.network_acls as ec2_network_acls_responses  # noqa: E402
from moto.ec2.exceptions import InvalidAssociationIdError  # noqa: E402

_create_network_acl = ec2_network_acls_responses.NetworkACLs.create_network_acl
_network_acl_tokens = {}  # (account, region, token) -> network ACL id


def _create_network_acl_once(self):
    token = self._get_param("ClientToken")
    key = (self.current_account, self.region, token)
    if token and _network_acl_tokens.get(key) in self.ec2_backend.network_acls:
        return ActionResult({"NetworkAcl": self.ec2_backend.network_acls[_network_acl_tokens[key]]})
    before = set(self.ec2_backend.network_acls)
    result = _create_network_acl(self)
    if token:
        made = [i for i in self.ec2_backend.network_acls if i not in before]
        if made:
            _network_acl_tokens[key] = made[0]
    return result


_replace_network_acl_association = ec2_network_acls.NetworkAclBackend.replace_network_acl_association


def _replace_network_acl_association_known(self, association_id, network_acl_id):
    if not any(association_id in acl._associations for acl in self.network_acls.values()):
        raise InvalidAssociationIdError(association_id)
    return _replace_network_acl_association(self, association_id, network_acl_id)


def _check_entry(backend, network_acl_id, rule_number, egress):
    acl = backend.get_network_acl(network_acl_id)
    if not any(e.egress == egress and e.rule_number == rule_number for e in acl.network_acl_entries):
        from moto.ec2.exceptions import EC2ClientError

        raise EC2ClientError(
            "InvalidNetworkAclEntry.NotFound",
            f"The network ACL entry identified by {rule_number} does not exist in network ACL {network_acl_id}",
        )


_delete_network_acl_entry = ec2_network_acls.NetworkAclBackend.delete_network_acl_entry
_replace_network_acl_entry = ec2_network_acls.NetworkAclBackend.replace_network_acl_entry


def _delete_existing_network_acl_entry(self, network_acl_id, rule_number, egress):
    _check_entry(self, network_acl_id, rule_number, egress)
    return _delete_network_acl_entry(self, network_acl_id, rule_number, egress)


def _replace_existing_network_acl_entry(self, **kwargs):
    _check_entry(self, kwargs["network_acl_id"], kwargs["rule_number"], kwargs["egress"])
    return _replace_network_acl_entry(self, **kwargs)


ec2_network_acls.NetworkAclBackend.delete_network_acl_entry = _delete_existing_network_acl_entry
ec2_network_acls.NetworkAclBackend.replace_network_acl_entry = _replace_existing_network_acl_entry
_delete_vpc = ec2_vpcs.VPCBackend.delete_vpc


def _delete_vpc_and_its_default_acl(self, vpc_id):
    result = _delete_vpc(self, vpc_id)
    for acl_id in [i for i, a in self.network_acls.items() if a.vpc_id == vpc_id and str(a.default).lower() == "true"]:
        del self.network_acls[acl_id]
    return result


ec2_vpcs.VPCBackend.delete_vpc = _delete_vpc_and_its_default_acl
ec2_network_acls_responses.NetworkACLs.create_network_acl = _create_network_acl_once
ec2_network_acls.NetworkAclBackend.replace_network_acl_association = _replace_network_acl_association_known

cloudfront.Origin.__init__ = _keep_oac_id
cloudfront.Invalidation.__init__ = _completed
s3.S3Response.get_bucket_versioning = _get_bucket_versioning
_patch_cloudfront_functions()

import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402
from moto.moto_server import werkzeug_app  # noqa: E402

_CALLS_LOG = os.environ.get("MOTO_CALLS_LOG")
_dispatch = werkzeug_app.DomainDispatcherApplication.__call__
_seen = set()


def _logged(self, environ, start_response):
    agent = environ.get("HTTP_USER_AGENT", "") + environ.get("HTTP_X_AMZ_USER_AGENT", "")
    if "aws-sdk-rust" in agent:
        body = b""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        query = environ.get("QUERY_STRING", "")
        action = (parse_qs(body.decode(errors="replace")).get("Action") or parse_qs(query).get("Action") or [""])[0]
        record = json.dumps({
            "service": scope.group(1) if scope else "",
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "query": query,
            "target": environ.get("HTTP_X_AMZ_TARGET", ""),
            "action": action,
        })
        if record not in _seen:
            _seen.add(record)
            # One write on an O_APPEND descriptor: whole lines, whatever
            # other moto processes of the suite write beside.
            fd = os.open(_CALLS_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (record + "\n").encode())
            finally:
                os.close(fd)
    return _dispatch(self, environ, start_response)


if _CALLS_LOG:
    werkzeug_app.DomainDispatcherApplication.__call__ = _logged

from moto.server import main  # noqa: E402

sys.exit(main())
