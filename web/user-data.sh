#!/bin/bash
# First boot of each web instance (Amazon Linux 2023). nginx:
#   /health  answered here, for the load balancer's health check;
#   /api/    proxied to the backend's API Gateway stage;
#   /        the app: the built site, proxied from its CloudFront distribution.
# infra fills in the API's URL and the site's domain below (a dotted name in
# dollar-braces is infra's; the shell's own variables stay as written). The
# upstreams are resolved at request time (their addresses change), through the
# VPC's DNS resolver. Instance metadata is
# IMDSv2 only (the launch template requires a token). No SSH: connect with
# `aws ssm start-session --target <instance id>` (the instance role allows it).
set -euo pipefail

API_URL='${backend.api.url}'    # https://<id>.execute-api.<region>.amazonaws.com/<stage>
SITE='${frontend.domain}'       # <id>.cloudfront.net
API_HOST=${API_URL#https://}
API_HOST=${API_HOST%%/*}

dnf install -y nginx

TOKEN=$(curl -sS -X PUT http://169.254.169.254/latest/api/token \
  -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
AZ=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" \
  http://169.254.169.254/latest/meta-data/placement/availability-zone)

# This server takes every request: the packaged one stops being the default.
sed -i 's/ default_server//' /etc/nginx/nginx.conf
cat > /etc/nginx/conf.d/webapp.conf <<NGINX
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    add_header X-Served-From "${AZ}" always;
    resolver 169.254.169.253 valid=60s;

    location = /health {
        access_log off;
        default_type text/plain;
        return 200 "ok\n";
    }

    location /api/ {
        proxy_pass ${API_URL}\$request_uri;
        proxy_ssl_server_name on;
        proxy_set_header Host ${API_HOST};
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }

    location / {
        proxy_pass https://${SITE}\$request_uri;
        proxy_ssl_server_name on;
        proxy_set_header Host ${SITE};
    }
}
NGINX
nginx -t
systemctl enable --now nginx
