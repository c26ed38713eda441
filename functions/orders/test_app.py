"""Unit tests of the orders function against moto's DynamoDB (in process).
Never imported by the function itself. Run: python3 -m pytest functions -q"""
import base64
import decimal
import json
import logging

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws

from conftest import load_app

app = load_app("orders")
TABLE = "webapp-orders"


class Ctx:
    aws_request_id = "req-1"


@pytest.fixture
def table(aws_env, monkeypatch):
    monkeypatch.setenv("TABLE_NAME", TABLE)
    monkeypatch.delenv("ORDER_RETENTION_DAYS", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb")
        ddb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "status")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by_status", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                   {"AttributeName": "sk", "KeyType": "RANGE"}]}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        app._table = None
        yield boto3.resource("dynamodb").Table(TABLE)
        app._table = None


def call(method, path, body=None, query=None, raw=None, headers=None, b64=False):
    if raw is None and body is not None:
        raw = json.dumps(body, ensure_ascii=False)
    if b64 and raw is not None:
        raw = base64.b64encode(raw.encode()).decode()
    event = {"httpMethod": method, "path": path, "resource": path, "body": raw, "isBase64Encoded": b64,
             "headers": headers if headers is not None else {"Content-Type": "application/json"},
             "queryStringParameters": query, "pathParameters": None}
    r = app.handler(event, Ctx())
    assert set(r) >= {"statusCode", "headers", "body"} and isinstance(r["body"], str)
    json.dumps(r)  # what the runtime does with the answer: must not raise
    return r["statusCode"], (json.loads(r["body"]) if r["body"] else None), r["headers"]


ORDER = {"customer": "ada@example.com", "items": [{"sku": "BOOK-1", "quantity": 2, "price": 19.99}]}


def test_post_without_keys_generates_them(table):
    status, body, headers = call("POST", "/api/orders", ORDER)
    assert status == 201, body
    assert body["status"] == "pending" and body["customer"] == "ada@example.com"
    assert headers["Location"] == f"/api/orders/{body['id']}"
    assert "pk" not in body and "sk" not in body
    item = table.get_item(Key={"pk": f"ORDER#{body['id']}", "sk": body["created_at"]})["Item"]
    assert item["sk"].endswith("Z") and item["status"] == "pending"


def test_numbers_round_trip_as_json_numbers(table):
    status, body, _ = call("POST", "/api/orders", {**ORDER, "items": [
        {"sku": "A", "quantity": 3, "price": 0.1}, {"sku": "B", "quantity": 1, "price": 5}]})
    assert status == 201
    assert body["total"] == 5.3 and body["items"][0]["price"] == 0.1 and body["items"][1]["price"] == 5
    stored = table.get_item(Key={"pk": f"ORDER#{body['id']}", "sk": body["created_at"]})["Item"]
    assert isinstance(stored["total"], decimal.Decimal) and stored["total"] == decimal.Decimal("5.3")
    # a list containing numeric attributes does not break (Decimal is not JSON serializable)
    status, listed, _ = call("GET", "/api/orders")
    assert status == 200 and listed["orders"][0]["total"] == 5.3
    assert isinstance(listed["orders"][0]["items"][0]["quantity"], int)
    status, one, _ = call("GET", f"/api/orders/{body['id']}")
    assert status == 200 and one == body


def test_nested_and_non_ascii_round_trip(table):
    meta = {"gift": True, "wrap": {"paper": "étoile ✨", "layers": [1, 2.5, {"deep": ["ü", None]}]},
            "note_fr": "à livrer lundi", "empty": {}, "big": 12345678901234567890, "huge": 10 ** 40}
    status, body, _ = call("POST", "/api/orders", {**ORDER, "customer": "Zoë 山田", "note": "Grüße 👋",
                                                   "metadata": meta, "currency": "EUR"})
    assert status == 201, body
    status, got, _ = call("GET", f"/api/orders/{body['id']}")
    assert status == 200
    assert got["metadata"] == meta and got["customer"] == "Zoë 山田" and got["note"] == "Grüße 👋"
    assert got["currency"] == "EUR"


def test_base64_body(table):
    status, body, _ = call("POST", "/orders", ORDER, b64=True)
    assert status == 201 and body["items"][0]["sku"] == "BOOK-1"


@pytest.mark.parametrize("raw,error", [
    ("{not json", "invalid_json"), ("", "invalid_json"), ("[1, 2]", "invalid_json"), ('"x"', "invalid_json"),
    ('{"customer": "a", "items": [{"sku": "x", "quantity": 1, "price": NaN}]}', "invalid_json"),
])
def test_malformed_json_is_400(table, raw, error):
    status, body, _ = call("POST", "/api/orders", raw=raw)
    assert status == 400 and body["error"] == error and body["message"]


@pytest.mark.parametrize("order,error", [
    ({"items": ORDER["items"]}, "missing_field"),
    ({"customer": "a"}, "missing_field"),
    ({**ORDER, "pk": "ORDER#mine"}, "invalid_field"),
    ({**ORDER, "customer": "  "}, "invalid_field"),
    ({**ORDER, "customer": 7}, "invalid_field"),
    ({**ORDER, "items": []}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 0, "price": 1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1.5, "price": 1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": True, "price": 1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1, "price": -1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1, "price": "1"}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1}]}, "missing_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1, "price": 1, "x": 1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a" * 65, "quantity": 1, "price": 1}]}, "invalid_field"),
    ({**ORDER, "items": [{"sku": "a", "quantity": 1, "price": 1}] * 101}, "invalid_field"),
    ({**ORDER, "currency": "euro"}, "invalid_field"),
    ({**ORDER, "metadata": [1]}, "invalid_field"),
    ({**ORDER, "metadata": {"n": 10 ** 126}}, "invalid_field"),
    ({**ORDER, "metadata": {"n": 12345678901234567890123456789012345678901}}, "invalid_field"),
    ({**ORDER, "metadata": {"": 1}}, "invalid_field"),
])
def test_invalid_orders_are_400(table, order, error):
    status, body, _ = call("POST", "/api/orders", order)
    assert status == 400, body
    assert body["error"] == error
    assert table.scan()["Count"] == 0


def test_too_large_is_413(table):
    status, body, _ = call("POST", "/api/orders", {**ORDER, "note": "x" * (70 * 1024)})
    assert status == 413 and body["error"] == "payload_too_large"


def test_wrong_content_type_is_415(table):
    status, body, _ = call("POST", "/api/orders", ORDER, headers={"content-type": "text/plain"})
    assert status == 415


def test_unknown_order_and_route_are_404(table):
    assert call("GET", "/api/orders/7b0f6f1e-6f6c-4c39-9f7e-000000000000")[0] == 404
    assert call("GET", "/api/orders/not-a-uuid")[0] == 404
    status, body, _ = call("GET", "/api/nothing")
    assert status == 404 and body["error"] == "not_found"


def test_wrong_method_is_405(table):
    status, body, headers = call("DELETE", "/api/orders")
    assert status == 405 and headers["Allow"] == "GET, POST" and body["error"] == "method_not_allowed"
    assert call("PUT", "/api/orders/x")[0] == 405


def test_pagination(table):
    ids = {call("POST", "/api/orders", {**ORDER, "customer": f"c{i}"})[1]["id"] for i in range(7)}
    seen, token, pages = [], None, 0
    while True:
        status, page, _ = call("GET", "/api/orders", query={"limit": "3", **({"next_token": token} if token else {})})
        assert status == 200 and len(page["orders"]) <= 3
        seen += [o["id"] for o in page["orders"]]
        pages += 1
        token = page["next_token"]
        if not token:
            break
    assert sorted(seen) == sorted(ids) and pages >= 3


def test_list_by_status_newest_first(table):
    first = call("POST", "/api/orders", ORDER)[1]
    second = call("POST", "/api/orders", ORDER)[1]
    status, page, _ = call("GET", "/api/orders", query={"status": "pending", "limit": "1"})
    assert status == 200 and [o["id"] for o in page["orders"]] == [second["id"]]
    status, page, _ = call("GET", "/api/orders", query={"status": "pending", "next_token": page["next_token"]})
    assert [o["id"] for o in page["orders"]] == [first["id"]]


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"status": "lost"},
                                   {"next_token": "!!!"}, {"next_token": "e30"},
                                   {"next_token": base64.urlsafe_b64encode(b'{"pk": 1, "sk": "x"}').decode()}])
def test_bad_list_parameters_are_400(table, query):
    status, body, _ = call("GET", "/api/orders", query=query)
    assert status == 400 and body["error"] in ("invalid_parameter", "invalid_token")


def test_internal_errors_leak_nothing(table, monkeypatch, caplog):
    class Broken:
        def put_item(self, **kw):
            raise RuntimeError("secret internals: arn:aws:dynamodb:us-east-1:123456789012:table/x")
    monkeypatch.setattr(app, "_table", Broken())
    status, body, _ = call("POST", "/api/orders", ORDER)
    assert status == 500 and body["error"] == "internal" and "req-1" in body["message"]
    assert "arn:" not in json.dumps(body) and "RuntimeError" not in json.dumps(body)


def test_missing_table_name_is_500(aws_env, monkeypatch):
    monkeypatch.delenv("TABLE_NAME", raising=False)
    app._table = None
    status, body, _ = call("GET", "/api/orders")
    assert status == 500 and body["error"] == "internal"


def test_retention_sets_ttl(table, monkeypatch):
    monkeypatch.setenv("ORDER_RETENTION_DAYS", "30")
    status, body, _ = call("POST", "/api/orders", ORDER)
    assert status == 201 and isinstance(body["expires_at"], int)


# -- the stream -----------------------------------------------------------------
def record(name, seq, pk="ORDER#1", new=None, old=None, ttl=False):
    s = TypeSerializer()
    r = {"eventID": seq, "eventName": name, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
         "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/x",
         "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": "2026-01-01T00:00:00.000000Z"}},
                      "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
    if new is not None:
        r["dynamodb"]["NewImage"] = {k: s.serialize(v) for k, v in new.items()}
    if old is not None:
        r["dynamodb"]["OldImage"] = {k: s.serialize(v) for k, v in old.items()}
    if ttl:
        r["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return r


def test_stream_counts_inserts_and_survives_modify_remove(caplog):
    caplog.set_level(logging.INFO, logger="orders")
    order = {"pk": "ORDER#1", "id": "1", "total": decimal.Decimal("39.98"), "currency": "USD",
             "metadata": {"n": decimal.Decimal("1.5")}}
    out = app.handler({"Records": [record("INSERT", "100", new=order), record("INSERT", "101", new=order),
                                   record("MODIFY", "102", new=order, old=order),
                                   record("REMOVE", "103", old=order), record("REMOVE", "104", ttl=True)]}, Ctx())
    assert out == {"batchItemFailures": []}
    line = json.loads([r.getMessage() for r in caplog.records if "stream_batch" in r.getMessage()][-1])
    assert line["counts"] == {"INSERT": 2, "MODIFY": 1, "REMOVE": 2, "expired": 1}
    assert line["new_orders"][0] == {"id": "1", "total": 39.98, "currency": "USD"}


def test_stream_reports_the_first_bad_record_and_the_rest():
    good, bad = record("INSERT", "200", new={"pk": "ORDER#1"}), record("INSERT", "201")
    del bad["dynamodb"]["Keys"]
    out = app.handler({"Records": [good, bad, record("MODIFY", "202")]}, Ctx())
    assert out == {"batchItemFailures": [{"itemIdentifier": "201"}, {"itemIdentifier": "202"}]}
    out = app.handler({"Records": [record("TRUNCATE", "300")]}, Ctx())
    assert out == {"batchItemFailures": [{"itemIdentifier": "300"}]}
    assert app.handler({"Records": []}, Ctx()) == {"batchItemFailures": []}
