"""Survey waves."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.models import PaperBatch, Questionnaire, QuestionnaireVersion, Response, Wave
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


class WaveChangeRefused(ValueError):
    """A change to a wave's questionnaires that would alter what was fielded; the message says why."""


def field_version(session: Session, wave: Wave, version: QuestionnaireVersion, now: datetime) -> QuestionnaireVersion | None:
    """Let ``wave`` field ``version``; return the version of the same questionnaire it replaces, if any.

    A wave fields one version per questionnaire (a link finds the version by its questionnaire),
    so another version of the same questionnaire is replaced, but only while no answer was
    stored with it. A closed wave is never changed.
    """
    if wave.closes_at <= now:
        raise WaveChangeRefused(f"{wave.name}已经结束，不能再更改它使用的问卷。")
    if version in wave.versions:
        raise WaveChangeRefused(f"{wave.name}已经在使用{version.questionnaire.title}第{version.version}版。")
    replaced = next((v for v in wave.versions if v.questionnaire_id == version.questionnaire_id), None)
    if replaced is not None:
        answered = session.scalar(
            select(Response.id).where(Response.wave_id == wave.id, Response.questionnaire_version_id == replaced.id).limit(1)
        )
        if answered is not None:
            raise WaveChangeRefused(
                f"{wave.name}已经收到{replaced.questionnaire.title}第{replaced.version}版的答卷，不能换成第{version.version}版；"
                "请为新版本新建一个调查轮次。")
        printed = session.scalar(
            select(PaperBatch.id).where(PaperBatch.wave_id == wave.id,
                                        PaperBatch.questionnaire_code == replaced.questionnaire.code).limit(1)
        )
        if printed is not None:
            raise WaveChangeRefused(
                f"{wave.name}已经按{replaced.questionnaire.title}第{replaced.version}版打印了纸质问卷，不能换成第{version.version}版；"
                "请为新版本新建一个调查轮次。")
        wave.versions.remove(replaced)
    wave.versions.append(version)
    session.flush()
    return replaced
