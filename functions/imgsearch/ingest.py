"""One queue message -> the index converged on its object (I/O).

:class:`ObjectConverger` walks one message through the steps in ``imgsearch.converge``
against S3 (via :class:`~imgsearch.source_objects.SourceObjects`), Bedrock (via
:class:`~imgsearch.embeddings.Embedder`) and S3 Vectors (via
:class:`~imgsearch.vectors.VectorIndex`) and returns a :class:`MessageResult`; it never
raises for a message. A new vector is not written here but handed back in the result,
so that ``imgsearch.batch`` writes all vectors of a batch in one ``PutVectors``; after a
long embedding or one by S3 location, a HeadObject makes sure the ETag is still current.
A current vector that lacks a newer metadata key is handed back the same way, with its
stored data and the full metadata (``metadata_upgraded``, see ``imgsearch.upgrade``).

An earlier version's vector is deleted only when the local checks find the new bytes
bad (empty, corrupt, truncated, too large, unsupported format, archived): a model's
answer may be about the deployment's configuration rather than the image, so it never
costs the index a vector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch import converge, upgrade
from imgsearch.aws_errors import client_error_text
from imgsearch.bedrock_errors import CONNECTION_ERROR
from imgsearch.config import PipelineConfig
from imgsearch.contract import OUTCOME_FIELDS
from imgsearch.embeddings import Embedder, EmbeddingError, delivery_attempts
from imgsearch.images import ImageInfo, UnsupportedImage, sniff
from imgsearch.message_result import Log, MessageResult, keeping_vector
from imgsearch.messages import ObjectMessage, now_iso, vector_key
from imgsearch.source_objects import SourceObjects
from imgsearch.vectors import (
    VectorIndex,
    VectorRecord,
    VectorRejected,
    build_metadata,
    dropped_keys,
    epoch_seconds,
    validate_record,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RECHECK_AFTER_SECONDS = 2.0
"""An embedding this long (or any by S3 location) is followed by a HeadObject: if the
object's ETag changed meanwhile, the vector is not written (``stale_skipped``). A Nova
image embedding takes well under a second; this long means retries or a slow model."""
MODEL_BUDGET_SPENT = "model_attempts_spent"
"""Stable reason: this message's share of ``max_model_attempts_per_object`` is used up."""


class ObjectConverger:
    """Brings the index to the current state of one message's object."""

    def __init__(
        self,
        cfg: PipelineConfig,
        s3: S3Client,
        embedder: Embedder,
        index: VectorIndex,
        *,
        logger: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = now_iso,
    ) -> None:
        self.cfg = cfg
        self.model = cfg.model
        self.source = SourceObjects(s3, owner=cfg.source_bucket_owner, model=self.model)
        self.embedder = embedder
        self.index = index
        self.log: Log = logger or logging.getLogger(__name__)
        self._clock = clock
        self._now = now

    def converge(
        self,
        msg: ObjectMessage,
        deadline: float | None = None,
        pending: Mapping[str, VectorRecord] | None = None,
        *,
        receive_count: int = 1,
    ) -> MessageResult:
        """Converge the index on ``msg``'s object; never raises.

        ``pending`` holds vectors of this batch not yet written; they count as stored.
        ``receive_count`` (SQS's ApproximateReceiveCount) sets this delivery's share of
        the message's model attempts (``max_model_attempts_per_object``).
        """
        vkey = vector_key(msg.bucket, msg.key)
        fields: dict[str, Any] = {
            "bucket": msg.bucket,
            "key": msg.key,
            "vector_key": vkey,
            "kind": msg.kind,
            "origin": msg.origin,
        }
        result = MessageResult("transient_failure", fields=fields)
        try:
            return self._converge(msg, result, deadline, pending or {}, receive_count)
        except EmbeddingError as exc:
            return result.fail(exc.reason, exc.detail, transient=exc.transient)
        except ClientError as exc:
            reason = (
                converge.S3VECTORS_ERROR
                if exc.operation_name.endswith("Vectors")
                else converge.S3_ERROR
            )
            return result.fail(reason, client_error_text(exc), transient=True)
        except BotoCoreError as exc:
            return result.fail(CONNECTION_ERROR, f"{type(exc).__name__}: {exc}", transient=True)
        except Exception as exc:  # keep the message: a bug must not drop an image
            self.log.exception("unexpected error", extra=fields)
            return result.fail(
                converge.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", transient=True
            )

    def _converge(
        self,
        msg: ObjectMessage,
        result: MessageResult,
        deadline: float | None,
        pending: Mapping[str, VectorRecord],
        receive_count: int,
    ) -> MessageResult:
        fields = result.fields
        vkey: str = fields["vector_key"]
        etag = converge.normalize_etag(msg.etag)
        size = msg.size
        modified: int | None = None
        if msg.kind == "delete" or etag is None:
            head = self.source.head(msg, result)
            if head is None:
                return self._delete(result, vkey)
            if isinstance(head, MessageResult):
                return head
            etag, size, modified = head
        fields["etag"] = etag

        waiting = pending.get(vkey)
        stored: dict[str, Any] | None = (
            {"key": vkey, "metadata": dict(waiting.metadata)}
            if waiting is not None
            else self.index.get([vkey]).get(vkey)
        )
        stored_md = stored.get("metadata") if stored else None
        if stored_md is not None and converge.is_unchanged(stored_md, etag, self.model.model_id):
            upgraded = self._upgrade(msg, etag, stored_md, modified, result)
            if upgraded is not None:
                return upgraded
            stored = None  # deleted meanwhile: embed it afresh
        had_vector = stored is not None

        try:
            read = self.source.read(msg, etag, size, result)
        except UnsupportedImage as exc:  # S3 says empty or archived
            return self._bad_bytes(result, exc.reason, exc.detail, vkey, had_vector)
        if read is None:
            return self._delete(result, vkey)
        if isinstance(read, MessageResult):
            return read
        data, total, modified = read
        complete = len(data) >= total
        fields["size"] = total
        try:
            info = self._inspect(data, total, complete, fields)
        except UnsupportedImage as exc:
            return self._bad_bytes(result, exc.reason, exc.detail, vkey, had_vector)
        route = converge.image_route(total, complete, self.model)
        fields["route"] = route
        try:
            inline = data if route == "inline" else None
            vector = self._embed(msg, info, inline, result, deadline, receive_count)
        except EmbeddingError as exc:
            # Transient or not, the model's answer is no proof the bytes are bad: the
            # earlier vector stays (see the module docstring).
            return keeping_vector(result, had_vector).fail(
                exc.reason, exc.detail, transient=exc.transient
            )
        changed = self._recheck(msg, etag, route, result)
        if changed is not None:
            return changed
        try:
            ingested_at = self._now()
            metadata = build_metadata(
                bucket=msg.bucket,
                key=msg.key,
                image=info,
                size=total,
                etag=etag,
                model_id=self.model.model_id,
                ingested_at=ingested_at,
                ingested_epoch=epoch_seconds(ingested_at),
                modified_epoch=modified,
            )
            if dropped := dropped_keys(metadata, msg.key):
                fields[OUTCOME_FIELDS.metadata_dropped] = dropped
            record = VectorRecord(vkey, vector, metadata)
            validate_record(
                record, dimension=self.cfg.dimension, distance_metric=self.cfg.distance_metric
            )
        except VectorRejected as exc:
            return keeping_vector(result, had_vector).fail(exc.reason, exc.detail, transient=False)
        result.record = record
        return result.end("embedded")

    # ------------------------------------------------------------------ steps

    def _upgrade(
        self,
        msg: ObjectMessage,
        etag: str,
        stored: Mapping[str, Any],
        modified: int | None,
        result: MessageResult,
    ) -> MessageResult | None:
        """``unchanged``, or a rewrite with newer metadata keys (``imgsearch.upgrade``)."""
        who = {"bucket": msg.bucket, "key": msg.key, "model_id": self.model.model_id}
        if not upgrade.missing_keys(stored, **who):
            return result.end("unchanged")
        if modified is None:  # LastModified is in no message: one HeadObject
            head = self.source.head(msg, result)
            if head is None:
                return self._delete(result, result.fields["vector_key"])
            if isinstance(head, MessageResult):
                return head
            if head.etag != etag:
                return result.end("stale_skipped", detail=f"object no longer has ETag {etag}")
            modified = head.modified
        record = upgrade.upgraded_record(
            self.index, result.fields["vector_key"], stored, **who, modified_epoch=modified
        )
        if record == "current":
            return result.end("unchanged")
        if record == "gone":
            return None
        try:
            validate_record(
                record, dimension=self.cfg.dimension, distance_metric=self.cfg.distance_metric
            )
        except VectorRejected as exc:  # e.g. the index's dimension changed: say so, keep it
            return keeping_vector(result, True).fail(exc.reason, exc.detail, transient=False)
        result.fields[OUTCOME_FIELDS.metadata_added] = sorted(set(record.metadata) - set(stored))
        result.record = record
        return result.end("metadata_upgraded")

    def _inspect(
        self, data: bytes, total: int, complete: bool, fields: dict[str, Any]
    ) -> ImageInfo:
        """The image's format and size, if the model can take it; else UnsupportedImage."""
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
                "unsupported_format", f"{self.model.model_id} does not accept {info.format} images"
            )
        return info

    def _embed(
        self,
        msg: ObjectMessage,
        info: ImageInfo,
        inline: bytes | None,
        result: MessageResult,
        deadline: float | None,
        receive: int,
    ) -> list[float]:
        """The embedding, within this delivery's share of the message's model attempts."""
        fields = result.fields
        cfg = self.cfg
        allowed = delivery_attempts(
            receive,
            per_delivery=self.embedder.max_attempts,
            total=cfg.max_model_attempts_per_object,
            deliveries=cfg.max_receive_count,
        )
        budget = (
            f"max_model_attempts_per_object={cfg.max_model_attempts_per_object} across "
            f"deliveries; this is delivery {receive} of at most {cfg.max_receive_count}"
        )
        if allowed < 1:
            raise EmbeddingError(
                MODEL_BUDGET_SPENT,
                f"no InvokeModel attempt left ({budget}); the message goes to the DLQ: "
                "redrive it once the cause is fixed",
                transient=True,
            )

        def on_retry(reason: str, attempt: int, delay: float) -> None:
            result.retries += 1
            self.log.warning(
                f"Bedrock {reason}; retry {attempt} in {delay:.2f}s",
                extra={**fields, "retry_reason": reason, "attempt": attempt},
            )

        started = self._clock()
        try:
            vector = self.embedder.embed_image(
                purpose=cfg.index_purpose,
                image_format=info.format,
                data=inline,
                s3_uri=msg.uri if inline is None else None,
                bucket_owner=cfg.source_bucket_owner or None,
                deadline=deadline,
                on_retry=on_retry,
                max_attempts=allowed,
            )
        except EmbeddingError as exc:
            if exc.transient and allowed < self.embedder.max_attempts:
                exc.detail += f"; {allowed} attempt(s) allowed to this delivery by {budget}"
            raise
        result.embed_ms = (self._clock() - started) * 1000.0
        return vector

    def _recheck(
        self, msg: ObjectMessage, etag: str, route: str, result: MessageResult
    ) -> MessageResult | None:
        """None if the object still has ``etag``; else the message's end, with no vector.

        By S3 location, Bedrock read whatever version was current then, maybe a newer one
        than ``etag``. After a long embedding, a newer version's message may have been
        handled meanwhile (one object's messages in two groups, when a script computed
        ``MessageGroupId`` with other settings): writing now could leave an older ETag's
        vector last, with nothing to correct it. One HeadObject settles both.
        """
        slow = (result.embed_ms or 0.0) >= RECHECK_AFTER_SECONDS * 1000.0
        if route != "s3" and not slow:
            return None
        result.fields["etag_rechecked"] = True
        head = self.source.head(msg, result)
        if isinstance(head, MessageResult):
            return head  # transient: the message comes back
        if head is None:
            result.fields["object_deleted"] = True
            return result.end(
                "stale_skipped",
                detail=f"object deleted while ETag {etag} was embedded; its delete event follows",
            )
        if head.etag != etag:
            result.fields["current_etag"] = head.etag
            return result.end(
                "stale_skipped",
                detail=f"object changed from ETag {etag} to {head.etag} while it was embedded; "
                "its newer event follows",
            )
        return None

    # ------------------------------------------------------------------ endings

    def _delete(self, result: MessageResult, vkey: str) -> MessageResult:
        self.index.delete([vkey])
        return result.end("deleted")

    def _bad_bytes(
        self, result: MessageResult, reason: str, detail: str, vkey: str, had_vector: bool
    ) -> MessageResult:
        """Acknowledge a message whose current object the local checks find unembeddable.

        A vector stored for an earlier version describes content the bucket no longer
        has, so it goes too.
        """
        if had_vector:
            self.index.delete([vkey])
            result.fields["stale_vector_deleted"] = True
        return result.fail(reason, detail, transient=False)


__all__ = ["MODEL_BUDGET_SPENT", "RECHECK_AFTER_SECONDS", "Log", "MessageResult", "ObjectConverger"]
