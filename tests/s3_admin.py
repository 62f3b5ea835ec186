#!/usr/bin/env python3
"""The tests' view of an S3 server through boto3, not through rempart's own S3 code: makes
buckets, says what the server holds (versions, retention), and plays the attacker who holds
the backup host's credentials.

    s3_admin.py ENV_FILE create-bucket BUCKET [--lock]
    s3_admin.py ENV_FILE objects BUCKET PREFIX      # current objects with their retention (JSON)
    s3_admin.py ENV_FILE attack BUCKET PREFIX       # what the attacker could do (JSON)
    s3_admin.py ENV_FILE count BUCKET PREFIX        # objects and bytes per folder (JSON)
    s3_admin.py ENV_FILE delete-newest BUCKET PREFIX  # the attacker deletes the newest object under PREFIX
    s3_admin.py ENV_FILE delete-all BUCKET PREFIX     # the attacker deletes every object under PREFIX
    s3_admin.py ENV_FILE damage-newest BUCKET PREFIX  # the attacker overwrites the newest object under PREFIX
"""
import json
import sys

import boto3
from botocore.exceptions import ClientError


def client(env_file):
    env = {}
    with open(env_file) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = v
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_REGION", "us-east-1"),
    )


def current(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def versions(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        out += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    return out


def objects(s3, bucket, prefix):
    out = []
    for key in current(s3, bucket, prefix):
        head = s3.head_object(Bucket=bucket, Key=key)
        until = head.get("ObjectLockRetainUntilDate")
        out.append({
            "key": key,
            "version_id": head.get("VersionId"),
            "mode": head.get("ObjectLockMode"),
            "until": until.isoformat() if until else None,
        })
    return out


def attack(s3, bucket, prefix):
    """The repertoire of docs/copies.md, in order; each step counts what the server allowed."""
    done = {}
    keys = current(s3, bucket, prefix)
    ok = 0
    for key in keys:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"encrypted by the attacker")
            ok += 1
        except ClientError:
            pass
    done["overwritten"] = ok
    ok = 0
    for key in keys:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
            ok += 1
        except ClientError:
            pass
    done["deleted"] = ok
    allv = versions(s3, bucket, prefix)
    ok = refused = 0
    for key, vid in allv:
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
            ok += 1
        except ClientError:
            refused += 1
    done["versions"] = len(allv)
    done["versions_deleted"] = ok
    done["versions_delete_refused"] = refused
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
        done["versioning_suspended"] = True
    except ClientError:
        done["versioning_suspended"] = False
    return done


def count(s3, bucket, prefix):
    """Objects and bytes under PREFIX, per first folder below it (data, index, snapshots...),
    and the list requests it took."""
    out = {}
    pages = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        pages += 1
        for o in page.get("Contents", []):
            folder = o["Key"][len(prefix) + 1:].split("/", 1)[0]
            c = out.setdefault(folder, {"objects": 0, "bytes": 0})
            c["objects"] += 1
            c["bytes"] += o["Size"]
    out["_list_pages"] = pages
    return out


def main():
    env_file, cmd = sys.argv[1], sys.argv[2]
    s3 = client(env_file)
    if cmd == "create-bucket":
        bucket = sys.argv[3]
        if "--lock" in sys.argv[4:]:
            s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        else:
            s3.create_bucket(Bucket=bucket)
    elif cmd == "objects":
        print(json.dumps(objects(s3, sys.argv[3], sys.argv[4])))
    elif cmd == "damage-newest":
        bucket, prefix = sys.argv[3], sys.argv[4]
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += page.get("Contents", [])
        newest = max(found, key=lambda o: o["LastModified"])
        s3.put_object(Bucket=bucket, Key=newest["Key"], Body=b"garbage " * 8)
        print(json.dumps([newest["Key"]]))
    elif cmd in ("delete-newest", "delete-all"):
        bucket, prefix = sys.argv[3], sys.argv[4]
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += page.get("Contents", [])
        found.sort(key=lambda o: o["LastModified"])
        doomed = found[-1:] if cmd == "delete-newest" else found
        for o in doomed:
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        print(json.dumps([o["Key"] for o in doomed]))
    elif cmd == "count":
        print(json.dumps(count(s3, sys.argv[3], sys.argv[4])))
    elif cmd == "attack":
        print(json.dumps(attack(s3, sys.argv[3], sys.argv[4])))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
