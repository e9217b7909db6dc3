"""Exports: every format round-trips with labels, choice labels on request, formulas neutralised,
scoping, the background job flow, and memory that does not grow with the number of rows."""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pyreadstat
import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from forms import bundled_definitions
from survey import db
from survey.auth import create_user
from survey.localtime import format_local
from survey.models import Answer, Area, ExportLog, Questionnaire, QuestionnaireVersion, Response, User, Wave
from survey.reading.export_jobs import KEEP_SECONDS, jobs
from survey.reading.exports import CHANNEL_NAMES, table_for, variable_name, write, write_csv
from tests.conftest import BACKENDS, PASSWORD, dispose, logged_in, make_app

CITIZEN = bundled_definitions()[("citizen", 1)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city with 300 responses analysed; a city, a district and a second district account."""
    folder = tmp_path_factory.mktemp("exports")
    app = make_app(request.param, folder)
    app.config["EXPORT_FOLDER"] = str(folder / "exports")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["seed-demo", "--respondents", "300"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context(), db.write_transaction() as session:
        for username, role, code in (("city", "city", "C"), ("d1", "district", "D01"), ("d1b", "district", "D01")):
            create_user(session, username, PASSWORD, role, code)
        # A comment a spreadsheet would run, on a response of district D01.
        answer = session.execute(
            select(Answer).join(Response).join(Area, Area.id == Response.area_id)
            .where(Answer.item_code == "q01", Area.code.startswith("D01")).order_by(Answer.id).limit(1)
        ).scalar_one()
        session.add(Answer(response_id=answer.response_id, item_code="comment", text='=HYPERLINK("http://evil","点我")'))
    yield app
    dispose(app)


_addresses = itertools.count(1)


def login(client, username):
    """Log ``client`` in from an address of its own (the login limit counts per address)."""
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"10.8.{n // 250}.{n % 250 + 1}"
    return logged_in(client, username)


@pytest.fixture
def city(demo):
    return login(demo.test_client(), "city")


@pytest.fixture
def district(demo):
    return login(demo.test_client(), "d1")


def stored(app, code="C"):
    """Return {response id: (community code, submitted_at, {item: value})} of citizens in the area's subtree."""
    with app.app_context():
        session = db.session()
        area = session.scalar(select(Area).where(Area.code == code))
        rows = session.execute(
            select(Response.id, Area.code, Response.submitted_at).join(Area, Area.id == Response.area_id)
            .join(QuestionnaireVersion).join(Questionnaire)
            .where(Area.path.startswith(area.path), Questionnaire.code == "citizen")
        ).all()
        answers = {}
        for rid, item, choice, typed in session.execute(select(Answer.response_id, Answer.item_code, Answer.choice_code, Answer.text)):
            answers.setdefault(rid, {})[item] = typed if typed is not None else choice
        return {rid: (community, submitted, answers.get(rid, {})) for rid, community, submitted in rows}


def test_csv_has_codes_then_chinese_labels_and_choice_codes_or_labels(demo, city):
    page = city.get("/office/area/C/export/responses.csv")
    assert page.headers["Content-Type"] == "text/csv; charset=utf-8"  # once, not twice
    data = page.get_data()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel and WPS need
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    names, labels = rows[0], rows[1]
    assert names[:11] == ["id", "community_code", "community", "street", "channel", "submitted_at", "duration_s", "score",
                          "quality_flags", "paper_serial", "entered_by"]
    assert labels[:11] == ["编号", "社区编码", "社区", "街道", "渠道", "提交时间", "用时(秒)", "满意度得分", "数据质量标记",
                           "纸质问卷编号", "录入人"]
    assert names[11:] == [i.code for i in CITIZEN.items]
    assert labels[11:] == [i.label for i in CITIZEN.items]
    truth = stored(demo)
    assert len(rows) - 2 == len(truth)
    for row in rows[2:]:
        community, submitted, answers = truth[int(row[0])]
        assert row[1] == community and row[4] in CHANNEL_NAMES.values()
        assert row[5] == format_local(submitted, "%Y-%m-%d %H:%M:%S")  # local time, not UTC
        for item in CITIZEN.items:
            value = answers.get(item.code)
            expected = "" if value is None else ("'" + value if value.startswith("=") else value)
            assert row[names.index(item.code)] == expected, item.code
    labelled = list(csv.reader(io.StringIO(city.get("/office/area/C/export/responses.csv?labels=1").get_data().decode("utf-8-sig"))))
    sex, q01 = CITIZEN.item("sex"), CITIZEN.item("q01")
    for coded, named in zip(rows[2:], labelled[2:], strict=True):
        assert named[names.index("sex")] == (sex.choice(coded[names.index("sex")]).label if coded[names.index("sex")] else "")
        assert named[names.index("q01")] == q01.choice(coded[names.index("q01")]).label
    assert {"男", "女"} <= {r[names.index("sex")] for r in labelled[2:]}


def test_xlsx_round_trips_with_numbers_for_numeric_codes_and_labels_on_request(demo, city):
    book = load_workbook(io.BytesIO(city.get("/office/area/C/export/responses.xlsx").data), read_only=True)
    rows = list(book.active.iter_rows(values_only=True))
    names = list(rows[0])
    assert rows[1][names.index("q01")] == CITIZEN.item("q01").label
    assert len(rows) - 2 == len(stored(demo))
    assert {r[names.index("q01")] for r in rows[2:]} <= {0, 1, 2, 3, 4, 5}  # numbers, not text
    assert {r[names.index("sex")] for r in rows[2:]} <= {"M", "F", None}
    assert any(isinstance(r[names.index("submitted_at")], datetime) for r in rows[2:])
    book = load_workbook(io.BytesIO(city.get("/office/area/C/export/responses.xlsx?labels=1").data), read_only=True)
    labelled = list(book.active.iter_rows(values_only=True))
    assert {r[names.index("q01")] for r in labelled[2:]} <= {c.label for c in CITIZEN.item("q01").choices}


def test_formulas_are_neutralised_in_csv_and_xlsx(demo, city):
    body = city.get("/office/area/C/export/responses.csv").get_data().decode("utf-8-sig")
    assert "'=HYPERLINK" in body and not re.search(r'(^|,)"?=HYPERLINK', body, re.M)
    rows = list(load_workbook(io.BytesIO(city.get("/office/area/C/export/responses.xlsx").data)).active.iter_rows(values_only=True))
    comments = [r[list(rows[0]).index("comment")] for r in rows[2:]]
    assert "'=HYPERLINK(\"http://evil\",\"点我\")" in comments
    assert not any(isinstance(c, str) and c.startswith("=") for r in rows for c in r)


def read_back(data: bytes, fmt: str, folder: Path):
    path = folder / f"back.{fmt}"
    path.write_bytes(data)
    return (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(path))


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_sav_and_dta_carry_variable_and_value_labels(demo, city, fmt, tmp_path):
    frame, meta = read_back(city.get(f"/office/area/C/export/responses.{fmt}").data, fmt, tmp_path)
    truth = stored(demo)
    assert len(frame) == len(truth)
    assert list(frame.columns) == ["id", "community_code", "community", "street", "channel", "submitted_at", "duration_s",
                                   "score", "quality_flags", "paper_serial", "entered_by"] + [i.code for i in CITIZEN.items]
    labels = meta.column_names_to_labels
    assert labels["community"] == "社区" and labels["submitted_at"] == "提交时间"
    for item in CITIZEN.items:
        assert labels[item.code] == item.label[:80], item.code
    values = meta.variable_value_labels
    dont_know = 0 if fmt == "sav" else "a"  # user-missing 0 in SPSS, extended missing .a in Stata
    assert values["q01"] == {5: "非常满意", 4: "满意", 3: "一般", 2: "不太满意", 1: "不满意", dont_know: "不清楚"}
    assert values["sex"] == {1: "男", 2: "女"}  # M, F: not numbers, so numbered 1..k in the questionnaire's order
    assert values["age_band"] == {n: c.label for n, c in enumerate(CITIZEN.item("age_band").choices, start=1)}
    assert "comment" not in values
    position = {c.code: n for n, c in enumerate(CITIZEN.item("sex").choices, start=1)}
    for row in frame.itertuples(index=False):
        community, submitted, answers = truth[int(row.id)]
        assert row.community_code == community
        assert row.q01 == int(answers["q01"]) if answers["q01"] != "0" else math.isnan(row.q01)
        assert row.sex == position[answers["sex"]]
        assert row.submitted_at.to_pydatetime() == submitted.astimezone(_zone(demo)).replace(tzinfo=None, microsecond=0)
    assert "=HYPERLINK(\"http://evil\",\"点我\")" in set(frame["comment"])  # Chinese intact, kept as typed
    assert set(frame["community"]) >= {"幸福社区"}
    if fmt == "sav":
        assert any("1..k" in note for note in meta.notes)


def platform_item_means(app) -> dict[str, float]:
    """Return each scored item's unweighted mean score of the city's citizens, on the 1-5 code scale (score / 20)."""
    with app.app_context():
        session = db.session()
        rows = session.execute(
            select(Answer.item_code, func.avg(Answer.score)).join(Response).join(QuestionnaireVersion).join(Questionnaire)
            .where(Questionnaire.code == "citizen", Answer.score.is_not(None)).group_by(Answer.item_code)
        ).all()
    return {item: float(mean) / 20 for item, mean in rows}


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_dont_know_is_declared_missing_and_means_equal_the_platform(demo, city, fmt, tmp_path):
    path = tmp_path / f"r.{fmt}"
    path.write_bytes(city.get(f"/office/area/C/export/responses.{fmt}").data)
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    frame, meta = reader(str(path))  # missing values become NaN, as SPSS and Stata leave them out
    kept, declared = reader(str(path), user_missing=True)
    rated = [i for i in CITIZEN.items if i.type == "rating"]
    dont_know = {i.code: [c for c in i.choices if i.handler.value(c) is None] for i in CITIZEN.items
                 if i.handler.scored or i.handler.rate}
    dont_know = {code: found for code, found in dont_know.items() if found}
    assert len(rated) >= 10 and set(i.code for i in rated) <= set(dont_know)
    if fmt == "sav":
        assert set(declared.missing_ranges) == set(dont_know)
        for item in rated:
            assert [r["lo"] for r in declared.missing_ranges[item.code]] == [0.0]
            assert declared.variable_value_labels[item.code][0] == dont_know[item.code][0].label
        assert "用户缺失值" in "".join(meta.notes)
    else:
        assert declared.missing_user_values == {code: ["a"] for code in dont_know}
    platform = platform_item_means(demo)
    for item in rated:
        assert (kept[item.code].astype(str) == ("0.0" if fmt == "sav" else "a")).any(), item.code  # some said 不清楚
        assert frame[item.code].mean() == pytest.approx(platform[item.code], rel=1e-12), item.code  # SPSS-style mean


def test_r_haven_reads_dont_know_as_missing(demo, city, tmp_path):
    path = tmp_path / "responses.sav"
    path.write_bytes(city.get("/office/area/C/export/responses.sav").data)
    script = (f'library(haven); d <- read_sav("{path}"); u <- read_sav("{path}", user_na = TRUE); '
              'v <- unclass(u$q01); '
              'cat(sprintf("%.12f", mean(d$q01, na.rm = TRUE)), attr(u$q01, "na_values"), sum(v %in% attr(u$q01, "na_values")), '
              'sum(v == 0, na.rm = TRUE), sep = "\n")')
    result = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    mean, declared, user_na, zeros = result.stdout.split()
    assert float(mean) == pytest.approx(platform_item_means(demo)["q01"], rel=1e-10)
    assert declared == "0" and int(user_na) == int(zeros) > 0


def _zone(app):
    return app.extensions["timezone"]


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_labels_option_writes_choice_labels_in_statistics_files(demo, city, fmt, tmp_path):
    frame, meta = read_back(city.get(f"/office/area/C/export/responses.{fmt}?labels=1").data, fmt, tmp_path)
    assert set(frame["q01"].dropna()) <= {c.label for c in CITIZEN.item("q01").choices}
    assert set(frame["sex"].dropna()) == {"男", "女"}
    assert meta.column_names_to_labels["q01"] == CITIZEN.item("q01").label[:80]


@pytest.mark.parametrize("what", ["estimates", "problems"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "dta"])
def test_estimates_and_problems_in_every_format_for_a_district(demo, district, what, fmt, tmp_path):
    own = {a for a in _communities(demo, "D01")}
    url = f"/office/area/D01/export/{what}.{fmt}" if what == "estimates" else f"/office/area/D01/problems?format={fmt}"
    response = district.get(url)
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment;")
    assert "-citizen-" in response.headers["Content-Disposition"]  # the questionnaire's code names the file
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
        header, codes = rows[0], [r[0 if what == "estimates" else 1] for r in rows[1:]]
    elif fmt == "xlsx":
        rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
        header, codes = list(rows[0]), [r[0 if what == "estimates" else 1] for r in rows[1:]]
    else:
        frame, meta = read_back(response.data, fmt, tmp_path)
        header = [meta.column_names_to_labels[c] for c in frame.columns]
        codes = list(frame["area_code" if what == "estimates" else "community_code"])
    assert header[0] == ("区域编码" if what == "estimates" else "序号")
    assert codes and set(codes) <= own


def _communities(app, code):
    with app.app_context():
        session = db.session()
        district = session.scalar(select(Area).where(Area.code == code))
        return set(session.scalars(select(Area.code).where(Area.level == "community", Area.path.startswith(district.path))))


@pytest.mark.parametrize("fmt", ["csv", "sav"])
def test_a_district_export_has_only_its_district(demo, district, fmt, tmp_path):
    own = _communities(demo, "D01")
    data = district.get(f"/office/area/D01/export/responses.{fmt}").data
    if fmt == "csv":
        codes = [r[1] for r in list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[2:]]
    else:
        codes = list(read_back(data, fmt, tmp_path)[0]["community_code"])
    assert codes and set(codes) <= own
    assert len(codes) == len(stored(demo, "D01"))
    assert district.get(f"/office/area/D02/export/responses.{fmt}").status_code == 404


def download(client, url):
    """GET a file that is sent from disk; return the response after closing its file."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


@pytest.fixture
def small_threshold(demo):
    before = demo.config["EXPORT_DIRECT_ROWS"]
    demo.config["EXPORT_DIRECT_ROWS"] = 10
    yield
    demo.config["EXPORT_DIRECT_ROWS"] = before


def test_a_large_export_runs_in_the_background_for_its_user_only(demo, district, small_threshold, tmp_path):
    # A link to a large export offers the background job instead of writing it in the request.
    offer = district.get("/office/area/D01/export/responses.sav?labels=1")
    assert offer.status_code == 200 and "数据较多" in offer.get_data(as_text=True)
    assert 'selected value="sav"' in offer.get_data(as_text=True) and 'checked id="labels"' in offer.get_data(as_text=True)
    started = district.post("/office/area/D01/exports", data={
        "csrf_token": csrf(offer.get_data(as_text=True)), "what": "responses", "fmt": "sav"})
    assert started.status_code == 303
    page_url = started.headers["Location"]
    job_id = page_url.rsplit("/", 1)[1]
    jobs(demo).wait(job_id, timeout=120)
    files = list(jobs(demo).folder.glob(f"{job_id}.*"))
    assert {f.suffix for f in files} == {".sav", ".json"} and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    state = district.get(f"/office/exports/{job_id}/state").get_json()
    expected = len(stored(demo, "D01"))
    assert state == {"state": "done", "done": expected, "total": expected}
    page = district.get(page_url).get_data(as_text=True)
    assert "导出完成" in page and f"/office/exports/{job_id}/download" in page
    # Somebody else, even of the same district, gets nothing.
    other = login(demo.test_client(), "d1b")
    for url in (page_url, f"/office/exports/{job_id}/state", f"/office/exports/{job_id}/download"):
        assert other.get(url).status_code == 404, url
    assert login(demo.test_client(), "city").get(f"/office/exports/{job_id}/download").status_code == 404
    got = download(district, f"/office/exports/{job_id}/download")
    assert got.status_code == 200 and "attachment" in got.headers["Content-Disposition"]
    frame, meta = read_back(got.data, "sav", tmp_path)
    assert len(frame) == expected and set(frame["community_code"]) <= _communities(demo, "D01")
    assert meta.variable_value_labels["q01"][5] == "非常满意"
    with demo.app_context():
        logged = db.session().execute(
            select(ExportLog.what, ExportLog.file_format, ExportLog.rows).join(User).where(User.username == "d1")
        ).all()
    assert ("responses", "sav", expected) in logged
    # The form needs its CSRF token.
    assert district.post("/office/area/D01/exports", data={"what": "responses", "fmt": "csv"}).status_code == 400


def test_job_page_shows_progress_and_refreshes_without_script(demo, district):
    with demo.app_context():
        user_id = db.session().scalar(select(User.id).where(User.username == "d1"))
        area_id = db.session().scalar(select(Area.id).where(Area.code == "D01"))
    release = threading.Event()

    def build():
        session = demo.extensions["db_sessionmaker"]()
        table = table_for(session, "responses", session.get(Area, area_id), session.scalar(select(Wave.id)), "citizen")
        inner = table.rows

        def rows():
            release.wait(60)
            yield from inner()

        table.rows = rows
        return table, session.close

    job = jobs(demo).start(user_id, "responses", "csv", False, "答卷.csv", area_id, None, 123, build)
    try:
        page = district.get(f"/office/exports/{job.id}")
        html = page.get_data(as_text=True)
        assert "正在导出… <span id=\"export-progress\">0/123</span>" in html
        assert f'href="/office/exports/{job.id}">刷新</a>' in html
        assert "/static/export.js" in html and "<script>" not in html  # the CSP allows no inline script
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert district.get(f"/office/exports/{job.id}/download").status_code == 404  # not ready yet
    finally:
        release.set()
        jobs(demo).wait(job.id, timeout=60)
    assert download(district, f"/office/exports/{job.id}/download").status_code == 200


def test_files_expire_after_a_day(demo, district, small_threshold):
    offer = district.get("/office/area/D01/exports").get_data(as_text=True)
    started = district.post("/office/area/D01/exports", data={"csrf_token": csrf(offer), "what": "responses", "fmt": "csv"})
    job_id = started.headers["Location"].rsplit("/", 1)[1]
    jobs(demo).wait(job_id, timeout=120)
    assert download(district, f"/office/exports/{job_id}/download").status_code == 200
    folder = Path(demo.config["EXPORT_FOLDER"])
    state = json.loads((folder / f"{job_id}.json").read_text())
    (folder / f"{job_id}.json").write_text(json.dumps(state | {"created": state["created"] - KEEP_SECONDS - 1}))
    assert district.get(f"/office/exports/{job_id}/download").status_code == 404
    day_ago = time.time() - KEEP_SECONDS - 60
    for path in folder.glob(f"{job_id}.*"):
        os.utime(path, (day_ago, day_ago))
    assert district.get(f"/office/exports/{job_id}").status_code == 404
    assert not list(folder.glob(f"{job_id}.*"))  # swept
    assert district.get("/office/exports/..%2F..%2Fsecret").status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "sav", "dta"])
def test_flask_export_writes_every_format(demo, fmt, tmp_path):
    out = tmp_path / f"d1.{fmt}"
    result = demo.test_cli_runner().invoke(args=["export", "responses", "--format", fmt, "--area", "D01", "--labels",
                                                 "--questionnaire", "citizen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = len(stored(demo, "D01"))
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))[2:]
        values = {r[18] for r in rows}
    elif fmt == "xlsx":
        book = load_workbook(out, read_only=True)
        rows = list(book.active.iter_rows(values_only=True))[2:]
        book.close()  # a read-only workbook keeps its file open until closed; left to the GC it warns in a later test
        values = {r[18] for r in rows}
    else:
        frame, _ = (pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta)(str(out))
        rows, values = frame, set(frame["q01"])
    assert len(rows) == expected
    assert values <= {c.label for c in CITIZEN.item("q01").choices}
    wave = demo.test_cli_runner().invoke(args=["export", "estimates", "--wave", "没有这一轮", "--out", str(out)])
    assert wave.exit_code != 0 and "no wave" in wave.output


def test_variable_names_are_valid_for_spss_and_stata():
    taken: set[str] = set()
    names = [variable_name(code, taken) for code in ("q01", "q01", "2nd", "年龄", "by", "a" * 40)]
    assert names[:2] == ["q01", "q01_2"]
    for name in names:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", name), name
    assert len(set(names)) == len(names)


def _fill(app, responses: int) -> None:
    """Add ``responses`` citizen responses with all their answers, in bulk (SQLite)."""
    with app.app_context(), db.write_transaction() as session:
        wave, version = session.execute(text(
            "SELECT w.id, v.id FROM wave w, questionnaire_version v JOIN questionnaire q ON q.id = v.questionnaire_id "
            "WHERE q.code = 'citizen'")).one()
        session.execute(text("DELETE FROM answer"))
        session.execute(text("DELETE FROM response"))
        session.execute(text(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :n) "
            "INSERT INTO response (id, wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at, "
            "duration_s, attributes, score, scored_items, flag_speeder, flag_straightline, flag_repeat_device) "
            "SELECT n, :wave, :version, (SELECT min(id) FROM area WHERE level = 'community') + n % 3, 'qr', 'k' || n, "
            "'2026-11-01 08:00:00.000000', 120, '{\"sex\": \"F\"}', 80, 10, 0, 0, 0 FROM g"), {"n": responses, "wave": wave, "version": version})
        for item in CITIZEN.items:
            value = "'楼道灯坏了' || id" if item.type == "text" else f"'{item.choices[0].code}'"
            column = "text" if item.type == "text" else "choice_code"
            session.execute(text(f"INSERT INTO answer (response_id, item_code, {column}) SELECT id, '{item.code}', {value} FROM response"))


def test_memory_does_not_grow_with_the_number_of_responses(tmp_path):
    app = make_app("sqlite", tmp_path)
    from survey.areas import import_areas
    from survey.waves import create_wave
    from tests.conftest import SMALL_CITY

    with app.app_context(), db.write_transaction() as session:
        import_areas(session, SMALL_CITY)
        create_wave(session, "第一轮", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), ["citizen"])
    peaks = {}
    for responses in (5_000, 25_000):
        _fill(app, responses)
        with app.app_context(), open(os.devnull, "wb") as sink:
            session = db.session()
            city = session.scalar(select(Area).where(Area.code == "C"))
            table = table_for(session, "responses", city, session.scalar(select(Wave.id)), "citizen", chunk=1000)
            assert table.total == responses
            tracemalloc.start()
            write_csv(table, sink)
            peaks[responses] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    # Five times the rows, about the same peak (a chunk of rows: 0.93 times here); an export holding every
    # row in memory would need about five times as much (4.9 times with one chunk of all the rows).
    assert peaks[25_000] < 1.5 * peaks[5_000], peaks
    dispose(app)


def test_r_reads_the_sav_with_value_labels(demo, city, tmp_path):
    """R (haven, a Debian package listed in scripts/system-deps.sh) opens the .sav with its labels."""
    assert "r-cran-haven" in (ROOT / "scripts" / "system-deps.sh").read_text()
    assert shutil.which("Rscript"), "R is missing: run scripts/system-deps.sh test (apt-get install r-cran-haven)"
    path = tmp_path / "responses.sav"
    path.write_bytes(city.get("/office/area/C/export/responses.sav").data)
    script = (f'library(haven); d <- read_sav("{path}"); l <- attr(d$q01, "labels"); '
              'cat(names(l)[l == 5], attr(d$q01, "label"), names(attr(d$sex, "labels")), nrow(d), sep = "\\n")')
    result = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "非常满意" and lines[1] == CITIZEN.item("q01").label
    assert lines[2:4] == ["男", "女"] and int(lines[4]) == len(stored(demo))


def test_writing_to_a_file_path_in_every_format(demo, tmp_path):
    with demo.app_context():
        session = db.session()
        city = session.scalar(select(Area).where(Area.code == "C"))
        for fmt in ("csv", "xlsx", "sav", "dta"):
            write(table_for(session, "responses", city, session.scalar(select(Wave.id)), "citizen"), fmt, tmp_path / f"r.{fmt}")
            assert (tmp_path / f"r.{fmt}").stat().st_size > 1000
        with pytest.raises(ValueError, match="unknown export format"):
            write(table_for(session, "responses", city, session.scalar(select(Wave.id)), "citizen"), "pdf", tmp_path / "r.pdf")


HOSTILE_LABELS = ["=HYPERLINK(\"http://evil.example\",\"点此\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\t=1"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_question_labels_in_the_header_never_become_formulas(tmp_path, fmt):
    from survey.reading.exports import Column, Table

    columns = [Column(f"q{i}", label) for i, label in enumerate(HOSTILE_LABELS)]
    table = Table("responses", "答卷", columns, 1, lambda: iter([tuple("=1+1" for _ in columns)]))
    path = tmp_path / f"out.{fmt}"
    write(table, fmt, path)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    else:
        sheet = load_workbook(path).active
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[1] == ["'" + label for label in HOSTILE_LABELS]
    assert rows[2] == ["'=1+1"] * len(HOSTILE_LABELS)
