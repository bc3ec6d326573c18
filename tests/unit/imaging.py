"""Real image bytes for tests, made with Pillow (a dev dependency, never in the Lambda)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def make_image(fmt: str, size: tuple[int, int] = (64, 48), **options: Any) -> bytes:
    """A small RGB image in Pillow format ``fmt`` (JPEG, PNG, GIF, WEBP, BMP, TIFF)."""
    image = Image.new("RGB", size, (200, 30, 60))
    # A few distinct pixels so different calls can yield different bytes.
    for x in range(0, size[0], 7):
        image.putpixel((x, x % size[1]), (x % 256, 120, 255 - x % 256))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (64, 48), color: int = 0, **options: Any) -> bytes:
    """A JPEG; ``color`` varies the content (and so the ETag) between versions."""
    image = Image.new("RGB", size, (color % 256, 100, 150))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()
