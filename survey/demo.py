"""A demo city: areas, a wave, community links and synthetic responses with real patterns.

Satisfaction differs by community (a few are clearly under 80), by topic within a community,
by age (older residents are happier) and a little by sex; older residents also answer more
often. That is the bias raking corrects, so the analysis has something real to find.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forms import Definition
from survey.areas import import_areas
from survey.boundaries import import_boundaries, parse_geojson
from survey.links import make_community_links
from survey.localtime import now_local
from survey.models import Area, AreaBoundary, Link, Unit, Wave
from survey.questionnaires import definition_of, install_bundled
from survey.results import import_margins
from survey.schools import import_schools, make_class_links
from survey.sites import import_sites
from survey.submissions import build_response
from survey.waves import create_wave

DISTRICTS = [("D01", "东城区"), ("D02", "西湖区"), ("D03", "南山区")]
STREETS = ["人民路街道", "解放街道", "新华街道", "建设街道", "文化路街道", "和平街道", "长安街道", "朝阳街道", "光明街道"]
COMMUNITIES = ["幸福", "和谐", "阳光", "春晖", "翠园", "锦绣", "华庭", "东苑", "桂花", "枫林", "金桥", "滨江",
               "丽景", "明珠", "青松", "紫荆", "绿洲", "新村", "康乐", "盛世", "安居", "悦来", "书香", "育才",
               "兴隆", "永安", "福泰", "祥和", "怡景", "馨园", "天福", "鹏程", "荷塘", "观澜", "龙泉", "凤鸣"]
UNITS = ["市发展改革委", "市教育局", "市公安局", "市民政局", "市财政局", "市住建局", "市交通局", "市卫健委", "市文旅局"]
AGE_EFFECT = {"18-29": -4.0, "30-44": -5.0, "45-59": 0.0, "60+": 5.0}
AGE_SHARE = {"18-29": 0.12, "30-44": 0.22, "45-59": 0.30, "60+": 0.36}  # of respondents: older answer more
COMPLAINTS = [
    "小区垃圾清运不及时，夏天有异味", "背街小巷占道经营严重，晚上噪音大", "停车难，电动车乱停乱放",
    "公共厕所太少而且不干净", "路灯坏了很久没人修", "老旧小区楼道堆放杂物，存在安全隐患",
    "希望多建一些健身器材和儿童游乐设施", "物业服务态度差，报修没人管", "十字路口车辆不礼让行人",
    "办事窗口排队时间太长", "希望社区多组织志愿服务活动", "流浪狗太多，晚上出门不安全",
]


def _pupil_responses(session, definition: Definition, wave: Wave, version_id: int, links: list[Link],
                     rng: np.random.Generator, now: datetime) -> int:
    """Add about half of each demo class as pupils' answers to the minors questionnaire."""
    created = 0
    for link in links:
        klass = link.school_class
        if klass is None:
            raise ValueError(f"link {link.id} is not a class's link")
        school_mean = 84.0 if "小学" in klass.school.name else 79.0
        for _ in range(int(klass.pupils * rng.uniform(0.3, 0.7))):
            person = school_mean + rng.normal(0, 6)
            answers: dict[str, str | None] = {"grade_band": klass.grade_band}
            for item in definition.scored_items:
                value = person + rng.normal(0, 11)
                answers[item.code] = str(int(np.clip(np.rint((value - 20) / 20), 0, 4)) + 1)
            for item in definition.rate_items:
                answers[item.code] = "Y" if rng.random() < 0.8 else "N"
            submitted = now - timedelta(days=float(rng.uniform(0, 29)))
            started = submitted - timedelta(seconds=float(rng.lognormal(np.log(180), 0.3)))
            session.add(build_response(definition, answers, key=f"demo-{secrets.token_hex(12)}", wave_id=wave.id,
                                       version_id=version_id, link_id=link.id, area_id=klass.school.district_id,
                                       channel="school", school_class_id=klass.id, started_at=started,
                                       submitted_at=submitted))
            created += 1
    session.flush()
    return created


def areas_csv_text(seed: int = 7) -> str:
    """Return the demo city's areas as import CSV: 3 districts, 9 streets, 36 communities."""
    rng = np.random.default_rng(seed)
    lines = ["code,name,level,parent_code,adult_population,responsible_unit", "C,示范市,city,,,"]
    community = 0
    for d, (dcode, dname) in enumerate(DISTRICTS):
        lines.append(f"{dcode},{dname},district,C,,")
        for s in range(3):
            scode = f"{dcode}S{s + 1}"
            lines.append(f"{scode},{STREETS[d * 3 + s]},street,{dcode},,")
            for c in range(4):
                name = COMMUNITIES[community] + "社区"
                population = int(rng.integers(2500, 12000))
                lines.append(f"{scode}C{c + 1},{name},community,{scode},{population},{UNITS[community % len(UNITS)]}")
                community += 1
    return "\n".join(lines) + "\n"


# The demo city's map: districts side by side, each three streets stacked north to south, each street
# four communities (2 x 2). Outlines follow a jittered lattice whose edges are shared by neighbours, so
# the areas tile without gaps or overlaps and look drawn rather than ruled.
MAP_ORIGIN = (112.930, 28.260)  # the north-west corner (lon, lat)
MAP_CELL = (0.014, 0.011)  # a community's size in degrees (about 1.4 x 1.2 km)
EDGE_STEPS = 4


def _lattice(seed: int, columns: int, rows: int) -> tuple[np.ndarray, dict[tuple[str, int, int], list[list[float]]]]:
    """Return the lattice's corners and each edge's points (corner to corner, wiggled in between)."""
    rng = np.random.default_rng(seed + 30)
    lon0, lat0 = MAP_ORIGIN
    dx, dy = MAP_CELL
    corners = np.zeros((columns + 1, rows + 1, 2))
    for i in range(columns + 1):
        for j in range(rows + 1):
            corners[i, j] = (lon0 + i * dx + rng.uniform(-0.18, 0.18) * dx, lat0 - j * dy + rng.uniform(-0.18, 0.18) * dy)
    edges: dict[tuple[str, int, int], list[list[float]]] = {}
    for kind, span_i, span_j in (("h", columns, rows + 1), ("v", columns + 1, rows)):
        for i in range(span_i):
            for j in range(span_j):
                start = corners[i, j]
                end = corners[i + 1, j] if kind == "h" else corners[i, j + 1]
                normal = np.array([0.0, dy]) if kind == "h" else np.array([dx, 0.0])
                points = [start + (end - start) * t + normal * rng.uniform(-0.06, 0.06)
                          for t in np.linspace(0, 1, EDGE_STEPS + 1)[1:-1]]
                edges[(kind, i, j)] = [[round(float(x), 6), round(float(y), 6)] for x, y in [start, *points, end]]
    return corners, edges


def _block(edges: dict[tuple[str, int, int], list[list[float]]], i0: int, j0: int, width: int, height: int) -> list:
    """Return the outline (a MultiPolygon's coordinates) of the lattice cells [i0, i0+width) x [j0, j0+height)."""
    ring: list[list[float]] = []
    for i in range(i0, i0 + width):  # north side, west to east
        ring += edges[("h", i, j0)][:-1]
    for j in range(j0, j0 + height):  # east side, north to south
        ring += edges[("v", i0 + width, j)][:-1]
    for i in reversed(range(i0, i0 + width)):  # south side, east to west
        ring += edges[("h", i, j0 + height)][:0:-1]
    for j in reversed(range(j0, j0 + height)):  # west side, south to north
        ring += edges[("v", i0, j)][:0:-1]
    ring.append(ring[0])
    return [[ring[::-1]]]  # counter-clockwise, as RFC 7946 has outer rings


def boundaries_geojson(seed: int = 7) -> dict:
    """Return the demo city's outlines as GeoJSON: the city, its districts, streets and communities."""
    districts, streets, communities = len(DISTRICTS), 3, (2, 2)
    columns, rows = districts * communities[0], streets * communities[1]
    _, edges = _lattice(seed, columns, rows)
    blocks: dict[str, tuple[int, int, int, int]] = {"C": (0, 0, columns, rows)}
    for d, (dcode, _) in enumerate(DISTRICTS):
        blocks[dcode] = (d * 2, 0, 2, rows)
        for s in range(streets):
            blocks[f"{dcode}S{s + 1}"] = (d * 2, s * 2, 2, 2)
            for c in range(4):
                blocks[f"{dcode}S{s + 1}C{c + 1}"] = (d * 2 + c % 2, s * 2 + c // 2, 1, 1)
    features = [{"type": "Feature", "properties": {"code": code},
                 "geometry": {"type": "MultiPolygon", "coordinates": _block(edges, *block)}}
                for code, block in blocks.items()]
    return {"type": "FeatureCollection", "features": features}


def sites_csv_text(session: Session, seed: int = 7) -> str:
    """Return a few sites of several types per demo community, inside its outline, for ``import_sites``."""
    rng = np.random.default_rng(seed + 40)
    kinds = ["market", "back_street", "toilet", "park", "bus_stop", "residential", "practice_centre"]
    units = {u.name for u in session.scalars(select(Unit))}
    lines = ["code,name,type,community_code,unit,lat,lon"]
    rows = session.execute(select(Area, AreaBoundary).join(AreaBoundary, AreaBoundary.area_id == Area.id)
                           .where(Area.level == "community").order_by(Area.code)).all()
    for area, boundary in rows:
        ring = np.array(boundary.coordinates[0][0])
        middle = (ring.min(axis=0) + ring.max(axis=0)) / 2
        half = (ring.max(axis=0) - ring.min(axis=0)) / 2
        for k in range(int(rng.integers(2, 4))):
            kind = kinds[int(rng.integers(len(kinds)))]
            lon, lat = middle + half * rng.uniform(-0.45, 0.45, 2)
            name = f"{area.name.removesuffix('社区')}{_SITE_NAMES[kind]}"
            unit = area.responsible_unit if area.responsible_unit in units else ""
            lines.append(f"{area.code}-P{k + 1},{name},{kind},{area.code},{unit},{lat:.6f},{lon:.6f}")
    return "\n".join(lines) + "\n"


_SITE_NAMES = {"market": "农贸市场", "back_street": "后街", "toilet": "公厕", "park": "游园", "bus_stop": "公交站",
               "residential": "小区", "practice_centre": "新时代文明实践站"}


def margins_csv_text(session: Session) -> str:
    """Return city-wide sex and age-band margins that add up to the communities' population."""
    total = int(session.scalar(select(func.sum(Area.adult_population)).where(Area.level == "community")) or 0)
    men = total * 49 // 100
    ages = [total * share // 100 for share in (20, 28, 29)]
    ages.append(total - sum(ages))
    rows = ["variable,category,total", f"sex,M,{men}", f"sex,F,{total - men}"]
    rows += [f"age_band,{band},{count}" for band, count in zip(AGE_EFFECT, ages)]
    return "\n".join(rows) + "\n"


DEMO_LOGINS = (("city", "city", "C", None), ("dongcheng", "district", "D01", None),
               ("renmin", "street", "D01S1", None), ("xingfu", "grid", "D01S1C1", None),
               ("shiyan", "school", "D01", "东城区实验小学"), ("jiaoyu", "unit", "C", "市教育局"))
SCHOOLS_CSV = "school,district,class,grade,pupils\n" + "".join(
    f"东城区实验小学,D01,{grade}年级{n}班,{grade},{40 + (grade * 3 + n) % 9}\n" for grade in (3, 4, 5) for n in (1, 2)
) + "".join(f"西湖区第二中学,D02,初{grade - 6}（{n}）班,{grade},{45 + n}\n" for grade in (7, 8) for n in (1, 2))


def reset_demo_logins(session: Session) -> list[tuple[str, str, str]]:
    """Give each demo office account a fresh random password; return (user, password, area)."""
    from survey.auth import create_user, set_password
    from survey.models import User
    from survey.models.users import ROLE_NAMES

    out = []
    for username, role, code, school in DEMO_LOGINS:
        password = "Demo" + secrets.token_hex(5)
        user = session.scalar(select(User).where(User.username == username))
        school_name, unit_name = (None, school) if role == "unit" else (school, None)
        if user is None:
            user = create_user(session, username, password, role, code, school_name, unit_name)
        else:
            set_password(session, user, password)
        place = unit_name or (user.school.name if user.school else user.area.name)
        out.append((username, password, f"{ROLE_NAMES.get(role, role)}：{place}"))  # which role, where
    return out


def demo_exists(session: Session) -> bool:
    return session.scalar(select(Area.id).where(Area.code == "C")) is not None


def demo_links(session: Session) -> list[Link]:
    """Return the demo city's citizen links, first community first."""
    return list(
        session.scalars(select(Link).join(Area, Link.area_id == Area.id).where(Link.channel == "qr").order_by(Area.code))
    )


def demo_school_link(session: Session) -> Link | None:
    """Return the parent link of the demo school's first class."""
    return session.scalar(select(Link).where(Link.audience == "parent").order_by(Link.school_class_id).limit(1))


def seed_demo(
    session: Session,
    respondents: int = 3000,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
    previous_wave: bool = False,
) -> dict[str, object]:
    """Create the demo city with an open wave, links and synthetic responses; return a summary.

    With ``previous_wave`` an earlier, closed and analysed wave comes first (about 5 points lower),
    and the demo's rectification tasks are made from its problems, so each shows its next-wave proof.
    """
    if demo_exists(session):
        raise ValueError("the demo city exists already")
    install_bundled(session)
    import_areas(session, areas_csv_text(seed))
    now = datetime.now(UTC)
    local = now_local()
    quarter = "一二三四"[(local.month - 1) // 3]
    earlier = _previous_wave(session, respondents, seed, now) if previous_wave else None
    wave = create_wave(session, f"{local.year}年第{quarter}季度测评", now - timedelta(days=30), now + timedelta(days=60),
                       ["citizen", "minor"])
    links = make_community_links(session, "citizen")
    import_schools(session, SCHOOLS_CSV)
    class_links = make_class_links(session)
    citizen = next(v for v in wave.versions if v.questionnaire.code == "citizen")
    definition = definition_of(citizen)
    rng = np.random.default_rng(seed)
    parent_links = [link for link in class_links if link.audience == "parent"]
    created = _responses(session, definition, wave, citizen.id, links, parent_links, respondents, rng, now, progress)
    minor = next(v for v in wave.versions if v.questionnaire.code == "minor")
    pupil_links = [link for link in class_links if link.audience == "pupil"]
    pupils = _pupil_responses(session, definition_of(minor), wave, minor.id, pupil_links, rng, now)
    import_margins(session, margins_csv_text(session))
    from survey.rectification.demo import seed_rectification

    tasks = seed_rectification(session, definition, now, earlier)  # units, a unit login, tasks in every status
    session.flush()
    import_boundaries(session, parse_geojson(json.dumps(boundaries_geojson(seed)).encode()))
    sites = import_sites(session, sites_csv_text(session, seed))
    return {"wave": wave.name, "links": len(links), "responses": created, "pupils": pupils, "first_link": links[0].token,
            "tasks": tasks, "sites": sites}


def _previous_wave(session: Session, respondents: int, seed: int, now: datetime):
    """An earlier citizen wave (closed 60 days ago), about 5 points lower, analysed; return its run."""
    from survey.results import run_analysis

    wave = create_wave(session, "上一轮测评", now - timedelta(days=150), now - timedelta(days=60), ["citizen"])
    links = make_community_links(session, "citizen")
    version = wave.versions[0]
    import_margins(session, margins_csv_text(session))
    rng = np.random.default_rng(seed + 1000)
    _responses(session, definition_of(version), wave, version.id, links, [], respondents, rng,
               now - timedelta(days=61), None, shift=-5.0)
    session.flush()
    return run_analysis(session, wave)


def _responses(session, definition: Definition, wave: Wave, version_id: int, links: list[Link],
               parent_links: list[Link], total: int, rng: np.random.Generator, now: datetime, progress,
               shift: float = 0.0) -> int:
    """Add synthetic responses: mostly by QR code, some by parents through classes, some on paper."""
    scored = definition.scored_items
    rates = definition.rate_items
    community_mean = rng.normal(85.5 + shift, 4.5, len(links))
    community_mean[rng.choice(len(links), 5, replace=False)] -= rng.uniform(6, 12, 5)  # a few clearly unhappy
    topic_effect = rng.normal(0.0, 4.0, (len(links), len(scored)))
    weights = rng.lognormal(0.0, 0.8, len(links))
    counts = rng.multinomial(total, weights / weights.sum())
    ages = list(AGE_SHARE)
    created = 0
    for index, (link, count) in enumerate(zip(links, counts)):
        for _ in range(count):
            age = ages[rng.choice(4, p=list(AGE_SHARE.values()))]
            sex = "F" if rng.random() < 0.55 else "M"
            person = community_mean[index] + AGE_EFFECT[age] + (1.0 if sex == "F" else 0.0) + rng.normal(0, 6)
            answers: dict[str, str | None] = {"sex": sex, "age_band": age, "resident": "Y" if rng.random() < 0.93 else "N"}
            for j, item in enumerate(scored):
                if rng.random() < 0.05:
                    answers[item.code] = "0"
                    continue
                value = person + topic_effect[index, j] + rng.normal(0, 11)
                answers[item.code] = str(int(np.clip(np.rint((value - 20) / 20), 0, 4)) + 1)
            for item in rates:
                p_yes = {"awareness": 0.9, "support": 0.95, "participation": 0.45}.get(item.kind or "", 0.7)
                draw = rng.random()
                answers[item.code] = "Y" if draw < p_yes else ("U" if draw > 0.97 else "N")
            if person < 78 and rng.random() < 0.3:
                answers["comment"] = COMPLAINTS[int(rng.integers(len(COMPLAINTS)))]
            submitted = now - timedelta(days=float(rng.uniform(0, 29)), minutes=float(rng.uniform(0, 600)))
            started: datetime | None = submitted - timedelta(seconds=float(rng.lognormal(np.log(200), 0.35)))
            channel_draw = rng.random()
            via = {"link_id": link.id, "channel": "qr", "school_class_id": None}
            if channel_draw < 0.12 and parent_links:
                parent = parent_links[int(rng.integers(len(parent_links)))]
                via = {"link_id": parent.id, "channel": "school", "school_class_id": parent.school_class_id}
            elif channel_draw < 0.20:
                via = {"link_id": None, "channel": "paper", "school_class_id": None}
                started = None
            session.add(
                build_response(definition, answers, key=f"demo-{secrets.token_hex(12)}", wave_id=wave.id,
                               version_id=version_id, area_id=link.area_id, started_at=started,
                               submitted_at=submitted, **via)
            )
            created += 1
            if created % 500 == 0:
                session.flush()
                if progress:
                    progress(500)
    if progress:
        progress(created % 500)
    return created
