"""The flask CLI: database set-up, areas import, waves, links and the demo city."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from survey import db
from survey.migrate import alembic_config, current_revision
from survey.models import Area, Base, Link, Response, Wave
from survey.quality import unflagged
from tests.conftest import SMALL_CITY


def test_init_db_is_repeatable_and_migrations_match_the_models(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "questionnaires: citizen v1, minor v1" in result.output
    with app.app_context():
        head = ScriptDirectory.from_config(alembic_config(db.engine())).get_current_head()
        assert current_revision(db.engine()) == head
        with db.engine().connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []


def test_import_areas_builds_the_tree(app, runner, tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text(SMALL_CITY, encoding="utf-8")
    result = runner.invoke(args=["import-areas", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported 7 areas" in result.output
    with app.app_context():
        session = db.session()
        a1 = session.scalars(select(Area).where(Area.code == "A1")).one()
        assert (a1.level, a1.adult_population, a1.responsible_unit, a1.parent.code) == ("community", 5000, "市教育局", "S1")
        city = session.scalars(select(Area).where(Area.code == "C")).one()
        assert a1.path.startswith(city.path) and a1.path.count("/") == 5


def test_import_areas_names_the_bad_line_and_imports_nothing(app, runner, tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text(SMALL_CITY + "Z1,错社区,community,NOPE,100,\n", encoding="utf-8")
    result = runner.invoke(args=["import-areas", str(path)])
    assert result.exit_code == 1
    assert "line 9: parent 'NOPE' of Z1 is unknown" in result.output
    assert "nothing was imported" in result.output
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Area)) == 0


def test_import_areas_rejects_bad_level_and_population(runner, tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("code,name,level,parent_code,adult_population\nC,市,city,,\nX,某,village,C,\n", encoding="utf-8")
    assert "line 3: level 'village' is not one of" in runner.invoke(args=["import-areas", str(path)]).output
    path.write_text("code,name,level,parent_code,adult_population\nC,市,city,,\nD,区,district,C,-5\n", encoding="utf-8")
    assert "line 3: adult_population '-5'" in runner.invoke(args=["import-areas", str(path)]).output


def test_wave_links_and_listing(app, runner, tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text(SMALL_CITY, encoding="utf-8")
    runner.invoke(args=["import-areas", str(path)])
    result = runner.invoke(args=["create-wave", "2026秋季", "--opens", "2026-09-01", "--closes", "2026-12-31"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["create-wave", "反了", "--opens", "2026-12-01", "--closes", "2026-11-01"])
    assert bad.exit_code == 1 and "must close after it opens" in bad.output
    assert "3 community links" in runner.invoke(args=["make-links"]).output
    assert "3 community links" in runner.invoke(args=["make-links"]).output  # idempotent
    listing = runner.invoke(args=["list-links"]).output.strip().splitlines()
    assert len(listing) == 3
    assert listing[0].startswith("A1\t甲社区\tcitizen\tqr\thttp")
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Link)) == 3
        wave = db.session().scalars(select(Wave)).one()
        assert {v.questionnaire.code for v in wave.versions} == {"citizen", "minor"}


def test_seed_demo_creates_a_city_with_responses(app, runner):
    result = runner.invoke(args=["seed-demo", "--respondents", "400"])
    assert result.exit_code == 0, result.output
    assert "36 community links, 400 responses" in result.output
    with app.app_context():
        session = db.session()
        assert session.scalar(select(func.count()).select_from(Response).where(Response.attributes["grade_band"].as_string().is_(None))) == 400
        # The synthetic city has a real age pattern for raking to correct.
        age = Response.attributes["age_band"].as_string()
        by_age = dict(session.execute(select(age, func.avg(Response.score)).group_by(age)).all())
        assert by_age["60+"] > by_age["30-44"] + 3
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 1 and "exists already" in again.output


def test_analyze_stores_results_that_match_the_engine_on_the_same_responses(app, runner, tmp_path):
    import pandas as pd

    from analysis.pipeline import analyze
    from survey.models import AnalysisRun, AreaResult, ItemResult

    assert runner.invoke(args=["seed-demo", "--respondents", "600"]).exit_code == 0
    result = runner.invoke(args=["analyze"])
    assert result.exit_code == 0, result.output
    assert "of 20 points" in result.output and "Data quality:" in result.output
    with app.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun)).one()
        rows = session.execute(
            select(Area.code, Response.attributes["sex"].as_string(), Response.attributes["age_band"].as_string(), Response.score)
            .join(Area, Area.id == Response.area_id)
            .where(unflagged(), Area.level == "community")  # flagged ones are left out; pupils answer by district
        ).all()
        assert 500 < len(rows) < 600
        respondents = pd.DataFrame(rows, columns=["community", "sex", "age_band", "score"])
        margins = pd.read_sql("SELECT variable, category, total FROM population_margin", session.connection())
        populations = session.execute(select(Area.code, Area.adult_population).where(Area.level == "community")).all()
        margins = pd.concat([pd.DataFrame([("community", c, p) for c, p in populations], columns=margins.columns), margins])
        expected = analyze(respondents, margins, by="community", items=["score"], item_matrix=False).domains.set_index("domain")
        stored = dict(session.execute(
            select(Area.code, AreaResult.estimate).join(Area, Area.id == AreaResult.area_id).where(AreaResult.level == "community")
        ).all())
        assert len(stored) == 36
        for code, estimate in stored.items():
            assert estimate == pytest.approx(expected.loc[code, "estimate"], abs=1e-9)
        levels = dict(session.execute(select(AreaResult.level, func.count()).group_by(AreaResult.level)).all())
        assert levels == {"community": 36, "street": 9, "district": 3, "city": 1}
        city = session.scalars(select(AreaResult).where(AreaResult.level == "city")).one()
        assert city.estimate == pytest.approx(run.summary["city"]["estimate"])
        community_stakes = session.scalars(select(AreaResult.points_at_stake).where(AreaResult.level == "community")).all()
        assert city.points_at_stake == pytest.approx(sum(community_stakes))
        assert city.share_of_lost == pytest.approx(1.0)
        # Topic scores and awareness/support/participation rates for every level.
        items = set(session.scalars(select(ItemResult.item_code).distinct()))
        assert {"q01", "q10", "k01", "k04"} <= items
        rate = session.scalars(select(ItemResult).where(ItemResult.item_code == "k01").limit(1)).one()
        assert 0 <= rate.estimate <= 1


def test_analyze_without_responses_or_margins_says_what_to_do(app, runner, tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text(SMALL_CITY, encoding="utf-8")
    runner.invoke(args=["import-areas", str(path)])
    assert "no wave yet" in runner.invoke(args=["analyze"]).output
    runner.invoke(args=["create-wave", "空", "--opens", "2026-01-01", "--closes", "2027-01-01"])
    assert "has no scored citizen responses yet" in runner.invoke(args=["analyze"]).output
    bad = tmp_path / "m.csv"
    bad.write_text("variable,category,total\nsex,M,abc\n", encoding="utf-8")
    out = runner.invoke(args=["import-margins", str(bad)]).output
    assert "line 2: total 'abc' is not a number" in out
