"""Office page times and the district PDF with 1M stored responses on PostgreSQL.

    python -m benchmarks.office_pages [--url postgresql://postgres@127.0.0.1:5432/survey_pages]
                                      [--responses 1000000] [--requests 30] [--reuse] [--no-fresh]
                                      [--only NAME] [--fresh-runs N]

Builds a city of 10 districts x 10 streets x 10 communities, 1M responses with ten scored answers
each (generated inside PostgreSQL) in the current wave and a tenth as many in the wave before
(so the pages show changes and a two-wave trend), runs the stored analysis of both, adds a
responsible unit per street and rectification tasks from the problem list. Then it requests every
office page a city office reaches repeatedly through the app (logged in as the city office) and
prints p50/p95 per page, and the first request of a fresh process for each page: a new Python
process that creates the app and times its first GET of that page (the login cookie is made by
this process, so the page is the child's first request; the child warms up as a gunicorn worker does
before it serves, WARM_UP), each against the target p95 <= 100 ms (``--fresh-runs N``: N such processes
per page, their median held to the target and the slowest printed: one sample on a shared machine is noise).
Last, the time to render a district report of 100 communities.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from sqlalchemy import Engine, text

from benchmarks.db_analysis import ensure_database
from survey import create_app, db

PASSWORD = "Office-2026-strong"
TARGET_MS = 100
CONFIG = {"SECRET_KEY": "bench", "RATELIMIT_ENABLED": False}

AREAS = """
INSERT INTO area (code, name, level, parent_id, adult_population, path) VALUES ('C', '基准市', 'city', NULL, NULL, '/');
UPDATE area SET path = '/' || id || '/' WHERE code = 'C';
INSERT INTO area (code, name, level, parent_id, path)
  SELECT 'D' || d, '区' || d, 'district', (SELECT id FROM area WHERE code = 'C'), '' FROM generate_series(1, 10) d;
INSERT INTO area (code, name, level, parent_id, path)
  SELECT 'D' || d || 'S' || s, '街道' || d || '-' || s, 'street', (SELECT id FROM area WHERE code = 'D' || d), ''
  FROM generate_series(1, 10) d, generate_series(1, 10) s;
INSERT INTO area (code, name, level, parent_id, adult_population, path)
  SELECT 'D' || d || 'S' || s || 'C' || c, '社区' || d || '-' || s || '-' || c, 'community',
         (SELECT id FROM area WHERE code = 'D' || d || 'S' || s), 3000 + (d * 97 + s * 13 + c * 7) % 9000, ''
  FROM generate_series(1, 10) d, generate_series(1, 10) s, generate_series(1, 10) c;
UPDATE area a SET path = p.path || a.id || '/' FROM area p WHERE a.parent_id = p.id AND a.level = 'district';
UPDATE area a SET path = p.path || a.id || '/' FROM area p WHERE a.parent_id = p.id AND a.level = 'street';
UPDATE area a SET path = p.path || a.id || '/' FROM area p WHERE a.parent_id = p.id AND a.level = 'community';
"""

RESPONSES = """
INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at,
                      attributes, score, scored_items)
SELECT :wave, :version, first.id + (g::bigint * 7919) % 1000, (ARRAY['qr','qr','school','paper'])[1 + g % 4],
       :prefix || g, :submitted,
       jsonb_build_object('sex', CASE WHEN random() < 0.5 THEN 'M' ELSE 'F' END,
                          'age_band', (ARRAY['18-29','30-44','45-59','60+'])[1 + floor(random() * 4)::int]), 0, 10
FROM generate_series(1, :responses) g, (SELECT min(id) AS id FROM area WHERE level = 'community') first
"""

ANSWERS = """
INSERT INTO answer (response_id, item_code, choice_code, score)
SELECT r.id, 'q' || lpad(i::text, 2, '0'), v.code, v.score
FROM response r CROSS JOIN generate_series(1, 10) i
CROSS JOIN LATERAL (SELECT least(5, greatest(1, 3 + floor(random() * 2.2 + (r.area_id % 7) / 6.0)::int)) AS k) k
CROSS JOIN LATERAL (SELECT k.k::text AS code, 20.0 * k.k AS score) v
"""

SCORES = """
UPDATE response r SET score = s.avg FROM (SELECT response_id, avg(score) AS avg FROM answer GROUP BY response_id) s
WHERE s.response_id = r.id
"""


def empty_city(app) -> tuple[Engine, int, int]:
    """Give the benchmark database a fresh schema with the 1,000-community city and an open wave.

    Returns (engine, wave id, citizen version id); the benchmarks then generate their responses in SQL.
    """
    runner = app.test_cli_runner()
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert runner.invoke(args=["create-wave", "基准轮", "--opens", "2020-01-01", "--closes", "2030-01-01"]).exit_code == 0
    with engine.begin() as conn:
        conn.exec_driver_sql(AREAS.replace("%", "%%"))
        wave, version = conn.execute(text(
            "SELECT w.id, v.id FROM wave w, questionnaire_version v JOIN questionnaire q ON q.id = v.questionnaire_id "
            "WHERE q.code = 'citizen'")).one()
    return engine, wave, version


def build(app, responses: int) -> None:
    runner = app.test_cli_runner()
    start = time.perf_counter()
    engine, wave, version = empty_city(app)
    assert runner.invoke(args=["create-wave", "上一轮", "--opens", "2019-01-01", "--closes", "2020-01-01"]).exit_code == 0
    with engine.begin() as conn:
        earlier = conn.execute(text("SELECT id FROM wave WHERE name = '上一轮'")).scalar()
        conn.execute(text(RESPONSES), {"wave": earlier, "version": version, "responses": max(5000, responses // 10),
                                       "prefix": "bench-earlier-", "submitted": "2019-06-01"})
        conn.execute(text(RESPONSES), {"wave": wave, "version": version, "responses": responses, "prefix": "bench-",
                                       "submitted": "2021-06-01"})
        conn.execute(text(ANSWERS))
        conn.execute(text(SCORES))
        conn.exec_driver_sql("ANALYZE")
    print(f"generated {responses:,} responses (and {max(5000, responses // 10):,} in the wave before) with 10 answers each "
          f"in {time.perf_counter() - start:.0f} s", flush=True)
    margins = "variable,category,total\nsex,M,{m}\nsex,F,{f}\nage_band,18-29,{a}\nage_band,30-44,{b}\nage_band,45-59,{c}\nage_band,60+,{d}\n"
    with engine.connect() as conn:
        population = conn.execute(text("SELECT sum(adult_population) FROM area WHERE level = 'community'")).scalar()
    quarter = population // 4
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        handle.write(margins.format(m=population // 2, f=population - population // 2, a=quarter, b=quarter, c=quarter,
                                    d=population - 3 * quarter))
    assert runner.invoke(args=["import-margins", handle.name]).exit_code == 0
    for name in ("上一轮", "基准轮"):
        start = time.perf_counter()
        result = runner.invoke(args=["analyze", "--wave", name])
        assert result.exit_code == 0, result.output
        print(f"stored analysis of {name} in {time.perf_counter() - start:.1f} s: {result.output.strip().splitlines()[-1]}",
              flush=True)
    print(f"rectification: {rectification(app)} tasks", flush=True)


def rectification(app, tasks: int = 500) -> int:
    """Give each street a responsible unit for its communities and make tasks from the current problem list."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from survey.models import Area, User
    from survey.reading import dashboard
    from survey.rectification.tasks import Pick, create_tasks
    from survey.rectification.units import save_unit

    runner = app.test_cli_runner()
    runner.invoke(args=["create-user", "tasks", "--role", "city", "--area", "C", "--password", PASSWORD])
    session = db.session()
    with db.write_transaction(session):
        units = {}
        for street in session.scalars(select(Area).where(Area.level == "street").order_by(Area.code)):
            codes = [a.code for a in session.scalars(select(Area).where(Area.parent_id == street.id))]
            units[street.id] = save_unit(session, None, f"{street.name}帮包单位", "联络员", "0571-88000000", codes)
        user = session.scalar(select(User).where(User.username == "tasks"))
        run = dashboard.runs_by_wave(session)[-1]
        definition = dashboard.run_definition(run)
        found = dashboard.problems(session, run, session.scalar(select(Area).where(Area.code == "C")), definition)
        picks = [(Pick(p.community, f"{p.community.name}{p.topic}整改", run.questionnaire_code, p.item, p.topic, None,
                       run.wave_id, p.estimate), units[p.community.parent_id]) for p in found[:tasks]]
        now = datetime.now(UTC)
        made = create_tasks(session, user, picks, now + timedelta(days=30), "normal", "按期整改。", now=now) if picks else []
    return len(made)


def pages(session) -> dict[str, str]:
    """Every office page a city office reaches: {name: url}."""
    earlier = session.execute(text("SELECT id FROM wave WHERE name = '上一轮'")).scalar()
    return {
        "city dashboard": "/office/area/C",
        "district dashboard": "/office/area/D3",
        "street dashboard": "/office/area/D3S4",
        "community page": "/office/community/D3S4C5",
        "city problem list": "/office/area/C/problems",
        "district problem list": "/office/area/D3/problems",
        "street problem list": "/office/area/D3S4/problems",
        "city at-risk list": "/office/area/C/at-risk",
        "city changes (?compare)": f"/office/area/C?compare={earlier}",
        "community changes": f"/office/community/D3S4C5?compare={earlier}",
        "earlier wave dashboard": f"/office/area/C?wave={earlier}",
        "fieldwork": "/office/fieldwork",
        "schools": "/office/area/C/schools",
        "accounts": "/office/accounts",
        "exports page": "/office/area/C/exports",
        "questionnaires": "/office/questionnaires/",
        "rectification tasks": "/rectification/tasks",
        "rectification units": "/rectification/units",
        "rectification rates": "/rectification/rates",
        "rectification league": "/rectification/league",
    }


def percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(share * len(ordered))) - 1)]


def fresh_first_request(url: str, database: str, cookie: tuple[str, str], path: str) -> dict:
    """Time, in a new Python process, creating the app and its first GET of ``path`` (logged in by cookie)."""
    env = dict(os.environ, BENCH_COOKIE=json.dumps(cookie))
    out = subprocess.run([sys.executable, "-m", "benchmarks.office_pages", "--url", database, "--fresh-child", path],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return {"status": f"failed ({out.returncode})", "create_ms": float("nan"), "first_ms": float("inf")}
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_child(database: str, path: str) -> None:
    start = time.perf_counter()
    app = create_app({"DATABASE_URL": database, **CONFIG, "WARM_UP": True})  # as a gunicorn worker starts
    created = time.perf_counter() - start
    client = app.test_client()
    name, value = json.loads(os.environ["BENCH_COOKIE"])
    client.set_cookie(name, value, domain="localhost")
    start = time.perf_counter()
    page = client.get(path)
    first = time.perf_counter() - start
    start = time.perf_counter()
    client.get(path)
    second = time.perf_counter() - start
    print(json.dumps({"status": page.status_code, "create_ms": created * 1000, "first_ms": first * 1000,
                      "second_ms": second * 1000}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_pages")
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    parser.add_argument("--no-report", action="store_true", help="skip the district PDF")
    parser.add_argument("--no-fresh", action="store_true", help="skip the fresh-process first requests")
    parser.add_argument("--only", default=None, help="only the pages whose name contains this")
    parser.add_argument("--fresh-runs", type=int, default=1,
                        help="fresh processes per page; their median first request is held to the target (a shared "
                             "machine's noise), the slowest printed beside it")
    parser.add_argument("--fresh-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh_child:
        fresh_child(args.url, args.fresh_child)
        return
    ensure_database(args.url)
    app = create_app({"DATABASE_URL": args.url, **CONFIG})
    with app.app_context():
        if not args.reuse:
            build(app, args.responses)
    # The pages are then served by an app prepared as a gunicorn worker is (deploy/gunicorn.conf.py):
    # warmed up, and its start-up heap frozen out of the garbage collector's full collections.
    app = create_app({"DATABASE_URL": args.url, **CONFIG, "WARM_UP": True})
    with app.app_context():
        session = db.session()
        count = session.execute(text("SELECT count(*) FROM response")).scalar()
        app.test_cli_runner().invoke(args=["create-user", "pages", "--role", "city", "--area", "C", "--password", PASSWORD])
        urls = {name: url for name, url in pages(session).items() if not args.only or args.only in name}
    client = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/office/login").text).group(1)
    login = client.post("/office/login", data={"username": "pages", "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 302, login.status_code
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    cookie = (cookie_name, client.get_cookie(cookie_name).value)
    print(f"{count:,} stored responses; {args.requests} requests per page after one warm-up; "
          f"target p95 and fresh first request <= {TARGET_MS} ms")
    print(f"  {'page':<26} {'p50':>8} {'p95':>8} {'fresh 1st':>10} {'(start)':>12}  target")
    missed = []
    for name, url in urls.items():
        status = client.get(url).status_code
        if status != 200:
            print(f"  {name:<26} answers {status}  NOT MET")
            missed.append(name)
            continue
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            page = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert page.status_code == 200
        p95 = percentile(times, 0.95)
        fresh = None
        if not args.no_fresh:
            tries = [fresh_first_request(url, args.url, cookie, url) for _ in range(max(1, args.fresh_runs))]
            fresh = sorted(tries, key=lambda t: t["first_ms"])[(len(tries) - 1) // 2]
            if len(tries) > 1:
                fresh = fresh | {"slowest_ms": max(t["first_ms"] for t in tries)}
        if fresh is not None and fresh["status"] != 200:
            print(f"  {name:<26} the fresh process answered {fresh['status']}")
        worst = max(p95, fresh["first_ms"] if fresh else 0)
        met = worst <= TARGET_MS
        if not met:
            missed.append(name)
        fresh_text = f"{fresh['first_ms']:8.1f} ms {fresh['create_ms']:9.0f} ms" if fresh else f"{'-':>11} {'-':>12}"
        slowest = f"  (slowest of {args.fresh_runs}: {fresh['slowest_ms']:.1f} ms)" if fresh and "slowest_ms" in fresh else ""
        print(f"  {name:<26} {statistics.median(times):5.1f} ms {p95:5.1f} ms {fresh_text}  {'met' if met else 'NOT MET'}"
              f"{slowest}", flush=True)
    print(f"every page p95 and fresh first request <= {TARGET_MS} ms: "
          + ("met" if not missed else f"NOT MET ({', '.join(missed)})"))
    if args.no_report:
        return
    start = time.perf_counter()
    report = client.get("/office/area/D3/report.pdf")
    assert report.status_code == 200
    print(f"district report (100 communities): {time.perf_counter() - start:.2f} s, {len(report.data) / 1024:.0f} KiB")

if __name__ == "__main__":
    main()
