#!/usr/bin/env python3
"""Helper of scripts/security-scan.sh: the security team's view of a deployed stack.

Runs in the scanner's virtualenv (prowler, parliament, boto3, PyYAML), against
the emulator named by AWS_ENDPOINT_URL. Subcommands:

  prowler ARGS...        run prowler with the emulator shims below, then exit with its code
  inventory --stack S -o FILE
                         ids, ARNs and names of what the stack made (by its
                         `infra:stack` tag, its names, its VPC) and of the
                         account's default VPC, read from the emulator
  iam --stack S -o DIR   read back, with the AWS CLI, every IAM role of the stack
                         (trust policy, inline and attached policies) and the
                         resource policies it wrote (site bucket, Lambda
                         permissions); lint them all with parliament
  classify --ocsf FILE --inventory FILE --rules FILE [--parliament FILE] [--json OUT]
                         sort every FAIL finding into account-level, emulator
                         artifact or stack-level and print the table

The emulator shims (prowler itself is not changed; each shim only puts back what
the emulator would answer if it spoke like AWS, from the emulator's own data):
* S3 Control requests (account public access block, access points, multi-region
  access points) are addressed to `<account>.<endpoint host>` by botocore's
  endpoint rules, a name that does not resolve when the endpoint is an IP
  address: they are sent to the endpoint itself (moto routes them by their
  `/v20180820/` path).
* moto's ListDistributions summaries lack fields AWS always returns
  (`ViewerCertificate`, `Origins`, ...); prowler reads them there and, without
  them, skips every CloudFront check. They are filled in from the same
  emulator's GetDistributionConfig of each distribution.
"""
import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
import urllib.parse

CLASSES = ("stack", "account", "emulator", "unclassified")


# --------------------------------------------------------------------- prowler
def _s3control_to_endpoint(request, **_):
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    want = urllib.parse.urlsplit(endpoint).netloc
    url = urllib.parse.urlsplit(request.url)
    if url.netloc != want and url.netloc.endswith("." + want):
        request.url = urllib.parse.urlunsplit(url._replace(netloc=want))
        if "Host" in request.headers:
            request.headers["Host"] = want
    return None


# Fields of a DistributionSummary (AWS always returns them) that moto leaves out.
_SUMMARY_FIELDS = ("ViewerCertificate", "Origins", "Aliases", "DefaultCacheBehavior",
                   "CacheBehaviors", "CustomErrorResponses", "Comment", "PriceClass",
                   "Enabled", "Restrictions", "WebACLId", "HttpVersion", "IsIPV6Enabled")


def _complete_distribution_summaries(parsed, **_):
    import boto3

    items = (parsed or {}).get("DistributionList", {}).get("Items") or []
    missing = [i for i in items if any(k not in i for k in _SUMMARY_FIELDS)]
    if not missing:
        return
    cf = boto3.session.Session().client("cloudfront", region_name="us-east-1")
    for item in missing:
        config = cf.get_distribution_config(Id=item["Id"])["DistributionConfig"]
        for key in _SUMMARY_FIELDS:
            if key not in item and key in config:
                item[key] = config[key]


def cmd_prowler(argv):
    import boto3.session

    original_init = boto3.session.Session.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._session.register("before-send.s3-control", _s3control_to_endpoint)
        self._session.register("after-call.cloudfront.ListDistributions",
                               _complete_distribution_summaries)

    boto3.session.Session.__init__ = init
    from prowler.__main__ import prowler

    sys.argv = ["prowler"] + argv
    return prowler()


# ------------------------------------------------------------------- inventory
def _tags(items):
    if isinstance(items, dict):
        return dict(items)
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in items or []}


def cmd_inventory(args):
    import boto3

    region = args.region
    stack = args.stack
    own = set()  # ids, ARNs and names of the stack's resources
    vpc_ids, default_vpc, default_members = set(), set(), set()
    errors = []

    def add(*values):
        for v in values:
            if v:
                own.add(str(v))

    def guard(what, fn):
        try:
            fn()
        except Exception as e:  # an emulator gap must not stop the scan
            errors.append(f"{what}: {type(e).__name__}: {e}")

    c = lambda s: boto3.client(s, region_name=region)  # noqa: E731
    tag_filter = [{"Name": "tag:infra:stack", "Values": [stack]}]

    def tagging():
        p = c("resourcegroupstaggingapi").get_paginator("get_resources")
        for page in p.paginate(TagFilters=[{"Key": "infra:stack", "Values": [stack]}]):
            for r in page["ResourceTagMappingList"]:
                add(r["ResourceARN"])

    def ec2():
        e = c("ec2")
        for v in e.describe_vpcs()["Vpcs"]:
            t = _tags(v.get("Tags"))
            if t.get("infra:stack") == stack:
                vpc_ids.add(v["VpcId"])
            if v.get("IsDefault"):
                default_vpc.add(v["VpcId"])
        add(*vpc_ids)
        in_vpc = [{"Name": "vpc-id", "Values": sorted(vpc_ids)}] if vpc_ids else None
        in_default = [{"Name": "vpc-id", "Values": sorted(default_vpc)}] if default_vpc else None
        for call, key, idk in [
            ("describe_subnets", "Subnets", "SubnetId"),
            ("describe_security_groups", "SecurityGroups", "GroupId"),
            ("describe_route_tables", "RouteTables", "RouteTableId"),
            ("describe_network_acls", "NetworkAcls", "NetworkAclId"),
            ("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId"),
        ]:
            for flt, bucket in ((in_vpc, own), (in_default, default_members)):
                if flt:
                    for item in getattr(e, call)(Filters=flt)[key]:
                        bucket.add(item[idk])
        for call, key, idk in [
            ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
            ("describe_nat_gateways", "NatGateways", "NatGatewayId"),
            ("describe_launch_templates", "LaunchTemplates", "LaunchTemplateId"),
            ("describe_volumes", "Volumes", "VolumeId"),
            ("describe_addresses", "Addresses", "AllocationId"),
            ("describe_flow_logs", "FlowLogs", "FlowLogId"),
        ]:
            for item in getattr(e, call)(Filters=tag_filter)[key]:
                add(item[idk])
        for r in e.describe_instances(Filters=tag_filter)["Reservations"]:
            for i in r["Instances"]:
                add(i["InstanceId"])
                for m in i.get("BlockDeviceMappings", []):
                    add(m.get("Ebs", {}).get("VolumeId"))

    def elbv2():
        e = c("elbv2")
        arns = [lb["LoadBalancerArn"] for lb in e.describe_load_balancers()["LoadBalancers"]]
        arns += [tg["TargetGroupArn"] for tg in e.describe_target_groups()["TargetGroups"]]
        for i in range(0, len(arns), 20):
            for d in e.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
                if _tags(d.get("Tags")).get("infra:stack") == stack:
                    add(d["ResourceArn"])
                    for lst in e.describe_listeners(LoadBalancerArn=d["ResourceArn"])[
                        "Listeners"
                    ] if ":loadbalancer/" in d["ResourceArn"] else []:
                        add(lst["ListenerArn"])

    def autoscaling():
        for g in c("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]:
            if _tags(g.get("Tags")).get("infra:stack") == stack:
                add(g["AutoScalingGroupName"], g.get("AutoScalingGroupARN"))

    def s3():
        s = c("s3")
        for b in s.list_buckets()["Buckets"]:
            try:
                t = _tags(s.get_bucket_tagging(Bucket=b["Name"])["TagSet"])
            except Exception:
                t = {}
            if t.get("infra:stack") == stack:
                add(b["Name"], f"arn:aws:s3:::{b['Name']}")

    def cloudfront():
        cf = c("cloudfront")
        items = cf.list_distributions().get("DistributionList", {}).get("Items", [])
        for d in items:
            t = _tags(cf.list_tags_for_resource(Resource=d["ARN"])["Tags"].get("Items"))
            if t.get("infra:stack") == stack:
                add(d["Id"], d["ARN"])

    def rds():
        r = c("rds")
        for db in r.describe_db_instances()["DBInstances"]:
            if _tags(db.get("TagList")).get("infra:stack") == stack:
                add(db["DBInstanceIdentifier"], db["DBInstanceArn"])
                add(db.get("MasterUserSecret", {}).get("SecretArn"))
                add(db.get("DBSubnetGroup", {}).get("DBSubnetGroupName"))

    def dynamodb():
        d = c("dynamodb")
        for name in d.list_tables()["TableNames"]:
            arn = d.describe_table(TableName=name)["Table"]["TableArn"]
            if _tags(d.list_tags_of_resource(ResourceArn=arn).get("Tags")).get("infra:stack") == stack:
                add(name, arn)

    def awslambda():
        lam = c("lambda")
        for f in lam.list_functions()["Functions"]:
            if _tags(lam.list_tags(Resource=f["FunctionArn"]).get("Tags")).get("infra:stack") == stack:
                add(f["FunctionName"], f["FunctionArn"])

    def apigateway():
        ag = c("apigateway")
        for api in ag.get_rest_apis()["items"]:
            if (api.get("tags") or {}).get("infra:stack") == stack:
                add(api["id"], f"arn:aws:apigateway:{region}::/restapis/{api['id']}")
                for st in ag.get_stages(restApiId=api["id"])["item"]:
                    add(f"arn:aws:apigateway:{region}::/restapis/{api['id']}/stages/{st['stageName']}")

    def iam():
        p = c("iam").get_paginator("list_roles")
        for page in p.paginate(PathPrefix=f"/infra/{stack}/"):
            for role in page["Roles"]:
                add(role["RoleName"], role["Arn"])

    def logs():
        lg = c("logs")
        for g in lg.describe_log_groups()["logGroups"]:
            try:
                t = lg.list_tags_log_group(logGroupName=g["logGroupName"]).get("tags", {})
            except Exception:
                t = {}
            if t.get("infra:stack") == stack:
                add(g["logGroupName"], g["arn"], g["arn"].removesuffix(":*"))

    def secrets():
        sm = c("secretsmanager")
        for s in sm.list_secrets()["SecretList"]:
            if _tags(s.get("Tags")).get("infra:stack") == stack:
                add(s["ARN"], s["Name"])

    # Facts the emulator-artifact rules refer to (`resource_in: <name>`).
    facts = {"aws_managed_kms_keys": set(), "phantom_volumes": set(),
             "instances_from_imdsv2_templates": set(), "database_security_groups": set(),
             "foreign_snapshots": set(), "instances_from_profile_templates": set(),
             "instances_with_ssm_core_role": set(), "endpoint_security_groups": set()}

    def emulator_facts():
        account = c("sts").get_caller_identity()["Account"]
        p = c("ec2").get_paginator("describe_snapshots")
        for page in p.paginate(OwnerIds=["self"]):
            for snap in page["Snapshots"]:
                if snap.get("OwnerId") != account:
                    facts["foreign_snapshots"].add(snap["SnapshotId"])
        kms = c("kms")
        for a in kms.list_aliases()["Aliases"]:
            if a["AliasName"].startswith("alias/aws/") and a.get("TargetKeyId"):
                try:  # moto lists aliases of keys it has not made yet
                    k = kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]
                except kms.exceptions.NotFoundException:
                    continue
                facts["aws_managed_kms_keys"].update((k["KeyId"], k["Arn"]))
        e, asg = c("ec2"), c("autoscaling")
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
            lt = g.get("LaunchTemplate")
            if _tags(g.get("Tags")).get("infra:stack") != stack or not lt:
                continue
            version = lt.get("Version", "$Default")
            data = e.describe_launch_template_versions(
                LaunchTemplateId=lt["LaunchTemplateId"], Versions=[version]
            )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
            ids = [i["InstanceId"] for i in g.get("Instances", [])]
            if not ids:
                continue
            profile = (data.get("IamInstanceProfile") or {}).get("Name") or \
                (data.get("IamInstanceProfile") or {}).get("Arn", "").rsplit("/", 1)[-1]
            ssm_core = False
            if profile:
                iam = c("iam")
                for role in iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]:
                    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
                    ssm_core |= any(a["PolicyName"] == "AmazonSSMManagedInstanceCore" for a in attached)
            for r in e.describe_instances(InstanceIds=ids)["Reservations"]:
                for inst in r["Instances"]:
                    names = (inst["InstanceId"], f"arn:aws:ec2:{region}:{inst.get('OwnerId', '')}:instance/{inst['InstanceId']}")
                    if data.get("MetadataOptions", {}).get("HttpTokens") == "required":
                        facts["instances_from_imdsv2_templates"].update(names)
                    if profile and not inst.get("IamInstanceProfile"):
                        facts["instances_from_profile_templates"].update(names)
                    if ssm_core:
                        facts["instances_with_ssm_core_role"].update(names)
                    image = e.describe_images(ImageIds=[inst["ImageId"]])["Images"]
                    declared = {m["DeviceName"] for m in data.get("BlockDeviceMappings", [])}
                    declared |= {m["DeviceName"] for img in image for m in img.get("BlockDeviceMappings", [])}
                    declared.add(inst.get("RootDeviceName"))
                    for m in inst.get("BlockDeviceMappings", []):
                        if m["DeviceName"] not in declared and "Ebs" in m:
                            facts["phantom_volumes"].add(m["Ebs"]["VolumeId"])
        for ep in e.describe_vpc_endpoints()["VpcEndpoints"]:
            if _tags(ep.get("Tags")).get("infra:stack") == stack:
                for sg in ep.get("Groups", []):
                    facts["endpoint_security_groups"].add(sg["GroupId"])
        for db in c("rds").describe_db_instances()["DBInstances"]:
            if _tags(db.get("TagList")).get("infra:stack") == stack:
                for sg in db.get("VpcSecurityGroups", []):
                    facts["database_security_groups"].add(sg["VpcSecurityGroupId"])

    for name, fn in [
        ("emulator facts", emulator_facts),
        ("tagging", tagging), ("ec2", ec2), ("elbv2", elbv2), ("autoscaling", autoscaling),
        ("s3", s3), ("cloudfront", cloudfront), ("rds", rds), ("dynamodb", dynamodb),
        ("lambda", awslambda), ("apigateway", apigateway), ("iam", iam), ("logs", logs),
        ("secretsmanager", secrets),
    ]:
        guard(name, fn)
    out = {
        "stack": stack,
        "region": region,
        "own": sorted(own),
        "vpc_ids": sorted(vpc_ids),
        "default_vpc_ids": sorted(default_vpc),
        "default_vpc_members": sorted(default_members | default_vpc),
        "facts": {k: sorted(v) for k, v in facts.items()},
        "errors": errors,
    }
    with open(args.output, "w") as f:
        json.dump(out, f, indent=1)
    for e in errors:
        print(f"inventory: {e}", file=sys.stderr)
    print(f"inventory: {len(own)} ids/ARNs/names of stack {stack}", file=sys.stderr)
    return 0


# ------------------------------------------------------------- iam/parliament
def _aws(*argv):
    # The AWS CLI v1 does not read AWS_ENDPOINT_URL: pass it on.
    cmd = ["aws", *argv, "--output", "json"]
    if os.environ.get("AWS_ENDPOINT_URL"):
        cmd += ["--endpoint-url", os.environ["AWS_ENDPOINT_URL"]]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def _doc(d):
    # The CLI gives policy documents decoded; some emulators give them URL-encoded text.
    if isinstance(d, str):
        d = json.loads(urllib.parse.unquote(d))
    return d


def cmd_iam(args):
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config
    from parliament.cli import is_finding_filtered

    # As `parliament --include-community-auditors` does: their findings' titles
    # and severities come from the override file next to them.
    override_config(os.path.join(os.path.dirname(parliament.__file__),
                                 "community_auditors", "config_override.yaml"))

    stack = args.stack
    os.makedirs(args.output, exist_ok=True)
    policies = []  # (kind, where, document)
    roles = _aws("iam", "list-roles")["Roles"]
    mine = [r for r in roles if r.get("Path", "").startswith(f"/infra/{stack}/")]
    for r in mine:
        name = r["RoleName"]
        policies.append(("trust", f"role/{name}", _doc(r["AssumeRolePolicyDocument"])))
        for pname in _aws("iam", "list-role-policies", "--role-name", name)["PolicyNames"]:
            d = _aws("iam", "get-role-policy", "--role-name", name, "--policy-name", pname)
            policies.append(("inline", f"role/{name}/{pname}", _doc(d["PolicyDocument"])))
        for a in _aws("iam", "list-attached-role-policies", "--role-name", name)["AttachedPolicies"]:
            p = _aws("iam", "get-policy", "--policy-arn", a["PolicyArn"])["Policy"]
            v = _aws("iam", "get-policy-version", "--policy-arn", a["PolicyArn"],
                     "--version-id", p["DefaultVersionId"])["PolicyVersion"]
            policies.append(("attached", f"role/{name} <- {a['PolicyArn']}", _doc(v["Document"])))
    # Resource policies the stack wrote: the site bucket's, the functions' invoke permissions.
    inv = json.load(open(args.inventory)) if args.inventory else {"own": []}
    for arn in inv["own"]:
        if arn.startswith("arn:aws:s3:::"):
            bucket = arn.split(":::", 1)[1]
            try:
                d = _aws("s3api", "get-bucket-policy", "--bucket", bucket)
                policies.append(("resource", f"s3://{bucket}", _doc(d["Policy"])))
            except subprocess.CalledProcessError:
                pass
        elif ":function:" in arn:
            try:
                d = _aws("lambda", "get-policy", "--function-name", arn)
                policies.append(("resource", f"lambda {arn.rsplit(':', 1)[1]}", _doc(d["Policy"])))
            except subprocess.CalledProcessError:
                pass
    findings = []
    for i, (kind, where, doc) in enumerate(policies):
        path = os.path.join(args.output, f"{i:02d}-{kind}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', where)}.json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
        policy = analyze_policy_string(json.dumps(doc), path, include_community_auditors=True,
                                       config=parliament.config)
        for fd in policy.findings:
            fd = enhance_finding(fd)
            if is_finding_filtered(fd, "INFO"):
                continue
            note = ""
            if kind == "trust" and fd.issue == "MALFORMED" and "neither Resource" in str(fd.detail):
                note = "not a finding: a role trust policy has no Resource element by design (parliament lints identity policies)"
            elif kind == "resource" and fd.issue == "INVALID_SID" and where.startswith("lambda "):
                note = "not a finding: Lambda AddPermission statement ids allow [A-Za-z0-9-_], IAM's Sid rule is for IAM policies"
            findings.append({
                "note": note,
                "policy_kind": kind, "policy": where, "issue": fd.issue, "severity": fd.severity,
                "title": fd.title, "detail": fd.detail if isinstance(fd.detail, (str, int, float, type(None))) else str(fd.detail),
                "location": {k: v for k, v in (fd.location or {}).items() if k != "filepath"},
            })
    out = {"roles": [r["RoleName"] for r in mine], "policies": len(policies), "findings": findings}
    with open(os.path.join(args.output, "parliament.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    return 0


# -------------------------------------------------------------------- classify
def _load_rules(path):
    import yaml

    with open(path) as f:
        rules = yaml.safe_load(f)
    for section in ("emulator", "account"):
        for r in rules.get(section, []):
            if not r.get("reason"):
                raise SystemExit(f"{path}: every {section} rule needs a reason: {r}")
    return rules


def _rule_matches(rule, check, res, meta, inv, message=""):
    """A rule: `check` (glob or list of globs on the check id), and optionally
    `resource` (regex on the resource ARN/uid and name), `resource_in` (the
    resource's id, ARN or name is in that list of the inventory's `facts`),
    `message` (regex on prowler's status text) and `when` (metadata key ->
    regex searched in its value, JSON-encoded unless a string). All given
    conditions must hold."""
    if not any(fnmatch.fnmatchcase(check, pat) for pat in _as_list(rule.get("check", "*"))):
        return False
    if "resource" in rule:
        text = f"{res.get('uid', '')} {res.get('name', '')}"
        if not re.search(rule["resource"], text):
            return False
    if "resource_in" in rule:
        if not _resource_ids(res, meta, with_vpc=False) & set(inv.get("facts", {}).get(rule["resource_in"], [])):
            return False
    if "message" in rule and not re.search(rule["message"], message):
        return False
    for key, want in (rule.get("when") or {}).items():
        have = meta.get(key)
        text = have if isinstance(have, str) else json.dumps(have)
        if not re.search(str(want), text):
            return False
    return True


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _resource_ids(res, meta, with_vpc=True):
    ids = {str(res.get("uid", "")), str(res.get("name", ""))}
    for k in ("id", "arn", "name") + (("vpc_id", "VpcId") if with_vpc else ()):
        if isinstance(meta.get(k), str):
            ids.add(meta[k])
    ids.discard("")
    return ids


def _tagged(meta, stack):
    tags = meta.get("tags")
    if isinstance(tags, list):
        for t in tags:
            if isinstance(t, dict) and t.get("Key", t.get("key")) == "infra:stack" and t.get("Value", t.get("value")) == stack:
                return True
    elif isinstance(tags, dict):
        return tags.get("infra:stack") == stack
    return False


def classify(findings, inv, rules):
    stack = inv["stack"]
    own = set(inv["own"])
    default_vpc = set(inv["default_vpc_members"])
    stack_name = re.compile(rf"(^|[^a-z0-9]){re.escape(stack)}([^a-z0-9]|$)")
    extra = [(re.compile(r["resource"]), r.get("reason", "")) for r in rules.get("stack_resources", [])]
    rows = []
    for f in findings:
        if f.get("status_code") != "FAIL":
            continue
        check = f["metadata"]["event_code"]
        res = (f.get("resources") or [{}])[0]
        meta = (res.get("data") or {}).get("metadata") or {}
        if not isinstance(meta, dict):
            meta = {}
        ids = _resource_ids(res, meta)
        row = {
            "check": check,
            "severity": f.get("severity", "").lower(),
            "resource": res.get("uid") or res.get("name") or "",
            "name": res.get("name", ""),
            "message": f.get("status_detail") or f.get("message", ""),
        }
        cls, reason = None, ""
        for rule in rules.get("emulator", []):
            if _rule_matches(rule, check, res, meta, inv, row["message"]):
                cls, reason = "emulator", rule["reason"].strip()
                break
        if cls is None:
            for rule in rules.get("account", []):
                if _rule_matches(rule, check, res, meta, inv, row["message"]):
                    cls, reason = "account", rule["reason"].strip()
                    break
        if cls is None and ids & default_vpc:
            cls, reason = "account", "the account's default VPC (and its default security group, network ACL and subnets): every account has one; the stack neither creates nor changes it"
        if cls is None:
            if (ids & own or _tagged(meta, stack)
                    or any(any(i in x for x in ids) for i in own if len(i) > 8)
                    or any(stack_name.search(x) for x in ids)):
                cls = "stack"
            else:
                for pattern, why in extra:
                    if any(pattern.search(x) for x in ids):
                        cls, reason = "stack", why.strip()
                        break
                else:
                    cls = "unclassified"
        row["class"], row["reason"] = cls, reason
        rows.append(row)
    order = {c: i for i, c in enumerate(CLASSES)}
    sev = {s: i for i, s in enumerate(("critical", "high", "medium", "low", "informational"))}
    rows.sort(key=lambda r: (order[r["class"]], sev.get(r["severity"], 9), r["check"], r["resource"]))
    return rows


def cmd_classify(args):
    with open(args.ocsf) as f:
        findings = json.load(f)
    inv = json.load(open(args.inventory))
    rules = _load_rules(args.rules)
    rows = classify(findings, inv, rules)
    counts = {c: sum(1 for r in rows if r["class"] == c) for c in CLASSES}
    statuses = {}
    for f in findings:
        statuses[f.get("status_code")] = statuses.get(f.get("status_code"), 0) + 1

    # Emulator artifacts repeat by the thousand (moto's seeded snapshots): the
    # table shows each (check, reason) once with its count; the JSON has them all.
    table = [r for r in rows if r["class"] != "emulator"]
    grouped = {}
    for r in rows:
        if r["class"] == "emulator":
            g = grouped.setdefault((r["check"], r["reason"]), dict(r, n=0))
            g["n"] += 1
    for g in grouped.values():
        if g["n"] > 1:
            g["resource"] = f"{g['n']} resources, e.g. {g['resource']}"
        table.append(g)
    order = {c: i for i, c in enumerate(CLASSES)}
    table.sort(key=lambda r: order[r["class"]])

    w_check = max([len("CHECK")] + [len(r["check"]) for r in table])
    w_sev = max([len("SEVERITY")] + [len(r["severity"]) for r in table])
    w_res = min(90, max([len("RESOURCE")] + [len(r["resource"]) for r in table]))
    print(f"{'CHECK':<{w_check}}  {'SEVERITY':<{w_sev}}  {'RESOURCE':<{w_res}}  CLASS")
    for r in table:
        res = r["resource"] if len(r["resource"]) <= w_res else "…" + r["resource"][-(w_res - 1):]
        print(f"{r['check']:<{w_check}}  {r['severity']:<{w_sev}}  {res:<{w_res}}  {r['class']}")
    print()
    print("Emulator artifacts (why each is not a finding about the stack):")
    for (check, reason), g in sorted(grouped.items()):
        print(f"  {check} ({g['n']}): {reason}")
    print()
    print(f"prowler results: {', '.join(f'{k} {v}' for k, v in sorted(statuses.items(), key=str))}")
    print("FAIL findings by class: " + ", ".join(f"{c} {counts[c]}" for c in CLASSES))
    if counts["unclassified"]:
        print(f"warning: {counts['unclassified']} FAIL finding(s) matched no rule and no stack resource: "
              "add a rule to the rules file", file=sys.stderr)
    if args.parliament and os.path.exists(args.parliament):
        p = json.load(open(args.parliament))
        print()
        print(f"parliament: {p['policies']} policies of {len(p['roles'])} roles (and resource policies), "
              f"{len(p['findings'])} finding(s)")
        for fd in p["findings"]:
            detail = fd["detail"] or (fd["location"] or {}).get("string", "")
            print(f"  {fd['severity']:<6} {fd['issue']:<14} {fd['policy']}: {detail}")
            if fd.get("note"):
                print(f"         ({fd['note']})")
    gaps = []
    if args.moto_log and os.path.exists(args.moto_log):
        with open(args.moto_log, errors="replace") as f:
            gaps = sorted(set(re.findall(r"NotImplementedError: The (\w+) action has not been implemented", f.read())))
        print()
        print("Not implemented by the emulator (checks that need these calls were skipped or judged on partial data):")
        print("  " + (", ".join(gaps) if gaps else "none"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"counts": counts, "statuses": statuses, "emulator_gaps": gaps, "findings": rows}, f, indent=1)
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "prowler":
        return cmd_prowler(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inventory")
    p.add_argument("--stack", required=True)
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("iam")
    p.add_argument("--stack", required=True)
    p.add_argument("--inventory")
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("classify")
    p.add_argument("--ocsf", required=True)
    p.add_argument("--inventory", required=True)
    p.add_argument("--rules", required=True)
    p.add_argument("--parliament")
    p.add_argument("--moto-log")
    p.add_argument("--json")
    args = ap.parse_args()
    return {"inventory": cmd_inventory, "iam": cmd_iam, "classify": cmd_classify}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main() or 0)
