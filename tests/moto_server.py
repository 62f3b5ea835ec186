#!/usr/bin/env python3
"""moto's standalone S3 server (PyPI), with the one Object Lock rule of AWS S3 that moto does
not enforce: a COMPLIANCE lock cannot be shortened, nor turned into a GOVERNANCE one, before
it ends (AWS answers 403 AccessDenied). Everything else is moto's own code, unchanged: versions,
delete markers, refusing to delete a locked version, GOVERNANCE bypass.

    python3 tests/moto_server.py -H 127.0.0.1 -p PORT

Without the rule, no installable server enforces COMPLIANCE against shortening, and a
ransomware drill could never pass (docs/copies.md, "What the tests prove").
"""
import datetime
import sys

import moto.s3.models as models
from moto.s3.exceptions import AccessDeniedByLock
from moto.server import main


def _parse(text):
    for form in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.datetime.strptime(text, form)
        except (TypeError, ValueError):
            pass
    return None


_put_object_retention = models.S3Backend.put_object_retention


def put_object_retention(self, bucket_name, key_name, version_id, retention):
    key = self.get_object(bucket_name, key_name, version_id=version_id)
    if key is not None and key.lock_mode == "COMPLIANCE":
        current = _parse(key.lock_until)
        mode, until = retention
        wanted = _parse(until)
        still_locked = current is not None and current > datetime.datetime.utcnow()
        if still_locked and (mode != "COMPLIANCE" or wanted is None or wanted < current):
            raise AccessDeniedByLock
    return _put_object_retention(self, bucket_name, key_name, version_id, retention)


models.S3Backend.put_object_retention = put_object_retention

if __name__ == "__main__":
    main(sys.argv[1:])
