"""Metadata upgrade: a vector stored before a metadata key existed gets it, with no model call.

``converge.is_unchanged`` says a stored vector was made from the object's current
bytes by this model. If its metadata still lacks a key that ``build_metadata`` writes
today (``folders`` and the epochs came after the first release), the object's next
message (a backfill re-run enqueues every object) rewrites it: ``GetVectors`` with its
data, the metadata rebuilt from the stored values plus the object's LastModified, and
the batch's one ``PutVectors``. The outcome is ``metadata_upgraded``: no read of the
image bytes, no Bedrock call.

A key the long-key rule drops does not count as missing (the rebuild drops it again),
so an upgraded vector is not upgraded again by the next run. A stored vector without
the values a rebuild needs (format, size...) was not written by this embedder; it is
left as it is (``unchanged``), as before this module existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from imgsearch.images import FORMATS, ImageInfo
from imgsearch.vectors import (
    INGESTED_EPOCH,
    MODIFIED_EPOCH,
    VectorIndex,
    VectorRecord,
    VectorRejected,
    build_metadata,
    epoch_seconds,
)

PLACEHOLDER_EPOCH = 2_000_000_000
"""Stands in for an unknown LastModified when sizing the rebuild: ten digits, like every
time from 2001 to 2286, so the long-key rule decides as it will with the real one."""


def rebuilt_metadata(
    stored: Mapping[str, Any], *, bucket: str, key: str, model_id: str, modified_epoch: int | None
) -> dict[str, Any] | None:
    """``stored`` rebuilt with today's keys, or None if it lacks a value the rebuild needs."""
    try:
        fmt = next(f for f in FORMATS if f == stored["format"])
        image = ImageInfo(fmt, int(stored["width"]), int(stored["height"]))
        size = int(stored["size"])
        etag = str(stored["etag"])
        ingested_at = str(stored["ingested_at"])
        ingested = stored.get(INGESTED_EPOCH)
        ingested_epoch = ingested if isinstance(ingested, int) else epoch_seconds(ingested_at)
        return build_metadata(
            bucket=bucket,
            key=key,
            image=image,
            size=size,
            etag=etag,
            model_id=str(stored.get("model_id") or model_id),
            ingested_at=ingested_at,
            ingested_epoch=ingested_epoch,
            modified_epoch=modified_epoch,
        )
    except (KeyError, StopIteration, TypeError, ValueError, VectorRejected):
        return None


def missing_keys(
    stored: Mapping[str, Any] | None, *, bucket: str, key: str, model_id: str
) -> list[str]:
    """The keys ``build_metadata`` would write for this vector today that ``stored`` lacks."""
    if not stored:
        return []
    modified = stored.get(MODIFIED_EPOCH)
    rebuilt = rebuilt_metadata(
        stored,
        bucket=bucket,
        key=key,
        model_id=model_id,
        modified_epoch=modified if isinstance(modified, int) else PLACEHOLDER_EPOCH,
    )
    return [k for k in rebuilt or () if k not in stored]


def upgraded_record(
    index: VectorIndex,
    vkey: str,
    stored: Mapping[str, Any],
    *,
    bucket: str,
    key: str,
    model_id: str,
    modified_epoch: int | None,
) -> VectorRecord | Literal["current", "gone"]:
    """The stored vector with today's metadata to write; ``"current"`` if the real
    LastModified leaves nothing to add after all; ``"gone"`` if the vector was deleted
    meanwhile (the caller embeds the object afresh)."""
    rebuilt = rebuilt_metadata(
        stored, bucket=bucket, key=key, model_id=model_id, modified_epoch=modified_epoch
    )
    if rebuilt is None or all(k in stored for k in rebuilt):
        return "current"
    entry = index.get([vkey], return_data=True).get(vkey)
    if entry is None or not entry.get("data"):
        return "gone"
    return VectorRecord(vkey, list(entry["data"]), rebuilt)


__all__ = ["PLACEHOLDER_EPOCH", "missing_keys", "rebuilt_metadata", "upgraded_record"]
