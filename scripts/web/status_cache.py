"""``/api/status`` figures fetched at most once per TTL, whatever the number of open tabs.

Why: every tab polls; without a shared cache ten tabs make ten sets of CloudWatch
``GetMetricData`` calls a minute (billed per metric requested). One fetch is in flight at
a time; the others wait for its answer. A failed fetch with earlier figures answers those,
marked ``stale`` with the outage's words, so the page greys them instead of going blank.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STATUS_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class Snapshot:
    figures: dict[str, Any]
    fetched_at: str
    """ISO UTC time of the successful fetch."""
    at: float
    """``clock()`` at that fetch."""


class StaleStatus(Exception):
    """A fetch failed; ``snapshot`` holds the last good figures (or None: there are none)."""

    def __init__(self, cause: Exception, snapshot: Snapshot | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.snapshot = snapshot


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class StatusCache:
    """``fetch()`` results kept ``ttl`` seconds; thread-safe, one fetch in flight."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any]],
        ttl: float = STATUS_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._last: Snapshot | None = None

    def get(self) -> Snapshot:
        """Fresh figures (fetched now or within the TTL); raises :class:`StaleStatus`."""
        with self._lock:  # held across the fetch: one in flight, the others wait for it
            now = self._clock()
            last = self._last
            if last is not None and now - last.at < self.ttl:
                return last
            try:
                figures = self._fetch()
            except Exception as exc:  # not kept: the next poll tries again
                raise StaleStatus(exc, last) from exc
            self._last = Snapshot(figures, _now_iso(), now)
            return self._last


__all__ = ["STATUS_TTL_SECONDS", "Snapshot", "StaleStatus", "StatusCache"]
