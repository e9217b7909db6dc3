"""Survey links: resolving a token to what may be answered now, and making links."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from survey.models import Area, Link, Questionnaire, QuestionnaireVersion, Wave, wave_version


class LinkUnavailable(Exception):
    """The link cannot be answered now; carries the HTTP status and a message for residents."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class OpenLink:
    """A link that can be answered: with the wave and questionnaire version in force."""

    link: Link
    wave: Wave
    version: QuestionnaireVersion


def resolve(session: Session, token: str, now: datetime) -> OpenLink:
    """Return the open wave and version for ``token`` or raise :class:`LinkUnavailable`."""
    link = session.scalar(
        select(Link).options(joinedload(Link.area), joinedload(Link.questionnaire)).where(Link.token == token)
    ) if 8 <= len(token) <= 64 else None
    if link is None:
        raise LinkUnavailable(404, "链接无效", "没有找到这份问卷。请核对二维码或链接是否完整，或联系发放问卷的社区。")
    if not link.enabled:
        raise LinkUnavailable(410, "链接已停用", "这个问卷链接已停用。如需参与调查，请联系所在社区获取新的二维码。")
    row = session.execute(
        select(Wave, QuestionnaireVersion)
        .join(wave_version, wave_version.c.wave_id == Wave.id)
        .join(QuestionnaireVersion, QuestionnaireVersion.id == wave_version.c.questionnaire_version_id)
        .where(QuestionnaireVersion.questionnaire_id == link.questionnaire_id, Wave.opens_at <= now, Wave.closes_at > now)
        .order_by(Wave.opens_at.desc())
        .limit(1)
    ).first()
    if row is None:
        raise LinkUnavailable(410, "调查未在进行", "本轮问卷调查目前没有开放（尚未开始或已经结束）。感谢您的关注！")
    return OpenLink(link, row[0], row[1])


def new_token() -> str:
    """Return an unguessable URL-safe token (128 bits)."""
    return secrets.token_urlsafe(16)


def make_community_links(session: Session, questionnaire_code: str, channel: str = "qr") -> list[Link]:
    """Make one link per community that has none yet for this questionnaire; return all of them."""
    questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == questionnaire_code))
    if questionnaire is None:
        raise ValueError(f"no questionnaire {questionnaire_code!r}; run init-db first")
    communities = session.scalars(select(Area).where(Area.level == "community").order_by(Area.code)).all()
    existing = {
        link.area_id: link
        for link in session.scalars(select(Link).where(Link.questionnaire_id == questionnaire.id, Link.channel == channel))
    }
    out = []
    for area in communities:
        link = existing.get(area.id)
        if link is None:
            link = Link(token=new_token(), questionnaire=questionnaire, area=area, channel=channel)
            session.add(link)
        out.append(link)
    session.flush()
    return out


def public_url(link: Link) -> str:
    """Return the link's public address (PUBLIC_BASE_URL when set, else this request's host)."""
    base = current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/")
    if base:
        return f"{base}/s/{link.token}"
    return url_for("public.questionnaire", token=link.token, _external=True)
