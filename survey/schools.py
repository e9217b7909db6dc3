"""Schools' "small hand pulls big hand" campaigns: classes, class links and their progress."""
from __future__ import annotations

import functools
import itertools
import os

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from survey.csv_files import csv_reader
from survey.links import new_token
from survey.models import Area, Link, Questionnaire, Response, School, SchoolClass
from survey.scope import within

SCHOOL_COLUMNS = ("school", "district", "class", "grade", "pupils")
AUDIENCES = {"parent": "citizen", "pupil": "minor"}
AUDIENCE_NAMES = {"parent": "家长", "pupil": "学生"}


class SchoolImportError(ValueError):
    """A bad schools CSV; the message names the line."""


def import_schools(session: Session, text: str) -> tuple[int, int]:
    """Create or update schools and classes from CSV (school,district,class,grade,pupils).

    ``district`` is a district's code or name. Returns (schools, classes) read. All or nothing.
    """
    reader = csv_reader(text, SchoolImportError)
    missing = [c for c in SCHOOL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SchoolImportError(f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(SCHOOL_COLUMNS)}")
    districts = {a.code: a for a in session.scalars(select(Area).where(Area.level == "district"))}
    by_name = {a.name: a for a in districts.values()}
    schools: dict[tuple[int, str], School] = {(s.district_id, s.name): s for s in session.scalars(select(School))}
    seen_classes: set[tuple[str, str, str]] = set()
    count = 0
    for line, row in enumerate(reader, start=2):
        name, district_key = (row.get("school") or "").strip(), (row.get("district") or "").strip()
        class_name = (row.get("class") or "").strip()
        if not name or not class_name:
            raise SchoolImportError(f"line {line}: school and class are required")
        district = districts.get(district_key) or by_name.get(district_key)
        if district is None:
            raise SchoolImportError(f"line {line}: district {district_key!r} is not a district code or name")
        try:
            grade, pupils = int(row.get("grade") or ""), int(row.get("pupils") or "")
        except ValueError:
            raise SchoolImportError(f"line {line}: grade and pupils must be whole numbers") from None
        if not 1 <= grade <= 12:
            raise SchoolImportError(f"line {line}: grade {grade} is not between 1 and 12")
        if not 1 <= pupils <= 200:
            raise SchoolImportError(f"line {line}: pupils {pupils} is not between 1 and 200")
        if (district.code, name, class_name) in seen_classes:
            raise SchoolImportError(f"line {line}: class {class_name} of {name} appears twice")
        seen_classes.add((district.code, name, class_name))
        school = schools.get((district.id, name))
        if school is None:
            school = School(name=name, district=district)
            session.add(school)
            session.flush()
            schools[(district.id, name)] = school
        existing = session.scalar(select(SchoolClass).where(SchoolClass.school_id == school.id, SchoolClass.name == class_name))
        klass = existing or SchoolClass(school=school, name=class_name)
        klass.grade, klass.pupils = grade, pupils
        session.add(klass)
        count += 1
    if count == 0:
        raise SchoolImportError("the file has no rows")
    session.flush()
    return len({k[:2] for k in seen_classes}), count


def make_class_links(session: Session) -> list[Link]:
    """Give every class a parent link and a pupil link (if it has none yet); return all of them."""
    questionnaires = {q.code: q for q in session.scalars(select(Questionnaire))}
    existing = {(link.school_class_id, link.audience): link
                for link in session.scalars(select(Link).where(Link.school_class_id.is_not(None)))}
    out = []
    for klass in session.scalars(select(SchoolClass).order_by(SchoolClass.id)):
        for audience, code in AUDIENCES.items():
            link = existing.get((klass.id, audience))
            if link is None:
                link = Link(token=new_token(), questionnaire=questionnaires[code], school_class=klass,
                            audience=audience, channel="school")
                session.add(link)
            out.append(link)
    session.flush()
    return out


def class_progress(session: Session, school: School, wave_id: int | None) -> list[dict]:
    """Return, per class, its size and how many parents and pupils answered (counts only)."""
    counts: dict[tuple[int | None, str | None], int] = {}
    if wave_id is not None:
        rows = session.execute(
            select(Response.school_class_id, Link.audience, func.count())
            .join(Link, Link.id == Response.link_id)
            .join(SchoolClass, SchoolClass.id == Response.school_class_id)
            .where(SchoolClass.school_id == school.id, Response.wave_id == wave_id)
            .group_by(Response.school_class_id, Link.audience)
        ).all()
        counts = {(class_id, audience): n for class_id, audience, n in rows}
    out = []
    for klass in school.classes:
        parents, pupils = counts.get((klass.id, "parent"), 0), counts.get((klass.id, "pupil"), 0)
        out.append({"class": klass, "pupils": klass.pupils, "parents_answered": parents, "pupils_answered": pupils,
                    "parent_rate": parents / klass.pupils, "pupil_rate": pupils / klass.pupils})
    return out


def participation_by_school(session: Session, area: Area, wave_id: int) -> list[dict]:
    """Return, per school in the area, pupils enrolled and parent and pupil answers."""
    schools = session.scalars(select(School).join(Area, Area.id == School.district_id).where(within(area)).order_by(School.name)).all()
    out = []
    for school in schools:
        classes = class_progress(session, school, wave_id)
        pupils = sum(c["pupils"] for c in classes)
        parents = sum(c["parents_answered"] for c in classes)
        answered = sum(c["pupils_answered"] for c in classes)
        out.append({"school": school, "classes": len(classes), "pupils": pupils, "parents_answered": parents,
                    "pupils_answered": answered, "parent_rate": parents / pupils if pupils else 0.0,
                    "pupil_rate": answered / pupils if pupils else 0.0})
    return out


MAX_READINGS = 16  # pinyin spellings kept per name when several characters have more than one reading


@functools.lru_cache(maxsize=4096)
def search_keys(name: str) -> str:
    """Return what a parent may type in Latin letters to find ``name``: its pinyin and its initials.

    Every reading of a character with several is kept (长: zhang and chang), up to MAX_READINGS
    spellings. pypinyin's phrase dictionary (about 45 MB a process) is not loaded: place names are
    matched by every reading instead of the reading a phrase would pick.

    >>> search_keys("桂花社区").split()[:2]
    ['guihuashequ', 'ghsq']
    """
    os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
    from pypinyin import Style, pinyin

    readings = [[r.lower() for r in dict.fromkeys(options) if r] or [""]
                for options in pinyin(name, style=Style.NORMAL, heteronym=True, errors="default")]
    keys: dict[str, None] = {}
    for n, spelling in enumerate(itertools.product(*readings)):
        if n >= MAX_READINGS:
            break
        keys["".join(spelling)] = None
        keys["".join(part[:1] for part in spelling)] = None
    return " ".join(key for key in keys if key.isascii())


def community_choices(session: Session) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Return communities grouped by "district · street" for the parents' community picker: (code, name,
    the pinyin keys picker.js also matches: search_keys)."""
    street = Area.__table__.alias("street")
    district = Area.__table__.alias("district")
    rows = session.execute(
        select(Area.code, Area.name, street.c.name, district.c.name)
        .join(street, street.c.id == Area.parent_id)
        .join(district, district.c.id == street.c.parent_id)
        .where(Area.level == "community")
        .order_by(district.c.code, street.c.code, Area.code)
    ).all()
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for code, name, street_name, district_name in rows:
        groups.setdefault(f"{district_name} · {street_name}", []).append((code, name, search_keys(name)))
    return list(groups.items())
