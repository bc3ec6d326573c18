"""Small valid PNG images, made with zlib and struct: the smoke test's uploads.

Pillow is not a runtime dependency of the scripts (``requirements.txt``), and the
scripts may not import the local cloud's sample generator, so the smoke test encodes
its own images. The format is the PNG specification's simplest form: 8-bit RGB
(colour type 2), no interlace, filter type 0 on every row, one IDAT chunk.
"""

from __future__ import annotations

import struct
import zlib

RGB = tuple[int, int, int]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """length, type, data, CRC-32 of type + data (PNG spec, 5.3 "Chunk layout")."""
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, pixels: list[list[RGB]]) -> bytes:
    """A PNG of ``height`` rows of ``width`` RGB pixels."""
    if width < 1 or height < 1 or len(pixels) != height:
        raise ValueError(f"a {width}x{height} PNG needs {height} rows of {width} pixels")
    raw = bytearray()
    for row in pixels:
        if len(row) != width:
            raise ValueError(f"a {width}x{height} PNG needs {height} rows of {width} pixels")
        raw.append(0)  # filter type 0 (None)
        for r, g, b in row:
            raw += bytes((r, g, b))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _chunk(b"IEND", b"")
    )


def colour_image(colour: RGB, *, size: int = 64, variant: int = 0) -> bytes:
    """A ``size`` x ``size`` image mostly of ``colour``, with a faint diagonal shading.

    The shading gives the image some structure (a flat square is a degenerate input for
    any model); ``variant`` shifts it, so two variants of a colour differ in bytes (and
    ETag) but stay near each other in embedding space.
    """

    def shade(value: int, x: int, y: int) -> int:
        return max(0, min(255, value - 24 + ((x + y + 7 * variant) * 48) // (2 * size)))

    r, g, b = colour
    pixels = [
        [(shade(r, x, y), shade(g, x, y), shade(b, x, y)) for x in range(size)] for y in range(size)
    ]
    return encode_png(size, size, pixels)


__all__ = ["RGB", "colour_image", "encode_png"]
