"""Questionnaire versions in the database and their parsed definitions."""
from __future__ import annotations

import io
import json
import re
import secrets
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from forms import Definition, parse_definition
from forms.bundled import bundled_raw
from forms.xlsform import Located, XLSFormError, definition_to_xlsx, read_xlsform
from survey.models import Questionnaire, QuestionnaireVersion, Wave, wave_version
from survey.private_files import private_folder, write_private

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


def questionnaire_named(session: Session, code: str) -> Questionnaire | None:
    """Return the questionnaire with ``code`` (None without one)."""
    return session.scalar(select(Questionnaire).where(Questionnaire.code == code[:64]))


def titles(session: Session) -> dict[str, str]:
    """Return {questionnaire code: its title}, e.g. ``{"citizen": "市民满意度调查"}``."""
    return {code: title for code, title in session.execute(select(Questionnaire.code, Questionnaire.title))}


def definition_by_id(session: Session, version_id: int) -> Definition:
    """Return the parsed definition of a stored version by id, loading it once per process.

    Stored versions never change (a new wording is a new version), so the cache needs no expiry.
    """
    engine = session.get_bind().engine  # (the bind is the engine itself: db_sessionmaker's)
    cached = cached_definition(engine, version_id)
    if cached is not None:
        return cached
    version = session.get(QuestionnaireVersion, version_id)
    if version is None:
        raise LookupError(f"no questionnaire version with id {version_id}")
    definition = definition_of(version)
    with _lock:
        _by_id[(engine, version_id)] = definition  # the engine itself: rendering its URL costs more
    return definition


def cached_definition(engine: Engine, version_id: int) -> Definition | None:
    """Return the definition :func:`definition_by_id` has loaded for this database, if it has."""
    with _lock:
        return _by_id.get((engine, version_id))


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


# Importing, publishing and exporting XLSForm workbooks (CLI and office pages) -----------------

MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # an XLSForm is a few dozen KiB; 2 MiB leaves room for pictures
MAX_UNPACKED_BYTES = 40 * 1024 * 1024  # all members of the .xlsx (a zip) together, uncompressed
MAX_MEMBERS = 500
REFUSED_TYPE = "只能上传 Excel 的 .xlsx 文件（XLSForm）。WPS 或 Excel 中请选择“另存为 → Excel 工作簿（*.xlsx）”。"


class UploadRefused(ValueError):
    """A file that is not read at all: not an .xlsx, too large, or a zip bomb; the message says which."""


@dataclass
class Checked:
    """An XLSForm checked but not stored: the definition dict (None on errors), errors and warnings, each located."""

    raw: dict[str, Any] | None
    errors: list[Located] = field(default_factory=list)
    warnings: list[Located] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.raw is not None and not self.errors


@dataclass
class Publication:
    """What publishing gave: the version stored, or (``created`` False) the latest one, which has the same content."""

    version: QuestionnaireVersion
    created: bool


def check_upload(data: bytes, filename: str | None = None) -> None:
    """Refuse a file that is not a plain .xlsx of reasonable size before it is read.

    An .xlsx is a zip archive: its members' declared uncompressed sizes are added up and a file
    that would unpack to more than ``MAX_UNPACKED_BYTES`` is refused (a "zip bomb"). Python's
    zipfile never returns more bytes for a member than its declared size (and then fails the CRC
    check), so a forged small size cannot unpack to more either. Reading then bounds its own work
    (forms.xlsx_reader: elements, bytes, sheets and texts counted, no DTD).
    """
    if filename is not None and not filename.lower().endswith(".xlsx"):
        raise UploadRefused(REFUSED_TYPE)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused(f"文件太大（{len(data) / 1024 / 1024:.1f} MB）：问卷文件最大 {MAX_UPLOAD_BYTES // 1024 // 1024} MB。"
                            "请删除工作簿中的图片和无关的工作表后再上传。")
    if not data:
        raise UploadRefused("文件是空的，请重新选择问卷文件。")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise UploadRefused(REFUSED_TYPE) from None
    if len(members) > MAX_MEMBERS or sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise UploadRefused("文件解压后过大，不像是正常的问卷文件，已拒绝。请用 Excel 或 WPS 重新保存为 .xlsx 后再上传。")
    if "xl/workbook.xml" not in {m.filename for m in members}:
        raise UploadRefused(REFUSED_TYPE)


def check_xlsform(data: bytes, filename: str | None = None, code: str | None = None) -> Checked:
    """Check an uploaded XLSForm without storing anything; every problem comes back located, never raised."""
    try:
        check_upload(data, filename)
        imported = read_xlsform(data, code=code, name=filename)
    except UploadRefused as exc:
        return Checked(None, [Located("", None, None, str(exc))])
    except XLSFormError as exc:
        return Checked(None, exc.errors, exc.warnings)
    except Exception as exc:  # noqa: BLE001 - a damaged workbook can fail anywhere in reading or checking: say so, never crash
        return Checked(None, [Located("", None, None, f"无法读取这个文件（{type(exc).__name__}）：请用 Excel 或 WPS 重新保存为 .xlsx 后再上传。")])
    return Checked(imported.raw, [], imported.warnings)


def _latest(session: Session, questionnaire: Questionnaire) -> QuestionnaireVersion | None:
    return session.scalar(
        select(QuestionnaireVersion).where(QuestionnaireVersion.questionnaire_id == questionnaire.id)
        .order_by(QuestionnaireVersion.version.desc()).limit(1)
    )


def next_version(session: Session, code: str) -> int:
    """Return the number the next published version of ``code`` gets (1 for a new questionnaire)."""
    questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == code))
    latest = _latest(session, questionnaire) if questionnaire else None
    return latest.version + 1 if latest else 1


def same_as_latest(session: Session, raw: dict[str, Any]) -> QuestionnaireVersion | None:
    """Return the latest version of ``raw``'s questionnaire when it has the same content (its number aside)."""
    questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == raw["code"]))
    latest = _latest(session, questionnaire) if questionnaire else None
    if latest is None:
        return None
    candidate = parse_definition({**raw, "version": latest.version}, f"{raw['code']}-v{latest.version}")
    return latest if candidate == definition_of(latest) else None


def publish(session: Session, raw: dict[str, Any]) -> Publication:
    """Store ``raw`` as the next version of its questionnaire (code ``raw['code']``), or return the latest if equal.

    The version number is always the next one (the settings sheet's ``version`` is not used), so a
    published version is never overwritten; two offices publishing at once collide on the unique
    (questionnaire, version) constraint and one of them fails instead of replacing the other.
    """
    code = raw["code"]
    unchanged = same_as_latest(session, raw)
    if unchanged is not None:
        return Publication(unchanged, created=False)
    questionnaire = session.scalar(select(Questionnaire).where(Questionnaire.code == code))
    if questionnaire is None:
        questionnaire = Questionnaire(code=code, title=raw["title"][:200])
        session.add(questionnaire)
        session.flush()
    number = next_version(session, code)
    stored_raw = {**raw, "version": number}
    parse_definition(stored_raw, f"{code}-v{number}")  # the dict read from the workbook is valid as stored
    questionnaire.title = raw["title"][:200]  # the newest wording names the questionnaire in lists
    version = QuestionnaireVersion(questionnaire=questionnaire, version=number, definition_json=stored_raw)
    session.add(version)
    session.flush()
    return Publication(version, created=True)


def find_version(session: Session, code: str, number: int | None = None) -> QuestionnaireVersion:
    """Return version ``number`` of questionnaire ``code`` (the latest when None); LookupError if there is none."""
    query = select(QuestionnaireVersion).join(Questionnaire).where(Questionnaire.code == code)
    if number is not None:
        query = query.where(QuestionnaireVersion.version == number)
    found = session.scalar(query.order_by(QuestionnaireVersion.version.desc()).limit(1))
    if found is None:
        raise LookupError(f"no questionnaire {code!r}" + (f" version {number}" if number is not None else ""))
    return found


def export_xlsx(version: QuestionnaireVersion) -> bytes:
    """Return a stored version as an XLSForm workbook (importing it gives the same definition)."""
    return definition_to_xlsx(definition_of(version))


def overview(session: Session) -> list[tuple[Questionnaire, list[tuple[QuestionnaireVersion, list[Wave]]]]]:
    """Return every questionnaire with its versions, newest first, and the waves fielding each."""
    fielded: dict[int, list[Wave]] = {}
    for version_id, wave in session.execute(
        select(wave_version.c.questionnaire_version_id, Wave).join(Wave, Wave.id == wave_version.c.wave_id)
        .order_by(Wave.opens_at)
    ):
        fielded.setdefault(version_id, []).append(wave)
    out = []
    for questionnaire in session.scalars(select(Questionnaire).order_by(Questionnaire.code)):
        versions = sorted(questionnaire.versions, key=lambda v: v.version, reverse=True)
        out.append((questionnaire, [(v, fielded.get(v.id, [])) for v in versions]))
    return out


# Uploads waiting to be published (office pages): one JSON file each, owner only, a day at most ----

PENDING_SECONDS = 24 * 3600
PENDING_ID = re.compile(r"[A-Za-z0-9_-]{22}\Z")


def _located(items: list[Located]) -> list[list[Any]]:
    return [[m.sheet, m.row, m.column, m.message] for m in items]


def save_pending(folder: Path, user_id: int, checked: Checked, filename: str) -> str:
    """Keep a checked, valid upload for its owner until it is published or a day has passed; return its id.

    The definition is kept as the dict that was read (never the file itself), in
    ``folder/<random id>.json``; expired uploads are removed whenever one is saved.
    """
    private_folder(folder)
    sweep_pending(folder)
    upload_id = secrets.token_urlsafe(16)
    record = {"user_id": user_id, "created": time.time(), "filename": filename[:200], "raw": checked.raw,
              "warnings": _located(checked.warnings)}
    write_private(folder / f"{upload_id}.json", json.dumps(record, ensure_ascii=False).encode())
    return upload_id


@dataclass
class Pending:
    id: str
    user_id: int
    created: float
    filename: str
    raw: dict[str, Any]
    warnings: list[Located]

    @property
    def definition(self) -> Definition:
        return parse_definition(self.raw, self.filename)


def load_pending(folder: Path, upload_id: str, user_id: int) -> Pending | None:
    """Return the upload ``upload_id`` if ``user_id`` made it and it has not expired; else None."""
    if not PENDING_ID.match(upload_id):
        return None
    try:
        record = json.loads((folder / f"{upload_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("user_id") != user_id or time.time() - record.get("created", 0) > PENDING_SECONDS:
        return None
    warnings = [Located(*w) for w in record.get("warnings", [])]
    return Pending(upload_id, user_id, record["created"], record["filename"], record["raw"], warnings)


def drop_pending(folder: Path, upload_id: str) -> None:
    if PENDING_ID.match(upload_id):
        (folder / f"{upload_id}.json").unlink(missing_ok=True)


def sweep_pending(folder: Path) -> None:
    """Delete uploads older than ``PENDING_SECONDS`` (and files left half-written)."""
    limit = time.time() - PENDING_SECONDS
    for path in folder.glob("*.*"):
        try:
            if path.suffix in (".json", ".part") and path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
        except OSError:
            pass
