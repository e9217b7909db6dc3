"""What residents and staff sent stays private on disk: photos carry pixels only, folders are 0700, files 0600."""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from PIL import Image, ImageOps, PngImagePlugin

from survey.private_files import private_folder, write_private
from survey.questionnaires import check_xlsform, load_pending, save_pending
from survey.reading.documents import cache_root, cached
from survey.rectification import photos
from tests.forms.workbooks import city_form, workbook


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def jpeg_with_comment() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 10)).save(out, "JPEG", comment=b"Shot at No. 5 Secret Lane", exif=b"")
    return out.getvalue()


def png_with_texts() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Secret Lane PNG")
    info.add_text("comment", "secret lane lower")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>Secret Lane XMP</x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 10, 200)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


@pytest.mark.parametrize("upload", [jpeg_with_comment(), png_with_texts()], ids=["jpeg COM", "png text"])
def test_a_re_encoded_photo_keeps_no_comment_or_text_chunk(upload):
    body, _width, _height = photos.reencode(upload)
    assert b"Secret Lane" not in body and b"secret lane" not in body
    assert b"\xff\xfe" not in body.split(b"\xff\xda", 1)[0]  # no COM segment before the image data
    with Image.open(io.BytesIO(body)) as image:
        assert "comment" not in image.info and "xmp" not in image.info


def test_private_folders_and_files_are_made_for_their_owner_only(tmp_path):
    target = private_folder(tmp_path / "a" / "b" / "c")
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    (tmp_path / "open").mkdir(mode=0o755)
    assert mode(private_folder(tmp_path / "open")) == 0o700  # closed again when an earlier version left it open
    write_private(target / "file.bin", b"data")
    assert mode(target / "file.bin") == 0o600 and (target / "file.bin").read_bytes() == b"data"
    assert os.listdir(target) == ["file.bin"]  # no temporary file left


def test_a_pending_upload_is_kept_readable_by_the_server_only(tmp_path):
    checked = check_xlsform(workbook(city_form()), "city.xlsx")
    folder = tmp_path / "instance" / "questionnaire_uploads"
    upload_id = save_pending(folder, 7, checked, "city.xlsx")
    assert mode(folder) == 0o700 and mode(folder / f"{upload_id}.json") == 0o600
    assert load_pending(folder, upload_id, 7).raw == checked.raw
    assert [p.name for p in folder.iterdir()] == [f"{upload_id}.json"]  # no temporary file, no workbook


def test_cached_pdfs_and_report_photos_are_private(app, tmp_path):
    body, from_cache = cached(app, None, "report", "C", lambda: b"%PDF-1.7 test")
    assert (body, from_cache) == (b"%PDF-1.7 test", False)
    files = list(cache_root(app).rglob("*.pdf"))
    assert len(files) == 1 and mode(files[0]) == 0o600 and mode(files[0].parent) == 0o700
    stored = photos.store(str(tmp_path), jpeg_with_comment(), "a.jpg")
    assert mode(tmp_path / photos.FOLDER) == 0o700 and mode(tmp_path / photos.FOLDER / stored.name) == 0o600


def progressive_jpeg_with_scans(scans: int) -> bytes:
    """A small progressive JPEG whose last scan is repeated: each copy is decoded again."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:last] + data[last:-2] * (scans - data.count(b"\xff\xda") + 1) + b"\xff\xd9"


def broken_exif_jpeg() -> bytes:
    """A 3.8 KB JPEG from the attack session's fuzzing: its EXIF block makes Pillow's exif_transpose raise TypeError."""
    return (Path(__file__).parent / "data" / "broken_exif.jpg").read_bytes()


def test_a_jpeg_of_thousands_of_scans_is_refused_before_it_is_decoded():
    assert photos.reencode(progressive_jpeg_with_scans(20))[1:] == (64, 64)  # a camera's few scans pass
    with pytest.raises(photos.PhotoError, match="扫描遍数过多"):
        photos.reencode(progressive_jpeg_with_scans(1900))


def test_a_damaged_exif_block_keeps_the_photo_as_taken_not_a_500():
    with Image.open(io.BytesIO(broken_exif_jpeg())) as image, pytest.raises(TypeError):
        ImageOps.exif_transpose(image)  # what gave the 500
    body, _width, _height = photos.reencode(broken_exif_jpeg())
    assert body.startswith(b"\xff\xd8")


def test_a_small_palette_png_that_would_unpack_to_hundreds_of_mb_is_refused():
    out = io.BytesIO()
    Image.new("P", (6324, 6324)).save(out, "PNG")
    assert len(out.getvalue()) < 200_000
    with pytest.raises(photos.PhotoError, match="像素过多"):
        photos.reencode(out.getvalue())


def test_a_large_phone_jpeg_is_decoded_at_a_reduced_scale(monkeypatch):
    out = io.BytesIO()
    Image.new("RGB", (6000, 4500), (10, 120, 200)).save(out, "JPEG", quality=60)
    decoded = []
    real_load = Image.Image.load

    def load(image):
        decoded.append(image.size)
        return real_load(image)

    monkeypatch.setattr(Image.Image, "load", load)
    _body, width, height = photos.reencode(out.getvalue())
    assert (width, height) == (2000, 1500) and decoded[0] == (3000, 2250)  # 1/2 scale: still over 2000 wide
