"""The concurrent sender: per-entry retries, rejects, throttling, pacing, the watermark."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scripts.backfill.errors import SendError
from scripts.backfill.sender import (
    AdaptiveLimiter,
    Batch,
    BatchSender,
    Dispatcher,
    RateLimiter,
    RetryPolicy,
    Watermark,
)
from tests.unit.backfill_support import aws_env

__all__ = ["aws_env"]

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/imgsearch-embed.fifo"


def _entries(n: int) -> list[dict[str, str]]:
    return [
        {
            "Id": str(i),
            "MessageBody": f'{{"key":"k{i}"}}',
            "MessageGroupId": f"g{i:05d}",
            "MessageDeduplicationId": f"d{i}",
        }
        for i in range(n)
    ]


def _ok(entries: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "Successful": [
            {"Id": e["Id"], "MessageId": f"m{e['Id']}", "MD5OfMessageBody": "x" * 32}
            for e in entries
        ],
        "Failed": [],
    }


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sqs(aws_env: Path) -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def _sender(client: Any, sleeps: Sleeps, **kw: Any) -> BatchSender:
    return BatchSender(
        client,
        URL,
        limiter=kw.pop("limiter", AdaptiveLimiter(4)),
        retry=kw.pop("retry", RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.1)),
        sleep=sleeps,
        rng=random.Random(7),
        **kw,
    )


def test_partial_failure_resends_only_the_failed_entries(sqs: Any) -> None:
    entries = _entries(10)
    failed = [entries[2], entries[5], entries[9]]
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": _ok([e for e in entries if e not in failed])["Successful"],
                "Failed": [
                    {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"}
                    for e in failed
                ],
            },
            {"QueueUrl": URL, "Entries": entries},
        )
        stub.add_response("send_message_batch", _ok(failed), {"QueueUrl": URL, "Entries": failed})
        sleeps = Sleeps()
        result = _sender(sqs, sleeps).send(Batch(0, entries))
        stub.assert_no_pending_responses()
    assert (result.sent, result.calls, result.retried_entries, result.rejected) == (10, 2, 3, [])
    assert len(sleeps.calls) == 1


def test_sender_fault_entries_are_rejected_not_retried(sqs: Any) -> None:
    entries = _entries(3)
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message_batch",
            {
                "Successful": _ok(entries[:2])["Successful"],
                "Failed": [
                    {
                        "Id": "2",
                        "SenderFault": True,
                        "Code": "InvalidMessageContents",
                        "Message": "bad char",
                    }
                ],
            },
        )
        result = _sender(sqs, Sleeps()).send(Batch(4, entries))
        stub.assert_no_pending_responses()
    assert result.sent == 2 and result.calls == 1
    assert [(r.code, r.body) for r in result.rejected] == [
        ("InvalidMessageContents", entries[2]["MessageBody"])
    ]


def test_throttling_backs_off_and_shrinks_the_window(sqs: Any) -> None:
    entries = _entries(10)
    clock = iter(range(0, 1000, 1))  # every throttle is a new cooldown period
    limiter = AdaptiveLimiter(8, cooldown=0.5, clock=lambda: float(next(clock)))
    with Stubber(sqs) as stub:
        stub.add_client_error("send_message_batch", "ThrottlingException", http_status_code=400)
        stub.add_client_error("send_message_batch", "RequestThrottled", http_status_code=403)
        stub.add_response(
            "send_message_batch",
            {
                "Successful": _ok(entries[:9])["Successful"],
                "Failed": [
                    {"Id": "9", "SenderFault": False, "Code": "ThrottlingException", "Message": ""}
                ],
            },
        )
        stub.add_response(
            "send_message_batch", _ok(entries[9:]), {"QueueUrl": URL, "Entries": entries[9:]}
        )
        sleeps = Sleeps()
        result = _sender(sqs, sleeps, limiter=limiter).send(Batch(0, entries))
        stub.assert_no_pending_responses()
    assert result.sent == 10 and result.calls == 4 and result.throttled_calls == 3
    assert limiter.throttle_events == 3
    assert limiter.window < 8
    # full jitter: every wait is within the exponential cap of its attempt
    assert all(0 <= s <= min(0.1, 0.01 * 2**a) for a, s in enumerate(sleeps.calls, start=1))


def test_server_errors_and_network_errors_are_retried(sqs: Any) -> None:
    entries = _entries(2)
    with Stubber(sqs) as stub:
        stub.add_client_error("send_message_batch", "InternalError", http_status_code=500)
        stub.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)
        stub.add_response("send_message_batch", _ok(entries))
        result = _sender(sqs, Sleeps()).send(Batch(0, entries))
    assert result.sent == 2 and result.calls == 3


@pytest.mark.parametrize(
    "code", ["AWS.SimpleQueueService.NonExistentQueue", "AccessDenied", "InvalidParameterValue"]
)
def test_errors_retrying_cannot_fix_stop_at_once(sqs: Any, code: str) -> None:
    with Stubber(sqs) as stub:
        stub.add_client_error("send_message_batch", code, http_status_code=400)
        with pytest.raises(SendError, match=code):
            _sender(sqs, Sleeps()).send(Batch(0, _entries(1)))
        stub.assert_no_pending_responses()


def test_gives_up_after_max_attempts_with_a_resumable_message(sqs: Any) -> None:
    with Stubber(sqs) as stub:
        for _ in range(3):
            stub.add_client_error("send_message_batch", "ThrottlingException", http_status_code=400)
        sender = _sender(sqs, Sleeps(), retry=RetryPolicy(max_attempts=3, base_delay=0.001))
        with pytest.raises(SendError, match=r"after 3 attempts.*run again to resume"):
            sender.send(Batch(0, _entries(1)))


# --------------------------------------------------------------------------- pacing


def test_rate_limiter_schedules_messages_evenly() -> None:
    now = [100.0]
    sleeps = Sleeps()
    limiter = RateLimiter(50, clock=lambda: now[0], sleep=sleeps)
    for _ in range(4):
        limiter.acquire(10)  # 10 messages at 50/s = one batch every 0.2 s
    assert sleeps.calls == pytest.approx([0.2, 0.4, 0.6])
    now[0] = 200.0  # idle for long: no burst credit beyond the schedule
    limiter.acquire(10)
    assert len(sleeps.calls) == 3


def test_rate_cap_applies_to_the_sender(sqs: Any) -> None:
    now = [0.0]
    sleeps = Sleeps()
    rate = RateLimiter(20, clock=lambda: now[0], sleep=sleeps)
    with Stubber(sqs) as stub:
        for _ in range(3):
            stub.add_response("send_message_batch", _ok(_entries(10)))
        sender = _sender(sqs, Sleeps(), rate=rate)
        for seq in range(3):
            sender.send(Batch(seq, _entries(10)))
    assert sleeps.calls == pytest.approx([0.5, 1.0])


def test_adaptive_limiter_cuts_once_per_cooldown_and_recovers() -> None:
    now = [0.0]
    limiter = AdaptiveLimiter(16, cooldown=1.0, clock=lambda: now[0])
    limiter.on_throttle()
    limiter.on_throttle()  # same burst: counted once
    assert limiter.window == 8
    now[0] = 2.0
    limiter.on_throttle()
    assert limiter.window == 4
    for _ in range(200):
        limiter.on_success()
    assert limiter.window == 16


def test_adaptive_limiter_bounds_concurrent_calls() -> None:
    limiter = AdaptiveLimiter(2)
    inside = threading.Semaphore(0)
    release = threading.Event()
    peak = [0]

    def call() -> None:
        with limiter.slot():
            peak[0] = max(peak[0], limiter.active)
            inside.release()
            release.wait(5)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    assert inside.acquire(timeout=5) and inside.acquire(timeout=5)
    assert not inside.acquire(timeout=0.2)  # the third waits for a slot
    release.set()
    for t in threads:
        t.join(5)
    assert peak[0] == 2


# --------------------------------------------------------------------------- many batches


def test_watermark_advances_only_over_a_gap_free_prefix() -> None:
    wm: Watermark[str] = Watermark()
    seqs = [wm.issue(f"t{i}") for i in range(5)]
    assert wm.ack(seqs[2]) == []
    assert wm.ack(seqs[1]) == []
    assert wm.ack(seqs[0]) == ["t0", "t1", "t2"]
    assert wm.ack(seqs[4]) == []
    assert wm.outstanding == 2
    assert wm.ack(seqs[3]) == ["t3", "t4"]
    assert wm.outstanding == 0


class GatedSqs:
    """An SQS client whose calls wait for the test to let them through."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.calls = 0
        self._lock = threading.Lock()

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        self.started.release()
        self.gate.wait(10)
        return _ok(Entries)


def test_dispatcher_keeps_at_most_max_in_flight_batches() -> None:
    client = GatedSqs()
    sender = BatchSender(client, URL, limiter=AdaptiveLimiter(8))
    dispatcher = Dispatcher(sender, workers=8, max_in_flight=3)
    submitted = threading.Event()

    def submit_four() -> None:
        for seq in range(4):
            dispatcher.submit(Batch(seq, _entries(10)))
        submitted.set()

    feeder = threading.Thread(target=submit_four)
    feeder.start()
    for _ in range(3):
        assert client.started.acquire(timeout=5)
    assert not submitted.wait(0.3)  # the fourth submit blocks: window full
    assert client.calls == 3
    client.gate.set()
    assert submitted.wait(5)
    feeder.join(5)
    done: list[Any] = []
    while len(done) < 4:
        done.extend(dispatcher.completed(block=True, timeout=5))
    dispatcher.close()
    assert sorted(f.result().seq for f in done) == [0, 1, 2, 3]
    assert all(f.result().sent == 10 for f in done)


def test_an_entry_the_response_does_not_mention_is_resent_not_lost(sqs: Any) -> None:
    entries = _entries(3)
    with Stubber(sqs) as stub:
        stub.add_response(
            "send_message_batch", _ok(entries[:2]), {"QueueUrl": URL, "Entries": entries}
        )
        stub.add_response(
            "send_message_batch", _ok(entries[2:]), {"QueueUrl": URL, "Entries": entries[2:]}
        )
        result = _sender(sqs, Sleeps()).send(Batch(0, entries))
        stub.assert_no_pending_responses()
    assert (result.sent, result.calls, result.rejected) == (3, 2, [])
