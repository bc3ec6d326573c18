"""How much of an invocation the embedder may spend on messages.

The handler keeps part of the Lambda's remaining time in reserve to write the batch's
vectors and answer SQS; no message (and no Bedrock retry) starts after the rest is
spent. The config reads the same rule to refuse a timeout that would leave nothing,
where every message would end ``deadline_exceeded``. Pure: standard library only.
"""

from __future__ import annotations

RESERVE_SECONDS_MAX = 10.0
"""Time kept back from the Lambda timeout to write vectors and answer SQS."""
RESERVE_SECONDS_MIN = 1.0
RESERVE_FRACTION = 0.2
MIN_BUDGET_SECONDS = 1.0
"""The least time for messages that a timeout must leave: about one Bedrock call."""


def reserve_seconds(remaining: float) -> float:
    """Seconds kept back from ``remaining``: a fifth of it, within 1..10 s."""
    return min(RESERVE_SECONDS_MAX, max(RESERVE_SECONDS_MIN, RESERVE_FRACTION * remaining))


def budget_seconds(remaining: float) -> float:
    """Seconds of ``remaining`` that messages may use."""
    return max(0.0, remaining - reserve_seconds(remaining))


def min_timeout_seconds() -> int:
    """The shortest whole-second Lambda timeout that leaves :data:`MIN_BUDGET_SECONDS`."""
    timeout = 1
    while budget_seconds(timeout) < MIN_BUDGET_SECONDS:
        timeout += 1
    return timeout


__all__ = [
    "MIN_BUDGET_SECONDS",
    "RESERVE_SECONDS_MAX",
    "RESERVE_SECONDS_MIN",
    "budget_seconds",
    "min_timeout_seconds",
    "reserve_seconds",
]
