"""Tests of scripts/refresh-prices.py on recorded-shape Price List products. No network.

    python3 -m pytest pricing/
"""

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("refresh_prices", REPO / "scripts" / "refresh-prices.py")
rp = importlib.util.module_from_spec(_spec)
sys.modules["refresh_prices"] = rp
_spec.loader.exec_module(rp)


# --------------------------------------------------------------------------- recorded shapes


def product(sku, family, attrs, dims, service="AmazonEC2", published="2026-07-17T19:19:23Z", reserved=True):
    """A GetProducts PriceList element as AWS returns it (FormatVersion aws_v1), as a JSON string.

    dims: [(unit, usd, beginRange, endRange)]
    """
    term = f"{sku}.JRTCKXETXF"
    doc = {
        "product": {"productFamily": family, "attributes": dict(attrs, servicecode=service), "sku": sku},
        "serviceCode": service,
        "terms": {
            "OnDemand": {
                term: {
                    "priceDimensions": {
                        f"{term}.{i}": {
                            "unit": unit,
                            "endRange": end,
                            "description": f"${usd} per {unit}",
                            "appliesTo": [],
                            "rateCode": f"{term}.{i}",
                            "beginRange": begin,
                            "pricePerUnit": {"USD": f"{usd:.10f}"},
                        }
                        for i, (unit, usd, begin, end) in enumerate(dims)
                    },
                    "sku": sku,
                    "effectiveDate": "2026-07-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            },
        },
        "version": "20260717191923",
        "publicationDate": published,
    }
    if reserved:  # a Reserved term must never be read as the on-demand price
        doc["terms"]["Reserved"] = {
            f"{sku}.4NA7Y494T4": {"priceDimensions": {f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                "unit": "Hrs", "beginRange": "0", "endRange": "Inf", "pricePerUnit": {"USD": "0.0010000000"}}},
                "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "No Upfront"}}}
    return json.dumps(doc)


def ec2_instance(sku, itype, usd, region="us-east-1", **over):
    attrs = {
        "instanceType": itype, "regionCode": region, "location": "US East (N. Virginia)",
        "locationType": "AWS Region", "operatingSystem": "Linux", "tenancy": "Shared",
        "preInstalledSw": "NA", "capacitystatus": "Used", "licenseModel": "No License required",
        "operation": "RunInstances", "usagetype": f"BoxUsage:{itype}", "marketoption": "OnDemand",
    }
    attrs.update(over)
    return product(sku, "Compute Instance", attrs, [("Hrs", usd, "0", "Inf")])


def rds_instance(sku, cls, engine, deployment, usd, region="us-east-1", license="No license required"):
    az = "Multi-AZUsage" if deployment.startswith("Multi-AZ") else "InstanceUsage"
    attrs = {"instanceType": cls, "regionCode": region, "databaseEngine": engine,
             "deploymentOption": deployment, "licenseModel": license,
             "usagetype": f"{az}:{cls}", "engineCode": "14"}
    return product(sku, "Database Instance", attrs, [("Hrs", usd, "0", "Inf")], service="AmazonRDS")


def simple(sku, family, usagetype, unit, usd, service, region="us-east-1", tiers=None, **attrs):
    dims = tiers or [(unit, usd, "0", "Inf")]
    return product(sku, family, dict(attrs, usagetype=usagetype, regionCode=region), dims, service=service)


class FakeFetcher:
    """Serves the products of a (service code) whatever the filters, and records the filters sent,
    so the client-side narrowing is what is tested."""

    def __init__(self, by_service):
        self.by_service = {k: [json.loads(p) for p in v] for k, v in by_service.items()}
        self.calls = []

    def __call__(self, service_code, filters):
        self.calls.append((service_code, dict(filters)))
        region = filters.get("regionCode")
        return [p for p in self.by_service.get(service_code, [])
                if region is None or p["product"]["attributes"].get("regionCode") in (None, region)]


# --------------------------------------------------------------------------- regions


def test_regions_come_from_the_rust_table():
    regions = rp.regions_from_rules()
    assert regions[0] == "us-east-1"
    assert {"eu-west-1", "us-gov-west-1", "cn-north-1", "ap-southeast-7"} <= set(regions)
    assert len(regions) == len(set(regions)) >= 30


def test_regions_parse_a_snippet(tmp_path):
    f = tmp_path / "rules.rs"
    f.write_text('pub static REGIONS: &[Region] = &[\n    Region { name: "us-east-1", azs: ABC },\n'
                 '    // comment\n    Region { name: "eu-west-1", azs: &["a", "b"] },\n];\n'
                 'Region { name: "not-in-table-1", azs: ABC }\n')
    assert rp.regions_from_rules(f) == ["us-east-1", "eu-west-1"]


def test_china_is_not_priced_by_this_api():
    assert not rp.priced_by_this_api("cn-north-1")
    assert rp.priced_by_this_api("us-gov-east-1") and rp.priced_by_this_api("eu-west-1")


# --------------------------------------------------------------------------- parsing


def test_on_demand_not_reserved():
    p = json.loads(ec2_instance("A", "t3.micro", 0.0104))
    assert rp.first_paid_tier(p, ("Hrs",)) == (0.0104, "Hrs", None)


def test_tiers_take_the_first_that_costs_money():
    s3 = json.loads(simple("S3", "Storage", "TimedStorage-ByteHrs", "GB-Mo", 0, "AmazonS3", tiers=[
        ("GB-Mo", 0.022, "51200", "512000"), ("GB-Mo", 0.023, "0", "51200"), ("GB-Mo", 0.021, "512000", "Inf")]))
    assert rp.first_paid_tier(s3) == (0.023, "GB-Mo", None)
    ddb = json.loads(simple("D", "Database Storage", "TimedStorage-ByteHrs", "GB-Mo", 0, "AmazonDynamoDB", tiers=[
        ("GB-Mo", 0.25, "25", "Inf"), ("GB-Mo", 0.0, "0", "25")]))
    assert rp.first_paid_tier(ddb) == (0.25, "GB-Mo", {"quantity": 25.0, "unit": "GB-Mo"})
    free = json.loads(simple("F", "VpcEndpoint", "VpcEndpoint-Hours", "Hrs", 0.0, "AmazonVPC"))
    assert rp.first_paid_tier(free)[0] == 0.0


def test_unit_filter_and_missing_price():
    p = json.loads(simple("X", "Storage", "EBS:VolumeUsage.gp3", "GB-Mo", 0.08, "AmazonEC2"))
    with pytest.raises(rp.PriceError):
        rp.first_paid_tier(p, ("Hrs",))


def test_scale_to_our_units():
    api = json.loads(simple("G", "API Calls", "ApiGatewayRequest", "Requests", 0, "AmazonApiGateway", tiers=[
        ("Requests", 0.0000035, "0", "333000000"), ("Requests", 0.0000028, "333000000", "1000000000")]))
    spec = next(s for s in rp.SPECS if s.path == ("apigateway", "rest", "per_million_requests"))
    assert rp.price_spec([api], spec, "api")["usd"] == 3.5
    get = json.loads(simple("S", "API Request", "Requests-Tier2", "Requests", 0.0000004, "AmazonS3"))
    spec = next(s for s in rp.SPECS if s.path == ("s3", "standard", "get_per_10k"))
    e = rp.price_spec([get], spec, "get")
    assert e == {"usd": 0.004, "unit": "10K requests", "note": spec.note}


@pytest.mark.parametrize("usagetype,tail,ok", [
    ("NatGateway-Hours", "NatGateway-Hours", True),          # us-east-1: no prefix
    ("USE2-NatGateway-Hours", "NatGateway-Hours", True),
    ("EU-NatGateway-Hours", "NatGateway-Hours", True),       # eu-west-1's historical prefix
    ("UGW1-NatGateway-Hours", "NatGateway-Hours", True),     # GovCloud
    ("EU-RegionalNatGateway-Hours", "NatGateway-Hours", False),
    ("IA-TimedStorage-ByteHrs", "TimedStorage-ByteHrs", False),      # Infrequent Access class
    ("USE2-IA-TimedStorage-ByteHrs", "TimedStorage-ByteHrs", False),
    ("USE2-Request-ARM", "Request", False),
    ("us-west-2-KMS-Keys", "KMS-Keys", True),
])
def test_usagetype_prefixes(usagetype, tail, ok):
    import re
    assert bool(re.match(rp._u(tail), usagetype)) is ok


# --------------------------------------------------------------------------- building


def test_ec2_region_narrowing_and_filters():
    fetch = FakeFetcher({"AmazonEC2": [
        ec2_instance("A", "t3.micro", 0.0104),
        ec2_instance("B", "t3.micro", 0.0704, operation="RunInstances:0010"),      # RHEL
        ec2_instance("C", "t3.micro", 0.0204, licenseModel="Bring your own license"),
        ec2_instance("D", "m7g.large", 0.0816),
        ec2_instance("E", "x2idn.metal", 13.338),                                  # not wanted
        ec2_instance("F", "t3.micro", 0.0118, region="eu-west-1"),
    ]})
    errors, dates = [], []
    out = rp.build_region(fetch, "us-east-1", ["ec2"], errors, dates)
    assert out == {"ec2": {"instances": {"m7g.large": {"usd": 0.0816, "unit": "Hrs"},
                                         "t3.micro": {"usd": 0.0104, "unit": "Hrs"}}}}
    assert errors == [] and dates and max(dates).startswith("2026-07-17")
    service, sent = fetch.calls[0]
    assert service == "AmazonEC2"
    assert sent == {"regionCode": "us-east-1", "productFamily": "Compute Instance", "operatingSystem": "Linux",
                    "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used", "marketoption": "OnDemand"}


def test_rds_instances_and_storage():
    fetch = FakeFetcher({"AmazonRDS": [
        rds_instance("P1", "db.t3.micro", "PostgreSQL", "Single-AZ", 0.018),
        rds_instance("P2", "db.t3.micro", "PostgreSQL", "Multi-AZ", 0.036),
        rds_instance("P3", "db.t3.micro", "PostgreSQL", "Multi-AZ (readable standbys)", 0.05),
        rds_instance("M1", "db.t3.micro", "MySQL", "Single-AZ", 0.017),
        rds_instance("O1", "db.t3.micro", "Oracle", "Single-AZ", 0.04, license="License included"),
        simple("S1", "Database Storage", "RDS:GP3-Storage", "GB-Mo", 0.115, "AmazonRDS", deploymentOption="Single-AZ"),
        simple("S2", "Database Storage", "RDS:Multi-AZ-GP3-Storage", "GB-Mo", 0.23, "AmazonRDS", deploymentOption="Multi-AZ"),
        simple("S3", "Provisioned IOPS", "RDS:PIOPS", "IOPS-Mo", 0.10, "AmazonRDS", deploymentOption="Single-AZ"),
        simple("S4", "Database Storage", "RDS:PIOPS-Storage-IO2", "GB-Mo", 0.125, "AmazonRDS", deploymentOption="Single-AZ"),
    ]})
    # The fake ignores the engine filter: make it honour databaseEngine like the API does.
    real = fetch.__call__

    def by_engine(service, filters):
        got = real(service, filters)
        eng = filters.get("databaseEngine")
        fam = filters.get("productFamily")
        return [p for p in got
                if (eng is None or p["product"]["attributes"].get("databaseEngine") == eng)
                and (fam is None or p["product"]["productFamily"] == fam)]

    errors = []
    out = rp.build_region(by_engine, "us-east-1", ["rds"], errors, [])["rds"]
    assert out["instances"]["postgres"]["single_az"]["db.t3.micro"]["usd"] == 0.018
    assert out["instances"]["postgres"]["multi_az"]["db.t3.micro"]["usd"] == 0.036
    assert out["instances"]["mysql"] == {"single_az": {"db.t3.micro": {"usd": 0.017, "unit": "Hrs"}}}
    assert "mariadb" not in out["instances"]
    assert out["storage"]["single_az"]["gp3"] == {"usd": 0.115, "unit": "GB-Mo"}
    assert out["storage"]["multi_az"]["gp3"] == {"usd": 0.23, "unit": "GB-Mo"}
    assert out["storage"]["single_az"]["io1_iops"] == {"usd": 0.1, "unit": "IOPS-Mo"}
    assert "io1" not in out["storage"]["single_az"]  # io2 storage is not io1
    assert any("single_az io1: no matching product" in e for e in errors)


def test_prefixed_region_services_and_free_gateway_endpoint():
    r = "eu-west-1"
    fetch = FakeFetcher({
        "AmazonEC2": [
            simple("N1", "NAT Gateway", "EU-NatGateway-Hours", "Hrs", 0.048, "AmazonEC2", r),
            simple("N2", "NAT Gateway", "EU-NatGateway-Bytes", "GB", 0.048, "AmazonEC2", r),
            simple("N3", "NAT Gateway", "EU-RegionalNatGateway-Hours", "Hrs", 0.1, "AmazonEC2", r),
        ],
        "AmazonVPC": [
            simple("V1", "VPC Public IPv4 Address", "EU-PublicIPv4:InUseAddress", "Hrs", 0.005, "AmazonVPC", r),
            simple("V2", "VPC Public IPv4 Address", "EU-PublicIPv4:IdleAddress", "Hrs", 0.005, "AmazonVPC", r),
            simple("V3", "VpcEndpoint", "EU-VpcEndpoint-Hours", "Hrs", 0.011, "AmazonVPC", r),
            simple("V4", "VpcEndpoint", "EU-VpcEndpoint-Bytes", "GB", 0, "AmazonVPC", r, tiers=[
                ("GB", 0.01, "0", "1048576"), ("GB", 0.006, "1048576", "5242880"), ("GB", 0.004, "5242880", "Inf")]),
            simple("V5", "VpcEndpoint", "EU-VpcEndpoint-GWLBE-Hours", "Hrs", 0.011, "AmazonVPC", r),
        ]})
    errors = []
    vpc = rp.build_region(fetch, r, ["vpc"], errors, [])["vpc"]
    assert errors == []
    assert vpc["nat_gateway"] == {"hour": {"usd": 0.048, "unit": "Hrs"}, "per_gb": {"usd": 0.048, "unit": "GB"}}
    assert vpc["public_ipv4"]["hour"]["usd"] == 0.005
    assert vpc["interface_endpoint"]["hour_per_az"]["usd"] == 0.011
    assert vpc["interface_endpoint"]["per_gb"]["usd"] == 0.01
    assert vpc["gateway_endpoint"]["usd"] == 0.0


def test_dynamodb_ignores_infrequent_access_class_and_records_free_tier():
    fetch = FakeFetcher({"AmazonDynamoDB": [
        simple("D1", "Database Storage", "TimedStorage-ByteHrs", "GB-Mo", 0, "AmazonDynamoDB",
               tiers=[("GB-Mo", 0.0, "0", "25"), ("GB-Mo", 0.25, "25", "Inf")]),
        simple("D2", "Database Storage", "IA-TimedStorage-ByteHrs", "GB-Mo", 0.10, "AmazonDynamoDB"),
        simple("D3", "Amazon DynamoDB PayPerRequest Throughput", "ReadRequestUnits", "ReadRequestUnits",
               0.000000125, "AmazonDynamoDB"),
        simple("D4", "Amazon DynamoDB PayPerRequest Throughput", "WriteRequestUnits", "WriteRequestUnits",
               0.000000625, "AmazonDynamoDB"),
        simple("D5", "Provisioned IOPS", "ReadCapacityUnit-Hrs", "ReadCapacityUnit-Hrs", 0.00013, "AmazonDynamoDB"),
        simple("D6", "Provisioned IOPS", "IA-ReadCapacityUnit-Hrs", "ReadCapacityUnit-Hrs", 0.00016, "AmazonDynamoDB"),
    ]})
    errors = []
    ddb = rp.build_region(fetch, "us-east-1", ["dynamodb"], errors, [])["dynamodb"]
    assert ddb["storage_gb_month"] == {"usd": 0.25, "unit": "GB-Mo", "free_tier": {"quantity": 25, "unit": "GB-Mo"}}
    assert ddb["on_demand"]["read_per_million"]["usd"] == 0.125
    assert ddb["on_demand"]["write_per_million"]["usd"] == 0.625
    assert ddb["provisioned"]["rcu_hour"]["usd"] == 0.00013
    assert "wcu_hour" not in ddb["provisioned"]
    assert any("wcu_hour: no matching product" in e for e in errors)


def test_disagreeing_products_are_ambiguous_not_guessed():
    fetch = FakeFetcher({"AWSELB": [
        simple("L1", "Load Balancer-Application", "LoadBalancerUsage", "Hrs", 0.0225, "AWSELB"),
        simple("L2", "Load Balancer-Application", "LoadBalancerUsage", "Hrs", 0.0252, "AWSELB"),
        simple("L3", "Load Balancer-Application", "LCUUsage", "LCU-Hrs", 0.008, "AWSELB"),
        simple("L4", "Load Balancer-Application", "LCUUsage", "LCU-Hrs", 0.008, "AWSELB"),  # agreeing duplicate
    ]})
    errors = []
    elb = rp.build_region(fetch, "us-east-1", ["elb"], errors, [])["elb"]
    assert elb == {"alb": {"lcu_hour": {"usd": 0.008, "unit": "LCU-Hrs"}}}
    assert any("2 different prices" in e and "L1" in e and "L2" in e for e in errors)


def test_lambda_x86_and_arm_are_told_apart():
    fetch = FakeFetcher({"AWSLambda": [
        simple("A1", "Serverless", "Lambda-GB-Second", "Lambda-GB-Second", 0, "AWSLambda", group="AWS-Lambda-Duration",
               tiers=[("Lambda-GB-Second", 0.0000166667, "0", "6000000000"), ("Lambda-GB-Second", 0.000015, "6000000000", "15000000000")]),
        simple("A2", "Serverless", "Lambda-GB-Second-ARM", "Lambda-GB-Second", 0.0000133334, "AWSLambda", group="AWS-Lambda-Duration-ARM"),
        simple("A3", "Serverless", "Request", "Requests", 0.0000002, "AWSLambda", group="AWS-Lambda-Requests"),
        simple("A4", "Serverless", "Request-ARM", "Requests", 0.0000002, "AWSLambda", group="AWS-Lambda-Requests-ARM"),
        simple("A5", "Serverless", "Lambda-Edge-Request", "Requests", 0.0000006, "AWSLambda", group="AWS-Lambda-Edge-Requests"),
    ]})
    errors = []
    lam = rp.build_region(fetch, "us-east-1", ["lambda"], errors, [])["lambda"]
    assert errors == []
    assert lam["x86_64"]["gb_second"]["usd"] == 0.0000166667
    assert lam["arm64"]["gb_second"]["usd"] == 0.0000133334
    assert lam["x86_64"]["per_million_requests"]["usd"] == 0.2
    assert lam["arm64"]["per_million_requests"]["usd"] == 0.2


def test_cloudfront_is_global():
    fetch = FakeFetcher({"AmazonCloudFront": [
        simple("C1", "Data Transfer", "US-DataTransfer-Out-Bytes", "GB", 0, "AmazonCloudFront", region=None, tiers=[
            ("GB", 0.085, "0", "10240"), ("GB", 0.080, "10240", "51200")]),
        simple("C2", "Request", "US-Requests-Tier2-HTTPS", "Requests", 0.000001, "AmazonCloudFront", region=None),
        simple("C3", "Data Transfer", "EU-DataTransfer-Out-Bytes", "GB", 0.085, "AmazonCloudFront", region=None),
    ]})
    errors = []
    cf = rp.build_cloudfront(fetch, errors, [])
    assert cf["data_out_per_gb"]["north_america"]["usd"] == 0.085
    assert cf["data_out_per_gb"]["europe"]["usd"] == 0.085
    assert cf["https_requests_per_10k"]["north_america"] == {"usd": 0.01, "unit": "10K requests"}
    assert all("regionCode" not in f for _, f in fetch.calls)


# --------------------------------------------------------------------------- fetching


class FakePaginator:
    def __init__(self, pages, seen):
        self.pages, self.seen = pages, seen

    def paginate(self, **kw):
        self.seen.append(kw)
        yield from self.pages


class FakeClient:
    def __init__(self, pages):
        self.pages, self.seen = pages, []

    def get_paginator(self, name):
        assert name == "get_products"
        return FakePaginator(self.pages, self.seen)


def test_live_fetcher_pages_filters_cache_and_dump(tmp_path):
    pages = [{"FormatVersion": "aws_v1", "PriceList": [ec2_instance("A", "t3.micro", 0.0104)], "NextToken": "x"},
             {"FormatVersion": "aws_v1", "PriceList": [ec2_instance("B", "t3.nano", 0.0052)]}]
    client = FakeClient(pages)
    f = rp.LiveFetcher(client=client, dump_dir=tmp_path)
    got = f("AmazonEC2", {"regionCode": "us-east-1", "operatingSystem": "Linux"})
    assert [p["product"]["sku"] for p in got] == ["A", "B"]
    assert f("AmazonEC2", {"operatingSystem": "Linux", "regionCode": "us-east-1"}) is got  # cached
    (kw,) = client.seen
    assert kw["ServiceCode"] == "AmazonEC2" and kw["FormatVersion"] == "aws_v1"
    assert kw["Filters"] == [{"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
                             {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"}]
    assert kw["PaginationConfig"]["PageSize"] <= 100  # GetProducts MaxResults is at most 100
    again = rp.DumpFetcher(tmp_path)("AmazonEC2", {"regionCode": "us-east-1", "operatingSystem": "Linux"})
    assert again == got


def test_boto3_pricing_model_has_what_the_script_uses():
    botocore = pytest.importorskip("botocore.session")
    model = botocore.get_session().get_service_model("pricing")
    op = model.operation_model("GetProducts")
    assert {"ServiceCode", "Filters", "FormatVersion", "NextToken", "MaxResults"} <= set(op.input_shape.members)
    assert "TERM_MATCH" in model.shape_for("FilterType").enum
    assert op.input_shape.members["MaxResults"].metadata["max"] == 100
    pag = botocore.get_session().get_paginator_model("pricing").get_paginator("GetProducts")
    assert pag["result_key"] == "PriceList"


# --------------------------------------------------------------------------- check / write


def minimal_doc(nat_hour=0.045):
    table = rp.regions_from_rules()
    regions = {"us-east-1": {
        "vpc": {"nat_gateway": {"hour": {"usd": nat_hour, "unit": "Hrs", "note": "per gateway"},
                                "per_gb": {"usd": 0.045, "unit": "GB"}},
                "gateway_endpoint": {"usd": 0.0, "unit": "Hrs", "note": "free"}},
        "lambda": {"x86_64": {"gb_second": {"usd": 0.0000166667, "unit": "GB-second"}},
                   "free_tier": {"requests": 1000000}}}}
    return {"schema_version": 1, "as_of": "2026-07-20", "currency": "USD", "hours_per_month": 730,
            "source": {}, "provenance": {"vpc": {"source": "test"}, "lambda": {"source": "test"}},
            "missing_regions": rp.missing_by_service(regions, table), "regions": regions, "global": {}}


def nat_fetcher(hour):
    return FakeFetcher({"AmazonEC2": [
        simple("N1", "NAT Gateway", "NatGateway-Hours", "Hrs", hour, "AmazonEC2"),
        simple("N2", "NAT Gateway", "NatGateway-Bytes", "GB", 0.045, "AmazonEC2")]})


def test_check_reports_differences(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps(minimal_doc()))
    out = io.StringIO()
    rc = rp.main(["--check", "--file", str(f), "--regions", "us-east-1", "--services", "vpc"],
                 fetcher=nat_fetcher(0.05), out=out)
    text = out.getvalue()
    assert rc == 1
    assert "~ us-east-1.vpc.nat_gateway.hour: file 0.045 Hrs -> live 0.05 Hrs" in text
    assert "- us-east-1.vpc.public_ipv4" not in text  # not in the file, not live: nothing to say
    assert "us-east-1.lambda" not in text            # out of the --services scope
    out = io.StringIO()
    assert rp.main(["--check", "--file", str(f), "--regions", "us-east-1", "--services", "vpc"],
                   fetcher=nat_fetcher(0.045), out=out) == 0
    assert out.getvalue().startswith("0 difference(s)")


def test_check_shows_added_and_vanished():
    bundled = minimal_doc()
    live = {"regions": {"us-east-1": {"vpc": {"nat_gateway": {"hour": {"usd": 0.045, "unit": "Hrs"}},
                                              "public_ipv4": {"hour": {"usd": 0.005, "unit": "Hrs"}}}}}, "global": {}}
    lines = rp.diff_tables(bundled, live, ["us-east-1"], ["vpc"])
    assert "+ us-east-1.vpc.public_ipv4.hour: live 0.005 Hrs, not in the file" in lines
    assert "- us-east-1.vpc.nat_gateway.per_gb: 0.045 GB in the file, not found live" in lines
    assert not any("nat_gateway.hour" in l for l in lines)


def test_write_refreshes_the_scope_and_keeps_notes(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps(minimal_doc()))
    out = io.StringIO()
    rc = rp.main(["--write", "--file", str(f), "--regions", "us-east-1", "--services", "vpc"],
                 fetcher=nat_fetcher(0.05), out=out)
    assert rc == 0, out.getvalue()
    doc = json.loads(f.read_text())
    nat = doc["regions"]["us-east-1"]["vpc"]["nat_gateway"]["hour"]
    assert nat == {"usd": 0.05, "unit": "Hrs", "note": "per gateway"}
    assert doc["regions"]["us-east-1"]["vpc"]["gateway_endpoint"]["usd"] == 0.0
    assert doc["regions"]["us-east-1"]["lambda"]["free_tier"] == {"requests": 1000000}  # untouched service
    assert doc["provenance"]["vpc"]["confidence"] == "exact"
    assert doc["as_of"] == "2026-07-17"  # the Price List's publication date
    assert rp.validate(doc, rp.regions_from_rules()) == []


def test_unknown_region_or_service_is_refused(capsys):
    assert rp.main(["--check", "--regions", "xx-nowhere-1"], fetcher=nat_fetcher(0.045)) == 2
    assert rp.main(["--check", "--services", "redshift"], fetcher=nat_fetcher(0.045)) == 2


# --------------------------------------------------------------------------- the bundled file


@pytest.fixture(scope="module")
def bundled():
    return json.loads((REPO / "pricing" / "prices.json").read_text())


def test_bundled_file_is_valid(bundled):
    assert rp.validate(bundled, rp.regions_from_rules()) == []
    out = io.StringIO()
    assert rp.main(["--validate"], out=out) == 0


def test_bundled_header(bundled):
    assert bundled["currency"] == "USD" and bundled["hours_per_month"] == 730
    assert bundled["as_of"] and bundled["provenance"] and bundled["source"]["api"].startswith("AWS Price List Query API")
    for cn in ("cn-north-1", "cn-northwest-1"):
        assert all(cn in regions for regions in bundled["missing_regions"].values())


def test_bundled_us_east_1_is_complete(bundled):
    use1 = bundled["regions"]["us-east-1"]
    assert set(use1) == set(rp.SERVICE_KEYS)
    assert set(use1["ec2"]["instances"]) == set(rp.EC2_TYPES)
    for eng in rp.RDS_ENGINES:
        single, multi = use1["rds"]["instances"][eng]["single_az"], use1["rds"]["instances"][eng]["multi_az"]
        assert set(single) == set(multi) == set(rp.RDS_CLASSES)
        for cls in rp.RDS_CLASSES:
            assert multi[cls]["usd"] == pytest.approx(2 * single[cls]["usd"])
    for path in (s.path for s in rp.SPECS):
        node = use1
        for k in path:
            node = node[k]
        assert node["unit"]


def test_every_entry_has_a_unit(bundled):
    entries = rp.flatten(bundled["regions"])
    entries.update(rp.flatten(bundled["global"]))
    assert len(entries) > 400
    assert all(e["unit"] and e["usd"] >= 0 for e in entries.values())


def test_every_bundled_entry_is_one_the_script_refreshes(bundled):
    """So --check compares everything the file claims, and --write can regenerate it."""
    refreshed = {s.path for s in rp.SPECS} | {("vpc", "gateway_endpoint")}
    for r, body in bundled["regions"].items():
        for path in rp.flatten(body):
            if path[0] == "ec2":
                assert path[1] == "instances" and path[2] in rp.EC2_TYPES
            elif path[0] == "rds":
                assert (path[1] == "instances" and path[2] in rp.RDS_ENGINES and path[3] in rp.RDS_DEPLOYMENTS
                        and path[4] in rp.RDS_CLASSES) or \
                       (path[1] == "storage" and path[2] in rp.RDS_DEPLOYMENTS and path[3] in rp.RDS_STORAGE)
            else:
                assert path in refreshed, (r, path)


def test_derived_entries_are_marked_and_only_where_allowed(bundled):
    """Exact snapshots have no 'basis'; derived sizes say so, only for m/c/r families, never
    in the regions with a complete exact snapshot, and only next to an exact size of the family."""
    for r, body in bundled["regions"].items():
        inst = body.get("ec2", {}).get("instances", {})
        for t, e in inst.items():
            if "basis" not in e:
                continue
            assert r not in ("us-east-1", "us-gov-west-1", "us-gov-east-1"), (r, t)
            assert t.split(".")[0][0] in "mcr" and e["basis"].startswith("derived: "), (r, t)
            family = t.split(".")[0]
            assert any(k.split(".")[0] == family and "basis" not in v for k, v in inst.items()), (r, t)


def test_from_dump_round_trip(tmp_path):
    """--dump then --from-dump: the offline path a reviewer uses gives the same table."""
    client = FakeClient([{"PriceList": [simple("K1", "Encryption Key", "KMS-Keys", "Keys", 1.0, "awskms")]}])
    live = rp.LiveFetcher(client=client, dump_dir=tmp_path / "dump")
    table1, errors1, _ = rp.build_live_table(live, ["us-east-1"], ["kms"])
    f = tmp_path / "prices.json"
    f.write_text(json.dumps(minimal_doc()))
    out = io.StringIO()
    rc = rp.main(["--check", "--file", str(f), "--regions", "us-east-1", "--services", "kms",
                  "--from-dump", str(tmp_path / "dump")], out=out)
    assert table1["regions"]["us-east-1"]["kms"]["key_month"]["usd"] == 1.0
    assert rc == 1 and "+ us-east-1.kms.key_month: live 1.0 key-Mo, not in the file" in out.getvalue()
