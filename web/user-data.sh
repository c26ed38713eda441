#!/bin/bash
# First boot of each web instance (Amazon Linux 2): nginx serving the site
# and /health for the load balancer's health check. Instance metadata is
# IMDSv2 only (the launch template requires a token).
set -euo pipefail

amazon-linux-extras install -y nginx1

TOKEN=$(curl -sS -X PUT http://169.254.169.254/latest/api/token \
  -H "X-aws-ec2-metadata-token-ttl-seconds: 60")
AZ=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" \
  http://169.254.169.254/latest/meta-data/placement/availability-zone)

echo ok > /usr/share/nginx/html/health
echo "<h1>webapp</h1><p>served from $AZ</p>" > /usr/share/nginx/html/index.html
systemctl enable --now nginx
