"""Per-object accounting: every object ends in exactly one known state.

The embedder writes one JSON log line per message with a top-level ``outcome``
(``embedded``, ``unchanged``, ``deleted``, ``stale_skipped``, ``permanent_failure``,
``transient_failure``), ``reason``, ``bucket``, ``key`` and ``vector_key``. The local
runtime feeds those lines to a :class:`Ledger`; :func:`check` then compares the ledger
with the ground truth (objects in the source bucket, vectors in the index, messages in
the DLQ) and reports every object that is not in exactly one of

* a vector is stored for it,
* a permanent failure is recorded for it (its last outcome), or
* a message for it is in the dead-letter queue.

An earlier version's vector may stay beside the newer version's message in the DLQ, or
beside a permanent failure whose line says ``earlier_vector_kept`` (a model's answer
never deletes a vector). Objects that no longer exist must have no vector, unless their
delete is in the DLQ.
And one message group never runs twice at once: the local event source counts every
overlap, and each is a violation (per-object order would be lost).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imgsearch.contract import OUTCOME_FIELDS, OUTCOMES
from imgsearch.messages import vector_key

ObjectId = tuple[str, str]
"""(bucket, key)"""


@dataclass(frozen=True)
class OutcomeRecord:
    """One embedder outcome line, as the ledger keeps it (``contract.Outcome`` is its name)."""

    outcome: str
    reason: str | None
    bucket: str
    key: str
    vector_key: str | None
    earlier_vector_kept: bool = False
    """A permanent failure that left an earlier version's vector in place on purpose."""


def parse_outcome(record: Mapping[str, Any]) -> OutcomeRecord | None:
    """The outcome in one embedder log record, or None if it is another kind of line."""
    f = OUTCOME_FIELDS
    outcome = record.get(f.outcome)
    if outcome not in OUTCOMES:
        return None
    bucket, key = record.get(f.bucket), record.get(f.key)
    if not isinstance(bucket, str) or not isinstance(key, str):
        return None
    reason = record.get(f.reason)
    vkey = record.get(f.vector_key)
    return OutcomeRecord(
        str(outcome),
        str(reason) if reason is not None else None,
        bucket,
        key,
        str(vkey) if vkey is not None else None,
        record.get(f.earlier_vector_kept) is True,
    )


class Ledger:
    """Outcomes seen so far, by object (thread-safe; fed from worker log readers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[ObjectId, OutcomeRecord] = {}
        self.counts: Counter[str] = Counter()
        self.failures_by_reason: Counter[str] = Counter()
        self.last_at = 0.0
        """``time.perf_counter()`` when the last outcome was recorded (for benchmarks)."""

    def record(self, outcome: OutcomeRecord) -> None:
        with self._lock:
            self.last_at = time.perf_counter()
            self.counts[outcome.outcome] += 1
            if outcome.outcome == "permanent_failure":
                self.failures_by_reason[outcome.reason or "unknown"] += 1
            if outcome.outcome in ("transient_failure", "stale_skipped", "unchanged"):
                # Neither changes what is stored: keep a terminal outcome if one is known.
                previous = self._last.get((outcome.bucket, outcome.key))
                if previous is not None and outcome.outcome != "transient_failure":
                    return
            self._last[(outcome.bucket, outcome.key)] = outcome

    def last(self, bucket: str, key: str) -> OutcomeRecord | None:
        with self._lock:
            return self._last.get((bucket, key))

    def snapshot(self) -> dict[ObjectId, OutcomeRecord]:
        with self._lock:
            return dict(self._last)

    def permanent_failures(self) -> dict[ObjectId, OutcomeRecord]:
        return {o: v for o, v in self.snapshot().items() if v.outcome == "permanent_failure"}


@dataclass
class AccountingReport:
    objects: int = 0
    """Selected objects in the source bucket."""
    vectors: int = 0
    permanent_failures: int = 0
    in_dlq: int = 0
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    """One line per object (or vector) that breaks the invariant; empty when all is well."""
    unreadable_dlq: list[str] = field(default_factory=list)
    """DLQ messages about no object (bodies that are neither a message nor an S3 event),
    each as "unparseable (RecursionError)" or the parse error: shown, not a violation."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(self.failures_by_reason.items()))
        return (
            f"objects={self.objects} vectors={self.vectors} "
            f"permanent_failures={self.permanent_failures}"
            f"{' (' + reasons + ')' if reasons else ''} dlq={self.in_dlq} "
            f"violations={len(self.violations)}"
            f"{f' unreadable_dlq={len(self.unreadable_dlq)}' if self.unreadable_dlq else ''}"
        )


def check(
    objects: Iterable[ObjectId],
    vector_keys: Iterable[str],
    ledger: Ledger,
    dlq_objects: Iterable[ObjectId],
    *,
    group_overlaps: Mapping[str, int] | None = None,
    unreadable_dlq: Iterable[str] = (),
) -> AccountingReport:
    """Check the invariant; see the module docstring.

    ``group_overlaps`` counts, per message group, the times it was handed out while a
    batch of it was still in flight; each such group is a violation too.
    """
    existing = set(objects)
    vectors = set(vector_keys)
    in_dlq = set(dlq_objects)
    last = ledger.snapshot()
    report = AccountingReport(objects=len(existing), unreadable_dlq=list(unreadable_dlq))
    known_vectors: set[str] = set()
    universe = existing | in_dlq | set(last)
    for obj in sorted(universe):
        vk = vector_key(*obj)
        has_vector = vk in vectors
        if has_vector:
            known_vectors.add(vk)
        outcome = last.get(obj)
        if obj in existing:
            failed = outcome is not None and outcome.outcome == "permanent_failure"
            dlq = obj in in_dlq
            states = [
                name
                for name, on in (
                    ("vector", has_vector),
                    ("permanent_failure", failed),
                    ("dlq", dlq),
                )
                if on
            ]
            report.vectors += has_vector
            report.permanent_failures += failed
            report.in_dlq += dlq
            if failed and outcome is not None:
                report.failures_by_reason[outcome.reason or "unknown"] += 1
            # An earlier version's vector may stay beside the newer version's parked
            # message (transient failures never delete) or beside a model-answer failure
            # that says it kept it; any other combination, or none, is a violation.
            kept = has_vector and (
                (dlq and not failed)
                or (failed and not dlq and outcome is not None and outcome.earlier_vector_kept)
            )
            if len(states) != 1 and not kept:
                seen = outcome.outcome if outcome else "no outcome logged"
                report.violations.append(
                    f"s3://{obj[0]}/{obj[1]}: in {len(states)} states {states or ''} "
                    f"(expected exactly one; last outcome: {seen})".replace(" []", "")
                )
        else:
            if obj in in_dlq:
                report.in_dlq += 1
            elif has_vector:
                report.violations.append(
                    f"s3://{obj[0]}/{obj[1]}: object is gone but its vector {vk} is still stored"
                )
    for vk in sorted(vectors - known_vectors):
        report.violations.append(f"vector {vk}: belongs to no known object")
    for group, times in sorted((group_overlaps or {}).items()):
        report.violations.append(
            f"message group {group}: handed out {times}x while a batch of it was in flight "
            "(its messages ran out of order)"
        )
    return report


__all__ = ["AccountingReport", "Ledger", "OutcomeRecord", "check", "parse_outcome"]
