"""The school board: its own QR sheet, the counts it polls, and nothing of any other school."""
from __future__ import annotations

import shutil
import subprocess

from sqlalchemy import select

from survey import db
from survey.auth import create_user
from survey.models import Link, School, SchoolClass
from tests.conftest import PASSWORD, form_fields, full_answers
from tests.conftest import office_login as login
from tests.survey.test_schools import schools  # noqa: F401  (the two-school fixture)


def accounts(app) -> None:
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "yixiao", PASSWORD, "school", "D1", "一小")
        create_user(session, "yizhong", PASSWORD, "school", "D1", "一中")
        create_user(session, "boss", PASSWORD, "city", "C")


def school_urls(app, name: str) -> set[str]:
    with app.app_context():
        tokens = db.session().scalars(
            select(Link.token).join(SchoolClass, SchoolClass.id == Link.school_class_id)
            .join(School, School.id == SchoolClass.school_id).where(School.name == name)
        ).all()
    return {f"http://survey.test/s/{t}" for t in tokens}


def pdf_text(data: bytes) -> str:
    assert shutil.which("pdftotext"), "poppler-utils is missing: sudo apt-get install poppler-utils"
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def qr_codes(data: bytes, folder) -> set[str]:
    """Return the URLs carried by the QR codes on the PDF's pages (pdftoppm, then zbarimg)."""
    assert shutil.which("pdftoppm") and shutil.which("zbarimg"), \
        "poppler-utils and zbar-tools are needed: sudo apt-get install poppler-utils zbar-tools"
    folder.mkdir()
    (folder / "sheet.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "150", str(folder / "sheet.pdf"), str(folder / "page")], check=True)
    pages = sorted(str(p) for p in folder.glob("page*.png"))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", *pages], capture_output=True, check=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def test_a_school_prints_its_own_class_qr_codes_and_never_another_schools(app, client, schools, tmp_path):  # noqa: F811
    accounts(app)
    login(client, "yixiao")
    board = client.get("/school/").get_data(as_text=True)
    assert 'href="/school/qr.pdf"' in board
    sheet = client.get("/school/qr.pdf")
    assert sheet.status_code == 200 and sheet.mimetype == "application/pdf"
    assert sheet.headers["Cache-Control"] == "private, no-store"
    text = pdf_text(sheet.data)
    for klass in ("一小 三年级1班", "一小 三年级2班", "家长扫码（市民问卷）", "学生扫码（未成年人问卷）"):
        assert klass in text
    assert "一中" not in text and "初一" not in text
    own, other = school_urls(app, "一小"), school_urls(app, "一中")
    assert len(own) == 4 and len(other) == 2
    assert qr_codes(sheet.data, tmp_path / "own") == own  # every code decodes to one of its own links, all of them there

    other_school = app.test_client()
    login(other_school, "yizhong")
    assert qr_codes(other_school.get("/school/qr.pdf").data, tmp_path / "other") == other
    office = app.test_client()
    login(office, "boss")
    assert office.get("/school/qr.pdf").status_code == 403  # the office has its own sheet per area
    assert app.test_client().get("/school/qr.pdf").status_code == 302  # anonymous: to the login page


def test_the_board_polls_counts_of_its_own_classes_only(app, client, schools):  # noqa: F811
    accounts(app)
    parent = schools[("三年级2班", "parent")]
    phone = app.test_client()
    fields = form_fields(phone.get(f"/s/{parent}").get_data(as_text=True))
    assert phone.post(f"/s/{parent}", data=fields | full_answers(comment="秘密意见") | {"community": "A1"}).status_code == 200
    login(client, "yixiao")
    reply = client.get("/school/progress.json")
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "private, no-store"
    classes = {c["name"]: c for c in reply.get_json()["classes"]}
    assert set(classes) == {"三年级1班", "三年级2班"}
    assert (classes["三年级2班"]["parents_answered"], classes["三年级2班"]["pupils"]) == (1, 38)
    assert classes["三年级1班"]["parents_answered"] == 0 and "秘密意见" not in reply.get_data(as_text=True)
    board = client.get("/school/").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in board and ">刷新</button>" in board
    assert 'aria-live="polite"' in board and "board.js" in board and "<script>" not in board
    office = app.test_client()
    login(office, "boss")
    assert office.get("/school/progress.json").status_code == 403
