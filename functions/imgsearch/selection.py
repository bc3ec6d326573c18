"""Which object keys the pipeline indexes: configured prefixes and image suffixes.

The router, the backfill script and ``verify`` all ask this one question the same way.
Suffixes match case-insensitively (``photo.JPG`` is an image too); prefixes are exact,
as S3 keys are case-sensitive. :func:`event_encoded` is the form in which S3 writes a
key into its event records and matches notification filters against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote_plus

from imgsearch.config import PipelineConfig


def event_encoded(text: str) -> str:
    """``text`` (a key, prefix or suffix) URL-encoded as S3 writes keys in its events.

    S3 compares a notification filter's prefix and suffix with the key in this form, so
    a filter value must be written encoded too (S3 User Guide, "Configuring event
    notifications using object key name filtering": a space becomes ``+``, other special
    characters are percent-encoded); ``/`` stays as it is ("Event message structure").
    """
    return quote_plus(text, safe="/")


@dataclass(frozen=True)
class KeySelection:
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> KeySelection:
        return cls(prefixes=cfg.prefixes, suffixes=cfg.suffixes)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suffixes", tuple(s.lower() for s in self.suffixes))

    def matches(self, key: str) -> bool:
        """True if ``key`` is under a configured prefix and ends in an image suffix."""
        return key.startswith(self.prefixes) and key.lower().endswith(self.suffixes)

    def reason_skipped(self, key: str) -> str | None:
        """Why ``key`` is not selected (``"prefix"`` or ``"suffix"``), or None if it is."""
        if not key.startswith(self.prefixes):
            return "prefix"
        if not key.lower().endswith(self.suffixes):
            return "suffix"
        return None
