"""Which S3 event notification filters the source bucket gets.

S3 matches notification filters case-sensitively and accepts one prefix and one
suffix per filter, so "``.jpg`` in any case" becomes one filter per prefix and per
case variant (``.jpg``, ``.JPG``). S3 compares a filter with the key as its events
carry it, URL-encoded (``My Photos/`` is ``My+Photos/``, ``año`` is ``a%C3%B1o``), so
every filter value is written in that form (:func:`imgsearch.selection.event_encoded`):
a raw ``My Photos/`` would match no key and no live event would arrive. S3 rejects a
configuration in which two filters for the same event type overlap (one prefix starts
the other AND one suffix ends the other, :func:`filters_overlap`);
:func:`notification_filters` refuses such a config at synth time instead of letting
``PutBucketNotificationConfiguration`` fail mid-deploy. Mixed-case names
(``photo.Jpg``) match no filter: the backfill, which selects case-insensitively,
picks those up. This module is pure Python so it is tested without a synth.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from imgsearch.config import ConfigError, PipelineConfig
from imgsearch.selection import event_encoded


@dataclass(frozen=True)
class KeyFilter:
    """One filter as S3 stores and matches it: both values URL-encoded."""

    prefix: str
    """Empty for the whole bucket."""
    suffix: str


def filters_overlap(a: KeyFilter, b: KeyFilter) -> bool:
    """True if some key matches both filters, which S3 refuses for one event type.

    S3 User Guide, "Configuring event notifications using object key name filtering":
    two prefixes overlap if a string can begin with both, two suffixes if a string can
    end with both; a missing prefix or suffix overlaps every other one. S3 compares the
    values as written, that is URL-encoded.
    """
    prefixes = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return prefixes and suffixes


def suffix_variants(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    """Each suffix in lower and upper case, without repeats, in config order."""
    seen: dict[str, None] = {}
    for suffix in suffixes:
        seen.setdefault(suffix.lower())
        seen.setdefault(suffix.upper())
    return tuple(seen)


def notification_filters(cfg: PipelineConfig) -> tuple[KeyFilter, ...]:
    """One encoded filter per (prefix, suffix case variant); ConfigError on overlaps.

    The overlaps are checked on the encoded values, as S3 checks them.
    """
    prefixes = {p: event_encoded(p) for p in cfg.prefixes}
    for a, b in combinations(prefixes, 2):
        if prefixes[a].startswith(prefixes[b]) or prefixes[b].startswith(prefixes[a]):
            shorter, longer = sorted((a, b), key=len)
            raise ConfigError(
                f"config key 'prefixes': {longer!r} lies inside {shorter!r} and S3 rejects "
                f"overlapping notification filters; drop {longer!r} ({shorter!r} covers it)"
            )
    suffixes = {s: event_encoded(s) for s in suffix_variants(cfg.suffixes)}
    for a, b in combinations(suffixes, 2):
        if suffixes[a].endswith(suffixes[b]) or suffixes[b].endswith(suffixes[a]):
            raise ConfigError(
                f"config key 'suffixes': {a!r} and {b!r} overlap (one ends the other) and S3 "
                "rejects overlapping notification filters; keep only one of them"
            )
    # Two filters overlap only if both their prefixes and their suffixes do, so with
    # neither overlapping among themselves no pair of filters can.
    return tuple(KeyFilter(p, s) for p in prefixes.values() for s in suffixes.values())


__all__ = ["KeyFilter", "filters_overlap", "notification_filters", "suffix_variants"]
