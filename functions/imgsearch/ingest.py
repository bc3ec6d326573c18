"""One queue message -> the index converged on its object (I/O).

:class:`ObjectConverger` walks one message through the steps in ``imgsearch.converge``
against S3, Bedrock (via :class:`~imgsearch.embeddings.Embedder`) and S3 Vectors (via
:class:`~imgsearch.vectors.VectorIndex`) and returns a :class:`MessageResult`; it never
raises for a message. A new vector is not written here but handed back in the result,
so that ``imgsearch.batch`` writes all vectors of a batch in one ``PutVectors``; after a
long embedding or one by S3 location, a HeadObject makes sure the ETag is still current.

An earlier version's vector is deleted only when the local checks find the new bytes
bad (empty, corrupt, truncated, too large, unsupported format, archived): a model's
answer may be about the deployment's configuration rather than the image, so it never
costs the index a vector.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from imgsearch import converge
from imgsearch.aws_errors import client_error_text, error_code, http_status
from imgsearch.bedrock_errors import CONNECTION_ERROR
from imgsearch.config import PipelineConfig
from imgsearch.contract import OUTCOME_FIELDS, SUCCESS_OUTCOMES, Outcome
from imgsearch.embeddings import Embedder, EmbeddingError, delivery_attempts
from imgsearch.images import HEADER_READ_BYTES, ImageInfo, UnsupportedImage, sniff
from imgsearch.messages import ObjectMessage, now_iso, vector_key
from imgsearch.vectors import (
    VectorIndex,
    VectorRecord,
    VectorRejected,
    build_metadata,
    validate_record,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectRequestTypeDef, HeadObjectRequestTypeDef

RECHECK_AFTER_SECONDS = 2.0
"""An embedding this long (or any by S3 location) is followed by a HeadObject: if the
object's ETag changed meanwhile, the vector is not written (``stale_skipped``). A Nova
image embedding takes well under a second; this long means retries or a slow model."""
MODEL_BUDGET_SPENT = "model_attempts_spent"
"""Stable reason: this message's share of ``max_model_attempts_per_object`` is used up."""
ACCESS_DENIED_HINT = (
    "; if the bucket uses SSE-KMS with a customer-managed key, set source_kms_key_arn (and "
    "let the embedder's role use the key in its key policy); if another account owns the "
    "bucket, set source_bucket_owner"
)
"""Appended to an S3 AccessDenied: S3 answers a missing kms:Decrypt and a wrong
``ExpectedBucketOwner`` with the same 403 AccessDenied as a missing s3:GetObject."""


class Log(Protocol):
    """What the embedder logs through: a ``logging.Logger`` or Powertools' ``Logger``."""

    def warning(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...

    def exception(self, msg: str, *, extra: Mapping[str, Any] | None = ...) -> None: ...


@dataclass
class MessageResult:
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

    def end(
        self, outcome: Outcome, reason: str | None = None, detail: str | None = None
    ) -> MessageResult:
        """Set the outcome (and the reason for a failure); returns ``self``."""
        self.outcome = outcome
        self.reason = reason
        self.detail = detail
        return self

    def fail(self, reason: str, detail: str, *, transient: bool) -> MessageResult:
        return self.end("transient_failure" if transient else "permanent_failure", reason, detail)


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
        self.s3 = s3
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
        if msg.kind == "delete" or etag is None:
            head = self._head(msg, result)
            if head is None:
                return self._delete(result, vkey)
            if isinstance(head, MessageResult):
                return head
            etag, size = head
        fields["etag"] = etag

        waiting = pending.get(vkey)
        stored: dict[str, Any] | None = (
            {"key": vkey, "metadata": dict(waiting.metadata)}
            if waiting is not None
            else self.index.get([vkey]).get(vkey)
        )
        if converge.is_unchanged(
            stored.get("metadata") if stored else None, etag, self.model.model_id
        ):
            return result.end("unchanged")
        had_vector = stored is not None

        read = self._read(msg, etag, size, result, had_vector=had_vector)
        if isinstance(read, MessageResult):
            return read
        data, total = read
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
            return _keeping_vector(result, had_vector).fail(
                exc.reason, exc.detail, transient=exc.transient
            )
        changed = self._recheck(msg, etag, route, result)
        if changed is not None:
            return changed
        try:
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
        except VectorRejected as exc:
            return _keeping_vector(result, had_vector).fail(exc.reason, exc.detail, transient=False)
        result.record = record
        return result.end("embedded")

    # ------------------------------------------------------------------ steps

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
        head = self._head(msg, result)
        if isinstance(head, MessageResult):
            return head  # transient: the message comes back
        if head is None:
            result.fields["object_deleted"] = True
            return result.end(
                "stale_skipped",
                detail=f"object deleted while ETag {etag} was embedded; its delete event follows",
            )
        if head[0] != etag:
            result.fields["current_etag"] = head[0]
            return result.end(
                "stale_skipped",
                detail=f"object changed from ETag {etag} to {head[0]} while it was embedded; "
                "its newer event follows",
            )
        return None

    def _head(
        self, msg: ObjectMessage, result: MessageResult
    ) -> tuple[str, int] | MessageResult | None:
        """(etag, size) of the current object, None if it is gone, or the message's end."""
        request: HeadObjectRequestTypeDef = {"Bucket": msg.bucket, "Key": msg.key}
        if self.cfg.source_bucket_owner:
            request["ExpectedBucketOwner"] = self.cfg.source_bucket_owner
        try:
            head = self.s3.head_object(**request)
        except ParamValidationError as exc:
            return _refused_name(result, exc)
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(error_code(exc), http_status(exc))
            if verdict == "gone":
                return None
            return result.fail(reason, _s3_error_text(exc, reason), transient=True)
        etag = converge.normalize_etag(head.get("ETag"))
        if etag is None:
            return result.fail(converge.S3_ERROR, "HeadObject returned no ETag", transient=True)
        return etag, int(head.get("ContentLength") or 0)

    def _read(
        self,
        msg: ObjectMessage,
        etag: str,
        size: int | None,
        result: MessageResult,
        *,
        had_vector: bool,
    ) -> tuple[bytes, int] | MessageResult:
        """(leading bytes, total size) of the object at ``etag``, or the message's end."""
        vkey: str = result.fields["vector_key"]
        request: GetObjectRequestTypeDef = {
            "Bucket": msg.bucket,
            "Key": msg.key,
            "IfMatch": f'"{etag}"',
        }
        if self.cfg.source_bucket_owner:
            # S3 refuses (403) when another account owns a bucket of this name.
            request["ExpectedBucketOwner"] = self.cfg.source_bucket_owner
        if size != 0:
            limit = converge.read_limit(size, self.model, HEADER_READ_BYTES)
            request["Range"] = f"bytes=0-{limit - 1}"
        try:
            response = self.s3.get_object(**request)
            data: bytes = response["Body"].read()
        except ParamValidationError as exc:
            return _refused_name(result, exc)
        except ClientError as exc:
            verdict, reason = converge.classify_s3_error(error_code(exc), http_status(exc))
            if verdict == "gone":
                return self._delete(result, vkey)
            if verdict == "stale":
                return result.end(
                    "stale_skipped",
                    detail=f"object no longer has ETag {etag}; its newer event follows",
                )
            if verdict == "empty":
                return self._bad_bytes(result, "empty", "the object is empty", vkey, had_vector)
            if verdict == "archived":
                return self._bad_bytes(
                    result,
                    reason,
                    "the object is in an archive storage class; restore it to index it",
                    vkey,
                    had_vector,
                )
            return result.fail(reason, _s3_error_text(exc, reason), transient=True)
        result.bytes_read += len(data)
        return data, converge.total_size(response.get("ContentRange"), len(data))

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


def _keeping_vector(result: MessageResult, had_vector: bool) -> MessageResult:
    """Say in the log line that an earlier version's vector stays beside this failure."""
    if had_vector:
        result.fields[OUTCOME_FIELDS.earlier_vector_kept] = True
    return result


def _s3_error_text(exc: ClientError, reason: str) -> str:
    """The error as logged, naming the settings that fix an access denial."""
    text = client_error_text(exc)
    return text + ACCESS_DENIED_HINT if reason == converge.S3_ACCESS_DENIED else text


def _refused_name(result: MessageResult, exc: ParamValidationError) -> MessageResult:
    """botocore refused the message's bucket or key: no request about it can succeed."""
    return result.fail(converge.INVALID_MESSAGE, str(exc), transient=False)
