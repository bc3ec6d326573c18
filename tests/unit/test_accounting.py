"""The accounting invariant: every object in exactly one state, or an earlier version's
vector kept beside the newer version's parked message or model-answer failure."""

from __future__ import annotations

from imgsearch.messages import vector_key
from localcloud.accounting import Ledger, OutcomeRecord, check, parse_outcome

OBJ = ("bkt", "a.jpg")
VKEY = "vk-a"


def _ledger(**record: object) -> Ledger:
    ledger = Ledger()
    outcome = parse_outcome({"bucket": OBJ[0], "key": OBJ[1], "vector_key": VKEY, **record})
    assert isinstance(outcome, OutcomeRecord)
    ledger.record(outcome)
    return ledger


def _check(ledger: Ledger, *, vector: bool, dlq: bool) -> list[str]:
    keys = [vector_key(*OBJ)] if vector else []
    return check([OBJ], keys, ledger, [OBJ] if dlq else []).violations


def test_exactly_one_state_is_fine() -> None:
    assert _check(_ledger(outcome="embedded"), vector=True, dlq=False) == []
    failed = _ledger(outcome="permanent_failure", reason="corrupt")
    assert _check(failed, vector=False, dlq=False) == []
    assert _check(_ledger(outcome="transient_failure"), vector=False, dlq=True) == []


def test_no_state_at_all_is_a_violation() -> None:
    assert _check(_ledger(outcome="transient_failure"), vector=False, dlq=False)


def test_a_kept_earlier_vector_beside_a_model_answer_failure_is_fine() -> None:
    ledger = _ledger(
        outcome="permanent_failure", reason="model_rejected_input", earlier_vector_kept=True
    )
    assert _check(ledger, vector=True, dlq=False) == []


def test_a_vector_beside_a_bad_bytes_failure_is_a_violation() -> None:
    """Bad bytes delete the earlier vector: one left behind is a bug."""
    ledger = _ledger(outcome="permanent_failure", reason="corrupt")
    assert _check(ledger, vector=True, dlq=False)


def test_an_earlier_vector_beside_a_parked_message_is_fine() -> None:
    """Transient failures never delete: the DLQ holds the newer version's message."""
    assert _check(_ledger(outcome="transient_failure"), vector=True, dlq=True) == []


def test_a_permanent_failure_and_a_parked_message_is_a_violation() -> None:
    ledger = _ledger(outcome="permanent_failure", reason="corrupt")
    assert _check(ledger, vector=False, dlq=True)


def test_each_group_handed_out_twice_at_once_is_a_violation_naming_it() -> None:
    keys = [vector_key(*OBJ)]
    fine = check([OBJ], keys, _ledger(outcome="embedded"), [], group_overlaps={})
    assert fine.ok
    report = check(
        [OBJ], keys, _ledger(outcome="embedded"), [], group_overlaps={"g00007": 2, "g00001": 1}
    )
    assert not report.ok
    assert report.violations == [
        "message group g00001: handed out 1x while a batch of it was in flight "
        "(its messages ran out of order)",
        "message group g00007: handed out 2x while a batch of it was in flight "
        "(its messages ran out of order)",
    ]
    assert "violations=2" in report.summary()
