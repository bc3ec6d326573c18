"""FIFO batches on the local cloud: several messages of one group per invocation.

Its own module because it needs a cloud with ``batch_size`` 10, and only one local cloud
runs per process (``test_localcloud_runtime``'s runs for that whole module).
"""

from __future__ import annotations

from typing import Any

from imgsearch.config import load_config
from localcloud.cloud import LocalCloud
from tests.unit.test_localcloud_runtime import CONFIG, LAMBDAS, _fake, _send


def test_a_fifo_batch_carries_several_messages_of_one_group_in_order() -> None:
    """SQS returns as many messages of one group per receive as it can, and Lambda hands
    that receive to one invocation (no batching window on FIFO): up to 10, in order."""
    cfg = load_config(overrides={**CONFIG, "batch_size": 10})
    sent = {"A": [f"a{i}" for i in range(6)], "B": [f"b{i}" for i in range(4)]}
    with LocalCloud.start(
        cfg, router_handler=f"{LAMBDAS}.s3_router", embedder_handler=f"{LAMBDAS}.sqs_worker"
    ) as batched:
        source = batched.event_source
        assert source is not None
        source.disable()  # all ten are waiting when polling starts
        for group, idents in sent.items():
            for ident in idents:
                _send(batched, group, id=ident)
        source.enable()
        batched.wait_idle(60)
        starts = sorted(
            _fake(batched, batched.resources.embedder_function, "start"), key=lambda r: r["t"]
        )
        for group, idents in sent.items():  # each once, in send order
            assert [r["id"] for r in starts if r["group"] == group] == idents
        invocations: dict[str, list[dict[str, Any]]] = {}
        for r in starts:
            invocations.setdefault(r["request"], []).append(r)
        runs = [
            [r["id"] for r in records if r["group"] == group]
            for records in invocations.values()
            for group in sent
        ]
        assert max(len(run) for run in runs) > 1, runs
        assert source.stats["group_runs"] >= 1
        assert batched.accounting().ok, batched.accounting().violations
