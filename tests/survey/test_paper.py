"""Printed paper questionnaires: the PDF, serials that continue, the check at entry, the office page."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from forms import bundled_definitions
from survey import db
from survey.areas import import_areas
from survey.auth import create_user
from survey.entry.views import parse_paper
from survey.models import Area, ExportLog, PaperBatch, Response, Wave
from survey.paper import numbered_items, paper_form
from tests.conftest import PASSWORD, logged_in

OTHER_DISTRICT = """code,name,level,parent_code,adult_population,responsible_unit
D2,二区,district,C,,
S3,三街道,street,D2,,
E1,丁社区,community,S3,2000,
"""


def wave_id(app) -> int:
    with app.app_context():
        return db.session().scalar(select(Wave.id).where(Wave.name == "第一轮"))


def run(tool: list[str], path: Path) -> str:
    assert shutil.which(tool[0]), f"{tool[0]} is missing (Debian: poppler-utils, zbar-tools)"
    after = ["-"] if tool[0] == "pdftotext" else []
    return subprocess.run([*tool, str(path), *after], capture_output=True, check=True, text=True).stdout


def print_cli(runner, tmp_path, area="A1", count="3", questionnaire="citizen", name="out.pdf"):
    out = tmp_path / name
    result = runner.invoke(args=["print-questionnaires", "--questionnaire", questionnaire, "--area", area,
                                 "--count", count, "--out", str(out)])
    return result, out


def test_cli_prints_numbered_copies_with_serial_text_and_qr_and_continues_the_numbering(app, city, runner, tmp_path):
    w = wave_id(app)
    result, out = print_cli(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"serials A1-{w}-0001 to A1-{w}-0003" in result.output
    pages = int(re.search(r"Pages:\s+(\d+)", run(["pdfinfo"], out)).group(1))
    assert pages % 3 == 0
    per_copy = pages // 3
    texts = [run(["pdftotext", "-layout", "-f", str(p), "-l", str(p)], out) for p in range(1, pages + 1)]
    for page, text in enumerate(texts):
        copy, within = divmod(page, per_copy)
        serial = f"A1-{w}-{copy + 1:04d}"
        assert serial in text and f"第{within + 1}页/共{per_copy}页" in text, (page, text[:300])
        assert all(f"A1-{w}-{other:04d}" not in text for other in range(1, 4) if other != copy + 1)
    first = texts[0]
    for expected in ("测试市", "全国文明城市创建工作市民问卷调查", "甲社区", "一街道", "1. 您的性别", "□1 男", "□2 女"):
        assert expected in first, expected
    # Each copy starts on a new page: the first page of every copy has question 1.
    assert all("1. 您的性别" in texts[c * per_copy] for c in range(3))
    # The QR code on the first page of the second copy is its serial.
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", str(per_copy + 1), "-l", str(per_copy + 1), str(out),
                    str(tmp_path / "page")], check=True)
    image = next(tmp_path.glob("page*.png"))
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(image)], capture_output=True, text=True).stdout.split()
    assert decoded == [f"A1-{w}-0002"]

    again, out2 = print_cli(runner, tmp_path, count="2", name="again.pdf")
    assert again.exit_code == 0, again.output
    text = run(["pdftotext"], out2)
    assert f"A1-{w}-0004" in text and f"A1-{w}-0005" in text and f"A1-{w}-0003" not in text
    with app.app_context():
        runs = db.session().scalars(select(PaperBatch).order_by(PaperBatch.id)).all()
        assert [(r.first_number, r.last_number, r.questionnaire_code, r.printed_by_id) for r in runs] == [
            (1, 3, "citizen", None), (4, 5, "citizen", None)]


@pytest.mark.parametrize(("area", "count", "message"), [
    ("A1", "0", "每次印制 1 到 500 份"), ("A1", "501", "每次印制 1 到 500 份"), ("S1", "5", "一街道不是社区"),
])
def test_cli_refuses_bad_counts_and_areas_that_are_not_communities(app, city, runner, tmp_path, area, count, message):
    result, out = print_cli(runner, tmp_path, area=area, count=count)
    assert result.exit_code != 0 and message in result.output
    assert not out.exists()
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(PaperBatch)) == 0


def grid_client(app, username: str, community: str):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, username, PASSWORD, "grid", community)
    client = app.test_client()
    logged_in(client, username)
    client.csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/entry/").get_data(as_text=True)).group(1)
    return client


def enter(client, serial: str, questionnaire: str = "citizen"):
    definition = bundled_definitions()[(questionnaire, 1)]
    numbers = {i.code: "1" for i in definition.items if i.type != "text"}
    return client.post(f"/entry/?q={questionnaire}", data={"csrf_token": client.csrf, "serial": serial} | numbers)


def test_entry_takes_only_serials_printed_for_the_community_once_it_has_print_runs(app, city, runner, tmp_path):
    w = wave_id(app)
    client = grid_client(app, "wangge", "A2")
    # No print run yet: papers printed outside the platform keep their own serials.
    assert enter(client, "OWN-17").status_code == 200
    assert print_cli(runner, tmp_path, area="A2", count="2")[0].exit_code == 0
    assert print_cli(runner, tmp_path, area="A2", count="1", questionnaire="minor", name="minor.pdf")[0].exit_code == 0
    assert print_cli(runner, tmp_path, area="A1", count="5", name="a1.pdf")[0].exit_code == 0

    for serial in ("OWN-18", f"A2-{w}-0004", f"A1-{w}-0005", f"A2-{w + 1}-0001"):
        refused = enter(client, serial)
        html = refused.get_data(as_text=True)
        assert refused.status_code == 422 and f"编号 {serial} 不是本社区本轮印制的问卷编号，请核对" in html, serial
    wrong_form = enter(client, f"A2-{w}-0003")
    assert wrong_form.status_code == 422 and "印在《未成年人思想道德建设问卷调查》上" in wrong_form.get_data(as_text=True)
    assert enter(client, f"A2-{w}-0003", "minor").status_code == 200

    typed = enter(client, f"a2-{w}-1")  # lower case, no leading zeros: the printed A2-w-0001
    assert typed.status_code == 200 and f"已保存：编号 A2-{w}-0001" in typed.get_data(as_text=True)
    assert enter(client, f"A2-{w}-0001").status_code == 409
    assert enter(client, f"A2-{w}-0002").status_code == 200
    with app.app_context():
        keys = set(db.session().scalars(select(Response.submission_key)))
    assert keys == {f"paper:{w}:{area_id(app, 'A2')}:{s}" for s in ("OWN-17", f"A2-{w}-0001", f"A2-{w}-0002", f"A2-{w}-0003")}


def area_id(app, code: str) -> int:
    with app.app_context():
        return db.session().scalar(select(Area.id).where(Area.code == code))


def office_client(app, username: str, role: str, code: str):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, username, PASSWORD, role, code)
    client = app.test_client()
    logged_in(client, username)
    return client


def test_office_prints_within_its_scope_and_logs_the_print_run(app, city):
    with app.app_context(), db.write_transaction() as session:
        import_areas(session, OTHER_DISTRICT)
    w = wave_id(app)
    client = office_client(app, "d1", "district", "D1")
    assert client.get("/office/community/E1/paper").status_code == 404
    assert client.get("/office/community/S1/paper").status_code == 404  # not a community
    page = client.get("/office/community/A1/paper")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "还没有打印过" in html
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    form = {"wave": str(w), "questionnaire": "citizen", "count": "2"}
    assert client.post("/office/community/A1/paper", data=form).status_code == 400  # no CSRF token
    assert client.post("/office/community/E1/paper", data=form | {"csrf_token": token}).status_code == 404
    too_many = client.post("/office/community/A1/paper", data=form | {"csrf_token": token, "count": "501"})
    assert too_many.status_code == 422 and "每次印制 1 到 500 份" in too_many.get_data(as_text=True)
    printed = client.post("/office/community/A1/paper", data=form | {"csrf_token": token})
    assert printed.status_code == 200 and printed.mimetype == "application/pdf"
    assert printed.data.startswith(b"%PDF")
    listed = client.get("/office/community/A1/paper").get_data(as_text=True)
    assert f"A1-{w}-0001 至 0002" in listed and "d1" in listed
    with app.app_context():
        logs = db.session().scalars(select(ExportLog)).all()
        assert [(log.what, log.area_id, log.wave_id, log.file_format, log.rows) for log in logs] == [
            ("paper", area_id(app, "A1"), w, "pdf", 2)]
        batch = db.session().scalars(select(PaperBatch)).one()
        assert (batch.first_number, batch.last_number, batch.printed_by.username) == (1, 2, "d1")
    grid = grid_client(app, "wg", "A1")
    assert grid.get("/office/community/A1/paper").status_code == 403


def test_paper_numbering_is_the_entry_pages_numbering(app, city):
    w = wave_id(app)
    client = grid_client(app, "wangge", "A1")
    with app.app_context():
        area = db.session().scalar(select(Area).where(Area.code == "A1"))
        wave = db.session().get(Wave, w)
        for definition in bundled_definitions().values():
            numbered = numbered_items(definition)
            assert [q.number for q in numbered] == list(range(1, len(definition.items) + 1))
            printed = paper_form(area, wave, definition).questions
            assert [(p.number, p.label, p.choices) for p in printed] == [
                (q.number, q.item.label, tuple((n, c.label) for n, c in q.choices)) for q in numbered]
            # A typed number is the choice printed with it.
            for q in numbered:
                for n, choice in q.choices:
                    answers, errors = parse_paper(definition, {q.item.code: str(n)})
                    assert answers[q.item.code] == choice.code and q.item.code not in errors
    for code in ("citizen", "minor"):
        html = client.get(f"/entry/?q={code}").get_data(as_text=True)
        shown = re.findall(r'<span class="no">(\d+)\.</span> ([^<]+)</label>', html)
        with app.app_context():
            version = max(v for c, v in bundled_definitions() if c == code)
            definition = bundled_definitions()[(code, version)]
        numbered = numbered_items(definition)
        assert shown == [(str(q.number), q.item.label) for q in numbered]
        for q in numbered:
            if q.choices:
                codes = re.search(rf'id="c-{q.item.code}">([^<]+)</span>', html).group(1)
                assert codes == "　".join(f"{n} {c.label}" for n, c in q.choices)
