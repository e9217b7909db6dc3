"""The responses export written by PostgreSQL (COPY, survey.reading.exports_pg) gives the cells of the
generic path on the same data: CSV byte for byte, and the DataFrame behind .sav/.dta value for value,
with codes or labels, for the city and a district, for each wave. On SQLite the generic path runs."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy import delete, select, text, update

from survey import db
from survey.auth import create_user
from survey.models import Answer, Area, Questionnaire, QuestionnaireVersion, Response, Wave
from survey.reading.exports import csv_chunks, round_score, table_for, to_frame, write
from tests.conftest import BACKENDS, PASSWORD, dispose, make_app

# Answers a CSV writer and a spreadsheet must get right: separators, quotes, line breaks, formulas, Chinese.
AWKWARD = ['逗号,引号"和\n换行', "=1+1", "-开头的意见", "  前后空格  ", "\\.", 'only "quotes"', "第二行\r\n回车"]


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, tmp_path_factory):
    """The demo city with two waves, and answers that are awkward to write."""
    app = make_app(request.param, tmp_path_factory.mktemp("copy"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--respondents", "240", "--previous-wave"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.write_transaction() as session:
        # Citizens of the latest wave in district D01 (so every case below holds some of them).
        citizen = select(QuestionnaireVersion.id).join(Questionnaire).where(Questionnaire.code == "citizen")
        latest = select(Wave.id).order_by(Wave.opens_at.desc()).limit(1)
        district = select(Area.id).where(Area.code.startswith("D01"))
        ids = session.scalars(
            select(Response.id).where(Response.questionnaire_version_id.in_(citizen), Response.area_id.in_(district),
                                      Response.wave_id == latest.scalar_subquery())
            .order_by(Response.id)).all()
        assert len(set(ids)) == len(ids) > 7 * len(AWKWARD)
        awkward = [ids[n * 7] for n in range(len(AWKWARD))]
        session.execute(delete(Answer).where(Answer.response_id.in_(awkward), Answer.item_code == "comment"))
        for n, words in enumerate(AWKWARD):
            session.add(Answer(response_id=ids[n * 7], item_code="comment", text=words))
        # An item answered twice (the greatest answer counts), an empty answer, a code the questionnaire
        # lacks, an item no version asks.
        session.add(Answer(response_id=ids[3], item_code="q01", choice_code="1"))
        session.add(Answer(response_id=ids[3], item_code="q01", choice_code="5"))
        session.add(Answer(response_id=ids[3], item_code="q02", choice_code=""))
        session.add(Answer(response_id=ids[4], item_code="sex", choice_code="X"))
        session.add(Answer(response_id=ids[5], item_code="q03", choice_code="9"))
        session.add(Answer(response_id=ids[5], item_code="nosuchitem", choice_code="1"))
        # Scores whose rounding is a tie, flags, an empty duration, a fraction of a second.
        session.execute(update(Response).where(Response.id == ids[6]).values(score=73.125, flag_speeder=True,
                                                                             flag_repeat_device=True, duration_s=None))
        session.execute(update(Response).where(Response.id == ids[8]).values(score=0.285, duration_s=2.5))
        session.execute(update(Response).where(Response.id == ids[9]).values(score=None, duration_s=3.5))
        # Papers keyed in: their serials and who keyed them (one key of an earlier format, without a serial).
        community = session.scalar(select(Area.code).where(Area.id == session.get(Response, ids[10]).area_id))
        grid = create_user(session, "grid01", PASSWORD, "grid", community)
        for n, key in ((10, "paper:1:2:D01S1C1-2-0007"), (11, "paper:1:2:-0008"), (12, "demo-paper-old")):
            session.execute(update(Response).where(Response.id == ids[n]).values(channel="paper", submission_key=key,
                                                                                 entered_by_id=grid.id))
    yield app
    dispose(app)


def tables(app, area_code: str, wave_id: int):
    session = db.session()
    area = session.scalar(select(Area).where(Area.code == area_code))
    return (table_for(session, "responses", area, wave_id, "citizen", chunk=50),
            table_for(session, "responses", area, wave_id, "citizen", chunk=50, copy=False))


def cases(app):
    with app.app_context():
        waves = db.session().scalars(select(Wave.id).order_by(Wave.id)).all()
    assert len(waves) == 2
    return [(area, wave) for area in ("C", "D01") for wave in waves]


def test_the_copy_path_runs_on_postgresql_only(demo):
    with demo.app_context():
        fast, generic = tables(demo, "C", db.session().scalar(select(Wave.id).order_by(Wave.id.desc())))
        assert generic.copy is None
        assert (fast.copy is not None) == (demo.config["TEST_BACKEND"] == "postgresql")
        db.session().rollback()


@pytest.mark.parametrize("labels", [False, True])
def test_csv_is_the_generic_csv_byte_for_byte(demo, labels):
    seen = set()
    for area, wave in cases(demo):
        with demo.app_context():
            fast, generic = tables(demo, area, wave)
            expected = b"".join(csv_chunks(generic, labels))
            # Both ways to the answers: grouping all of them in the id range, or a lookup per response.
            for grouped in ((True, False) if fast.copy is not None else (None,)):
                if fast.copy is not None:
                    fast.copy.grouped = grouped
                done = []
                body = b"".join(csv_chunks(fast, labels, done.append))
                assert body == expected, grouped
                assert done[-1] == fast.total == generic.total
                db.session().rollback()
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert len(rows) == fast.total + 2
        seen |= {cell for row in rows[2:] for cell in row}
    # The awkward data is in the files compared.
    assert {"'=1+1", "'-开头的意见", '逗号,引号"和\n换行', "73.13", "0.29", "2", "4", "D01S1C1-2-0007", "'-0008",
            "grid01"} <= seen


@pytest.mark.parametrize("labels", [False, True])
def test_statistics_frame_is_the_generic_frame(demo, labels):
    for area, wave in cases(demo):
        with demo.app_context():
            fast, generic = tables(demo, area, wave)
            expected, expected_labels = to_frame(generic, labels)
            for grouped in ((True, False) if fast.copy is not None else (None,)):
                if fast.copy is not None:
                    fast.copy.grouped = grouped
                done = []
                frame, value_labels = to_frame(fast, labels, done.append)
                db.session().rollback()
                pd.testing.assert_frame_equal(frame, expected, check_exact=True)
                assert value_labels == expected_labels
                assert done[-1] == len(frame) == fast.total


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_statistics_files_read_back_equal(demo, fmt, tmp_path):
    with demo.app_context():
        wave = db.session().scalar(select(Wave.id).order_by(Wave.id.desc()))
        fast, generic = tables(demo, "C", wave)
        write(fast, fmt, tmp_path / f"fast.{fmt}")
        write(generic, fmt, tmp_path / f"generic.{fmt}")
        db.session().rollback()
    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    (frame, meta), (expected, expected_meta) = read(str(tmp_path / f"fast.{fmt}")), read(str(tmp_path / f"generic.{fmt}"))
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert meta.variable_value_labels == expected_meta.variable_value_labels
    assert meta.column_labels == expected_meta.column_labels
    assert "逗号,引号\"和\n换行" in set(frame["comment"])


def test_round_score_rounds_as_postgresql(demo):
    """The generic path's rounding is PostgreSQL's round(score::numeric, 2), ties included."""
    values = [73.125, 0.285, 0.125, 2.675, 1.005, 66.666666666666671, 80.0, 99.995, 12.3449999999999]
    with demo.app_context():
        if demo.config["TEST_BACKEND"] != "postgresql":
            assert [round_score(v) for v in values] == [73.13, 0.29, 0.13, 2.68, 1.01, 66.67, 80.0, 100.0, 12.34]
            return
        session = db.session()
        for value in values:
            assert round_score(value) == session.scalar(text("SELECT round(CAST(:v AS float8)::numeric, 2)::float8"), {"v": value})
        session.rollback()


def test_flask_export_uses_the_copy_path_with_progress(demo, tmp_path):
    out = tmp_path / "d01.csv"
    result = demo.test_cli_runner().invoke(args=["export", "responses", "--area", "D01", "--labels", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with demo.app_context():
        fast, generic = tables(demo, "D01", db.session().scalar(select(Wave.id).order_by(Wave.id.desc())))
        assert out.read_bytes() == b"".join(csv_chunks(generic, True))
        db.session().rollback()
    assert f"{generic.total} rows" in result.output


def test_rows_stored_after_the_count_are_left_out(demo):
    """The export holds the rows up to the highest id when it was asked (its progress total)."""
    with demo.app_context():
        session = db.session()
        wave = session.scalar(select(Wave.id).order_by(Wave.id.desc()))
        fast, _ = tables(demo, "C", wave)
        session.rollback()
        with db.write_transaction() as writer:
            row = writer.execute(select(Response).where(Response.wave_id == wave).limit(1)).scalar_one()
            clone = {c.key: getattr(row, c.key) for c in Response.__table__.columns if c.key != "id"}
            clone["submission_key"] = "later-" + clone["submission_key"]
            writer.add(Response(**clone))
        try:
            body = b"".join(csv_chunks(fast))
            assert len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) == fast.total + 2
        finally:
            session.rollback()
            with db.write_transaction() as writer:
                writer.execute(text("DELETE FROM response WHERE submission_key LIKE 'later-%'"))


def test_a_download_left_halfway_leaves_the_connection_usable(demo):
    """A client that goes away mid-download closes the stream: COPY is cancelled, the session rolls back."""
    with demo.app_context():
        session = db.session()
        wave = session.scalar(select(Wave.id).order_by(Wave.id.desc()))
        fast, _ = tables(demo, "C", wave)
        stream = fast.copy.csv(False) if fast.copy is not None else csv_chunks(fast)
        first = next(stream)
        assert first
        stream.close()
        session.rollback()
        assert session.scalar(select(Response.id).where(Response.wave_id == wave).limit(1)) is not None
        session.rollback()
