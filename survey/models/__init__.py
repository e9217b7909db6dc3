"""SQLAlchemy models, one module per aggregate."""
from __future__ import annotations

from survey.models.aggregates import AggregateCell, AggregateChoice, AggregateFlagged, AggregateScore, AggregateState
from survey.models.areas import LEVELS, Area
from survey.models.base import Base, utcnow
from survey.models.links import Link
from survey.models.maps import SITE_TYPES, AreaBoundary, Site
from survey.models.paper import PaperBatch
from survey.models.questionnaires import Questionnaire, QuestionnaireVersion
from survey.models.rectification import (
    PRIORITIES,
    TASK_STATUSES,
    Task,
    TaskEvent,
    TaskPhoto,
    Unit,
    unit_account,
    unit_community,
)
from survey.models.responses import CHANNELS, Answer, Response
from survey.models.results import AnalysisRun, AreaResult, ItemResult, PopulationMargin, SampleDesign
from survey.models.schools import GRADE_BANDS, School, SchoolClass
from survey.models.users import OFFICE_ROLES, ROLES, ExportLog, KnownAddress, LoginFailure, StaffSession, User
from survey.models.waves import Wave, wave_version

__all__ = [
    "AggregateCell",
    "AggregateChoice",
    "AggregateFlagged",
    "AggregateScore",
    "AggregateState",
    "AreaBoundary",
    "SITE_TYPES",
    "Site",
    "PRIORITIES",
    "TASK_STATUSES",
    "Task",
    "TaskEvent",
    "TaskPhoto",
    "Unit",
    "unit_account",
    "unit_community",
    "AnalysisRun",
    "AreaResult",
    "ItemResult",
    "PopulationMargin",
    "SampleDesign",
    "CHANNELS",
    "GRADE_BANDS",
    "OFFICE_ROLES",
    "ROLES",
    "School",
    "SchoolClass",
    "ExportLog",
    "KnownAddress",
    "LoginFailure",
    "StaffSession",
    "User",
    "LEVELS",
    "Answer",
    "Area",
    "Base",
    "Link",
    "PaperBatch",
    "Questionnaire",
    "QuestionnaireVersion",
    "Response",
    "Wave",
    "utcnow",
    "wave_version",
]
