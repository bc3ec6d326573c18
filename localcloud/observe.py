"""Watching the local cloud: where the pipeline is, when it is idle, what it stored.

:class:`Observation` is the part of :class:`~localcloud.cloud.LocalCloud` that tests,
the demo and the benchmark read: :meth:`~Observation.snapshot` (a
:class:`CloudSnapshot` of queues, pending events and outcomes),
:meth:`~Observation.wait_idle`, the vectors in the index, the DLQs' messages, the
per-object :meth:`~Observation.accounting` and the JSON ``status`` the front server
serves at ``/_localcloud/status``. It reads without consuming anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import unquote_plus

from imgsearch.config import PipelineConfig
from imgsearch.messages import MessageError, UnparseableBody, parse_message
from imgsearch.selection import KeySelection
from localcloud.accounting import AccountingReport, Ledger, ObjectId, check
from localcloud.provision import ProvisionedStack, queue_name
from localcloud.services.faults import Faults
from localcloud.services.front import index_data
from localcloud.services.sqs import SqsServer
from localcloud.telemetry.logs import LogRecorder

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from localcloud.lambdas.runtime import LambdaRuntime


@dataclass(frozen=True)
class CloudSnapshot:
    """Where the pipeline is right now (for progress lines and ``wait_idle``)."""

    queued: int
    in_flight: int
    delayed: int
    dlq: int
    router_pending: int
    embedding: int
    outcomes: dict[str, int]

    @property
    def idle(self) -> bool:
        return not (
            self.queued or self.in_flight or self.delayed or self.router_pending or self.embedding
        )

    def line(self) -> str:
        done = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "nothing yet"
        return (
            f"queue {self.queued} waiting, {self.in_flight} in flight"
            f"{f', {self.delayed} delayed' if self.delayed else ''}; "
            f"router {self.router_pending} pending; DLQ {self.dlq}; done: {done}"
        )


def dlq_object(body: str) -> ObjectId | list[ObjectId] | None:
    """The object(s) one DLQ message is about: a queue message, or the router's S3 event.

    None if the body is neither (it is reported, not fatal): any body, however crafted
    (nested 100,000 deep, not JSON, fields of the wrong type), is read without raising.
    """
    try:
        msg = parse_message(body)
        return (msg.bucket, msg.key)
    except UnparseableBody:
        return None
    except MessageError:
        pass
    try:
        records = json.loads(body).get("Records")
    except (ValueError, RecursionError, AttributeError):
        return None
    if not isinstance(records, list) or not records:
        return None
    found: list[ObjectId] = []
    for record in records:
        try:
            bucket, key = record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
        except (KeyError, TypeError):
            return None
        if not isinstance(bucket, str) or not isinstance(key, str):
            return None
        found.append((bucket, unquote_plus(key)))
    return found


def dlq_body_problem(body: str) -> str:
    """Why :func:`dlq_object` found no object in ``body``, in a few words."""
    try:
        parse_message(body)
    except UnparseableBody as exc:
        return f"unparseable ({exc.cause})"
    except MessageError as exc:
        return f"neither a message nor an S3 event ({exc})"
    return "no object in it"


class Observation:
    """Read-only views of a running local cloud (mixed into ``LocalCloud``)."""

    cfg: PipelineConfig
    resources: ProvisionedStack
    ledger: Ledger
    logs: LogRecorder
    faults: Faults
    runtime: LambdaRuntime | None

    @property
    def sqs_server(self) -> SqsServer:
        raise NotImplementedError

    # The clients these views call, typed as ``LocalCloud.client`` types them.
    @overload
    def client(self, service: Literal["s3"], **kwargs: Any) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"], **kwargs: Any) -> SQSClient: ...
    @overload
    def client(self, service: Literal["cloudwatch"], **kwargs: Any) -> CloudWatchClient: ...
    def client(self, service: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _queue_counts(self, url: str) -> dict[str, int]:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    def snapshot(self) -> CloudSnapshot:
        main = self._queue_counts(self.resources.queue_url)
        dlq = self._queue_counts(self.resources.dlq_url)
        runtime = self.runtime
        return CloudSnapshot(
            queued=main.get("ApproximateNumberOfMessages", 0),
            in_flight=main.get("ApproximateNumberOfMessagesNotVisible", 0),
            delayed=main.get("ApproximateNumberOfMessagesDelayed", 0),
            dlq=sum(dlq.values()),
            router_pending=runtime.s3_events.pending if runtime and runtime.s3_events else 0,
            embedding=runtime.event_source.in_flight if runtime and runtime.event_source else 0,
            outcomes=dict(self.ledger.counts),
        )

    def wait_idle(
        self,
        timeout: float = 120.0,
        *,
        progress: Callable[[CloudSnapshot], None] | None = None,
        interval: float = 0.1,
    ) -> CloudSnapshot:
        """Block until no event, message or invocation is pending; raise TimeoutError if not.

        Messages waiting for their visibility timeout count as pending, so this also
        waits out redeliveries and the move to the DLQ after ``maxReceiveCount``.
        """
        deadline = time.monotonic() + timeout
        calm = 0
        while True:
            snap = self.snapshot()
            if progress is not None:
                progress(snap)
            calm = calm + 1 if snap.idle else 0
            if calm >= 3:
                if self.runtime is not None:
                    self.runtime.flush(self.client("cloudwatch"))
                return snap
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the local cloud is still busy after {timeout:.0f}s: {snap.line()}"
                )
            time.sleep(interval)

    def vector_keys(self) -> set[str]:
        data = index_data(
            {
                "vectorBucketName": self.resources.vector_bucket,
                "indexName": self.resources.index_name,
            }
        )
        return set(data.keys())

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Bodies of every message in the embed DLQ and the router DLQ (not consumed)."""
        out: list[dict[str, Any]] = []
        for url in (self.resources.dlq_url, self.resources.router_dlq_url):
            view = self.sqs_server.inspect_queue(queue_name(url))
            messages = view.get("messages", {})
            for item in [*messages.get("ready", []), *messages.get("delayed", [])]:
                out.append({"queue": url, "body": item.get("body", "")})
            for item in messages.get("inflight", []):
                out.append({"queue": url, "body": item.get("message", {}).get("body", "")})
        return out

    def _dlq_objects(self) -> tuple[set[ObjectId], list[str]]:
        """The objects the DLQs' messages are about, and why the others are about none."""
        objects: set[ObjectId] = set()
        unreadable: list[str] = []
        for item in self.dlq_messages():
            body = str(item["body"])
            found = dlq_object(body)
            if found is None:
                problem = dlq_body_problem(body)
                unreadable.append(f"{queue_name(item['queue'])}: {problem}")
                self.logs("localcloud", f"unreadable DLQ message: {problem}: {body[:200]!r}")
            elif isinstance(found, list):
                objects.update(found)
            else:
                objects.add(found)
        return objects, unreadable

    def source_objects(self) -> set[ObjectId]:
        """Objects in the source bucket that the pipeline indexes (KeySelection)."""
        selection = KeySelection.from_config(self.cfg)
        bucket = self.resources.source_bucket
        found: set[ObjectId] = set()
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if selection.matches(obj["Key"]):
                    found.add((bucket, obj["Key"]))
        return found

    def accounting(self) -> AccountingReport:
        """Check the invariants: every object is in exactly one of vector / failure / DLQ,
        and no message group was ever handed out twice at once."""
        source = self.runtime.event_source if self.runtime else None
        in_dlq, unreadable = self._dlq_objects()
        return check(
            self.source_objects(),
            self.vector_keys(),
            self.ledger,
            in_dlq,
            group_overlaps=source.overlaps_now() if source else None,
            unreadable_dlq=unreadable,
        )

    def status(self) -> dict[str, Any]:
        """A JSON-friendly picture of the cloud (served at ``/_localcloud/status``)."""
        out: dict[str, Any] = (
            {"resources": asdict(self.resources)} if hasattr(self, "resources") else {}
        )
        try:
            out["snapshot"] = asdict(self.snapshot())
        except Exception as exc:  # e.g. during shutdown
            out["snapshot_error"] = str(exc)
        out["ledger"] = {
            "outcomes": dict(self.ledger.counts),
            "failures_by_reason": dict(self.ledger.failures_by_reason),
        }
        runtime = self.runtime
        if runtime is not None:
            out["router"] = dict(runtime.router.stats)
            out["embedder"] = dict(runtime.embedder.stats)
            if runtime.event_source is not None:
                out["event_source"] = runtime.event_source.stats_now()
            if runtime.s3_events is not None:
                out["s3_events"] = dict(runtime.s3_events.stats)
        out["faults_injected"] = dict(self.faults.injected)
        return out


__all__ = ["CloudSnapshot", "Observation", "dlq_body_problem", "dlq_object"]
