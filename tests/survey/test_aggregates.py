"""Incremental aggregation: the stored statistics plus the new responses equal a GROUP BY over all of them."""
from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import String, cast, create_engine, delete, func, literal, select, text, update

from survey import db, refresh
from survey.aggregates import aggregated_frames
from survey.models import (
    AggregateFlagged,
    AggregateState,
    AnalysisRun,
    Area,
    AreaResult,
    ItemResult,
    PopulationMargin,
    Response,
    Wave,
)
from survey.plans import choice_counts, plan_of_versions, score_cells
from survey.questionnaires import definition_of
from survey.results import choice_values, import_margins, item_cells_from_choices
from survey.submissions import store_response
from tests.conftest import build_once


def build_demo(app) -> None:
    assert app.test_cli_runner().invoke(args=["seed-demo", "--respondents", "200"]).exit_code == 0
    state = aggregate(app)
    assert state["mode"] == "full" and state["reason"] == "no stored statistics yet"


@pytest.fixture
def demo(app):
    """The demo city with 200 citizen responses, their statistics stored once (a full build).

    Built once a session and backend (``build_once``), copied into each test's own database."""
    build_once(app, "aggregates-demo", build_demo)
    return app


def citizen_versions(session) -> tuple[int, list[int]]:
    wave = session.scalars(select(Wave)).one()
    return wave.id, [v.id for v in wave.versions if v.questionnaire.code == "citizen"]


def add_responses(app, count: int, *, community: str = "D01S1C1", duration: float | None = None,
                  response_id: int | None = None, seed: int = 0) -> list[int]:
    """Key in ``count`` citizen responses with varied answers; return their ids."""
    rng = np.random.default_rng(seed)
    ids = []
    with app.app_context():
        session = db.session()
        wave = session.scalars(select(Wave)).one()
        version = next(v for v in wave.versions if v.questionnaire.code == "citizen")
        area = session.scalars(select(Area).where(Area.code == community)).one()
        for _ in range(count):
            answers = {"sex": str(rng.choice(["F", "M"])), "age_band": str(rng.choice(["18-29", "30-44", "60+"])),
                       "resident": "Y", "k01": "Y", "k02": "N", "k03": "Y", "k04": "Y"}
            answers |= {f"q{i:02d}": str(rng.integers(1, 6)) for i in range(1, 11)}
            stored = store_response(session, definition_of(version), answers, key=f"a-{uuid.uuid4().hex}",
                                    wave_id=wave.id, version_id=version.id, link_id=None, area_id=area.id,
                                    channel="qr" if duration else "paper", started_at=None)
            ids.append(stored.response_id)
        with db.write_transaction() as write:
            if duration is not None:
                write.execute(update(Response).where(Response.id.in_(ids)).values(duration_s=duration))
            if response_id is not None:  # give the (single) response a chosen id
                columns = ", ".join(c.name for c in Response.__table__.columns if c.name not in ("id", "submission_key"))
                write.execute(text(f"INSERT INTO response (id, submission_key, {columns}) "
                                   f"SELECT :new, submission_key || '-moved', {columns} FROM response WHERE id = :old"),
                              {"new": response_id, "old": ids[0]})
                write.execute(text("UPDATE answer SET response_id = :new WHERE response_id = :old"),
                              {"new": response_id, "old": ids[0]})
                write.execute(delete(Response).where(Response.id == ids[0]))
                ids = [response_id]
        session.close()
    return ids


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if c not in ("n", "total", "total_sq")]
    return frame.astype({k: str for k in keys}).sort_values(keys).reset_index(drop=True)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got, want = _sorted(got), _sorted(want)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) and len(want) > 0
    for column in got.columns:
        if column in ("total", "total_sq"):
            np.testing.assert_allclose(got[column].to_numpy(float), want[column].to_numpy(float), rtol=1e-12)
        elif column == "n":
            assert got[column].astype(int).tolist() == want[column].astype(int).tolist()
        else:
            assert got[column].tolist() == want[column].tolist(), column


def aggregate(app, include_flagged: bool = False, full: bool = False, settled=None, check: bool = True) -> dict:
    """Update the stored statistics (after marking the flags, as the analysis does) and compare both
    frames with the GROUP BY over all responses; return what the aggregation did."""
    from survey.quality import mark_wave

    with app.app_context(), db.write_transaction() as session:
        wave_id, versions = citizen_versions(session)
        mark_wave(session, wave_id)
        plan = plan_of_versions(session, versions)
        cells, choices, outcome = aggregated_frames(session, wave_id, "citizen", versions, plan, include_flagged,
                                                    full, settled)
        if check:
            assert_same(cells, score_cells(session, wave_id, versions, include_flagged, plan))
            want = choice_counts(session, wave_id, versions, include_flagged, plan)
            assert_same(choices, want)
            # The item cells worked out on the stored cell ids: those choice_cells makes, row for row.
            definitions = {v.id: definition_of(v) for v in session.scalars(select(Wave)).one().versions
                           if v.id in versions}
            _, items, _ = aggregated_frames(session, wave_id, "citizen", versions, plan, include_flagged,
                                            settled=settled, values=choice_values(definitions))
            expected = item_cells_from_choices(want, definitions, [plan.unit, *plan.attributes])
            assert len(expected) > 0 and list(items.columns) == list(expected.columns)
            pd.testing.assert_frame_equal(items.reset_index(drop=True).astype({"n": "int64"}),
                                          expected.reset_index(drop=True).astype({"n": "int64"}),
                                          check_exact=False, rtol=1e-12)
        return outcome.as_dict()


def never_settled(session, read_at, oldest_open) -> bool:
    return False


def test_new_responses_are_added_and_equal_a_full_group_by(demo):
    new = add_responses(demo, 15, seed=1)
    done = aggregate(demo)
    assert done["mode"] == "incremental" and done["added"] == 15 and done["tail"] == 0
    assert done["watermark"] == max(new)
    assert aggregate(demo, include_flagged=True)["added"] == 0  # nothing new: nothing added
    add_responses(demo, 3, community="D01S1C2", seed=2)
    assert aggregate(demo, include_flagged=True)["added"] == 3


def test_flags_set_and_cleared_on_stored_responses_move_them(demo):
    flagged = Response.flag_speeder | Response.flag_straightline | Response.flag_repeat_device
    with demo.app_context(), db.write_transaction() as session:
        wave_id, versions = citizen_versions(session)
        citizen = Response.questionnaire_version_id.in_(versions) & Response.score.is_not(None)
        clean = session.scalars(select(Response.id).where(citizen, ~flagged, Response.duration_s.is_not(None))
                                .order_by(Response.id).limit(3)).all()
        assert len(clean) == 3
        # Straight-lining found later on two, and a speeder made of a third (its duration shrinks).
        session.execute(update(Response).where(Response.id.in_(clean[:2])).values(flag_straightline=True))
        session.execute(update(Response).where(Response.id == clean[2]).values(duration_s=1.0))
        # The straight-liners that carry no other flag are cleared (e.g. judged again by an office).
        cleared = session.execute(update(Response).where(
            citizen, Response.flag_straightline, ~Response.flag_speeder, ~Response.flag_repeat_device,
            Response.id.not_in(clean)).values(flag_straightline=False)).rowcount
        stored_flags = set(session.scalars(select(AggregateFlagged.response_id)))
    done = aggregate(demo)
    assert done["mode"] == "incremental" and done["added"] == 0 and done["moved"] >= 3 + cleared
    aggregate(demo, include_flagged=True)
    with demo.app_context():
        now_flagged = set(db.session().scalars(select(AggregateFlagged.response_id)))
    assert set(clean) <= now_flagged and not set(clean) & stored_flags and now_flagged != stored_flags


def test_new_responses_that_move_the_speeder_threshold_re_flag_old_ones(demo):
    # Many fast new responses halve the median duration: older slow-ish ones stop being speeders, or start.
    add_responses(demo, 60, duration=20.0, seed=3)
    done = aggregate(demo)
    assert done["mode"] == "incremental" and done["added"] == 60
    aggregate(demo, include_flagged=True)


def test_a_watermark_that_is_not_settled_counts_the_tail_and_a_late_lower_id_is_not_lost(demo):
    with demo.app_context():
        top = db.session().scalar(select(func.max(Response.id)))
        before = db.session().scalar(select(AggregateState.watermark))
    add_responses(demo, 1, response_id=top + 10, seed=4)
    done = aggregate(demo, settled=never_settled)  # e.g. a submission still open when the watermark was read
    assert done["watermark"] == before and done["tail"] == 1 and done["added"] == 0
    with demo.app_context():  # what was analysed (the refresh's watermark): the stored ones and the tail
        _, versions = citizen_versions(db.session())
        citizen = db.session().scalar(select(func.count(Response.id)).where(Response.questionnaire_version_id.in_(versions)))
        assert (done["upto"], done["responses"]) == (top + 10, citizen)
    add_responses(demo, 1, response_id=top + 5, seed=5)  # took its id earlier, committed only now
    done = aggregate(demo)  # the earlier watermark (top + 10) has settled now: both are stored
    assert done["mode"] == "incremental" and done["added"] == 2 and done["tail"] == 0
    assert done["watermark"] == top + 10


def test_a_late_commit_below_a_settled_watermark_or_a_deletion_rebuilds(demo):
    with demo.app_context():
        top = db.session().scalar(select(func.max(Response.id)))
    add_responses(demo, 1, response_id=top + 10, seed=6)
    assert aggregate(demo)["watermark"] == top + 10
    add_responses(demo, 1, response_id=top + 3, seed=7)  # below a watermark taken as settled
    done = aggregate(demo)
    assert done["mode"] == "full" and "committed late" in done["reason"]
    with demo.app_context(), db.write_transaction() as session:
        session.execute(delete(Response).where(Response.id == top + 3))
    assert aggregate(demo)["mode"] == "full"
    assert aggregate(demo)["mode"] == "incremental"


def test_new_margins_that_change_the_plan_rebuild(demo):
    with demo.app_context(), db.write_transaction() as session:
        margins = "variable,category,total\nsex,M,5000\nsex,F,5200\n"
        import_margins(session, margins)  # only sex now: age band is no longer grouped by
    done = aggregate(demo)
    assert done["mode"] == "full" and "plan" in done["reason"]


def test_a_transaction_open_before_the_watermark_keeps_it_back_until_it_ends(demo):
    """PostgreSQL takes ids before commit: a response still being written keeps the watermark
    back (its newer neighbours are counted on the fly); on SQLite writers queue, nothing to wait for."""
    if demo.config["TEST_BACKEND"] == "postgresql":
        other = create_engine(demo.config["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
        with demo.app_context():
            wave_id, versions = citizen_versions(db.session())
            area = db.session().scalar(select(Area.id).where(Area.code == "D01S1C1"))
            db.session().rollback()
        with other.connect() as conn:
            conn.execute(text("INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, "
                              "submission_key, submitted_at, attributes, score, scored_items) VALUES "
                              "(:w, :v, :a, 'paper', 'late-one', now(), '{}', 75, 1)"),
                         {"w": wave_id, "v": versions[0], "a": area})
            newer = add_responses(demo, 2, seed=8)
            done = aggregate(demo)
            assert done["tail"] == 2 and done["watermark"] < min(newer)
            conn.commit()
        other.dispose()
        done = aggregate(demo)
        assert done["mode"] == "incremental" and done["added"] == 3 and done["watermark"] == max(newer)
    else:
        newer = add_responses(demo, 2, seed=8)
        done = aggregate(demo)
        assert done["tail"] == 0 and done["added"] == 2 and done["watermark"] == max(newer)


def _results(app, run_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    with app.app_context():
        session = db.session()
        areas = pd.DataFrame(session.execute(
            select(AreaResult.area_id, AreaResult.n, AreaResult.estimate, AreaResult.se, AreaResult.eb_estimate)
            .where(AreaResult.run_id == run_id).order_by(AreaResult.area_id)).all())
        items = pd.DataFrame(session.execute(
            select(ItemResult.area_id, ItemResult.item_code, ItemResult.n, ItemResult.estimate, ItemResult.se)
            .where(ItemResult.run_id == run_id).order_by(ItemResult.area_id, ItemResult.item_code)).all())
    return areas, items


@pytest.mark.parametrize("include_flagged", [False, True])
def test_the_refresh_job_analyses_incrementally_with_the_same_results_as_a_full_rebuild(demo, include_flagged):
    add_responses(demo, 12, community="D01S1C2", seed=9)
    with demo.app_context():
        wave_id = db.session().scalar(select(Wave.id))
        db.session().rollback()  # an open transaction would keep the watermark back on PostgreSQL
        incremental = refresh.refresh(wave_id, force=True, wait=True, include_flagged=include_flagged)
        full = refresh.refresh(wave_id, force=True, wait=True, include_flagged=include_flagged, full=True)
        session = db.session()
        summaries = {run.id: run.summary for run in session.scalars(select(AnalysisRun))}
        assert db.session().scalar(select(AggregateState.watermark)) == db.session().scalar(select(func.max(Response.id)))
    assert summaries[incremental.run_id]["aggregation"]["mode"] == "incremental"
    assert summaries[incremental.run_id]["aggregation"]["added"] == 12
    assert summaries[full.run_id]["aggregation"]["mode"] == "full"
    for got, want in zip(_results(demo, incremental.run_id), _results(demo, full.run_id), strict=True):
        assert len(got) > 0
        direct = [c for c in got.columns if c != "eb_estimate"]
        pd.testing.assert_frame_equal(got[direct], want[direct], check_exact=False, rtol=1e-9)
        if "eb_estimate" in got:
            # The shrunk estimate comes from a REML optimum (a bounded minimiser): found to about the square
            # root of the machine epsilon, so sums added in another order may move it by ~1e-9 relative.
            pd.testing.assert_series_equal(got["eb_estimate"], want["eb_estimate"], check_exact=False, rtol=1e-7)


def test_flask_analyze_full_rebuilds(demo):
    result = demo.test_cli_runner().invoke(args=["analyze", "--full"])
    assert result.exit_code == 0, result.output
    with demo.app_context():
        session = db.session()
        run = session.scalars(select(AnalysisRun).order_by(AnalysisRun.id.desc())).first()
        wave_id, versions = citizen_versions(session)
        responses = session.scalar(select(func.count()).select_from(Response)
                                   .where(Response.questionnaire_version_id.in_(versions)))
        highest = session.scalar(select(func.max(Response.id)).where(Response.questionnaire_version_id.in_(versions)))
        assert run.summary["aggregation"] == {"mode": "full", "reason": "asked for", "added": responses, "moved": 0,
                                              "tail": 0, "watermark": highest, "upto": highest, "responses": responses}
        assert run.summary["watermark"] == {"responses": responses, "max_id": highest}  # what the refresh analysed


def _flags(session) -> dict[int, tuple[bool, bool, bool]]:
    rows = session.execute(select(Response.id, Response.flag_speeder, Response.flag_repeat_device,
                                  Response.flag_straightline))
    return {row[0]: tuple(row[1:]) for row in rows}


def test_the_refresh_flags_new_devices_as_a_whole_wave_pass_does(demo):
    """The refresh ranks only the devices of responses after the last run's mark; the flags it leaves
    are those of ranking the whole wave, old responses whose device came back included."""
    from datetime import timedelta

    from survey.quality import mark_wave

    with demo.app_context(), db.write_transaction() as session:
        wave_id, versions = citizen_versions(session)
        old = session.execute(select(Response.id, Response.submitted_at).where(Response.wave_id == wave_id)
                              .order_by(Response.id).limit(40)).all()
        for number, (rid, _) in enumerate(old):  # devices 0..19, each used twice: the later ones are repeats
            session.execute(update(Response).where(Response.id == rid).values(device_id=f"dev-{number % 20}"))
    with demo.app_context():
        db.session().rollback()
        first = refresh.refresh(wave_id, force=True, wait=True)
        marked = db.session().get(AnalysisRun, first.run_id).summary["quality"]["marked"]
        assert marked["upto"] == db.session().scalar(select(func.max(Response.id)))
        db.session().rollback()
    new = add_responses(demo, 4, duration=20.0, seed=12)  # fast: the median moves too
    first_of_five = min(old[5][1], old[25][1])
    with demo.app_context(), db.write_transaction() as session:
        # new[0] comes from a device seen before (a repeat); new[1] was answered on the device of old[5]
        # and old[25] an hour before either (keyed in late): both are repeats now; new[2] from a new device.
        session.execute(update(Response).where(Response.id == new[0]).values(device_id="dev-0"))
        session.execute(update(Response).where(Response.id == new[1])
                        .values(device_id="dev-5", submitted_at=first_of_five - timedelta(hours=1)))
        session.execute(update(Response).where(Response.id == new[2]).values(device_id="dev-new"))
    with demo.app_context():
        db.session().rollback()
        run = refresh.refresh(wave_id, force=True, wait=True)
        session = db.session()
        summary = session.get(AnalysisRun, run.run_id).summary
        assert summary["aggregation"]["mode"] == "incremental"
        incremental = _flags(session)
        session.rollback()
    with demo.app_context(), db.write_transaction() as session:
        counts = mark_wave(session, wave_id)  # the whole wave ranked again
        whole = _flags(session)
    assert incremental == whole
    assert whole[new[0]][1] and not whole[new[1]][1] and not whole[new[2]][1]
    assert whole[old[5][0]][1] and whole[old[25][0]][1]  # one of them was the first of dev-5 before
    assert [whole[rid][1] for rid, _ in old].count(False) == 19  # the first of each other device
    assert all(whole[n][0] for n in new)  # the fast ones are speeders
    assert {k: v for k, v in summary["quality"].items() if k.startswith("flag")} == \
        {k: v for k, v in counts.items() if k.startswith("flag")}
    assert summary["quality"]["marked"]["upto"] == max(new)


def test_the_refresh_judges_speeders_as_a_whole_wave_pass_does(demo):
    """A refresh rewrites only the speeder flags of new responses and of durations between the old and
    the new threshold; as the median moves down and up, old responses stop and start being speeders
    exactly as judging the whole wave again says, and the statistics move them."""
    from survey.quality import mark_wave

    with demo.app_context(), db.write_transaction() as session:
        wave_id, versions = citizen_versions(session)
        rows = session.scalars(select(Response.id).where(Response.wave_id == wave_id).order_by(Response.id)).all()
        for number, rid in enumerate(rows):  # 40 s .. 439 s, spread over the wave
            session.execute(update(Response).where(Response.id == rid).values(duration_s=40.0 + (number * 7) % 400))
    speeders = []
    for count, duration in ((0, None), (60, 31.0), (150, 900.0)):  # the median first down, then up
        if count:
            add_responses(demo, count, duration=duration, seed=count)
        with demo.app_context():
            db.session().rollback()
            run = refresh.refresh(wave_id, force=True, wait=True, full=not speeders)
            session = db.session()
            summary = session.get(AnalysisRun, run.run_id).summary
            assert summary["aggregation"]["mode"] == ("incremental" if speeders else "full")
            marked = summary["quality"]["marked"]
            assert {str(v) for v in versions} <= set(marked["thresholds"])
            # The median's count carried to the next pass: the durations up to the mark, counted afresh here.
            timed = session.execute(select(Response.questionnaire_version_id, func.count(Response.duration_s))
                                    .where(Response.wave_id == wave_id, Response.id <= marked["upto"])
                                    .group_by(Response.questionnaire_version_id)).all()
            assert marked["timed"] == {str(v): n for v, n in timed}
            # Where the next pass starts its walk to the median: the lower middle duration of the wave now, and
            # how many durations up to the mark are shorter.
            for version, (pivot, shorter) in marked["pivots"].items():
                durations = sorted(session.scalars(select(Response.duration_s).where(
                    Response.wave_id == wave_id, Response.questionnaire_version_id == int(version),
                    Response.duration_s.is_not(None))))
                assert pivot == durations[(len(durations) - 1) // 2]
                assert shorter == session.scalar(select(func.count()).where(
                    Response.wave_id == wave_id, Response.questionnaire_version_id == int(version),
                    Response.id <= marked["upto"], Response.duration_s < pivot))
            refreshed = _flags(session)
            session.rollback()
        with demo.app_context(), db.write_transaction() as session:
            mark_wave(session, wave_id)  # the whole wave judged again
            assert _flags(session) == refreshed
        speeders.append({rid for rid in rows if refreshed[rid][0]})
    assert speeders[1] < speeders[0] < speeders[2]  # old responses left the speeders, then more joined
    aggregate(demo)  # the statistics moved them: equal to the GROUP BY over all responses


def test_a_whole_wave_pass_ranks_devices_seen_twice_and_clears_stale_repeats(demo):
    """The whole-wave pass ranks only devices seen more than once, and still clears a repeat flag that
    no longer holds (a device seen once, or none)."""
    from survey.quality import mark_wave

    with demo.app_context(), db.write_transaction() as session:
        wave_id, _ = citizen_versions(session)
        first, second, single, blank = session.scalars(
            select(Response.id).where(Response.wave_id == wave_id).order_by(Response.id).limit(4)).all()
        session.execute(update(Response).where(Response.wave_id == wave_id)
                        .values(device_id=literal("own-") + cast(Response.id, String), flag_repeat_device=False))
        session.execute(update(Response).where(Response.id.in_([first, second])).values(device_id="shared"))
        session.execute(update(Response).where(Response.id.in_([single, blank]))
                        .values(flag_repeat_device=True))  # wrong: set by hand, or left by an older pass
        session.execute(update(Response).where(Response.id == blank).values(device_id=None))
    with demo.app_context(), db.write_transaction() as session:
        counts = mark_wave(session, wave_id)
        flags = {rid: repeat for rid, (_, repeat, _) in _flags(session).items()}
    assert counts["flag_repeat_device"] == 1
    assert [flags[first], flags[second], flags[single], flags[blank]] == [False, True, False, False]


def test_a_refresh_with_nothing_new_stores_nothing_and_one_after_any_change_stores_a_run(demo):
    """Nothing new (no response, no flag move, the same plan, margins and areas): the newest run holds, only
    its data time moves. New margin totals under the same plan make a new run, equal to a full rebuild's."""
    with demo.app_context():
        session = db.session()
        wave_id = session.scalar(select(Wave.id))
        session.rollback()
        first = refresh.refresh(wave_id, force=True, wait=True)
        assert first.state == "done"
        before = db.session().get(AnalysisRun, first.run_id).summary
        db.session().rollback()
        again = refresh.refresh(wave_id, force=True, wait=True)
        assert again == refresh.Outcome("fresh", first.run_id)
        after = db.session().get(AnalysisRun, first.run_id).summary
        db.session().rollback()
    assert after["data_as_of"] > before["data_as_of"]
    assert {k: v for k, v in after.items() if k != "data_as_of"} == {k: v for k, v in before.items() if k != "data_as_of"}

    with demo.app_context(), db.write_transaction() as session:
        _, versions = citizen_versions(session)
        clean = session.scalar(select(Response.id).where(
            Response.questionnaire_version_id.in_(versions), Response.score.is_not(None), ~Response.flag_speeder,
            ~Response.flag_straightline, ~Response.flag_repeat_device).order_by(Response.id).limit(1))
        session.execute(update(Response).where(Response.id == clean).values(flag_straightline=True))
    # A flag set by hand is not looked for while nothing else is new (that would read every flagged response):
    # the next refresh with a new response moves it (or flask analyze --full).
    with demo.app_context():
        assert refresh.refresh(wave_id, force=True, wait=True) == refresh.Outcome("fresh", first.run_id)
    add_responses(demo, 1, seed=21)
    with demo.app_context():
        moved = refresh.refresh(wave_id, force=True, wait=True)
        assert moved.state == "done" and moved.run_id != first.run_id
        assert db.session().get(AnalysisRun, moved.run_id).summary["aggregation"]["moved"] == 1
        db.session().rollback()

    with demo.app_context(), db.write_transaction() as session:
        margins = session.execute(select(PopulationMargin.variable, PopulationMargin.category, PopulationMargin.total)
                                  .where(PopulationMargin.questionnaire_code == "citizen")).all()
        women = next(total for variable, category, total in margins if (variable, category) == ("sex", "F"))
        shift = {("sex", "F"): -0.1 * women, ("sex", "M"): 0.1 * women}  # the same sum: a tenth of the women to men
        import_margins(session, "variable,category,total\n" + "".join(
            f"{variable},{category},{total + shift.get((variable, category), 0)}\n" for variable, category, total in margins))
    with demo.app_context():
        reweighted = refresh.refresh(wave_id, force=True, wait=True)
        assert reweighted.state == "done" and reweighted.run_id != moved.run_id
        assert db.session().get(AnalysisRun, reweighted.run_id).summary["aggregation"]["mode"] == "incremental"
        db.session().rollback()
        full = refresh.refresh(wave_id, force=True, wait=True, full=True)
    for got, want in zip(_results(demo, reweighted.run_id), _results(demo, full.run_id), strict=True):
        pd.testing.assert_frame_equal(got.drop(columns="eb_estimate", errors="ignore"),
                                      want.drop(columns="eb_estimate", errors="ignore"), check_exact=False, rtol=1e-9)


def test_the_median_walked_from_the_last_pass_equals_a_sort_also_with_unsettled_responses(demo):
    """A pass that cannot settle the newest responses still judges speeders by every duration, and the walk
    of the pass after it (from the pivot it left, the unsettled ones counted as new) finds the same median."""
    from survey.quality import _median_durations, mark_wave

    def check(session, wave_id: int, marked: dict) -> None:
        for version, (pivot, shorter) in marked["pivots"].items():
            durations = sorted(session.scalars(select(Response.duration_s).where(
                Response.wave_id == wave_id, Response.questionnaire_version_id == int(version),
                Response.duration_s.is_not(None))))
            assert pivot == durations[(len(durations) - 1) // 2]
            assert shorter == sum(1 for rid, d in session.execute(select(Response.id, Response.duration_s).where(
                Response.wave_id == wave_id, Response.questionnaire_version_id == int(version),
                Response.duration_s.is_not(None))) if rid <= marked["upto"] and d < pivot)
        whole = dict((v, m) for v, m, _ in _median_durations(session, wave_id))
        assert marked["thresholds"] == {str(v): max(0.5 * m, 30.0) for v, m in whole.items() if m is not None}

    with demo.app_context(), db.write_transaction() as session:
        wave_id, _ = citizen_versions(session)
        first = mark_wave(session, wave_id, count=False)["marked"]
        check(session, wave_id, first)
    for round_, (count, duration) in enumerate(((30, 12.0), (45, 2000.0), (1, 300.0))):
        add_responses(demo, count, duration=duration, seed=40 + round_)
        with demo.app_context(), db.write_transaction() as session:
            unsettled = mark_wave(session, wave_id, first, settled=never_settled, count=False)["marked"]
            assert unsettled["upto"] == first["upto"] and unsettled["pending"]
            check(session, wave_id, unsettled)
            walked = _flags(session)
            first = mark_wave(session, wave_id, unsettled, count=False)["marked"]
            assert first["upto"] > unsettled["upto"] and not first["pending"]
            check(session, wave_id, first)
            assert _flags(session) == walked
            mark_wave(session, wave_id)  # the whole wave judged again: the same flags
            assert _flags(session) == walked
