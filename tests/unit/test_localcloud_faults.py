"""Fault rules of the local cloud: next-N, fractions, matching, latency."""

from __future__ import annotations

import pytest

from localcloud.services.faults import FaultRule, Faults


def _errors(faults: Faults, n: int, service: str = "bedrock", op: str = "InvokeModel") -> list[str]:
    out = []
    for _ in range(n):
        d = faults.decide(service, op, b'{"key": "photos/a.jpg"}')
        out.append(d.error.code if d.error else "-")
    return out


def test_next_n_calls_then_the_rule_retires() -> None:
    faults = Faults()
    rule = faults.throttle_bedrock(3)
    assert _errors(faults, 5) == ["ThrottlingException"] * 3 + ["-", "-"]
    assert rule.fired == 3 and faults.rules() == []
    assert faults.injected == {"ThrottlingException": 3}


def test_fraction_is_seeded_and_roughly_right() -> None:
    runs = []
    for _ in range(2):
        faults = Faults(seed=42)
        faults.throttle_bedrock(fraction=0.3)
        runs.append(_errors(faults, 1000))
    assert runs[0] == runs[1]
    assert 240 <= runs[0].count("ThrottlingException") <= 360


def test_rules_match_service_operation_and_body() -> None:
    faults = Faults()
    faults.s3vectors_error("PutVectors", count=None, match="photos/a.jpg")
    assert _errors(faults, 2, "s3vectors", "PutVectors") == ["ServiceUnavailableException"] * 2
    assert _errors(faults, 1, "s3vectors", "QueryVectors") == ["-"]
    assert _errors(faults, 1, "bedrock") == ["-"]
    assert faults.decide("s3vectors", "PutVectors", b"other").error is None
    faults.clear()
    assert _errors(faults, 1, "s3vectors", "PutVectors") == ["-"]


def test_latency_adds_up_and_errors_keep_their_status() -> None:
    faults = Faults()
    faults.bedrock_latency(0.2)
    faults.add(FaultRule("bedrock", "ModelTimeoutException", count=1, latency_seconds=0.1))
    first = faults.decide("bedrock", "InvokeModel", b"")
    assert first.delay == pytest.approx(0.3)
    assert first.error is not None and first.error.status == 408
    second = faults.decide("bedrock", "InvokeModel", b"")
    assert second.delay == pytest.approx(0.2) and second.error is None


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "sqs", "error": "X"},
        {"service": "bedrock"},
        {"service": "bedrock", "error": "X", "count": 1, "fraction": 0.5},
        {"service": "bedrock", "error": "X", "fraction": 2},
        {"service": "bedrock", "error": "X", "colour": "red"},
    ],
)
def test_bad_rules_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Faults().add_from_json(spec)
