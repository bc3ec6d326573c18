"""The embedder checks the ETag again before writing a vector (issue 11, point 3).

By S3 location Bedrock reads whatever version is current when it reads, and after a long
embedding a newer version may have overtaken the message; either way the vector about to
be written may be an older ETag's. The object is overwritten (or deleted) in moto while
the stubbed InvokeModel is being called, as a real upload would land mid-embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imgsearch.ingest import RECHECK_AFTER_SECONDS
from tests.unit.imaging import jpeg
from tests.unit.lambda_harness import SOURCE, Pipeline, start


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys)


def during_embedding(pipe: Pipeline, action: Callable[[], object]) -> None:
    """Run ``action`` once, while the embedder's InvokeModel request is being built."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    pipe.embedder.BEDROCK.meta.events.register(
        "before-parameter-build.bedrock-runtime.InvokeModel", hook
    )


def big_jpeg(pipe: Pipeline, color: int) -> bytes:
    """A JPEG above the inline limit: it goes to Bedrock by S3 location."""
    small = jpeg((800, 600), color=color)
    return small + b"\0" * (pipe.cfg.model.max_inline_image_bytes + 1024 - len(small))


def test_overwritten_while_embedded_by_s3_location_writes_no_vector(pipe: Pipeline) -> None:
    pipe.put("big.jpg", big_jpeg(pipe, 1))
    v1 = pipe.upsert("big.jpg")
    pipe.bedrock_ok(2)
    during_embedding(pipe, lambda: pipe.put("big.jpg", big_jpeg(pipe, 2)))

    pipe.run(pipe.sqs_event(v1))

    [line] = pipe.outcomes()
    assert (line["outcome"], line["route"], line["etag_rechecked"]) == ("stale_skipped", "s3", True)
    assert line["current_etag"] == pipe.s3.head_object(Bucket=SOURCE, Key="big.jpg")["ETag"].strip(
        '"'
    )
    assert pipe.vectors() == {}
    # The newer version's own message then indexes it.
    pipe.run(pipe.sqs_event(pipe.upsert("big.jpg")))
    [entry] = pipe.vectors().values()
    head = pipe.s3.head_object(Bucket=SOURCE, Key="big.jpg")
    assert entry["metadata"]["etag"] == head["ETag"].strip('"')


def test_deleted_while_embedded_writes_no_vector(pipe: Pipeline) -> None:
    pipe.put("big.jpg", big_jpeg(pipe, 1))
    pipe.bedrock_ok()
    during_embedding(pipe, lambda: pipe.delete("big.jpg"))

    pipe.run(pipe.sqs_event(pipe.upsert("big.jpg")))

    [line] = pipe.outcomes()
    assert (line["outcome"], line["object_deleted"]) == ("stale_skipped", True)
    assert pipe.vectors() == {}


def test_unchanged_object_by_s3_location_is_written(pipe: Pipeline) -> None:
    pipe.put("big.jpg", big_jpeg(pipe, 1))
    pipe.bedrock_ok()

    pipe.run(pipe.sqs_event(pipe.upsert("big.jpg")))

    [line] = pipe.outcomes()
    assert (line["outcome"], line["etag_rechecked"]) == ("embedded", True)
    assert len(pipe.vectors()) == 1


def test_slow_inline_embedding_is_checked_again(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    v1 = pipe.upsert("a.jpg")
    pipe.bedrock_ok()

    def overwrite_slowly() -> None:
        pipe.put("a.jpg", jpeg(color=2))
        time.sleep(RECHECK_AFTER_SECONDS + 0.1)

    during_embedding(pipe, overwrite_slowly)
    pipe.run(pipe.sqs_event(v1))

    [line] = pipe.outcomes()
    assert (line["outcome"], line["route"]) == ("stale_skipped", "inline")
    assert pipe.vectors() == {}


def test_fast_inline_embedding_costs_no_head_object(pipe: Pipeline) -> None:
    pipe.put("a.jpg", jpeg(color=1))
    pipe.bedrock_ok()
    heads: list[str] = []
    pipe.embedder.S3.meta.events.register(
        "before-call.s3.HeadObject", lambda **_: heads.append("head")
    )

    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))

    [line] = pipe.outcomes()
    assert line["outcome"] == "embedded" and "etag_rechecked" not in line
    assert heads == []
