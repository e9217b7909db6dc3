"""Proof in the next wave: a task's community x topic before and after, with its interval and significance;
the unit league table."""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from survey import db
from survey.models import AnalysisRun, Area, ItemResult, User
from survey.rectification.proof import league, proof
from survey.rectification.tasks import Pick, create_tasks
from survey.rectification.units import save_unit
from tests.conftest import BACKENDS, dispose, logged_in, make_app
from tests.survey.test_changes import CHANGED, SMALL, STABLE, build_two_waves


@pytest.fixture(scope="module", params=BACKENDS)
def found(request, tmp_path_factory):
    """Two analysed waves (CHANGED rises by about 22 points); tasks made from the first wave's problems."""
    app = make_app(request.param, tmp_path_factory.mktemp("proof"))
    with app.app_context(), db.write_transaction() as session:
        ids = build_two_waves(session)
        first = session.scalars(select(AnalysisRun).where(AnalysisRun.wave_id == ids["first"])).one()
        city = session.scalars(select(User).where(User.username == "city")).one()
        areas = {a.code: a for a in session.scalars(select(Area))}
        unit = save_unit(session, None, "市帮扶单位", "", "", [CHANGED, STABLE, SMALL])
        other = save_unit(session, None, "市另一单位", "", "", ["D2S1C1"])
        made = {}
        for code in (CHANGED, STABLE, SMALL):
            result = session.scalars(select(ItemResult).where(ItemResult.run_id == first.id, ItemResult.item_code == "q01",
                                                             ItemResult.area_id == areas[code].id)).one()
            (task,) = create_tasks(session, city, [(Pick(areas[code], f"{code} q01", "citizen", "q01", "环境", None,
                                                         ids["first"], result.estimate), unit)],
                                   datetime.now(UTC) + timedelta(days=5), "normal")
            made[code] = task.id
        (term,) = create_tasks(session, city, [(Pick(areas[CHANGED], "停车", term="停车", wave_id=ids["first"]), other)],
                               datetime.now(UTC) + timedelta(days=5), "normal")
        (late,) = create_tasks(session, city, [(Pick(areas[CHANGED], "x", "citizen", "q01", "环境", None, ids["second"]),
                                                unit)], datetime.now(UTC) + timedelta(days=5), "normal")
        made |= {"term": term.id, "late": late.id}
    yield app, ids, made
    dispose(app)


def test_a_tasks_topic_is_compared_with_the_next_wave_by_hand(found):
    app, ids, made = found
    with app.app_context():
        session = db.session()
        from survey.models import Task

        runs = {r.wave_id: r for r in session.scalars(select(AnalysisRun))}
        for code in (CHANGED, STABLE):
            task = session.get(Task, made[code])
            shown = proof(session, task)
            assert (shown.before_wave, shown.after_wave, shown.what) == ("春季测评", "秋季测评", "环境")
            before, after = (session.scalars(select(ItemResult).where(
                ItemResult.run_id == runs[ids[w]].id, ItemResult.area_id == task.area_id, ItemResult.item_code == "q01")).one()
                for w in ("first", "second"))
            change = shown.change
            assert change.basis == "direct"  # 45 answers a wave: the direct estimates
            # By hand: the difference of the two direct estimates, SE = sqrt(se1² + se2²), interval ±1.96 SE.
            assert change.change == pytest.approx(after.estimate - before.estimate)
            assert change.se == pytest.approx(math.sqrt(before.se ** 2 + after.se ** 2))
            assert change.ci_low == pytest.approx(change.change - 1.959964 * change.se, abs=1e-3)
            assert change.ci_high == pytest.approx(change.change + 1.959964 * change.se, abs=1e-3)
        assert proof(session, session.get(Task, made[CHANGED])).verdict == "显著提升"
        assert proof(session, session.get(Task, made[STABLE])).verdict == "变化不显著"
        # In plain words for the unit (issue 26 item 5): how much, and whether it can be believed.
        assert re.fullmatch(r"提升了 \d+\.\d 分，可信", proof(session, session.get(Task, made[CHANGED])).plain)
        assert proof(session, session.get(Task, made[STABLE])).plain.endswith("分，还看不出是真的变化")
        small = proof(session, session.get(Task, made[SMALL])).change
        assert small.basis != "direct" and small.n_before == 8  # 8 answers: not the plain direct comparison
        term = proof(session, session.get(Task, made["term"]))  # a complaint term: the community as a whole
        assert term.what == "综合满意度" and term.change.basis == "direct" and term.verdict == "显著提升"
        assert proof(session, session.get(Task, made["late"])).verdict == "等待下一轮测评"


def test_the_task_page_and_the_unit_league_table(found):
    app, _ids, made = found
    client = app.test_client()
    logged_in(client, "city")
    html = client.get(f"/rectification/tasks/{made[CHANGED]}").get_data(as_text=True)
    assert "下一轮测评验证" in html and "显著提升" in html and "95%区间" in html and "直接估计" in html
    assert html.index("，可信") < html.index("<summary>计算方法</summary>") < html.index("标准误")  # the method folded away
    small = client.get(f"/rectification/tasks/{made[SMALL]}").get_data(as_text=True)
    assert "样本少" in small  # the basis is said: 修正估计（样本少，收缩后） or 直接估计（样本少，方差平滑）
    league_html = client.get("/rectification/league").get_data(as_text=True)
    assert "帮包单位排名" in league_html and "比春季测评" in league_html
    with app.app_context():
        session = db.session()
        rows, wave, previous = league(session, session.scalars(select(User).where(User.username == "city")).one(),
                                      datetime.now(UTC))
    assert (wave, previous) == ("秋季测评", "春季测评")
    assert [r.unit.name for r in rows] == sorted([r.unit.name for r in rows], key=lambda n: [r.mean for r in rows
                                                                                            if r.unit.name == n][0])
    helped = next(r for r in rows if r.unit.name == "市帮扶单位")
    assert [line.area.code for line in helped.communities] == sorted([CHANGED, STABLE, SMALL])
    assert helped.mean == pytest.approx(sum(line.score for line in helped.communities) / 3)
    assert next(line for line in helped.communities if line.area.code == CHANGED).change.significant
    # One basis per line (issue 25 item 8): the score is the estimate the change is computed on.
    for line in helped.communities:
        assert line.score == pytest.approx(line.change.after)
        expected = line.result.eb_estimate if line.change.basis == "eb" else line.result.estimate
        assert line.score == pytest.approx(expected), line.area.code
    small = next(line for line in helped.communities if line.area.code == SMALL)
    assert small.result.n < 30 and small.basis == "eb" and small.score == pytest.approx(small.result.eb_estimate)
    assert small.score != pytest.approx(small.result.estimate)
    assert f"{small.score:.1f}<sup" in league_html


def test_the_demo_with_a_previous_wave_gives_every_task_its_proof(app, runner):
    assert runner.invoke(args=["seed-demo", "--respondents", "300", "--previous-wave"]).exit_code == 0
    assert runner.invoke(args=["analyze"]).exit_code == 0
    with app.app_context():
        from survey.models import Task

        session = db.session()
        tasks = session.scalars(select(Task)).all()
        assert {t.status for t in tasks} == {"todo", "doing", "done", "closed"}
        assert any(e.action == "return" for t in tasks for e in t.events)
        shown = [proof(session, t) for t in tasks]
        assert all(p is not None and p.before_wave == "上一轮测评" and p.change is not None for p in shown)
        assert all(t.score_before is not None for t in tasks)
