"""``imgsearch search --api``: the query sent to the deployed search API, signed (SigV4).

The request is the API's ``POST /search`` body (:mod:`imgsearch.api_shapes`); it is
signed with the caller's own credentials for service ``execute-api``, so the caller
needs ``execute-api:Invoke`` on the API and no Bedrock or S3 Vectors permission. The
answer comes back as a :class:`imgsearch.search.SearchResult`, printed as the local
search prints it; an error answer is one line naming its code and what to do.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from imgsearch.hits import Hit
from imgsearch.limits import LIMITS
from imgsearch.s3uri import is_s3_uri
from imgsearch.search import SearchResult
from scripts.common.errors import CliError, ToolError

SIGNING_SERVICE = "execute-api"
_HIT_FIELDS = ("rank", "vector_key", "distance", "uri", "bucket", "key", "size", "width",
               "height", "format", "metadata", "weak")  # fmt: skip


class ApiError(ToolError):
    """The search API answered with an error (or not at all)."""


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
    body: dict[str, Any] = {"k": k}
    if text is not None:
        body["text"] = text
    elif like is not None:
        body["like"] = like
    elif image is not None and is_s3_uri(image):
        body["image_uri"] = image
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
        body["image"] = base64.b64encode(file.read_bytes()).decode()
    if filter_doc is not None:
        body["filter"] = filter_doc
    if max_distance is not None:
        body["max_distance"] = max_distance
    if group_duplicates:
        body["group_duplicates"] = True
    return body


def post_search(
    url: str, body: dict[str, Any], credentials: ReadOnlyCredentials, region: str
) -> dict[str, Any]:
    """``POST {url}/search``, signed; the answer's JSON, or an :class:`ApiError`."""
    full = url.rstrip("/") + "/search"
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST", url=full, data=data, headers={"content-type": "application/json"}
    )
    SigV4Auth(credentials, SIGNING_SERVICE, region).add_auth(request)
    sent = urllib.request.Request(full, data=data, method="POST", headers=dict(request.headers))
    try:
        with urllib.request.urlopen(sent, timeout=60) as answer:
            result: dict[str, Any] = json.loads(answer.read())
            return result
    except urllib.error.HTTPError as exc:
        raise api_error(exc.code, exc.read()) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ApiError(
            f"search API {url}: no answer ({exc}); check the URL and the network"
        ) from exc


def api_error(status: int, raw: bytes) -> ApiError:
    """One line for an error answer: the API's own code and message, or the gateway's."""
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = {}
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        retry = " (retryable: try again shortly)" if error.get("retryable") else ""
        return ApiError(f"search API {status} {error.get('code')}: {error.get('message')}{retry}")
    message = answer.get("message") if isinstance(answer, dict) else None
    hint = {
        401: "send a valid token",
        403: "the request was refused: check the credentials and execute-api:Invoke on the API",
        413: "the request is too large: send a large image by its s3:// URI",
        429: "throttled (search_throttle_rate/_burst): try again shortly",
    }.get(status, "see the API's access log")
    return ApiError(f"search API {status} {message or ''}: {hint}".replace("  ", " "))


def result_from_answer(answer: dict[str, Any]) -> SearchResult:
    """The API's answer as the search library's result (for the table output)."""
    hits = [
        Hit(
            **{name: item.get(name) for name in _HIT_FIELDS}, copies=tuple(item.get("copies") or ())
        )
        for item in answer.get("results") or []
    ]
    return SearchResult(hits, dict(answer.get("query") or {}))


__all__ = ["ApiError", "api_error", "post_search", "request_body", "result_from_answer"]
