"""How a questionnaire's answers are grouped for its analysis, and the per-cell sums the database makes.

A :class:`Plan` says which area level answers belong to and which respondent attributes weight
them; :func:`score_cells` and :func:`choice_counts` are the two ``GROUP BY`` queries over it (the
analysis needs only these sufficient statistics). Below ``aggregates`` (which stores them
incrementally) and ``results`` (which analyses them).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analysis.errors import AnalysisError
from forms import Definition
from survey.models import Answer, Area, PopulationMargin, Questionnaire, QuestionnaireVersion, Response, SampleDesign
from survey.quality import unflagged
from survey.questionnaires import definition_of


def scored(wave_id: int, version_ids: list[int], include_flagged: bool = False, ids: tuple[int, int] | None = None):
    condition = (Response.wave_id == wave_id) & Response.questionnaire_version_id.in_(version_ids) & Response.score.is_not(None)
    if ids is not None:  # only the responses with ids[0] < id <= ids[1]
        condition = condition & (Response.id > ids[0]) & (Response.id <= ids[1])
    return condition if include_flagged else condition & unflagged()


@dataclass(frozen=True)
class Design:
    """The sampling design of an imported designed sample: response attributes naming its parts
    (``cluster`` and ``fpc`` one per stage, joined by ``+``), as ``analysis.pipeline.analyze`` takes them."""

    cluster: str
    strata: str | None = None
    fpc: str | None = None
    weights: str | None = None
    lonely_psu: str = "fail"

    @property
    def columns(self) -> tuple[str, ...]:
        parts = [self.weights, self.strata, *self.cluster.split("+"), *(self.fpc or "").split("+")]
        return tuple(dict.fromkeys(p for p in parts if p))

    def arguments(self) -> dict:
        """Return the keyword arguments of ``analyze_aggregates`` for this design."""
        return {"cluster": self.cluster, "strata": self.strata, "fpc": self.fpc, "weights": self.weights,
                "lonely_psu": self.lonely_psu}


@dataclass(frozen=True)
class Plan:
    """How a questionnaire is analysed: the area level answers belong to, the respondent
    attributes it is weighted by (beside that level), and the levels above it. A designed
    sample's plan also groups by its design's attributes (``design``), so that every cell lies
    within one stratum, cluster and base weight."""

    unit: str
    attributes: tuple[str, ...]
    upper: tuple[str, ...]
    model_by: str | None
    design: Design | None = None

    @property
    def levels(self) -> tuple[str, ...]:
        """Return the area levels a margin may name: the unit and the levels above it."""
        return (self.unit, *self.upper)


# Residents (and any other questionnaire): community adult population, then the attributes
# that margins are stored on. Pupils: enrolment by district and by grade band (from the classes).
COMMUNITY_PLAN = Plan("community", (), ("street", "district", "city"), "district")
UNIT_PLANS = {"minor": Plan("district", (), ("city",), None)}
ENROLMENT_VARIABLES = ("district", "grade_band")


def base_plan(questionnaire_code: str) -> Plan:
    """Return the questionnaire's plan without weighting attributes (its area levels only)."""
    return UNIT_PLANS.get(questionnaire_code, COMMUNITY_PLAN)


def plan_for(definitions: Iterable[Definition], questionnaire_code: str, margin_variables: Iterable[str],
             design: Design | None = None) -> Plan:
    """Return the analysis plan: weighted by the questionnaire's attributes that the margins name.

    Importing margins on e.g. ``education`` makes raking use the answers to the question the
    questionnaire marks with that attribute; an attribute without margins is not grouped by.
    A ``design`` (an imported designed sample's, :func:`design_of`) adds its attributes.
    """
    named, base = set(margin_variables), base_plan(questionnaire_code)
    attributes = dict.fromkeys(a for d in definitions for a in d.attributes if a in named and a not in base.levels)
    if design is not None:
        attributes |= dict.fromkeys(c for c in design.columns if c not in base.levels)
    return replace(base, attributes=tuple(attributes), design=design)


def design_of(session: Session, wave_id: int, questionnaire_code: str) -> Design | None:
    """Return the stored design of a wave's imported designed sample of the questionnaire, or None."""
    stored = session.scalar(select(SampleDesign).where(SampleDesign.wave_id == wave_id,
                                                       SampleDesign.questionnaire_code == questionnaire_code))
    if stored is None:
        return None
    return Design(stored.cluster, stored.strata, stored.fpc, stored.weights, stored.lonely_psu)


def margin_variables(session: Session, questionnaire_code: str) -> set[str]:
    """Return the variables the questionnaire's raking targets name (enrolment for minors without stored ones)."""
    stored = set(session.scalars(
        select(PopulationMargin.variable).where(PopulationMargin.questionnaire_code == questionnaire_code).distinct()
    ))
    return set(ENROLMENT_VARIABLES) if questionnaire_code == "minor" and not stored else stored


def questionnaire_definitions(session: Session, questionnaire_code: str) -> list[Definition]:
    """Return the definitions of every stored version of a questionnaire."""
    versions = session.scalars(
        select(QuestionnaireVersion).join(Questionnaire).where(Questionnaire.code == questionnaire_code)
    )
    return [definition_of(v) for v in versions]


def plan_of_versions(session: Session, version_ids: list[int]) -> Plan:
    """Return the plan of the questionnaire that ``version_ids`` belong to (one questionnaire)."""
    versions = session.scalars(select(QuestionnaireVersion).where(QuestionnaireVersion.id.in_(version_ids))).all()
    if not versions:
        return COMMUNITY_PLAN  # nothing to group: an empty frame with the community columns
    codes = {v.questionnaire.code for v in versions}
    if len(codes) != 1:
        raise AnalysisError(f"the versions {version_ids} must belong to one questionnaire, not {sorted(codes)}")
    code = codes.pop()
    return plan_for([definition_of(v) for v in versions], code, margin_variables(session, code))


def attribute_columns(plan: Plan) -> list:
    """Return the SQL expressions of the plan's attributes: the JSON members as text, named after them."""
    return [Response.attributes[name].as_string().label(name) for name in plan.attributes]


def score_cells(
    session: Session, wave_id: int, version_ids: list[int], include_flagged: bool = False, plan: Plan | None = None,
    ids: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Return n, sum and sum of squares of respondent scores per area x attributes x channel.

    One column per weighting attribute of ``plan`` (default: the plan of the versions'
    questionnaire, see :func:`plan_for`).
    """
    plan = plan or plan_of_versions(session, version_ids)
    attributes = attribute_columns(plan)
    rows = session.execute(
        select(Area.code, *attributes, Response.channel,
               func.count(), func.sum(Response.score), func.sum(Response.score * Response.score))
        .join(Area, Area.id == Response.area_id)
        .where(scored(wave_id, version_ids, include_flagged, ids), Area.level == plan.unit)
        .group_by(Area.code, *attributes, Response.channel)
    ).all()
    return pd.DataFrame(rows, columns=[plan.unit, *plan.attributes, "channel", "n", "total", "total_sq"])


def choice_counts(
    session: Session, wave_id: int, version_ids: list[int], include_flagged: bool = False, plan: Plan | None = None,
    ids: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Return answer counts per area x attributes x version x item x choice (``plan`` as for :func:`score_cells`)."""
    plan = plan or plan_of_versions(session, version_ids)
    attributes = attribute_columns(plan)
    rows = session.execute(
        select(Area.code, *attributes, Response.questionnaire_version_id, Answer.item_code, Answer.choice_code,
               func.count())
        .join(Response, Response.id == Answer.response_id)
        .join(Area, Area.id == Response.area_id)
        .where(scored(wave_id, version_ids, include_flagged, ids), Area.level == plan.unit, Answer.choice_code.is_not(None))
        .group_by(Area.code, *attributes, Response.questionnaire_version_id, Answer.item_code, Answer.choice_code)
    ).all()
    return pd.DataFrame(rows, columns=[plan.unit, *plan.attributes, "version_id", "item", "choice", "n"])
