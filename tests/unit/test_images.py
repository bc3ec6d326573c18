"""Magic-byte sniffing on real JPEG/PNG/GIF/WebP bytes and on broken ones."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from imgsearch.images import HEADER_READ_BYTES, ImageInfo, UnsupportedImage, sniff
from tests.unit.imaging import make_image

CASES = [
    ("JPEG", {}, "jpeg"),
    ("JPEG", {"progressive": True}, "jpeg"),
    ("PNG", {}, "png"),
    ("GIF", {}, "gif"),
    ("WEBP", {}, "webp"),  # lossy: VP8
    ("WEBP", {"lossless": True}, "webp"),  # VP8L
]


@pytest.mark.parametrize(("pil_format", "options", "expected"), CASES)
@pytest.mark.parametrize("size", [(1, 1), (64, 48), (3000, 17)])
def test_sniff_reads_format_and_size_from_real_images(
    pil_format: str, options: dict[str, object], expected: str, size: tuple[int, int]
) -> None:
    data = make_image(pil_format, size, **options)
    assert sniff(data) == ImageInfo(expected, size[0], size[1])  # type: ignore[arg-type]


def test_sniff_reads_extended_webp_canvas() -> None:
    image = Image.new("RGBA", (300, 200), (1, 2, 3, 100))
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")
    data = buffer.getvalue()
    assert data[12:16] == b"VP8X"
    assert sniff(data) == ImageInfo("webp", 300, 200)


def test_sniff_ignores_the_file_name_story_jpeg_with_exif_thumbnail() -> None:
    # EXIF data (with its own markers) before the frame header must be skipped.
    image = Image.new("RGB", (120, 80), (9, 9, 9))
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert sniff(buffer.getvalue()) == ImageInfo("jpeg", 120, 80)


def test_empty_object_is_empty() -> None:
    with pytest.raises(UnsupportedImage) as err:
        sniff(b"")
    assert err.value.reason == "empty"


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file named photo.jpg",
        make_image("BMP"),
        make_image("TIFF"),
        b"%PDF-1.7\n",
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
    ],
)
def test_other_content_is_unknown_format(data: bytes) -> None:
    with pytest.raises(UnsupportedImage) as err:
        sniff(data)
    assert err.value.reason == "unknown_format"
    assert "first bytes" in err.value.detail


@pytest.mark.parametrize(("pil_format", "options", "expected"), CASES)
def test_truncated_images_are_truncated(
    pil_format: str, options: dict[str, object], expected: str
) -> None:
    data = make_image(pil_format, (200, 150), **options)
    for cut in (len(data) - 3, len(data) // 2, 24):
        with pytest.raises(UnsupportedImage) as err:
            sniff(data[:cut])
        assert err.value.reason == "truncated", (pil_format, cut, err.value.detail)


@pytest.mark.parametrize(("pil_format", "options", "expected"), CASES)
def test_header_prefix_is_enough_when_not_complete(
    pil_format: str, options: dict[str, object], expected: str
) -> None:
    data = make_image(pil_format, (200, 150), **options)
    prefix = data[: min(len(data) - 3, HEADER_READ_BYTES)]
    assert sniff(prefix, complete=False) == ImageInfo(expected, 200, 150)  # type: ignore[arg-type]


def test_jpeg_with_scan_before_frame_header_is_corrupt() -> None:
    data = b"\xff\xd8" + b"\xff\xda\x00\x08" + b"\x00" * 6 + b"\xff\xd9"
    with pytest.raises(UnsupportedImage) as err:
        sniff(data)
    assert err.value.reason == "corrupt"


def test_jpeg_with_garbage_between_segments_is_corrupt() -> None:
    data = b"\xff\xd8\xff\xe0\x00\x04ab" + b"XYZ" * 10
    with pytest.raises(UnsupportedImage) as err:
        sniff(data)
    assert err.value.reason == "corrupt"


def test_zero_sized_image_is_corrupt() -> None:
    png = bytearray(make_image("PNG", (5, 5)))
    png[16:24] = struct.pack(">II", 0, 5)
    with pytest.raises(UnsupportedImage) as err:
        sniff(bytes(png))
    assert err.value.reason == "corrupt"
    assert "0x5" in err.value.detail


def test_png_whose_first_chunk_is_not_ihdr_is_corrupt() -> None:
    png = bytearray(make_image("PNG", (5, 5)))
    png[12:16] = b"tEXt"
    with pytest.raises(UnsupportedImage) as err:
        sniff(bytes(png))
    assert err.value.reason == "corrupt"


def test_webp_with_bad_start_code_is_corrupt() -> None:
    webp = bytearray(make_image("WEBP", (40, 30)))
    assert webp[12:16] == b"VP8 "
    webp[23:26] = b"\x00\x00\x00"
    with pytest.raises(UnsupportedImage) as err:
        sniff(bytes(webp))
    assert err.value.reason == "corrupt"
