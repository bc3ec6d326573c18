"""What each request to the front server is, and how long the emulator itself took for it.

The front server routes by service; faults and the benchmarks need the operation too:
:func:`s3_operation` names an S3 REST request the way the API reference does
(``GetObject``, ``HeadObject``...), :func:`sqs_operation` an SQS request (JSON or query
protocol). :class:`CallTimes` keeps, per ``service:operation``, the number of calls and
the front server's own time for them, injected latency left out, so a benchmark can tell
the pipeline's overhead from the emulator's (moto, fauxqs, the stand-in model).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

_BUCKET_SUBRESOURCES = ("uploads", "uploadId", "tagging", "acl", "retention", "legal-hold")
"""Query keys that make an object request something other than the plain object call."""


def s3_operation(environ: dict[str, Any]) -> str:
    """The S3 operation of a path-style request (``/bucket/key``), e.g. ``GetObject``.

    Object calls are named; anything else is ``Bucket<METHOD>`` or ``Object<METHOD>``
    (enough to tell them apart in a timing table, and never matched by a fault rule
    written for ``GetObject``).
    """
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = str(environ.get("PATH_INFO", "")).lstrip("/")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        return f"Bucket{method.title()}"
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    if any(name in query for name in _BUCKET_SUBRESOURCES):
        return f"Object{method.title()}"
    if method == "PUT":
        return "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject"
    names = {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return names.get(method, f"Object{method.title()}")


def sqs_operation(environ: dict[str, Any], body: bytes) -> str:
    """The SQS action: ``X-Amz-Target`` (JSON protocol) or ``Action=`` (query protocol)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    actions = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
    return actions[0] if actions else "unknown"


@dataclass(frozen=True)
class CallTime:
    """Calls of one operation and the emulator's own seconds for them (latency left out)."""

    calls: int
    seconds: float

    @property
    def ms_per_call(self) -> float:
        return 1000 * self.seconds / self.calls if self.calls else 0.0


class CallTimes:
    """Thread-safe totals per ``service:operation``; :meth:`since` diffs two snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, CallTime] = {}

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            old = self._totals.get(name, CallTime(0, 0.0))
            self._totals[name] = CallTime(old.calls + 1, old.seconds + max(0.0, seconds))

    def snapshot(self) -> dict[str, CallTime]:
        with self._lock:
            return dict(self._totals)

    def since(self, before: dict[str, CallTime]) -> dict[str, CallTime]:
        """The calls made after ``before`` was taken, per operation (none: left out)."""
        out: dict[str, CallTime] = {}
        for name, now in self.snapshot().items():
            old = before.get(name, CallTime(0, 0.0))
            if now.calls > old.calls:
                out[name] = CallTime(now.calls - old.calls, now.seconds - old.seconds)
        return out

    def public(self) -> dict[str, dict[str, float]]:
        """For ``/_localcloud/status``: calls and ms per call by operation."""
        return {
            name: {"calls": t.calls, "ms_per_call": round(t.ms_per_call, 3)}
            for name, t in sorted(self.snapshot().items())
        }


__all__ = ["CallTime", "CallTimes", "s3_operation", "sqs_operation"]
