"""The smoke test's own stack on a real account: its names, its record, and the guards.

``make smoke AWS=1`` deploys a stack that shares nothing with the operator's: the
stack name, every fixed resource name (vector bucket, queues), the metrics' ``service``
dimension and the indexed prefix all derive from one smoke id, and the stack is tagged
``imgsearch:smoke=<id>`` (``cdk deploy --tags``; CloudFormation propagates stack tags to
its resources). The buckets the stack creates get generated names, so they cannot clash.
Vector bucket names are unique per account and Region (S3 User Guide, "Vector bucket
naming rules"), so the id carries a random part, not only the user's name.

What was created is written to ``.local/smoke-stack.json`` (git-ignored). Nothing is
ever destroyed unless it is named there *and* the live stack still carries the tag with
the recorded id; nothing is smoke-tested on AWS unless its stack carries the tag.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from imgsearch.aws_errors import error_code, is_missing_bucket
from scripts.common.errors import ToolError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef
    from mypy_boto3_s3vectors import S3VectorsClient

SMOKE_TAG = "imgsearch:smoke"
"""The stack tag that marks a smoke stack; its value is the smoke id."""
STACK_PREFIX = "imgsearch-smoke-"
SMOKE_PREFIX = "imgsearch-smoke/"
"""The key prefix the smoke test uploads under (each run in its own folder below it)."""
RECORD_FILE = Path(__file__).resolve().parents[2] / ".local" / "smoke-stack.json"

_STACK_NAME = re.compile(r"imgsearch-smoke-[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
"""32 characters of id at most, so ``<stack>-embed-dlq.fifo`` stays within SQS's 80 and
``<stack>-vectors`` within S3 Vectors' 63."""

# CloudFormation resource types whose physical ids the stack retains on delete
# (infra/storage.py: RemovalPolicy.RETAIN); smoke-destroy removes them after the stack.
BUCKET_TYPE = "AWS::S3::Bucket"
VECTOR_BUCKET_TYPE = "AWS::S3Vectors::VectorBucket"
DELETE_OBJECTS_MAX = 1000
"""Keys per ``DeleteObjects`` request (S3 API reference, DeleteObjects)."""


class SmokeStackError(ToolError):
    """The smoke stack cannot be used or removed as asked (one line: what and why)."""


# --------------------------------------------------------------------------- names


def new_smoke_id(user: str | None = None) -> str:
    """``<user>-<6 hex>``: readable in the console, unique enough for a global name."""
    try:
        who = user if user is not None else getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = ""
    who = re.sub(r"[^a-z0-9]+", "-", who.lower()).strip("-")[:12].strip("-") or "user"
    return f"{who}-{secrets.token_hex(3)}"


def check_stack_name(name: str) -> str:
    if not _STACK_NAME.fullmatch(name):
        raise SmokeStackError(
            f"SMOKE_STACK={name!r}: a smoke stack's name must be {STACK_PREFIX}<id>, the id "
            "1-32 lowercase letters, digits and hyphens (e.g. imgsearch-smoke-alice); "
            "it never names your own stack"
        )
    return name


def smoke_context(stack_name: str) -> dict[str, str]:
    """The ``-c`` settings that make a stack of its own (every fixed name derived)."""
    check_stack_name(stack_name)
    return {
        "stack_name": stack_name,
        "name_prefix": stack_name,
        "service_name": stack_name,
        "source_bucket_name": "",
        "vector_bucket_name": f"{stack_name}-vectors",
        "index_name": "images",
        "queue_name": f"{stack_name}-embed.fifo",
        "dlq_name": f"{stack_name}-embed-dlq.fifo",
        "router_dlq_name": f"{stack_name}-router-dlq",
        "prefixes": SMOKE_PREFIX,
    }


# --------------------------------------------------------------------------- the record


@dataclass
class SmokeRecord:
    """What ``make smoke AWS=1`` created; ``smoke-destroy`` removes only this."""

    stack_name: str
    smoke_id: str
    context: dict[str, str]
    created_at: str
    region: str | None = None
    retained: dict[str, list[str]] = field(default_factory=dict)
    """Physical ids the stack leaves behind on delete, by resource type."""

    def cdk_args(self) -> list[str]:
        """``cdk deploy`` arguments: ``-c key=value`` (two words each) and the smoke tag."""
        args = [item for k, v in self.context.items() for item in ("-c", f"{k}={v}")]
        return [*args, "--tags", f"{SMOKE_TAG}={self.smoke_id}"]


def load_record(path: Path = RECORD_FILE) -> SmokeRecord | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return SmokeRecord(**data)
    except (ValueError, TypeError) as exc:
        raise SmokeStackError(
            f"{path}: not a smoke-stack record ({exc}); remove it only if you know no smoke "
            "stack is deployed"
        ) from exc


def save_record(record: SmokeRecord, path: Path = RECORD_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=2) + "\n")


def plan(
    cloudformation: CloudFormationClient,
    *,
    stack_name: str | None,
    region: str | None,
    path: Path = RECORD_FILE,
) -> SmokeRecord:
    """The smoke stack to deploy: the recorded one, else a new record for a new name.

    Refuses a name that already exists as a stack not recorded here, so a deploy never
    updates (and renames the resources of) a stack the smoke test did not create.
    """
    record = load_record(path)
    if record is not None:
        if stack_name and stack_name != record.stack_name:
            raise SmokeStackError(
                f"SMOKE_STACK={stack_name!r}: {path} already records smoke stack "
                f"{record.stack_name!r}; run `make smoke-destroy` first, or drop SMOKE_STACK"
            )
        tags = stack_tags(cloudformation, record.stack_name)
        if tags is not None and tags.get(SMOKE_TAG) != record.smoke_id:
            raise SmokeStackError(_not_ours(record.stack_name, tags))
        return record
    if stack_name:
        name = check_stack_name(stack_name)
        smoke_id = name.removeprefix(STACK_PREFIX)
    else:
        smoke_id = new_smoke_id()
        name = STACK_PREFIX + smoke_id
    tags = stack_tags(cloudformation, name)
    if tags is not None:
        raise SmokeStackError(
            f"stack {name!r} already exists and {path} does not record it as the smoke "
            "stack: refusing to deploy over it; pick another SMOKE_STACK"
        )
    record = SmokeRecord(
        stack_name=name,
        smoke_id=smoke_id,
        context={**smoke_context(name), **({"region": region} if region else {})},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        region=region,
    )
    save_record(record, path)
    return record


# --------------------------------------------------------------------------- guards


def stack_tags(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str] | None:
    """The stack's tags, or None when there is no such stack."""
    try:
        response = cloudformation.describe_stacks(StackName=stack_name)
    except ClientError as exc:
        # DescribeStacks answers a missing stack with ValidationError "Stack with id X
        # does not exist" (CloudFormation API reference, DescribeStacks).
        if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
            return None
        raise
    stacks = response.get("Stacks") or []
    if not stacks:
        return None
    return {str(t["Key"]): str(t["Value"]) for t in stacks[0].get("Tags") or []}


def _not_ours(stack_name: str, tags: dict[str, str]) -> str:
    found = tags.get(SMOKE_TAG)
    why = f"its {SMOKE_TAG} tag is {found!r}" if found else f"it has no {SMOKE_TAG} tag"
    return (
        f"stack {stack_name!r} is not a smoke stack this tool created ({why}): refusing to "
        "touch it; the smoke test only runs on a stack deployed by `make smoke AWS=1`"
    )


def is_loopback(endpoint_url: str | None) -> bool:
    """True for an endpoint on this machine (the local cloud), never for AWS."""
    if not endpoint_url:
        return False
    host = urlparse(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_smoke_stack(
    cloudformation: CloudFormationClient, stack_name: str, *, smoke_id: str | None = None
) -> str:
    """The stack's smoke id; raises unless the stack is tagged as a smoke stack."""
    tags = stack_tags(cloudformation, stack_name)
    if tags is None:
        raise SmokeStackError(
            f"stack {stack_name!r} does not exist: deploy it with `make smoke AWS=1` (check "
            "--region)"
        )
    found = tags.get(SMOKE_TAG)
    if not found or (smoke_id is not None and found != smoke_id):
        raise SmokeStackError(_not_ours(stack_name, tags))
    return found


# --------------------------------------------------------------------------- destroy


def retained_resources(
    cloudformation: CloudFormationClient, stack_name: str
) -> dict[str, list[str]]:
    """Physical ids of the buckets and vector buckets the stack would leave behind."""
    found: dict[str, list[tuple[bool, str]]] = {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for res in page.get("StackResourceSummaries") or []:
            kind, physical = res.get("ResourceType"), res.get("PhysicalResourceId")
            if kind in (BUCKET_TYPE, VECTOR_BUCKET_TYPE) and physical:
                # The access-log bucket last: the other buckets write into it.
                logs_bucket = "AccessLogs" in str(res.get("LogicalResourceId"))
                found.setdefault(kind, []).append((logs_bucket, physical))
    return {kind: [name for _, name in sorted(items)] for kind, items in found.items()}


def destroy(
    record: SmokeRecord,
    *,
    cloudformation: CloudFormationClient,
    s3: S3Client,
    s3vectors: S3VectorsClient,
    progress: Any = print,
    path: Path = RECORD_FILE,
) -> None:
    """Delete the recorded stack, then the buckets it retains; forget the record last."""
    tags = stack_tags(cloudformation, record.stack_name)
    if tags is not None:
        if tags.get(SMOKE_TAG) != record.smoke_id:
            raise SmokeStackError(_not_ours(record.stack_name, tags))
        record.retained = retained_resources(cloudformation, record.stack_name)
        save_record(record, path)  # a failed delete can be resumed with the same list
        progress(f"deleting stack {record.stack_name} (a few minutes)")
        cloudformation.delete_stack(StackName=record.stack_name)
        cloudformation.get_waiter("stack_delete_complete").wait(
            StackName=record.stack_name, WaiterConfig={"Delay": 10, "MaxAttempts": 90}
        )
    for name in record.retained.get(VECTOR_BUCKET_TYPE, []):
        progress(f"deleting vector bucket {name}")
        delete_vector_bucket(s3vectors, name)
    for name in record.retained.get(BUCKET_TYPE, []):
        progress(f"deleting bucket s3://{name}")
        delete_bucket(s3, name)
    path.unlink(missing_ok=True)


def delete_vector_bucket(s3vectors: S3VectorsClient, name: str) -> None:
    try:
        for page in s3vectors.get_paginator("list_indexes").paginate(vectorBucketName=name):
            for index in page.get("indexes") or []:
                s3vectors.delete_index(vectorBucketName=name, indexName=index["indexName"])
        s3vectors.delete_vector_bucket(vectorBucketName=name)
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise


def delete_bucket(s3: S3Client, name: str, *, attempts: int = 5) -> None:
    """Empty (every version) and delete; retried while late writes (access logs) land."""
    for attempt in range(attempts):
        try:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                entries: list[ObjectIdentifierTypeDef] = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in [*(page.get("Versions") or []), *(page.get("DeleteMarkers") or [])]
                    if "Key" in v and "VersionId" in v
                ]
                for start in range(0, len(entries), DELETE_OBJECTS_MAX):
                    chunk = entries[start : start + DELETE_OBJECTS_MAX]
                    s3.delete_objects(Bucket=name, Delete={"Objects": chunk, "Quiet": True})
            s3.delete_bucket(Bucket=name)
            return
        except ClientError as exc:
            if is_missing_bucket(exc):
                return
            if error_code(exc) != "BucketNotEmpty" or attempt == attempts - 1:
                raise
            time.sleep(5)


__all__ = [
    "RECORD_FILE",
    "SMOKE_PREFIX",
    "SMOKE_TAG",
    "SmokeRecord",
    "SmokeStackError",
    "check_stack_name",
    "destroy",
    "is_loopback",
    "load_record",
    "plan",
    "require_smoke_stack",
    "smoke_context",
]
