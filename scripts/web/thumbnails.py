"""Thumbnails for the result grid: bytes of an original -> a small JPEG or WebP, cached on disk.

Why: a k=100 page of camera photos is hundreds of megabytes of originals; 320 px
thumbnails are a few kilobytes each. :func:`render` is bounded: the pixel count is
checked from the header before any decoding (:data:`MAX_PIXELS`), and JPEGs are decoded
at a reduced scale (``Image.draft``), so a 4000x3000 photo decodes at 500x375. EXIF
orientation is applied; an animated GIF gives its first frame; images with transparency
become WebP (keeps alpha), the others JPEG.

:class:`ThumbCache` keeps thumbnails as files named by the sha256 of (bucket, key, ETag,
side): an object's new version has a new ETag, so a cached file never goes stale. The
cache is bounded in bytes; when over, the least recently used files (by mtime, touched
on every hit) are removed. One render per key at a time: concurrent tabs asking for one
thumbnail download the original once; and at most one render per CPU at once, which bounds
the memory a page of 100 cache misses takes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

THUMB_SIDE = 320
"""Longest side of a thumbnail, in pixels (a grid cell at 2x on most screens)."""
MAX_PIXELS = 64_000_000
"""Largest original (width x height) decoded for a thumbnail: 8000x8000. Larger: 415."""
MAX_ORIGINAL_BYTES = 64 * 1024 * 1024
"""Largest original downloaded for a thumbnail."""
JPEG_QUALITY = 80
DEFAULT_CACHE_MB = 256


class NotAnImage(Exception):
    """The bytes cannot be made into a thumbnail (not an image, or too large to decode)."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    media_type: str
    """``image/jpeg`` or ``image/webp``."""


def render(data: bytes, *, side: int = THUMB_SIDE) -> Thumbnail:
    """A thumbnail of ``data`` whose longest side is at most ``side`` (aspect kept)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise NotAnImage(f"too many pixels to decode for a thumbnail ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise NotAnImage(f"not a decodable image ({type(exc).__name__})") from exc
    try:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise NotAnImage(
                f"{width}x{height} is above the {MAX_PIXELS}-pixel limit for a thumbnail"
            )
        if image.format == "JPEG":
            image.draft("RGB", (side, side))  # decode at 1/2, 1/4 or 1/8 scale: fast
        image.seek(0)  # an animated GIF or WebP: its first frame
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise NotAnImage(f"the image data is damaged ({exc})") from exc
        small = ImageOps.exif_transpose(image)
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        alpha = small.mode in ("RGBA", "LA", "PA") or (
            small.mode == "P" and "transparency" in small.info
        )
        out = io.BytesIO()
        if alpha:
            small.convert("RGBA").save(out, "WEBP", quality=JPEG_QUALITY)
            return Thumbnail(out.getvalue(), "image/webp")
        small.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        return Thumbnail(out.getvalue(), "image/jpeg")
    finally:
        image.close()


def cache_key(bucket: str, key: str, etag: str, side: int = THUMB_SIDE) -> str:
    """The cache file's name: one per object version and thumbnail size."""
    text = "\0".join((bucket, key, etag, str(side)))
    return hashlib.sha256(text.encode()).hexdigest()


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/imgsearch/thumbs``, else ``~/.cache/imgsearch/thumbs``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imgsearch" / "thumbs"


def _media_type(data: bytes) -> str:
    return "image/webp" if data[:4] == b"RIFF" else "image/jpeg"


class ThumbCache:
    """Thumbnails on disk, at most ``max_bytes`` of them, least recently used evicted first."""

    SUFFIX = ".thumb"

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_CACHE_MB * 1024 * 1024,
        max_parallel: int | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"thumbnail cache bound {max_bytes} bytes: give at least 1")
        self.directory = directory
        self.max_bytes = max_bytes
        self._making = threading.BoundedSemaphore(max_parallel or max(2, os.cpu_count() or 2))
        """Thumbnails made at once: each holds an original (up to MAX_ORIGINAL_BYTES) and its
        decoded pixels, so a grid of 100 misses must not make 100 at a time."""
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._total: int | None = None

    def get(self, name: str) -> Thumbnail | None:
        """The cached thumbnail, its file touched (it is now the most recently used)."""
        path = self.directory / (name + self.SUFFIX)
        try:
            data = path.read_bytes()
            os.utime(path)
        except FileNotFoundError:
            return None  # never cached, or evicted a moment ago
        return Thumbnail(data, _media_type(data))

    def put(self, name: str, thumb: Thumbnail) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / (name + self.SUFFIX)
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(thumb.data)
        os.replace(tmp, path)  # readers see the whole file or none
        with self._lock:
            if self._total is None:
                self._total = self._scan_total()
            else:
                self._total += len(thumb.data)
            if self._total > self.max_bytes:
                self._evict()

    def get_or_make(self, name: str, make: Callable[[], Thumbnail]) -> tuple[Thumbnail, bool]:
        """The cached thumbnail (True) or a new one from ``make`` (False), made once per key
        however many requests ask at the same time."""
        found = self.get(name)
        if found is not None:
            return found, True
        with self._lock:
            key_lock = self._key_locks.setdefault(name, threading.Lock())
        with key_lock:
            found = self.get(name)
            if found is not None:
                return found, True
            with self._making:
                thumb = make()
            self.put(name, thumb)
        with self._lock:
            self._key_locks.pop(name, None)
        return thumb, False

    def _files(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.directory) as entries:
                return [e for e in entries if e.name.endswith(self.SUFFIX) and e.is_file()]
        except FileNotFoundError:
            return []

    def _scan_total(self) -> int:
        return sum(e.stat().st_size for e in self._files())

    def _evict(self) -> None:
        """Oldest first until the cache is back under 90 % of its bound (not once per put)."""
        files = sorted(self._files(), key=lambda e: e.stat().st_mtime_ns)
        total = sum(e.stat().st_size for e in files)
        target = self.max_bytes * 9 // 10
        for entry in files:
            if total <= target:
                break
            size = entry.stat().st_size
            with contextlib.suppress(FileNotFoundError):  # another server process
                os.unlink(entry.path)
            total -= size
        self._total = total


__all__ = [
    "DEFAULT_CACHE_MB",
    "MAX_ORIGINAL_BYTES",
    "MAX_PIXELS",
    "THUMB_SIDE",
    "NotAnImage",
    "ThumbCache",
    "Thumbnail",
    "cache_key",
    "default_cache_dir",
    "render",
]
