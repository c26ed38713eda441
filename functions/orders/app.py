"""Orders microservice: the REST API's /api/orders routes (API Gateway REST
proxy events) and the consumer of the orders table's DynamoDB stream.

Routes (the `/api` prefix is optional, so the function also serves an API
whose routes are /orders):

    POST /api/orders               create an order            201, 400, 413, 415
    GET  /api/orders               list orders                200, 400
         ?limit=1..100 (default 20) &next_token=<opaque> &status=<status>
    GET  /api/orders/{id}          one order                  200, 404
    other methods on those paths                              405 (with Allow)
    any other path                                            404

Every answer is JSON; errors are {"error": <code>, "message": <text>} and a
500 never carries internals (the details go to the log, with the request id).

Table layout (TABLE_NAME: partition key `pk`, sort key `sk`, both strings;
GSI `by_status` on `status` / `sk`; TTL attribute `expires_at`):

    pk  = "ORDER#<uuid4>"                 one item per order
    sk  = created-at, ISO 8601 UTC with microseconds ("2026-05-01T12:00:00.123456Z"),
          so `by_status` lists the orders of a status by age
    id, status ("pending"), customer, items [{sku, quantity, price}], total,
    currency, note?, metadata?, created_at (= sk), expires_at? (epoch seconds,
    only when ORDER_RETENTION_DAYS is set: DynamoDB's TTL then deletes the order)

Numbers are Decimal both ways: floats in the request become Decimal (DynamoDB
rejects float), and the Decimals boto3 returns are written to JSON as int or
float. The list is paginated with an opaque `next_token` (the table's
LastEvaluatedKey, base64url JSON, validated when it comes back).

The stream handler (events with "Records") counts INSERT / MODIFY / REMOVE
(REMOVE by TTL counted as expired), logs one line per batch with the new order
ids for PAYMENTS_URL, and answers {"batchItemFailures": [...]}, the shape
Lambda reads when the mapping has FunctionResponseTypes ReportBatchItemFailures:
on the first record it cannot process it stops and reports that record and
every later one (Lambda retries a stream batch from the lowest failed record).

Environment: TABLE_NAME (required), PAYMENTS_URL (where new orders go),
ORDER_RETENTION_DAYS (optional TTL), LOG_LEVEL (default INFO).
"""

import base64
import binascii
import datetime
import decimal
import json
import logging
import os
import re
import uuid

import boto3
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("orders")
log.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

MAX_BODY_BYTES = 64 * 1024          # far below DynamoDB's 400 KB item limit
MAX_ITEMS = 100
MAX_QUANTITY = 10_000
MAX_PRICE = decimal.Decimal("1000000000")
MAX_DEPTH = 16                      # DynamoDB allows 32 levels; metadata gets 16
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")
FIELDS = {"customer", "items", "currency", "note", "metadata"}
ITEM_FIELDS = {"sku", "quantity", "price"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COLLECTION = re.compile(r"^(?:/api)?/orders/?$")
_ONE = re.compile(r"^(?:/api)?/orders/([^/]+)/?$")
_EXACT = decimal.Context(prec=200, Emax=999999, Emin=-999999)
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
              "InternalServerError", "ServiceUnavailable"}

_table = None


def table():
    """The orders table (one resource per container, created on first use)."""
    global _table
    if _table is None:
        name = os.environ.get("TABLE_NAME")
        if not name:
            raise RuntimeError("TABLE_NAME is not set")
        _table = boto3.resource("dynamodb").Table(name)
    return _table


class HttpError(Exception):
    def __init__(self, status, error, message, headers=None):
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers or {}


# -- JSON ---------------------------------------------------------------------
def _json_default(value):
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value):
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def response(status, body, headers=None):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store",
                    **(headers or {})},
        "body": dumps(body),
        "isBase64Encoded": False,
    }


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_body(event):
    raw = event.get("body")
    if raw is None or raw == "":
        raise HttpError(400, "invalid_json", "the request body must be a JSON object")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "invalid_json", "the request body is not valid base64")
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise HttpError(413, "payload_too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    ctype = _header(event, "content-type")
    if ctype and not re.match(r"^\s*application/([\w.+-]*\+)?json\b", ctype, re.I):
        raise HttpError(415, "unsupported_media_type", "send the order as application/json")
    try:
        value = json.loads(data.decode("utf-8"), parse_float=decimal.Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise HttpError(400, "invalid_json", f"the request body is not valid JSON: {_short(e)}")
    if not isinstance(value, dict):
        raise HttpError(400, "invalid_json", "the request body must be a JSON object")
    return value


def _short(e):
    return str(e).split("\n")[0][:200]


def _header(event, name):
    for k, v in (event.get("headers") or {}).items():
        if k.lower() == name:
            return v
    return None


# -- validation -----------------------------------------------------------------
def _number(value, path):
    """A JSON number as the Decimal DynamoDB stores (38 digits, |x| < 1e126)."""
    if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
        raise HttpError(400, "invalid_field", f"{path} must be a number")
    d = decimal.Decimal(value)
    if not d.is_finite() or (d != 0 and not (decimal.Decimal("1e-130") <= abs(d) < decimal.Decimal("1e126"))):
        raise HttpError(400, "invalid_field", f"{path} is out of range")
    d = _EXACT.normalize(d)  # trailing zeros off, never rounded
    if len(d.as_tuple().digits) > 38:
        raise HttpError(400, "invalid_field", f"{path} has more than 38 significant digits")
    return d


def _text(value, path, max_len, required=True):
    if not isinstance(value, str):
        raise HttpError(400, "invalid_field", f"{path} must be a string")
    value = value.strip()
    if required and not value:
        raise HttpError(400, "invalid_field", f"{path} must not be empty")
    if len(value) > max_len:
        raise HttpError(400, "invalid_field", f"{path} is longer than {max_len} characters")
    return value


def _free_json(value, path, depth=0):
    """Arbitrary JSON (metadata) in the form DynamoDB stores: numbers as Decimal."""
    if depth > MAX_DEPTH:
        raise HttpError(400, "invalid_field", f"{path} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, decimal.Decimal)):
        return _number(value, path)
    if isinstance(value, list):
        return [_free_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not k:
                raise HttpError(400, "invalid_field", f"{path} has an empty key")
            out[k] = _free_json(v, f"{path}.{k}", depth + 1)
        return out
    raise HttpError(400, "invalid_field", f"{path} has an unsupported value")


def validate_order(body):
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise HttpError(400, "invalid_field", f"unknown field(s): {', '.join(unknown)}")
    missing = [f for f in ("customer", "items") if f not in body]
    if missing:
        raise HttpError(400, "missing_field", f"missing required field(s): {', '.join(missing)}")
    order = {"customer": _text(body["customer"], "customer", 200)}
    items = body["items"]
    if not isinstance(items, list) or not items:
        raise HttpError(400, "invalid_field", "items must be a non-empty array")
    if len(items) > MAX_ITEMS:
        raise HttpError(400, "invalid_field", f"items has more than {MAX_ITEMS} entries")
    clean, total = [], decimal.Decimal(0)
    for i, item in enumerate(items):
        path = f"items[{i}]"
        if not isinstance(item, dict):
            raise HttpError(400, "invalid_field", f"{path} must be an object")
        unknown = sorted(set(item) - ITEM_FIELDS)
        if unknown:
            raise HttpError(400, "invalid_field", f"{path}: unknown field(s): {', '.join(unknown)}")
        for f in sorted(ITEM_FIELDS):
            if f not in item:
                raise HttpError(400, "missing_field", f"{path}.{f} is required")
        quantity = item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise HttpError(400, "invalid_field", f"{path}.quantity must be an integer from 1 to {MAX_QUANTITY}")
        price = _number(item["price"], f"{path}.price")
        if price < 0 or price > MAX_PRICE:
            raise HttpError(400, "invalid_field", f"{path}.price must be from 0 to {MAX_PRICE}")
        if price.as_tuple().exponent < -6:
            raise HttpError(400, "invalid_field", f"{path}.price has more than 6 decimal places")
        clean.append({"sku": _text(item["sku"], f"{path}.sku", 64), "quantity": quantity, "price": price})
        total += price * quantity
    order["items"] = clean
    order["total"] = total.normalize() if total else decimal.Decimal(0)
    currency = body.get("currency", "USD")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise HttpError(400, "invalid_field", "currency must be a three-letter ISO 4217 code such as USD")
    order["currency"] = currency
    if body.get("note") is not None:
        order["note"] = _text(body["note"], "note", 1000, required=False)
    if body.get("metadata") is not None:
        if not isinstance(body["metadata"], dict):
            raise HttpError(400, "invalid_field", "metadata must be an object")
        order["metadata"] = _free_json(body["metadata"], "metadata")
    return order


# -- representation -----------------------------------------------------------
PUBLIC = ("id", "status", "customer", "items", "total", "currency", "note", "metadata", "created_at",
          "expires_at")


def public(item):
    return {k: item[k] for k in PUBLIC if k in item}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- pagination tokens --------------------------------------------------------
def encode_token(key):
    return base64.urlsafe_b64encode(dumps(key).encode()).decode().rstrip("=")


def decode_token(token, allowed):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise HttpError(400, "invalid_token", "next_token is not a token this API issued")
    if (not isinstance(key, dict) or not key or set(key) - allowed
            or not all(isinstance(v, str) and v for v in key.values())
            or not {"pk", "sk"} <= set(key)):
        raise HttpError(400, "invalid_token", "next_token is not a token this API issued")
    return key


# -- routes -------------------------------------------------------------------
def create_order(event):
    order = validate_order(parse_body(event))
    now = _now()
    order_id = str(uuid.uuid4())
    item = {"pk": f"ORDER#{order_id}", "sk": _iso(now), "id": order_id, "status": "pending",
            "created_at": _iso(now), **order}
    days = os.environ.get("ORDER_RETENTION_DAYS")
    if days and days.isdigit() and int(days) > 0:
        item["expires_at"] = int((now + datetime.timedelta(days=int(days))).timestamp())
    table().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    return response(201, public(item), {"Location": f"/api/orders/{order_id}"})


def list_orders(event):
    q = event.get("queryStringParameters") or {}
    raw_limit = q.get("limit", str(DEFAULT_LIMIT))
    if not re.fullmatch(r"\d{1,3}", raw_limit or "") or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise HttpError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise HttpError(400, "invalid_parameter", f"status must be one of {', '.join(STATUSES)}")
    args = {"Limit": limit}
    allowed = {"pk", "sk", "status"} if status else {"pk", "sk"}
    if q.get("next_token"):
        args["ExclusiveStartKey"] = decode_token(q["next_token"], allowed)
    if status:
        # newest first, through the by_status index
        out = table().query(IndexName="by_status", KeyConditionExpression=Key("status").eq(status),
                            ScanIndexForward=False, **args)
    else:
        out = table().scan(FilterExpression=Attr("pk").begins_with("ORDER#"), **args)
    last = out.get("LastEvaluatedKey")
    return response(200, {"orders": [public(i) for i in out.get("Items", [])],
                          "next_token": encode_token(last) if last else None})


def get_order(order_id):
    try:
        order_id = str(uuid.UUID(order_id))
    except ValueError:
        raise HttpError(404, "not_found", "no such order")
    out = table().query(KeyConditionExpression=Key("pk").eq(f"ORDER#{order_id}"), Limit=1)
    items = out.get("Items", [])
    if not items:
        raise HttpError(404, "not_found", "no such order")
    return response(200, public(items[0]))


def route(event):
    method = (event.get("httpMethod") or "").upper()
    path = event.get("path") or "/"
    if _COLLECTION.match(path):
        if method == "GET":
            return list_orders(event)
        if method == "POST":
            return create_order(event)
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": "GET, POST"})
    m = _ONE.match(path)
    if m:
        if method == "GET":
            return get_order(m.group(1))
        raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": "GET"})
    raise HttpError(404, "not_found", f"no route for {method} {path}")


def on_http(event, context):
    request_id = getattr(context, "aws_request_id", "") or ""
    try:
        result = route(event)
    except HttpError as e:
        result = response(e.status, {"error": e.error, "message": e.message}, e.headers)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":  # a uuid4 collision: vanishingly rare
            result = response(409, {"error": "conflict", "message": "please retry"})
        elif code in _THROTTLED:
            log.warning(json.dumps({"event": "dynamodb_busy", "code": code, "request_id": request_id}))
            result = response(503, {"error": "unavailable", "message": "the service is busy, retry shortly"},
                              {"Retry-After": "1"})
        else:
            log.error(json.dumps({"event": "dynamodb_error", "code": code, "request_id": request_id,
                                  "message": _short(e)}))
            result = response(500, {"error": "internal", "message": f"internal error (request {request_id})"})
    except (BotoCoreError, Exception) as e:  # noqa: B902 - the last line of defence
        log.exception(json.dumps({"event": "unhandled", "type": type(e).__name__, "request_id": request_id}))
        result = response(500, {"error": "internal", "message": f"internal error (request {request_id})"})
    log.info(json.dumps({"event": "request", "method": event.get("httpMethod"), "path": event.get("path"),
                         "status": result["statusCode"], "request_id": request_id}))
    return result


# -- the stream ---------------------------------------------------------------
_deserializer = TypeDeserializer()


def _image(record, which):
    image = (record.get("dynamodb") or {}).get(which)
    return {k: _deserializer.deserialize(v) for k, v in image.items()} if image else None


def on_stream(records):
    counts = {"INSERT": 0, "MODIFY": 0, "REMOVE": 0, "expired": 0}
    new_orders, failures = [], []
    for n, record in enumerate(records):
        try:
            name = record["eventName"]
            if name not in ("INSERT", "MODIFY", "REMOVE"):
                raise ValueError(f"unknown eventName {name!r}")
            keys = _image(record, "Keys")
            if not keys or "pk" not in keys:
                raise ValueError("record without the table's keys")
            counts[name] += 1
            if name == "INSERT" and str(keys["pk"]).startswith("ORDER#"):
                new = _image(record, "NewImage") or {}
                new_orders.append({"id": new.get("id") or str(keys["pk"])[6:], "total": new.get("total"),
                                   "currency": new.get("currency")})
            if name == "REMOVE" and (record.get("userIdentity") or {}).get("principalId") == "dynamodb.amazonaws.com":
                counts["expired"] += 1
        except Exception as e:  # noqa: B902 - reported to Lambda, which retries from here
            log.error(json.dumps({"event": "stream_record_failed", "index": n, "type": type(e).__name__,
                                  "message": _short(e)}))
            failures = [{"itemIdentifier": (r.get("dynamodb") or {}).get("SequenceNumber", "")}
                        for r in records[n:]]
            break
    log.info(dumps({"event": "stream_batch", "records": len(records), "counts": counts,
                    "new_orders": new_orders, "payments": os.environ.get("PAYMENTS_URL"),
                    "failed": len(failures)}))
    return {"batchItemFailures": failures}


def handler(event, context):
    if isinstance(event, dict) and "Records" in event:
        return on_stream(event["Records"] or [])
    return on_http(event if isinstance(event, dict) else {}, context)
