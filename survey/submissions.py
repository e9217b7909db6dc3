"""Storing a response: once, in one transaction, keyed by the form's one-time submission key."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forms import Definition
from survey.db import writer_connections
from survey.models import Answer, Response
from survey.quality import is_straightline
from survey.signing import random_urlsafe, sign, unsign

KEY_MAX_AGE_S = 14 * 24 * 3600


def _serializer() -> URLSafeTimedSerializer:
    """Return the app's serializer of keys in the earlier format (still read, no longer issued)."""
    serializer = current_app.extensions.get("submission_key_serializer")
    if serializer is None:
        serializer = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="submission-key")
        current_app.extensions["submission_key_serializer"] = serializer
    return serializer


def issue_key(link_id: int, wave_id: int) -> str:
    """Return a signed one-time submission key for a form rendered now for ``link_id`` in a wave.

    ``v2.<random key>.<link>.<wave>.<unix seconds>.<tag>`` (see ``survey/signing.py``).
    """
    return sign("submission-key", f"{random_urlsafe(16)}.{link_id}.{wave_id}.{int(time.time())}")


@dataclass(frozen=True)
class SubmissionKey:
    key: str
    started_at: datetime
    wave_id: int | None  # None: a key issued before keys carried their wave

    def belongs_to(self, wave_id: int, opens_at: datetime) -> bool:
        """Return True when the form was rendered in this wave (not in an earlier one)."""
        return self.wave_id == wave_id if self.wave_id is not None else self.started_at >= opens_at


def read_key(signed: str | None, link_id: int) -> SubmissionKey | None:
    """Return the key, when its form was rendered and in which wave; None if it is not ours for this link."""
    if not signed or len(signed) > 200:
        return None
    if signed.startswith("v2."):
        return _read_v2_key(signed, link_id)
    try:
        payload, issued = _serializer().loads(signed, max_age=KEY_MAX_AGE_S, return_timestamp=True)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("l") != link_id or not isinstance(payload.get("k"), str):
        return None
    wave_id = payload.get("w")
    return SubmissionKey(payload["k"], issued.astimezone(UTC), wave_id if isinstance(wave_id, int) else None)


def _read_v2_key(signed: str, link_id: int) -> SubmissionKey | None:
    payload = unsign("submission-key", signed)
    if payload is None:
        return None
    fields = payload.split(".")
    if len(fields) != 4 or not all(f.isdigit() and f.isascii() for f in fields[1:]):
        return None
    key, link, wave, issued = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if link != link_id or not 0 <= time.time() - issued <= KEY_MAX_AGE_S:
        return None
    return SubmissionKey(key, datetime.fromtimestamp(issued, UTC), wave)


@dataclass(frozen=True)
class Stored:
    response_id: int
    created: bool


# Plain table inserts, compiled once: the hot path of every submission skips the ORM.
_INSERT_RESPONSE = Response.__table__.insert().returning(Response.__table__.c.id)
_INSERT_ANSWERS = Answer.__table__.insert()
_PG_STATEMENTS: dict[tuple[str, ...], str] = {}


def _pg_insert(columns: tuple[str, ...]) -> str:
    """Return PostgreSQL's one-statement insert of a response and its answers (made once per column set).

    One round trip in autocommit mode, instead of BEGIN, two INSERTs and COMMIT. The answers
    travel as one JSON array that ``jsonb_to_recordset`` turns back into rows, and the
    attributes as JSON text: the driver then sends plain strings, which costs far less than
    adapting Python lists into four typed arrays. It is run by psycopg itself, as a prepared
    statement (see :func:`_store_on_postgresql`).
    """
    statement = _PG_STATEMENTS.get(columns)
    if statement is None:
        values = ", ".join("CAST(%(attributes)s AS jsonb)" if c == "attributes" else f"%({c})s" for c in columns)
        statement = _PG_STATEMENTS[columns] = (
            f"WITH r AS (INSERT INTO response ({', '.join(columns)}) VALUES ({values}) RETURNING id), "
            "a AS (INSERT INTO answer (response_id, item_code, choice_code, score, text, value) "
            "SELECT r.id, x.item_code, x.choice_code, x.score, x.text, x.value FROM r, "
            "jsonb_to_recordset(CAST(%(answers)s AS jsonb)) AS x(item_code varchar, choice_code varchar, score float8, "
            "text text, value text)) "
            "SELECT id FROM r"
        )
    return statement


def response_rows(
    definition: Definition,
    answers: dict[str, str | None],
    *,
    key: str,
    wave_id: int,
    version_id: int,
    link_id: int | None,
    area_id: int | None,
    channel: str,
    started_at: datetime | None,
    submitted_at: datetime,
    device_id: str | None = None,
    ip_hash: str | None = None,
    school_class_id: int | None = None,
    entered_by_id: int | None = None,
) -> tuple[dict, list[dict]]:
    """Return the response row (with score, attributes, flags) and its answer rows."""
    score, scored = definition.respondent_score(answers)
    attributes = {name: answers[code] for name, code in definition.attribute_pairs if answers.get(code)}
    row = {
        "wave_id": wave_id,
        "questionnaire_version_id": version_id,
        "link_id": link_id,
        "area_id": area_id,
        "channel": channel,
        "submission_key": key,
        "started_at": started_at,
        "submitted_at": submitted_at,
        "duration_s": (submitted_at - started_at).total_seconds() if started_at else None,
        "score": score,
        "scored_items": scored,
        "device_id": device_id,
        "ip_hash": ip_hash,
        "school_class_id": school_class_id,
        "entered_by_id": entered_by_id,
        "flag_straightline": is_straightline(definition, answers),
        "flag_speeder": False,
        "flag_repeat_device": False,
        "attributes": attributes,
    }
    answer_rows = []
    for item in definition.stored_items:
        given = answers.get(item.code)
        choice, item_score, text = item.answer(given)
        value = item.handler.stored_value(item, given)
        if choice is not None or text is not None or value is not None:
            answer_rows.append({"item_code": item.code, "choice_code": choice, "score": item_score, "text": text,
                                "value": value})
    return row, answer_rows


def build_response(definition: Definition, answers: dict[str, str | None], **meta) -> Response:
    """Return an unsaved ORM response with its answers (for bulk loading such as the demo)."""
    row, answer_rows = response_rows(definition, answers, **meta)
    return Response(**row, answers=[Answer(**a) for a in answer_rows])


def store_response(
    bind: Session | Engine, definition: Definition, answers: dict[str, str | None], *, key: str, **meta
) -> Stored:
    """Write the response and its answers in one transaction; a repeated key stores nothing.

    ``bind`` is the request's session (its read transaction is ended first, so that a request
    holds one connection at a time) or the engine, for a view that has made no session. ``meta``
    are the other arguments of :func:`response_rows` (``submitted_at`` defaults to now).
    Returns the stored response's id and whether this call created it.
    """
    meta.setdefault("submitted_at", datetime.now(UTC))
    row, answer_rows = response_rows(definition, answers, key=key, **meta)
    if isinstance(bind, Session):
        if bind.in_transaction():
            bind.commit()
        engine = bind.get_bind().engine  # (the bind is the engine itself: db_sessionmaker's)
    else:
        engine = bind
    try:
        if engine.dialect.name == "postgresql":
            return Stored(_store_on_postgresql(engine, row, answer_rows), True)
        # A Core connection of the engine, without the ORM's unit of work: the response (returning
        # its id) and all its answers in one multi-row insert.
        with engine.connect().execution_options(write=True) as connection, connection.begin():
            response_id = connection.execute(_INSERT_RESPONSE, row).scalar_one()
            if answer_rows:
                connection.execute(_INSERT_ANSWERS, [a | {"response_id": response_id} for a in answer_rows])
        return Stored(response_id, True)
    except IntegrityError:
        # Another request stored this key first (a double tap racing itself).
        with engine.connect() as connection:
            existing = connection.scalar(select(Response.id).where(Response.submission_key == key))
        if existing is None:
            raise
        return Stored(existing, False)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _store_on_postgresql(engine: Engine, row: dict, answer_rows: list[dict]) -> int:
    """Insert a response and its answers with one prepared statement; return its id.

    This runs on an autocommit driver connection of :func:`survey.db.writer_connections`, one
    round trip: SQLAlchemy's statement machinery and pool checkout cost more CPU than the insert
    itself, on the hot path of every answer. Its error handling is kept: a failed statement
    raises SQLAlchemy's exception (``IntegrityError`` for a repeated key, ``OperationalError``
    for a lost server, which the view answers with 503 and the answers kept), and a dropped
    connection is thrown away together with every other connection of the engine, so that the
    phone's retry gets a fresh one, as SQLAlchemy does after a disconnect.
    """
    import psycopg

    params = row | {"attributes": _JSON.encode(row["attributes"]), "answers": _JSON.encode(answer_rows)}
    statement = _pg_insert(tuple(row))
    writers = writer_connections(engine)
    driver = writers.take()
    try:
        return driver.execute(statement, params, prepare=True).fetchone()[0]
    except psycopg.Error as exc:
        if engine.dialect.is_disconnect(exc, driver, None) or driver.closed:  # type: ignore[arg-type]  # SQLAlchemy's DBAPIModule.Error: a stand-in no driver's error subclasses
            driver.close()
            engine.dispose()  # the others are as dead as this one after a server restart (writers too)
        error = sa_exc.IntegrityError if isinstance(exc, psycopg.IntegrityError) else (
            sa_exc.OperationalError if isinstance(exc, psycopg.OperationalError) else sa_exc.DBAPIError)
        raise error(statement, None, exc) from exc
    finally:
        writers.give_back(driver)
