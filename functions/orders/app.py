"""Orders microservice: the REST API's /orders routes, and the consumer of
the orders table's stream.

Configuration comes from the environment set by infra (stack.yaml):
TABLE_NAME (the orders table) and PAYMENTS_URL (an external service).
"""

import json
import os
import uuid

import boto3

_table = None


def table():
    global _table
    if _table is None and os.environ.get("TABLE_NAME"):
        _table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    return _table


def response(status, body):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def on_stream(records):
    # New orders would be sent to the payments service here.
    created = [r for r in records if r.get("eventName") == "INSERT"]
    print(json.dumps({"new_orders": len(created), "payments": os.environ.get("PAYMENTS_URL")}))
    return {"processed": len(records)}


def handler(event, context):
    if "Records" in event:
        return on_stream(event["Records"])
    t = table()
    if t is None:
        return response(503, {"error": "no orders table configured"})
    if event.get("httpMethod") == "POST":
        order = json.loads(event.get("body") or "{}")
        order["id"] = str(uuid.uuid4())
        t.put_item(Item=order)
        return response(201, order)
    items = t.scan(Limit=50).get("Items", [])
    return response(200, {"orders": items})
