"""Thumbnails: bytes -> a small JPEG/WebP (bounded decoding), and the LRU disk cache."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from scripts.web.thumbnails import (
    MAX_PIXELS,
    NotAnImage,
    ThumbCache,
    Thumbnail,
    cache_key,
    default_cache_dir,
    render,
)


def encode(image: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def decoded(thumb: Thumbnail) -> Image.Image:
    return Image.open(io.BytesIO(thumb.data))


def rgb(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    pixel = image.convert("RGB").getpixel((x, y))
    assert isinstance(pixel, tuple)
    return pixel[0], pixel[1], pixel[2]


def test_a_photo_becomes_320px_on_its_longest_side_aspect_kept() -> None:
    thumb = render(encode(Image.new("RGB", (4000, 3000), (200, 30, 30))))
    image = decoded(thumb)
    assert thumb.media_type == "image/jpeg" and image.format == "JPEG"
    assert image.size == (320, 240)
    assert rgb(image, 160, 120)[0] > 150  # still red


def test_a_small_image_is_not_enlarged() -> None:
    assert decoded(render(encode(Image.new("RGB", (96, 64))))).size == (96, 64)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(Image.new("RGB", (400, 200), (0, 0, 255)), exif=exif.tobytes())
    assert decoded(render(data)).size == (160, 320)  # portrait, as a viewer shows it


def test_transparency_becomes_webp_and_animated_gif_its_first_frame() -> None:
    clear = render(encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), "PNG"))
    assert clear.media_type == "image/webp" and decoded(clear).mode == "RGBA"
    frames = [Image.new("RGB", (50, 50), c) for c in ((255, 0, 0), (0, 255, 0))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = decoded(render(gif)).convert("RGB")
    red, green, _ = rgb(first, 25, 25)
    assert red > 200 and green < 60


def test_not_an_image_and_too_many_pixels_are_refused() -> None:
    with pytest.raises(NotAnImage, match="not a decodable image"):
        render(b"GIF89a-not-really")
    side = int(MAX_PIXELS**0.5) + 10
    huge = encode(Image.new("L", (side, side)), "PNG")  # a compressed bomb: small file
    with pytest.raises(NotAnImage, match="pixel limit"):
        render(huge)
    truncated = encode(Image.new("RGB", (800, 600), (1, 2, 3)))[:400]
    with pytest.raises(NotAnImage):
        render(truncated)


def test_cache_key_names_one_object_version_and_size() -> None:
    one = cache_key("b", "k.jpg", "etag1")
    assert one == cache_key("b", "k.jpg", "etag1") and len(one) == 64
    others = {
        cache_key("b", "k.jpg", "etag2"),
        cache_key("b", "k.jpg", "etag1", 160),
        cache_key("c", "k.jpg", "etag1"),
        cache_key("b", "k2.jpg", "etag1"),
    }
    assert len(others | {one}) == 5


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "imgsearch" / "thumbs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "imgsearch" / "thumbs"


def test_cache_makes_once_then_hits(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path / "thumbs")
    made: list[int] = []

    def make() -> Thumbnail:
        made.append(1)
        return Thumbnail(b"\xff\xd8jpeg", "image/jpeg")

    first, hit1 = cache.get_or_make("a" * 64, make)
    second, hit2 = cache.get_or_make("a" * 64, make)
    assert (hit1, hit2) == (False, True) and len(made) == 1
    assert second == first
    # A restarted server finds it on disk.
    assert ThumbCache(tmp_path / "thumbs").get("a" * 64) == first


def test_concurrent_requests_for_one_thumbnail_make_it_once(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path)
    made: list[int] = []
    gate = threading.Event()

    def make() -> Thumbnail:
        made.append(1)
        gate.wait(5)
        return Thumbnail(b"RIFFxxxxWEBP", "image/webp")

    results: list[Thumbnail] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_make("k", make)[0]))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    while not made:
        time.sleep(0.01)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(made) == 1 and len(results) == 5
    assert {r.media_type for r in results} == {"image/webp"}


def test_cache_evicts_least_recently_used_first(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path, max_bytes=3000)
    blob = Thumbnail(b"\xff\xd8" + b"x" * 998, "image/jpeg")  # 1000 bytes each
    for i, name in enumerate(("old", "used", "mid")):
        cache.put(name, blob)
        os.utime(tmp_path / f"{name}.thumb", (1000 + i, 1000 + i))
    assert cache.get("used") is not None  # touched: now the most recent
    cache.put("new", blob)  # 4000 > 3000: evict down to 90 % (2700): two go
    left = sorted(p.stem for p in tmp_path.glob("*.thumb"))
    assert left == ["new", "used"]
    assert cache.get("old") is None


def test_cache_bound_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ThumbCache(tmp_path, max_bytes=0)


def test_at_most_max_parallel_thumbnails_are_made_at_once(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path, max_parallel=2)
    lock, running, peak = threading.Lock(), [0], [0]
    gate = threading.Event()

    def make() -> Thumbnail:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(5)
        with lock:
            running[0] -= 1
        return Thumbnail(b"\xff\xd8", "image/jpeg")

    threads = [threading.Thread(target=cache.get_or_make, args=(f"k{i}", make)) for i in range(6)]
    for t in threads:
        t.start()
    while running[0] < 2:
        time.sleep(0.01)
    time.sleep(0.1)  # give a third render the chance to start, were it allowed to
    gate.set()
    for t in threads:
        t.join(10)
    assert peak[0] == 2
    assert len(list(tmp_path.glob("*.thumb"))) == 6
