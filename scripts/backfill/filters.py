"""Which inventory rows the backfill sends, and why the others are skipped.

The key rules are the pipeline's own (:class:`imgsearch.selection.KeySelection`: the
stack's prefixes and image suffixes), so the backfill enqueues exactly what live
events would; size and date limits are the operator's. Every skipped row gets a
reason, counted in the progress and the summary, so nothing disappears silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imgsearch.selection import KeySelection
from scripts.backfill.errors import FilterError
from scripts.backfill.rows import InventoryRow

ARCHIVED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
"""Storage classes whose objects must be restored before ``GetObject`` can read them
(S3 User Guide, "Working with archived objects"); ``GLACIER_IR`` is readable at once."""
ARCHIVE_TIERS = frozenset({"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"})
"""Intelligent-Tiering's opt-in archive tiers, which need a restore too (S3 API reference,
``Tiering.AccessTier``); its Frequent, Infrequent and Archive Instant tiers are readable."""

SKIP_REASONS = (
    "delete_marker",
    "not_latest",
    "prefix",
    "suffix",
    "archived",
    "archive_tier",
    "too_small",
    "too_large",
    "modified_before",
)


@dataclass(frozen=True)
class RowFilter:
    selection: KeySelection
    min_size: int | None = None
    max_size: int | None = None
    modified_after: datetime | None = None

    def reason(self, row: InventoryRow) -> str | None:
        """Why ``row`` is not sent (one of :data:`SKIP_REASONS`), or None to send it."""
        if row.is_delete_marker:
            return "delete_marker"
        if not row.is_latest:
            return "not_latest"
        why = self.selection.reason_skipped(row.key)
        if why is not None:
            return why
        if row.storage_class in ARCHIVED_CLASSES:
            return "archived"  # a GetObject each would only learn that
        if row.storage_class == "INTELLIGENT_TIERING" and row.access_tier in ARCHIVE_TIERS:
            return "archive_tier"
        if self.min_size is not None and (row.size or 0) < self.min_size:
            return "too_small"
        if self.max_size is not None and row.size is not None and row.size > self.max_size:
            return "too_large"
        if self.modified_after is not None:
            modified = as_datetime(row.last_modified)
            if modified is None or modified <= self.modified_after:
                return "modified_before"
        return None

    def identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed (other filters leave gaps)."""
        return {
            "prefixes": list(self.selection.prefixes),
            "suffixes": list(self.selection.suffixes),
            "min_size": self.min_size,
            "max_size": self.max_size,
            "modified_after": self.modified_after.isoformat() if self.modified_after else None,
        }


def as_datetime(value: str | datetime | None) -> datetime | None:
    """Inventory timestamps (ISO text in CSV, datetime elsewhere) as aware datetimes."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(text: str) -> datetime:
    """``--modified-after`` value: a date or an ISO timestamp (UTC unless it says)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise FilterError(
            f"--modified-after {text!r}: expected a date like 2024-05-01 or 2024-05-01T12:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2}
_UNITS.update({"mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3})


def parse_size(text: str) -> int:
    """``--min-size``/``--max-size``: bytes, or with a binary unit (``10K``, ``5MiB``)."""
    raw = text.strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :].strip()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if value < 0 or unit not in _UNITS:
        raise FilterError(f"size {text!r}: expected bytes or a number with K, M or G (e.g. 20MiB)")
    return int(value * _UNITS[unit])
