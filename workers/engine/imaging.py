"""Media sniffing, decoding and re-encoding for uploads and the face engine.

Pixel conventions are those of :mod:`workers.engine.types`: RGB ``uint8`` arrays of
shape ``(H, W, 3)``, C-contiguous, with EXIF (images) or display-matrix (videos)
orientation already applied. In addition, every array this module returns is
**read-only**: pixels are handed out without a defensive copy, and one frame may be
shared by detection and redaction. Call ``.copy()`` before drawing on it.

Everything that comes from an upload is untrusted. The type is decided from the
first :data:`SNIFF_BYTES` bytes only, never from a filename, and each decoder is
restricted to the format the bytes claim, so a file cannot reach a Pillow plugin
or FFmpeg demuxer other than the one for a type we accept. Pixel limits are
checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageChops, ImageFile

from workers.engine.errors import (
    MediaRejected,
    MediaTooLarge,
    UndecodableMedia,
    UnsupportedMedia,
)
from workers.engine.types import RGBImage

pillow_heif.register_heif_opener()

# Bytes the upload gateway must read for `sniff`; every signature we check lies within.
SNIFF_BYTES = 64

# When a container reports no usable frame rate. 25 fps is the PAL default; a slower
# true rate means sampling less often than asked, a faster one more often.
FALLBACK_FPS = 25.0

_ACCEPTED = "a photo (JPEG, PNG, WebP or HEIC) or a video (MP4, MOV, WebM or MKV)"


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class SniffedType:
    kind: MediaKind
    mime: str
    extension: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Header facts about an image. `width`/`height` are after EXIF orientation."""

    width: int
    height: int
    camera_make: str | None
    camera_model: str | None
    # EXIF DateTimeOriginal: the camera's local clock, naive (no zone).
    captured_at: datetime | None


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """`width`/`height` are of the displayed (rotated) frames.

    `frame_count` is what the container reports, which some muxers estimate from the
    duration; it is counted by decoding only when the container gives none.
    """

    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float


JPEG = SniffedType(MediaKind.IMAGE, "image/jpeg", ".jpg")
PNG = SniffedType(MediaKind.IMAGE, "image/png", ".png")
WEBP = SniffedType(MediaKind.IMAGE, "image/webp", ".webp")
HEIC = SniffedType(MediaKind.IMAGE, "image/heic", ".heic")
HEIF = SniffedType(MediaKind.IMAGE, "image/heif", ".heif")
MP4 = SniffedType(MediaKind.VIDEO, "video/mp4", ".mp4")
MOV = SniffedType(MediaKind.VIDEO, "video/quicktime", ".mov")
THREE_GP = SniffedType(MediaKind.VIDEO, "video/3gpp", ".3gp")
WEBM = SniffedType(MediaKind.VIDEO, "video/webm", ".webm")
MKV = SniffedType(MediaKind.VIDEO, "video/x-matroska", ".mkv")

# The one Pillow plugin each accepted image type may be opened with.
_PIL_FORMAT = {
    JPEG.mime: "JPEG",
    PNG.mime: "PNG",
    WEBP.mime: "WEBP",
    HEIC.mime: "HEIF",
    HEIF.mime: "HEIF",
}


def _brands(names: str) -> tuple[bytes, ...]:
    # Brands are four bytes, space-padded ("qt  ", "M4V ").
    return tuple(name.encode("ascii").ljust(4) for name in names.split())


# ISO base media (ftyp) brands that name a specific type; a str names a type we refuse.
_SPECIFIC_BRANDS: dict[bytes, SniffedType | str] = {
    **dict.fromkeys(_brands("heic heix heim heis hevc hevx hevm hevs"), HEIC),
    **dict.fromkeys(_brands("qt"), MOV),
    **dict.fromkeys(
        _brands(
            "isom iso2 iso3 iso4 iso5 iso6 iso7 iso8 iso9 mp41 mp42 mp71 avc1 dash"
            " M4V M4VH M4VP f4v mmp4 MSNV NDAS XAVC"
        ),
        MP4,
    ),
    **dict.fromkeys(_brands("3gp4 3gp5 3gp6 3gp7 3gp8 3gp9 3g2a 3g2b 3g2c"), THREE_GP),
    **dict.fromkeys(_brands("avif avis"), "an AVIF image"),
    **dict.fromkeys(_brands("M4A M4B M4P f4a f4b"), "an audio file"),
    **dict.fromkeys(_brands("crx"), "a Canon raw photo"),
    **dict.fromkeys(_brands("jp2"), "a JPEG 2000 image"),
}
# Structural HEIF brands: they say "HEIF" but not the codec, so they rank below the above
# (an AVIF file also lists mif1).
_GENERIC_HEIF_BRANDS = frozenset(_brands("mif1 msf1 miaf"))

# Top-level atoms a pre-ftyp QuickTime file may start with, at offset 4.
_QUICKTIME_ATOMS = frozenset((b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"))

# Recognisable types we refuse, only to name them in the error message. Each needs all
# of its (offset, bytes) parts to match.
_REFUSED_SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("a GIF image", ((0, b"GIF87a"),)),
    ("a GIF image", ((0, b"GIF89a"),)),
    ("a PDF document", ((0, b"%PDF-"),)),
    ("a ZIP archive or Office document", ((0, b"PK\x03\x04"),)),
    ("a TIFF image or camera raw photo", ((0, b"II*\x00"),)),
    ("a TIFF image or camera raw photo", ((0, b"MM\x00*"),)),
    ("a Photoshop document", ((0, b"8BPS"),)),
    ("a JPEG XL image", ((0, b"\xff\x0a"),)),
    ("a JPEG XL image", ((4, b"JXL "),)),
    ("an AVI video", ((0, b"RIFF"), (8, b"AVI "))),
    ("a WAV audio file", ((0, b"RIFF"), (8, b"WAVE"))),
    ("an Ogg media file", ((0, b"OggS"),)),
    ("an MP3 audio file", ((0, b"ID3"),)),
    ("a gzip archive", ((0, b"\x1f\x8b"),)),
    # "BM", the file size, then four reserved zero bytes.
    ("a BMP image", ((0, b"BM"), (6, b"\x00\x00\x00\x00"))),
)


def sniff(head: bytes) -> SniffedType:
    """The accepted media type of a file, from its first bytes only.

    Raises UnsupportedMedia for anything else, naming what it looks like when
    that is recognisable.
    """
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # The EBML header's DocType ("webm" or "matroska") sits in the first ~40 bytes.
        return WEBM if b"webm" in head else MKV
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    # Sizes 2..7 cannot be an atom; 0 and 1 mean "to end of file" and "64-bit size".
    if head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") not in range(2, 8):
        return MOV
    raise _refused(_describe_refused(head))


def _sniff_ftyp(head: bytes) -> SniffedType:
    size = int.from_bytes(head[:4], "big")
    # size 1: a 64-bit size follows the box type; size 0: the box runs to end of file.
    body_start = 16 if size == 1 else 8
    body_end = len(head) if size in (0, 1) else min(size, len(head))
    major = head[body_start : body_start + 4]
    # Compatible brands follow the 4-byte major brand and 4-byte minor version.
    compatible = [head[i : i + 4] for i in range(body_start + 8, body_end - 3, 4)]
    brands = [major, *compatible]
    for brand in brands:
        found = _SPECIFIC_BRANDS.get(brand)
        if isinstance(found, SniffedType):
            return found
        if found is not None:
            raise _refused(found)
    if any(brand in _GENERIC_HEIF_BRANDS for brand in brands):
        return HEIF
    label = major.decode("latin-1").strip() or "?"
    raise _refused(f"an ISO media file of brand '{label}'")


def _describe_refused(head: bytes) -> str | None:
    if not head:
        return None
    for what, parts in _REFUSED_SIGNATURES:
        if all(head[offset : offset + len(part)] == part for offset, part in parts):
            return what
    if all((b >= 0x20 and b != 0x7F) or b in b"\t\n\r" for b in head):
        return "text (for example HTML, SVG or CSV)"
    return "an unrecognised file type"


def _refused(what: str | None) -> UnsupportedMedia:
    if what is None:
        return UnsupportedMedia(f"The file is empty. Upload {_ACCEPTED}.", detected="empty")
    return UnsupportedMedia(
        f"This file looks like {what}, which is not accepted. Upload {_ACCEPTED}.",
        detected=what,
    )


# --------------------------------------------------------------------------- images


def decode_image(data: bytes, *, max_pixels: int) -> RGBImage:
    """Decode an accepted image to oriented, read-only RGB pixels at full resolution.

    Raises UnsupportedMedia (not an accepted image type), MediaTooLarge (over
    `max_pixels`, checked from the header before decoding) or UndecodableMedia.
    """
    sniffed = _image_type(data)
    with _open_image(data, sniffed, max_pixels) as im:
        _load(im, sniffed)
        return _to_rgb_array(_orient(im))


def read_image_info(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Size and camera facts from the header and EXIF, without decoding pixels.

    Raises like `decode_image`, except that damage after the header goes unnoticed
    (use `validate_upload` for that). EXIF a PNG stores after its pixel data is not
    read here, but `decode_image` does honour its orientation.
    """
    with _open_image(data, _image_type(data), max_pixels) as im:
        return _image_info(im)


def _image_type(data: bytes) -> SniffedType:
    sniffed = sniff(data[:SNIFF_BYTES])
    if sniffed.kind is not MediaKind.IMAGE:
        raise UnsupportedMedia(
            f"Expected a photo but this file is a video ({sniffed.mime}).", detected=sniffed.mime
        )
    return sniffed


def _open_image(data: bytes, sniffed: SniffedType, max_pixels: int) -> Image.Image:
    pil_format = _PIL_FORMAT[sniffed.mime]
    # face_recognition sets this process-wide flag to True when imported. A truncated
    # photo would then decode with a grey hole where faces may have been and pass as
    # "no face here"; it must fail instead. Reset on every open, since the import
    # can happen at any time.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im = Image.open(io.BytesIO(data), formats=[pil_format])
    except Image.DecompressionBombError as exc:
        # Pillow refuses at twice Image.MAX_IMAGE_PIXELS, before we can read the size.
        raise MediaTooLarge(
            "The image has too many pixels to process; it may be a decompression bomb.",
            reason=str(exc),
        ) from exc
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise a zoo of types on hostile input
        raise _undecodable(sniffed, exc) from exc
    try:
        _check_pixels(im.size, max_pixels, what="image")
    except MediaRejected:
        im.close()
        raise
    return im


def _check_pixels(size: tuple[int, int], max_pixels: int, *, what: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UndecodableMedia(f"The {what} claims an impossible size of {width}x{height} pixels.")
    # Image.MAX_IMAGE_PIXELS is where Pillow warns of a decompression bomb; refusing at
    # that point here too makes the warning's cases MediaTooLarge without touching the
    # process-wide warnings filter (which is not thread-safe).
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS is not None:
        limit = min(limit, Image.MAX_IMAGE_PIXELS)
    if width * height > limit:
        raise MediaTooLarge(
            f"The {what} is {width}x{height} pixels ({_amount(width * height)});"
            f" the limit is {_amount(limit)}.",
            width=width,
            height=height,
            max_pixels=limit,
        )


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 100_000 else f"{pixels} pixels"


def _load(im: Image.Image, sniffed: SniffedType) -> None:
    try:
        im.load()
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise a zoo of types on hostile input
        raise _undecodable(sniffed, exc) from exc


def _undecodable(sniffed: SniffedType, exc: BaseException) -> UndecodableMedia:
    what = f"{sniffed.extension.lstrip('.').upper()} image"
    return UndecodableMedia(
        f"This {what} could not be decoded; the file may be truncated or corrupt.",
        reason=f"{type(exc).__name__}: {exc}",
    )


# EXIF Orientation -> the transpose that displays the stored pixels upright.
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_MAKE_TAG = 0x010F
_MODEL_TAG = 0x0110
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL_TAG = 0x9003


def _header_exif(im: Image.Image) -> Image.Exif:
    # The base-class getexif reads only what the header put in `info` (EXIF, or XMP's
    # tiff:Orientation); PngImageFile.getexif would decode all pixels to look further.
    try:
        return Image.Image.getexif(im)
    except Exception:  # malformed EXIF: behave like a viewer that ignores it
        return Image.Exif()


def _orientation(im: Image.Image) -> int:
    value = _header_exif(im).get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(im: Image.Image) -> Image.Image:
    # pillow_heif applies HEIF's own rotation on decode and resets EXIF Orientation to
    # 1, so HEIC is never rotated twice.
    method = _TRANSPOSE_FOR_ORIENTATION.get(_orientation(im))
    return im if method is None else im.transpose(method)


def _image_info(im: Image.Image) -> ImageInfo:
    width, height = im.size
    if _orientation(im) in (5, 6, 7, 8):
        width, height = height, width
    exif = _header_exif(im)
    try:
        captured = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL_TAG)
    except Exception:  # malformed sub-IFD
        captured = None
    return ImageInfo(
        width=width,
        height=height,
        camera_make=_exif_text(exif.get(_MAKE_TAG)),
        camera_model=_exif_text(exif.get(_MODEL_TAG)),
        captured_at=_exif_datetime(captured),
    )


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 \t\r\n") or None


def _exif_datetime(value: object) -> datetime | None:
    text = _exif_text(value)
    if text is None:
        return None
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"):
        try:
            return datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
    return None  # includes the "0000:00:00 00:00:00" cameras write when unset


_ALPHA_MODES = frozenset(("RGBA", "RGBa", "LA", "La", "PA"))
_WHITE = (255, 255, 255)


def pil_to_rgb(im: Image.Image) -> RGBImage:
    """Any Pillow image as a read-only RGB array: alpha is composited on white,
    CMYK converted, 16-bit and float samples scaled to 8 bits.

    Orientation is not touched; `decode_image` applies it before calling this.
    """
    return _to_rgb_array(im)


def _to_rgb_array(im: Image.Image) -> RGBImage:
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        return _frozen(_high_depth_to_rgb(im))
    try:
        if mode == "RGB" and "transparency" not in im.info:
            rgb = im
        elif mode == "CMYK":
            rgb = _cmyk_to_rgb(im)
        elif mode in _ALPHA_MODES or "transparency" in im.info:
            rgb = _composite_on_white(im)
        else:
            rgb = im.convert("RGB")
    except ValueError as exc:  # a mode Pillow cannot convert to RGB, e.g. LAB
        raise UndecodableMedia(f"Images with {mode} pixels are not supported.") from exc
    # Pillow exports RGB as packed (H, W, 3) bytes: already C-contiguous, so no copy here.
    return _frozen(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    # Pillow always reads CMYK JPEG samples as Adobe-inverted (what Photoshop writes,
    # flagged by an APP14 "Adobe" segment). Without that segment the samples are plain
    # CMYK, as libjpeg, OpenCV and browsers assume, so undo Pillow's inversion.
    if im.format == "JPEG" and "adobe" not in im.info:
        im = ImageChops.invert(im)
    return im.convert("RGB")


def _composite_on_white(im: Image.Image) -> Image.Image:
    rgba = im if im.mode == "RGBA" else im.convert("RGBA")
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _high_depth_to_rgb(im: Image.Image) -> RGBImage:
    samples = np.asarray(im)
    if im.mode == "F":
        samples = np.nan_to_num(samples, nan=0.0, posinf=255.0, neginf=0.0)
        # Float images are nominally 0..1; anything brighter is taken to be 0..255.
        scale = 255.0 if samples.size and float(samples.max()) <= 1.0 else 1.0
        gray = np.clip(samples * scale + 0.5, 0, 255).astype(np.uint8)
    else:
        # I;16* hold 16-bit samples; Pillow's 32-bit "I" mode carries them too (PNG
        # and TIFF 16-bit grey). Keep the high byte. Pillow's own convert clips at 255
        # instead, which turns a 16-bit photo white.
        gray = (np.clip(samples, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    return np.repeat(gray[:, :, np.newaxis], 3, axis=2)


def _frozen(pixels: RGBImage) -> RGBImage:
    pixels.flags.writeable = False
    return pixels


def encode_clean_jpeg(rgb: RGBImage, *, quality: int = 90) -> bytes:
    """JPEG bytes re-encoded from pixels alone.

    The output carries no EXIF (so no GPS or camera serial), XMP, IPTC, ICC profile
    or comment: it is built from a fresh image, never from the upload's file.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# --------------------------------------------------------------------------- videos


def probe_video(path: Path) -> VideoInfo:
    """Size, rate and length of a video whose first frame decodes.

    Raises UnsupportedMedia if the file is not an accepted video container, and
    UndecodableMedia if it has no video stream or its first frame does not decode.
    """
    capture = _open_capture(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise _no_frames(path)
        height, width = frame.shape[:2]
        fps = _usable_fps(capture.get(cv2.CAP_PROP_FPS))
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if frame_count <= 0:
            frame_count = 1
            while capture.grab():
                frame_count += 1
    finally:
        capture.release()
    return VideoInfo(
        width=int(width),
        height=int(height),
        fps=fps,
        frame_count=frame_count,
        duration_s=frame_count / fps,
    )


class VideoFrames:
    """Every frame the decoder yields, in order: the one frame source of screening and
    of the public copy, so that what is published is exactly what was screened.

    Iterating yields ``(index, read-only RGB)`` with ``index`` counting the frames the
    decoder actually produced, 0..N-1; never the container's claimed rate or length,
    which muxers estimate and truncated files keep. One iteration per instance.

    A stream that ends early, or a frame whose data does not decode part-way, ends the
    iteration without raising: afterwards ``decoded`` is the number yielded and
    ``error`` says what stopped it (None if the decoder simply ran out). Callers compare
    ``decoded`` with ``claimed_frames`` to tell a truncated file. Only a file of which
    not even the first frame decodes raises (UndecodableMedia), as `probe_video` does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._capture: cv2.VideoCapture | None = _open_capture(path)
        # What the container says; used for timing only, never to number frames.
        self.fps = _usable_fps(self._capture.get(cv2.CAP_PROP_FPS))
        claimed = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.claimed_frames: int | None = claimed if claimed > 0 else None
        self.decoded = 0
        self.error: str | None = None
        self._started = False

    def __iter__(self) -> Iterator[tuple[int, RGBImage]]:
        if self._started:
            raise RuntimeError("VideoFrames can be iterated only once")
        self._started = True
        capture = self._capture
        assert capture is not None
        try:
            while capture.grab():
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    self.error = f"frame {self.decoded} could not be decoded"
                    break
                index = self.decoded
                self.decoded += 1
                yield index, _bgr_to_rgb(frame)
            if self.decoded == 0:
                raise _no_frames(self.path)
        finally:
            self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def iter_video_frames(path: Path) -> Iterator[tuple[int, RGBImage]]:
    """``(index, read-only RGB)`` for every frame the decoder yields; see `VideoFrames`.

    A stream that stops decoding part-way ends the iteration quietly, exactly where
    `FaceEngine.screen_video` stopped screening; compare the count with its
    ``VideoScreening.frames_decoded`` before publishing anything made from these frames.
    """
    yield from VideoFrames(path)


def sample_video_frames(path: Path, *, fps: float) -> Iterator[tuple[int, RGBImage]]:
    """Every ``stride``-th frame of `iter_video_frames`, at least `fps` per second by the
    container's claimed rate, starting with frame 0.

    Not used for screening (which sees every frame): kept for previews and callers
    outside the engine. Unlike `iter_video_frames`, a frame that stops decoding
    part-way raises UndecodableMedia.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    frames = VideoFrames(path)
    # Flooring the stride keeps every gap between samples within 1/fps seconds.
    stride = max(1, int(frames.fps / fps))
    for index, rgb in frames:
        if index % stride == 0:
            yield index, rgb
    if frames.error is not None:
        raise UndecodableMedia(f"Frame {frames.decoded} of the video could not be decoded.")


def _open_capture(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise FileNotFoundError(path)
    with path.open("rb") as fh:
        sniffed = sniff(fh.read(SNIFF_BYTES))
    if sniffed.kind is not MediaKind.VIDEO:
        raise UnsupportedMedia(
            f"Expected a video but this file is a photo ({sniffed.mime}).", detected=sniffed.mime
        )
    # Only the FFmpeg backend: CAP_ANY would also try OpenCV's image-sequence reader.
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise _no_frames(path)
    # Apply the display matrix (phone portrait video is stored landscape). FFmpeg builds
    # default to this already; set it anyway, since the open() params list rejects it.
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def _no_frames(path: Path) -> UndecodableMedia:
    return UndecodableMedia(
        "This video could not be decoded: it has no readable video stream, or the file is"
        " truncated or corrupt.",
        file=path.name,
    )


def _usable_fps(reported: float) -> float:
    if math.isfinite(reported) and reported > 0:
        return float(reported)
    return FALLBACK_FPS


def _bgr_to_rgb(frame: Any) -> RGBImage:
    code = cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB
    return _frozen(cast(RGBImage, cv2.cvtColor(frame, code)))


# --------------------------------------------------------------------------- uploads


def validate_upload(path: Path, sniffed: SniffedType, *, max_pixels: int) -> ImageInfo | VideoInfo:
    """Check an upload end to end so bad files fail at upload, not during screening.

    Images are fully decoded; videos must open, yield a first frame, and have frames
    within `max_pixels`. Raises MediaTooLarge, UnsupportedMedia or UndecodableMedia.
    """
    if sniffed.kind is MediaKind.VIDEO:
        info = probe_video(path)
        _check_pixels((info.width, info.height), max_pixels, what="video")
        return info
    with _open_image(path.read_bytes(), sniffed, max_pixels) as im:
        _load(im, sniffed)
        return _image_info(im)
