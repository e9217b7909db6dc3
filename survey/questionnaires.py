"""Questionnaire versions in the database and their parsed definitions."""
from __future__ import annotations

from threading import Lock

from sqlalchemy import select
from sqlalchemy.orm import Session

from forms import Definition, parse_definition
from forms.definition import bundled_raw
from survey.models import Questionnaire, QuestionnaireVersion

_parsed: dict[int, tuple[dict, Definition]] = {}
_by_id: dict[tuple[object, int], Definition] = {}
_lock = Lock()


class PublishedVersionChanged(ValueError):
    """A bundled file differs from the stored version of the same number: a wording change needs a new version."""


def install_bundled(session: Session) -> list[QuestionnaireVersion]:
    """Store every bundled definition that the database does not have yet; return all of them.

    A stored version is never rewritten: waves that fielded it keep its wording. A changed
    wording is a new file with the next version number (e.g. ``minor-v2.xlsx``), which new
    waves field; a bundled file that differs from its stored version raises
    :class:`PublishedVersionChanged` instead of being stored or ignored. Stored and bundled
    versions are compared as parsed definitions, not as dicts: databases that stored a version
    in the first (JSON) dict format keep it, since the XLSForm file reads as the same definition.
    """
    out = []
    for (code, version), raw in bundled_raw().items():
        bundled = parse_definition(raw, f"{code}-v{version}.xlsx")
        questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == code))
        if questionnaire is None:
            questionnaire = Questionnaire(code=code, title=raw["title"])
            session.add(questionnaire)
            session.flush()
        stored = session.scalar(
            select(QuestionnaireVersion).where(
                QuestionnaireVersion.questionnaire_id == questionnaire.id, QuestionnaireVersion.version == version
            )
        )
        if stored is None:
            stored = QuestionnaireVersion(questionnaire=questionnaire, version=version, definition_json=raw)
            session.add(stored)
            session.flush()
        elif stored.definition_json != raw and definition_of(stored) != bundled:
            raise PublishedVersionChanged(
                f"forms/definitions/{code}-v{version}.xlsx differs from the published {code} v{version}: "
                "restore it and put the change in a new version file with the next version number"
            )
        out.append(stored)
    return out


def definition_by_id(session: Session, version_id: int) -> Definition:
    """Return the parsed definition of a stored version by id, loading it once per process.

    Stored versions never change (a new wording is a new version), so the cache needs no expiry.
    """
    key = (session.get_bind(), version_id)  # the engine itself: rendering its URL costs more
    with _lock:
        cached = _by_id.get(key)
    if cached is not None:
        return cached
    version = session.get(QuestionnaireVersion, version_id)
    definition = definition_of(version)
    with _lock:
        _by_id[key] = definition
    return definition


def definition_of(version: QuestionnaireVersion) -> Definition:
    """Return the parsed definition of a stored version, parsed once per process."""
    raw = version.definition_json
    with _lock:
        cached = _parsed.get(version.id)
        if cached is not None and cached[0] == raw:
            return cached[1]
    definition = parse_definition(raw, f"{version.questionnaire.code}-v{version.version}")
    with _lock:
        _parsed[version.id] = (raw, definition)
    return definition
