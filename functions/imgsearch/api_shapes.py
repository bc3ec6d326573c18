"""The search API's request and response shapes, defined once.

The search Lambda parses requests against :data:`SEARCH_FIELDS` and answers in the
shapes below; :func:`openapi_document` writes the OpenAPI 3 document from the same
definitions (``make openapi`` -> ``docs/openapi.json``), and the tests validate real
answers against it. Pure: standard library only.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgsearch import search_errors
from imgsearch.limits import LIMITS
from imgsearch.search import DEFAULT_K

API_VERSION = "1.0.0"
SEARCH_ROUTE = "POST /search"
OBJECT_ROUTE = "GET /objects/{bucket}/{key+}"
"""``key+``: API Gateway's greedy path variable, so a key may hold slashes."""
HEALTH_ROUTE = "GET /health"
ROUTES: tuple[str, ...] = (SEARCH_ROUTE, OBJECT_ROUTE, HEALTH_ROUTE)


@dataclass(frozen=True)
class Field:
    """One member of the search request body."""

    name: str
    schema: dict[str, Any]
    description: str


QUERY_FIELDS: tuple[str, ...] = ("text", "image", "image_uri", "like")
"""Exactly one of these says what to search with."""

SEARCH_FIELDS: tuple[Field, ...] = (
    Field("text", {"type": "string", "minLength": 1}, 'What to look for, e.g. "wind turbine".'),
    Field(
        "image",
        {"type": "string", "contentEncoding": "base64"},
        "A query image, base64-encoded (JPEG, PNG, GIF or WebP, as the model accepts), at "
        f"most {LIMITS.api_image_max_bytes} bytes before encoding (what fits Lambda's "
        f"{LIMITS.lambda_sync_payload_max_bytes}-byte request); larger: image_uri or like.",
    ),
    Field(
        "image_uri",
        {"type": "string", "pattern": "^s3://"},
        "A query image in the source bucket, s3://bucket/key (any size the model takes).",
    ),
    Field(
        "like",
        {"type": "string", "pattern": "^s3://"},
        "An indexed object of the source bucket: search with its stored vector (no model call).",
    ),
    Field(
        "k",
        {"type": "integer", "minimum": 1, "maximum": LIMITS.query_top_k_max, "default": DEFAULT_K},
        "Number of results.",
    ),
    Field(
        "filter",
        {"type": "object", "minProperties": 1},
        'An S3 Vectors metadata filter, e.g. {"format": {"$eq": "png"}}; ANDed with where.',
    ),
    Field(
        "where",
        {"type": "array", "items": {"type": "string"}},
        'The CLI\'s --where words, e.g. ["format!=gif", "width>=1024"] (ANDed).',
    ),
    Field(
        "max_distance",
        {"type": "number", "minimum": 0},
        "Results farther than this are flagged weak (default from the model).",
    ),
    Field(
        "group_duplicates",
        {"type": "boolean", "default": False},
        'Fold identical copies into one result ("copies").',
    ),
)

SEARCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {f.name: {**f.schema, "description": f.description} for f in SEARCH_FIELDS},
    "additionalProperties": False,
    "oneOf": [{"required": [name]} for name in QUERY_FIELDS],
}

_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_STR = {"type": ["string", "null"]}
METADATA: dict[str, Any] = {
    "type": "object",
    "description": "The vector's metadata as the embedder wrote it (imgsearch.vectors).",
    "additionalProperties": True,
}
HIT: dict[str, Any] = {
    "type": "object",
    "required": ["rank", "vector_key", "distance", "uri", "bucket", "key", "metadata", "weak"],
    "properties": {
        "rank": {"type": "integer", "minimum": 1},
        "vector_key": {"type": "string"},
        "distance": {"type": ["number", "null"]},
        "uri": _NULLABLE_STR,
        "bucket": _NULLABLE_STR,
        "key": _NULLABLE_STR,
        "size": _NULLABLE_INT,
        "width": _NULLABLE_INT,
        "height": _NULLABLE_INT,
        "format": _NULLABLE_STR,
        "dimensions": _NULLABLE_STR,
        "metadata": METADATA,
        "weak": {"type": "boolean", "description": "Farther than the query's max_distance."},
        "copies": {"type": "array", "items": {"type": "string"}},
        "original_url": {
            **_NULLABLE_STR,
            "description": "Presigned GET of the image (source bucket only), short-lived.",
        },
        "thumbnail_url": {
            **_NULLABLE_STR,
            "description": "Presigned URL to show the result with (the original: no "
            "thumbnails are stored), short-lived.",
        },
        "url_expires_in": {"type": ["integer", "null"]},
    },
    "additionalProperties": False,
}
SEARCH_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["query", "results"],
    "properties": {
        "query": {"type": "object", "additionalProperties": True},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
    },
    "additionalProperties": False,
}
OBJECT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["bucket", "key", "vector_key", "metadata"],
    "properties": {
        "bucket": {"type": "string"},
        "key": {"type": "string"},
        "vector_key": {"type": "string"},
        "metadata": METADATA,
    },
    "additionalProperties": False,
}
HEALTH_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["status", "index", "dimension", "model_id"],
    "properties": {
        "status": {"const": "ok"},
        "vector_bucket": {"type": "string"},
        "index": {"type": "string"},
        "dimension": {"type": "integer"},
        "distance_metric": {"type": "string"},
        "model_id": {"type": "string"},
        "max_k": {"type": "integer"},
        "max_image_bytes": {"type": "integer"},
    },
    "additionalProperties": False,
}

API_ERROR_CODES: dict[str, int] = {
    "invalid_json": 400,
    "route_not_found": 404,
    "response_too_large": 413,
    "internal_error": 500,
    "service_unavailable": 503,
}
"""Errors the search function answers itself (not a search error): code -> status."""

GATEWAY_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
    "description": "API Gateway's own answer, before the function runs: 401/403 (no or a "
    "bad signature or token), 413 (a request over the gateway's or Lambda's payload "
    "limit), 429 (throttled: retry later). HTTP APIs cannot reshape these.",
}


def error_codes() -> dict[str, int]:
    """Every error code the API answers, with its status."""
    codes = dict(API_ERROR_CODES)
    stack: list[type[search_errors.SearchError]] = [search_errors.SearchError]
    while stack:
        kind = stack.pop()
        codes.setdefault(kind.code, kind.status)
        stack.extend(kind.__subclasses__())
    return dict(sorted(codes.items()))


ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "retryable"],
            "properties": {
                "code": {"enum": sorted(error_codes())},
                "message": {"type": "string"},
                "retryable": {
                    "type": "boolean",
                    "description": "True for 429/5xx answers that may succeed later "
                    "(then Retry-After says when to try again).",
                },
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "SearchRequest": SEARCH_REQUEST,
    "SearchResponse": SEARCH_RESPONSE,
    "Hit": HIT,
    "ObjectResponse": OBJECT_RESPONSE,
    "HealthResponse": HEALTH_RESPONSE,
    "Error": ERROR,
    "GatewayError": GATEWAY_ERROR,
}


GATEWAY_STATUSES: tuple[int, ...] = (401, 403, 413, 429)
"""Statuses API Gateway may answer itself (:data:`GATEWAY_ERROR`)."""


def _errors(*statuses: int) -> dict[str, Any]:
    """Responses for ``statuses``: the function's Error, or the gateway's where it may answer."""
    by_status: dict[int, list[str]] = {}
    for code, status in error_codes().items():
        by_status.setdefault(status, []).append(code)
    out: dict[str, Any] = {}
    for status in sorted({*statuses, *GATEWAY_STATUSES}):
        refs = [{"$ref": "#/components/schemas/Error"}] if status in by_status else []
        if status in GATEWAY_STATUSES:
            refs.append({"$ref": "#/components/schemas/GatewayError"})
        codes = by_status.get(status, [])
        what = "codes: " + ", ".join(codes) if codes else "from API Gateway"
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        out[str(status)] = {
            "description": what,
            "content": {"application/json": {"schema": schema}},
        }
    return out


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the search API (``docs/openapi.json``)."""
    common = (400, 403, 429, 500, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgsearch search API",
            "version": API_VERSION,
            "description": "Search the image index by text, image or an indexed image. "
            "Every request is signed (SigV4, service execute-api) unless the stack uses "
            'a Cognito JWT authorizer. Errors are {"error": {code, message, retryable}}.',
        },
        "servers": [{"url": "https://{api_id}.execute-api.{region}.amazonaws.com"}],
        "security": [{"sigv4": []}, {"cognito": []}],
        "paths": {
            "/search": {
                "post": {
                    "operationId": "search",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SearchRequest"}
                            }
                        },
                    },
                    "responses": {
                        **_ok("SearchResponse", "Results, nearest first."),
                        **_errors(*common, 404, 409, 413, 415, 502),
                    },
                }
            },
            "/objects/{bucket}/{key}": {
                "get": {
                    "operationId": "getObject",
                    "parameters": [
                        _path_parameter("bucket", "The source bucket."),
                        _path_parameter("key", "The object key; may contain slashes."),
                    ],
                    "responses": {
                        **_ok("ObjectResponse", "The object's vector metadata."),
                        **_errors(*common, 404, 502),
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        **_ok("HealthResponse", "The index and model searched (no secrets)."),
                        **_errors(403, 429, 500),
                    },
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4, service execute-api.",
                },
                "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


def openapi_json() -> str:
    """:func:`openapi_document` as the committed file's text (stable: a diff is a change)."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """``python -m imgsearch.api_shapes PATH``: write the OpenAPI document (``make openapi``)."""
    if len(argv) != 1:
        print("usage: python -m imgsearch.api_shapes docs/openapi.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(openapi_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


__all__ = [
    "API_ERROR_CODES",
    "ERROR",
    "GATEWAY_ERROR",
    "GATEWAY_STATUSES",
    "HEALTH_ROUTE",
    "OBJECT_ROUTE",
    "QUERY_FIELDS",
    "ROUTES",
    "SCHEMAS",
    "SEARCH_FIELDS",
    "SEARCH_ROUTE",
    "Field",
    "error_codes",
    "openapi_document",
    "openapi_json",
]
