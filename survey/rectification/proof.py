"""Proof in the next wave: did a task's community x topic improve, and the unit league table (帮包单位排名).

The statistics are survey.reading.wave_changes / analysis.changes: the wave in which the problem was found
against the next wave (independent samples, SE of the difference = sqrt(se1² + se2²), 95% interval,
Benjamini-Hochberg marks over the whole city); a community with fewer than 30 answers in either
wave is compared on its shrunk (EB) estimates and their MSE, a small topic cell on a smoothed
variance, and the basis is said with the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.rules import MIN_N
from survey.models import Area, AreaResult, Task, Unit, User
from survey.reading import dashboard, wave_changes
from survey.reading.wave_changes import Change
from survey.rectification.rates import RateRow, tally
from survey.rectification.tasks import visible
from survey.scope import in_scope, visible_units


@dataclass(frozen=True)
class Proof:
    """A task's community x topic (or community, for a complaint term) before and after."""

    what: str
    before_wave: str
    after_wave: str | None  # None: the next wave has not been analysed yet
    change: Change | None

    @property
    def verdict(self) -> str:
        if self.after_wave is None:
            return "等待下一轮测评"
        if self.change is None:
            return "下一轮没有这一项的结果"
        if not self.change.significant:
            return "变化不显著"
        return "显著提升" if self.change.change > 0 else "显著下降"

    @property
    def plain(self) -> str:
        """The change in plain words for a unit, e.g. ``提升了 5.2 分，可信`` or ``提升了 1.0 分，还看不出是真的变化``."""
        if self.after_wave is None or self.change is None:
            return self.verdict
        moved = f"{'提升' if self.change.change >= 0 else '下降'}了 {abs(self.change.change):.1f} 分"
        return moved + ("，可信" if self.change.significant else "，还看不出是真的变化")


def proof(session: Session, task: Task) -> Proof | None:
    """Return the task's before/after, or None when it was not made from an analysed wave."""
    if task.wave_id is None:
        return None
    runs = dashboard.runs_by_wave(session, task.questionnaire_code or "citizen")
    position = next((i for i, r in enumerate(runs) if r.wave_id == task.wave_id), None)
    if position is None:
        return None
    what = task.topic if task.item_code else "综合满意度"
    if position + 1 >= len(runs):
        return Proof(what, runs[position].wave.name, None, None)
    after = runs[position + 1]
    found = wave_changes.comparison(session, after, runs[position].wave_id)
    change = None
    if found is not None:
        change = found.topic(task.area, task.item_code) if task.item_code else found.area(task.area)
    return Proof(what, runs[position].wave.name, after.wave.name, change)


@dataclass(frozen=True)
class CommunityLine:
    """A unit's community in the league table, its score on the basis its change is computed on.

    One basis per line (issue 25 item 8): a community with fewer than ``MIN_N`` answers (the rule of
    :mod:`analysis.changes`) is shown, averaged and compared on its shrunk (EB) estimate, the one its
    page leads with; the others on the direct estimate. With a change, the score is the change's own
    ``after``, so "77.4 (−0.3)" can no longer put a direct estimate beside a change of the shrunk one.
    """

    area: Area
    result: AreaResult | None
    change: Change | None

    @property
    def basis(self) -> str | None:
        """``eb`` or ``direct`` (``direct_smoothed`` counts as direct: its estimates are the direct ones); None without a result."""
        if self.change is not None:
            return "eb" if self.change.basis == "eb" else "direct"
        if self.result is None:
            return None
        small = self.result.n < MIN_N and self.result.eb_estimate is not None
        return "eb" if small else "direct"

    @property
    def score(self) -> float | None:
        """The score shown and averaged: the change's ``after`` where there is a change, else the basis's estimate."""
        if self.change is not None:
            return self.change.after
        if self.result is None:
            return None
        return self.result.eb_estimate if self.basis == "eb" else self.result.estimate


@dataclass(frozen=True)
class LeagueRow:
    unit: Unit
    communities: list[CommunityLine]
    mean: float | None  # the mean of its communities' scores (CommunityLine.score: one basis per community)
    points: float  # points at stake, summed over its communities
    rates: RateRow


def league(session: Session, user: User, now: datetime) -> tuple[list[LeagueRow], str | None, str | None]:
    """Return every unit the office sees, lowest mean satisfaction of its communities first; and the waves compared.

    A unit's 整改率 counts its tasks due by now that the viewer may see (closed ÷ due; an office: those in its area).
    """
    analysed = dashboard.analysed_questionnaires(session)
    runs = dashboard.runs_by_wave(session, next(iter(analysed), "citizen"))
    run = runs[-1] if runs else None
    comparison = wave_changes.comparison(session, run) if run else None
    results = {}
    if run is not None:
        results = {r.area_id: r for r in session.scalars(select(AreaResult).where(AreaResult.run_id == run.id,
                                                                                   AreaResult.level == "community"))}
    rows = []
    units = visible_units(session, user, with_communities=True)
    due_by_unit: dict[int, list[Task]] = {}
    for task in session.scalars(visible(session, user).where(Task.unit_id.in_([u.id for u in units]),
                                                             Task.deadline <= now).order_by(Task.id)):
        due_by_unit.setdefault(task.unit_id, []).append(task)
    for unit in units:
        lines = [CommunityLine(a, results.get(a.id), comparison.area(a) if comparison else None)
                 for a in unit.communities if in_scope(user, a)]
        scores = [line.score for line in lines if line.score is not None]
        due = due_by_unit.get(unit.id, [])
        rows.append(LeagueRow(unit, lines, sum(scores) / len(scores) if scores else None,
                              sum(line.result.points_at_stake or 0.0 for line in lines if line.result is not None),
                              tally(unit.id, unit.name, "", due, now)))
    rows.sort(key=lambda r: (r.mean is None, r.mean if r.mean is not None else 0.0, r.unit.name))
    return rows, run.wave.name if run else None, comparison.previous.wave.name if comparison else None
