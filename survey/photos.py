"""Photos (整改 reports, answers to a questionnaire's photo question): accepted only when Pillow decodes
them as JPEG, PNG or WebP, re-encoded, kept privately.

What a browser calls the file and its type are ignored: the bytes are decoded. An SVG (it may
carry a script), a PDF or anything else Pillow cannot open as one of the three formats is
refused; so are files over MAX_BYTES and images over MAX_PIXELS (checked from the header before
any pixel is decoded: a small file can unpack to gigabytes, a "decompression bomb"). What is
stored is a new JPEG made from the pixels (turned upright by its EXIF orientation, then saved
without EXIF, GPS, comments, XMP or any other metadata, at most MAX_SIDE pixels a side) in a
private folder under instance/ (one per use: ``folder_name``) with a random name; it is only ever
sent by a view that checks the viewer may see it.
"""
from __future__ import annotations

import io
import os
import secrets
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from survey.private_files import private_folder

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 48-megapixel phone photo is refused; 40 MP covers every usual camera setting
MAX_SIDE = 2000
MAX_PHOTOS = 6
# What decoding may cost: a progressive JPEG is decoded once per scan (cameras write about 10; a
# crafted 250 KB file held 1,900 and took 10 s), and a small file may unpack to many pixels (a 5 KB
# palette PNG of 40 MP). JPEGs are decoded at the smallest scale still MAX_SIDE wide; the peak memory
# of a decode and re-encode, per decoded pixel, was measured here (Pillow 13): JPEG about 6 bytes,
# PNG 8-12, WebP 19 (a 40 MP WebP peaked at 770 MB). A photo whose estimate is over the limit is refused.
MAX_SCANS = 64
MAX_DECODE_MEMORY = 300 * 1024 * 1024
PEAK_BYTES_PER_PIXEL = {"JPEG": 6, "PNG": 9, "WEBP": 20}
PEAK_BYTES_PER_PIXEL_ALPHA = 12  # a PNG with transparency or a palette, made RGBA before it is flattened
# One photo decoded at a time in a process: six reports at once never hold six decoded photos.
_decoding = threading.BoundedSemaphore(1)
FORMATS = {"JPEG", "PNG", "WEBP"}


class PhotoError(ValueError):
    """A file that is not accepted as a photo; the message is fit to show."""


@dataclass(frozen=True)
class StoredPhoto:
    name: str
    width: int
    height: int
    size: int


def folder(instance_path: str, folder_name: str) -> Path:
    return private_folder(Path(instance_path) / folder_name)


def reencode(data: bytes, filename: str = "") -> tuple[bytes, int, int]:
    """Return (JPEG bytes, width, height) made from an uploaded image; raise PhotoError for anything else."""
    label = f"“{filename}”" if filename else "文件"
    if len(data) > MAX_BYTES:
        raise PhotoError(f"{label}超过{MAX_BYTES // (1024 * 1024)}MB，请压缩后再传")
    if not data:
        raise PhotoError(f"{label}是空的")
    if data.startswith(b"\xff\xd8") and data.count(b"\xff\xda") > MAX_SCANS:  # SOS markers: one per scan
        raise PhotoError(f"{label}的编码异常（扫描遍数过多），请在手机相册里另存或截图后再传")
    with _decoding:
        return _reencode(data, label)


def _reencode(data: bytes, label: str) -> tuple[bytes, int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=sorted(FORMATS)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS or width <= 0 or height <= 0:
                    raise PhotoError(f"{label}像素过多（{width}×{height}），请缩小后再传")
                if image.format == "JPEG":
                    image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at 1/2, 1/4 or 1/8 scale when that is enough
                per_pixel = PEAK_BYTES_PER_PIXEL.get(image.format or "", max(PEAK_BYTES_PER_PIXEL.values()))
                if image.format == "PNG" and image.mode in ("RGBA", "LA", "P", "PA"):
                    per_pixel = PEAK_BYTES_PER_PIXEL_ALPHA
                if image.size[0] * image.size[1] * per_pixel > MAX_DECODE_MEMORY:
                    raise PhotoError(f"{label}像素过多（{width}×{height}），请缩小后再传")
                image.load()
                try:
                    upright = ImageOps.exif_transpose(image)
                except Exception:  # a damaged EXIF block (Pillow raises TypeError, struct.error...): keep it as taken
                    upright = image
                if upright.mode in ("RGBA", "LA", "P", "PA"):
                    rgba = upright.convert("RGBA")
                    flat = Image.new("RGB", rgba.size, (255, 255, 255))
                    flat.paste(rgba, mask=rgba.getchannel("A"))
                    upright = flat
                else:
                    upright = upright.convert("RGB")
                upright.thumbnail((MAX_SIDE, MAX_SIDE))
                # Pillow writes what the image's info still holds (a JPEG's COM comment, XMP) into the
                # new file: clear it, so only pixels travel.
                upright.info.clear()
                out = io.BytesIO()
                upright.save(out, "JPEG", quality=85, optimize=True)
                return out.getvalue(), upright.width, upright.height
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(f"{label}像素过多，请缩小后再传") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{label}不是照片：只收 JPEG、PNG 或 WebP 图片") from None
    except Exception:  # any other failure of a decoder on crafted bytes: the file is refused, never a 500
        raise PhotoError(f"{label}已损坏，无法读取") from None


def store(instance_path: str, data: bytes, filename: str, folder_name: str) -> StoredPhoto:
    """Re-encode an upload and write it under a new random name; return what the database keeps."""
    body, width, height = reencode(data, filename)
    name = secrets.token_hex(16) + ".jpg"
    fd = os.open(folder(instance_path, folder_name) / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    return StoredPhoto(name, width, height, len(body))


def path_of(instance_path: str, stored_name: str, folder_name: str) -> Path:
    """Return where a stored photo lives (the name comes from the database, never from a request)."""
    return folder(instance_path, folder_name) / Path(stored_name).name


def remove(instance_path: str, names: list[str], folder_name: str) -> None:
    """Delete files written for a report (or an answer) whose transaction then failed."""
    for name in names:
        path_of(instance_path, name, folder_name).unlink(missing_ok=True)
