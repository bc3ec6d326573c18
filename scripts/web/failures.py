"""The page's failure list: the embedder's recorded permanent failures and the DLQ.

Two sources, the same ones ``imgsearch verify`` and ``imgsearch dlq list`` read:

* **failure log**: the embedder's one JSON line per message in CloudWatch Logs, its
  ``permanent_failure`` lines of the last :data:`LOOKBACK_DAYS` days (bounded: at most
  :data:`scripts.ops.failure_log.LOG_PAGES_MAX` pages), the last line per object, and
  only objects that still have no vector (a later success or a re-upload that worked is
  not a failure any more);
* **DLQ**: :func:`scripts.ops.dlq.list_dlq`, ``dlq list``'s own peek: it receives with a
  short visibility timeout and releases at once, so listing moves and deletes nothing
  (SQS counts the receive, as it does for ``dlq list``; a DLQ has no redrive policy of its
  own, so the count moves no message).

Read-only. Without a known log group (no stack output naming the embedder) the first
part is empty, said in ``notes``. Through the search API (``serve --api``) the server does
not read S3 Vectors, so logged failures are listed even if the object has a vector again
(said in ``notes``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scripts.ops import dlq
from scripts.ops.failure_log import LogLookup, recent_failures
from scripts.ops.objects import SourceBucket

if TYPE_CHECKING:
    from scripts.web.context import WebContext

FAILURES_MAX = 100
"""Entries per source at most; beyond, ``truncated`` is true (the CLI lists them all)."""
LOOKBACK_DAYS = 7
NO_VECTOR_CHECK = (
    "through the search API this server reads no vectors, so a logged failure is listed "
    "even if a later upload of the object was indexed"
)


def list_failures(web: WebContext, limit: int = FAILURES_MAX) -> dict[str, Any]:
    """``{"failures": [{uri, reason, detail, at, where}], "truncated", "notes"}``."""
    notes: list[str] = []
    vectors = web.searcher().vectors
    if vectors is None:
        notes.append(NO_VECTOR_CHECK)
    log_group = web.log_group()
    logged: list[dict[str, Any]] = []
    log_truncated = False
    if log_group is None:
        notes.append(
            "the embedder's log group is unknown (no stack output names the embedder), so "
            "recorded permanent failures are not listed; the DLQ is"
        )
    else:
        logged, log_truncated = recent_failures(
            web.clients("logs"), log_group, limit=limit, lookback_days=LOOKBACK_DAYS,
            note=notes.append,
        )  # fmt: skip
        if vectors is not None and logged:
            stored = vectors.get([f["vector_key"] for f in logged])
            logged = [f for f in logged if f["vector_key"] not in stored]
    listing = dlq.list_dlq(
        sqs=web.clients("sqs"),
        s3=web.clients("s3"),
        index=vectors,
        logs=LogLookup(web.clients("logs"), log_group, notes.append),
        dlq_url=web.dlq_url(),
        limit=limit,
        source=SourceBucket(web.source_bucket, web.cfg.source_bucket_owner),
    )
    queued = [
        {
            "uri": e.uri,
            "reason": (e.last_error.reason if e.last_error else None) or e.body_error,
            "detail": e.last_error.detail if e.last_error else e.why,
            "at": (e.last_error.time if e.last_error else None) or e.sent_at,
            "where": "DLQ",
        }
        for e in listing.entries
    ]
    notes.extend(listing.notes)
    entries = [{k: v for k, v in f.items() if k != "vector_key"} for f in logged] + queued
    truncated = log_truncated or listing.depth > len(listing.entries)
    return {"failures": entries, "truncated": truncated, "notes": notes}


__all__ = ["FAILURES_MAX", "NO_VECTOR_CHECK", "list_failures"]
