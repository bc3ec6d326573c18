"""Which S3 event notification filters the source bucket gets.

S3 matches notification filters case-sensitively and accepts one prefix and one
suffix per filter, so "``.jpg`` in any case" becomes one filter per prefix and per
case variant (``.jpg``, ``.JPG``). S3 rejects a configuration in which two filters
for the same event type overlap (one prefix starts the other AND one suffix ends the
other); :func:`notification_filters` refuses such a config at synth time instead of
letting ``PutBucketNotificationConfiguration`` fail mid-deploy. Mixed-case names
(``photo.Jpg``) match no filter: the backfill, which selects case-insensitively,
picks those up. This module is pure Python so it is tested without a synth.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from imgsearch.config import ConfigError, PipelineConfig


@dataclass(frozen=True)
class KeyFilter:
    prefix: str
    """Empty for the whole bucket."""
    suffix: str


def suffix_variants(suffixes: tuple[str, ...]) -> tuple[str, ...]:
    """Each suffix in lower and upper case, without repeats, in config order."""
    seen: dict[str, None] = {}
    for suffix in suffixes:
        seen.setdefault(suffix.lower())
        seen.setdefault(suffix.upper())
    return tuple(seen)


def notification_filters(cfg: PipelineConfig) -> tuple[KeyFilter, ...]:
    """One filter per (prefix, suffix case variant); raises ConfigError on overlaps."""
    prefixes = tuple(dict.fromkeys(cfg.prefixes))
    for a, b in combinations(prefixes, 2):
        if a.startswith(b) or b.startswith(a):
            shorter, longer = sorted((a, b), key=len)
            raise ConfigError(
                f"config key 'prefixes': {longer!r} lies inside {shorter!r} and S3 rejects "
                f"overlapping notification filters; drop {longer!r} ({shorter!r} covers it)"
            )
    suffixes = suffix_variants(cfg.suffixes)
    for a, b in combinations(suffixes, 2):
        if a.endswith(b) or b.endswith(a):
            raise ConfigError(
                f"config key 'suffixes': {a!r} and {b!r} overlap (one ends the other) and S3 "
                "rejects overlapping notification filters; keep only one of them"
            )
    # Two filters overlap only if both their prefixes and their suffixes do, so with
    # neither overlapping among themselves no pair of filters can.
    return tuple(KeyFilter(p, s) for p in prefixes for s in suffixes)
