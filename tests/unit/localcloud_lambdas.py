"""Tiny Lambda handlers for testing the local runtime itself (not the pipeline).

They run inside the runtime's worker processes and report what they saw as JSON log
lines (``{"fake": ...}``), which the tests read back from ``cloud.logs``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def _log(**fields: Any) -> None:
    print(json.dumps({"fake": True, **fields}), flush=True)


def _meet(folder: str, peers: int, context: Any) -> None:
    """Wait until ``peers`` invocations (this one included) have started, or time runs out.

    A rendezvous across execution environments through marker files, so a test of
    parallelism does not depend on how long a sleep lasts on a loaded machine.
    """
    while len(os.listdir(folder)) < peers and context.get_remaining_time_in_millis() > 300:
        time.sleep(0.01)


def sqs_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Each body is JSON: ``id``, optional ``sleep`` seconds, ``fail`` (redeliver), ``emf``,
    ``meet`` (a folder) with ``peers`` (wait for that many started invocations)."""
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        attrs = record["attributes"]
        _log(
            at="start",
            id=body["id"],
            group=attrs["MessageGroupId"],
            receive=int(attrs["ApproximateReceiveCount"]),
            t=time.time(),
            remaining_ms=context.get_remaining_time_in_millis(),
            pid=os.getpid(),
            request=context.aws_request_id,
        )
        if body.get("meet"):
            with open(os.path.join(body["meet"], body["id"]), "w"):
                pass
            _meet(body["meet"], int(body["peers"]), context)
        time.sleep(float(body.get("sleep", 0)))
        if body.get("emf"):
            print(
                json.dumps(
                    {
                        "_aws": {
                            "Timestamp": int(time.time() * 1000),
                            "CloudWatchMetrics": [
                                {
                                    "Namespace": "LocalCloudTest",
                                    "Dimensions": [["service"]],
                                    "Metrics": [{"Name": "FakeMetric", "Unit": "Count"}],
                                }
                            ],
                        },
                        "service": "fake",
                        "FakeMetric": [2.0, 3.0],
                    }
                ),
                flush=True,
            )
        _log(at="end", id=body["id"], group=attrs["MessageGroupId"], t=time.time())
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def s3_router(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Logs the S3 event; fails for keys containing ``router-fail``."""
    _log(at="s3", event=event)
    for record in event.get("Records", []):
        if "router-fail" in record["s3"]["object"]["key"]:
            raise RuntimeError("this router invocation fails on purpose")
    return {"ok": True}
