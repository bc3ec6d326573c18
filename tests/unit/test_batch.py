"""The batch rules as pure functions: per-object order and the partial-batch response."""

from __future__ import annotations

from imgsearch.batch import BatchItem, hold_back_after_failures, partial_batch_response
from imgsearch.contract import Outcome
from imgsearch.ingest import MessageResult


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
