#!/usr/bin/env python3
"""Signs a user in to a Cognito user pool as the site would (SRP: the
password never leaves the client) and prints the ID token, for the
end-to-end test's authorized requests.

Usage: sign_in.py ENDPOINT POOL_ID CLIENT_ID USERNAME  (the password on stdin)
"""
import sys

import boto3
from pycognito.aws_srp import AWSSRP


def main():
    endpoint, pool_id, client_id, username = sys.argv[1:5]
    password = sys.stdin.read().strip()
    region = pool_id.split("_", 1)[0]
    client = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=region)
    srp = AWSSRP(username=username, password=password, pool_id=pool_id, client_id=client_id, client=client)
    print(srp.authenticate_user()["AuthenticationResult"]["IdToken"])


if __name__ == "__main__":
    main()
