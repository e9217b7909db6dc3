"""Data quality: speeders, straight-liners and repeated devices.

Rules (stated to offices on their pages and in the run summary):

* speeder - took less than max(half the median duration of that wave and questionnaire,
  ``SPEEDER_FLOOR_S`` = 30 s): nobody reads seventeen questions in under half a minute. Paper
  questionnaires have no duration and are never speeders;
* straight-liner - one and the same choice on every scored item of a block of 8 or more;
* repeated device - a later response from the same device cookie in the same wave.

Flagged responses are stored and shown; the analysis leaves them out unless told otherwise.
The IP address is never stored: only its hash salted with a random per-wave salt. When the wave
closes, :func:`purge_device_data` (run by the housekeeping job, see ``survey/housekeeping.py``)
deletes the salt, the hashes and the device ids, after which nothing links an answer to a
device or an address.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

from flask import Request, current_app
from flask import Response as HttpResponse
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ColumnElement, Integer, case, func, literal, or_, select, text, true, update
from sqlalchemy.orm import Session
from werkzeug.http import http_date

from forms import Definition
from survey.db import oldest_open_transaction, rows_changed, settled_at
from survey.models import AnalysisRun, Response, Wave
from survey.signing import random_hex, sign, unsign

SPEEDER_FLOOR_S = 30.0
STRAIGHTLINE_BLOCK = 8
DEVICE_COOKIE_DAYS = 180
PENDING_KEPT = 20  # marks of earlier passes remembered while not yet settled
FLAG_NAMES = {"flag_speeder": "答题过快", "flag_straightline": "全部同一选项", "flag_repeat_device": "同一设备重复提交"}


def is_straightline(definition: Definition, answers: dict[str, str | None]) -> bool:
    """Return True when every scored item of some block of 8 or more got the same choice."""
    for section in definition.sections:
        scored = section.scored_items
        if len(scored) >= STRAIGHTLINE_BLOCK:
            chosen = [answers.get(i.code) for i in scored]
            if all(chosen) and len(set(chosen)) == 1:
                return True
    return False


def _cookie_name(wave_id: int) -> str:
    return f"sv_dev_{wave_id}"


def _device_serializer(wave_id: int) -> URLSafeSerializer:
    """Return the app's serializer of one wave's device cookies in the earlier format (still read)."""
    serializers = current_app.extensions.setdefault("device_serializers", {})
    serializer = serializers.get(wave_id)
    if serializer is None:
        serializer = serializers[wave_id] = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"device-{wave_id}")
    return serializer


def device_id(request: Request, wave_id: int) -> tuple[str, bool]:
    """Return this browser's device id for the wave and whether it is new (to be set)."""
    raw = request.cookies.get(_cookie_name(wave_id))
    if raw and len(raw) <= 200:
        if raw.startswith("v2."):
            value = unsign(f"device-{wave_id}", raw)
            if value is not None and len(value) <= 40:
                return value, False
        else:
            try:
                value = _device_serializer(wave_id).loads(raw)
                if isinstance(value, str) and len(value) <= 40:
                    return value, False
            except BadSignature:
                pass
    return random_hex(16), True


def set_device_cookie(response: HttpResponse, wave_id: int, value: str) -> None:
    """Set the wave's device cookie (signed, HttpOnly, SameSite=Lax; Secure when sessions are).

    Written out here rather than by ``Response.set_cookie``: it goes with every first GET and
    POST of a resident, and the signed value needs no quoting (``[A-Za-z0-9._-]`` only).
    """
    max_age = DEVICE_COOKIE_DAYS * 24 * 3600
    secure = " Secure;" if current_app.config.get("SESSION_COOKIE_SECURE", False) else ""
    response.headers.add("Set-Cookie", f"{_cookie_name(wave_id)}={sign(f'device-{wave_id}', value)}; "
                                       f"Expires={_expires(max_age)}; Max-Age={max_age};{secure} HttpOnly; Path=/; SameSite=Lax")


_expires_cache: tuple[int, int, str] = (0, 0, "")


def _expires(max_age: int) -> str:
    """Return the HTTP date ``max_age`` seconds from now (made once a second)."""
    global _expires_cache
    now = int(time.time())
    second, age, text_ = _expires_cache
    if second != now or age != max_age:
        text_ = http_date(now + max_age)
        _expires_cache = (now, max_age, text_)
    return text_


def new_ip_salt() -> str:
    """Return a fresh random salt for one wave's IP hashes (256 bits)."""
    return secrets.token_hex(32)


def ip_hash(address: str | None, salt: str | None) -> str | None:
    """Return the address hashed with its wave's random salt; None without an address or a salt.

    The salt is not derived from any key the server keeps after the wave: once it is deleted,
    a hash cannot be reversed by trying every IPv4 address.
    """
    if not address or not salt:
        return None
    return hmac.new(bytes.fromhex(salt), address.encode(), hashlib.sha256).hexdigest()[:40]


def mark_wave(session: Session, wave_id: int, since: dict | None = None, settled=None, count: bool = True) -> dict:
    """Set the speeder and repeated-device flags of a wave's responses; return counts per flag
    (:func:`flag_counts`; without ``count`` only the ``marked`` entry, for a caller that counts them itself).

    Only the flags that change are written (the speeder threshold moves a little with every new
    response; rewriting every row of a wave would cost as much as the analysis), and the stored
    statistics move the responses whose flag state changed (``survey/aggregates.py``).

    Speeders are judged against the whole wave's median (it moves with every response). With
    ``since`` (the ``marked`` entry these counts carried at the previous pass, kept in the run's
    summary) only the responses whose flag can have changed are looked at: those after its
    ``upto`` id, and those with a duration between a version's threshold then (``thresholds``)
    and now, found by the duration index; the median's count adds the durations after ``upto`` to
    the previous pass's count up to it (``timed``). The repeated-device flag of a response changes only
    when a response of the same device comes in, so with ``since`` only the devices of responses
    after its ``upto`` id are ranked again. Without it (``flask analyze --full``, the first run)
    the whole wave is judged (its devices seen more than once ranked, stale repeat flags cleared). ``upto`` only moves to an id read when no transaction then open is
    still open (``survey/aggregates.py``, "late commits"), checked before any flag is written, so
    this pass sees every response up to it and a response committed after a pass always has a
    higher id and is seen by the next. Responses are never deleted by the app; a deletion or an
    edit of devices, times or flags by hand must be followed by ``flask analyze --full``.
    """

    settled = settled or settled_at
    # The mark this pass can promise, read before any flag is written (see the docstring).
    highest = session.execute(select(func.coalesce(func.max(Response.id), 0)).where(Response.wave_id == wave_id)).scalar_one()
    read_at = _server_time(session)
    candidates = [(datetime.fromisoformat(t), int(w)) for t, w in (since or {}).get("pending", [])]
    candidates.append((read_at, int(highest)))
    oldest_open = oldest_open_transaction(session)
    safe = [w for t, w in candidates if settled(session, t, oldest_open)]
    upto = max([int((since or {}).get("upto", 0)), *safe])
    timed, timed_upto, below = _timed_counts(session, wave_id, since, upto)
    medians = _median_durations(session, wave_id, timed, below)
    # Each version's own threshold (none: no speeders).
    thresholds = {version_id: max(0.5 * float(median), SPEEDER_FLOOR_S)
                  for version_id, median, _ in medians if median is not None}
    pivots = _pivots(session, wave_id, medians, below, upto, int(highest) > upto)
    speeder: ColumnElement[bool] = literal(False)
    if thresholds:
        speeder = case(*[(Response.questionnaire_version_id == version_id,
                          func.coalesce(Response.duration_s < threshold, False))
                         for version_id, threshold in sorted(thresholds.items())], else_=literal(False))
    changed = rows_changed(session.execute(
        update(Response).where(Response.wave_id == wave_id, Response.flag_speeder != speeder,
                               _speeder_scope(since, thresholds))
        .values(flag_speeder=~Response.flag_speeder).execution_options(synchronize_session=False)
    ))
    # A later response (by submission time, then id) from a device already seen for the version.
    scope = Response.wave_id == wave_id
    if since is not None:
        recent = select(Response.device_id).where(Response.wave_id == wave_id, Response.id > int(since["upto"]),
                                                  Response.device_id.is_not(None))
        scope = scope & Response.device_id.in_(recent)
        # Device ids cleared (after the wave closed) leave no repeat behind, as the whole-wave ranking says.
        changed += rows_changed(session.execute(
            update(Response).where(Response.wave_id == wave_id, Response.device_id.is_(None), Response.flag_repeat_device)
            .values(flag_repeat_device=False).execution_options(synchronize_session=False)
        ))
    else:  # the whole wave: only devices seen more than once can be repeats, and flagged ones may be cleared
        again = (select(Response.device_id).where(Response.wave_id == wave_id, Response.device_id.is_not(None))
                 .group_by(Response.device_id).having(func.count() > 1))
        scope = scope & (Response.flag_repeat_device | Response.device_id.in_(again))
    order = func.row_number().over(partition_by=(Response.questionnaire_version_id, Response.device_id),
                                   order_by=(Response.submitted_at, Response.id))
    ranked = select(Response.id, Response.device_id, Response.flag_repeat_device, order.label("k")).where(scope).subquery()
    repeat = (ranked.c.device_id.is_not(None)) & (ranked.c.k > 1)
    repeats = select(ranked.c.id).where(ranked.c.flag_repeat_device != repeat)
    changed += rows_changed(session.execute(
        update(Response).where(Response.id.in_(repeats)).values(flag_repeat_device=~Response.flag_repeat_device)
        .execution_options(synchronize_session=False)
    ))
    pending = [[t.isoformat(), w] for t, w in candidates if w > upto][-PENDING_KEPT:]
    marked = {"marked": {"upto": upto, "pending": pending,
                         "thresholds": {str(version): value for version, value in sorted(thresholds.items())},
                         "timed": {str(version): count for version, count in sorted(timed_upto.items())},
                         "pivots": {str(version): list(pivot) for version, pivot in sorted(pivots.items())}},
              "changed": changed}
    return flag_counts(session, wave_id) | marked if count else marked


def _speeder_scope(since: dict | None, thresholds: dict[int, float]):
    """Return the responses whose speeder flag can differ from the previous pass's (all, without its thresholds).

    The previous pass left every response up to its ``upto`` flagged by its thresholds, so a flag
    can change only for a later response or for a duration between a version's old and new threshold.
    """
    if since is None or since.get("thresholds") is None:
        return true()
    previous = since["thresholds"]
    scope = [Response.id > int(since["upto"])]
    for version_id in sorted(set(thresholds) | {int(v) for v in previous}):
        old, new = previous.get(str(version_id)), thresholds.get(version_id)
        if old is None or new is None:  # a threshold now and none before, or the other way round: the whole version
            scope.append(Response.questionnaire_version_id == version_id)
        elif old != new:
            scope.append((Response.questionnaire_version_id == version_id)
                         & (Response.duration_s >= min(old, new)) & (Response.duration_s < max(old, new)))
    return or_(*scope)


def _timed_counts(session: Session, wave_id: int, since: dict | None, upto: int,
                  ) -> tuple[dict[int, int], dict[int, int], dict[int, tuple[float, int]]]:
    """Return the durations each version of the wave has now, those of its responses up to ``upto``, and, for
    each version the previous pass left a pivot (``pivots``: a duration and how many durations up to its
    ``upto`` were shorter), that duration with how many durations are shorter now.

    With the previous pass's counts up to its ``upto`` (``timed``), only the responses after it are
    counted (by id); without them, the whole wave. One statement, so the counts see the same responses.
    """
    above = Response.id > upto
    previous = since if since is not None and since.get("timed") is not None else None
    pivots = {int(version): (float(value), int(shorter))
              for version, (value, shorter) in ((previous or {}).get("pivots") or {}).items()}
    shorter_than_pivot: ColumnElement[bool] = literal(False)
    if pivots:
        shorter_than_pivot = case(*[(Response.questionnaire_version_id == version_id, Response.duration_s < value)
                                    for version_id, (value, _) in sorted(pivots.items())], else_=literal(False))
    query = (select(Response.questionnaire_version_id, func.count(Response.duration_s),
                    func.count(Response.duration_s).filter(above),
                    func.count(Response.duration_s).filter(shorter_than_pivot))
             .where(Response.wave_id == wave_id).group_by(Response.questionnaire_version_id))
    base: dict[int, int] = {}
    if previous is not None:
        query = query.where(Response.id > int(previous["upto"]))
        base = {int(version): int(count) for version, count in previous["timed"].items()}
    now, at_upto = dict(base), dict(base)
    shorter = {version_id: value_count for version_id, value_count in pivots.items() if version_id in base}
    for version_id, count, later, below in session.execute(query):
        now[version_id] = now.get(version_id, 0) + int(count)
        at_upto[version_id] = at_upto.get(version_id, 0) + int(count) - int(later)
        if version_id in shorter:
            value, before = shorter[version_id]
            shorter[version_id] = (value, before + int(below))
    return now, at_upto, shorter


def _duration_at(session: Session, wave_id: int, version_id: int, rank: int, pivot: float, shorter: int) -> float:
    """Return the duration at ``rank`` (0: the shortest) of a version, given a duration ``pivot`` that
    ``shorter`` durations are shorter than: a short walk from the pivot on the duration index."""
    query = select(Response.duration_s).where(Response.wave_id == wave_id,
                                              Response.questionnaire_version_id == version_id)
    if rank >= shorter:
        query = query.where(Response.duration_s >= pivot).order_by(Response.duration_s).offset(rank - shorter)
    else:
        query = query.where(Response.duration_s < pivot).order_by(Response.duration_s.desc()).offset(shorter - 1 - rank)
    value = session.scalars(query.limit(1)).one()
    assert value is not None  # (the comparison with the pivot leaves NULLs out)
    return float(value)


def _median_durations(session: Session, wave_id: int, timed: dict[int, int] | None = None,
                      near: dict[int, tuple[float, int]] | None = None,
                      ) -> list[tuple[int, float | None, float | None]]:
    """Return each questionnaire version of the wave's responses with its median duration, as numpy's
    median (the mean of the two middle values of an even count; None: no durations), and its lower
    middle value.

    ``timed``: how many durations each version has (counted here without it); a version without
    any is not read. ``near``: per version, a duration and how many durations are shorter (the
    previous pass's lower middle value): the middle is then walked to from there on the (wave,
    version, duration) index, a few entries per new response (ties included) instead of a sort of
    the whole wave. Otherwise PostgreSQL: the two middle values in one sort of the version's
    durations, read in table order (not through the duration index, whose entries each cost a heap
    visit on pages that flag updates took out of the visibility map, until the next vacuum: 0.8 s,
    not 0.3). SQLite: walked to the middle on the (wave, version, duration) index (migration 0012).
    """
    out: list[tuple[int, float | None, float | None]] = []
    counts = timed if timed is not None else dict(session.execute(
        select(Response.questionnaire_version_id, func.count(Response.duration_s))
        .where(Response.wave_id == wave_id).group_by(Response.questionnaire_version_id)
    ).all())
    postgres = session.get_bind().dialect.name == "postgresql"
    for version_id, count in sorted(counts.items()):
        if not count:
            out.append((version_id, None, None))
            continue
        if near is not None and version_id in near:
            pivot, shorter = near[version_id]
            lower = _duration_at(session, wave_id, version_id, (count - 1) // 2, pivot, shorter)
            upper = lower if count % 2 else _duration_at(session, wave_id, version_id, count // 2, pivot, shorter)
            out.append((version_id, (lower + upper) / 2, lower))
            continue
        if postgres:  # percentile_disc(f) is the value at position ceil(f n): 0.5 the lower middle, 0.5 + 1e-9 the upper
            session.execute(text("SET LOCAL enable_indexonlyscan = off"))
            timed_now, middle = session.execute(text(
                "SELECT count(duration_s), percentile_disc(ARRAY[0.5, 0.5 + 1e-9]) WITHIN GROUP (ORDER BY duration_s) "
                "FROM response WHERE wave_id = :wave AND questionnaire_version_id = :version"),
                {"wave": wave_id, "version": version_id}).one()
            session.execute(text("SET LOCAL enable_indexonlyscan = on"))
            out.append((version_id, (middle[0] + middle[1]) / 2, float(middle[0])) if timed_now
                       else (version_id, None, None))
            continue
        middle = [duration for duration in session.scalars(  # (never None: the query leaves NULLs out)
            select(Response.duration_s)
            .where(Response.wave_id == wave_id, Response.questionnaire_version_id == version_id,
                   Response.duration_s.is_not(None))
            .order_by(Response.duration_s).offset((count - 1) // 2).limit(2 - count % 2)
        ) if duration is not None]
        out.append((version_id, (middle[0] + middle[1]) / 2 if len(middle) == 2 else middle[0], middle[0]))
    return out


def _pivots(session: Session, wave_id: int, medians: list[tuple[int, float | None, float | None]],
            near: dict[int, tuple[float, int]], upto: int, later: bool = True) -> dict[int, tuple[float, int]]:
    """Return, per version, its lower middle duration and how many durations of responses up to ``upto``
    are shorter: where the next pass starts its walk to the median (see :func:`_median_durations`).

    From the previous pivot, only the durations between it and the new one are counted (by index);
    without one (a whole-wave pass), every shorter duration. The responses after ``upto`` (not settled
    yet, the next pass counts them as new; ``later``: there may be some) are taken off.
    """
    out: dict[int, tuple[float, int]] = {}
    for version_id, _, lower in medians:
        if lower is None:
            continue
        version = (Response.wave_id == wave_id) & (Response.questionnaire_version_id == version_id)
        count = func.count(Response.duration_s)
        if version_id in near:
            pivot, shorter = near[version_id]
            low, high = min(pivot, lower), max(pivot, lower)
            between = int(session.scalar(select(count).where(version, Response.duration_s >= low,
                                                             Response.duration_s < high)) or 0)
            shorter = shorter + between if lower >= pivot else shorter - between
        else:  # a whole-wave pass: read in table order, as the median (see _median_durations), not by index
            shorter = int(session.scalar(select(count.filter(Response.duration_s < lower)).where(version)) or 0)
        if later:
            shorter -= int(session.scalar(select(count).where(version, Response.id > upto, Response.duration_s < lower))
                           or 0)
        out[version_id] = (lower, shorter)
    return out


def last_mark(session: Session, wave_id: int) -> dict | None:
    """Return the ``marked`` entry of the wave's newest run (any questionnaire; None: mark all)."""
    return last_mark_of_run(session, wave_id)[0]


def last_mark_of_run(session: Session, wave_id: int) -> tuple[dict | None, int | None]:
    """Return the ``marked`` entry of the wave's newest run (any questionnaire; None: mark all) and that run's id."""
    found = session.execute(select(AnalysisRun.id, AnalysisRun.summary["quality"]["marked"])
                            .where(AnalysisRun.wave_id == wave_id).order_by(AnalysisRun.id.desc()).limit(1)).first()
    if found is None:
        return None, None
    run_id, marked = found
    return (marked if isinstance(marked, dict) and "upto" in marked else None), run_id


def _server_time(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(select(func.clock_timestamp())).scalar_one()
    return datetime.now(UTC)


def flag_counts(session: Session, wave_id: int) -> dict[str, int]:
    """Return how many responses of the wave carry each flag, and how many carry any."""
    row = session.execute(
        select(
            func.count(),
            func.sum(Response.flag_speeder.cast(Integer)),
            func.sum(Response.flag_straightline.cast(Integer)),
            func.sum(Response.flag_repeat_device.cast(Integer)),
            func.sum((Response.flag_speeder | Response.flag_straightline | Response.flag_repeat_device).cast(Integer)),
        ).where(Response.wave_id == wave_id)
    ).one()
    total, speed, straight, repeat, anyflag = (int(v or 0) for v in row)
    return {"responses": total, "flag_speeder": speed, "flag_straightline": straight, "flag_repeat_device": repeat,
            "flagged": anyflag}


def unflagged():
    """SQL condition: responses with no quality flag."""
    return ~(Response.flag_speeder | Response.flag_straightline | Response.flag_repeat_device)


def purge_device_data(session: Session, now: datetime | None = None) -> int:
    """Delete the salt, device ids and IP hashes of waves that have closed; return how many responses.

    Idempotent and cheap when there is nothing to do, so any number of workers may run it.
    """
    now = now or datetime.now(UTC)
    closed = select(Wave.id).where(Wave.closes_at <= now)
    result = session.execute(
        update(Response)
        .where(Response.wave_id.in_(closed), (Response.device_id.is_not(None)) | (Response.ip_hash.is_not(None)))
        .values(device_id=None, ip_hash=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Wave).where(Wave.closes_at <= now, Wave.device_data_cleared_at.is_(None))
        .values(ip_salt=None, device_data_cleared_at=now).execution_options(synchronize_session=False)
    )
    return rows_changed(result)
