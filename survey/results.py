"""Stored analysis of a wave: aggregate in SQL, run the analysis engine, keep the results.

The database does the heavy part in two ``GROUP BY`` queries (per community x the weighting
attributes, e.g. sex x age band: count, sum and sum of squares of respondent scores; per the same
cells x item x choice: counts), so the cost of an analysis does not grow with the number of
responses. The weighting attributes are the questionnaire's own (``response.attributes``) that the
imported margins name.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import Integer, bindparam, delete, func, insert, select, text
from sqlalchemy.orm import Session

from analysis.errors import AnalysisError
from analysis.levels import channel_estimates, item_levels, upper_levels
from analysis.pipeline import analyze_aggregates
from analysis.raking import restrict_margins
from analysis.scoring import choice_cells
from forms import Definition
from survey.aggregates import Aggregator, read_aggregates, update_aggregates
from survey.csv_files import csv_reader
from survey.db import driver_connection
from survey.models import (
    GRADE_BANDS,
    AnalysisRun,
    Area,
    AreaResult,
    ItemResult,
    PopulationMargin,
    QuestionnaireVersion,
    Response,
    School,
    SchoolClass,
    Wave,
)
from survey.plans import (
    Plan,
    base_plan,
    design_of,
    margin_variables,
    plan_for,
    questionnaire_definitions,
)
from survey.quality import last_mark_of_run, mark_wave, purge_device_data
from survey.questionnaires import definition_of


class MarginsError(ValueError):
    """Margins that cannot be used; the message says what to fix."""


def import_margins(session: Session, text: str, questionnaire_code: str = "citizen") -> int:
    """Replace the stored margins of a questionnaire with CSV rows variable,category,total.

    A variable is an area level of the questionnaire's analysis (e.g. community, district) or
    one of its respondent attributes (e.g. sex, education).
    """
    definitions = questionnaire_definitions(session, questionnaire_code)
    if not definitions:
        raise MarginsError(f"there is no questionnaire {questionnaire_code!r}")
    levels = base_plan(questionnaire_code).levels
    attributes = list(dict.fromkeys(a for d in definitions for a in d.attributes))
    reader = csv_reader(text, MarginsError)
    if [c.strip() for c in reader.fieldnames or []][:3] != ["variable", "category", "total"]:
        raise MarginsError("line 1: the columns must be variable,category,total")
    rows = []
    for line, row in enumerate(reader, start=2):
        variable, category = (row.get("variable") or "").strip(), (row.get("category") or "").strip()
        try:
            total = float(row.get("total") or "")
        except ValueError:
            raise MarginsError(f"line {line}: total {row.get('total')!r} is not a number") from None
        if not variable or not category or not total > 0:
            raise MarginsError(f"line {line}: need a variable, a category and a positive total")
        if variable not in levels and variable not in attributes:
            raise MarginsError(
                f"line {line}: {variable!r} is neither an area level ({', '.join(levels)}) nor an attribute "
                f"of the {questionnaire_code} questionnaire ({', '.join(attributes) or 'it has none'})"
            )
        rows.append(PopulationMargin(questionnaire_code=questionnaire_code, variable=variable, category=category, total=total))
    if not rows:
        raise MarginsError("the file has no rows")
    session.execute(delete(PopulationMargin).where(PopulationMargin.questionnaire_code == questionnaire_code))
    session.add_all(rows)
    session.flush()
    return len(rows)


def margins_frame(session: Session, questionnaire_code: str = "citizen") -> pd.DataFrame:
    """Return the raking targets: stored margins, with communities' adult population by default."""
    stored = session.execute(
        select(PopulationMargin.variable, PopulationMargin.category, PopulationMargin.total).where(
            PopulationMargin.questionnaire_code == questionnaire_code
        )
    ).all()
    frame = pd.DataFrame(stored, columns=["variable", "category", "total"])
    if questionnaire_code == "minor" and frame.empty:
        return enrolment_margins(session)
    if base_plan(questionnaire_code).unit == "community" and not (frame["variable"] == "community").any():
        communities = session.execute(
            select(Area.code, Area.adult_population).where(Area.level == "community", Area.adult_population.is_not(None))
        ).all()
        community_rows = pd.DataFrame(
            [("community", code, float(pop)) for code, pop in communities if pop is not None],  # (none is: see the query)
            columns=["variable", "category", "total"]
        )
        frame = pd.concat([community_rows, frame], ignore_index=True)
    if frame.empty:
        raise MarginsError(
            "no population margins: import them with `flask --app survey import-margins FILE` "
            "(variable,category,total) or give communities an adult_population"
        )
    return frame


def enrolment_margins(session: Session) -> pd.DataFrame:
    """Return the minors' raking targets from the imported classes: pupils by district and grade band."""
    rows = session.execute(
        select(Area.code, SchoolClass.grade, func.sum(SchoolClass.pupils))
        .join(School, School.id == SchoolClass.school_id)
        .join(Area, Area.id == School.district_id)
        .group_by(Area.code, SchoolClass.grade)
    ).all()
    if not rows:
        raise MarginsError("no enrolment: import schools and classes (flask --app survey import-schools FILE)")
    frame = pd.DataFrame(rows, columns=["district", "grade", "pupils"])
    frame["grade_band"] = frame["grade"].map(GRADE_BANDS)
    district = frame.groupby("district")["pupils"].sum()
    band = frame.groupby("grade_band")["pupils"].sum()
    return pd.concat([
        pd.DataFrame({"variable": "district", "category": district.index, "total": district.to_numpy(dtype=float)}),
        pd.DataFrame({"variable": "grade_band", "category": band.index, "total": band.to_numpy(dtype=float)}),
    ], ignore_index=True)


def choice_values(definitions: dict[int, Definition]) -> dict[tuple[int, str, str], float]:
    """Return what each choice is worth, by (version id, item, choice): each item type says (a score for
    ratings, 1/0 for yes-type; a choice it gives None is left out)."""
    values = {}
    for version_id, definition in definitions.items():
        for item in definition.items:
            for choice in item.choices:
                if (value := item.handler.value(choice)) is not None:
                    values[(version_id, item.code, choice.code)] = value
    return values


def item_cells_from_choices(choices: pd.DataFrame, definitions: dict[int, Definition], keys: list[str]) -> pd.DataFrame:
    """Turn choice counts into per-cell item statistics (see :func:`choice_values`)."""
    return choice_cells(choices, choice_values(definitions), keys)


def run_analysis(
    session: Session,
    wave: Wave,
    questionnaire_code: str = "citizen",
    progress: Callable[[str], None] | None = None,
    include_flagged: bool = False,
    full: bool = False,
    previous: AnalysisRun | None = None,
) -> AnalysisRun | None:
    """Analyse a wave's responses to one questionnaire and store the results as a new run.

    Responses with a data-quality flag are left out unless ``include_flagged``; the run's
    summary says how many and why. The cells come from the stored statistics, brought up to
    date with the responses added since the last run (``full``: rebuilt from all responses),
    see ``survey/aggregates.py``.

    With ``previous`` (the questionnaire's newest run in the wave) nothing is aggregated, analysed or
    stored when nothing it depends on changed since: None is returned. That is when ``previous`` is the
    wave's newest run, whose flag pass this one started from, this pass settled no new response of the
    wave and changed no flag, the stored statistics hold exactly up to what ``previous`` analysed with
    nothing after it (:meth:`Aggregator.holds_up_to`), and the plan, versions, margins, areas and
    ``include_flagged`` are the same (:func:`_inputs`, a digest kept in the summary).
    """
    say = progress or (lambda message: None)
    versions = [v for v in wave.versions if v.questionnaire.code == questionnaire_code]
    if not versions:
        raise AnalysisError(f"wave {wave.name} does not field the {questionnaire_code} questionnaire")
    definitions = {v.id: definition_of(v) for v in versions}
    if not any(d.scored_items for d in definitions.values()):
        raise AnalysisError(f"the {questionnaire_code} questionnaire has no scored question: there is no satisfaction "
                            "to estimate (its answers are kept and exported)")
    plan = plan_for(definitions.values(), questionnaire_code, margin_variables(session, questionnaire_code),
                    design_of(session, wave.id, questionnaire_code))
    since, since_run = (None, None) if full else last_mark_of_run(session, wave.id)  # the flags it left are right up to there
    marked = mark_wave(session, wave.id, since, count=False)
    changed = marked.pop("changed")
    purged = purge_device_data(session)
    say(f"flags: {changed} data-quality flags changed")
    areas = {a.code: a for a in session.scalars(select(Area))}
    all_margins = margins_frame(session, questionnaire_code)
    inputs = _inputs(plan, list(definitions), all_margins, areas, include_flagged)
    # The wave's newest run, whose flag pass this one started from, changed nothing and settled nothing new.
    quiet = (previous is not None and since_run == previous.id and changed == 0 and purged == 0
             and _same_pass(since, marked["marked"]))
    if quiet and previous is not None and _holds(previous.summary, inputs) and Aggregator(
            session, wave.id, questionnaire_code, list(definitions), plan).holds_up_to(previous.summary["aggregation"]["upto"]):
        say(f"nothing new since run {previous.id}: stored nothing")
        return None
    aggregator, aggregation = update_aggregates(session, wave.id, questionnaire_code, list(definitions), plan, full)
    say(f"aggregated {aggregation.added:,} new responses, moved {aggregation.moved:,} ({aggregation.mode})")
    tallies = response_tallies(session, wave.id)  # after the flags and the purge: what the run's summary counts
    quality = tallied_flags(tallies) | marked | {"included": include_flagged, "purged": purged}
    say(f"counted {quality['responses']} responses per area, {quality['flagged']} with a data-quality flag")
    cells, item_cells = read_aggregates(aggregator, aggregation, include_flagged, values=choice_values(definitions))
    if cells.empty:
        raise AnalysisError(f"wave {wave.name} has no scored {questionnaire_code} responses yet")
    say(f"read {int(cells['n'].sum()):,} responses in {len(cells):,} cells back")
    hierarchy = _hierarchy(areas, plan)
    unit = plan.unit
    cells = cells.join(hierarchy, on=unit)
    margins, left_out = restrict_margins(all_margins, unit, set(cells[unit]))
    item_cells = item_cells.join(hierarchy, on=unit)
    attributes = hierarchy.set_index(hierarchy.index.rename("domain"))
    quota_by = "district" if "district" in plan.upper else None
    rates = sorted({i.code for d in definitions.values() for i in d.rate_items})  # 0/1: logit interval
    design = plan.design.arguments() if plan.design is not None else {}  # an imported designed sample's
    result = analyze_aggregates(cells, margins, by=unit, item_cells=item_cells, attributes=attributes,
                                quota_by=quota_by, model_by=plan.model_by, rates=rates, **design)
    say(f"raked in {result.rake.iterations} iterations; {len(result.domains)} areas estimated")

    run = AnalysisRun(wave=wave, questionnaire_code=questionnaire_code, respondents=int(cells["n"].sum()),
                      summary=_summary(session, wave, versions, result, left_out, areas, tallies)
                      | {"quality": quality, "aggregation": aggregation.as_dict(), "inputs": inputs})
    session.add(run)
    session.flush()
    # Core INSERTs of plain rows: thousands of ORM objects (and their RETURNING ids) cost seconds.
    _insert_rows(session, AreaResult, [dict(run_id=run.id, area_id=areas[row.domain].id, level=unit, **_area_fields(row))
                                       for row in result.domains.itertuples()])
    upper = upper_levels(result, cells, hierarchy, plan.upper)
    _insert_rows(session, AreaResult, [
        dict(run_id=run.id, area_id=areas[row.domain].id, level=level, **_direct_fields(row))
        for level, table in upper.items() for row in table.itertuples()
    ])
    needed = {  # 数据不足: more answers that would decide the status (no AreaResult column for it yet)
        row.domain: int(row.answers_needed)
        for table in (result.domains, *upper.values()) for row in table.itertuples() if _number(row.answers_needed) is not None
    }
    run.summary = run.summary | {"by_channel": channel_estimates(result, cells, plan.upper), "answers_needed": needed}
    stored_items = 0
    for items in item_levels(result, item_cells, cells, hierarchy, unit, plan.upper, rates, plan.model_by).values():
        stored_items += len(items)
        _insert_rows(session, ItemResult, [
            dict(run_id=run.id, area_id=areas[row.domain].id, item_code=row.item, n=int(row.n),
                 estimate=float(row.estimate), se=float(row.se), ci_low=_number(row.ci_low),
                 ci_high=_number(row.ci_high), eb_estimate=_number(row.eb_estimate))
            for row in items.itertuples()
        ])
    session.flush()
    _analyze_if_grown(session, {AreaResult: len(result.domains) + sum(len(t) for t in upper.values()),
                                ItemResult: stored_items})
    say(f"stored run {run.id}")
    return run


def _inputs(plan: Plan, version_ids: list[int], margins: pd.DataFrame, areas: dict[str, Area],
            include_flagged: bool) -> str:
    """Return a digest of what a run's numbers depend on besides the responses and their flags: the plan (an
    imported sample's design included), the versions, the margins (communities' populations included), the
    areas' tree, ``include_flagged``."""
    digest = hashlib.sha256()
    design = plan.design
    digest.update(json.dumps([plan.unit, list(plan.attributes), list(plan.upper), sorted(version_ids), include_flagged,
                              [design.cluster, design.strata, design.fpc, design.weights, design.lonely_psu]
                              if design is not None else None]).encode())
    digest.update(margins.to_csv(index=False).encode())
    digest.update(json.dumps(sorted((a.id, code, a.level, a.parent_id) for code, a in areas.items())).encode())
    return digest.hexdigest()[:32]


def _same_pass(since: dict | None, marked: dict) -> bool:
    """Return whether a flag pass (``marked``) settled nothing new after the one before (``since``) and kept its
    thresholds (nothing unsettled before or now)."""
    return (since is not None and marked["upto"] == since.get("upto") and not marked["pending"]
            and not since.get("pending") and marked["thresholds"] == since.get("thresholds"))


def _holds(summary: dict, inputs: str) -> bool:
    """Return whether a run with this summary was made from these inputs, with no response counted on the fly."""
    before = summary.get("aggregation") or {}
    return summary.get("inputs") == inputs and before.get("tail") == 0 and "upto" in before


GROWN = 0.1  # autovacuum analyses a table after changes to 10% of its rows (autovacuum_analyze_scale_factor)


def _analyze_if_grown(session: Session, added: dict) -> None:
    """ANALYZE the results tables (PostgreSQL) whose planner row count a run's rows changed by more than ``GROWN``.

    The pages' queries (a run's problem list, its flagged communities) otherwise get plans made for
    nearly empty tables. Once a table holds many runs, a new one changes it by less than autovacuum
    waits for, and sampling it at every refresh cost a tenth of a second.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    names = [model.__tablename__ for model, rows in added.items() if rows]
    known: dict[str, float] = dict(session.execute(text("SELECT relname, reltuples FROM pg_class WHERE relname IN :names AND relkind = 'r'")
                                 .bindparams(bindparam("names", expanding=True)), {"names": names}).all())
    stale = [model.__tablename__ for model, rows in added.items()
             if rows and rows > GROWN * max(float(known.get(model.__tablename__, -1)), 0.0)]
    if stale:
        session.execute(text(f"ANALYZE {', '.join(stale)}"))


def _insert_rows(session: Session, model, rows: list[dict]) -> None:
    """Insert plain rows of a model (rows with the same keys): COPY on PostgreSQL, else one executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(model.__table__), rows)
        return
    columns = list(rows[0])
    table = model.__table__
    names = ", ".join(table.c[name].name for name in columns)
    cursor = driver_connection(session).cursor()  # the session's own transaction
    with cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])


def _hierarchy(areas: dict[str, Area], plan: Plan) -> pd.DataFrame:
    """Return, per area of the plan's unit level, the codes of its areas at the upper levels."""
    by_id = {a.id: a for a in areas.values()}
    rows = {}
    for area in areas.values():
        if area.level != plan.unit:
            continue
        chain = {}
        node = area
        while node.parent_id is not None:
            node = by_id[node.parent_id]
            chain[node.level] = node.code
        rows[area.code] = {level: chain.get(level, area.code) for level in plan.upper}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(plan.upper)).rename_axis(plan.unit)


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _direct_fields(row) -> dict:
    return {
        "n": int(row.n),
        "estimate": float(row.estimate),
        "se": float(row.se),
        "ci_low": _number(row.ci_low),
        "ci_high": _number(row.ci_high),
        "n_eff": float(row.n_eff),
        "population": float(row.weight_sum),
        "prob_below_80": _number(row.prob_below_80),  # none without a usable variance
        "status": str(row.status),
        "points_at_stake": float(row.points_at_stake),
        "share_of_lost": float(row.share_of_lost),
        "df": _number(row.df),
        "variance_warning": str(row.variance_warning or ""),
        "answers_to_decide": _whole(row.answers_to_decide),
    }


def _whole(value) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _area_fields(row) -> dict:
    return _direct_fields(row) | {
        "eb_estimate": float(row.eb_estimate),
        "eb_mse": _number(row.eb_mse),
        "rank_by_cost": int(row.rank_by_cost),
    }


def response_tallies(session: Session, wave_id: int) -> list[tuple]:
    """Return the wave's responses counted per area x version x channel: (area id, version id, channel,
    responses, speeders, straight-liners, repeated devices, any flag).

    One pass over the wave's responses for what the run's summary counts (responses by channel,
    quality counts by area, the flag totals), instead of one pass each.
    """
    flags = [getattr(Response, f) for f in QUALITY_FLAGS]
    return [tuple(row) for row in session.execute(
        select(Response.area_id, Response.questionnaire_version_id, Response.channel, func.count(),
               *(func.sum(f.cast(Integer)) for f in flags), func.sum((flags[0] | flags[1] | flags[2]).cast(Integer)))
        .where(Response.wave_id == wave_id)
        .group_by(Response.area_id, Response.questionnaire_version_id, Response.channel)
    )]


def tallied_flags(tallies: list[tuple]) -> dict[str, int]:
    """Return the flag totals of :func:`response_tallies` as :func:`survey.quality.flag_counts` gives them."""
    totals = [sum(int(row[i] or 0) for row in tallies) for i in range(3, 8)]
    return dict(zip(("responses", *QUALITY_FLAGS, "flagged"), totals, strict=True))


def channel_counts(session: Session, wave: Wave, versions: list[QuestionnaireVersion], areas: dict[str, Area],
                   tallies: list[tuple] | None = None) -> dict[str, dict[str, int]]:
    """Return response counts by channel for every area code (communities summed upwards)."""
    tallies = response_tallies(session, wave.id) if tallies is None else tallies
    chosen = {v.id for v in versions}
    by_id = {a.id: a for a in areas.values()}
    out: dict[str, dict[str, int]] = {}
    for area_id, version_id, channel, count, *_ in tallies:
        if version_id not in chosen:
            continue
        node = by_id.get(area_id)
        while node is not None:
            counts = out.setdefault(node.code, {})
            counts[channel] = counts.get(channel, 0) + count
            node = by_id.get(node.parent_id) if node.parent_id else None
    return out


QUALITY_FLAGS = ("flag_speeder", "flag_straightline", "flag_repeat_device")


def quality_counts(session: Session, wave: Wave, areas: dict[str, Area], tallies: list[tuple] | None = None,
                   ) -> dict[str, list[int]]:
    """Return, for every area above the communities, [responses, speeders, straight-liners, repeated devices,
    any flag] of the wave.

    Counted at analysis time (:func:`response_tallies`), so that a page reads the counts from
    the run (``survey.reading.dashboard.quality``) instead of counting a million responses. Communities
    are left out (their pages do not show them; the run's summary stays small).
    """
    tallies = response_tallies(session, wave.id) if tallies is None else tallies
    by_id = {a.id: a for a in areas.values()}
    out: dict[str, list[int]] = {}
    for area_id, _version, _channel, *counts in tallies:
        node = by_id.get(area_id)
        while node is not None:
            if node.level != "community":
                totals = out.setdefault(node.code, [0] * 5)
                for i, value in enumerate(counts):
                    totals[i] += int(value or 0)
            node = by_id.get(node.parent_id) if node.parent_id else None
    return out


def lonely_strata(design) -> list[str]:
    """Return the strata of the design with one PSU (R's lonely PSUs), empty without a sampling design."""
    sampling = getattr(design, "sampling", None)
    return [str(s) for s in getattr(sampling, "lonely", None) or []]


def _summary(session: Session, wave: Wave, versions: list[QuestionnaireVersion], result, left_out: list[str],
             areas: dict[str, Area], tallies: list[tuple]) -> dict:
    channels = channel_counts(session, wave, versions, areas, tallies)
    city_code = next((code for code, a in areas.items() if a.level == "city"), None)
    return {
        "city": {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in result.city.items()},
        "rake": {
            "iterations": result.rake.iterations,
            "deff": result.rake.deff,
            "n_eff": result.rake.n_eff,
            "max_margin_error": result.rake.max_margin_error,
            "variables": list(result.rake.design.variables),
            "lonely": lonely_strata(result.rake.design),
        },
        "communities_without_responses": left_out,
        "responses_by_channel": channels.get(city_code, {}) if city_code is not None else {},
        "channels_by_area": channels,
        "quality_by_area": quality_counts(session, wave, areas, tallies),
        "timings": result.timings,
    }
