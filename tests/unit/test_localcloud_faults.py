"""Fault rules of the local cloud: next-N, fractions, matching, latency, named answers."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from imgsearch.bedrock_errors import (
    ACCESS_DENIED,
    REJECTED_INPUT,
    classify,
)
from imgsearch.bedrock_errors import MODEL_CONFIGURATION_ERROR as CONFIGURATION
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


MARENGO = "twelvelabs.marengo-embed-3-0-v1:0"


@pytest.mark.parametrize(
    ("kind", "code", "status", "reason", "transient"),
    [
        ("model_not_enabled", "AccessDeniedException", 403, ACCESS_DENIED, True),
        ("inference_profile_required", "ValidationException", 400, CONFIGURATION, True),
        ("input_rejected", "ValidationException", 400, REJECTED_INPUT, False),
    ],
)
def test_named_bedrock_answers_and_what_the_pipeline_makes_of_them(
    kind: str, code: str, status: int, reason: str, transient: bool
) -> None:
    faults = Faults()
    faults.bedrock_answer(kind, 1)
    decision = faults.decide("bedrock", "InvokeModel", b"{}", model_id=MARENGO.replace(":", "%3A"))
    assert faults.decide("bedrock", "InvokeModel", b"{}").error is None  # count=1 retired
    error = decision.error
    assert error is not None and (error.code, error.status) == (code, status)
    if kind == "inference_profile_required":
        assert error.message == (
            f"Invocation of model ID {MARENGO} with on-demand throughput isn't supported. "
            "Retry your request with the ID or ARN of an inference profile that contains "
            "this model."
        )
    # As botocore hands the answer to the embedder: only input_rejected is the image's.
    exc = ClientError(
        {
            "Error": {"Code": error.code, "Message": error.message},
            "ResponseMetadata": {"HTTPStatusCode": error.status},
        },
        "InvokeModel",
    )
    got, retry_now = classify(exc)
    assert (got, got != REJECTED_INPUT, retry_now) == (reason, transient, False)


def test_a_named_answer_can_be_set_over_json() -> None:
    faults = Faults()
    rule = faults.add_from_json({"service": "bedrock", "kind": "model_not_enabled", "count": 2})
    assert rule.public()["kind"] == "model_not_enabled"
    assert rule.public()["error"] == "AccessDeniedException"
    assert _errors(faults, 3) == ["AccessDeniedException"] * 2 + ["-"]
    assert _errors(faults, 1, "s3vectors", "PutVectors") == ["-"]


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "bedrock", "kind": "bad_luck"},
        {"service": "s3vectors", "kind": "model_not_enabled"},
        {"service": "bedrock", "kind": "input_rejected", "error": "ThrottlingException"},
    ],
)
def test_bad_kinds_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="kind"):
        Faults().add_from_json(spec)


def test_an_error_rule_is_not_used_up_by_a_call_another_rule_answered() -> None:
    """Two next-1 rules answer two calls, one each (the second is not spent on the first)."""
    faults = Faults()
    faults.bedrock_answer("model_not_enabled", 1)
    faults.bedrock_answer("inference_profile_required", 1)
    assert _errors(faults, 3) == ["AccessDeniedException", "ValidationException", "-"]
