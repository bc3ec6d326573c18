"""The local cloud's stand-in embedding model. It is NOT Amazon Nova (or Marengo).

The local cloud has no model weights and no network, so ``InvokeModel`` answers with
vectors from this small, deterministic function instead. It is built so that both search
modes show something real on a laptop:

* **Images** become a feature vector of colour, coarse layout and texture (a histogram of
  eleven named colours, a 4x4x4 RGB histogram, a 4x4 grid of mean colours, an 8x8
  grayscale layout, edge energy per quadrant and a gray-level histogram). Resized,
  slightly cropped, recompressed or re-encoded copies of a photo keep nearly the same
  features, so they land next to the original.
* **Text** understands colour words only ("red", "blue", "grey", ...): a query becomes the
  named-colour part of the feature space, so "red" lands near images with a lot of red.
  Any other text becomes a fixed pseudo-random direction (deterministic, meaningless).

The features go through a fixed, seeded random projection with orthonormal columns (an
isometry), then are L2-normalised, so cosine similarity between two outputs equals the
cosine similarity of their features, at every output dimension. Nothing here learns
semantics: "wind turbine" finds nothing in particular. Use real Bedrock for that.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

COLOUR_NAMES: tuple[str, ...] = (
    "black",
    "white",
    "gray",
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
)
"""The eleven basic colour terms the stand-in model recognises, in feature order."""

COLOUR_SYNONYMS: dict[str, str] = {
    "grey": "gray",
    "silver": "gray",
    "violet": "purple",
    "magenta": "pink",
    "cyan": "blue",
    "navy": "blue",
    "teal": "green",
    "gold": "yellow",
    "golden": "yellow",
    "crimson": "red",
    "scarlet": "red",
    "dark": "black",
    "bright": "white",
}

PIL_FORMATS: dict[str, str] = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
"""Pillow's format names mapped to the format names Bedrock requests use."""

_SIDE = 64  # images are reduced to this square before features are taken
_NAMED, _RGB_BINS, _GRID, _LAYOUT, _GRAY_BINS = 11, 4, 4, 8, 16
FEATURES = _NAMED + _RGB_BINS**3 + 3 * _GRID * _GRID + _LAYOUT * _LAYOUT + 8 + _GRAY_BINS
"""Length of the feature vector (211): small enough for the 256-dimension output."""

# Relative weights of the feature blocks (after each block is scaled to unit-ish size).
_W_NAMED, _W_RGB, _W_GRID, _W_LAYOUT, _W_TEXTURE = 1.0, 0.8, 0.8, 0.6, 1.0
_SEED = 20_251_125


class ImageDecodeError(ValueError):
    """The bytes are not an image the stand-in model (and Bedrock) can read."""


@dataclass(frozen=True)
class DecodedImage:
    format: str
    """``jpeg`` / ``png`` / ``gif`` / ``webp`` (or Pillow's name for anything else)."""
    width: int
    height: int
    pixels: NDArray[np.uint8]
    """``_SIDE`` x ``_SIDE`` x 3 RGB thumbnail."""


def decode_image(data: bytes) -> DecodedImage:
    """Decode and fully load ``data``; raise :class:`ImageDecodeError` if it is no image.

    Truncated or corrupt files fail here (Pillow refuses to load them), as they would at
    Bedrock. JPEGs are decoded at reduced size (``draft``) so large photos stay cheap.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = PIL_FORMATS.get(img.format or "", (img.format or "unknown").lower())
            width, height = img.size
            if img.format == "JPEG":
                img.draft("RGB", (_SIDE * 2, _SIDE * 2))
            img.load()
            frame = ImageOps.exif_transpose(img)
            if frame.mode in ("RGBA", "LA", "P", "PA") or "transparency" in frame.info:
                rgba = frame.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                frame = Image.alpha_composite(background, rgba)
            rgb = frame.convert("RGB").resize((_SIDE, _SIDE), Image.Resampling.BOX)
            pixels = np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc
    return DecodedImage(format=fmt, width=width, height=height, pixels=pixels)


# --------------------------------------------------------------------------- features


def _named_colour_ids(rgb: NDArray[np.float32]) -> NDArray[np.intp]:
    """Index into :data:`COLOUR_NAMES` for every pixel (simple HSV rules)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    value = mx
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    diff = np.maximum(mx - mn, 1e-6)
    hue = np.where(
        mx == r, ((g - b) / diff) % 6, np.where(mx == g, (b - r) / diff + 2, (r - g) / diff + 4)
    )
    hue = hue * 60.0
    chromatic = (sat >= 0.25) & (value >= 0.2)
    by_hue = np.select(
        [hue < 15, hue < 40, hue < 70, hue < 165, hue < 255, hue < 290, hue < 335],
        [3, 4, 5, 6, 7, 8, 9],
        3,
    )
    by_hue = np.where(((by_hue == 3) | (by_hue == 4)) & (value < 0.55), 10, by_hue)
    achromatic = np.where(value < 0.2, 0, np.where(value > 0.8, 1, 2))
    return np.where(chromatic, by_hue, achromatic).astype(np.intp)


def image_features(pixels: NDArray[np.uint8]) -> NDArray[np.float64]:
    """The stand-in model's feature vector of an RGB thumbnail (length :data:`FEATURES`)."""
    rgb = pixels.astype(np.float32) / 255.0
    n = rgb.shape[0] * rgb.shape[1]
    named = np.bincount(_named_colour_ids(rgb).ravel(), minlength=_NAMED) / n
    named_part = (named - 1.0 / _NAMED) * np.sqrt(_NAMED)

    q = np.minimum((rgb * _RGB_BINS).astype(np.intp), _RGB_BINS - 1)
    joint = (q[..., 0] * _RGB_BINS + q[..., 1]) * _RGB_BINS + q[..., 2]
    hist = np.bincount(joint.ravel(), minlength=_RGB_BINS**3) / n
    rgb_part = np.sqrt(hist) - np.sqrt(1.0 / _RGB_BINS**3)

    cell = rgb.shape[0] // _GRID
    grid = rgb.reshape(_GRID, cell, _GRID, cell, 3).mean(axis=(1, 3))
    grid_part = (grid.ravel() - 0.5) * 2.0 / np.sqrt(_GRID)

    gray = rgb.mean(axis=-1)
    cell = gray.shape[0] // _LAYOUT
    layout = gray.reshape(_LAYOUT, cell, _LAYOUT, cell).mean(axis=(1, 3)).ravel()
    layout_part = (layout - layout.mean()) * 4.0 / _LAYOUT

    # Texture: edge energy per quadrant (horizontal, vertical) and a gray-level histogram,
    # which tells apart photos whose colours and layout are alike (brick vs. moon).
    gx = np.abs(np.diff(gray, axis=1))[:-1, :]
    gy = np.abs(np.diff(gray, axis=0))[:, :-1]
    half = gx.shape[0] // 2
    edges = np.concatenate(
        [
            e[: 2 * half, : 2 * half].reshape(2, half, 2, half).mean(axis=(1, 3)).ravel()
            for e in (gx, gy)
        ]
    )
    gray_hist = (
        np.bincount(
            np.minimum((gray * _GRAY_BINS).astype(np.intp), _GRAY_BINS - 1).ravel(),
            minlength=_GRAY_BINS,
        )
        / n
    )
    texture_part = np.concatenate([edges * 8.0, np.sqrt(gray_hist) - np.sqrt(1.0 / _GRAY_BINS)])

    return np.concatenate(
        [
            _W_NAMED * named_part,
            _W_RGB * rgb_part,
            _W_GRID * grid_part,
            _W_LAYOUT * layout_part,
            _W_TEXTURE * texture_part,
        ]
    ).astype(np.float64)


def colour_words(text: str) -> list[str]:
    """The colour names mentioned in ``text`` (synonyms mapped), in order of mention."""
    found: list[str] = []
    for word in re.findall(r"[a-z]+", text.lower()):
        name = COLOUR_SYNONYMS.get(word, word)
        if name in COLOUR_NAMES:
            found.append(name)
    return found


def text_features(text: str) -> NDArray[np.float64] | None:
    """Features of a text query: the named-colour block only, or None without colour words."""
    names = colour_words(text)
    if not names:
        return None
    named = np.zeros(_NAMED)
    for name in names:
        named[COLOUR_NAMES.index(name)] += 1.0 / len(names)
    features = np.zeros(FEATURES)
    features[:_NAMED] = _W_NAMED * (named - 1.0 / _NAMED) * np.sqrt(_NAMED)
    return features


# --------------------------------------------------------------------------- projection


@lru_cache(maxsize=16)
def _projection(family: str, dimension: int) -> NDArray[np.float64]:
    """A fixed ``dimension`` x FEATURES matrix with orthonormal columns (an isometry)."""
    if dimension < FEATURES:
        raise ValueError(f"dimension {dimension} is below the stand-in's {FEATURES} features")
    seed = _SEED + dimension + (0 if family == "nova" else 7919)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dimension, FEATURES)))
    # Fix the signs so the matrix does not depend on the LAPACK build.
    q = q * np.sign(np.diag(r))
    q.setflags(write=False)
    return q


def _unit(vector: NDArray[np.float64]) -> NDArray[np.float64]:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0 or not np.isfinite(norm):
        raise ValueError("cannot normalise a zero vector")
    return vector / norm


def _hash_direction(text: str, dimension: int) -> NDArray[np.float64]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return _unit(rng.standard_normal(dimension))


def project(features: NDArray[np.float64], dimension: int, family: str = "nova") -> list[float]:
    """Project features to ``dimension`` and L2-normalise; a JSON-friendly list of floats."""
    vector = _projection(family, dimension) @ features
    try:
        unit = _unit(vector)
    except ValueError:
        # A perfectly "average" image has all-zero features; give it a fixed direction.
        unit = _hash_direction("\x00average-image", dimension)
    return [round(float(x), 8) for x in unit]


def embed_image(data: bytes, dimension: int, family: str = "nova") -> list[float]:
    """Embedding of an encoded image (raises :class:`ImageDecodeError`)."""
    return project(image_features(decode_image(data).pixels), dimension, family)


def embed_text(text: str, dimension: int, family: str = "nova") -> list[float]:
    """Embedding of a text query: colour words land near images of that colour."""
    features = text_features(text)
    if features is None:
        return [round(float(x), 8) for x in _hash_direction(text.strip().lower(), dimension)]
    return project(features, dimension, family)


__all__ = [
    "COLOUR_NAMES",
    "FEATURES",
    "DecodedImage",
    "ImageDecodeError",
    "colour_words",
    "decode_image",
    "embed_image",
    "embed_text",
    "image_features",
    "project",
    "text_features",
]
