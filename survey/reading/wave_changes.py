"""Changes since an earlier wave, read from stored runs; the statistics are :mod:`analysis.changes`.

A wave's newest run is compared with the newest run of the wave before it (same questionnaire,
waves ordered by opening date), or with a chosen wave's. Families for the Benjamini-Hochberg marks
are whole-city: all communities (all streets, all districts) of the comparison, and all area x
topic cells of a level, so a community carries the same mark whoever looks at it, whatever the
scope of their account. A comparison of two runs never changes (a new analysis is a new run), so
it is kept in a per-app cache keyed by the two runs' ids, for a day (a new run is a new key;
``survey.warmup`` computes the newest one when a worker starts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from flask import has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.changes import FDR, compare
from survey.caching import app_cache
from survey.models import AnalysisRun, Area, AreaResult, ItemResult
from survey.reading.dashboard import CHILD_LEVEL, run_definition, runs_by_wave
from survey.scope import within

BASIS_NAMES = {"direct": "直接估计", "direct_smoothed": "直接估计（样本少，方差平滑）", "eb": "修正估计（样本少，收缩后）"}
FDR_NOTE = (f"“显著”按Benjamini–Hochberg方法控制错误发现率（FDR）在{FDR:.0%}：全市所有社区（或所有社区×分项）同时比较时，"
            f"被标为显著的变化中，预计误判的不超过约{FDR:.0%}。两轮答卷视为相互独立的样本；"
            f"答卷少于30份的社区用修正估计及其均方误差比较。")
CACHE_SECONDS = 24 * 3600


def signed(value: float) -> str:
    """Return a change with its sign and one decimal, a true minus sign for decreases.

    >>> signed(2.345), signed(-0.8), signed(-0.04)
    ('+2.3', '−0.8', '0.0')
    """
    shown = f"{value:+.1f}"
    if shown in ("+0.0", "-0.0"):
        return "0.0"
    return shown.replace("-", "−")


@dataclass(frozen=True)
class Change:
    """One area's (or area x topic's) change since the earlier wave."""

    before: float
    after: float
    change: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float | None
    q_value: float | None
    significant: bool
    basis: str
    n_before: int
    n_after: int

    @property
    def text(self) -> str:
        """E.g. ``+2.3 显著`` or ``−0.8``."""
        return signed(self.change) + (" 显著" if self.significant else "")

    @property
    def sentence(self) -> str:
        """E.g. ``+2.3，显著`` or ``−0.8，不显著``."""
        return signed(self.change) + ("，显著" if self.significant else "，不显著")

    @property
    def direction(self) -> str:
        """``up`` or ``down`` for a significant change, else empty (a CSS class)."""
        return ("up" if self.change > 0 else "down") if self.significant else ""

    @property
    def interval(self) -> str:
        if self.se != self.se:  # no variance: no interval
            return "无法计算区间"
        return f"95%区间 {signed(self.ci_low)} 至 {signed(self.ci_high)}"

    @property
    def basis_name(self) -> str:
        return BASIS_NAMES.get(self.basis, self.basis)

    @property
    def detail_lines(self) -> list[str]:
        """What a tap shows, line by line: the two estimates, the interval, q and the basis."""
        if self.q_value is None:
            q = "q —"
        else:
            q = "q<0.001" if self.q_value < 0.001 else f"q={self.q_value:.3f}"
        return [f"{self.before:.1f}→{self.after:.1f}", self.interval, q, self.basis_name]

    @property
    def detail(self) -> str:
        """The same on one line (a cell's title)."""
        return "，".join(self.detail_lines)


@dataclass(frozen=True)
class Comparison:
    """The current run against an earlier one: changes per area id and per (area id, item code)."""

    run: AnalysisRun
    previous: AnalysisRun
    label: str  # 比上轮, or 比<wave name> for a chosen wave
    areas: dict[int, Change] = field(default_factory=dict)
    topics: dict[tuple[int, str], Change] = field(default_factory=dict)

    def area(self, area: Area) -> Change | None:
        return self.areas.get(area.id)

    def topic(self, area: Area, item_code: str) -> Change | None:
        return self.topics.get((area.id, item_code))


def newest_runs(session: Session, questionnaire_code: str) -> list[AnalysisRun]:
    return runs_by_wave(session, questionnaire_code)


def previous_run(session: Session, run: AnalysisRun, compare_wave_id: int | None = None) -> AnalysisRun | None:
    """Return the newest run of the wave before the run's (by opening date), or of ``compare_wave_id``.

    None when there is no such wave with a run of the same questionnaire (or it is the run's own wave).
    """
    runs = newest_runs(session, run.questionnaire_code)
    if compare_wave_id is not None:
        return next((r for r in runs if r.wave_id == compare_wave_id and r.wave_id != run.wave_id), None)
    position = next((i for i, r in enumerate(runs) if r.wave_id == run.wave_id), None)
    return runs[position - 1] if position else None


def comparison(session: Session, run: AnalysisRun, compare_wave_id: int | None = None) -> Comparison | None:
    """Return the run's changes since the previous wave (or the chosen one); None when there is none."""
    previous = previous_run(session, run, compare_wave_id)
    if previous is None:
        return None
    default = previous_run(session, run)
    label = "比上轮" if default is not None and default.id == previous.id else f"比{previous.wave.name}"
    cache = app_cache("wave_changes", "CHANGES_CACHE_SECONDS", CACHE_SECONDS, 8) if has_app_context() else None
    key = (run.id, previous.id)
    found = cache.get(key) if cache is not None else None
    if found is None:
        found = compare_runs(session, run, previous)
        if cache is not None:
            cache.put(key, found)
    return Comparison(run, previous, label, found.areas, found.topics)


def compare_runs(session: Session, run: AnalysisRun, previous: AnalysisRun) -> Comparison:
    """Compute every area's and every area x topic's change from ``previous`` to ``run``."""
    before, after = _area_frame(session, previous.id), _area_frame(session, run.id)
    areas: dict[int, Change] = {}
    if not (before.empty or after.empty):
        table = compare(before, after, keys=["area_id", "level"], family=["level"], smooth_by=["level"])
        areas = dict(zip((int(a) for a in table["area_id"].tolist()), _changes(table)))
    codes = [i.code for i in run_definition(run).scored_items]
    before, after = _item_frame(session, previous.id, codes), _item_frame(session, run.id, codes)
    topics: dict[tuple[int, str], Change] = {}
    if not (before.empty or after.empty):
        table = compare(before, after, keys=["area_id", "level", "item"], family=["level"], smooth_by=["level", "item"])
        keys = zip((int(a) for a in table["area_id"].tolist()), (str(i) for i in table["item"].tolist()))
        topics = dict(zip(keys, _changes(table)))
    return Comparison(run, previous, "", areas, topics)


def _area_frame(session: Session, run_id: int) -> pd.DataFrame:
    rows = session.execute(
        select(AreaResult.area_id, AreaResult.level, AreaResult.n, AreaResult.estimate, AreaResult.se,
               AreaResult.eb_estimate, AreaResult.eb_mse).where(AreaResult.run_id == run_id)
    ).all()
    return pd.DataFrame(list(map(tuple, rows)), columns=["area_id", "level", "n", "estimate", "se", "eb_estimate", "eb_mse"]).astype(
        {"eb_estimate": float, "eb_mse": float})


def _item_frame(session: Session, run_id: int, codes: list[str]) -> pd.DataFrame:
    rows = session.execute(
        select(ItemResult.area_id, Area.level, ItemResult.item_code, ItemResult.n, ItemResult.estimate, ItemResult.se)
        .join(Area, Area.id == ItemResult.area_id)
        .where(ItemResult.run_id == run_id, ItemResult.item_code.in_(codes))
    ).all()
    return pd.DataFrame(list(map(tuple, rows)), columns=["area_id", "level", "item", "n", "estimate", "se"])  # tuples: fast


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _changes(table: pd.DataFrame) -> list[Change]:
    """One Change per row of :func:`analysis.changes.compare`'s table (column lists: thousands of rows in milliseconds)."""
    def floats(name):
        return [float(v) for v in table[name].to_numpy(dtype=float).tolist()]

    def optional(name):
        return [None if v != v else v for v in floats(name)]  # NaN -> None

    columns = (floats("estimate_before"), floats("estimate_after"), floats("change"), floats("se"), floats("ci_low"),
               floats("ci_high"), optional("p_value"), optional("q_value"),
               [bool(v) for v in table["significant"].tolist()], [str(v) for v in table["basis"].tolist()],
               [int(v) for v in table["n_before"].tolist()], [int(v) for v in table["n_after"].tolist()])
    return [Change(*values) for values in zip(*columns)]


def child_changes(session: Session, found: Comparison, area: Area) -> list[tuple[Area, Change | None]]:
    """Return each child area of ``area`` (the dashboard's rows) with its change, in code order."""
    level = CHILD_LEVEL.get(area.level)
    if level is None:
        return []
    children = session.scalars(select(Area).where(Area.parent_id == area.id, Area.level == level).order_by(Area.code)).all()
    return [(a, found.areas.get(a.id)) for a in children]


def significant_communities(session: Session, found: Comparison, area: Area) -> list[tuple[Area, Change]]:
    """Return the communities in the area whose change is marked significant, largest drop first."""
    ids = [i for i, c in found.areas.items() if c.significant]
    if not ids:
        return []
    communities = session.scalars(select(Area).where(Area.id.in_(ids), Area.level == "community", within(area))).all()
    return sorted(((a, found.areas[a.id]) for a in communities), key=lambda pair: (pair[1].change, pair[0].code))
