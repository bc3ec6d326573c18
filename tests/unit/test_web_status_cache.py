"""/api/status's cache: one fetch per TTL for every tab, stale figures when a fetch fails."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from scripts.web.status_cache import StaleStatus, StatusCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_fetch_per_ttl() -> None:
    clock, calls = Clock(), []

    def fetch() -> dict[str, Any]:
        calls.append(1)
        return {"n": len(calls)}

    cache = StatusCache(fetch, ttl=60, clock=clock)
    first = cache.get()
    clock.now += 59
    assert cache.get() is first and len(calls) == 1
    assert first.fetched_at.endswith("Z")
    clock.now += 1
    assert cache.get().figures == {"n": 2}


def test_a_failed_fetch_keeps_the_last_figures_and_the_next_poll_retries() -> None:
    clock = Clock()
    answers: list[Any] = [{"n": 1}, ConnectionError("down"), {"n": 3}]

    def fetch() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    cache = StatusCache(fetch, ttl=60, clock=clock)
    good = cache.get()
    clock.now += 61
    with pytest.raises(StaleStatus) as stale:
        cache.get()
    assert stale.value.snapshot is good and isinstance(stale.value.cause, ConnectionError)
    assert cache.get().figures == {"n": 3}  # no waiting out a TTL after a failure


def test_no_earlier_figures_means_no_snapshot() -> None:
    def fetch() -> dict[str, Any]:
        raise ConnectionError("down")

    with pytest.raises(StaleStatus) as stale:
        StatusCache(fetch).get()
    assert stale.value.snapshot is None


def test_concurrent_tabs_share_one_fetch_in_flight() -> None:
    calls, gate = [], threading.Event()

    def fetch() -> dict[str, Any]:
        calls.append(1)
        gate.wait(5)
        return {}

    cache = StatusCache(fetch)
    threads = [threading.Thread(target=cache.get) for _ in range(6)]
    for t in threads:
        t.start()
    while not calls:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
