"""Acceptance of issue 11: a city's own XLSForm, from the office's upload to the heatmap, with no code change.

The city's questionnaire (tests/forms/workbooks.py CITY_FORM) has its own topics (城市更新, 背街小巷),
a "不了解" choice with no score, a new weighting attribute (education) and a skip rule (s1 is asked
only of those who heard of the renewal). It is uploaded and published on the office page, fielded in
the open wave, gets community links, is answered on the phone, printed with serials, keyed in from
paper by serial and numbers, weighted on margins of education, analysed and shown on the office
pages under its own topic names.
"""
from __future__ import annotations

import re
import subprocess

from sqlalchemy import func, select

from survey import db
from survey.models import AnalysisRun, Answer, Area, Link, PaperBatch, Questionnaire, Response, Wave
from tests.conftest import form_fields, full_answers
from tests.forms.workbooks import city_form, workbook
from tests.survey.test_paper import grid_client, run
from tests.survey.test_questionnaire_admin import login, post, staff, upload_and_publish  # noqa: F401 (fixture)

EDUCATION_SCORE = {"primary": "1", "middle": "3", "college": "5"}  # college graduates are the happiest


def _phone_answers(n: int, shift: int) -> dict[str, str]:
    """The n-th resident of a community: education, heard of the renewal or not, and the ratings."""
    education = "primary" if n < 2 else "middle" if n < 4 else "college"
    heard = "Y" if (n + shift) % 3 else "N"
    answers = {"education": education, "heard": heard, "s2": EDUCATION_SCORE[education] if (n + shift) % 4 else "0"}
    if heard == "Y":
        answers["s1"] = EDUCATION_SCORE[education]
    else:
        answers["s1"] = "5"  # sent for a question the rule skips (a stale radio): dropped by the server
    return answers


def test_a_city_questionnaire_from_the_office_upload_to_the_heatmap(app, client, staff, runner, tmp_path):  # noqa: F811
    # 1. The city office uploads its workbook and publishes it.
    login(client, "city")
    pending, published = upload_and_publish(client, workbook(city_form()), "城市更新问卷.xlsx")
    assert published.status_code == 303, published.get_data(as_text=True)
    with app.app_context():
        wave_id = db.session().scalar(select(Wave.id))

    # 2. It is fielded in the open wave and gets community links.
    fielded = post(client, "/office/questionnaires/renewal/v1/field", wave=str(wave_id))
    assert fielded.status_code == 200 and "第一轮现在使用某市城市更新问卷第1版" in fielded.get_data(as_text=True)
    made = post(client, "/office/questionnaires/renewal/links")
    assert "renewal：3 个社区有二维码链接" in made.get_data(as_text=True)
    with app.app_context():
        tokens = dict(db.session().execute(
            select(Area.code, Link.token).join(Link.area).join(Questionnaire)
            .where(Questionnaire.code == "renewal")).all())
    assert set(tokens) == {"A1", "A2", "B1"}

    # 3. Residents answer on the phone, the skip rule included.
    resident = app.test_client()
    page = resident.get(f"/s/{tokens['A1']}").get_data(as_text=True)
    assert "某市城市更新问卷" in page and "您的文化程度" in page and "不了解" in page
    assert "（第2题选“听说过”的请回答）" in page and "data-relevant=" in page
    missing = resident.post(f"/s/{tokens['A1']}", data=form_fields(page) | {"education": "middle", "heard": "Y", "s2": "3"})
    assert missing.status_code == 422 and "请选择一项" in missing.get_data(as_text=True)  # s1 is asked: required
    people = []
    for community, shift in (("A1", 0), ("A2", 1), ("B1", 2)):
        for n in range(9):
            answers = _phone_answers(n, shift)
            phone = app.test_client()
            fields = form_fields(phone.get(f"/s/{tokens[community]}").get_data(as_text=True))
            thanks = phone.post(f"/s/{tokens[community]}", data=fields | answers)
            assert thanks.status_code == 200 and "提交成功" in thanks.get_data(as_text=True), answers
            people.append((community, answers))
    with app.app_context():
        session = db.session()
        stored = session.execute(select(Response.id, Response.attributes).order_by(Response.id)).all()
        assert [a for _, a in stored] == [{"education": p["education"]} for _, p in people]
        s1 = dict(session.execute(select(Answer.response_id, Answer.choice_code).where(Answer.item_code == "s1")).all())
    for (response_id, _), (_, answers) in zip(stored, people, strict=True):
        assert s1.get(response_id) == (answers["s1"] if answers["heard"] == "Y" else None)

    # 4. The office prints numbered copies for 甲社区 (the paper button); serials and QR read back.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get("/office/community/A1/paper").get_data(as_text=True)).group(1)
    printed = client.post("/office/community/A1/paper",
                          data={"csrf_token": token, "wave": str(wave_id), "questionnaire": "renewal", "count": "2"})
    assert printed.status_code == 200 and printed.mimetype == "application/pdf"
    pdf = tmp_path / "renewal.pdf"
    pdf.write_bytes(printed.get_data())
    text = run(["pdftotext", "-layout"], pdf)
    for expected in ("某市城市更新问卷", "甲社区", f"A1-{wave_id}-0001", f"A1-{wave_id}-0002", "1. 您的文化程度",
                     "□4 不了解", "3. 您对老旧小区改造满意吗？ （第2题选“听说过”的请回答）"):
        assert expected in text, expected
    subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(next(tmp_path.glob("page*.png")))],
                             capture_output=True, text=True).stdout.split()
    assert decoded == [f"A1-{wave_id}-0001"]
    with app.app_context():
        assert db.session().scalars(select(PaperBatch.questionnaire_code)).all() == ["renewal"]

    # 5. A grid worker keys the papers in: the entry page lists the wave's questionnaires.
    grid = grid_client(app, "wangge", "A1")
    listing = grid.get("/entry/").get_data(as_text=True)
    assert "某市城市更新问卷" in listing and "全国文明城市创建工作市民问卷调查" in listing
    entry = grid.get("/entry/?q=renewal").get_data(as_text=True)
    assert "您对老旧小区改造满意吗？" in entry and "（第2题选“听说过”时填写）" in entry

    def key_in(serial: str, **numbers: str):
        return grid.post("/entry/?q=renewal", data={"csrf_token": grid.csrf, "serial": serial} | numbers)

    # Heard: 2 (没听说过), yet a number typed for question 3: refused by the skip rule.
    skipped = key_in(f"A1-{wave_id}-0001", education="3", heard="2", s1="1", s2="4")
    assert skipped.status_code == 422
    assert "本题只有第2题选“听说过”时才填写" in skipped.get_data(as_text=True)
    assert key_in(f"A1-{wave_id}-0001", education="3", heard="2", s2="4").status_code == 200
    asked = key_in(f"A1-{wave_id}-0002", education="3", heard="1", s2="1")
    assert asked.status_code == 422 and "未填写" in asked.get_data(as_text=True)
    saved = key_in(f"A1-{wave_id}-0002", education="3", heard="1", s1="1", s2="1", comment="小巷路灯太暗")
    assert saved.status_code == 200 and f"已保存：编号 A1-{wave_id}-0002" in saved.get_data(as_text=True)
    assert key_in(f"A1-{wave_id}-0003", education="1", heard="1", s1="1", s2="1").status_code == 422  # not printed
    with app.app_context():
        paper = db.session().execute(select(Response.attributes, Response.score).where(Response.channel == "paper")
                                     .order_by(Response.id)).all()
    assert paper == [({"education": "college"}, None), ({"education": "college"}, 100.0)]  # 不了解: no score

    # 6. Margins on the new attribute, then the analysis: raked on community and education.
    margins = tmp_path / "margins.csv"
    margins.write_text("variable,category,total\neducation,primary,6000\neducation,middle,4000\neducation,college,2000\n",
                       encoding="utf-8")
    imported = runner.invoke(args=["import-margins", str(margins), "--questionnaire", "renewal"])
    assert imported.exit_code == 0 and "Imported 3 margin rows for renewal" in imported.output, imported.output
    analysed = runner.invoke(args=["analyze", "--questionnaire", "renewal", "--include-flagged"])
    assert analysed.exit_code == 0, analysed.output
    with app.app_context():
        scored = db.session().scalar(select(func.count()).where(Response.score.is_not(None)))
    assert 25 <= scored < 29  # those who answered only 不了解 (or were not asked) have no score
    assert f"(renewal): {scored} responses" in analysed.output
    with app.app_context():
        run_ = db.session().scalars(select(AnalysisRun)).one()
        assert run_.questionnaire_code == "renewal"
        assert set(run_.summary["rake"]["variables"]) == {"community", "education"}

    # 7. The office pages show it under its own topic names (the only questionnaire analysed).
    city_page = client.get("/office/area/C")
    html = city_page.get_data(as_text=True)
    assert city_page.status_code == 200
    header = re.search(r"<thead>.*?</thead>", html, re.S).group(0)
    assert "城市更新" in header and "背街小巷" in header
    assert "环境卫生" not in html  # no citizen topic
    assert 'href="/office/area/D1"' in html or "/office/area/D1" in html
    community = client.get("/office/community/A1?q=renewal").get_data(as_text=True)
    assert "城市更新" in community and "背街小巷" in community and "您对背街小巷整治满意吗？" in community
    assert client.get("/office/area/C?q=citizen").status_code == 404  # no citizen results yet

    # With the citizen questionnaire analysed too, the office picks which one it sees.
    for community_code, token_ in staff.items():
        for _ in range(2):
            citizen = app.test_client()
            fields = form_fields(citizen.get(f"/s/{token_}").get_data(as_text=True))
            assert citizen.post(f"/s/{token_}", data=fields | full_answers()).status_code == 200, community_code
    assert runner.invoke(args=["analyze", "--include-flagged"]).exit_code == 0
    default = client.get("/office/area/C").get_data(as_text=True)
    assert "环境卫生" in default and '<option value="renewal">某市城市更新问卷</option>' in default
    chosen = client.get("/office/area/C?q=renewal").get_data(as_text=True)
    assert '<option value="renewal" selected>' in chosen and "背街小巷" in chosen
    assert 'name="q" value="renewal"' in chosen  # the wave picker keeps the questionnaire
    assert "/office/area/D1?q=renewal" in chosen  # and so do the heatmap's links, the breadcrumbs,
    assert re.search(r'href="/office/area/C/report\.pdf\?[^"]*q=renewal"', chosen)  # the report and exports
    assert "/office/area/C/problems" in chosen and "/office/area/C/problems?q=" not in default
    report = client.get(f"/office/area/C/report.pdf?wave={wave_id}&q=renewal")
    assert report.status_code == 200 and report.mimetype == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(report.get_data())
    assert "背街小巷" in run(["pdftotext"], tmp_path / "report.pdf")
    assert client.get("/office/area/C/problems?q=renewal").status_code == 200
