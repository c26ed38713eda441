#!/usr/bin/env python3
"""moto_server with three emulator gaps patched, for the tests only (the
product is never changed to suit the emulator):

* moto drops `OriginAccessControlId` from a distribution's origins when it
  stores them; the tool compares that id, as it must on AWS, so on plain moto
  every plan would show the distribution changing.
* moto answers GetBucketVersioning with a `GetBucketVersioningResponse` root
  element instead of S3's `VersioningConfiguration`; the AWS CLI does not mind,
  the Rust SDK rejects the response.
* moto reports finished invalidations as `COMPLETED`; CloudFront says
  `Completed` (what `apply --wait` waits for).

Usage: python3 moto_patched.py -H 127.0.0.1 -p PORT (as moto_server).
"""
import sys
import moto.cloudfront.models as cloudfront
import moto.s3.responses as s3

_init = cloudfront.Origin.__init__


def _keep_oac_id(self, origin):
    _init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId") or ""


def _get_bucket_versioning(self):
    status = self.backend.get_bucket_versioning(self.bucket_name)
    body = '<?xml version="1.0" encoding="UTF-8"?>'
    body += '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    if status:
        body += "<Status>" + status + "</Status>"
    body += "</VersioningConfiguration>"
    return 200, {"Content-Type": "application/xml"}, body


_invalidation_init = cloudfront.Invalidation.__init__


def _completed(self, *args, **kwargs):
    _invalidation_init(self, *args, **kwargs)
    self.status = "Completed"


cloudfront.Origin.__init__ = _keep_oac_id
cloudfront.Invalidation.__init__ = _completed
s3.S3Response.get_bucket_versioning = _get_bucket_versioning
from moto.server import main

sys.exit(main())
