"""Survey waves."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.models import Questionnaire, QuestionnaireVersion, Wave
from survey.quality import new_ip_salt


def create_wave(session: Session, name: str, opens_at: datetime, closes_at: datetime, questionnaires: list[str]) -> Wave:
    """Create a wave fielding the newest version of each named questionnaire."""
    if closes_at <= opens_at:
        raise ValueError("a wave must close after it opens")
    if session.scalar(select(Wave).where(Wave.name == name)) is not None:
        raise ValueError(f"a wave named {name!r} exists already")
    versions = []
    for code in questionnaires:
        version = session.scalar(
            select(QuestionnaireVersion)
            .join(Questionnaire)
            .where(Questionnaire.code == code)
            .order_by(QuestionnaireVersion.version.desc())
            .limit(1)
        )
        if version is None:
            raise ValueError(f"no questionnaire {code!r}; run init-db first")
        versions.append(version)
    wave = Wave(name=name, opens_at=opens_at, closes_at=closes_at, versions=versions, ip_salt=new_ip_salt())
    session.add(wave)
    session.flush()
    return wave


def latest_wave(session: Session) -> Wave | None:
    return session.scalar(select(Wave).order_by(Wave.opens_at.desc()).limit(1))
