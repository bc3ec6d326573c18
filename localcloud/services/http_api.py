"""The search API on the local cloud: API Gateway's HTTP API in front of the search Lambda.

A WSGI app on a port of its own (the stack's ``SearchApiUrl`` output names it) that does
what the HTTP API does before and after the function:

* routes ``POST /search``, ``GET /objects/{bucket}/{key+}``, ``GET /health``
  (:data:`imgsearch.api_shapes.ROUTES`); anything else is 404 ``{"message": "Not Found"}``;
* checks the SigV4 signature (service ``execute-api``) by computing it again with
  botocore's signer and the local cloud's one credential: an unsigned request, another
  access key, a wrong signature or a request older than 15 minutes is 403
  ``{"message": "Forbidden"}``. (``search_auth=cognito`` is not emulated: the local
  cloud always checks SigV4.)
* throttles with a token bucket of the stage's rate and burst: 429 ``{"message": "Too
  Many Requests"}``;
* refuses a request over Lambda's 6 MB synchronous payload: 413 ``{"message": "Request
  Entity Too Large"}``;
* hands the function the payload format 2.0 event and turns its answer into the HTTP
  response (a failed invocation is 500 ``{"message": "Internal Server Error"}``);
* answers CORS preflights and adds the CORS headers for the configured origins.

:func:`call` is the local cloud's client (the demo's and the tests'): a signed request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from imgsearch.api_shapes import HEALTH_ROUTE, OBJECT_ROUTE, SEARCH_ROUTE
from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS

StartResponse = Callable[..., Any]
Invoke = Callable[[dict[str, Any]], tuple[bool, Any]]
"""An event -> (the invocation succeeded, its payload)."""
SIGNING_SERVICE = "execute-api"
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_ROUTES: tuple[tuple[str, str, re.Pattern[str], tuple[str, ...]], ...] = (
    (SEARCH_ROUTE, "POST", re.compile(r"^/search$"), ()),
    (OBJECT_ROUTE, "GET", re.compile(r"^/objects/([^/]+)/(.+)$"), ("bucket", "key")),
    (HEALTH_ROUTE, "GET", re.compile(r"^/health$"), ()),
)
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|javascript)|.*\+json)")
"""Bodies the HTTP API passes as text; any other is base64 in the event."""


class TokenBucket:
    """API Gateway's throttling: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self._lock = threading.Lock()
        self.configure(rate, burst)

    def configure(self, rate: float, burst: int) -> None:
        """New settings, with a full bucket (as a new stage deployment starts)."""
        with self._lock:
            self.rate, self.burst = rate, burst
            self._tokens = float(burst)
            self._at = time.monotonic()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def verify_sigv4(
    method: str, url: str, headers: dict[str, str], body: bytes, credentials: Credentials
) -> str | None:
    """Why the request's SigV4 signature is not valid for ``credentials``, or None."""
    match = _AUTH.match(headers.get("authorization", ""))
    if match is None:
        return "no SigV4 Authorization header"
    if match["service"] != SIGNING_SERVICE:
        return f"signed for {match['service']!r}, not {SIGNING_SERVICE!r}"
    if match["key"] != credentials.access_key:
        return f"unknown access key {match['key']!r}"
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "no valid X-Amz-Date header"
    if abs(dt.datetime.now(dt.UTC) - signed_at) > MAX_CLOCK_SKEW:
        return "the signature is more than 15 minutes old"
    signed = match["signed"].split(";")
    if any(name not in headers for name in signed):
        return "a signed header is missing"
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers[name] for name in signed}
    )
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(credentials, SIGNING_SERVICE, match["region"])
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return "the signature does not match"
    return None


class HttpApi:
    """The WSGI app; see the module docstring."""

    def __init__(
        self,
        cfg: PipelineConfig,
        invoke: Invoke,
        credentials: Credentials,
        *,
        account_id: str,
        api_id: str = "localapi",
    ) -> None:
        self.cfg = cfg
        self.invoke = invoke
        self.credentials = credentials
        self.account_id = account_id
        self.api_id = api_id
        self.throttle = TokenBucket(cfg.search_throttle_rate, cfg.search_throttle_burst)
        self.answered: dict[int, int] = {}
        """Responses by status (for tests and the status line)."""
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = self._answer(environ)
        with self._lock:
            self.answered[status] = self.answered.get(status, 0) + 1
        origin = environ.get("HTTP_ORIGIN")
        if origin and self._origin_allowed(origin):
            headers["access-control-allow-origin"] = origin
            headers["vary"] = "origin"
        headers["content-length"] = str(len(body))
        start_response(f"{status} {_REASONS.get(status, '')}", list(headers.items()))
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or "/"
        raw_path, _, raw_query = raw_uri.partition("?")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > LIMITS.lambda_sync_payload_max_bytes:
            return _gateway(413, "Request Entity Too Large")
        body = environ["wsgi.input"].read(length) if length else b""
        headers = _headers(environ)
        if method == "OPTIONS" and self.cfg.search_cors_origins:
            return self._preflight(headers)
        route = _route(method, unquote(raw_path))
        if route is None:
            return _gateway(404, "Not Found")
        host = headers.get("host", "localhost")
        problem = verify_sigv4(method, f"http://{host}{raw_uri}", headers, body, self.credentials)
        if problem is not None:
            return _gateway(403, "Forbidden")
        if not self.throttle.take():
            return _gateway(429, "Too Many Requests")
        route_key, params = route
        event = self._event(method, raw_path, raw_query, headers, body, route_key, params)
        if len(json.dumps(event)) > LIMITS.lambda_sync_payload_max_bytes:
            return _gateway(413, "Request Entity Too Large")
        ok, payload = self.invoke(event)
        if not ok or not isinstance(payload, dict) or "statusCode" not in payload:
            return _gateway(500, "Internal Server Error")
        out = payload.get("body") or ""
        data = base64.b64decode(out) if payload.get("isBase64Encoded") else str(out).encode()
        answer_headers = {str(k).lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
        return int(payload["statusCode"]), answer_headers, data

    def _event(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        body: bytes,
        route_key: str,
        params: dict[str, str],
    ) -> dict[str, Any]:
        """The payload format 2.0 event API Gateway sends a Lambda proxy integration."""
        now = time.time()
        is_text = bool(_TEXT_TYPES.match(headers.get("content-type", "")))
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": self.api_id,
                "domainName": headers.get("host", ""),
                "domainPrefix": self.api_id,
                "http": {
                    "method": method,
                    "path": unquote(raw_path),
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex[:16],
                "routeKey": route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
                "authorizer": {
                    "iam": {
                        "accessKey": self.credentials.access_key,
                        "accountId": self.account_id,
                        "userArn": f"arn:aws:iam::{self.account_id}:root",
                    }
                },
            },
            "isBase64Encoded": bool(body) and not is_text,
        }
        if raw_query:
            event["queryStringParameters"] = dict(parse_qsl(raw_query))
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = body.decode("utf-8", "replace") if is_text else (
                base64.b64encode(body).decode()
            )  # fmt: skip
        return event

    def _origin_allowed(self, origin: str) -> bool:
        origins = self.cfg.search_cors_origins
        return "*" in origins or origin in origins

    def _preflight(self, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        origin = headers.get("origin", "")
        if not self._origin_allowed(origin):
            return 204, {}, b""
        return (
            204,
            {
                "access-control-allow-methods": "GET,POST",
                "access-control-allow-headers": "authorization,content-type,x-amz-date,"
                "x-amz-security-token,x-amz-content-sha256",
                "access-control-max-age": "3600",
            },
            b"",
        )


_REASONS = {
    200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
    409: "Conflict", 413: "Payload Too Large", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}  # fmt: skip


def _gateway(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    """An answer API Gateway gives itself (its body is ``{"message": ...}``)."""
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers, lower-cased as the event carries them."""
    out = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            out[key.replace("_", "-").lower()] = str(environ[key])
    return out


def _route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for route_key, route_method, pattern, names in _ROUTES:
        match = pattern.match(path)
        if match and method == route_method:
            return route_key, dict(zip(names, match.groups(), strict=True))
    return None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve(app: HttpApi, port: int) -> BaseWSGIServer:
    """Serve ``app`` on 127.0.0.1:``port`` from a daemon thread; ``shutdown()`` stops it."""
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="localcloud-http-api", daemon=True).start()
    return server


# --------------------------------------------------------------------------- the client


def call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    credentials: Credentials | None,
    region: str,
    raw: bytes | None = None,
    timeout: float = 60.0,
) -> tuple[int, Any]:
    """One request to the API, SigV4-signed with ``credentials`` (None: unsigned);
    returns (status, the JSON answer). ``raw`` sends those bytes as the body instead."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    full = url.rstrip("/") + path
    headers = {"content-type": "application/json"}
    if credentials is not None:
        request = AWSRequest(method=method, url=full, data=data, headers=headers)
        SigV4Auth(credentials, SIGNING_SERVICE, region).add_auth(request)
        headers = dict(request.headers.items())
    sent = urllib.request.Request(full, data=data or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


__all__ = ["HttpApi", "TokenBucket", "call", "serve", "verify_sigv4"]
