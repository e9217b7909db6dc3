"""Survey links: resolving a token to what may be answered now, and making links."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from survey.caching import app_cache
from survey.models import (
    GRADE_BANDS,
    Area,
    Link,
    Questionnaire,
    QuestionnaireVersion,
    School,
    SchoolClass,
    Wave,
    wave_version,
)


class LinkUnavailable(Exception):
    """The link cannot be answered now; carries the HTTP status and a message for residents."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class OpenLink:
    """A link that can be answered now, with the wave and questionnaire version in force.

    Plain values only, so that it can be cached between requests.
    """

    link_id: int
    token: str
    area_id: int | None
    place: str | None
    channel: str
    wave_id: int
    opens_at: datetime
    closes_at: datetime
    version_id: int
    school_class_id: int | None = None
    audience: str | None = None  # "parent": the respondent picks their community; "pupil"
    school_district_id: int | None = None
    grade_band: str | None = None  # a class link's grade band (a pupil's answer must agree)
    ip_salt: str | None = None  # the wave's random salt for IP hashes (gone once the wave closes)

    @property
    def picks_community(self) -> bool:
        return self.audience == "parent"


NOT_FOUND = LinkUnavailable(404, "链接无效", "没有找到这份问卷。请核对二维码或链接是否完整，或联系发放问卷的社区。")
DISABLED = LinkUnavailable(410, "链接已停用", "这个问卷链接已停用。如需参与调查，请联系所在社区获取新的二维码。")
CLOSED = LinkUnavailable(410, "调查未在进行", "本轮问卷调查目前没有开放（尚未开始或已经结束）。感谢您的关注！")

def resolve(engine: Engine, token: str, now: datetime) -> OpenLink:
    """Return the open wave and version for ``token`` or raise :class:`LinkUnavailable`.

    Answers are cached per app for ``LINK_CACHE_SECONDS`` (default 5): a link that is disabled
    or a wave that is changed takes at most that long to show; opening and closing times are
    always checked against ``now``. A lookup is one query on a connection of its own (no ORM
    session): in a city most links are looked up afresh, on every resident's GET and POST.
    """
    cache = app_cache("links", "LINK_CACHE_SECONDS", 5, 10_000)
    found = cache.get(token)
    if found is None:
        found = _lookup(engine, token, now)
        cache.put(token, found)
    if isinstance(found, LinkUnavailable):
        raise found
    if not found.opens_at <= now < found.closes_at:
        cache.pop(token)
        found = _lookup(engine, token, now)
        if isinstance(found, LinkUnavailable):
            raise found
    return found


# The link, its place, and the newest wave open now for its questionnaire (none: NULLs), in one
# query: the link's row joined to every open wave of its questionnaire, newest first, first row.
_open_wave = (
    select(Wave.id, Wave.opens_at, Wave.closes_at, Wave.ip_salt, QuestionnaireVersion.id.label("version_id"),
           QuestionnaireVersion.questionnaire_id)
    .join(wave_version, wave_version.c.wave_id == Wave.id)
    .join(QuestionnaireVersion, QuestionnaireVersion.id == wave_version.c.questionnaire_version_id)
    .where(Wave.opens_at <= bindparam("now"), Wave.closes_at > bindparam("now"))
    .subquery()
)
_LOOKUP = (
    select(Link.id, Link.enabled, Link.area_id, Link.channel, Area.name, Link.school_class_id, Link.audience,
           School.district_id, School.name, SchoolClass.name, SchoolClass.grade,
           _open_wave.c.id, _open_wave.c.opens_at, _open_wave.c.closes_at, _open_wave.c.version_id, _open_wave.c.ip_salt)
    .outerjoin(Area, Area.id == Link.area_id)
    .outerjoin(SchoolClass, SchoolClass.id == Link.school_class_id)
    .outerjoin(School, School.id == SchoolClass.school_id)
    .outerjoin(_open_wave, _open_wave.c.questionnaire_id == Link.questionnaire_id)
    .where(Link.token == bindparam("token"))
    .order_by(_open_wave.c.opens_at.desc())
    .limit(1)
)


def _lookup(engine: Engine, token: str, now: datetime) -> OpenLink | LinkUnavailable:
    if not 8 <= len(token) <= 64:
        return NOT_FOUND
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        # One statement needs no transaction: without BEGIN and ROLLBACK it is one round trip, not
        # three (a third of the CPU). SQLite keeps its own explicit BEGINs (survey/db.py).
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
    with connection:
        row = connection.execute(_LOOKUP, {"token": token, "now": now}).first()
    if row is None:
        return NOT_FOUND
    (link_id, enabled, area_id, channel, place, class_id, audience, district_id, school, klass, grade,
     wave_id, opens_at, closes_at, version_id, salt) = row
    if class_id is not None:
        place = f"{school} {klass}"
    if not enabled:
        return DISABLED
    if wave_id is None:
        return CLOSED
    return OpenLink(link_id, token, area_id, place, channel, wave_id, opens_at, closes_at, version_id,
                    class_id, audience, district_id, GRADE_BANDS.get(grade) if grade else None, salt)


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


def public_url(link: Link, base_url: str | None = None) -> str:
    """Return the link's public address: ``base_url``, else PUBLIC_BASE_URL, else this request's host."""
    base = (base_url or current_app.config.get("PUBLIC_BASE_URL", "")).rstrip("/")
    if base:
        return f"{base}/s/{link.token}"
    return url_for("public.questionnaire", token=link.token, _external=True)
