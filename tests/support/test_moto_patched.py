"""Tests of tests/support/moto_patched.py's CloudFront Functions patch: the
patched moto server runs as a subprocess on a free loopback port (started as
the integration tests start it) and boto3 talks to it as it would to AWS.

    python3 -m pytest tests/support/test_moto_patched.py -q
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
ACCOUNT = "123456789012"  # moto's default account
CODE = b"function handler(event) { return event.request; }\n"
CODE2 = b"function handler(event) { var r = event.request; r.uri = '/x'; return r; }\n"
CONFIG = {"Comment": "rewrite", "Runtime": "cloudfront-js-2.0"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "moto_patched.py"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "moto_patched.py exited"
            assert time.time() < deadline, "moto did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def cf(endpoint):
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req).close()
    return boto3.client(
        "cloudfront", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def _code(err):
    return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _dist_config(ref, associations=None, behaviours=None):
    default = {
        "TargetOriginId": "app",
        "ViewerProtocolPolicy": "redirect-to-https",
        "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
    }
    if associations is not None:
        default["FunctionAssociations"] = associations
    config = {
        "CallerReference": ref,
        "Comment": "",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "app", "DomainName": "app.example.com",
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"},
        }]},
        "DefaultCacheBehavior": default,
    }
    if behaviours is not None:
        config["CacheBehaviors"] = {"Quantity": len(behaviours), "Items": behaviours}
    return config


def test_function_lifecycle(cf):
    arn = f"arn:aws:cloudfront::{ACCOUNT}:function/rewrite"

    # create
    created = cf.create_function(
        Name="rewrite", FunctionConfig=CONFIG, FunctionCode=CODE,
        Tags={"Items": [{"Key": "team", "Value": "web"}]},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    etag1 = created["ETag"]
    assert etag1
    assert created["Location"].endswith(f"/2020-05-31/function/{arn}")
    summary = created["FunctionSummary"]
    assert summary["Name"] == "rewrite"
    assert summary["Status"] == "UNPUBLISHED"
    assert summary["FunctionConfig"] == CONFIG
    meta = summary["FunctionMetadata"]
    assert meta["FunctionARN"] == arn
    assert meta["Stage"] == "DEVELOPMENT"
    assert meta["CreatedTime"] and meta["LastModifiedTime"]

    with pytest.raises(ClientError) as err:
        cf.create_function(Name="rewrite", FunctionConfig=CONFIG, FunctionCode=CODE)
    assert _code(err) == ("FunctionAlreadyExists", 409)

    # describe
    desc = cf.describe_function(Name="rewrite", Stage="DEVELOPMENT")
    assert desc["ETag"] == etag1
    assert desc["FunctionSummary"]["Status"] == "UNPUBLISHED"
    assert desc["FunctionSummary"]["FunctionMetadata"]["FunctionARN"] == arn
    assert cf.describe_function(Name="rewrite")["ETag"] == etag1  # Stage defaults to DEVELOPMENT
    with pytest.raises(ClientError) as err:
        cf.describe_function(Name="rewrite", Stage="LIVE")  # never published
    assert _code(err) == ("NoSuchFunctionExists", 404)

    # get code
    got = cf.get_function(Name="rewrite", Stage="DEVELOPMENT")
    assert got["FunctionCode"].read() == CODE
    assert got["ETag"] == etag1
    assert got["ContentType"]

    # update: a stale ETag is refused, the current one accepted
    with pytest.raises(ClientError) as err:
        cf.update_function(Name="rewrite", IfMatch="ESTALE", FunctionConfig=CONFIG, FunctionCode=CODE2)
    assert _code(err) == ("PreconditionFailed", 412)
    config2 = {"Comment": "rewrite v2", "Runtime": "cloudfront-js-2.0"}
    updated = cf.update_function(Name="rewrite", IfMatch=etag1, FunctionConfig=config2, FunctionCode=CODE2)
    etag2 = updated["ETag"]
    assert etag2 and etag2 != etag1
    assert updated["FunctionSummary"]["FunctionConfig"] == config2
    assert updated["FunctionSummary"]["Status"] == "UNPUBLISHED"
    assert cf.describe_function(Name="rewrite")["ETag"] == etag2
    assert cf.get_function(Name="rewrite")["FunctionCode"].read() == CODE2
    with pytest.raises(ClientError) as err:  # etag1 is stale now
        cf.update_function(Name="rewrite", IfMatch=etag1, FunctionConfig=config2, FunctionCode=CODE2)
    assert _code(err) == ("PreconditionFailed", 412)

    # publish
    with pytest.raises(ClientError) as err:
        cf.publish_function(Name="rewrite", IfMatch=etag1)
    assert _code(err) == ("PreconditionFailed", 412)
    published = cf.publish_function(Name="rewrite", IfMatch=etag2)["FunctionSummary"]
    assert published["Status"] == "UNASSOCIATED"
    assert published["FunctionMetadata"]["Stage"] == "LIVE"
    assert published["FunctionConfig"] == config2
    live = cf.describe_function(Name="rewrite", Stage="LIVE")
    assert live["FunctionSummary"]["FunctionMetadata"]["Stage"] == "LIVE"
    assert live["FunctionSummary"]["Status"] == "UNASSOCIATED"
    assert live["ETag"]
    assert cf.get_function(Name="rewrite", Stage="LIVE")["FunctionCode"].read() == CODE2

    # list, with paging
    for name in ("a-first", "z-last"):
        cf.create_function(Name=name, FunctionConfig=CONFIG, FunctionCode=CODE)
    listed = cf.list_functions()["FunctionList"]
    assert listed["Quantity"] == 4  # rewrite in both stages
    assert [(i["Name"], i["FunctionMetadata"]["Stage"]) for i in listed["Items"]] == [
        ("a-first", "DEVELOPMENT"), ("rewrite", "DEVELOPMENT"), ("rewrite", "LIVE"), ("z-last", "DEVELOPMENT")]
    assert "NextMarker" not in listed
    live_only = cf.list_functions(Stage="LIVE")["FunctionList"]
    assert [i["Name"] for i in live_only["Items"]] == ["rewrite"]
    seen, marker = [], None
    while True:
        kwargs = {"Stage": "DEVELOPMENT", "MaxItems": "2"}
        if marker:
            kwargs["Marker"] = marker
        page = cf.list_functions(**kwargs)["FunctionList"]
        assert page["Quantity"] == len(page["Items"]) <= 2
        assert page["MaxItems"] == 2
        seen += [i["Name"] for i in page["Items"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == ["a-first", "rewrite", "z-last"]

    # tags on the function ARN
    assert cf.list_tags_for_resource(Resource=arn)["Tags"]["Items"] == [{"Key": "team", "Value": "web"}]
    cf.tag_resource(Resource=arn, Tags={"Items": [{"Key": "env", "Value": "test"}]})
    tags = {t["Key"]: t["Value"] for t in cf.list_tags_for_resource(Resource=arn)["Tags"]["Items"]}
    assert tags == {"team": "web", "env": "test"}
    cf.untag_resource(Resource=arn, TagKeys={"Items": ["team"]})
    assert cf.list_tags_for_resource(Resource=arn)["Tags"]["Items"] == [{"Key": "env", "Value": "test"}]
    with pytest.raises(ClientError) as err:
        cf.list_tags_for_resource(Resource=f"arn:aws:cloudfront::{ACCOUNT}:function/nope")
    assert _code(err) == ("NoSuchResource", 404)

    # a distribution whose default behaviour runs the function on viewer-request
    assoc = {"Quantity": 1, "Items": [{"FunctionARN": arn, "EventType": "viewer-request"}]}
    dist = cf.create_distribution(DistributionConfig=_dist_config("ref-1", assoc))["Distribution"]
    assert dist["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"] == assoc
    dist_id = dist["Id"]
    got = cf.get_distribution_config(Id=dist_id)
    config = got["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["FunctionAssociations"] == assoc
    assert cf.get_distribution(Id=dist_id)["Distribution"]["DistributionConfig"][
        "DefaultCacheBehavior"]["FunctionAssociations"] == assoc
    # an update with the config as read keeps it
    again = cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)
    assert again["Distribution"]["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"] == assoc
    got = cf.get_distribution_config(Id=dist_id)
    assert got["DistributionConfig"]["DefaultCacheBehavior"]["FunctionAssociations"] == assoc
    assert cf.describe_function(Name="rewrite", Stage="LIVE")["FunctionSummary"]["Status"] == "DEPLOYED"

    # the function cannot go while a behaviour uses it
    live_etag = cf.describe_function(Name="rewrite", Stage="LIVE")["ETag"]
    with pytest.raises(ClientError) as err:
        cf.delete_function(Name="rewrite", IfMatch=live_etag)
    assert _code(err) == ("FunctionInUse", 409)

    # drop the association, then it can
    config = got["DistributionConfig"]
    config["DefaultCacheBehavior"]["FunctionAssociations"] = {"Quantity": 0}
    cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)
    assert cf.get_distribution_config(Id=dist_id)["DistributionConfig"]["DefaultCacheBehavior"][
        "FunctionAssociations"] == {"Quantity": 0}
    assert cf.describe_function(Name="rewrite", Stage="LIVE")["FunctionSummary"]["Status"] == "UNASSOCIATED"
    with pytest.raises(ClientError) as err:
        cf.delete_function(Name="rewrite", IfMatch="ESTALE")
    assert _code(err) == ("PreconditionFailed", 412)
    deleted = cf.delete_function(Name="rewrite", IfMatch=cf.describe_function(Name="rewrite")["ETag"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    for stage in ("DEVELOPMENT", "LIVE"):
        with pytest.raises(ClientError) as err:
            cf.describe_function(Name="rewrite", Stage=stage)
        assert _code(err) == ("NoSuchFunctionExists", 404)
    with pytest.raises(ClientError) as err:
        cf.get_function(Name="rewrite")
    assert _code(err) == ("NoSuchFunctionExists", 404)
    assert [i["Name"] for i in cf.list_functions()["FunctionList"]["Items"]] == ["a-first", "z-last"]


def test_missing_function_operations(cf):
    for call in (
        lambda: cf.update_function(Name="nope", IfMatch="E1", FunctionConfig=CONFIG, FunctionCode=CODE),
        lambda: cf.publish_function(Name="nope", IfMatch="E1"),
        lambda: cf.delete_function(Name="nope", IfMatch="E1"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == ("NoSuchFunctionExists", 404)
    empty = cf.list_functions()["FunctionList"]
    assert empty["Quantity"] == 0 and not empty.get("Items")


def test_cache_behaviours_keep_function_associations(cf):
    arn = cf.create_function(Name="headers", FunctionConfig=CONFIG, FunctionCode=CODE)[
        "FunctionSummary"]["FunctionMetadata"]["FunctionARN"]
    assoc = {"Quantity": 1, "Items": [{"FunctionARN": arn, "EventType": "viewer-response"}]}
    behaviours = [
        {"PathPattern": "/api/*", "TargetOriginId": "app", "ViewerProtocolPolicy": "https-only",
         "CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "FunctionAssociations": assoc},
        {"PathPattern": "/static/*", "TargetOriginId": "app", "ViewerProtocolPolicy": "https-only",
         "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"},
    ]
    dist = cf.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": _dist_config("ref-2", behaviours=behaviours),
        "Tags": {"Items": [{"Key": "k", "Value": "v"}]},
    })["Distribution"]
    config = cf.get_distribution_config(Id=dist["Id"])["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["FunctionAssociations"] == {"Quantity": 0}
    items = config["CacheBehaviors"]["Items"]
    assert items[0]["FunctionAssociations"] == assoc
    assert items[1]["FunctionAssociations"] == {"Quantity": 0}
    with pytest.raises(ClientError) as err:
        cf.delete_function(Name="headers", IfMatch=cf.describe_function(Name="headers")["ETag"])
    assert _code(err) == ("FunctionInUse", 409)


def _client(endpoint, service):
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(req).close()
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def test_a_subnet_has_one_route_table_association(endpoint):
    ec2 = _client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    first = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    other = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=first, SubnetId=subnet)
    for table in (first, other):
        with pytest.raises(ClientError) as err:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
        assert _code(err) == ("Resource.AlreadyAssociated", 400)
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
    assert [t["RouteTableId"] for t in tables["RouteTables"]] == [first]


def test_orderable_instance_options(endpoint):
    rds = _client(endpoint, "rds")
    got = rds.describe_orderable_db_instance_options(Engine="postgres", EngineVersion="16.9",
                                                     DBInstanceClass="db.t3.micro")
    options = got["OrderableDBInstanceOptions"]
    assert options and all(o["DBInstanceClass"] == "db.t3.micro" and o["MultiAZCapable"] for o in options)
    none = rds.describe_orderable_db_instance_options(Engine="postgres", EngineVersion="16.9",
                                                      DBInstanceClass="db.t2.micro")
    assert none["OrderableDBInstanceOptions"] == []
    retired = rds.describe_orderable_db_instance_options(Engine="postgres", EngineVersion="16.3")
    assert retired["OrderableDBInstanceOptions"] == []


def test_a_tls_only_bucket_policy_lets_the_loopback_in_and_still_denies(endpoint):
    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket="tls-only")
    arn = "arn:aws:s3:::tls-only"
    deny = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, arn + "/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]}))
    s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
    assert s3.get_object(Bucket="tls-only", Key="k")["Body"].read() == b"v"
    # An unconditional deny still denies: the policy is evaluated.
    always = dict(deny, Sid="DenyWrites", Action="s3:PutObject", Condition={})
    del always["Condition"]
    s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Version": "2012-10-17", "Statement": [always]}))
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="tls-only", Key="k2", Body=b"v")
    assert _code(err)[1] == 403


def test_a_function_has_one_mapping_per_stream(endpoint):
    iam, ddb, lam = _client(endpoint, "iam"), _client(endpoint, "dynamodb"), _client(endpoint, "lambda")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="esm", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    stream = ddb.create_table(
        TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    lam.create_function(FunctionName="f", Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    first = lam.create_event_source_mapping(FunctionName="f", EventSourceArn=stream, StartingPosition="LATEST")
    with pytest.raises(ClientError) as err:
        lam.create_event_source_mapping(FunctionName="f", EventSourceArn=stream, StartingPosition="LATEST")
    assert _code(err)[0] == "ResourceConflictException"
    assert first["UUID"] in str(err.value)
    assert len(lam.list_event_source_mappings(FunctionName="f")["EventSourceMappings"]) == 1


def test_a_flow_log_retried_with_its_client_token_is_the_first(endpoint):
    ec2, logs, iam = _client(endpoint, "ec2"), _client(endpoint, "logs"), _client(endpoint, "iam")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    logs.create_log_group(logGroupName="flow")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="flow", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    args = dict(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogDestinationType="cloud-watch-logs",
                LogGroupName="flow", DeliverLogsPermissionArn=role)
    first = ec2.create_flow_logs(ClientToken="t1", **args)["FlowLogIds"]
    assert len(first) == 1
    assert ec2.create_flow_logs(ClientToken="t1", **args)["FlowLogIds"] == first
    assert len(ec2.describe_flow_logs()["FlowLogs"]) == 1
    # Without the token (or with another), the same configuration is refused, as on AWS.
    with pytest.raises(ClientError) as err:
        ec2.create_flow_logs(ClientToken="t2", **args)
    assert _code(err)[0] == "FlowLogAlreadyExists"
    # Once deleted, the token makes a new one.
    ec2.delete_flow_logs(FlowLogIds=first)
    again = ec2.create_flow_logs(ClientToken="t1", **args)["FlowLogIds"]
    assert len(again) == 1 and again != first


def test_removing_a_role_a_profile_does_not_hold_is_no_such_entity(endpoint):
    iam = _client(endpoint, "iam")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.create_instance_profile(InstanceProfileName="p")
    iam.add_role_to_instance_profile(InstanceProfileName="p", RoleName="r")
    iam.remove_role_from_instance_profile(InstanceProfileName="p", RoleName="r")
    with pytest.raises(ClientError) as err:
        iam.remove_role_from_instance_profile(InstanceProfileName="p", RoleName="r")
    assert _code(err) == ("NoSuchEntity", 404)
    assert iam.get_instance_profile(InstanceProfileName="p")["InstanceProfile"]["Roles"] == []


def test_an_instance_refresh_is_recorded(endpoint):
    ec2, asg = _client(endpoint, "ec2"), _client(endpoint, "autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    lt = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(AutoScalingGroupName="g", MinSize=1, MaxSize=2, VPCZoneIdentifier=subnet,
                                  LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Default"})
    started = asg.start_instance_refresh(AutoScalingGroupName="g", Strategy="Rolling",
                                         Preferences={"MinHealthyPercentage": 90})["InstanceRefreshId"]
    got = asg.describe_instance_refreshes(AutoScalingGroupName="g")["InstanceRefreshes"]
    assert [(r["InstanceRefreshId"], r["Status"]) for r in got] == [(started, "Successful")]
    assert got[0]["Preferences"]["MinHealthyPercentage"] == 90
    with pytest.raises(ClientError) as err:
        asg.cancel_instance_refresh(AutoScalingGroupName="g")
    assert _code(err)[0] == "ActiveInstanceRefreshNotFound"
    with pytest.raises(ClientError) as err:
        asg.start_instance_refresh(AutoScalingGroupName="nope")
    assert _code(err)[0] == "ValidationError"


def test_a_network_acl_retried_with_its_client_token_is_the_first(endpoint):
    ec2 = _client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    first = ec2.create_network_acl(VpcId=vpc, ClientToken="t1")["NetworkAcl"]["NetworkAclId"]
    assert ec2.create_network_acl(VpcId=vpc, ClientToken="t1")["NetworkAcl"]["NetworkAclId"] == first
    assert ec2.create_network_acl(VpcId=vpc, ClientToken="t2")["NetworkAcl"]["NetworkAclId"] != first
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
    assert len(acls) == 3  # the default one and two of ours


def test_replacing_a_gone_network_acl_association_is_not_found(endpoint):
    ec2 = _client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
    old = [a for a in current["NetworkAcls"][0]["Associations"] if a["SubnetId"] == subnet][0]["NetworkAclAssociationId"]
    ec2.replace_network_acl_association(AssociationId=old, NetworkAclId=acl)
    with pytest.raises(ClientError) as err:
        ec2.replace_network_acl_association(AssociationId=old, NetworkAclId=acl)
    assert _code(err) == ("InvalidAssociationID.NotFound", 400)
    now = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    assert [a["NetworkAclId"] for a in now] == [acl]


def test_a_missing_network_acl_entry_is_not_found(endpoint):
    ec2 = _client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    entry = dict(NetworkAclId=acl, RuleNumber=100, Egress=False, Protocol="6", RuleAction="allow",
                 CidrBlock="0.0.0.0/0", PortRange={"From": 80, "To": 80})
    ec2.create_network_acl_entry(**entry)
    ec2.replace_network_acl_entry(**dict(entry, PortRange={"From": 443, "To": 443}))
    ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False)
    for call in (lambda: ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False),
                 lambda: ec2.replace_network_acl_entry(**entry)):
        with pytest.raises(ClientError) as err:
            call()
        assert _code(err) == ("InvalidNetworkAclEntry.NotFound", 400)


def test_a_vpc_takes_its_default_network_acl_along(endpoint):
    ec2 = _client(endpoint, "ec2")
    before = len(ec2.describe_network_acls()["NetworkAcls"])
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    assert len(ec2.describe_network_acls()["NetworkAcls"]) == before + 1
    ec2.delete_vpc(VpcId=vpc)
    assert len(ec2.describe_network_acls()["NetworkAcls"]) == before
