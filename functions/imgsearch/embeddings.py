"""Embedding requests and responses for the Bedrock models, and the Bedrock edge.

Two model families sit behind one interface:

* Amazon Nova Multimodal Embeddings (``family == "nova"``)::

    request  {"taskType": "SINGLE_EMBEDDING",
              "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX",
                                        "embeddingDimension": 1024,
                                        "image": {"format": "jpeg",
                                                  "source": {"bytes": "<base64>"}}}}
             (or "source": {"s3Location": {"uri": "s3://...", "bucketOwner": "..."}},
              or "text": {"truncationMode": "END", "value": "..."})
    response {"embeddings": [{"embeddingType": "IMAGE", "embedding": [...]}]}

* TwelveLabs Marengo Embed 3.0 (``family == "marengo"``, 512 dimensions, no purpose)::

    request  {"inputType": "image",
              "image": {"mediaSource": {"base64String": "<base64>"}}}
             (or "mediaSource": {"s3Location": {"uri": ..., "bucketOwner": ...}},
              or {"inputType": "text", "text": {"inputText": "..."}})
    response {"data": [{"embedding": [...]}]}

The request builders and :func:`parse_response` are pure. :class:`Embedder` wraps a
``bedrock-runtime`` client (passed in, so the CLI can use it outside Lambda) and owns
the retry policy: exponential backoff with full jitter on throttling and server-side
errors, bounded by a deadline (the Lambda's remaining time). Give it a client whose
own botocore retries are off, or the two retry loops multiply.

Every failure is an :class:`EmbeddingError` whose ``transient`` says what the caller
should do with the message: ``True`` = leave it for SQS to redeliver (and, after
``maxReceiveCount``, the DLQ); ``False`` = the input itself is bad, acknowledge it.
Access and configuration errors are transient on purpose: fixing IAM or model access
and redriving the DLQ must recover every image.

What each Bedrock error means (retry now, redeliver, or the image's fault) is decided
in ``imgsearch.bedrock_errors``.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pybase64
from botocore.exceptions import ClientError

from imgsearch.aws_errors import NETWORK_ERRORS, backoff_delay, error_code, error_message
from imgsearch.bedrock_errors import (
    CONNECTION_ERROR,
    REJECTED_INPUT,
    classify,
)
from imgsearch.models import ModelRef, ModelSpec

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

# Stable machine reasons of the request builders (logged and used as a metric dimension:
# never rename); the reasons of Bedrock's answers are in ``imgsearch.bedrock_errors``.
INVALID_RESPONSE = "invalid_response"
IMAGE_TOO_LARGE = "too_large"
UNSUPPORTED_FORMAT = "unsupported_format"
TEXT_TOO_LONG = "text_too_long"
BAD_REQUEST = "bad_request"


class EmbeddingError(Exception):
    """An embedding could not be made; ``transient`` says whether redelivery may help."""

    def __init__(self, reason: str, detail: str, *, transient: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.transient = transient


# --------------------------------------------------------------------------- requests


def image_request(
    model: ModelSpec,
    *,
    purpose: str,
    dimension: int,
    image_format: str,
    data: bytes | None = None,
    s3_uri: str | None = None,
    bucket_owner: str | None = None,
) -> dict[str, Any]:
    """The InvokeModel body embedding one image, inline (``data``) or by ``s3_uri``."""
    return _image_request(
        model,
        purpose=purpose,
        dimension=dimension,
        image_format=image_format,
        data=data,
        s3_uri=s3_uri,
        bucket_owner=bucket_owner,
        text_base64=True,
    )


def _image_request(
    model: ModelSpec,
    *,
    purpose: str,
    dimension: int,
    image_format: str,
    data: bytes | None,
    s3_uri: str | None,
    bucket_owner: str | None,
    text_base64: bool,
) -> dict[str, Any]:
    """:func:`image_request`; with ``text_base64=False`` the base64 stays ``bytes``, for
    :func:`encode_request` only: decoding megabytes of it to ``str`` (and botocore
    encoding them back) would cost more CPU than everything else done per image."""
    if (data is None) == (s3_uri is None):
        raise EmbeddingError(BAD_REQUEST, "pass exactly one of data or s3_uri", transient=False)
    if image_format not in model.image_formats:
        raise EmbeddingError(
            UNSUPPORTED_FORMAT,
            f"{model.model_id} does not accept {image_format} images "
            f"(accepted: {', '.join(model.image_formats)})",
            transient=False,
        )
    if data is not None and len(data) > model.max_inline_image_bytes:
        raise EmbeddingError(
            IMAGE_TOO_LARGE,
            f"{len(data)} bytes is above the {model.max_inline_image_bytes}-byte inline limit "
            "of the InvokeModel body; pass s3_uri instead",
            transient=False,
        )
    source: dict[str, Any]
    if data is not None:
        raw = pybase64.b64encode(data)  # SIMD: the stdlib's takes ~3 ms per MB
        encoded: bytes | str = raw.decode("ascii") if text_base64 else raw
        source = {"bytes" if model.family == "nova" else "base64String": encoded}
    else:
        location = {"uri": str(s3_uri)}
        if bucket_owner:
            location["bucketOwner"] = bucket_owner
        source = {"s3Location": location}
    if model.family == "nova":
        return _nova_single(
            model, purpose, dimension, image={"format": image_format, "source": source}
        )
    return {"inputType": "image", "image": {"mediaSource": source}}


def text_request(model: ModelSpec, *, purpose: str, dimension: int, text: str) -> dict[str, Any]:
    """The InvokeModel body embedding one text query."""
    if not text.strip():
        raise EmbeddingError(BAD_REQUEST, "the text to embed is empty", transient=False)
    if len(text) > model.max_text_chars:
        raise EmbeddingError(
            TEXT_TOO_LONG,
            f"{len(text)} characters is above the {model.max_text_chars}-character limit "
            f"of {model.model_id}; shorten the query",
            transient=False,
        )
    if model.family == "nova":
        return _nova_single(
            model, purpose, dimension, text={"truncationMode": "END", "value": text}
        )
    return {"inputType": "text", "text": {"inputText": text}}


def _nova_single(model: ModelSpec, purpose: str, dimension: int, **content: Any) -> dict[str, Any]:
    """Nova MME's ``SINGLE_EMBEDDING`` envelope around one ``image`` or ``text`` input."""
    _check_dimension(model, dimension)
    return {
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": purpose,
            "embeddingDimension": dimension,
            **content,
        },
    }


def _check_dimension(model: ModelSpec, dimension: int) -> None:
    if dimension not in model.dimensions:
        raise EmbeddingError(
            BAD_REQUEST,
            f"{model.model_id} cannot produce {dimension} dimensions "
            f"(allowed: {', '.join(map(str, model.dimensions))})",
            transient=False,
        )


_B64_PATHS: tuple[tuple[str, ...], ...] = (
    ("singleEmbeddingParams", "image", "source", "bytes"),  # Nova
    ("image", "mediaSource", "base64String"),  # Marengo
)
_B64_SLOT = "@@imgsearch-base64@@"


def encode_request(body: Mapping[str, Any]) -> bytes:
    """The request body as compact JSON bytes, identical to ``json.dumps(...).encode()``.

    An inline image's base64 (``str``, or ``bytes`` on the Embedder's path) is spliced in
    after encoding instead of being scanned by the JSON encoder: it never needs escaping, and
    scanning, decoding or copying megabytes of it as ``str`` would cost more CPU than
    everything else the embedder does per image. botocore sends ``bytes`` as they are.
    """
    for path in _B64_PATHS:
        node: Any = body
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(node, (bytes, str)):
            text = json.dumps(_with_slot(body, path), separators=(",", ":"))
            head, tail = text.split(f'"{_B64_SLOT}"', 1)
            encoded = node if isinstance(node, bytes) else node.encode("ascii")
            return b"".join((head.encode(), b'"', encoded, b'"', tail.encode()))
    return json.dumps(body, separators=(",", ":")).encode()


def _with_slot(node: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    copy = dict(node)
    key = path[0]
    copy[key] = _B64_SLOT if len(path) == 1 else _with_slot(node[key], path[1:])
    return copy


# --------------------------------------------------------------------------- responses


def parse_response(
    model: ModelSpec, body: bytes | str | Mapping[str, Any], dimension: int
) -> list[float]:
    """The embedding in an InvokeModel response body, checked for length and finiteness.

    A malformed response is the service's fault, not the image's: ``transient=True``.
    """
    payload: Any
    if isinstance(body, (bytes, str)):
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise EmbeddingError(
                INVALID_RESPONSE, f"response body is not JSON: {exc}", transient=True
            ) from exc
    else:
        payload = body
    if not isinstance(payload, Mapping):
        raise EmbeddingError(INVALID_RESPONSE, "response body is not an object", transient=True)
    field = "embeddings" if model.family == "nova" else "data"
    entries = payload.get(field)
    if isinstance(entries, Mapping):  # Marengo has been seen returning one object
        entries = [entries]
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
        raise EmbeddingError(
            INVALID_RESPONSE,
            f"response has no {field}[0] (keys: {', '.join(sorted(payload)) or 'none'})",
            transient=True,
        )
    vector = entries[0].get("embedding")
    if not isinstance(vector, list):
        raise EmbeddingError(
            INVALID_RESPONSE, f"response {field}[0] has no embedding list", transient=True
        )
    if len(vector) != dimension:
        raise EmbeddingError(
            INVALID_RESPONSE,
            f"expected a {dimension}-dimension embedding, got {len(vector)}",
            transient=True,
        )
    # Element by element, not by a sum: math.fsum raises ValueError on inf + -inf and
    # OverflowError on large finite values, which would escape as an unexpected error.
    try:
        finite = all(map(math.isfinite, vector))
    except TypeError as exc:
        raise EmbeddingError(
            INVALID_RESPONSE, "embedding contains non-numbers", transient=True
        ) from exc
    if not finite:
        raise EmbeddingError(INVALID_RESPONSE, "embedding contains NaN or Infinity", transient=True)
    return list(map(float, vector))


# --------------------------------------------------------------------------- the edge


class Embedder:
    """Embeds images and texts with one Bedrock model at one dimension.

    ``model`` is the configured id read by :func:`imgsearch.models.parse_model_id`:
    ``InvokeModel`` is called with that id (an inference profile's, where the Region
    offers the model only that way) while request shapes and limits come from the
    model behind it.
    """

    def __init__(
        self,
        client: BedrockRuntimeClient,
        model: ModelRef,
        dimension: int,
        *,
        max_attempts: int = 10,
        base_delay: float = 0.1,
        max_delay: float = 10.0,
        on_retry: Callable[[str, int, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        _check_dimension(model.spec, dimension)
        self.client = client
        self.model = model.spec
        self.model_id = model.model_id
        """What ``InvokeModel`` is called with: the configured id, a profile's if any."""
        self.dimension = dimension
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def embed_image(
        self,
        *,
        purpose: str,
        image_format: str,
        data: bytes | None = None,
        s3_uri: str | None = None,
        bucket_owner: str | None = None,
        deadline: float | None = None,
        on_retry: Callable[[str, int, float], None] | None = None,
        max_attempts: int | None = None,
    ) -> list[float]:
        """Embed one image given as bytes (inline) or as an ``s3://`` URI.

        ``deadline`` is a ``time.monotonic()`` instant after which no retry starts;
        ``on_retry(reason, attempt, delay)`` (else the instance's) hears each retry;
        ``max_attempts`` (at most the instance's) is this call's share of a budget.
        """
        body = _image_request(
            self.model,
            purpose=purpose,
            dimension=self.dimension,
            image_format=image_format,
            data=data,
            s3_uri=s3_uri,
            bucket_owner=bucket_owner,
            text_base64=False,
        )
        attempts = self.max_attempts if max_attempts is None else max_attempts
        return self._invoke(body, deadline, on_retry or self.on_retry, attempts)

    def embed_text(
        self,
        text: str,
        *,
        purpose: str,
        deadline: float | None = None,
        on_retry: Callable[[str, int, float], None] | None = None,
    ) -> list[float]:
        """Embed one text (a search query)."""
        body = text_request(self.model, purpose=purpose, dimension=self.dimension, text=text)
        return self._invoke(body, deadline, on_retry or self.on_retry, self.max_attempts)

    def _invoke(
        self,
        body: dict[str, Any],
        deadline: float | None,
        on_retry: Callable[[str, int, float], None] | None,
        max_attempts: int,
    ) -> list[float]:
        payload = encode_request(body)
        attempt = 0
        while True:
            try:
                response = self.client.invoke_model(
                    modelId=self.model_id,
                    body=payload,
                    contentType="application/json",
                    accept="application/json",
                )
                raw = response["body"].read()
                return parse_response(self.model, raw, self.dimension)
            except ClientError as exc:
                reason, retry = classify(exc)
                detail = f"{error_code(exc) or 'Unknown'}: {error_message(exc)}"
                if not retry:
                    raise EmbeddingError(
                        reason, detail, transient=reason != REJECTED_INPUT
                    ) from exc
            except NETWORK_ERRORS as exc:
                reason, detail = CONNECTION_ERROR, f"{type(exc).__name__}: {exc}"
            attempt += 1
            delay = backoff_delay(
                attempt - 1, base=self.base_delay, cap=self.max_delay, rng=self._rng
            )
            if attempt >= max_attempts:
                raise EmbeddingError(
                    reason, f"{detail} (gave up after {attempt} attempts)", transient=True
                )
            if deadline is not None and self._clock() + delay >= deadline:
                raise EmbeddingError(
                    reason,
                    f"{detail} (gave up after {attempt} attempts: the time budget is spent)",
                    transient=True,
                )
            if on_retry is not None:
                on_retry(reason, attempt, delay)
            self._sleep(delay)


def delivery_attempts(receive_count: int, *, per_delivery: int, total: int, deliveries: int) -> int:
    """InvokeModel attempts the ``receive_count``-th delivery of a message may make.

    Deliveries 1..``deliveries`` (the queue's ``maxReceiveCount``) share ``total`` attempts;
    each earlier one is assumed to have spent its whole share (SQS tells only the count).
    The first gets up to ``per_delivery``; every later one keeps at least one while the
    budget lasts, so fixing the cause while a message waits still recovers it. The sum
    over all deliveries never exceeds ``total``; past it every delivery gets 0.
    """
    spent = 0
    allowed = 0
    for n in range(1, max(receive_count, 1) + 1):
        left = total - spent
        later = max(deliveries - n, 0)
        allowed = max(min(1, left), min(per_delivery, left - later))
        spent += allowed
    return allowed
