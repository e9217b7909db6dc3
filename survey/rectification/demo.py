"""The demo city's rectification: a unit per responsible unit named in the areas file, and tasks in every status."""
from __future__ import annotations

import io
import secrets
from datetime import datetime, timedelta

from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session

from forms import Definition
from survey.auth import create_user
from survey.models import AnalysisRun, Area, ItemResult, TaskPhoto, Unit, User
from survey.rectification import photos
from survey.rectification.tasks import Pick, create_tasks, transition
from survey.rectification.units import save_unit

DEMO_UNIT = "市教育局"  # the demo unit login (jiaoyu) belongs to it
# (unit index among the demo unit's communities or another unit, topic index, steps taken, deadline in days from now)
PLAN = [
    ("own", 0, [], 14), ("own", 1, [], -3), ("own", 2, ["start"], 10), ("own", 3, ["start"], -5),
    ("own", 4, ["start", "report"], 7), ("own", 5, ["start", "report", "close"], -2),
    ("own", 6, ["start", "report", "return"], 5), ("other", 0, [], 20), ("other", 1, ["start", "report"], 3),
]


def _account(session: Session, username: str, role: str, code: str, unit_name: str | None = None) -> User:
    user = session.scalar(select(User).where(User.username == username))
    return user or create_user(session, username, "Demo" + secrets.token_hex(6), role, code, unit_name=unit_name)


def _picture(text_seed: int) -> bytes:
    """A small drawn 'after' photo (PNG) for a demo report."""
    image = Image.new("RGB", (480, 320), (120 + text_seed * 20 % 100, 170, 120))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 180, 440, 300), fill=(90, 90, 90))
    draw.ellipse((360, 30, 440, 110), fill=(250, 220, 90))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def seed_rectification(session: Session, definition: Definition, now: datetime, earlier: AnalysisRun | None = None) -> int:
    """Create the units (from the areas' responsible_unit), a city and a unit login, and tasks; return the tasks made.

    With ``earlier`` (an analysed earlier wave) the tasks are made from its scores, so each shows
    its proof once the current wave is analysed.
    """
    by_unit: dict[str, list[str]] = {}
    for area in session.scalars(select(Area).where(Area.level == "community").order_by(Area.code)):
        if area.responsible_unit:
            by_unit.setdefault(area.responsible_unit, []).append(area.code)
    units = {name: save_unit(session, None, name, f"{name[1:3]}联络员", f"0571-8800{i:04d}", codes,
                             f"{len(codes)}个社区的全部楼栋")
             for i, (name, codes) in enumerate(sorted(by_unit.items()))}
    city = _account(session, "wenming", "city", "C")  # who gave the demo tasks (demo-info resets the city login)
    unit_user = _account(session, "jiaoyu", "unit", "C", DEMO_UNIT)
    own = units[DEMO_UNIT]
    other = next(u for name, u in sorted(units.items()) if name != DEMO_UNIT)
    topics = definition.scored_items
    made = 0
    used: set[tuple[int, str]] = set()
    for n, (whose, topic_index, steps, days) in enumerate(PLAN):
        unit = own if whose == "own" else other
        area = unit.communities[topic_index % len(unit.communities)]
        item = topics[topic_index % len(topics)]
        score = None
        if earlier is not None:  # a real problem: a community x topic of the unit's under 80, lowest first
            low_cells = _low_cells(session, earlier, unit, topics, used)
            if low_cells:
                score, area, item = low_cells[0]
            else:
                found = session.scalar(select(ItemResult).where(ItemResult.run_id == earlier.id, ItemResult.area_id == area.id,
                                                                ItemResult.item_code == item.code))
                score = found.estimate if found is not None else None
        used.add((area.id, item.code))
        topic = definition.column_names[item.code]
        created = now - timedelta(days=30 - n)
        low = f"{score:.1f}分" if score is not None else "偏低"
        pick = Pick(area, f"{area.name}“{topic}”满意度{low}，整改提升", "citizen", item.code, topic, None,
                    earlier.wave_id if earlier is not None else None, score)
        (task,) = create_tasks(session, city, [(pick, unit)], now + timedelta(days=days), ("high", "normal", "low")[n % 3],
                               "对照问题清单逐项整改，按期报告。", now=created)
        if days < 0:  # an overdue task was given a deadline that has passed
            task.deadline = now + timedelta(days=days)
        actor = unit_user if unit is own else None
        for step_number, step in enumerate(steps, start=1):
            at = created + timedelta(days=step_number * 2)
            if step in ("start", "report"):
                if actor is None:
                    actor = _account(session, f"demo-unit-{unit.id}", "unit", "C", unit.name)
                note = f"已完成{topic}方面的整改：清理、维修并安排专人每日巡查。" if step == "report" else ""
                event = transition(session, actor, task, step, note, now=at)
                if step == "report":
                    stored = photos.store(current_app.instance_path, _picture(n), "after.png")
                    session.add(TaskPhoto(task_id=task.id, event_id=event.id, stored_name=stored.name, width=stored.width,
                                          height=stored.height, size=stored.size, uploaded_by_id=actor.id, uploaded_at=at))
            else:
                transition(session, city, task, step, "照片不能反映整改效果，请补充整改前后对比。" if step == "return" else "经核实已整改到位。",
                           now=at)
        made += 1
    session.flush()
    return made


def _low_cells(session: Session, run: AnalysisRun, unit: Unit, topics, used: set[tuple[int, str]]) -> list:
    """The unit's community x topic cells under 80 in ``run`` not yet given a task, lowest first."""
    items = {item.code: item for item in topics}
    areas = {a.id: a for a in unit.communities}
    rows = session.scalars(select(ItemResult).where(ItemResult.run_id == run.id, ItemResult.area_id.in_(list(areas)),
                                                    ItemResult.item_code.in_(list(items)), ItemResult.estimate < 80)
                           .order_by(ItemResult.estimate, ItemResult.area_id, ItemResult.item_code))
    return [(r.estimate, areas[r.area_id], items[r.item_code]) for r in rows if (r.area_id, r.item_code) not in used]


def demo_unit(session: Session) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.name == DEMO_UNIT))
