"""The search API's requests and answers: an HTTP API (payload 2.0) event in, a response out.

:class:`SearchApi` routes the three routes of :mod:`imgsearch.api_shapes`, parses the
search body against :data:`~imgsearch.api_shapes.SEARCH_FIELDS`, runs the query through
the one search library (:class:`imgsearch.search.Searcher`, with the API's spelling and
only the source bucket allowed) and shapes the answer, with presigned URLs for results
in the source bucket. Every failure is ``{"error": {"code", "message", "retryable"}}``
with the status its error names; 429 and 5xx carry ``Retry-After``. The handler
(``imgsearch.handlers.search``) only builds the clients and calls :meth:`SearchApi.handle`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imgsearch.api_shapes import (
    HEALTH_ROUTE,
    OBJECT_ROUTE,
    QUERY_FIELDS,
    SEARCH_FIELDS,
    SEARCH_ROUTE,
)
from imgsearch.aws_errors import NETWORK_ERRORS, error_code, is_throttle
from imgsearch.config import PipelineConfig
from imgsearch.hits import Hit
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.search import DEFAULT_K, Searcher, SearchResult
from imgsearch.search_errors import (
    RETRYABLE_STATUSES,
    QueryImageTooLarge,
    ResourceNotFound,
    SearchError,
    SearchInputError,
)
from imgsearch.search_filters import all_of, check_filter, parse_where
from imgsearch.search_images import image_from_bytes, object_location

Presign = Callable[[str, str], str]
"""(bucket, key) -> a presigned GET URL."""
RETRY_AFTER_SECONDS = 1
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclass(frozen=True)
class ApiAnswer:
    """One HTTP answer: status and JSON body."""

    status: int
    body: dict[str, Any]

    def as_lambda_response(self) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        if self.status in RETRYABLE_STATUSES:
            headers["retry-after"] = str(RETRY_AFTER_SECONDS)
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": json.dumps(self.body, separators=(",", ":"), allow_nan=False),
            "isBase64Encoded": False,
        }


def error_answer(status: int, code: str, message: str) -> ApiAnswer:
    retryable = status in RETRYABLE_STATUSES
    return ApiAnswer(status, {"error": {"code": code, "message": message, "retryable": retryable}})


class SearchApi:
    """The routes over one Searcher; see the module docstring."""

    def __init__(self, cfg: PipelineConfig, searcher: Searcher, presign: Presign) -> None:
        self.cfg = cfg
        self.searcher = searcher
        self.presign = presign
        self.source_bucket = cfg.source_bucket_name

    def handle(self, event: dict[str, Any]) -> ApiAnswer:
        """The answer to one HTTP API event; never raises for a request's fault."""
        try:
            return self._route(event)
        except SearchError as exc:
            return error_answer(exc.status, exc.code, str(exc))
        except ClientError as exc:
            if is_throttle(exc):
                return error_answer(503, "service_unavailable", f"AWS is throttling: {exc}")
            status = 500 if error_code(exc) == "AccessDenied" else 502
            return error_answer(status, "search_failed", f"an AWS call failed: {exc}")
        except NETWORK_ERRORS as exc:
            return error_answer(503, "service_unavailable", f"an AWS service is unreachable: {exc}")
        except BotoCoreError as exc:
            return error_answer(502, "search_failed", f"an AWS call failed: {exc}")

    def _route(self, event: dict[str, Any]) -> ApiAnswer:
        route = str(event.get("routeKey") or "")
        if route == SEARCH_ROUTE:
            return self.search(_json_body(event))
        if route == OBJECT_ROUTE:
            params = event.get("pathParameters") or {}
            key = params.get("key+") or params.get("key") or ""
            return self.object(str(params.get("bucket") or ""), str(key))
        if route == HEALTH_ROUTE:
            return self.health()
        return error_answer(
            404,
            "route_not_found",
            f"no route {route!r}; routes: POST /search, GET /objects/{{bucket}}/{{key}}, "
            "GET /health",
        )

    # ------------------------------------------------------------------ routes

    def health(self) -> ApiAnswer:
        index = self.searcher.index
        return ApiAnswer(
            200,
            {
                "status": "ok",
                "vector_bucket": index.vector_bucket,
                "index": index.index,
                "dimension": index.dimension,
                "distance_metric": index.distance_metric,
                "model_id": self.cfg.model_id,
                "max_k": LIMITS.query_top_k_max,
                "max_image_bytes": self.image_limit,
            },
        )

    @property
    def image_limit(self) -> int:
        return min(LIMITS.api_image_max_bytes, self.cfg.model.max_inline_image_bytes)

    def object(self, bucket: str, key: str) -> ApiAnswer:
        location = object_location(f"s3://{bucket}/{key}", "object", self._allowed)
        vkey = vector_key(location.bucket, location.key)
        found = self.searcher.vectors.get([vkey]).get(vkey)
        if not found:
            raise ResourceNotFound(
                f"object s3://{bucket}/{key}: no vector for it (not indexed yet, failed, "
                "or deleted)"
            )
        return ApiAnswer(
            200,
            {"bucket": bucket, "key": key, "vector_key": vkey,
             "metadata": dict(found.get("metadata") or {})},
        )  # fmt: skip

    def search(self, body: dict[str, Any]) -> ApiAnswer:
        request = parse_search_request(body)
        k, cut = int(request.get("k", DEFAULT_K)), request.get("max_distance")
        filter_doc = self._filter(request)
        searcher = self.searcher
        if "text" in request:
            result = searcher.text(request["text"], k=k, filter=filter_doc, max_distance=cut)
        elif "like" in request:
            result = searcher.like(request["like"], k=k, filter=filter_doc, max_distance=cut)
        elif "image_uri" in request:
            result = searcher.image_at(
                request["image_uri"], k=k, filter=filter_doc, max_distance=cut
            )
        else:
            image = image_from_bytes(
                _decode_image(request["image"], self.image_limit),
                "image",
                self.cfg,
                max_bytes=self.image_limit,
            )
            result = searcher.image(image, k=k, filter=filter_doc, max_distance=cut)
        if request.get("group_duplicates"):
            result = searcher.group_duplicates(result)
        return self._results(result)

    # ------------------------------------------------------------------ helpers

    @property
    def _allowed(self) -> frozenset[str]:
        return frozenset({self.source_bucket})

    def _filter(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """``where`` words and the ``filter`` document, ANDed (as the CLI's options)."""
        parts = [parse_where(text, "where") for text in request.get("where") or ()]
        if "filter" in request:
            parts.append(check_filter(request["filter"], "filter"))
        return all_of(parts)

    def _results(self, result: SearchResult) -> ApiAnswer:
        body = {"query": result.query, "results": [self._hit(h) for h in result.hits]}
        size = len(json.dumps(body, separators=(",", ":")))
        if size > LIMITS.lambda_sync_payload_max_bytes - LIMITS.api_event_envelope_bytes:
            return error_answer(
                413,
                "response_too_large",
                f"the answer for k={result.query.get('k')} is {size} bytes, above what Lambda "
                f"returns ({LIMITS.lambda_sync_payload_max_bytes} bytes); ask for a smaller k",
            )
        return ApiAnswer(200, body)

    def _hit(self, hit: Hit) -> dict[str, Any]:
        out = hit.as_dict()
        out["copies"] = list(hit.copies)
        url = None
        if hit.bucket == self.source_bucket and hit.key:
            url = self.presign(hit.bucket, hit.key)
        out.update(
            original_url=url,
            thumbnail_url=url,
            url_expires_in=self.cfg.search_presign_seconds if url else None,
        )
        return out


def parse_search_request(body: Any) -> dict[str, Any]:
    """The search body checked against :data:`SEARCH_FIELDS`: types, one query, no extras."""
    if not isinstance(body, dict):
        raise SearchInputError('the body must be a JSON object, e.g. {"text": "wind turbine"}')
    known = {f.name: f for f in SEARCH_FIELDS}
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise SearchInputError(f"unknown field(s) {', '.join(unknown)}; fields: {', '.join(known)}")
    queries = [name for name in QUERY_FIELDS if name in body]
    if len(queries) != 1:
        raise SearchInputError(
            f"give exactly one of {', '.join(QUERY_FIELDS)} (got {', '.join(queries) or 'none'})"
        )
    for name, value in body.items():
        kind = known[name].schema["type"]
        ok = isinstance(value, _TYPES[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool)
        )
        if kind == "number" and ok and not math.isfinite(value):
            ok = False
        if kind == "array" and ok:
            ok = all(isinstance(item, str) for item in value)
        if not ok:
            raise SearchInputError(f"{name}: expected {kind}, got {json.dumps(value)[:80]}")
    return dict(body)


def _json_body(event: dict[str, Any]) -> Any:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise SearchInputError(f"the body is not UTF-8 JSON ({exc})") from exc
    if not raw:
        raise SearchInputError('the body is empty; send JSON, e.g. {"text": "wind turbine"}')
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise _InvalidJson(f"the body is not valid JSON ({exc})") from exc


class _InvalidJson(SearchInputError):
    code = "invalid_json"


def _decode_image(text: str, limit: int) -> bytes:
    if len(text) * 3 // 4 > limit + 2:
        raise QueryImageTooLarge(
            f"image: about {len(text) * 3 // 4} bytes is above the {limit}-byte limit for an "
            "inline query image (Lambda's request payload); upload it to the source bucket "
            "and search with image_uri, or use like for an indexed image"
        )
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SearchInputError(f"image: not valid base64 ({exc})") from exc


__all__ = ["ApiAnswer", "Presign", "SearchApi", "error_answer", "parse_search_request"]
