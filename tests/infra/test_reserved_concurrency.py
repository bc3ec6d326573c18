"""``reserved_concurrency``: a reservation by default, none with 0 (for small accounts).

An account whose concurrency quota is 10 cannot reserve anything (Lambda keeps 10
unreserved), so ``-c reserved_concurrency=0`` must leave ``ReservedConcurrentExecutions``
out of the template while the event source still caps the embedder.
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth, SynthFn


def _embedder(s: Synth) -> dict[str, Any]:
    props: dict[str, Any] = s.raw["Resources"][s.logical_id(s.stack.pipeline.functions.embedder)][
        "Properties"
    ]
    return props


def _max_concurrency(s: Synth) -> Any:
    _, mapping = s.one("AWS::Lambda::EventSourceMapping")
    return mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]


def test_default_reserves_the_event_sources_maximum(synth: SynthFn) -> None:
    s = synth()
    assert _embedder(s)["ReservedConcurrentExecutions"] == 5
    assert _max_concurrency(s) == 5


def test_zero_reserves_nothing_and_the_event_source_still_caps_the_embedder(
    synth: SynthFn,
) -> None:
    s = synth(reserved_concurrency="0")  # as `cdk deploy -c reserved_concurrency=0` passes it
    assert "ReservedConcurrentExecutions" not in _embedder(s)
    assert _max_concurrency(s) == 5
    router = s.raw["Resources"][s.logical_id(s.stack.pipeline.functions.router)]["Properties"]
    assert "ReservedConcurrentExecutions" not in router


def test_an_explicit_reservation_is_used_as_given(synth: SynthFn) -> None:
    s = synth(reserved_concurrency="12")
    assert _embedder(s)["ReservedConcurrentExecutions"] == 12
    assert _max_concurrency(s) == 5
