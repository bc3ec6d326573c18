"""The deployed search API, called with the caller's own credentials (SigV4).

Requests are the API's ``POST /search`` body and ``GET /health`` (:mod:`imgsearch.api_shapes`),
signed for service ``execute-api``, so the caller needs ``execute-api:Invoke`` on the API
and no Bedrock or S3 Vectors permission. ``imgsearch search --api`` and ``imgsearch serve
--api`` both go through :class:`SearchApiEndpoint`; an answer comes back as the search
library's :class:`imgsearch.search.SearchResult`, an error answer as one :class:`ApiError`
line naming its status and code and what to do.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from imgsearch.hits import Hit
from imgsearch.limits import LIMITS
from imgsearch.s3uri import is_s3_uri
from imgsearch.search import SearchResult
from scripts.common.errors import CliError, ToolError

if TYPE_CHECKING:
    from scripts.common.cli import Clients

SIGNING_SERVICE = "execute-api"
TIMEOUT_SECONDS = 60
_HIT_FIELDS = ("rank", "vector_key", "distance", "uri", "bucket", "key", "size", "width",
               "height", "format", "metadata", "weak")  # fmt: skip


class ApiError(ToolError):
    """The search API answered with an error (``status``), or not at all (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def query_body(
    query: dict[str, Any],
    *,
    k: int,
    filter_doc: dict[str, Any] | None,
    max_distance: float | None,
    group_duplicates: bool,
) -> dict[str, Any]:
    """``query`` (one of text / image / image_uri / like) with the common search fields."""
    body: dict[str, Any] = {**query, "k": k}
    if filter_doc is not None:
        body["filter"] = filter_doc
    if max_distance is not None:
        body["max_distance"] = max_distance
    if group_duplicates:
        body["group_duplicates"] = True
    return body


def request_body(
    *,
    text: str | None,
    image: str | None,
    like: str | None,
    k: int,
    filter_doc: dict[str, Any] | None,
    max_distance: float | None,
    group_duplicates: bool,
) -> dict[str, Any]:
    """The ``POST /search`` body for the CLI's options (a local image goes inline, base64)."""
    query: dict[str, Any] = {}
    if text is not None:
        query["text"] = text
    elif like is not None:
        query["like"] = like
    elif image is not None and is_s3_uri(image):
        query["image_uri"] = image
    elif image is not None:
        file = Path(image).expanduser()
        if not file.is_file():
            raise CliError(f"--image {image!r}: no such file (give a local path or an s3:// URI)")
        if file.stat().st_size > LIMITS.api_image_max_bytes:
            raise CliError(
                f"--image {image!r}: {file.stat().st_size} bytes is above the API's "
                f"{LIMITS.api_image_max_bytes}-byte inline limit; upload it to the source "
                "bucket and pass its s3:// URI"
            )
        query["image"] = base64.b64encode(file.read_bytes()).decode()
    return query_body(
        query,
        k=k,
        filter_doc=filter_doc,
        max_distance=max_distance,
        group_duplicates=group_duplicates,
    )


@dataclass(frozen=True)
class SearchApiEndpoint:
    """One deployed search API: its URL and how to sign for it.

    ``credentials`` is asked on every request, so refreshed credentials (SSO, assumed
    roles) keep working in a long-running ``serve``.
    """

    url: str
    credentials: Callable[[], ReadOnlyCredentials]
    region: str

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /search``: the answer's JSON, or an :class:`ApiError`."""
        return self.call("POST", "/search", body)

    def health(self) -> dict[str, Any]:
        """``GET /health``: the index, dimension and model the API searches."""
        return self.call("GET", "/health")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One signed request; the answer's JSON object, or an :class:`ApiError`."""
        full = self.url.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(
            method=method, url=full, data=data, headers={"content-type": "application/json"}
        )
        SigV4Auth(self.credentials(), SIGNING_SERVICE, self.region).add_auth(request)
        sent = urllib.request.Request(full, data=data, method=method, headers=dict(request.headers))
        try:
            with urllib.request.urlopen(sent, timeout=TIMEOUT_SECONDS) as answer:
                result = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise api_error(exc.code, exc.read()) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(
                f"search API {self.url}: no answer ({exc}); check the URL and the network"
            ) from exc
        except ValueError as exc:
            raise ApiError(f"search API {self.url}{path}: the answer is not JSON ({exc})") from exc
        if not isinstance(result, dict):
            raise ApiError(f"search API {self.url}{path}: expected a JSON object, got {result!r}")
        return result


def signed_endpoint(url: str, clients: Clients) -> SearchApiEndpoint:
    """The API at ``url``, signed with ``clients``' session (refreshed as it refreshes)."""
    credentials = clients.session.get_credentials()
    if credentials is None:
        raise CliError("no AWS credentials to sign the API request with; configure them")
    return SearchApiEndpoint(url, credentials.get_frozen_credentials, clients.region or "")


def api_error(status: int, raw: bytes) -> ApiError:
    """One line for an error answer: the API's own code and message, or the gateway's."""
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        retry = " (retryable: try again shortly)" if error.get("retryable") else ""
        return ApiError(
            f"search API {status} {error.get('code')}: {error.get('message')}{retry}", status
        )
    message = answer.get("message") if isinstance(answer, dict) else None
    hint = {
        401: "send a valid token",
        403: "the request was refused: check the credentials and execute-api:Invoke on the API",
        413: "the request is too large: send a large image by its s3:// URI",
        429: "throttled (search_throttle_rate/_burst): try again shortly",
    }.get(status, "see the API's access log")
    return ApiError(f"search API {status} {message or ''}: {hint}".replace("  ", " "), status)


def result_from_answer(answer: dict[str, Any]) -> SearchResult:
    """The API's answer as the search library's result (for the table output and the page)."""
    hits = [
        Hit(
            **{name: item.get(name) for name in _HIT_FIELDS}, copies=tuple(item.get("copies") or ())
        )
        for item in answer.get("results") or []
    ]
    return SearchResult(hits, dict(answer.get("query") or {}))


__all__ = [
    "ApiError",
    "SearchApiEndpoint",
    "api_error",
    "query_body",
    "request_body",
    "result_from_answer",
    "signed_endpoint",
]
