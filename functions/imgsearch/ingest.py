"""One batch of queue messages -> vectors in S3 Vectors, converging on the bucket (I/O).

:class:`Ingestor` walks each message through the steps in ``imgsearch.converge``
against S3, Bedrock (via :class:`~imgsearch.embeddings.Embedder`) and S3 Vectors (via
:class:`~imgsearch.vectors.VectorIndex`) and returns a :class:`Result` per message;
it never raises for a message. The handler turns results into the one log line per
message, the metrics and the SQS partial-batch response.

Batches above one message: messages are grouped by ``MessageGroupId``; groups run
concurrently on a small thread pool (``embed_pool_size``), messages of one group in
order, and a group stops at its first transient failure (SQS redelivers that message
and every later one of its group, keeping per-object order). Deletes happen at once;
all new vectors of the batch go out together in one ``PutVectors`` (split only by the
service limits), so raising the batch size does not multiply S3 Vectors requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch import converge
from imgsearch.config import PipelineConfig
from imgsearch.contract import SUCCESS_OUTCOMES, Outcome
from imgsearch.embeddings import Embedder, EmbeddingError
from imgsearch.images import HEADER_READ_BYTES, UnsupportedImage, sniff
from imgsearch.messages import MessageError, ObjectMessage, now_iso, parse_message, vector_key
from imgsearch.vectors import (
    VectorIndex,
    VectorRecord,
    VectorRejected,
    build_metadata,
    validate_record,
)


@dataclass
class Result:
    """What happened to one message; ``fields`` go into its log line."""

    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    record: VectorRecord | None = None
    """The vector to write (``embedded`` only), flushed once per batch."""
    bytes_read: int = 0
    embed_ms: float | None = None
    retries: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.outcome in SUCCESS_OUTCOMES


@dataclass(frozen=True)
class BatchItem:
    message_id: str
    body: str
    group_id: str | None = None


_SUPERSEDING: frozenset[str] = frozenset({"embedded", "deleted", "permanent_failure"})


class _Stop(Exception):
    """Ends processing of one message early with its result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome)
        self.result = result


class Ingestor:
    def __init__(
        self,
        cfg: PipelineConfig,
        s3: Any,
        embedder: Embedder,
        index: VectorIndex,
        *,
        logger: Any = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = now_iso,
    ) -> None:
        self.cfg = cfg
        self.model = cfg.model
        self.s3 = s3
        self.embedder = embedder
        self.index = index
        self.log = logger or logging.getLogger(__name__)
        self._clock = clock
        self._now = now

    # ------------------------------------------------------------------ one message

    def process(
        self,
        msg: ObjectMessage,
        deadline: float | None = None,
        pending: Mapping[str, VectorRecord] | None = None,
    ) -> Result:
        """Converge the index on ``msg``'s object; never raises.

        ``pending`` holds vectors of this batch not yet written; they count as stored.
        """
        vkey = vector_key(msg.bucket, msg.key)
        fields: dict[str, Any] = {
            "bucket": msg.bucket,
            "key": msg.key,
            "vector_key": vkey,
            "kind": msg.kind,
            "origin": msg.origin,
        }
        result = Result("transient_failure", fields=fields)
        try:
            self._converge(msg, vkey, result, deadline, pending or {})
        except _Stop as stop:
            result = stop.result
        except EmbeddingError as exc:
            result = self._failure(result, exc.reason, exc.detail, transient=exc.transient)
        except ClientError as exc:
            reason = (
                converge.S3VECTORS_ERROR
                if exc.operation_name.endswith("Vectors")
                else converge.S3_ERROR
            )
            result = self._failure(result, reason, _client_error_text(exc), transient=True)
        except BotoCoreError as exc:
            result = self._failure(
                result, "connection_error", f"{type(exc).__name__}: {exc}", transient=True
            )
        except Exception as exc:  # keep the message: a bug must not drop an image
            self.log.exception("unexpected error", extra=fields)
            result = self._failure(
                result, converge.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", transient=True
            )
        return result

    def _converge(
        self,
        msg: ObjectMessage,
        vkey: str,
        result: Result,
        deadline: float | None,
        pending: Mapping[str, VectorRecord],
    ) -> None:
        fields = result.fields
        etag = converge.normalize_etag(msg.etag)
        size = msg.size
        if msg.kind == "delete" or etag is None:
            head = self._head(msg, result)
            if head is None:
                raise _Stop(self._delete(result, vkey))
            etag, size = head
        fields["etag"] = etag

        waiting = pending.get(vkey)
        stored: dict[str, Any] | None = (
            {"key": vkey, "metadata": dict(waiting.metadata)}
            if waiting is not None
            else self.index.get([vkey]).get(vkey)
        )
        stored_metadata = stored.get("metadata") if stored else None
        if converge.is_unchanged(stored_metadata, etag, self.model.model_id):
            raise _Stop(_with(result, "unchanged"))

        data, total = self._read(msg, etag, size, result, had_vector=stored is not None)
        complete = len(data) >= total
        fields["size"] = total
        try:
            if total > self.model.max_image_bytes:
                raise UnsupportedImage(
                    "too_large",
                    f"{total} bytes is above the {self.model.max_image_bytes}-byte limit of "
                    f"{self.model.model_id}",
                )
            info = sniff(data, complete=complete)
            fields.update(format=info.format, width=info.width, height=info.height)
            if info.format not in self.model.image_formats:
                raise UnsupportedImage(
                    "unsupported_format",
                    f"{self.model.model_id} does not accept {info.format} images",
                )
            route = converge.image_route(total, complete, self.model)
            fields["route"] = route

            def on_retry(reason: str, attempt: int, delay: float) -> None:
                result.retries += 1
                self.log.warning(
                    f"Bedrock {reason}; retry {attempt} in {delay:.2f}s",
                    extra={**fields, "retry_reason": reason, "attempt": attempt},
                )

            started = self._clock()
            vector = self.embedder.embed_image(
                purpose=self.cfg.index_purpose,
                image_format=info.format,
                data=data if route == "inline" else None,
                s3_uri=msg.uri if route == "s3" else None,
                deadline=deadline,
                on_retry=on_retry,
            )
            result.embed_ms = (self._clock() - started) * 1000.0
            metadata = build_metadata(
                bucket=msg.bucket,
                key=msg.key,
                image=info,
                size=total,
                etag=etag,
                model_id=self.model.model_id,
                ingested_at=self._now(),
            )
            record = VectorRecord(vkey, vector, metadata)
            validate_record(
                record, dimension=self.cfg.dimension, distance_metric=self.cfg.distance_metric
            )
        except (UnsupportedImage, VectorRejected) as exc:
            raise _Stop(
                self._permanent(result, exc.reason, exc.detail, vkey, stored is not None)
            ) from exc
        except EmbeddingError as exc:
            if exc.transient:
                raise
            raise _Stop(
                self._permanent(result, exc.reason, exc.detail, vkey, stored is not None)
            ) from exc
        result.outcome = "embedded"
        result.record = record

    # ------------------------------------------------------------------ S3 steps

    def _head(self, msg: ObjectMessage, result: Result) -> tuple[str, int] | None:
        """(etag, size) of the current object, or None if it is gone."""
        try:
            head = self.s3.head_object(Bucket=msg.bucket, Key=msg.key)
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(_code(exc), _status(exc))
            if verdict == "gone":
                return None
            raise _Stop(
                self._failure(result, reason, _client_error_text(exc), transient=True)
            ) from exc
        etag = converge.normalize_etag(head.get("ETag"))
        if etag is None:
            raise _Stop(
                self._failure(
                    result, converge.S3_ERROR, "HeadObject returned no ETag", transient=True
                )
            )
        return etag, int(head.get("ContentLength") or 0)

    def _read(
        self, msg: ObjectMessage, etag: str, size: int | None, result: Result, *, had_vector: bool
    ) -> tuple[bytes, int]:
        """(leading bytes, total size) of the object at ``etag``; stops on gone/stale/..."""
        vkey = result.fields["vector_key"]
        request: dict[str, Any] = {"Bucket": msg.bucket, "Key": msg.key, "IfMatch": f'"{etag}"'}
        if size != 0:
            limit = converge.read_limit(size, self.model, HEADER_READ_BYTES)
            request["Range"] = f"bytes=0-{limit - 1}"
        try:
            response = self.s3.get_object(**request)
            data: bytes = response["Body"].read()
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(_code(exc), _status(exc))
            if verdict == "gone":
                raise _Stop(self._delete(result, vkey)) from exc
            if verdict == "stale":
                raise _Stop(
                    _with(
                        result,
                        "stale_skipped",
                        detail=f"object no longer has ETag {etag}; its newer event follows",
                    )
                ) from exc
            if verdict == "empty":
                raise _Stop(
                    self._permanent(result, "empty", "the object is empty", vkey, had_vector)
                ) from exc
            if verdict == "archived":
                raise _Stop(
                    self._permanent(
                        result,
                        reason,
                        "the object is in an archive storage class; restore it to index it",
                        vkey,
                        had_vector,
                    )
                ) from exc
            raise _Stop(
                self._failure(result, reason, _client_error_text(exc), transient=True)
            ) from exc
        result.bytes_read += len(data)
        total = converge.total_size(response.get("ContentRange"), len(data))
        return data, total

    # ------------------------------------------------------------------ endings

    def _delete(self, result: Result, vkey: str) -> Result:
        self.index.delete([vkey])
        return _with(result, "deleted")

    def _permanent(
        self, result: Result, reason: str, detail: str, vkey: str, had_vector: bool
    ) -> Result:
        """Acknowledge a message whose current object cannot be embedded.

        A vector stored for an earlier version describes content the bucket no longer
        has, so it goes too.
        """
        if had_vector:
            self.index.delete([vkey])
            result.fields["stale_vector_deleted"] = True
        return self._failure(result, reason, detail, transient=False)

    @staticmethod
    def _failure(result: Result, reason: str, detail: str, *, transient: bool) -> Result:
        outcome: Outcome = "transient_failure" if transient else "permanent_failure"
        return _with(result, outcome, reason=reason, detail=detail)

    # ------------------------------------------------------------------ a batch

    def run_batch(
        self, items: Sequence[BatchItem], deadline: float | None = None
    ) -> dict[str, Result]:
        """Process a batch (see module docstring); results by message id, in order."""
        groups: dict[str, list[BatchItem]] = {}
        for item in items:
            groups.setdefault(item.group_id or item.message_id, []).append(item)
        if len(groups) <= 1 or self.cfg.embed_pool_size <= 1:
            per_group = [self._run_group(g, deadline) for g in groups.values()]
        else:
            workers = min(self.cfg.embed_pool_size, len(groups))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                per_group = list(pool.map(lambda g: self._run_group(g, deadline), groups.values()))
        results: dict[str, Result] = {}
        for group_results in per_group:
            results.update(group_results)
        self._flush(results)
        return {item.message_id: results[item.message_id] for item in items}

    def _run_group(self, items: list[BatchItem], deadline: float | None) -> dict[str, Result]:
        results: dict[str, Result] = {}
        pending: dict[str, Result] = {}  # vector key -> result whose put is not yet written
        blocked = False
        for item in items:
            fields: dict[str, Any] = {"message_id": item.message_id}
            try:
                msg = parse_message(item.body)
            except MessageError as exc:
                results[item.message_id] = Result(
                    "permanent_failure", converge.INVALID_MESSAGE, str(exc), fields
                )
                continue
            vkey = vector_key(msg.bucket, msg.key)
            fields.update(bucket=msg.bucket, key=msg.key, vector_key=vkey)
            if blocked:
                result = Result(
                    "transient_failure",
                    converge.GROUP_BLOCKED,
                    "an earlier message of this group failed; SQS redelivers both in order",
                    fields,
                )
            elif deadline is not None and self._clock() >= deadline:
                result = Result(
                    "transient_failure",
                    converge.DEADLINE_EXCEEDED,
                    "no time left in this invocation",
                    fields,
                )
            else:
                result = self.process(
                    msg,
                    deadline,
                    {k: r.record for k, r in pending.items() if r.record is not None},
                )
                result.fields = {"message_id": item.message_id, **result.fields}
                # A later result about the object's current state (re-embedded,
                # deleted, or now unembeddable) supersedes a put of an earlier version
                # still waiting for the batch flush.
                earlier = pending.get(vkey)
                if earlier is not None and result.outcome in _SUPERSEDING:
                    earlier.record = None
                    earlier.fields["superseded_in_batch"] = True
                    del pending[vkey]
                if result.record is not None:
                    pending[vkey] = result
            if result.outcome == "transient_failure":
                blocked = True
            results[item.message_id] = result
        return results

    def _flush(self, results: dict[str, Result]) -> None:
        """Write every pending vector of the batch; on failure they all become transient."""
        writers = [r for r in results.values() if r.record is not None]
        if not writers:
            return
        try:
            self.index.put([r.record for r in writers if r.record is not None])
        except Exception as exc:
            detail = (
                _client_error_text(exc)
                if isinstance(exc, ClientError)
                else f"{type(exc).__name__}: {exc}"
            )
            self.log.warning("PutVectors failed for the batch", extra={"detail": detail})
            for r in writers:
                r.outcome = "transient_failure"
                r.reason = converge.PUT_VECTORS_FAILED
                r.detail = detail
                r.record = None


def _with(
    result: Result, outcome: Outcome, *, reason: str | None = None, detail: str | None = None
) -> Result:
    result.outcome = outcome
    result.reason = reason
    result.detail = detail
    return result


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _client_error_text(exc: ClientError) -> str:
    message = exc.response.get("Error", {}).get("Message", "")
    return f"{exc.operation_name}: {_code(exc)} {message}".strip()
