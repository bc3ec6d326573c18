"""The local cloud's front server: one endpoint that answers like AWS.

A small WSGI dispatcher in front of moto's in-process server. It routes each request by
the service name in its SigV4 credential scope (``.../us-east-1/s3vectors/aws4_request``,
the way moto's own server does) and answers itself what moto lacks:

* Bedrock Runtime ``InvokeModel`` (signing name ``bedrock``): the stand-in model.
* S3 Vectors ``CreateIndex`` (moto drops ``metadataConfiguration``) and the data plane
  (``PutVectors``, ``GetVectors``, ``ListVectors``, ``DeleteVectors``, ``QueryVectors``),
  kept in :class:`localcloud.services.vectorstore.IndexData` attached to moto's index object.
* SQS: forwarded to the fauxqs process, so one ``--endpoint-url`` reaches every service.
* ``/_localcloud/...``: health, fault injection and runtime status over plain HTTP.
  Writes (POST, DELETE) need the header ``X-Localcloud: 1``: a web page cannot send a
  custom header cross-site without a CORS preflight, which this server never grants, so
  a page open in the browser cannot change the local cloud behind the user's back.

Everything else (S3, the S3 Vectors control plane, CloudWatch, STS...) goes to moto.
Injected faults (:mod:`localcloud.services.faults`) apply here, at the network edge: to
Bedrock, S3 Vectors and S3 object calls (``GetObject``, ``HeadObject``...). Each request's
own time, injected latency left out, is kept per operation in :attr:`FrontApp.call_times`
(:mod:`localcloud.services.calls`), so a benchmark can report the emulator's share.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from moto.core.exceptions import ServiceException
from moto.core.models import DEFAULT_ACCOUNT_ID

from localcloud.services import bedrock
from localcloud.services.calls import CallTimes, s3_operation, sqs_operation
from localcloud.services.errors import S3_ERRORS, S3Error, ServiceError, validation
from localcloud.services.faults import Faults
from localcloud.services.vectorstore import IndexData

ACCOUNT_ID = DEFAULT_ACCOUNT_ID
"""The one account the local cloud serves (moto's default)."""
PARTITION = "aws"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_INVOKE = re.compile(r"^/model/(.+)/invoke$")
VECTOR_DATA_PLANE = ("PutVectors", "GetVectors", "ListVectors", "DeleteVectors", "QueryVectors")
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def signing_scope(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(region, service) from the SigV4 Authorization header, or (None, None)."""
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (m.group(1), m.group(2)) if m else (None, None)


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def _json_response(
    start_response: StartResponse,
    status: int,
    payload: Any,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {http.client.responses.get(status, '')}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


def _check_bucket_owner(environ: dict[str, Any]) -> None:
    """S3's answer to an ``ExpectedBucketOwner`` that is not the bucket's owner: 403
    AccessDenied ("Verifying bucket ownership with bucket owner condition", S3 User
    Guide). Every local bucket belongs to the one local account; moto ignores the header."""
    expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
    if expected is not None and expected != ACCOUNT_ID:
        raise S3Error("AccessDenied", S3_ERRORS["AccessDenied"][1])


def _error_response(start_response: StartResponse, err: ServiceError) -> list[bytes]:
    body = err.body()
    start_response(
        f"{err.status} {http.client.responses.get(err.status, '')}",
        [*err.headers(), ("Content-Length", str(len(body)))],
    )
    return [body]


class FrontApp:
    """The WSGI application; see the module docstring."""

    def __init__(
        self,
        moto_app: WSGIApp,
        faults: Faults,
        *,
        sqs_endpoint: str | None = None,
        status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.moto_app = moto_app
        self.faults = faults
        self.sqs_endpoint = sqs_endpoint
        self.status = status
        self.requests: dict[str, int] = {}
        """Requests answered, by ``service:operation`` (for tests and ``status``)."""
        self.call_times = CallTimes()
        """The emulator's own time per ``service:operation`` (injected latency left out)."""
        self._count_lock = threading.Lock()
        self._sqs_local = threading.local()
        self._slept = threading.local()

    # ------------------------------------------------------------------ dispatch

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_localcloud/"):
            return self._control(environ, start_response, path)
        _, service = signing_scope(environ)
        self._slept.seconds = 0.0
        started = time.perf_counter()
        name = f"{service}:passthrough"
        try:
            if service == "bedrock" and (m := _INVOKE.match(path)):
                name = "bedrock:InvokeModel"
                return self._bedrock(environ, start_response, m.group(1))
            if service == "s3vectors":
                name = f"s3vectors:{path.strip('/')}"
                return list(self._s3vectors(environ, start_response, path.strip("/")))
            if service == "sqs" and self.sqs_endpoint:
                body = _read_body(environ)
                name = f"sqs:{sqs_operation(environ, body)}"
                return self._sqs(environ, start_response)
            if service == "s3":
                name = f"s3:{s3_operation(environ)}"
                self._count(name)
                _check_bucket_owner(environ)
                self._apply_faults("s3", name[3:], environ.get("PATH_INFO", "").encode())
            else:
                self._count(name)
            return _drain(self.moto_app(environ, start_response))
        except ServiceError as err:
            return _error_response(start_response, err)
        except ServiceException as exc:  # moto's own errors, e.g. NotFoundException
            return _error_response(start_response, ServiceError(exc.code, exc.message))
        finally:
            own = time.perf_counter() - started - self._slept.seconds
            self.call_times.add(name, own)

    def _sleep(self, seconds: float) -> None:
        """Injected latency: slept, and left out of the request's own time."""
        if seconds > 0:
            began = time.perf_counter()
            time.sleep(seconds)
            self._slept.seconds += time.perf_counter() - began

    def _count(self, name: str) -> None:
        with self._count_lock:
            self.requests[name] = self.requests.get(name, 0) + 1

    def _apply_faults(self, service: str, operation: str, body: bytes) -> None:
        decision = self.faults.decide(service, operation, body)
        self._sleep(decision.delay)
        if decision.error is not None:
            raise decision.error

    # ------------------------------------------------------------------ Bedrock

    def _bedrock(
        self, environ: dict[str, Any], start_response: StartResponse, model_id: str
    ) -> list[bytes]:
        body = _read_body(environ)
        started = time.monotonic()
        self._count("bedrock:InvokeModel")
        decision = self.faults.decide("bedrock", "InvokeModel", body, model_id=model_id)
        if decision.error is not None:
            self._sleep(decision.delay)
            raise decision.error
        region, _ = signing_scope(environ)
        answer = bedrock.invoke_model(
            model_id,
            body,
            read_s3,
            region=region or "",
            content_type=environ.get("CONTENT_TYPE"),
            accept=environ.get("HTTP_ACCEPT"),
        )
        # Injected latency is the model's total time: the stand-in's own work counts.
        self._sleep(decision.delay - (time.monotonic() - started))
        return _json_response(
            start_response,
            200,
            answer,
            [("X-Amzn-Bedrock-Input-Token-Count", "1"), ("X-Amzn-RequestId", _request_id())],
        )

    # ------------------------------------------------------------------ S3 Vectors

    def _s3vectors(
        self, environ: dict[str, Any], start_response: StartResponse, operation: str
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        self._count(f"s3vectors:{operation}")
        self._apply_faults("s3vectors", operation, body)
        if operation != "CreateIndex" and operation not in VECTOR_DATA_PLANE:
            return self.moto_app(environ, start_response)
        try:
            request = json.loads(body or b"{}")
        except ValueError as exc:
            raise validation(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(request, dict):
            raise validation("request body must be a JSON object")
        if operation == "CreateIndex":
            return _json_response(start_response, 200, create_index(request))
        data = index_data(request)
        handler = {
            "PutVectors": data.put,
            "GetVectors": data.get,
            "ListVectors": data.list,
            "DeleteVectors": data.delete,
            "QueryVectors": data.query,
        }[operation]
        return _json_response(start_response, 200, handler(request))

    # ------------------------------------------------------------------ SQS

    def _sqs(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        assert self.sqs_endpoint
        body = _read_body(environ)
        self._count("sqs:proxy")
        conn: http.client.HTTPConnection | None = getattr(self._sqs_local, "conn", None)
        if conn is None:
            parts = urlsplit(self.sqs_endpoint)
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            self._sqs_local.conn = conn
        headers = {
            name[5:].replace("_", "-").title(): value
            for name, value in environ.items()
            if name.startswith("HTTP_") and name not in ("HTTP_HOST", "HTTP_CONNECTION")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("PATH_INFO", "/") or "/"
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        try:
            conn.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn.connect()
            conn.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
            resp = conn.getresponse()
        data = resp.read()
        keep = ("content-type", "x-amzn-requestid", "x-amzn-query-error")
        out = [(k, v) for k, v in resp.getheaders() if k.lower() in keep]
        start_response(f"{resp.status} {resp.reason}", [*out, ("Content-Length", str(len(data)))])
        return [data]

    # ------------------------------------------------------------------ control API

    def _control(
        self, environ: dict[str, Any], start_response: StartResponse, path: str
    ) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        name = path[len("/_localcloud/") :].strip("/")
        if method in ("POST", "DELETE") and environ.get("HTTP_X_LOCALCLOUD") != "1":
            return _json_response(
                start_response,
                403,
                {"message": f"{method} {path} needs the header X-Localcloud: 1"},
            )
        try:
            if name == "health":
                return _json_response(start_response, 200, {"ok": True})
            if name == "faults":
                if method == "GET":
                    return _json_response(start_response, 200, {"faults": self.faults.rules()})
                if method == "DELETE":
                    self.faults.clear()
                    return _json_response(start_response, 200, {"faults": []})
                if method == "POST":
                    spec = json.loads(_read_body(environ) or b"{}")
                    if not isinstance(spec, dict):
                        raise ValueError("a fault is a JSON object")
                    rule = self.faults.add_from_json(spec)
                    return _json_response(start_response, 200, {"fault": rule.public()})
            if name.startswith("faults/") and method == "DELETE":
                self.faults.remove(int(name.split("/", 1)[1]))
                return _json_response(start_response, 200, {"faults": self.faults.rules()})
            if name == "status" and method == "GET":
                payload = self.status() if self.status else {}
                return _json_response(
                    start_response,
                    200,
                    {
                        **payload,
                        "requests": dict(self.requests),
                        "emulator_ms": self.call_times.public(),
                    },
                )
        except (ValueError, TypeError) as exc:
            return _json_response(start_response, 400, {"message": str(exc)})
        return _json_response(start_response, 404, {"message": f"no control endpoint {path}"})


def _drain(answer: Iterable[bytes]) -> list[bytes]:
    """moto's answer, read to the end (so its time is the request's) and closed."""
    try:
        return list(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()


# --------------------------------------------------------------------------- backends


def _s3vectors_backend() -> Any:
    from moto.s3vectors.models import s3vectors_backends

    return s3vectors_backends[ACCOUNT_ID][PARTITION]


def read_s3(bucket: str, key: str) -> bytes:
    """An object's bytes from moto's S3 (for Bedrock ``s3Location`` sources)."""
    from moto.s3.models import s3_backends

    try:
        obj = s3_backends[ACCOUNT_ID][PARTITION].get_object(bucket, key)
    except ServiceException as exc:
        raise validation(f"Unable to read s3://{bucket}/{key}: {exc.message}") from exc
    if obj is None:
        raise validation(f"Unable to read s3://{bucket}/{key}: the object does not exist.")
    return bytes(obj.value)


def _index_params(request: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    bucket, name, arn = (
        request.get("vectorBucketName"),
        request.get("indexName"),
        request.get("indexArn"),
    )
    if not ((bucket and name and not arn) or (arn and not bucket and not name)):
        raise validation("Must specify either indexArn or both vectorBucketName and indexName")
    return bucket, name, arn


def index_data(request: dict[str, Any]) -> IndexData:
    """The vectors of the index a data-plane request names (NotFoundException if none)."""
    bucket, name, arn = _index_params(request)
    index = _s3vectors_backend().get_index(bucket, name, arn)
    data: IndexData | None = getattr(index, "localcloud_data", None)
    if data is None:  # created behind the front server's back (e.g. moto's decorator)
        data = IndexData(index.dimension, index.distance_metric)
        index.localcloud_data = data
    return data


def create_index(request: dict[str, Any]) -> dict[str, Any]:
    """CreateIndex with the service's validation and ``metadataConfiguration`` kept."""
    backend = _s3vectors_backend()
    name = request.get("indexName")
    if not isinstance(name, str) or not _INDEX_NAME.match(name):
        raise validation(
            "indexName: 3..63 characters of lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
    if request.get("dataType") != "float32":
        raise validation("dataType: must be float32")
    dimension = request.get("dimension")
    if not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= 4096:
        raise validation("dimension: must be an integer between 1 and 4096")
    metric = request.get("distanceMetric")
    if metric not in ("cosine", "euclidean"):
        raise validation("distanceMetric: must be cosine or euclidean")
    config = request.get("metadataConfiguration") or {}
    keys = config.get("nonFilterableMetadataKeys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise validation("metadataConfiguration.nonFilterableMetadataKeys: a list of key names")
    from imgsearch.limits import LIMITS

    if (
        not 1 <= len(keys) <= LIMITS.non_filterable_keys_max
        and "nonFilterableMetadataKeys" in config
    ):
        raise validation(
            "metadataConfiguration.nonFilterableMetadataKeys: 1.."
            f"{LIMITS.non_filterable_keys_max} keys"
        )
    bucket = backend.get_vector_bucket(
        vector_bucket_name=request.get("vectorBucketName"),
        vector_bucket_arn=request.get("vectorBucketArn"),
    )
    if any(ix.index_name == name for ix in bucket.indexes.values()):
        raise ServiceError("ConflictException", "An index with the specified name already exists")
    backend.create_index(
        vector_bucket_name=bucket.vector_bucket_name,
        vector_bucket_arn=None,
        index_name=name,
        data_type="float32",
        dimension=dimension,
        distance_metric=metric,
        tags=request.get("tags"),
    )
    index = backend.get_index(bucket.vector_bucket_name, name, None)
    if keys:
        index.metadataConfiguration = {"nonFilterableMetadataKeys": list(keys)}
    index.creationTime = time.time()
    index.localcloud_data = IndexData(dimension, metric, frozenset(keys))
    return {"indexArn": index.index_arn}


def _request_id() -> str:
    import uuid

    return str(uuid.uuid4())


__all__ = ["ACCOUNT_ID", "FrontApp", "create_index", "index_data", "read_s3", "signing_scope"]
