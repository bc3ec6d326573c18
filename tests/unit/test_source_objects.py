"""What S3 says of the source object decides the message: the embedder on moto, Bedrock stubbed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imgsearch import converge
from tests.unit.imaging import jpeg
from tests.unit.lambda_harness import SOURCE, Pipeline, start


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Pipeline]:
    yield from start(monkeypatch, capsys)


def test_an_overwrite_archived_in_glacier_is_permanent_and_drops_the_old_vector(
    pipe: Pipeline,
) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    assert len(pipe.vectors()) == 1
    pipe.outcomes()  # the first run's lines
    pipe.s3.put_object(Bucket=SOURCE, Key="a.jpg", Body=jpeg((32, 32)), StorageClass="GLACIER")

    assert pipe.run(pipe.sqs_event(pipe.upsert("a.jpg"))) == {"batchItemFailures": []}

    [line] = pipe.outcomes()
    assert (line["outcome"], line["reason"], line["stale_vector_deleted"]) == (
        "permanent_failure",
        converge.ARCHIVED,
        True,
    )
    assert "restore it" in str(line["detail"])
    assert pipe.vectors() == {}
    assert pipe.bedrock_requests[1:] == []  # no model call for the archived version


def test_a_new_version_deleted_before_it_is_read_takes_the_old_vector_along(
    pipe: Pipeline,
) -> None:
    pipe.put("a.jpg", jpeg())
    pipe.bedrock_ok()
    pipe.run(pipe.sqs_event(pipe.upsert("a.jpg")))
    pipe.outcomes()
    pipe.put("a.jpg", jpeg((32, 32)))
    message = pipe.upsert("a.jpg")
    pipe.delete("a.jpg")

    pipe.run(pipe.sqs_event(message))

    [line] = pipe.outcomes()
    assert line["outcome"] == "deleted"
    assert pipe.vectors() == {}
