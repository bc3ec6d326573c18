"""Which object keys the pipeline indexes: configured prefixes and image suffixes.

The router, the backfill script and ``verify`` all ask this one question the same way.
Suffixes match case-insensitively (``photo.JPG`` is an image too); prefixes are exact,
as S3 keys are case-sensitive.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgsearch.config import PipelineConfig


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
