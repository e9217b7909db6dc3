"""The fieldwork monitor for offices: where to send grid workers during a wave, and to find whom.

:func:`fieldwork_plan` counts the current wave's scored answers per community and weighting
cell (``survey.plans.score_cells``, the analysis's own aggregation), takes estimates and
standard errors from the wave's newest stored analysis where there is one (else the answers'
plain mean and variance), and hands them to :mod:`analysis.fieldwork`. The numbers are computed
for the whole city (a community's priority is about the city's estimate) and then cut to the
user's area. Views: ``/office/fieldwork`` (page, ``?area=`` a sub-area, ``?sort=``) and
``/office/fieldwork.csv``; :func:`register` adds them to the office blueprint.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, defer

from analysis.fieldwork import NO_DATA, TARGET_HALF_WIDTH, plan_fieldwork
from analysis.points import DECIDE_PROBABILITY
from survey import db
from survey.appcontext import app_object
from survey.caching import app_cache
from survey.models import AnalysisRun, Area, AreaResult, Wave
from survey.plans import base_plan, margin_variables, plan_for, score_cells
from survey.questionnaires import definition_of
from survey.results import MarginsError, margins_frame
from survey.scope import within

SORTS = {"priority": "优先次序", "decide": "判定还需", "precision": "精度还需", "answers": "答卷最少", "name": "社区名称"}
CACHE_SECONDS = 60  # the page's and the CSV's counts are at most about this old (FIELDWORK_CACHE_SECONDS)
STATUS_TEXT = {"below": "低于80分", "at_risk": "有风险", "ok": "达标", "undecided": "数据不足", NO_DATA: "尚无估计"}


@dataclass(frozen=True)
class Group:
    """A respondent group short of its population share in a community."""

    label: str
    more: int
    sample_share: float | None
    population_share: float


@dataclass(frozen=True)
class Place:
    """What the page and the CSV show of a community: read as plain columns, not as an ORM object."""

    id: int
    code: str
    name: str


@dataclass(frozen=True)
class FieldworkRow:
    community: Place
    street: str
    answers: int
    status: str
    estimate: float | None
    answers_to_decide: int | None
    half_width: float | None
    answers_for_precision: int | None
    priority: float
    city_rank: int
    groups: list[Group]
    more_by_group: dict[str, int | None]


@dataclass
class FieldworkPlan:
    area: Area
    wave: Wave | None
    run: AnalysisRun | None
    rows: list[FieldworkRow] = field(default_factory=list)
    group_columns: list[tuple[str, str]] = field(default_factory=list)  # (key, label) of every group
    half_width: float = TARGET_HALF_WIDTH
    decide_probability: float = DECIDE_PROBABILITY  # answers_to_decide decide the flag with this probability

    @property
    def answers(self) -> int:
        return sum(r.answers for r in self.rows)

    @property
    def without_answers(self) -> int:
        return sum(1 for r in self.rows if r.answers == 0)

    @property
    def undecided(self) -> int:
        return sum(1 for r in self.rows if r.status == "undecided")

    @property
    def more_for_precision(self) -> int:
        return sum(r.answers_for_precision or 0 for r in self.rows)


def current_wave(session: Session, now: datetime | None = None) -> Wave | None:
    """Return the wave open now (the latest opened if several), else the latest wave."""
    now = now or datetime.now(UTC)
    waves = list(session.scalars(select(Wave).order_by(Wave.opens_at.desc())))
    return next((w for w in waves if w.is_open(now)), waves[0] if waves else None)


def _latest_run(session: Session, wave: Wave, questionnaire_code: str) -> AnalysisRun | None:
    return session.scalar(
        select(AnalysisRun).where(AnalysisRun.wave_id == wave.id, AnalysisRun.questionnaire_code == questionnaire_code)
        .order_by(AnalysisRun.id.desc()).limit(1)
    )


def _number(value) -> int | None:
    return None if value is None or not math.isfinite(value) else int(value)


@dataclass(frozen=True)
class CityPlan:
    """The whole city's fieldwork numbers (no ORM objects: kept across requests), cut per area by :func:`fieldwork_plan`."""

    wave_id: int | None
    run_id: int | None
    unit: str
    communities: list[tuple]  # (domain, answers, status, estimate, to decide, half width, for precision, priority, rank)
    groups: dict[str, list[tuple]]  # domain -> (variable, category, answers to share, sample share, population share)
    group_columns: list[tuple[str, str]]
    labels: dict[tuple[str, str], str]
    computed_at: float = 0.0
    # domain -> the FieldworkRow fields after the community and street, worked out once (read-only: shared by requests)
    prepared: dict[str, tuple] = field(default_factory=dict)


def city_plan(session: Session, wave: Wave | None, questionnaire_code: str = "citizen",
              half_width: float = TARGET_HALF_WIDTH) -> CityPlan:
    """Count the wave's answers per community and cell now and plan the fieldwork of the whole city."""
    unit = base_plan(questionnaire_code).unit
    versions = [v for v in wave.versions if v.questionnaire.code == questionnaire_code] if wave else []
    if wave is None or not versions:
        return CityPlan(wave.id if wave else None, None, unit, [], {}, [], {}, time.monotonic())
    # The groups are those the analysis weights by: the questionnaire's attributes the margins name.
    plan_of = plan_for([definition_of(v) for v in versions], questionnaire_code,
                       margin_variables(session, questionnaire_code))
    cells = score_cells(session, wave.id, [v.id for v in versions], plan=plan_of)
    attributes = [c for c in cells.columns if c not in (unit, "channel", "n", "total", "total_sq")]
    units = session.execute(select(Area.code, Area.adult_population).where(Area.level == unit).order_by(Area.code)).all()
    try:
        margins = margins_frame(session, questionnaire_code)
    except MarginsError:
        margins = pd.DataFrame(columns=["variable", "category", "total"])
    domains = pd.DataFrame({"domain": [code for code, _ in units],
                            "population": [float(population or 0) for _, population in units]})
    run = _latest_run(session, wave, questionnaire_code)
    estimates = _stored_estimates(session, run, unit) if run is not None else _plain_estimates(cells, unit)
    domains = domains.merge(estimates, on="domain", how="left")
    counts = (cells.astype({a: str for a in attributes}).groupby([unit, *attributes])["n"].sum().reset_index()
              if not cells.empty else pd.DataFrame(columns=[unit, *attributes, "n"]))
    fw = plan_fieldwork(domains, counts, margins, by=unit, half_width=half_width)

    labels = _group_labels([definition_of(v) for v in versions])
    groups = fw.groups
    group_columns = [
        (f"{v}={c}", labels.get((v, c), f"{v}={c}"))
        for v, c in dict.fromkeys(zip(groups["variable"], groups["category"]))
    ] if not groups.empty else []
    by_domain: dict[str, list[tuple]] = {}  # one pass over the columns (itertuples per part makes a class each time)
    if not groups.empty:
        for row in zip(groups["domain"], groups["variable"], groups["category"], groups["answers_to_share"],
                       groups["sample_share"], groups["population_share"]):
            by_domain.setdefault(row[0], []).append(row[1:])
    c = fw.communities
    communities = list(zip(c["domain"], c["answers"], c["status"], c["estimate"], c["answers_to_decide"], c["half_width"],
                           c["answers_for_precision"], c["priority"], c["rank"]))
    return CityPlan(wave.id, run.id if run is not None else None, unit, communities, by_domain, group_columns, labels,
                    time.monotonic(), _prepare(communities, by_domain, labels))


def _prepare(communities: list[tuple], groups: dict[str, list[tuple]], labels: dict[tuple[str, str], str],
             ) -> dict[str, tuple]:
    """Return each community's row fields (all but the community and its street) as :class:`FieldworkRow` takes them."""
    prepared = {}
    for domain, answers, status, estimate, decide, width, precision, priority, rank in communities:
        short: list[Group] = []
        more: dict[str, int | None] = {}
        for variable, category, to_share, sample_share, population_share in groups.get(domain, ()):
            key = f"{variable}={category}"
            need = _number(to_share)
            more[key] = need
            if need:
                short.append(Group(labels.get((variable, category), key), need,
                                   None if np.isnan(sample_share) else float(sample_share), float(population_share)))
        short.sort(key=lambda g: -g.more)
        prepared[domain] = (int(answers), str(status), None if np.isnan(estimate) else float(estimate), _number(decide),
                            None if np.isnan(width) else float(width), _number(precision), float(priority), int(rank),
                            short, more)
    return prepared


def fieldwork_plan(session: Session, area: Area, questionnaire_code: str = "citizen", sort: str = "priority",
                   half_width: float = TARGET_HALF_WIDTH, wave: Wave | None = None,
                   city: CityPlan | None = None) -> FieldworkPlan:
    """Return the fieldwork plan of the current wave for the communities in ``area`` (already scope-checked).

    ``city``: the city's numbers computed earlier (:func:`cached_city_plan`); else counted now.
    """
    wave = wave or current_wave(session)
    result = FieldworkPlan(area, wave, None, half_width=half_width)
    if wave is None:
        return result
    if city is None:
        city = city_plan(session, wave, questionnaire_code, half_width)
    if not city.communities:  # (also: the wave does not field the questionnaire)
        return result
    # The run's time only (its summary is large and not shown here).
    result.run = (session.get(AnalysisRun, city.run_id, options=[defer(AnalysisRun.summary)])
                  if city.run_id is not None else None)
    result.group_columns = city.group_columns
    parent = aliased(Area)
    visible = session.execute(
        select(Area.id, Area.code, Area.name, parent.name).outerjoin(parent, parent.id == Area.parent_id)
        .where(within(area), Area.level == city.unit)).all()
    prepared = city.prepared or _prepare(city.communities, city.groups, city.labels)
    rows = []
    for area_id, code, name, street in visible:
        fields = prepared.get(code)
        if fields is not None:  # (a community added since the numbers were counted: in the next count)
            rows.append(FieldworkRow(Place(area_id, code, name), street or "", *fields))
    result.rows = sort_rows(rows, sort)
    return result


_refreshing: set[tuple] = set()
_refreshing_lock = threading.Lock()


def cached_city_plan(session: Session, wave: Wave | None, questionnaire_code: str = "citizen") -> CityPlan:
    """Return the city's plan as counted at most ``FIELDWORK_CACHE_SECONDS`` (60) ago, kept per app.

    An older one is still returned while a thread counts again (so no request waits for the count
    over all responses); a new analysis run is a new key, counted at once. ``survey.warmup`` counts
    the current wave's when a worker starts.
    """
    app = app_object()
    seconds = float(app.config.get("FIELDWORK_CACHE_SECONDS", CACHE_SECONDS))
    if wave is None or seconds <= 0:
        return city_plan(session, wave, questionnaire_code)
    run = _latest_run(session, wave, questionnaire_code)
    key = (wave.id, questionnaire_code, run.id if run is not None else None)
    cache = app_cache("fieldwork", "FIELDWORK_CACHE_SECONDS", CACHE_SECONDS, 4, app)
    found = cache.get(key)
    if found is None:
        found = city_plan(session, wave, questionnaire_code)
        cache.put(key, found)
    elif time.monotonic() - found.computed_at > seconds:
        with _refreshing_lock:
            start = key not in _refreshing
            _refreshing.add(key)
        if start:
            threading.Thread(target=_count_again, args=(app, key), name="fieldwork-count", daemon=True).start()
    return found


def _count_again(app, key: tuple) -> None:
    wave_id, code, _ = key
    try:
        with app.app_context():
            session = db.session()
            found = city_plan(session, session.get(Wave, wave_id), code)
            app_cache("fieldwork", "FIELDWORK_CACHE_SECONDS", CACHE_SECONDS, 4, app).put(key, found)
    except Exception:  # the old numbers stay; the next request tries again
        app.logger.exception("could not count the fieldwork of wave %s again", wave_id)
    finally:
        with _refreshing_lock:
            _refreshing.discard(key)


def sort_rows(rows: list[FieldworkRow], sort: str) -> list[FieldworkRow]:
    """Order rows by ``sort`` (a key of ``SORTS``): city priority by default, the largest need first otherwise."""
    if sort == "decide":
        return sorted(rows, key=lambda r: (-(r.answers_to_decide or 0), r.city_rank))
    if sort == "precision":
        return sorted(rows, key=lambda r: (-(r.answers_for_precision or 0), r.city_rank))
    if sort == "answers":
        return sorted(rows, key=lambda r: (r.answers, r.city_rank))
    if sort == "name":
        return sorted(rows, key=lambda r: (r.street, r.community.name, r.community.code))
    return sorted(rows, key=lambda r: r.city_rank)


def _stored_estimates(session: Session, run: AnalysisRun, unit: str) -> pd.DataFrame:
    """Return the run's community results as the analysis's domain table names them."""
    rows = session.execute(
        select(Area.code, AreaResult.n, AreaResult.estimate, AreaResult.se, AreaResult.n_eff, AreaResult.eb_estimate,
               AreaResult.eb_mse, AreaResult.population)
        .join(Area, Area.id == AreaResult.area_id)
        .where(AreaResult.run_id == run.id, AreaResult.level == unit)
    ).all()
    frame = pd.DataFrame(rows, columns=["domain", "n", "estimate", "se", "n_eff", "eb_estimate", "eb_mse", "run_population"])
    return frame.astype({c: float for c in frame.columns if c != "domain"})


def _plain_estimates(cells: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Return unweighted means and their variances per community, before the wave's first analysis."""
    if cells.empty:
        return pd.DataFrame(columns=["domain", "n", "estimate", "se", "n_eff"])
    per = cells.groupby(unit)[["n", "total", "total_sq"]].sum().astype(float)
    mean = per["total"] / per["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = ((per["total_sq"] - per["n"] * mean**2) / (per["n"] - 1)).clip(lower=0)
        se = np.sqrt(variance / per["n"])
    return pd.DataFrame({"domain": per.index.astype(str), "n": per["n"].to_numpy(), "estimate": mean.to_numpy(),
                         "se": se.to_numpy(), "n_eff": per["n"].to_numpy()})


def _group_labels(definitions) -> dict[tuple[str, str], str]:
    """Return the choice label of every (attribute, code), e.g. ("sex", "M") -> 男."""
    labels: dict[tuple[str, str], str] = {}
    for definition in definitions:
        items = {i.code: i for i in definition.items}
        for attribute, code in definition.attributes.items():
            for choice in items[code].choices:
                labels.setdefault((attribute, choice.code), choice.label)
    return labels
