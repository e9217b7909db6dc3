"""What the office pages, exports and reports show, read from stored analysis runs.

Plain functions over a session, an analysis run and an area that the caller has already
checked against the user's scope (``survey.scope``). Nothing here is computed per request
beyond simple look-ups, so pages stay fast however many responses are stored.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, has_request_context
from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session, aliased, defer, joinedload

from analysis.rules import PASS_LINE
from analysis.text import top_terms
from forms import Definition
from forms.definition import KIND_NAMES
from reports.heatmap import Cell, Row
from survey.localtime import format_local
from survey.models import AnalysisRun, Answer, Area, AreaResult, ItemResult, Response, Wave
from survey.questionnaires import definition_of, find_version
from survey.scope import within

CHILD_LEVEL = {"city": "district", "district": "street", "street": "community", "community": None}
# A community's flag: under 80, at risk of it, clear of it, or too few answers to say.
STATUS_NAMES = {"below": "低于80分", "at_risk": "有风险", "ok": "达标", "undecided": "数据不足"}


def runs_by_wave(session: Session, questionnaire_code: str = "citizen") -> list[AnalysisRun]:
    """Return the newest run of every wave, oldest wave first.

    Their summaries (large JSON: counts and terms per area) load only when read; within a request
    the list is looked up once per questionnaire.
    """
    memo = g.setdefault("runs_by_wave", {}) if has_request_context() else {}
    key = (id(session), questionnaire_code)
    if key not in memo:
        newest = (
            select(AnalysisRun.wave_id, func.max(AnalysisRun.id).label("run_id"))
            .where(AnalysisRun.questionnaire_code == questionnaire_code)
            .group_by(AnalysisRun.wave_id)
            .subquery()
        )
        memo[key] = list(session.scalars(
            select(AnalysisRun).join(newest, newest.c.run_id == AnalysisRun.id).join(Wave)
            .options(defer(AnalysisRun.summary), joinedload(AnalysisRun.wave)).order_by(Wave.opens_at)
        ))
    return list(memo[key])


def analysed_questionnaires(session: Session) -> dict[str, str]:
    """Return {code: title} of the questionnaires whose results office dashboards show, citizen first.

    Those with an analysis run, minors' questionnaires left out (the area page sums them up apart);
    looked up once per request.
    """
    memo = g.setdefault("analysed_questionnaires", {}) if has_request_context() else {}
    if id(session) not in memo:
        memo[id(session)] = _analysed_questionnaires(session)
    return dict(memo[id(session)])


def _analysed_questionnaires(session: Session) -> dict[str, str]:
    shown = {}
    for code in session.scalars(select(AnalysisRun.questionnaire_code).distinct()):
        try:
            definition = definition_of(find_version(session, code))
        except LookupError:
            continue
        if not definition.minors:
            shown[code] = definition.title
    return dict(sorted(shown.items(), key=lambda item: (item[0] != "citizen", item[0])))


def run_definition(run: AnalysisRun) -> Definition:
    """Return the definition of the newest questionnaire version the run's wave fields."""
    versions = [v for v in run.wave.versions if v.questionnaire.code == run.questionnaire_code]
    return definition_of(max(versions, key=lambda v: v.version))


def area_result(session: Session, run: AnalysisRun, area: Area) -> AreaResult | None:
    return session.scalar(select(AreaResult).where(AreaResult.run_id == run.id, AreaResult.area_id == area.id))


@dataclass(frozen=True)
class Rate:
    label: str
    question: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    n: int


def rates(session: Session, run: AnalysisRun, area: Area, definition: Definition) -> list[Rate]:
    """Return the area's awareness, support and participation rates (weighted, 0-1)."""
    items = {i.code: i for i in definition.rate_items}
    rows = session.scalars(
        select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id == area.id, ItemResult.item_code.in_(items))
    ).all()
    by_code = {r.item_code: r for r in rows}
    return [
        Rate(item.short or KIND_NAMES.get(item.kind or "", item.code), item.label, r.estimate,
             _proportion(r.ci_low), _proportion(r.ci_high), r.n)
        for code, item in items.items()
        if (r := by_code.get(code)) is not None
    ]


def _proportion(value: float | None) -> float | None:
    """Keep a stored bound within [0, 1]: runs stored before rates had the logit interval went past 100%."""
    return None if value is None else min(max(value, 0.0), 1.0)


def responses_by_channel(run: AnalysisRun, area: Area) -> dict[str, int]:
    """Return response counts by channel in the area's subtree, as counted by the analysis run."""
    return dict(run.summary.get("channels_by_area", {}).get(area.code, {}))


def heatmap_rows(
    session: Session, run: AnalysisRun, area: Area, definition: Definition, link_for, level: str | None = None
) -> tuple[list[str], list[Row]]:
    """Return the topic columns and one row per child area (the area itself at the bottom level).

    Columns are named by the questionnaire (:attr:`Definition.column_names`: its topics' names).

    With ``level`` the rows are every area of that level in the subtree instead (e.g. all
    communities of a district, for the printed report).
    """
    items = definition.scored_items
    child_level = CHILD_LEVEL[area.level]
    if level is not None:
        children = list(session.scalars(select(Area).where(within(area), Area.level == level).order_by(Area.code)))
    elif child_level is None:
        children = [area]
    else:
        children = list(
            session.scalars(select(Area).where(Area.parent_id == area.id, Area.level == child_level).order_by(Area.code))
        )
    ids = [a.id for a in children]
    found = session.scalars(
        select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id.in_(ids),
                                 ItemResult.item_code.in_([i.code for i in items]))
    ).all()
    cells = {(r.area_id, r.item_code): r for r in found}
    overall = {
        r.area_id: r for r in session.scalars(select(AreaResult).where(AreaResult.run_id == run.id, AreaResult.area_id.in_(ids)))
    }
    columns = [definition.column_names[i.code] for i in items] + ["综合"]
    rows = []
    for child in children:
        row_cells = [
            Cell(r.estimate, r.n, r.ci_low, r.ci_high) if (r := cells.get((child.id, i.code))) else Cell(None)
            for i in items
        ]
        total = overall.get(child.id)
        row_cells.append(Cell(total.estimate, total.n, total.ci_low, total.ci_high) if total else Cell(None))
        note = child.parent.name if level is not None and child.parent is not None and child.parent_id != area.id else ""
        rows.append(Row(child.name, row_cells, link_for(child), note))
    return columns, rows


@dataclass(frozen=True)
class Page:
    """One page of a long list: ``number`` from 1, ``size`` rows a page, ``total`` rows in all.

    >>> p = Page.of("3", 200, 450); (p.number, p.offset, p.pages, p.previous, p.next)
    (3, 400, 3, 2, None)
    >>> Page.of("x", 200, 0).number, Page.of("9", 200, 450).number
    (1, 3)
    """

    number: int
    size: int
    total: int

    @classmethod
    def of(cls, asked, size: int, total: int) -> Page:
        """The page asked for (``?page=``: text or None), kept within the list."""
        try:
            number = int(asked)
        except (TypeError, ValueError):
            number = 1
        pages = max(1, -(-total // size))
        return cls(min(max(number, 1), pages), size, total)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


def _at_risk_query(run: AnalysisRun, area: Area):
    return (
        select(AreaResult, Area)
        .join(Area, Area.id == AreaResult.area_id)
        .where(AreaResult.run_id == run.id, AreaResult.level == "community", AreaResult.status.in_(("below", "at_risk")),
               within(area))
    )


def at_risk(session: Session, run: AnalysisRun, area: Area, limit: int | None = None,
            offset: int = 0) -> list[tuple[AreaResult, Area]]:
    """Return communities below 80 or at risk in the area, most points at stake first (``limit`` rows in SQL)."""
    query = _at_risk_query(run, area).order_by(AreaResult.points_at_stake.desc(), Area.code)
    if limit:
        query = query.limit(limit).offset(offset)
    return [(r, a) for r, a in session.execute(query).all()]


def at_risk_count(session: Session, run: AnalysisRun, area: Area) -> int:
    return session.scalar(_at_risk_query(run, area).with_only_columns(func.count()).order_by(None)) or 0


def quality(session: Session, run: AnalysisRun, area: Area) -> dict | None:
    """Return the data-quality counts of the run's wave in the area's subtree, as the run saw them.

    Read from the run (``quality_by_area``, counted at analysis time); a run stored before it
    kept them is counted here, leaving out responses submitted after the run. ``included`` says
    whether flagged responses were analysed. None when the run stored no quality summary.
    """
    stored = run.summary.get("quality")
    if stored is None:
        return None
    by_area = run.summary.get("quality_by_area")
    if by_area is not None and area.level != "community":
        total, speed, straight, repeat, anyflag = (int(v) for v in by_area.get(area.code, (0, 0, 0, 0, 0)))
    else:
        flags = (Response.flag_speeder, Response.flag_straightline, Response.flag_repeat_device)
        row = session.execute(
            select(func.count(), *(func.sum(f.cast(Integer)) for f in flags),
                   func.sum((flags[0] | flags[1] | flags[2]).cast(Integer)))
            .join(Area, Area.id == Response.area_id)
            .where(Response.wave_id == run.wave_id, Response.submitted_at <= run.created_at, within(area))
        ).one()
        total, speed, straight, repeat, anyflag = (int(v or 0) for v in row)
    return {"responses": total, "flag_speeder": speed, "flag_straightline": straight, "flag_repeat_device": repeat,
            "flagged": anyflag, "included": bool(stored.get("included"))}


def community_results(session: Session, run: AnalysisRun, area: Area) -> list[tuple[AreaResult, Area]]:
    """Return every community of the area with its result, most points at stake first."""
    return [
        (r, a)
        for r, a in session.execute(
            select(AreaResult, Area)
            .join(Area, Area.id == AreaResult.area_id)
            .where(AreaResult.run_id == run.id, AreaResult.level == "community", within(area))
            .order_by(AreaResult.points_at_stake.desc())
        ).all()
    ]


@dataclass(frozen=True)
class Problem:
    community: Area
    street: Area | None
    item: str
    topic: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    n: int


def _problems_query(run: AnalysisRun, area: Area, definition: Definition, parent):
    return (
        select(ItemResult, Area, parent)
        .join(Area, Area.id == ItemResult.area_id)
        .outerjoin(parent, parent.id == Area.parent_id)
        .where(ItemResult.run_id == run.id, Area.level == "community", within(area),
               ItemResult.item_code.in_([i.code for i in definition.scored_items]), ItemResult.estimate < PASS_LINE)
    )


def problems(session: Session, run: AnalysisRun, area: Area, definition: Definition, limit: int | None = None,
             offset: int = 0) -> list[Problem]:
    """Return community x topic pairs under 80 in the area, lowest score first (问题清单); ``limit`` rows in SQL."""
    parent = aliased(Area)
    query = _problems_query(run, area, definition, parent).order_by(ItemResult.estimate, Area.code, ItemResult.item_code)
    if limit:
        query = query.limit(limit).offset(offset)
    return [
        Problem(a, p, r.item_code, definition.column_names[r.item_code], r.estimate, r.ci_low, r.ci_high, r.n)
        for r, a, p in session.execute(query).all()
    ]


def problems_count(session: Session, run: AnalysisRun, area: Area, definition: Definition) -> int:
    query = _problems_query(run, area, definition, aliased(Area))
    return session.scalar(query.with_only_columns(func.count()).order_by(None)) or 0


def topic_results(session: Session, run: AnalysisRun, area: Area, definition: Definition) -> list[tuple[str, str, ItemResult | None]]:
    """Return (topic name, question, result) for every scored item of the area."""
    rows = {
        r.item_code: r
        for r in session.scalars(select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id == area.id))
    }
    return [(definition.column_names[i.code], i.label, rows.get(i.code)) for i in definition.scored_items]


def trend(session: Session, area: Area, questionnaire_code: str = "citizen") -> list[tuple[str, AreaResult]]:
    """Return (wave name, result) for the area across waves, oldest first: one query over every wave's newest run."""
    newest = (
        select(func.max(AnalysisRun.id))
        .where(AnalysisRun.questionnaire_code == questionnaire_code)
        .group_by(AnalysisRun.wave_id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Wave.name, AreaResult)
        .join(AnalysisRun, AnalysisRun.id == AreaResult.run_id)
        .join(Wave, Wave.id == AnalysisRun.wave_id)
        .where(AreaResult.area_id == area.id, AreaResult.run_id.in_(newest))
        .order_by(Wave.opens_at, Wave.id)
    ).all()
    return [(name, result) for name, result in rows]


def comments(session: Session, wave_id: int, area: Area, terms: list[tuple[str, int]] | None = None,
             limit: int = 200) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    """Return the area's newest free-text comments (date, text) and their most frequent terms.

    ``terms`` are the ones the refresh stored with the run (no segmenting in a request); without
    them (a run from before terms were stored) they are counted here.
    """
    rows = session.execute(
        select(Response.submitted_at, Answer.text)
        .join(Response, Response.id == Answer.response_id)
        .join(Area, Area.id == Response.area_id)
        .where(Response.wave_id == wave_id, within(area), Answer.text.is_not(None))
        .order_by(Response.submitted_at.desc())
        .limit(limit)
    ).all()
    texts = [(format_local(when, "%Y-%m-%d"), text) for when, text in rows if text is not None]  # (none is: see the query)
    return texts, terms if terms is not None else top_terms([t for _, t in texts])


@dataclass(frozen=True)
class MinorSummary:
    run: AnalysisRun
    own: AreaResult | None
    districts: list[tuple[Area, AreaResult]]


def minor_summary(session: Session, wave_id: int, area: Area) -> MinorSummary | None:
    """Return the minors questionnaire's results for the area (city or district), if analysed."""
    run = session.scalar(
        select(AnalysisRun).where(AnalysisRun.wave_id == wave_id, AnalysisRun.questionnaire_code == "minor")
        .options(defer(AnalysisRun.summary)).order_by(AnalysisRun.id.desc()).limit(1)
    )
    if run is None or area.level not in ("city", "district"):
        return None
    districts = [
        (a, r) for r, a in session.execute(
            select(AreaResult, Area).join(Area, Area.id == AreaResult.area_id)
            .where(AreaResult.run_id == run.id, AreaResult.level == "district", within(area))
            .order_by(Area.code)
        ).all()
    ]
    return MinorSummary(run, area_result(session, run, area), districts)
