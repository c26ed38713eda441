"""Users microservice: the REST API's /users/... routes.

It runs in the VPC's private subnets to reach the database at DB_ENDPOINT;
the database password is read at run time from Secrets Manager
(DB_SECRET_ARN), never from the environment.
"""

import json
import os

import boto3

_credentials = None


def credentials():
    """The database user and password, from Secrets Manager (cached)."""
    global _credentials
    if _credentials is None and os.environ.get("DB_SECRET_ARN"):
        secret = boto3.client("secretsmanager").get_secret_value(
            SecretId=os.environ["DB_SECRET_ARN"]
        )
        _credentials = json.loads(secret["SecretString"])
    return _credentials


def handler(event, context):
    path = (event.get("pathParameters") or {}).get("proxy", "")
    creds = credentials()
    body = {
        "user": path or None,
        "database": os.environ.get("DB_ENDPOINT"),
        "authenticated_as": creds.get("username") if creds else None,
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
