"""Respondent attributes are the questionnaire's: stored in ``response.attributes``, weighted on when margins name them."""
from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text

from analysis.pipeline import analyze
from forms.xlsform import read_xlsform
from survey import create_app, db
from survey.areas import import_areas
from survey.links import make_community_links
from survey.migrate import alembic_config, current_revision, upgrade
from survey.models import AnalysisRun, Answer, Area, AreaResult, Questionnaire, QuestionnaireVersion, Response, Wave
from survey.plans import score_cells
from survey.questionnaires import install_bundled
from survey.results import import_margins, run_analysis
from survey.waves import create_wave
from tests.conftest import BACKENDS, POSTGRES_URL, SMALL_CITY, _reset_postgres, dispose, form_fields
from tests.forms.workbooks import city_form, workbook

SUBMITTED = "2026-11-01 08:00:00.000000"  # as text: the same on SQLite and PostgreSQL
AGES = ["18-29", "30-44", "45-59", "60+"]
OLD_MARGINS = "variable,category,total\nsex,M,5900\nsex,F,6100\nage_band,18-29,2000\nage_band,30-44,3000\n" \
              "age_band,45-59,3500\nage_band,60+,3500\n"


# Migration 0008: the four fixed columns become JSON members ------------------------------------

@pytest.fixture(params=BACKENDS)
def old_app(request, tmp_path):
    """An app whose database is at revision 0007 (fixed attribute columns), with a city and a wave."""
    if request.param == "postgresql":
        _reset_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "SERVER_NAME": "survey.test",
                      "HOUSEKEEPING_INTERVAL_S": 0})
    with app.app_context():
        upgrade(db.engine(), "0007")
        with db.write_transaction() as session:
            install_bundled(session)
            import_areas(session, SMALL_CITY)
            now = datetime.now(UTC)
            create_wave(session, "旧轮次", now - timedelta(days=1), now + timedelta(days=30), ["citizen", "minor"])
    yield app
    dispose(app)


def _old_style_responses(session) -> pd.DataFrame:
    """Insert citizen responses (and one pupil's) as revision 0007 stored them; return the citizens'."""
    rng = np.random.default_rng(11)
    wave = session.scalar(select(Wave.id))
    versions = dict(session.execute(
        select(Questionnaire.code, func.max(QuestionnaireVersion.id)).join(Questionnaire).group_by(Questionnaire.code)).all())
    areas = dict(session.execute(select(Area.code, Area.id)).all())
    rows = []
    for n in range(60):
        community, sex, age = ("A1", "A2", "B1")[n % 3], "MF"[n % 2], AGES[(n // 2) % 4]
        resident = None if n % 10 == 0 else "Y"
        ratings = [int(np.clip(3 + (age == "60+") + rng.integers(-1, 2), 1, 5)) for _ in range(10)]
        score = float(np.mean([20.0 * r for r in ratings]))
        rows.append({"community": community, "sex": sex, "age_band": age, "resident_6m": resident, "score": score})
        response_id = session.execute(text(
            "INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at, "
            "duration_s, sex, age_band, resident_6m, score, scored_items, flag_speeder, flag_straightline, "
            "flag_repeat_device) VALUES (:w, :v, :a, 'qr', :k, :t, 300, :sex, :age, :res, :score, 10, false, false, false) "
            "RETURNING id"), {"w": wave, "v": versions["citizen"], "a": areas[community], "k": f"old-{n}",
                              "t": SUBMITTED, "sex": sex, "age": age, "res": resident, "score": score}).scalar_one()
        for i, rating in enumerate(ratings, start=1):
            session.execute(text("INSERT INTO answer (response_id, item_code, choice_code, score) VALUES (:r, :i, :c, :s)"),
                            {"r": response_id, "i": f"q{i:02d}", "c": str(rating), "s": 20.0 * rating})
    session.execute(text(
        "INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at, "
        "grade_band, score, scored_items, flag_speeder, flag_straightline, flag_repeat_device) "
        "VALUES (:w, :v, :a, 'school', 'old-pupil', :t, 'J1-3', 80, 10, false, false, false)"),
        {"w": wave, "v": versions["minor"], "a": areas["D1"], "t": SUBMITTED})
    return pd.DataFrame(rows)


def test_migration_0008_moves_the_attribute_columns_into_json_and_the_analysis_is_unchanged(old_app):
    with old_app.app_context():
        with db.write_transaction() as session:
            respondents = _old_style_responses(session)
            import_margins(session, OLD_MARGINS)
        upgrade(db.engine(), "0008")  # this migration alone; later ones have tests of their own
        assert current_revision(db.engine()) == "0008"
        columns = {c["name"] for c in inspect(db.engine()).get_columns("response")}
        assert "attributes" in columns and not columns & {"sex", "age_band", "resident_6m", "grade_band"}
        upgrade(db.engine())  # and the later revisions (the analysis needs them)
        session = db.session()
        stored = dict(session.execute(select(Response.submission_key, Response.attributes)).all())
        assert stored["old-0"] == {"sex": "M", "age_band": "18-29"}  # the blank residence is left out
        assert stored["old-1"] == {"sex": "F", "age_band": "18-29", "resident_6m": "Y"}
        assert stored["old-pupil"] == {"grade_band": "J1-3"}
        assert session.scalar(select(func.count(Answer.id))) == 600  # no answer lost
        with db.write_transaction(session):
            run_analysis(session, session.scalars(select(Wave)).one(), include_flagged=True)
        # The numbers the engine gives on the same respondents, weighted by community, sex and age band.
        populations = session.execute(select(Area.code, Area.adult_population).where(Area.level == "community")).all()
        margins = pd.concat([pd.DataFrame([("community", c, p) for c, p in populations], columns=["variable", "category", "total"]),
                             pd.read_csv(io.StringIO(OLD_MARGINS))])
        expected = analyze(respondents, margins, by="community", items=["score"], item_matrix=False).domains.set_index("domain")
        rows = session.execute(select(Area.code, AreaResult.estimate, AreaResult.se).join(Area, Area.id == AreaResult.area_id)
                               .where(AreaResult.level == "community")).all()
        assert len(rows) == 3
        for code, estimate, se in rows:
            assert estimate == pytest.approx(expected.loc[code, "estimate"], abs=1e-9)
            assert se == pytest.approx(expected.loc[code, "se"], rel=1e-6)
        assert set(session.scalars(select(AnalysisRun)).one().summary["rake"]["variables"]) == {"community", "sex", "age_band"}
        session.rollback()

        # Downgrading puts the values back in their columns.
        config = alembic_config(db.engine())
        with db.engine().begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
        with db.engine().connect() as connection:
            back = {k: (s, a, r, g) for k, s, a, r, g in connection.execute(text(
                "SELECT submission_key, sex, age_band, resident_6m, grade_band FROM response"))}
        assert back["old-0"] == ("M", "18-29", None, None) and back["old-1"] == ("F", "18-29", "Y", None)
        assert back["old-pupil"] == (None, None, None, "J1-3")


# A questionnaire's own weighting attribute ------------------------------------------------------

EDUCATION = ["primary", "middle", "college"]
SCORES = {"5": 100.0, "3": 60.0, "1": 0.0, "0": None}  # "0" is 不了解: no score, left out of the mean


@pytest.fixture
def renewal(app):
    """The city's own questionnaire (weighting attribute ``education``) fielded in an open wave; returns link tokens."""
    imported = read_xlsform(workbook(city_form()))
    assert imported.definition.attributes == {"education": "education"}
    with app.app_context(), db.write_transaction() as session:
        questionnaire = Questionnaire(code=imported.raw["code"], title=imported.raw["title"])
        session.add(QuestionnaireVersion(questionnaire=questionnaire, version=imported.raw["version"],
                                         definition_json=imported.raw))
        session.flush()
        import_areas(session, SMALL_CITY)
        now = datetime.now(UTC)
        create_wave(session, "更新轮", now - timedelta(days=1), now + timedelta(days=30), ["renewal"])
        return {link.area.code: link.token for link in make_community_links(session, "renewal")}


def test_margins_on_a_new_attribute_make_the_raking_use_it(app, runner, renewal, tmp_path):
    # College graduates are far happier and answer far more often than their share of the population.
    people = []
    for community, shift in (("A1", 0), ("A2", 1), ("B1", 2)):
        for n in range(9):
            education = EDUCATION[0] if n < 2 else EDUCATION[1] if n < 4 else EDUCATION[2]
            s1 = {"college": "5", "middle": "3", "primary": "1"}[education] if (n + shift) % 4 else "0"
            s2 = {"college": "5", "middle": "3", "primary": "1"}[education] if (n + shift) % 3 else "3"
            people.append((community, education, s1, s2))
    for community, education, s1, s2 in people:
        client = app.test_client()
        fields = form_fields(client.get(f"/s/{renewal[community]}").get_data(as_text=True))
        page = client.post(f"/s/{renewal[community]}",
                           data=fields | {"education": education, "heard": "Y", "s1": s1, "s2": s2})
        assert "提交成功" in page.get_data(as_text=True), page.get_data(as_text=True)[:2000]

    margins = tmp_path / "margins.csv"
    margins.write_text("variable,category,total\nsex,M,6000\nsex,F,6000\n", encoding="utf-8")
    refused = runner.invoke(args=["import-margins", str(margins), "--questionnaire", "renewal"])
    assert refused.exit_code == 1
    assert "line 2: 'sex' is neither an area level (community, street, district, city) nor an attribute of the " \
           "renewal questionnaire (education)" in refused.output
    margins.write_text("variable,category,total\neducation,primary,6000\neducation,middle,4000\neducation,college,2000\n",
                       encoding="utf-8")
    imported = runner.invoke(args=["import-margins", str(margins), "--questionnaire", "renewal"])
    assert imported.exit_code == 0, imported.output

    with app.app_context():
        session = db.session()
        stored = session.scalars(select(Response.attributes)).all()
        assert sorted(a["education"] for a in stored) == sorted(p[1] for p in people)
        version_id = session.scalar(select(QuestionnaireVersion.id).join(Questionnaire).where(Questionnaire.code == "renewal"))
        cells = score_cells(session, session.scalar(select(Wave.id)), [version_id], include_flagged=True)
        assert list(cells.columns) == ["community", "education", "channel", "n", "total", "total_sq"]
        assert set(cells["education"]) == set(EDUCATION)
        with db.write_transaction(session):
            run = run_analysis(session, session.scalars(select(Wave)).one(), "renewal", include_flagged=True)
            assert set(run.summary["rake"]["variables"]) == {"community", "education"}
        stored_estimates = dict(session.execute(
            select(Area.code, AreaResult.estimate).join(Area, Area.id == AreaResult.area_id)
            .where(AreaResult.level == "community")).all())

    # The same estimates straight from the analysis engine, raked on community and education.
    def mean_score(s1, s2):
        scores = [SCORES[s] for s in (s1, s2) if SCORES[s] is not None]
        return sum(scores) / len(scores)

    respondents = pd.DataFrame([(c, e, mean_score(s1, s2)) for c, e, s1, s2 in people],
                               columns=["community", "education", "score"])
    targets = pd.DataFrame([("community", "A1", 5000), ("community", "A2", 3000), ("community", "B1", 4000),
                            ("education", "primary", 6000), ("education", "middle", 4000), ("education", "college", 2000)],
                           columns=["variable", "category", "total"])
    expected = analyze(respondents, targets, by="community", items=["score"], item_matrix=False).domains.set_index("domain")
    unweighted = respondents.groupby("community")["score"].mean()
    assert set(stored_estimates) == {"A1", "A2", "B1"}
    for code, estimate in stored_estimates.items():
        assert estimate == pytest.approx(expected.loc[code, "estimate"], abs=1e-9)
        assert abs(estimate - unweighted[code]) > 5  # the attribute's weighting really moved it
