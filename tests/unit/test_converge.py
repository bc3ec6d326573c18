"""The pure convergence decisions."""

from __future__ import annotations

import pytest

from imgsearch import contract, converge
from imgsearch.images import HEADER_READ_BYTES
from imgsearch.models import MARENGO_3, NOVA_MME

MODEL = NOVA_MME.model_id


def test_normalize_etag() -> None:
    assert converge.normalize_etag('"abc"') == "abc"
    assert converge.normalize_etag("abc-3") == "abc-3"
    assert converge.normalize_etag("") is None
    assert converge.normalize_etag(None) is None
    assert converge.normalize_etag('""') is None


def test_is_unchanged_compares_etag_and_model() -> None:
    assert converge.is_unchanged({"etag": "abc", "model_id": MODEL}, "abc", MODEL)
    assert converge.is_unchanged({"etag": '"abc"'}, "abc", MODEL)
    assert not converge.is_unchanged({"etag": "abc", "model_id": MODEL}, "def", MODEL)
    assert not converge.is_unchanged({"etag": "abc", "model_id": MARENGO_3.model_id}, "abc", MODEL)
    assert not converge.is_unchanged({}, "abc", MODEL)
    assert not converge.is_unchanged(None, "abc", MODEL)


def test_read_limit_reads_small_objects_whole_and_big_ones_by_header() -> None:
    inline = NOVA_MME.max_inline_image_bytes
    assert converge.read_limit(1000, NOVA_MME, HEADER_READ_BYTES) == inline
    assert converge.read_limit(inline, NOVA_MME, HEADER_READ_BYTES) == inline
    assert converge.read_limit(inline + 1, NOVA_MME, HEADER_READ_BYTES) == HEADER_READ_BYTES
    # Unknown size never reads more than the inline limit.
    assert converge.read_limit(None, NOVA_MME, HEADER_READ_BYTES) == inline


def test_total_size_from_content_range() -> None:
    assert converge.total_size("bytes 0-1048575/52428800", 1048576) == 52428800
    assert converge.total_size("bytes 0-99/100", 100) == 100
    assert converge.total_size(None, 42) == 42
    assert converge.total_size("bytes 0-99/*", 100) == 100


@pytest.mark.parametrize(
    ("code", "status", "verdict", "reason"),
    [
        ("NoSuchKey", 404, "gone", "gone"),
        ("404", 404, "gone", "gone"),
        ("PreconditionFailed", 412, "stale", "stale"),
        ("InvalidObjectState", 403, "archived", "archived"),
        ("InvalidRange", 416, "empty", "empty"),
        ("AccessDenied", 403, "transient", "s3_access_denied"),
        ("SlowDown", 503, "transient", "s3_error"),
        ("InternalError", 500, "transient", "s3_error"),
    ],
)
def test_classify_s3_error(code: str, status: int, verdict: str, reason: str) -> None:
    assert converge.classify_s3_error(code, status) == (verdict, reason)


def test_image_route() -> None:
    inline = NOVA_MME.max_inline_image_bytes
    assert converge.image_route(1000, True, NOVA_MME) == "inline"
    assert converge.image_route(inline, True, NOVA_MME) == "inline"
    assert converge.image_route(inline + 1, False, NOVA_MME) == "s3"
    assert converge.image_route(1000, False, NOVA_MME) == "s3"


def test_success_outcomes_exclude_only_transient() -> None:
    assert set(contract.OUTCOMES) - contract.SUCCESS_OUTCOMES == {"transient_failure"}
