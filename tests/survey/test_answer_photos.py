"""A photo question: the phone posts the file, the server checks and re-encodes it, the answer is its name."""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from survey import db
from survey.answer_photos import FOLDER, PENDING, forget_pending
from survey.models import Answer, Area, Link, Questionnaire, Wave
from tests.conftest import form_fields
from tests.forms.workbooks import workbook
from tests.survey.test_questionnaire_admin import login, post, staff, upload_and_publish  # noqa: F401 (fixture)

PHOTO_FORM = {
    "survey": [
        ["type", "name", "label", "required"],
        ["image", "spot", "请拍下问题所在的位置", "yes"],
        ["text", "what", "问题是什么？", "yes"],
    ],
    "settings": [["form_title", "form_id"], ["随手拍", "snap"]],
}


def _jpeg(size=(64, 48), comment: bytes = b"") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "JPEG", comment=comment)
    return out.getvalue()


def _link(app, client) -> str:
    login(client, "city")
    upload_and_publish(client, workbook(PHOTO_FORM), "随手拍.xlsx")
    with app.app_context():
        wave_id = db.session().scalar(select(Wave.id))
    post(client, "/office/questionnaires/snap/v1/field", wave=str(wave_id))
    post(client, "/office/questionnaires/snap/links")
    with app.app_context():
        return db.session().scalar(select(Link.token).join(Link.area).join(Questionnaire)
                                   .where(Questionnaire.code == "snap", Area.code == "A1"))


def test_a_photo_answer_is_checked_re_encoded_kept_privately_and_carried_across_a_page_shown_again(app, client, staff):  # noqa: F811
    token = _link(app, client)
    phone = app.test_client()
    page = phone.get(f"/s/{token}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page and 'accept="image/*"' in page
    fields = form_fields(page)

    # Not a photo: refused with its reason, nothing stored.
    bad = phone.post(f"/s/{token}", data=fields | {"what": "路灯坏了", "spot": (io.BytesIO(b"<svg/>"), "a.svg")},
                     content_type="multipart/form-data")
    assert bad.status_code == 422 and "不是照片：只收 JPEG、PNG 或 WebP 图片" in bad.get_data(as_text=True)

    # A photo with the text missing: the page comes back carrying the stored photo, signed.
    missing = phone.post(f"/s/{token}", data=fields | {"spot": (io.BytesIO(_jpeg(comment=b"GPS secret")), "p.jpg")},
                         content_type="multipart/form-data")
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422 and "照片已上传；重新选择可替换" in html
    carried = re.search(r'<input type="hidden" name="spot" value="([^"]+)">', html).group(1)
    # A name typed by hand (another respondent's photo) is never taken.
    forged = phone.post(f"/s/{token}", data=form_fields(html) | {"spot": "0" * 32 + ".jpg", "what": "x"},
                        content_type="multipart/form-data")
    assert forged.status_code == 422 and "请拍摄或选择一张照片" in forged.get_data(as_text=True)
    thanks = phone.post(f"/s/{token}", data=form_fields(html) | {"spot": carried, "what": "路灯坏了"},
                        content_type="multipart/form-data")
    assert thanks.status_code == 200, thanks.get_data(as_text=True)
    with app.app_context():
        name = db.session().scalar(select(Answer.value).where(Answer.item_code == "spot"))
    stored = Path(app.instance_path) / FOLDER / name
    assert not (Path(app.instance_path) / PENDING / name).exists()  # moved out of pending when stored
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", name) and stored.stat().st_mode & 0o777 == 0o600
    assert b"GPS secret" not in stored.read_bytes()  # re-encoded: only the pixels travel
    with Image.open(stored) as image:
        assert image.format == "JPEG" and image.size == (64, 48)


def test_a_post_not_of_this_page_writes_no_photo_and_unfinished_ones_go_after_a_day(app, client, staff):  # noqa: F811
    # An attacker's finding: photos were written before the one-time key was checked, and kept.
    token = _link(app, client)
    phone = app.test_client()
    pending = Path(app.instance_path) / PENDING
    for extra in ({}, {"submission_key": "forged"}, {"_refresh": "1"}):
        phone.post(f"/s/{token}", data={"what": "x", "spot": (io.BytesIO(_jpeg()), "p.jpg")} | extra,
                   content_type="multipart/form-data")
    foreign = phone.post(f"/s/{token}", data=form_fields(phone.get(f"/s/{token}").get_data(as_text=True))
                         | {"what": "x", "spot": (io.BytesIO(_jpeg()), "p.jpg")},
                         content_type="multipart/form-data", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert not pending.exists() or not list(pending.iterdir())
    # A page with a valid key keeps the photo pending while an answer is missing...
    fields = form_fields(phone.get(f"/s/{token}").get_data(as_text=True))
    missing = phone.post(f"/s/{token}", data=fields | {"spot": (io.BytesIO(_jpeg()), "p.jpg")},
                         content_type="multipart/form-data")
    assert missing.status_code == 422 and len(list(pending.iterdir())) == 1
    # ...and housekeeping drops it once it is a day old, never a newer one.
    with app.app_context():
        assert forget_pending(app.instance_path) == 0
        assert forget_pending(app.instance_path, now=time.time() + 2 * 86_400) == 1
    assert list(pending.iterdir()) == []
