"""Media sniffing, decoding and re-encoding, on fixtures generated here.

No image or video file is committed: every fixture is drawn with numpy and encoded
with Pillow, pillow_heif or OpenCV, so none shows a real person.
"""

from __future__ import annotations

import io
import itertools
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import ExifTags, Image, ImageCms

from workers.engine import imaging
from workers.engine.errors import MediaTooLarge, UndecodableMedia, UnsupportedMedia
from workers.engine.imaging import (
    ImageInfo,
    MediaKind,
    VideoFrames,
    VideoInfo,
    decode_image,
    encode_clean_jpeg,
    iter_video_frames,
    pil_to_rgb,
    probe_video,
    read_image_info,
    sample_video_frames,
    sniff,
    validate_upload,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED_RGBA = ROOT.parent / "shared" / "faces" / "formats" / "rgba_32bit.png"
MAX_PIXELS = 50_000_000

RED = (255, 0, 0)
WHITE = (255, 255, 255)
MARKER = 8  # side of the red square drawn in the top-left corner of test scenes


def scene(width: int = 80, height: int = 40) -> npt.NDArray[np.uint8]:
    """A blue-grey picture, wider than tall, with a red square at the top-left."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = (40, 90, 160)
    pixels[:MARKER, :MARKER] = RED
    return pixels


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg(pixels: npt.NDArray[np.uint8], **params: object) -> bytes:
    return encode(Image.fromarray(pixels), "JPEG", quality=95, **params)


def assert_rgb_image(pixels: np.ndarray, height: int, width: int) -> None:
    assert pixels.shape == (height, width, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous


def near(pixel: np.ndarray, expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(expected)) <= tolerance))


def corner_with_marker(pixels: np.ndarray) -> str:
    """Which corner of the image holds the red square."""
    h, w = pixels.shape[:2]
    corners = {
        "top-left": pixels[1, 1],
        "top-right": pixels[1, w - 2],
        "bottom-left": pixels[h - 2, 1],
        "bottom-right": pixels[h - 2, w - 2],
    }
    red = [name for name, pixel in corners.items() if near(pixel, RED, 40)]
    assert len(red) == 1, f"expected the marker in exactly one corner, found {red}"
    return red[0]


def heic_available() -> bool:
    try:
        encode(Image.new("RGB", (16, 16)), "HEIF")
    except Exception:
        return False
    return True


needs_heic = pytest.mark.skipif(
    not heic_available(), reason="pillow_heif was built without a HEVC encoder"
)


# ----------------------------------------------------------------------------- sniff


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 16


@pytest.mark.parametrize(
    ("head", "mime", "extension"),
    [
        (jpeg(scene()), "image/jpeg", ".jpg"),
        (encode(Image.fromarray(scene()), "PNG"), "image/png", ".png"),
        (encode(Image.fromarray(scene()), "WEBP"), "image/webp", ".webp"),
        (ftyp(b"heic", b"mif1", b"heic", b"miaf"), "image/heic", ".heic"),
        (ftyp(b"mif1", b"mif1", b"heic"), "image/heic", ".heic"),
        (ftyp(b"mif1", b"mif1"), "image/heif", ".heif"),
        (ftyp(b"msf1", b"msf1", b"hevc"), "image/heic", ".heic"),
        (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video/mp4", ".mp4"),
        (ftyp(b"mp42", b"mp42", b"isom"), "video/mp4", ".mp4"),
        (ftyp(b"XAVC", b"XAVC", b"mp42", b"iso2"), "video/mp4", ".mp4"),
        (ftyp(b"M4V ", b"M4V ", b"mp42"), "video/mp4", ".mp4"),
        (ftyp(b"qt  ", b"qt  "), "video/quicktime", ".mov"),
        (b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat" + b"\x00" * 20, "video/quicktime", ".mov"),
        (b"\x00\x00\x05\x00moov\x00\x00\x00\x6cmvhd" + b"\x00" * 20, "video/quicktime", ".mov"),
        (
            b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\x00" * 8,
            "video/webm",
            ".webm",
        ),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska", ".mkv"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_sniff_recognises_accepted_types_from_magic_bytes(
    head: bytes, mime: str, extension: str
) -> None:
    sniffed = sniff(head[: imaging.SNIFF_BYTES])

    assert (sniffed.mime, sniffed.extension) == (mime, extension)
    assert sniffed.kind is (MediaKind.IMAGE if mime.startswith("image/") else MediaKind.VIDEO)


def test_sniff_ignores_everything_after_the_head() -> None:
    # A GIF signature far into the file must not matter: only the head is read.
    data = jpeg(scene()) + b"GIF89a" * 100

    assert sniff(data).mime == "image/jpeg"
    assert sniff(data[: imaging.SNIFF_BYTES]).mime == "image/jpeg"


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "named_as"),
    [
        (encode(Image.fromarray(scene()).convert("P"), "GIF"), "GIF image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"name,class,consent\nAda,5B,yes\n", "text"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "text"),
        (_zip_bytes(), "ZIP"),
        (encode(Image.fromarray(scene()), "TIFF"), "TIFF"),
        (encode(Image.fromarray(scene()), "BMP"), "BMP"),
        (ftyp(b"avif", b"mif1", b"avif", b"miaf"), "AVIF"),
        (ftyp(b"mif1", b"mif1", b"avif"), "AVIF"),
        (ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio"),
        (b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 16, "AVI"),
        (b"BMX club results 2024\n", "text"),
        (bytes(range(200, 256)) + b"\x00\x01\x02", "unrecognised"),
        (b"", "empty"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_sniff_refuses_other_types_and_says_what_is_accepted(head: bytes, named_as: str) -> None:
    with pytest.raises(UnsupportedMedia) as caught:
        sniff(head[: imaging.SNIFF_BYTES])

    message = caught.value.message
    assert named_as in message
    for accepted in ("JPEG", "PNG", "WebP", "HEIC", "MP4", "MOV", "WebM"):
        assert accepted in message


# ----------------------------------------------------------------------------- images


def test_baseline_and_progressive_jpeg_decode_to_the_same_picture() -> None:
    pixels = scene(64, 48)
    baseline = jpeg(pixels)
    progressive = jpeg(pixels, progressive=True)
    assert Image.open(io.BytesIO(progressive)).info.get("progressive") == 1

    decoded = [decode_image(data, max_pixels=MAX_PIXELS) for data in (baseline, progressive)]

    for rgb in decoded:
        assert_rgb_image(rgb, 48, 64)
        assert corner_with_marker(rgb) == "top-left"
        assert np.abs(rgb.astype(int) - pixels).mean() < 3


def test_lossless_png_round_trips_exactly_in_rgb_order() -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)

    rgb = decode_image(encode(Image.fromarray(pixels), "PNG"), max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 37, 53)
    np.testing.assert_array_equal(rgb, pixels)


def test_decoded_pixels_are_read_only() -> None:
    rgb = decode_image(jpeg(scene()), max_pixels=MAX_PIXELS)

    with pytest.raises(ValueError, match="read-only"):
        rgb[0, 0] = 0


def test_grayscale_jpeg_becomes_three_equal_channels() -> None:
    gray = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    data = encode(Image.fromarray(gray, "L"), "JPEG", quality=95)

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 16, 64)
    assert np.array_equal(rgb[..., 0], rgb[..., 1])
    assert np.array_equal(rgb[..., 1], rgb[..., 2])
    assert np.abs(rgb[..., 0].astype(int) - gray).mean() < 3


def _cmyk_red() -> Image.Image:
    return Image.new("CMYK", (16, 16), (0, 255, 255, 0))


def test_adobe_cmyk_jpeg_shows_its_true_colours() -> None:
    # Pillow writes CMYK JPEG the way Photoshop does: inverted samples plus an Adobe
    # APP14 segment. Getting the inversion wrong turns red into cyan.
    data = encode(_cmyk_red(), "JPEG", quality=95)
    assert b"Adobe" in data

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 16, 16)
    assert near(rgb[8, 8], RED)


def _without_adobe_segment(data: bytes) -> bytes:
    start = data.index(b"\xff\xee")
    length = int.from_bytes(data[start + 2 : start + 4], "big")
    return data[:start] + data[start + 2 + length :]


def test_plain_cmyk_jpeg_without_adobe_segment_is_not_inverted() -> None:
    # Store non-inverted samples (what other encoders write) and drop the Adobe flag.
    plain = Image.eval(_cmyk_red(), lambda v: 255 - v)
    data = _without_adobe_segment(encode(plain, "JPEG", quality=95))
    assert b"Adobe" not in data

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert near(rgb[8, 8], RED)


def test_rgba_png_is_composited_on_white() -> None:
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[:, 0] = (255, 0, 0, 255)  # opaque red
    rgba[:, 1] = (255, 0, 0, 128)  # half-transparent red
    rgba[:, 2] = (0, 0, 0, 0)  # fully transparent black

    rgb = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 4, 3)
    assert tuple(rgb[0, 0]) == RED
    assert near(rgb[0, 1], (255, 127, 127), tolerance=2)
    assert tuple(rgb[0, 2]) == WHITE


def test_palette_png_with_transparent_index_uses_palette_colours_on_white() -> None:
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 0] + [0] * (256 * 3 - 9))
    im.putdata([0, 1, 2])
    data = encode(im, "PNG", transparency=2)

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert [tuple(p) for p in rgb[0]] == [RED, (0, 255, 0), WHITE]


def test_opaque_palette_png_keeps_its_colours() -> None:
    data = encode(Image.fromarray(scene()).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 40, 80)
    assert corner_with_marker(rgb) == "top-left"


def test_16_bit_grayscale_png_is_scaled_not_clipped_to_white() -> None:
    levels = np.array([[0, 1000, 32768, 40000, 65535]], np.uint16)
    im = Image.fromarray(levels)
    data = encode(im, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 1, 5)
    assert list(rgb[0, :, 0]) == [0, 3, 128, 156, 255]


def test_webp_decodes() -> None:
    data = encode(Image.fromarray(scene()), "WEBP", lossless=True)

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    np.testing.assert_array_equal(rgb, scene())


@needs_heic
def test_heic_decodes() -> None:
    data = encode(Image.fromarray(scene(64, 32)), "HEIF", quality=95)
    assert sniff(data).mime == "image/heic"

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 32, 64)
    assert corner_with_marker(rgb) == "top-left"


@needs_heic
def test_heic_orientation_is_applied_once() -> None:
    # pillow_heif stores EXIF orientation as HEIF rotation and applies it on decode;
    # decoding must not rotate a second time.
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = encode(Image.fromarray(scene(64, 32)), "HEIF", quality=95, exif=exif.tobytes())

    rgb = decode_image(data, max_pixels=MAX_PIXELS)
    info = read_image_info(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 64, 32)
    assert corner_with_marker(rgb) == "top-right"
    assert (info.width, info.height) == (32, 64)


def jpeg_with_orientation(orientation: int, pixels: npt.NDArray[np.uint8]) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return jpeg(pixels, exif=exif)


def test_exif_orientation_6_photo_comes_out_upright() -> None:
    # Orientation 6 is a phone held upright: stored landscape, shown rotated 90° clockwise.
    data = jpeg_with_orientation(6, scene(80, 40))

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, 80, 40)
    assert corner_with_marker(rgb) == "top-right"
    info = read_image_info(data, max_pixels=MAX_PIXELS)
    assert (info.width, info.height) == (40, 80)


@pytest.mark.parametrize(
    ("orientation", "corner", "swapped"),
    [
        (1, "top-left", False),
        (2, "top-right", False),
        (3, "bottom-right", False),
        (4, "bottom-left", False),
        (5, "top-left", True),
        (6, "top-right", True),
        (7, "bottom-right", True),
        (8, "bottom-left", True),
    ],
)
def test_every_exif_orientation_is_applied(orientation: int, corner: str, swapped: bool) -> None:
    data = jpeg_with_orientation(orientation, scene(80, 40))

    rgb = decode_image(data, max_pixels=MAX_PIXELS)
    info = read_image_info(data, max_pixels=MAX_PIXELS)

    assert rgb.shape[:2] == ((80, 40) if swapped else (40, 80))
    assert (info.height, info.width) == rgb.shape[:2]
    assert corner_with_marker(rgb) == corner


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("1", WHITE),
        ("L", (200, 200, 200)),
        ("LA", WHITE),
        ("P", RED),
        ("PA", WHITE),
        ("RGBA", WHITE),
        ("I", (156, 156, 156)),
        ("I;16", (156, 156, 156)),
        ("F", (128, 128, 128)),
        ("CMYK", RED),
        ("YCbCr", RED),
    ],
)
def test_pil_to_rgb_handles_every_pixel_mode(mode: str, expected: tuple[int, int, int]) -> None:
    makers: dict[str, Callable[[], Image.Image]] = {
        "1": lambda: Image.new("1", (3, 2), 1),
        "L": lambda: Image.new("L", (3, 2), 200),
        "LA": lambda: Image.new("LA", (3, 2), (0, 0)),
        "P": lambda: Image.new("RGB", (3, 2), RED).convert("P"),
        "PA": lambda: Image.new("PA", (3, 2), (0, 0)),
        "RGBA": lambda: Image.new("RGBA", (3, 2), (0, 0, 0, 0)),
        "I": lambda: Image.new("I", (3, 2), 40000),
        "I;16": lambda: Image.new("I;16", (3, 2), 40000),
        "F": lambda: Image.new("F", (3, 2), 0.5),
        "CMYK": _cmyk_red,
        "YCbCr": lambda: Image.new("RGB", (3, 2), RED).convert("YCbCr"),
    }
    im = makers[mode]()
    assert im.mode == mode

    rgb = pil_to_rgb(im)

    assert_rgb_image(rgb, im.height, im.width)
    assert near(rgb[0, 0], expected, tolerance=2)


def test_camera_facts_come_from_exif() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme\x00"
    exif[ExifTags.Base.Model] = " PocketCam 3 "
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:11:12"
    data = jpeg(scene(), exif=exif)

    info = read_image_info(data, max_pixels=MAX_PIXELS)

    assert info == ImageInfo(
        width=80,
        height=40,
        camera_make="Acme",
        camera_model="PocketCam 3",
        captured_at=datetime(2024, 5, 1, 10, 11, 12),
    )


def test_png_exif_stored_after_the_pixels_is_honoured_when_decoding(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    plain = encode(Image.fromarray(scene(80, 40)), "PNG")
    iend = plain.rindex(b"IEND") - 4
    data = plain[:iend] + png_chunk(b"eXIf", exif.tobytes()) + plain[iend:]
    path = tmp_path / "upload"
    path.write_bytes(data)

    rgb = decode_image(data, max_pixels=MAX_PIXELS)
    validated = validate_upload(path, sniff(data), max_pixels=MAX_PIXELS)

    assert corner_with_marker(rgb) == "top-right"
    assert isinstance(validated, ImageInfo)
    assert (validated.width, validated.height) == (40, 80)


def test_photo_without_exif_has_no_camera_facts() -> None:
    info = read_image_info(encode(Image.fromarray(scene()), "PNG"), max_pixels=MAX_PIXELS)

    assert info == ImageInfo(80, 40, None, None, None)


def test_unset_capture_time_is_none() -> None:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "0000:00:00 00:00:00"

    info = read_image_info(jpeg(scene(), exif=exif), max_pixels=MAX_PIXELS)

    assert info.captured_at is None


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_1_bit_blank(side: int) -> bytes:
    """A valid all-black 1-bit square PNG, built by hand: saving it with Pillow would
    first need the whole image in memory at a byte per pixel."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + side // 8)  # filter byte, then 1 bit per pixel
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """900 megapixels in about 100 kB."""
    return png_1_bit_blank(30_000)


def test_decompression_bomb_is_too_large(png_bomb: bytes, tmp_path: Path) -> None:
    assert len(png_bomb) < 1_000_000

    with pytest.raises(MediaTooLarge):
        decode_image(png_bomb, max_pixels=MAX_PIXELS)
    with pytest.raises(MediaTooLarge):
        read_image_info(png_bomb, max_pixels=MAX_PIXELS)
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb)
    with pytest.raises(MediaTooLarge):
        validate_upload(path, sniff(png_bomb), max_pixels=MAX_PIXELS)


def test_decompression_bomb_is_refused_without_allocating_its_pixels(
    png_bomb: bytes, tmp_path: Path
) -> None:
    # A fresh interpreter, so its peak memory reflects only this decode attempt.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb)
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from workers.engine.errors import MediaTooLarge\n"
        "from workers.engine.imaging import decode_image\n"
        "data = Path(sys.argv[1]).read_bytes()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    decode_image(data, max_pixels=10**12)\n"
        "except MediaTooLarge:\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )

    grown_kib = int(result.stdout.strip())
    assert grown_kib < 50 * 1024, f"peak memory grew by {grown_kib} KiB"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_pillow_only_warns_about_is_still_too_large() -> None:
    # 100 megapixels: above Image.MAX_IMAGE_PIXELS, where Pillow merely warns, but
    # below twice that, where it refuses. A generous max_pixels must not let it through.
    data = png_1_bit_blank(10_000)

    with pytest.raises(MediaTooLarge):
        decode_image(data, max_pixels=10**12)
    with pytest.raises(MediaTooLarge):
        read_image_info(data, max_pixels=10**12)


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = encode(Image.new("RGB", (100, 100)), "PNG")

    assert decode_image(data, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(MediaTooLarge) as caught:
        decode_image(data, max_pixels=9_999)
    with pytest.raises(MediaTooLarge):
        read_image_info(data, max_pixels=9_999)

    assert caught.value.details["width"] == 100
    assert "100x100" in caught.value.message
    assert "9999 pixels" in caught.value.message


def test_truncated_jpeg_is_undecodable_but_its_header_still_reads() -> None:
    rng = np.random.default_rng(1)
    data = jpeg(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    truncated = data[: len(data) // 2]

    with pytest.raises(UndecodableMedia):
        decode_image(truncated, max_pixels=MAX_PIXELS)
    # read_image_info is header-only by design; validate_upload is what catches this.
    assert read_image_info(truncated, max_pixels=MAX_PIXELS).width == 300


def test_corrupt_png_is_undecodable() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"garbage" * 20

    with pytest.raises(UndecodableMedia):
        decode_image(data, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    "data",
    [
        encode(Image.new("RGB", (8, 8)), "GIF"),
        b"%PDF-1.4\n1 0 obj\n",
        b"just some text\n",
        b"",
    ],
    ids=["gif", "pdf", "text", "empty"],
)
def test_decode_image_refuses_types_we_do_not_accept(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia):
        decode_image(data, max_pixels=MAX_PIXELS)


def test_decode_image_refuses_a_video() -> None:
    with pytest.raises(UnsupportedMedia, match="video"):
        decode_image(ftyp(b"isom", b"isom", b"mp41"), max_pixels=MAX_PIXELS)


@pytest.mark.skipif(
    not SHARED_RGBA.is_file(),
    reason=f"{SHARED_RGBA} not found; it is one of the public test images in ../shared/faces",
)
@pytest.mark.faces
def test_shared_32_bit_rgba_png_decodes() -> None:
    data = SHARED_RGBA.read_bytes()
    with Image.open(io.BytesIO(data)) as source:
        assert source.mode == "RGBA"
        expected = np.asarray(source.convert("RGB"))
        opaque = np.asarray(source.getchannel("A")) == 255

    rgb = decode_image(data, max_pixels=MAX_PIXELS)

    assert_rgb_image(rgb, *expected.shape[:2])
    np.testing.assert_array_equal(rgb[opaque], expected[opaque])
    assert sniff(data).mime == "image/png"


SHARED_CLIP = ROOT.parent / "shared" / "faces" / "video" / "short_hamilton_clip.mp4"


@pytest.mark.skipif(
    not SHARED_CLIP.is_file(),
    reason=f"{SHARED_CLIP} not found; it is one of the public test videos in ../shared/faces",
)
@pytest.mark.faces
def test_shared_h264_clip_is_sampled_at_least_twice_a_second() -> None:
    info = probe_video(SHARED_CLIP)
    indices = [index for index, _ in sample_video_frames(SHARED_CLIP, fps=2.0)]

    assert (info.width, info.height, info.frame_count) == (640, 360, 275)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert indices[0] == 0
    gaps = {later - earlier for earlier, later in itertools.pairwise(indices)}
    assert max(gaps) / info.fps <= 0.5
    assert indices[-1] > 275 - info.fps / 2


# ----------------------------------------------------------------------------- clean JPEG


def jpeg_markers(data: bytes) -> list[int]:
    """Marker codes of the segments before the image data (SOS ends the header)."""
    assert data[:2] == b"\xff\xd8"
    markers, offset = [], 2
    while True:
        assert data[offset] == 0xFF
        marker = data[offset + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        offset += 2 + int.from_bytes(data[offset + 2 : offset + 4], "big")


def with_photoshop_iptc(data: bytes) -> bytes:
    iptc = b"\x1c\x02\x78" + struct.pack(">H", 13) + b"Sports day 5B"
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + b"\x00"
    payload = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + struct.pack(">H", 2 + len(payload)) + payload
    return data[:2] + segment + data[2:]


def test_clean_jpeg_carries_no_metadata_from_the_source() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Acme"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.0),
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: (0.0, 7.0, 40.0),
        }
    )
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = with_photoshop_iptc(
        jpeg(scene(), exif=exif, xmp=xmp, icc_profile=icc, comment=b"Ada, class 5B")
    )
    with Image.open(io.BytesIO(source)) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert {"exif", "xmp", "icc_profile", "comment", "photoshop"} <= original.info.keys()

    clean = encode_clean_jpeg(decode_image(source, max_pixels=MAX_PIXELS))

    for leak in (b"Exif", b"http://ns.adobe.com/xap", b"Photoshop 3.0", b"ICC_PROFILE", b"5B"):
        assert leak not in clean
    # Only JFIF APP0, quantisation/Huffman tables and the frame/scan headers remain.
    assert set(jpeg_markers(clean)) <= {0xE0, 0xDB, 0xC4, 0xC0, 0xDD, 0xDA}
    with Image.open(io.BytesIO(clean)) as reopened:
        assert not reopened.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment", "photoshop"} & reopened.info.keys()
        assert reopened.size == (80, 40)


def test_clean_jpeg_keeps_the_picture() -> None:
    rgb = decode_image(jpeg_with_orientation(6, scene(80, 40)), max_pixels=MAX_PIXELS)

    again = decode_image(encode_clean_jpeg(rgb, quality=95), max_pixels=MAX_PIXELS)

    # Orientation was baked into the pixels, so the clean copy needs no EXIF to be upright.
    assert again.shape == (80, 40, 3)
    assert corner_with_marker(again) == "top-right"
    assert np.abs(again.astype(int) - rgb).mean() < 3


def test_clean_jpeg_rejects_non_rgb_arrays() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_clean_jpeg(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_clean_jpeg(np.zeros((4, 4, 3), np.float32))


# ----------------------------------------------------------------------------- video

SOURCE_FPS = 10.0
FRAMES = 25
VIDEO_SIZE = (64, 48)  # width, height


def write_video(path: Path, fourcc: str = "mp4v") -> Path:
    """Frame i is grey level 8*i with a red square top-left (written as BGR)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), SOURCE_FPS, VIDEO_SIZE)
    if not writer.isOpened():
        pytest.skip(f"OpenCV cannot write {fourcc} to {path.suffix} in this build")
    width, height = VIDEO_SIZE
    for index in range(FRAMES):
        frame = np.full((height, width, 3), 8 * index, np.uint8)
        frame[:16, :16] = (0, 0, 255)
        writer.write(frame)
    writer.release()
    return path


def frame_level(rgb: np.ndarray) -> int:
    """The frame index encoded as grey level, read away from the marker."""
    return round(float(rgb[24:, 24:].mean()) / 8)


@pytest.fixture
def mp4(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4")


def test_probe_reports_size_rate_and_length(mp4: Path) -> None:
    assert probe_video(mp4) == VideoInfo(
        width=64, height=48, fps=SOURCE_FPS, frame_count=FRAMES, duration_s=2.5
    )


def test_sampling_at_2_fps_yields_the_expected_frames_in_rgb(mp4: Path) -> None:
    samples = list(sample_video_frames(mp4, fps=2.0))

    assert [index for index, _ in samples] == [0, 5, 10, 15, 20]
    for index, rgb in samples:
        assert_rgb_image(rgb, 48, 64)
        assert frame_level(rgb) == index
        assert near(rgb[4, 4], RED, 40)


def test_every_frame_is_yielded_in_order_numbered_by_the_decoder(mp4: Path) -> None:
    frames = list(iter_video_frames(mp4))

    assert [index for index, _ in frames] == list(range(FRAMES))
    for index, rgb in frames:
        assert_rgb_image(rgb, 48, 64)
        assert frame_level(rgb) == index


def test_a_truncated_stream_ends_quietly_and_says_how_far_it_got(tmp_path: Path) -> None:
    # Matroska keeps its header first, so half a file still decodes; the container's
    # claimed length stays that of the whole clip.
    whole = write_video(tmp_path / "clip.mkv", "MJPG")
    half = tmp_path / "half.mkv"
    data = whole.read_bytes()
    half.write_bytes(data[: len(data) // 2])

    frames = VideoFrames(half)
    indices = [index for index, _ in frames]

    assert frames.claimed_frames == FRAMES
    assert 0 < frames.decoded == len(indices) < FRAMES
    assert indices == list(range(frames.decoded))
    assert sum(1 for _ in iter_video_frames(half)) == frames.decoded
    with pytest.raises(RuntimeError, match="once"):
        next(iter(frames))


def test_no_decodable_frame_at_all_raises(garbage_mp4: Path) -> None:
    with pytest.raises(UndecodableMedia):
        list(iter_video_frames(garbage_mp4))


def test_sampling_always_includes_frame_0_and_never_skips_when_asked_for_more(mp4: Path) -> None:
    assert [index for index, _ in sample_video_frames(mp4, fps=0.1)] == [0]
    assert [index for index, _ in sample_video_frames(mp4, fps=30)] == list(range(FRAMES))


def test_sampling_rejects_a_nonsense_rate(mp4: Path) -> None:
    for fps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="fps"):
            next(sample_video_frames(mp4, fps=fps))


@pytest.mark.parametrize(
    ("suffix", "fourcc", "mime"),
    [
        (".mov", "mp4v", "video/quicktime"),
        (".webm", "VP80", "video/webm"),
        (".mkv", "mp4v", "video/x-matroska"),
    ],
)
def test_other_containers_sniff_probe_and_sample(
    tmp_path: Path, suffix: str, fourcc: str, mime: str
) -> None:
    path = write_video(tmp_path / f"clip{suffix}", fourcc)

    assert sniff(path.read_bytes()[: imaging.SNIFF_BYTES]).mime == mime
    assert probe_video(path).frame_count == FRAMES
    assert [index for index, _ in sample_video_frames(path, fps=2.0)] == [0, 5, 10, 15, 20]


def rotate_display_matrix_90(mp4: Path) -> Path:
    """Set the track's display matrix to 90° clockwise, as phones do for portrait video."""
    data = bytearray(mp4.read_bytes())
    box = data.index(b"tkhd")
    version = data[box + 4]
    matrix = box + 4 + 4 + (32 if version == 1 else 20) + 8 + 8
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 1 << 30)
    rotated = mp4.with_name("rotated.mp4")
    rotated.write_bytes(bytes(data))
    return rotated


def test_video_rotation_metadata_is_applied(mp4: Path) -> None:
    rotated = rotate_display_matrix_90(mp4)

    info = probe_video(rotated)
    samples = list(sample_video_frames(rotated, fps=2.0))

    assert (info.width, info.height) == (48, 64)
    assert [index for index, _ in samples] == [0, 5, 10, 15, 20]
    for _, rgb in samples:
        assert_rgb_image(rgb, 64, 48)
        assert corner_with_marker(rgb) == "top-right"


@pytest.fixture
def garbage_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.mp4"
    rng = np.random.default_rng(3)
    path.write_bytes(ftyp(b"isom", b"isom", b"mp41")[:24] + rng.bytes(20_000))
    return path


def test_mp4_with_garbage_body_is_undecodable(garbage_mp4: Path) -> None:
    assert sniff(garbage_mp4.read_bytes()).mime == "video/mp4"

    with pytest.raises(UndecodableMedia):
        probe_video(garbage_mp4)
    with pytest.raises(UndecodableMedia):
        list(sample_video_frames(garbage_mp4, fps=2.0))
    with pytest.raises(UndecodableMedia):
        validate_upload(garbage_mp4, sniff(garbage_mp4.read_bytes()), max_pixels=MAX_PIXELS)


def test_video_functions_refuse_a_photo(tmp_path: Path) -> None:
    # FFmpeg would happily open a PNG as a one-frame "video"; the sniff gate stops that.
    path = tmp_path / "photo.mp4"
    path.write_bytes(encode(Image.fromarray(scene()), "PNG"))

    with pytest.raises(UnsupportedMedia):
        probe_video(path)
    with pytest.raises(UnsupportedMedia):
        next(sample_video_frames(path, fps=2.0))


# ----------------------------------------------------------------------------- uploads


def test_validate_upload_returns_image_info_for_a_good_photo(tmp_path: Path) -> None:
    data = jpeg_with_orientation(6, scene(80, 40))
    path = tmp_path / "upload"
    path.write_bytes(data)

    info = validate_upload(path, sniff(data), max_pixels=MAX_PIXELS)

    assert isinstance(info, ImageInfo)
    assert (info.width, info.height) == (40, 80)


def test_validate_upload_catches_a_truncated_photo(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = jpeg(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    path = tmp_path / "upload"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(UndecodableMedia):
        validate_upload(path, sniff(data), max_pixels=MAX_PIXELS)


def test_validate_upload_returns_video_info_for_a_good_video(mp4: Path) -> None:
    info = validate_upload(mp4, sniff(mp4.read_bytes()), max_pixels=MAX_PIXELS)

    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.frame_count) == (64, 48, FRAMES)


def test_validate_upload_applies_the_pixel_limit_to_video_frames(mp4: Path) -> None:
    with pytest.raises(MediaTooLarge):
        validate_upload(mp4, sniff(mp4.read_bytes()), max_pixels=64 * 48 - 1)


def test_truncated_jpeg_stays_undecodable_after_face_recognition_is_imported() -> None:
    # face_recognition turns on Pillow's LOAD_TRUNCATED_IMAGES globally; a half photo
    # must still be refused rather than screened as if its missing half had no faces.
    import face_recognition  # noqa: F401

    rng = np.random.default_rng(2)
    data = jpeg(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    with pytest.raises(UndecodableMedia):
        decode_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)
