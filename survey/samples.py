"""Imported designed samples: a third-party assessment's questionnaires with their sampling design.

A city that commissions (or mocks) an assessment drawn by district -> street -> household gets a
CSV with one row per respondent: an id, the community (the questionnaire's unit area), the
answers (columns named by item code, choice codes as the questionnaire has them) and the design
columns (base weight, strata, a cluster per stage, a population size per stage).
:func:`import_sample` stores each row as a response of the wave (channel ``paper``: interviews)
whose ``attributes`` carry the design columns beside the questionnaire's own attributes, and
stores the design (:class:`survey.models.SampleDesign`). Every refresh of that wave then groups
the cells by the design's attributes as well (``survey.plans.plan_for``) and analyses them as
R's ``svydesign(ids=~A+B, strata=~S, fpc=~F1+F2, weights=~W)`` then ``rake`` (``analysis.pipeline``).

Without a cluster the respondents are the PSUs (R's ``ids=~1``): the respondent id column is
stored and serves as the cluster, which gives R's numbers (one respondent per cell of the
variance). The wave must hold no other responses of the questionnaire: a designed sample mixed
with convenience answers has no design. Refused with the line: a duplicate respondent id, an
unknown community, a blank design value, a base weight that is not a positive number, an answer
the questionnaire does not allow.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from analysis.raking import LONELY_PSU
from survey.csv_files import csv_reader
from survey.models import Area, Response, SampleDesign, Wave
from survey.plans import base_plan
from survey.questionnaires import definition_of
from survey.submissions import build_response

SAMPLE_CHANNEL = "paper"  # interviews of an assessment: what the response's channel constraint allows


class SampleError(ValueError):
    """A sample file that cannot be imported; the message names the line and what to fix."""


def _stages(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split("+") if part.strip()]


def import_sample(
    session: Session,
    text: str,
    wave: Wave,
    questionnaire_code: str = "citizen",
    *,
    id_column: str = "respondent_id",
    unit_column: str | None = None,
    weights: str | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    fpc: str | None = None,
    lonely_psu: str = "fail",
    source: str | None = None,
) -> int:
    """Store a designed sample's rows as responses of ``wave`` with its design; return the rows stored.

    ``unit_column`` names the column of the questionnaire's unit area codes (default: the unit,
    e.g. ``community``). The whole file is stored or nothing is.
    """
    versions = [v for v in wave.versions if v.questionnaire.code == questionnaire_code]
    if not versions:
        raise SampleError(f"wave {wave.name} does not field the {questionnaire_code} questionnaire")
    version = max(versions, key=lambda v: v.id)
    definition = definition_of(version)
    if lonely_psu not in LONELY_PSU:
        raise SampleError(f"--lonely-psu must be one of {', '.join(LONELY_PSU)}")
    unit = base_plan(questionnaire_code).unit
    unit_column = unit_column or unit
    stages, fpcs = _stages(cluster), _stages(fpc)
    if fpcs and len(fpcs) != max(len(stages), 1):
        raise SampleError(f"{len(fpcs)} fpc column(s) for {max(len(stages), 1)} stage(s): give one per stage (--fpc F1+F2)")
    reader = csv_reader(text, SampleError)
    header = [c.strip() for c in reader.fieldnames or []]
    design_columns = list(dict.fromkeys(c for c in (weights, strata, *stages, *fpcs) if c))
    if not stages:
        design_columns.append(id_column)  # the respondents are the PSUs
    missing = [c for c in (id_column, unit_column, *design_columns) if c not in header]
    if missing:
        raise SampleError(f"line 1: missing column(s) {', '.join(missing)}")
    items = {item.code: item for item in definition.stored_items}
    clash = [c for c in design_columns if c in items or c in dict(definition.attribute_pairs)]
    if clash:
        raise SampleError(f"line 1: design column(s) {', '.join(clash)} are also questions of the questionnaire; rename them")
    answered = [c for c in header if c in items]
    if not any(items[c].handler.scored for c in answered):
        raise SampleError(f"line 1: no column is a scored question of the {questionnaire_code} questionnaire")
    already = session.scalar(select(func.count()).select_from(Response).where(
        Response.wave_id == wave.id, Response.questionnaire_version_id.in_([v.id for v in versions])))
    if already:
        raise SampleError(f"wave {wave.name} already holds {already} {questionnaire_code} responses: import a designed "
                          "sample into a wave of its own (its design does not cover other answers)")
    areas = {a.code: a for a in session.scalars(select(Area).where(Area.level == unit))}
    seen: dict[str, int] = {}
    now = datetime.now(UTC)
    responses = []
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        respondent = row.get(id_column, "")
        if not respondent:
            raise SampleError(f"line {line}: {id_column} is blank")
        if respondent in seen:
            raise SampleError(f"line {line}: respondent {respondent!r} appears twice (first on line {seen[respondent]})")
        seen[respondent] = line
        area = areas.get(row.get(unit_column, ""))
        if area is None:
            raise SampleError(f"line {line}: {unit_column} {row.get(unit_column)!r} is not a known {unit}")
        design = {}
        for column in design_columns:
            value = row.get(column, "")
            if not value:
                raise SampleError(f"line {line}: design column {column} is blank")
            design[column] = value
        if weights:
            try:
                weight = float(design[weights])
            except ValueError:
                weight = float("nan")
            if not weight > 0 or weight == float("inf"):
                raise SampleError(f"line {line}: base weight {weights} = {design[weights]!r} is not a positive number")
        answers: dict[str, str | None] = {}
        for code in answered:
            if not row.get(code):
                continue  # no answer (an assessment's blank: not asked, refused, don't know)
            value, error = items[code].parse(row[code])
            if error:
                raise SampleError(f"line {line}: {code} = {row.get(code)!r}: {error}")
            answers[code] = value
        response = build_response(definition, answers, key=f"sample-{wave.id}-{respondent}"[:64], wave_id=wave.id,
                                  version_id=version.id, link_id=None, area_id=area.id, channel=SAMPLE_CHANNEL,
                                  started_at=None, submitted_at=now)
        response.attributes = {**(response.attributes or {}), **design}
        responses.append(response)
    if not responses:
        raise SampleError("the file has no rows")
    session.add_all(responses)
    session.execute(delete(SampleDesign).where(SampleDesign.wave_id == wave.id,
                                               SampleDesign.questionnaire_code == questionnaire_code))
    session.add(SampleDesign(wave_id=wave.id, questionnaire_code=questionnaire_code, weights=weights or None,
                             strata=strata or None, cluster="+".join(stages) or id_column, fpc="+".join(fpcs) or None,
                             lonely_psu=lonely_psu, source=source))
    session.flush()
    return len(responses)
