"""Sample photos for the demo, the end-to-end tests and the benchmark.

The photos come from scikit-image's bundled data (shipped inside its wheel, no download).
Each original also gets transformed copies (resized, cropped, recompressed, another
format) so that image search has true matches to find.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "retina",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
    "logo",
    "camera",
    "coins",
    "moon",
    "brick",
    "clock",
    "page",
)
"""scikit-image sample images that ship inside the wheel (checked with 0.26)."""

VARIANTS: tuple[str, ...] = ("resized", "cropped", "recompressed", "png")
"""Transformed copies made of each original (see :func:`variant`)."""


@dataclass(frozen=True)
class SampleImage:
    key: str
    """Object key to upload under, e.g. ``photos/coffee.jpg`` or ``photos/coffee-cropped.jpg``."""
    data: bytes
    original: str
    """Name of the photo it shows (the original and its copies share it)."""
    variant: str
    """``original`` or one of :data:`VARIANTS`."""

    @property
    def content_type(self) -> str:
        return "image/png" if self.key.endswith(".png") else "image/jpeg"


def photo(name: str, max_side: int = 512) -> Image.Image:
    """One bundled scikit-image photo as an RGB Pillow image, at most ``max_side`` wide."""
    import skimage.data  # heavy import, only when photos are needed

    array: NDArray[np.generic] = np.asarray(getattr(skimage.data, name)())
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    img = Image.fromarray(np.asarray(array, dtype=np.uint8))
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    img = img.convert("RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def variant(img: Image.Image, kind: str) -> tuple[bytes, str]:
    """A transformed copy of ``img`` and its file extension."""
    if kind == "resized":
        w, h = img.size
        return encode(img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)), "jpg"
    if kind == "cropped":
        w, h = img.size
        dx, dy = w // 12, h // 12
        return encode(img.crop((dx, dy, w - dx, h - dy))), "jpg"
    if kind == "recompressed":
        return encode(img, quality=35), "jpg"
    if kind == "png":
        return encode(img, "PNG"), "png"
    raise ValueError(f"unknown variant {kind!r}; known: {', '.join(VARIANTS)}")


def sample_set(
    photos: tuple[str, ...] = PHOTOS,
    *,
    variants: tuple[str, ...] = VARIANTS,
    prefix: str = "photos/",
    max_side: int = 512,
) -> list[SampleImage]:
    """Originals plus their transformed copies, ready to upload."""
    out: list[SampleImage] = []
    for name in photos:
        img = photo(name, max_side)
        out.append(SampleImage(f"{prefix}{name}.jpg", encode(img), name, "original"))
        for kind in variants:
            data, ext = variant(img, kind)
            out.append(SampleImage(f"{prefix}{name}-{kind}.{ext}", data, name, kind))
    return out


def synthetic_images(count: int, *, side: int = 96, prefix: str = "bulk/") -> Iterator[SampleImage]:
    """``count`` small distinct JPEGs (noise over a random colour), fast to make in bulk."""
    rng = np.random.default_rng(7)
    for i in range(count):
        base = rng.integers(0, 256, size=3)
        noise = rng.integers(-40, 40, size=(side, side, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        data = encode(Image.fromarray(pixels), quality=80)
        yield SampleImage(f"{prefix}img-{i:06d}.jpg", data, f"synthetic-{i}", "original")


def corrupt_jpeg() -> bytes:
    """Bytes that start like a JPEG but are cut short: Bedrock (and the stand-in) reject them."""
    data = encode(Image.new("RGB", (64, 64), (200, 30, 30)))
    return data[: len(data) // 3]


__all__ = [
    "PHOTOS",
    "VARIANTS",
    "SampleImage",
    "corrupt_jpeg",
    "encode",
    "photo",
    "sample_set",
    "synthetic_images",
    "variant",
]
