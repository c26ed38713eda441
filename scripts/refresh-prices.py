#!/usr/bin/env python3
"""Regenerate or check pricing/prices.json from the AWS Price List Query API.

    scripts/refresh-prices.py --check            # live API vs the bundled file, print differences
    scripts/refresh-prices.py --write            # rewrite pricing/prices.json from the live API
    scripts/refresh-prices.py --validate         # structure check of the bundled file, no network
    scripts/refresh-prices.py --check --regions us-east-1,eu-west-1 --services ec2,rds

Needs boto3 and credentials allowed to call pricing:GetProducts (any account; the Price
List API is read-only and free). The API is served from us-east-1 (and ap-south-1, eu-central-1)
and prices every region of the `aws` partition, GovCloud included. China (cn-*) is priced in
CNY by a separate endpoint in the aws-cn partition: those regions are always listed under
"missing_regions" here.

--dump DIR saves every raw GetProducts answer (one JSON file per query), --from-dump DIR
rebuilds the table from such a directory without any network: that is how the parser is
tested (pricing/test_refresh_prices.py) and how a refresh can be reviewed offline.

How a price is picked (the same for every entry):
  1. one GetProducts query per (service, region[, engine]) with TERM_MATCH filters on
     documented attributes (serviceCode, regionCode, productFamily, operatingSystem, ...);
  2. products are narrowed client side by exact attribute values and a usagetype regex
     (usagetypes carry a region prefix, e.g. "EUW1-NatGateway-Hours", none in us-east-1);
  3. the OnDemand term's price dimensions are read; for tiered prices the first tier that
     costs money is taken (its free allowance, if any, is recorded as "free_tier");
  4. the price is converted to the unit of the bundled file (e.g. per request -> per 1M);
  5. if the remaining products disagree on the price, the entry is reported as ambiguous
     and left out rather than guessed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
PRICES_FILE = REPO / "pricing" / "prices.json"
RULES_FILE = REPO / "src" / "stack" / "limits.rs"

SCHEMA_VERSION = 1
HOURS_PER_MONTH = 730  # AWS's own convention (Pricing Calculator, price pages)

# --------------------------------------------------------------------------- regions


def regions_from_rules(path: Path = RULES_FILE) -> List[str]:
    """The region codes of the tool's REGIONS table, in its order."""
    text = path.read_text(encoding="utf-8")
    start = text.index("pub static REGIONS")
    end = text.index("];", start)
    return re.findall(r'Region\s*\{\s*name:\s*"([a-z0-9-]+)"', text[start:end])


def priced_by_this_api(region: str) -> bool:
    """China is priced (in CNY) by the aws-cn Price List endpoint, not by this one."""
    return not region.startswith("cn-")


# --------------------------------------------------------------------------- what we price

EC2_TYPES: List[str] = (
    [f"{fam}.{size}" for fam in ("t3", "t3a", "t4g")
     for size in ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")]
    + [f"{fam}.{size}"
       for fam in ("m5", "m6i", "m6g", "m7i", "m7g", "c5", "c6i", "c6g", "c7g", "r5", "r6i", "r6g")
       for size in ("large", "xlarge", "2xlarge", "4xlarge")]
)

RDS_ENGINES: Dict[str, str] = {  # our key -> Price List databaseEngine
    "postgres": "PostgreSQL",
    "mysql": "MySQL",
    "mariadb": "MariaDB",
}
RDS_DEPLOYMENTS: Dict[str, str] = {  # our key -> Price List deploymentOption
    "single_az": "Single-AZ",
    "multi_az": "Multi-AZ",  # Multi-AZ DB *instance*; "Multi-AZ (readable standbys)" is the cluster
}
RDS_CLASSES: List[str] = (
    [f"db.{fam}.{size}" for fam in ("t3", "t4g")
     for size in ("micro", "small", "medium", "large", "xlarge", "2xlarge")]
    + [f"db.{fam}.{size}"
       for fam in ("m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i")
       for size in ("large", "xlarge", "2xlarge", "4xlarge")]
)

SERVICE_KEYS = ["ec2", "ebs", "rds", "vpc", "elb", "dynamodb", "secretsmanager",
                "cloudwatch_logs", "lambda", "apigateway", "s3", "kms", "waf"]
GLOBAL_KEYS = ["cloudfront", "cognito"]


@dataclass
class Spec:
    """One price: where it is in the Price List and where it goes in prices.json."""

    path: Tuple[str, ...]             # e.g. ("vpc", "nat_gateway", "hour")
    service_code: str                 # GetProducts ServiceCode
    filters: Dict[str, str]           # TERM_MATCH filters sent to the API (regionCode added)
    usagetype: Optional[str] = None   # regex matched against attributes.usagetype (client side)
    attrs: Dict[str, str] = field(default_factory=dict)  # exact, case-insensitive, client side
    unit: str = ""                    # unit written to prices.json
    scale: float = 1.0                # price-list unit -> our unit (e.g. 1e6: per request -> per 1M)
    pl_units: Tuple[str, ...] = ()    # price-list units accepted (case-insensitive); () = any
    note: Optional[str] = None


# A usagetype is "<region prefix>-<name>" outside us-east-1: "USE2-", "EUW1-", "APS3-", "UGW1-",
# "EU-" (eu-west-1's historical prefix), and for a few services the region code itself
# ("us-west-2-"). The prefix must not swallow a qualifier such as "IA-" (Infrequent Access table
# class) or "Repl", so it is one token with a digit, "EU", or a region code.
REGION_PREFIX = r"(?:[A-Z]{2,4}[0-9]|EU|[a-z]{2}(?:-gov)?-[a-z]+-[0-9])-"


def _u(regex_tail: str) -> str:
    """usagetype regex: an optional region prefix, then exactly the tail."""
    return r"^(?:" + REGION_PREFIX + r")?" + regex_tail + r"$"


SPECS: List[Spec] = [
    # EBS (AmazonEC2 offer)
    Spec(("ebs", "gp3"), "AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"},
         usagetype=_u(r"EBS:VolumeUsage\.gp3"), unit="GB-Mo", pl_units=("GB-Mo",)),
    Spec(("ebs", "gp2"), "AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp2"},
         usagetype=_u(r"EBS:VolumeUsage\.gp2"), unit="GB-Mo", pl_units=("GB-Mo",)),
    Spec(("ebs", "gp3_iops"), "AmazonEC2", {"productFamily": "System Operation", "volumeApiName": "gp3"},
         usagetype=_u(r"EBS:VolumeP-IOPS\.gp3"), unit="IOPS-Mo", pl_units=("IOPS-Mo",),
         note="provisioned IOPS above the 3,000 included"),
    Spec(("ebs", "gp3_throughput"), "AmazonEC2", {"productFamily": "Provisioned Throughput", "volumeApiName": "gp3"},
         usagetype=_u(r"EBS:VolumeP-Throughput\.gp3"), unit="MiBps-Mo",
         note="provisioned throughput above the 125 MiB/s included (price list unit GiBps-mo is per MiB/s)"),
    # NAT gateway (AmazonEC2 offer), zonal gateways
    Spec(("vpc", "nat_gateway", "hour"), "AmazonEC2", {"productFamily": "NAT Gateway"},
         usagetype=_u(r"NatGateway-Hours"), unit="Hrs", pl_units=("Hrs",)),
    Spec(("vpc", "nat_gateway", "per_gb"), "AmazonEC2", {"productFamily": "NAT Gateway"},
         usagetype=_u(r"NatGateway-Bytes"), unit="GB", pl_units=("GB", "Quantity")),
    # Public IPv4 (AmazonVPC offer), billed since 2024-02-01 for every public IPv4 address
    Spec(("vpc", "public_ipv4", "hour"), "AmazonVPC", {},
         usagetype=_u(r"PublicIPv4:InUseAddress"), unit="Hrs", pl_units=("Hrs",)),
    Spec(("vpc", "public_ipv4", "idle_hour"), "AmazonVPC", {},
         usagetype=_u(r"PublicIPv4:IdleAddress"), unit="Hrs", pl_units=("Hrs",)),
    # Interface VPC endpoints (AmazonVPC offer, PrivateLink)
    Spec(("vpc", "interface_endpoint", "hour_per_az"), "AmazonVPC", {"productFamily": "VpcEndpoint"},
         usagetype=_u(r"VpcEndpoint-Hours"), unit="Hrs", pl_units=("Hrs",)),
    Spec(("vpc", "interface_endpoint", "per_gb"), "AmazonVPC", {"productFamily": "VpcEndpoint"},
         usagetype=_u(r"VpcEndpoint-Bytes"), unit="GB", pl_units=("GB",),
         note="first tier (first 1 PB per region per month)"),
    # Application Load Balancer (AWSELB offer)
    Spec(("elb", "alb", "hour"), "AWSELB", {"productFamily": "Load Balancer-Application"},
         usagetype=_u(r"LoadBalancerUsage"), unit="Hrs", pl_units=("Hrs",)),
    Spec(("elb", "alb", "lcu_hour"), "AWSELB", {"productFamily": "Load Balancer-Application"},
         usagetype=_u(r"LCUUsage"), unit="LCU-Hrs", pl_units=("LCU-Hrs",)),
    # DynamoDB, standard table class
    Spec(("dynamodb", "provisioned", "rcu_hour"), "AmazonDynamoDB", {"productFamily": "Provisioned IOPS"},
         usagetype=_u(r"ReadCapacityUnit-Hrs"), unit="RCU-Hrs", pl_units=("ReadCapacityUnit-Hrs",)),
    Spec(("dynamodb", "provisioned", "wcu_hour"), "AmazonDynamoDB", {"productFamily": "Provisioned IOPS"},
         usagetype=_u(r"WriteCapacityUnit-Hrs"), unit="WCU-Hrs", pl_units=("WriteCapacityUnit-Hrs",)),
    Spec(("dynamodb", "on_demand", "read_per_million"), "AmazonDynamoDB",
         {"productFamily": "Amazon DynamoDB PayPerRequest Throughput"},
         usagetype=_u(r"ReadRequestUnits"), unit="1M read request units", scale=1e6),
    Spec(("dynamodb", "on_demand", "write_per_million"), "AmazonDynamoDB",
         {"productFamily": "Amazon DynamoDB PayPerRequest Throughput"},
         usagetype=_u(r"WriteRequestUnits"), unit="1M write request units", scale=1e6),
    Spec(("dynamodb", "storage_gb_month"), "AmazonDynamoDB", {"productFamily": "Database Storage"},
         usagetype=_u(r"TimedStorage-ByteHrs"), unit="GB-Mo", pl_units=("GB-Mo",)),
    Spec(("dynamodb", "pitr_gb_month"), "AmazonDynamoDB", {},
         usagetype=_u(r"TimedPITRStorage-ByteHrs"), unit="GB-Mo", pl_units=("GB-Mo",)),
    Spec(("dynamodb", "streams_read_per_100k"), "AmazonDynamoDB", {},
         usagetype=_u(r"Streams-Requests"), unit="100K stream read request units", scale=1e5),
    # Secrets Manager
    Spec(("secretsmanager", "secret_month"), "AWSSecretsManager", {},
         usagetype=_u(r"AWSSecretsManager-Secrets"), unit="secret-Mo"),
    Spec(("secretsmanager", "api_per_10k"), "AWSSecretsManager", {},
         usagetype=_u(r"AWSSecretsManager-APIRequest"), unit="10K API requests", scale=1e4),
    # CloudWatch Logs (AmazonCloudWatch offer), Standard log class
    Spec(("cloudwatch_logs", "ingest_per_gb"), "AmazonCloudWatch", {},
         usagetype=_u(r"DataProcessing-Bytes"), unit="GB", pl_units=("GB",)),
    Spec(("cloudwatch_logs", "storage_gb_month"), "AmazonCloudWatch", {},
         usagetype=_u(r"TimedStorage-ByteHrs"), unit="GB-Mo", pl_units=("GB-Mo",)),
    # Lambda
    Spec(("lambda", "x86_64", "gb_second"), "AWSLambda", {},
         usagetype=_u(r"Lambda-GB-Second"), unit="GB-second", attrs={"group": "AWS-Lambda-Duration"},
         note="first tier (first 6 billion GB-seconds per month)"),
    Spec(("lambda", "x86_64", "per_million_requests"), "AWSLambda", {},
         usagetype=_u(r"Request"), unit="1M requests", scale=1e6, attrs={"group": "AWS-Lambda-Requests"}),
    Spec(("lambda", "arm64", "gb_second"), "AWSLambda", {},
         usagetype=_u(r"Lambda-GB-Second-ARM"), unit="GB-second", attrs={"group": "AWS-Lambda-Duration-ARM"},
         note="first tier (first 7.5 billion GB-seconds per month)"),
    Spec(("lambda", "arm64", "per_million_requests"), "AWSLambda", {},
         usagetype=_u(r"Request-ARM"), unit="1M requests", scale=1e6, attrs={"group": "AWS-Lambda-Requests-ARM"}),
    # API Gateway REST APIs
    Spec(("apigateway", "rest", "per_million_requests"), "AmazonApiGateway", {},
         usagetype=_u(r"ApiGatewayRequest"), unit="1M requests", scale=1e6,
         note="first tier (first 333 million requests per month)"),
    # S3 Standard
    Spec(("s3", "standard", "gb_month"), "AmazonS3", {"productFamily": "Storage", "volumeType": "Standard"},
         usagetype=_u(r"TimedStorage-ByteHrs"), unit="GB-Mo", pl_units=("GB-Mo",),
         note="first tier (first 50 TB per month)"),
    Spec(("s3", "standard", "put_per_1k"), "AmazonS3", {"productFamily": "API Request"},
         usagetype=_u(r"Requests-Tier1"), unit="1K requests", scale=1e3,
         note="PUT, COPY, POST, LIST"),
    Spec(("s3", "standard", "get_per_10k"), "AmazonS3", {"productFamily": "API Request"},
         usagetype=_u(r"Requests-Tier2"), unit="10K requests", scale=1e4,
         note="GET, SELECT and all other requests"),
    # KMS
    Spec(("kms", "key_month"), "awskms", {},
         usagetype=_u(r"KMS-Keys"), unit="key-Mo", note="customer managed key; AWS managed keys are free"),
    Spec(("kms", "requests_per_10k"), "awskms", {},
         usagetype=_u(r"KMS-Requests"), unit="10K requests", scale=1e4),
    # WAF (web ACLs of AWS WAF, the awswaf offer)
    Spec(("waf", "web_acl_month"), "awswaf", {},
         usagetype=_u(r"WebACL(?:V2)?"), unit="web ACL-Mo"),
    Spec(("waf", "rule_month"), "awswaf", {},
         usagetype=_u(r"Rule(?:V2)?"), unit="rule-Mo"),
    Spec(("waf", "per_million_requests"), "awswaf", {},
         usagetype=_u(r"Request(?:V2)?(?:-Tier1)?"), unit="1M requests", scale=1e6),
]

# CloudFront is global: prices by edge-location group, not by region.
CLOUDFRONT_GROUPS = {"north_america": "US", "europe": "EU", "canada": "CA"}
CLOUDFRONT_SPECS: List[Spec] = []
for _key, _prefix in CLOUDFRONT_GROUPS.items():
    CLOUDFRONT_SPECS += [
        Spec(("cloudfront", "data_out_per_gb", _key), "AmazonCloudFront", {"productFamily": "Data Transfer"},
             usagetype=rf"^{_prefix}-DataTransfer-Out-Bytes$", unit="GB", pl_units=("GB",),
             note="first tier (first 10 TB per month)"),
        Spec(("cloudfront", "https_requests_per_10k", _key), "AmazonCloudFront", {"productFamily": "Request"},
             usagetype=rf"^{_prefix}-Requests-Tier2-HTTPS$", unit="10K requests", scale=1e4),
        Spec(("cloudfront", "http_requests_per_10k", _key), "AmazonCloudFront", {"productFamily": "Request"},
             usagetype=rf"^{_prefix}-Requests-Tier1$", unit="10K requests", scale=1e4),
    ]

# Filters sent for the two big per-region queries.
EC2_INSTANCE_FILTERS = {
    "productFamily": "Compute Instance",
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "marketoption": "OnDemand",
}
EC2_INSTANCE_ATTRS = {"licenseModel": "No License required", "operation": "RunInstances"}
RDS_INSTANCE_FILTERS = {"productFamily": "Database Instance"}  # + databaseEngine, regionCode
RDS_INSTANCE_ATTRS = {"licenseModel": "No license required"}  # + deploymentOption

RDS_STORAGE = {  # (our volume key) -> usagetype tail (Single-AZ; Multi-AZ has "Multi-AZ-")
    "gp2": r"GP2-Storage",
    "gp3": r"GP3-Storage",
    "io1": r"PIOPS-Storage",
    "io1_iops": r"PIOPS",
    "gp3_iops": r"GP3-PIOPS",
    "gp3_throughput": r"GP3-Throughput",
}
RDS_STORAGE_FAMILIES = ("Database Storage", "Provisioned IOPS", "Provisioned Throughput")
RDS_STORAGE_UNITS = {"gp2": "GB-Mo", "gp3": "GB-Mo", "io1": "GB-Mo", "io1_iops": "IOPS-Mo",
                     "gp3_iops": "IOPS-Mo", "gp3_throughput": "MiBps-Mo"}


def rds_storage_usagetype(volume: str, deployment: str) -> str:
    az = "Multi-AZ-" if deployment == "multi_az" else ""
    return _u(rf"RDS:{az}{RDS_STORAGE[volume]}")


def describe_source() -> dict:
    """The exact service codes and filters, for the file's header."""
    return {
        "api": "AWS Price List Query API, pricing.get_products (boto3.client('pricing', region_name='us-east-1')); "
               "the same products as the bulk offer files https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<ServiceCode>/current/<region>/index.json",
        "term": "OnDemand; for tiered prices the first tier that costs money (free allowances recorded as free_tier)",
        "region_filter": "TERM_MATCH regionCode=<region> on every regional query",
        "ec2_instances": {"serviceCode": "AmazonEC2", "filters": EC2_INSTANCE_FILTERS, "client_side": EC2_INSTANCE_ATTRS},
        "rds_instances": {"serviceCode": "AmazonRDS",
                          "filters": dict(RDS_INSTANCE_FILTERS, databaseEngine="PostgreSQL | MySQL | MariaDB"),
                          "client_side": dict(RDS_INSTANCE_ATTRS, deploymentOption="Single-AZ | Multi-AZ (not 'Multi-AZ (readable standbys)')")},
        "rds_storage": {"serviceCode": "AmazonRDS", "filters": {"productFamily": " | ".join(RDS_STORAGE_FAMILIES)},
                        "client_side": {"deploymentOption": "Single-AZ | Multi-AZ"},
                        "usagetype": {k: "<prefix>RDS:[Multi-AZ-]" + v for k, v in RDS_STORAGE.items()}},
        "entries": [
            {"path": ".".join(s.path), "serviceCode": s.service_code, "filters": s.filters,
             "usagetype": s.usagetype, **({"attrs": s.attrs} if s.attrs else {})}
            for s in SPECS + CLOUDFRONT_SPECS
        ],
    }


# --------------------------------------------------------------------------- parsing


class PriceError(Exception):
    pass


class AmbiguousPrice(PriceError):
    pass


def load_product(item) -> dict:
    """A PriceList element is a JSON string (FormatVersion aws_v1); accept parsed dicts too."""
    return json.loads(item) if isinstance(item, str) else item


def ondemand_dimensions(product: dict) -> List[dict]:
    dims: List[dict] = []
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        dims.extend(term.get("priceDimensions", {}).values())
    return dims


def _range(v: Optional[str], default: float) -> float:
    if v in (None, ""):
        return default
    return math.inf if str(v).lower() == "inf" else float(v)


def first_paid_tier(product: dict, pl_units: Iterable[str] = ()) -> Tuple[float, str, Optional[dict]]:
    """(USD price, price-list unit, free allowance) of the cheapest-range tier that costs money.

    Tiers are the OnDemand price dimensions ordered by beginRange. A $0 tier starting at 0 is a
    free allowance (DynamoDB storage's first 25 GB, KMS's first 20,000 requests, ...).
    """
    wanted = {u.lower() for u in pl_units}
    dims = [d for d in ondemand_dimensions(product) if "USD" in d.get("pricePerUnit", {})]
    if wanted:
        dims = [d for d in dims if d.get("unit", "").lower() in wanted]
    if not dims:
        raise PriceError(f"no USD OnDemand price dimension (units {sorted(wanted) or 'any'}) in sku {product.get('product', {}).get('sku')}")
    dims.sort(key=lambda d: _range(d.get("beginRange"), 0.0))
    free = None
    for d in dims:
        usd = float(d["pricePerUnit"]["USD"])
        if usd > 0:
            return usd, d.get("unit", ""), free
        begin, end = _range(d.get("beginRange"), 0.0), _range(d.get("endRange"), math.inf)
        if begin == 0 and end != math.inf:
            free = {"quantity": end, "unit": d.get("unit", "")}
    # every tier is free (for instance a free gateway endpoint)
    return 0.0, dims[0].get("unit", ""), free


def attrs_of(product: dict) -> dict:
    return product.get("product", {}).get("attributes", {})


def matches(product: dict, usagetype: Optional[str], attrs: Dict[str, str]) -> bool:
    a = attrs_of(product)
    if usagetype and not re.match(usagetype, a.get("usagetype", "")):
        return False
    for k, v in attrs.items():
        if a.get(k, "").lower() != v.lower():
            return False
    return True


def resolve(candidates: List[Tuple[float, str, Optional[dict], str]], what: str):
    """All candidates must agree on the price; else the entry is ambiguous."""
    if not candidates:
        raise PriceError(f"{what}: no matching product")
    prices = {round(c[0], 12) for c in candidates}
    if len(prices) > 1:
        detail = ", ".join(f"{c[3]}=${c[0]:g}" for c in candidates[:8])
        raise AmbiguousPrice(f"{what}: {len(prices)} different prices ({detail})")
    return candidates[0]


def clean_number(x: float) -> float:
    """Price list prices have 10 decimals; after scaling keep 12 significant digits."""
    if x == 0:
        return 0.0
    return float(f"{x:.12g}")


def entry(usd: float, unit: str, free: Optional[dict] = None, note: Optional[str] = None, scale: float = 1.0) -> dict:
    e = {"usd": clean_number(usd * scale), "unit": unit}
    if free:
        q = free["quantity"]
        e["free_tier"] = {"quantity": int(q) if float(q).is_integer() else q, "unit": free["unit"]}
    if note:
        e["note"] = note
    return e


def price_spec(products: List[dict], spec: Spec, what: str) -> dict:
    cands = []
    for p in products:
        if matches(p, spec.usagetype, spec.attrs):
            usd, unit, free = first_paid_tier(p, spec.pl_units)
            cands.append((usd, unit, free, p.get("product", {}).get("sku", "?")))
    usd, _unit, free, _sku = resolve(cands, what)
    return entry(usd, spec.unit, free, spec.note, spec.scale)


def price_by_attribute(products: List[dict], key_attr: str, wanted: Iterable[str],
                       attrs: Dict[str, str], unit: str, what: str,
                       errors: List[str]) -> Dict[str, dict]:
    """Instance-like products: one price per value of key_attr (instanceType)."""
    wanted = set(wanted)
    by_key: Dict[str, list] = {}
    for p in products:
        a = attrs_of(p)
        k = a.get(key_attr)
        if k not in wanted or not matches(p, None, attrs):
            continue
        try:
            usd, u, free = first_paid_tier(p, ("Hrs",))
        except PriceError as e:
            errors.append(f"{what} {k}: {e}")
            continue
        by_key.setdefault(k, []).append((usd, u, free, p.get("product", {}).get("sku", "?")))
    out = {}
    for k in sorted(by_key, key=sort_key):
        try:
            usd, _u, _f, _s = resolve(by_key[k], f"{what} {k}")
        except AmbiguousPrice as e:
            errors.append(str(e))
            continue
        out[k] = {"usd": clean_number(usd), "unit": unit}
    return out


_SIZE_ORDER = ["nano", "micro", "small", "medium", "large", "xlarge"]


def sort_key(instance: str):
    """t3.nano < t3.micro < ... < t3.xlarge < t3.2xlarge < t3.4xlarge."""
    head, _, size = instance.rpartition(".")
    if size in _SIZE_ORDER:
        rank = _SIZE_ORDER.index(size)
    else:
        m = re.match(r"(\d+)xlarge$", size)
        rank = len(_SIZE_ORDER) + (int(m.group(1)) if m else 999)
    return (head, rank)


def publication_dates(products: Iterable[dict]) -> List[str]:
    return [p["publicationDate"] for p in products if isinstance(p, dict) and p.get("publicationDate")]


# --------------------------------------------------------------------------- fetching


Fetcher = Callable[[str, Dict[str, str]], List[dict]]


class LiveFetcher:
    """GetProducts with TERM_MATCH filters, all pages, cached per query; optional dump."""

    def __init__(self, client=None, dump_dir: Optional[Path] = None):
        if client is None:
            import boto3  # only needed for live runs

            client = boto3.client("pricing", region_name="us-east-1")
        self.client = client
        self.dump_dir = dump_dir
        self.cache: Dict[str, List[dict]] = {}
        self.calls = 0

    def __call__(self, service_code: str, filters: Dict[str, str]) -> List[dict]:
        key = query_key(service_code, filters)
        if key in self.cache:
            return self.cache[key]
        api_filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in sorted(filters.items())]
        items: List[dict] = []
        paginator = self.client.get_paginator("get_products")
        for page in paginator.paginate(ServiceCode=service_code, Filters=api_filters,
                                       FormatVersion="aws_v1", PaginationConfig={"PageSize": 100}):
            self.calls += 1
            items.extend(load_product(x) for x in page.get("PriceList", []))
        self.cache[key] = items
        if self.dump_dir:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            (self.dump_dir / (key_to_filename(key))).write_text(
                json.dumps({"ServiceCode": service_code, "Filters": filters, "PriceList": items}, indent=1))
        return items


class DumpFetcher:
    """Answers from a --dump directory (or any directory of such files): no network."""

    def __init__(self, dump_dir: Path):
        self.answers: Dict[str, List[dict]] = {}
        for f in sorted(Path(dump_dir).glob("*.json")):
            d = json.loads(f.read_text())
            self.answers[query_key(d["ServiceCode"], d["Filters"])] = [load_product(x) for x in d["PriceList"]]

    def __call__(self, service_code: str, filters: Dict[str, str]) -> List[dict]:
        return self.answers.get(query_key(service_code, filters), [])


def query_key(service_code: str, filters: Dict[str, str]) -> str:
    return service_code + "|" + "|".join(f"{k}={v}" for k, v in sorted(filters.items()))


def key_to_filename(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", key)[:200] + ".json"


# --------------------------------------------------------------------------- building


def set_path(d: dict, path: Tuple[str, ...], value) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def build_region(fetch: Fetcher, region: str, services: Iterable[str], errors: List[str],
                 dates: List[str]) -> dict:
    services = set(services)
    out: dict = {}
    rf = {"regionCode": region}

    if "ec2" in services:
        prods = fetch("AmazonEC2", dict(EC2_INSTANCE_FILTERS, **rf))
        dates += publication_dates(prods)
        inst = price_by_attribute(prods, "instanceType", EC2_TYPES, EC2_INSTANCE_ATTRS, "Hrs",
                                  f"{region} ec2", errors)
        if inst:
            out["ec2"] = {"instances": inst}

    if "rds" in services:
        rds: dict = {}
        for eng, engine_name in RDS_ENGINES.items():
            prods = fetch("AmazonRDS", dict(RDS_INSTANCE_FILTERS, databaseEngine=engine_name, **rf))
            dates += publication_dates(prods)
            for dep, dep_name in RDS_DEPLOYMENTS.items():
                inst = price_by_attribute(prods, "instanceType", RDS_CLASSES,
                                          dict(RDS_INSTANCE_ATTRS, deploymentOption=dep_name), "Hrs",
                                          f"{region} rds {eng} {dep}", errors)
                if inst:
                    set_path(rds, ("instances", eng, dep), inst)
        storage_prods: List[dict] = []  # storage, IOPS and throughput products, narrowed by usagetype
        for family in RDS_STORAGE_FAMILIES:
            storage_prods += fetch("AmazonRDS", dict(productFamily=family, **rf))
        for dep in RDS_DEPLOYMENTS:
            for vol, unit in RDS_STORAGE_UNITS.items():
                spec = Spec(("rds", "storage", dep, vol), "AmazonRDS", {},
                            usagetype=rds_storage_usagetype(vol, dep), unit=unit,
                            attrs={"deploymentOption": RDS_DEPLOYMENTS[dep]})
                try:
                    set_path(rds, ("storage", dep, vol), price_spec(storage_prods, spec, f"{region} rds storage {dep} {vol}"))
                except PriceError as e:
                    errors.append(str(e))
        if rds:
            out["rds"] = rds

    for spec in SPECS:
        if spec.path[0] not in services:
            continue
        prods = fetch(spec.service_code, dict(spec.filters, **rf))
        dates += publication_dates(prods)
        try:
            set_path(out, spec.path, price_spec(prods, spec, f"{region} {'.'.join(spec.path)}"))
        except PriceError as e:
            errors.append(str(e))

    if "vpc" in services and "vpc" in out:
        out["vpc"]["gateway_endpoint"] = {
            "usd": 0.0, "unit": "Hrs",
            "note": "gateway endpoints (S3, DynamoDB) have no hourly or data processing charge"}
    return out


def build_cloudfront(fetch: Fetcher, errors: List[str], dates: List[str]) -> dict:
    cf: dict = {}
    for spec in CLOUDFRONT_SPECS:
        prods = fetch(spec.service_code, dict(spec.filters))
        dates += publication_dates(prods)
        try:
            set_path(cf, spec.path[1:], price_spec(prods, spec, ".".join(spec.path)))
        except PriceError as e:
            errors.append(str(e))
    return cf


def build_live_table(fetch: Fetcher, regions: List[str], services: List[str]) -> Tuple[dict, List[str], List[str]]:
    """{"regions": {...}, "global": {"cloudfront": ...}}, errors, publication dates."""
    errors: List[str] = []
    dates: List[str] = []
    table: dict = {"regions": {}, "global": {}}
    for r in regions:
        if not priced_by_this_api(r):
            continue
        got = build_region(fetch, r, services, errors, dates)
        if got:
            table["regions"][r] = got
    if "cloudfront" in services:
        table["global"]["cloudfront"] = build_cloudfront(fetch, errors, dates)
    return table, errors, dates


# --------------------------------------------------------------------------- comparing


def flatten(d, prefix: Tuple[str, ...] = ()) -> Dict[Tuple[str, ...], dict]:
    """Every price entry (a dict with "usd") by its path."""
    out = {}
    if isinstance(d, dict):
        if "usd" in d and "unit" in d:
            out[prefix] = d
        else:
            for k, v in d.items():
                out.update(flatten(v, prefix + (k,)))
    return out


def diff_tables(bundled: dict, live: dict, regions: Iterable[str], services: Iterable[str]) -> List[str]:
    """Human-readable differences of prices (and units) between two tables, limited to the scope."""
    regions, services = set(regions), set(services)

    def scoped(t):
        flat = {}
        for r, body in t.get("regions", {}).items():
            if r in regions:
                for p, e in flatten(body, ("regions", r)).items():
                    if p[2] in services:
                        flat[p] = e
        for g, body in t.get("global", {}).items():
            if g in services and g != "cognito":
                flat.update(flatten(body, ("global", g)))
        return flat

    a, b = scoped(bundled), scoped(live)
    lines = []
    for p in sorted(set(a) | set(b)):
        name = ".".join(p[1:])
        if p not in b:
            lines.append(f"- {name}: {a[p]['usd']} {a[p]['unit']} in the file, not found live")
        elif p not in a:
            lines.append(f"+ {name}: live {b[p]['usd']} {b[p]['unit']}, not in the file")
        elif a[p]["unit"] != b[p]["unit"] or not math.isclose(a[p]["usd"], b[p]["usd"], rel_tol=1e-9, abs_tol=1e-12):
            lines.append(f"~ {name}: file {a[p]['usd']} {a[p]['unit']} -> live {b[p]['usd']} {b[p]['unit']}")
    return lines


# --------------------------------------------------------------------------- the file


def validate(doc: dict, table_regions: List[str]) -> List[str]:
    """Structural problems of a prices.json document (empty list = fine)."""
    problems = []
    for k in ("as_of", "source", "currency", "hours_per_month", "provenance", "missing_regions", "regions"):
        if k not in doc:
            problems.append(f"missing header field {k!r}")
    if doc.get("currency") != "USD":
        problems.append("currency must be USD")
    if doc.get("hours_per_month") != HOURS_PER_MONTH:
        problems.append(f"hours_per_month must be {HOURS_PER_MONTH}")
    try:
        _dt.date.fromisoformat(str(doc.get("as_of")))
    except ValueError:
        problems.append("as_of must be an ISO date")
    for r, body in doc.get("regions", {}).items():
        if r not in table_regions:
            problems.append(f"region {r} is not in the REGIONS table")
        for svc in body:
            if svc not in SERVICE_KEYS:
                problems.append(f"{r}: unknown service key {svc!r}")
            if r in doc.get("missing_regions", {}).get(svc, []):
                problems.append(f"{r}: {svc} both priced and listed as missing")
            if svc not in doc.get("provenance", {}):
                problems.append(f"{svc}: no provenance")
    for p, e in flatten(doc.get("regions", {})).items():
        if not isinstance(e.get("usd"), (int, float)) or e["usd"] < 0 or not e.get("unit"):
            problems.append(f"{'.'.join(p)}: bad entry {e}")
    for p, e in flatten(doc.get("global", {})).items():
        if not isinstance(e.get("usd"), (int, float)) or e["usd"] < 0 or not e.get("unit"):
            problems.append(f"global.{'.'.join(p)}: bad entry {e}")
    for svc, missing in doc.get("missing_regions", {}).items():
        if svc not in SERVICE_KEYS:
            problems.append(f"missing_regions: unknown service key {svc!r}")
            continue
        covered = {r for r, body in doc.get("regions", {}).items() if svc in body}
        for r in table_regions:
            if r not in covered and r not in missing:
                problems.append(f"{svc}: region {r} neither priced nor listed as missing")
        for r in missing:
            if r not in table_regions:
                problems.append(f"missing_regions.{svc}: {r} is not in the REGIONS table")
    for svc in SERVICE_KEYS:
        if svc not in doc.get("missing_regions", {}):
            problems.append(f"missing_regions has no list for {svc}")
    return problems


def missing_by_service(regions_body: dict, table_regions: List[str]) -> Dict[str, List[str]]:
    return {svc: [r for r in table_regions if svc not in regions_body.get(r, {})] for svc in SERVICE_KEYS}


def merge_live(bundled: dict, live: dict, regions: List[str], services: List[str],
               as_of: str, table_regions: List[str]) -> dict:
    """The bundled document with the fetched scope replaced by live prices."""
    doc = json.loads(json.dumps(bundled)) if bundled else {}
    doc["schema_version"] = SCHEMA_VERSION
    doc["as_of"] = as_of
    doc["currency"] = "USD"
    doc["hours_per_month"] = HOURS_PER_MONTH
    doc["source"] = describe_source()
    doc.setdefault("regions", {})
    doc.setdefault("global", {})
    doc.setdefault("provenance", {})
    for r in regions:
        body = doc["regions"].setdefault(r, {})
        for svc in services:
            if svc in SERVICE_KEYS:
                prev = body.pop(svc, None)
                if svc in live["regions"].get(r, {}):
                    body[svc] = keep_notes(prev, live["regions"][r][svc])
        if not body:
            del doc["regions"][r]
    if "cloudfront" in services and live["global"].get("cloudfront"):
        cf = doc["global"].setdefault("cloudfront", {})
        for k in ("data_out_per_gb", "https_requests_per_10k", "http_requests_per_10k"):
            cf.pop(k, None)
        cf.update(live["global"]["cloudfront"])
    stamp = f"exact: AWS Price List Query API, fetched {_dt.date.today().isoformat()} by scripts/refresh-prices.py --write"
    for svc in services:
        if svc in SERVICE_KEYS or svc == "cloudfront":
            prev = doc["provenance"].get(svc)
            scope = "all regions it prices" if set(regions) >= {r for r in table_regions if priced_by_this_api(r)} \
                else "regions " + ", ".join(regions)
            doc["provenance"][svc] = {"source": stamp, "scope": scope, "confidence": "exact"}
            if isinstance(prev, dict) and prev.get("source") != stamp:
                doc["provenance"][svc]["previous"] = prev.get("source")
    doc["missing_regions"] = missing_by_service(doc["regions"], table_regions)
    doc["regions"] = {r: doc["regions"][r] for r in table_regions if r in doc["regions"]}
    return doc


def keep_notes(prev, new):
    """New prices, plus the hand-written parts of the old entry that the API does not give
    (notes, free-tier descriptions): non-price keys absent from the new entry are kept."""
    if not isinstance(prev, dict) or not isinstance(new, dict):
        return new
    out = dict(new)
    for k, v in prev.items():
        if k in out:
            if isinstance(v, dict) and isinstance(out[k], dict) and not ("usd" in v and "usd" in out[k]):
                out[k] = keep_notes(v, out[k])
            elif isinstance(v, dict) and "usd" in v and isinstance(out[k], dict) and "note" in v and "note" not in out[k]:
                out[k] = dict(out[k], note=v["note"])
        elif not (isinstance(v, dict) and ("usd" in v or flatten(v))):
            out[k] = v  # a note or a free-tier description, not a price the API no longer has
    return out


def dump_json(doc: dict) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- command line


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare the live API with the bundled file; exit 1 on differences")
    mode.add_argument("--write", action="store_true", help="rewrite the bundled file from the live API")
    mode.add_argument("--validate", action="store_true", help="check the bundled file's structure (no network)")
    ap.add_argument("--file", type=Path, default=PRICES_FILE, help="the prices file (default pricing/prices.json)")
    ap.add_argument("--regions", help="comma-separated region codes (default: every region of src/stack/limits.rs)")
    ap.add_argument("--services", help="comma-separated service keys (default: all): " + ",".join(SERVICE_KEYS + ["cloudfront"]))
    ap.add_argument("--dump", type=Path, help="save every raw GetProducts answer in this directory")
    ap.add_argument("--from-dump", type=Path, help="answer queries from a --dump directory instead of the API")
    return ap.parse_args(argv)


def main(argv=None, fetcher: Optional[Fetcher] = None, out=sys.stdout) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    table_regions = regions_from_rules()
    bundled = json.loads(args.file.read_text()) if args.file.exists() else {}

    if args.validate:
        problems = validate(bundled, table_regions)
        for p in problems:
            print(f"invalid: {p}", file=out)
        if not problems:
            n = len(flatten(bundled.get("regions", {}))) + len(flatten(bundled.get("global", {})))
            print(f"{args.file}: valid, {n} prices, {len(bundled.get('regions', {}))} regions with prices", file=out)
        return 1 if problems else 0

    regions = args.regions.split(",") if args.regions else table_regions
    unknown = [r for r in regions if r not in table_regions]
    if unknown:
        print(f"not in the REGIONS table of {RULES_FILE.relative_to(REPO)}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    services = args.services.split(",") if args.services else SERVICE_KEYS + ["cloudfront"]
    bad = [s for s in services if s not in SERVICE_KEYS + ["cloudfront"]]
    if bad:
        print(f"unknown service keys: {', '.join(bad)}", file=sys.stderr)
        return 2

    try:
        if fetcher is None:
            fetcher = DumpFetcher(args.from_dump) if args.from_dump else LiveFetcher(dump_dir=args.dump)
        live, errors, dates = build_live_table(fetcher, regions, services)
    except ImportError as e:
        print(f"cannot reach the Price List API: {e} (pip install boto3)", file=sys.stderr)
        return 2
    except Exception as e:  # botocore: no credentials, no network, throttling, access denied
        if type(e).__module__.split(".")[0] not in ("botocore", "boto3", "urllib3"):
            raise
        print(f"cannot reach the Price List API: {type(e).__name__}: {e}", file=sys.stderr)
        print("it needs network access to api.pricing.us-east-1.amazonaws.com and credentials allowed pricing:GetProducts",
              file=sys.stderr)
        return 2
    for e in errors:
        print(f"warning: {e}", file=sys.stderr)
    skipped = [r for r in regions if not priced_by_this_api(r)]
    if skipped:
        print(f"note: {', '.join(skipped)} are priced in CNY by the aws-cn Price List endpoint; not fetched", file=sys.stderr)

    if args.check:
        lines = diff_tables(bundled, live, regions, services)
        for line in lines:
            print(line, file=out)
        print(f"{len(lines)} difference(s) between {args.file.name} (as_of {bundled.get('as_of')}) and the live Price List"
              + (f" (published {max(dates)[:10]})" if dates else ""), file=out)
        return 1 if lines else 0

    as_of = max(dates)[:10] if dates else _dt.date.today().isoformat()
    doc = merge_live(bundled, live, regions, services, as_of, table_regions)
    problems = validate(doc, table_regions)
    if problems:
        for p in problems:
            print(f"invalid after refresh: {p}", file=sys.stderr)
        return 1
    args.file.write_text(dump_json(doc))
    print(f"wrote {args.file} (as_of {as_of}, {len(flatten(doc['regions']))} regional prices)", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
