"""Image format and size from the bytes themselves, without decoding the image.

The embedder must tell Bedrock the image format, and the file name is not to be
trusted (``cat.jpg`` may be a PNG, ``notes.jpg`` may be a text file). This module reads
only the container headers of JPEG, PNG, GIF and WebP (no Pillow in the Lambda) and
answers "what is it and how big is it", or raises :class:`UnsupportedImage` with a
stable machine ``reason`` that ends up in logs and in the
``PermanentFailuresByReason`` metric.

``sniff(data)`` expects the whole object and also checks that it is complete (a JPEG
ends its last scan with an EOI marker, a PNG has its IEND chunk, a GIF its trailer, a
WebP its full RIFF length). ``sniff(data, complete=False)`` is for a header prefix of
an object too large to read whole (it goes to Bedrock by S3 location): it identifies
the format and dimensions and skips the completeness checks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

ImageFormat = Literal["jpeg", "png", "gif", "webp"]
FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "gif", "webp")

HEADER_READ_BYTES = 1024 * 1024
"""How much of an object is read to sniff it when it is too large to read whole.
JPEG metadata segments (EXIF, ICC, XMP) come before the frame header and rarely
exceed a few hundred KB."""

# Stable machine reasons (logged and used as a metric dimension: never rename).
EMPTY = "empty"
UNKNOWN_FORMAT = "unknown_format"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
REASONS: tuple[str, ...] = (EMPTY, UNKNOWN_FORMAT, TRUNCATED, CORRUPT)


class UnsupportedImage(Exception):
    """The bytes are not an image the pipeline can embed. Permanent: retrying won't help."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int


def sniff(data: bytes, *, complete: bool = True) -> ImageInfo:
    """Identify ``data`` by its magic bytes and read width/height from the header."""
    if not data:
        raise UnsupportedImage(EMPTY, "the object is empty (0 bytes)")
    if data.startswith(b"\xff\xd8\xff"):
        info = _jpeg(data, complete)
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        info = _png(data, complete)
    elif data.startswith((b"GIF87a", b"GIF89a")):
        info = _gif(data, complete)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        info = _webp(data, complete)
    else:
        raise UnsupportedImage(
            UNKNOWN_FORMAT,
            f"not a JPEG, PNG, GIF or WebP (first bytes {data[:8].hex(' ')})",
        )
    if info.width <= 0 or info.height <= 0:
        raise UnsupportedImage(
            CORRUPT, f"{info.format} header declares a {info.width}x{info.height} image"
        )
    return info


# --------------------------------------------------------------------------- JPEG

# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) are
# in the same range but are not frame headers.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg(data: bytes, complete: bool) -> ImageInfo:
    n = len(data)
    pos = 2
    size: tuple[int, int] | None = None
    while True:
        # Each segment starts with 0xFF, possibly padded with more 0xFF fill bytes.
        if pos >= n:
            raise UnsupportedImage(TRUNCATED, f"JPEG ends at byte {n} inside its headers")
        if data[pos] != 0xFF:
            raise UnsupportedImage(CORRUPT, f"JPEG: expected a marker at byte {pos}")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise UnsupportedImage(TRUNCATED, f"JPEG ends at byte {n} inside its headers")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xD9:
            raise UnsupportedImage(CORRUPT, "JPEG: end-of-image marker before any image data")
        if pos + 2 > n:
            raise UnsupportedImage(TRUNCATED, f"JPEG ends at byte {n} inside its headers")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise UnsupportedImage(CORRUPT, f"JPEG: segment length {length} at byte {pos}")
        if marker in _SOF_MARKERS:
            if pos + 7 > n:
                raise UnsupportedImage(TRUNCATED, "JPEG ends inside its frame header")
            height, width = struct.unpack_from(">HH", data, pos + 3)
            size = (width, height)
            if not complete:
                return ImageInfo("jpeg", width, height)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise UnsupportedImage(CORRUPT, "JPEG: scan data before any frame header")
            # Inside entropy-coded data 0xFF is always followed by 0x00 or a restart
            # marker, so an EOI after the first scan means the file is whole (an EOI
            # inside an earlier EXIF thumbnail does not count).
            if data.rfind(b"\xff\xd9", pos) == -1:
                raise UnsupportedImage(TRUNCATED, "JPEG has no end-of-image marker")
            return ImageInfo("jpeg", *size)
        pos += length


# --------------------------------------------------------------------------- PNG


def _png(data: bytes, complete: bool) -> ImageInfo:
    if len(data) < 24:
        raise UnsupportedImage(TRUNCATED, f"PNG ends at byte {len(data)} inside its header")
    if data[12:16] != b"IHDR":
        raise UnsupportedImage(CORRUPT, "PNG: the first chunk is not IHDR")
    width, height = struct.unpack_from(">II", data, 16)
    if complete and data.rfind(b"IEND\xaeB`\x82") == -1:
        raise UnsupportedImage(TRUNCATED, "PNG has no IEND chunk")
    return ImageInfo("png", width, height)


# --------------------------------------------------------------------------- GIF


def _gif(data: bytes, complete: bool) -> ImageInfo:
    if len(data) < 10:
        raise UnsupportedImage(TRUNCATED, f"GIF ends at byte {len(data)} inside its header")
    width, height = struct.unpack_from("<HH", data, 6)
    if complete and not data.rstrip(b"\x00").endswith(b";"):
        raise UnsupportedImage(TRUNCATED, "GIF has no trailer byte")
    return ImageInfo("gif", width, height)


# --------------------------------------------------------------------------- WebP


def _webp(data: bytes, complete: bool) -> ImageInfo:
    n = len(data)
    if n < 30:
        raise UnsupportedImage(TRUNCATED, f"WebP ends at byte {n} inside its header")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if complete and riff_size + 8 > n:
        raise UnsupportedImage(
            TRUNCATED, f"WebP declares {riff_size + 8} bytes but the object has {n}"
        )
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit width and height.
        if data[23:26] != b"\x9d\x01\x2a":
            raise UnsupportedImage(CORRUPT, "WebP (VP8): missing frame start code")
        w, h = struct.unpack_from("<HH", data, 26)
        return ImageInfo("webp", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L":
        # Lossless: signature 0x2F, then 14 bits width-1 and 14 bits height-1.
        if data[20] != 0x2F:
            raise UnsupportedImage(CORRUPT, "WebP (VP8L): missing signature byte")
        (bits,) = struct.unpack_from("<I", data, 21)
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        # Extended: flags, 3 reserved bytes, then 24-bit canvas width-1 and height-1.
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("webp", w, h)
    raise UnsupportedImage(CORRUPT, f"WebP: unknown first chunk {chunk!r}")
