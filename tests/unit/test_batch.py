"""The batch rules as pure functions (per-object order, the partial-batch response), and
the runner's last line of defence: an exception around one message ends that message alone."""

from __future__ import annotations

import logging

import pytest

from imgsearch.batch import BatchItem, BatchRunner, hold_back_after_failures, partial_batch_response
from imgsearch.config import load_config
from imgsearch.contract import Outcome
from imgsearch.ingest import MessageResult
from imgsearch.messages import for_backfill, vector_key
from tests.unit.imaging import jpeg
from tests.unit.test_batch_lanes import ETAG, S3, Vectors, converger_on


def _batch(
    *rows: tuple[str, str | None, Outcome],
) -> tuple[list[BatchItem], dict[str, MessageResult]]:
    items = [BatchItem(message_id, "{}", group) for message_id, group, _ in rows]
    results = {message_id: MessageResult(outcome) for message_id, _, outcome in rows}
    return items, results


def test_after_a_failure_the_rest_of_its_group_is_handed_back_in_order() -> None:
    items, results = _batch(
        ("m1", "g1", "embedded"),
        ("m2", "g1", "transient_failure"),
        ("m3", "g2", "embedded"),
        ("m4", "g1", "unchanged"),
        ("m5", "g1", "permanent_failure"),
    )

    hold_back_after_failures(items, results)

    assert [results[i.message_id].outcome for i in items] == [
        "embedded",
        "transient_failure",
        "embedded",
        "transient_failure",
        "transient_failure",
    ]
    assert results["m4"].reason == results["m5"].reason == "earlier_message_in_group_failed"
    assert partial_batch_response(items, results) == {
        "batchItemFailures": [{"itemIdentifier": i} for i in ("m2", "m4", "m5")]
    }


def test_a_message_without_a_group_is_its_own_group() -> None:
    items, results = _batch(("m1", None, "transient_failure"), ("m2", None, "embedded"))
    hold_back_after_failures(items, results)
    assert results["m2"].outcome == "embedded"
    assert partial_batch_response(items, results) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }


def test_the_failure_keeps_its_own_reason() -> None:
    items, results = _batch(("m1", "g", "transient_failure"), ("m2", "g", "transient_failure"))
    results["m1"].reason = "put_vectors_failed"
    results["m2"].reason = "throttled"
    hold_back_after_failures(items, results)
    assert [results["m1"].reason, results["m2"].reason] == ["put_vectors_failed", "throttled"]


def test_an_empty_batch_has_no_failures() -> None:
    assert partial_batch_response([], {}) == {"batchItemFailures": []}


# --------------------------------------------------------------------------- the batch-level catch


def test_an_exception_outside_the_converger_ends_that_message_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The runner's own catch (``_run_lane``): whatever raises around the converger.

    Triggered at an edge: the clock the runner reads before each message fails once.
    """
    data = jpeg(color=6)
    s3, vectors = S3(data, peers=1), Vectors()
    cfg = load_config().replace(batch_size=10, embed_pool_size=1)
    converger = converger_on(cfg, s3, vectors)
    reads = iter(range(100))

    def clock() -> float:
        if next(reads) == 1:  # the second message's check of the deadline
            raise OSError("clock_gettime failed")
        return 0.0

    runner = BatchRunner(converger, pool_size=1, clock=clock)
    keys = ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"]
    items = [
        BatchItem(f"m{i}", for_backfill("src", k, size=len(data), etag=ETAG).to_json(), f"g{i}")
        for i, k in enumerate(keys)
    ]
    with caplog.at_level(logging.ERROR, logger="imgsearch.batch"):
        results = runner.run(items, deadline=60.0)

    assert list(results) == ["m0", "m1", "m2"]  # one result (one outcome line) each
    failed = results["m1"]
    assert (failed.outcome, failed.reason) == ("transient_failure", "unexpected_error")
    assert failed.detail == "OSError: clock_gettime failed"
    assert failed.fields == {
        "message_id": "m1",
        "bucket": "src",
        "key": "photos/b.jpg",
        "vector_key": vector_key("src", "photos/b.jpg"),
    }
    assert [results[m].outcome for m in ("m0", "m2")] == ["embedded", "embedded"]
    assert vectors.puts == [2]  # the neighbours' vectors were written
    assert partial_batch_response(items, results) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}]
    }
    [logged] = [r for r in caplog.records if r.getMessage() == "unexpected error"]
    assert logged.exc_info is not None and getattr(logged, "message_id", None) == "m1"
