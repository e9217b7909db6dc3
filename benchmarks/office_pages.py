"""Office page times and the district PDF with 1M stored responses on PostgreSQL.

    python -m benchmarks.office_pages [--url postgresql://postgres@127.0.0.1:5432/survey_pages]
                                      [--responses 1000000] [--requests 30] [--reuse]

Builds a city of 10 districts x 10 streets x 10 communities, 1M responses with ten scored answers
each (generated inside PostgreSQL), runs the stored analysis, then requests each kind of office
page repeatedly through the app (logged in as the city office) and prints p50/p95 per page, and
the time to render a district report of 100 communities.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from sqlalchemy import Engine, text

from benchmarks.db_analysis import ensure_database
from survey import create_app, db

PASSWORD = "Office-2026-strong"

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
       'bench-' || g, now(),
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
    with engine.begin() as conn:
        conn.execute(text(RESPONSES), {"wave": wave, "version": version, "responses": responses})
        conn.execute(text(ANSWERS))
        conn.execute(text(SCORES))
        conn.exec_driver_sql("ANALYZE")
    print(f"generated {responses:,} responses with 10 answers each in {time.perf_counter() - start:.0f} s", flush=True)
    margins = "variable,category,total\nsex,M,{m}\nsex,F,{f}\nage_band,18-29,{a}\nage_band,30-44,{b}\nage_band,45-59,{c}\nage_band,60+,{d}\n"
    with engine.connect() as conn:
        population = conn.execute(text("SELECT sum(adult_population) FROM area WHERE level = 'community'")).scalar()
    quarter = population // 4
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        handle.write(margins.format(m=population // 2, f=population - population // 2, a=quarter, b=quarter, c=quarter,
                                    d=population - 3 * quarter))
    assert runner.invoke(args=["import-margins", handle.name]).exit_code == 0
    start = time.perf_counter()
    result = runner.invoke(args=["analyze"])
    assert result.exit_code == 0, result.output
    print(f"stored analysis in {time.perf_counter() - start:.1f} s: {result.output.strip().splitlines()[-1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_pages")
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    ensure_database(args.url)
    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        if not args.reuse:
            build(app, args.responses)
        count = db.session().execute(text("SELECT count(*) FROM response")).scalar()
        app.test_cli_runner().invoke(args=["create-user", "pages", "--role", "city", "--area", "C", "--password", PASSWORD])
    client = app.test_client()
    assert client.post("/office/login", data={"username": "pages", "password": PASSWORD}).status_code == 302
    pages = {
        "city dashboard": "/office/area/C",
        "district dashboard": "/office/area/D3",
        "street dashboard": "/office/area/D3S4",
        "community page": "/office/community/D3S4C5",
        "city problem list": "/office/area/C/problems",
    }
    print(f"{count:,} stored responses; {args.requests} requests per page after one warm-up")
    for name, url in pages.items():
        assert client.get(url).status_code == 200, url
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            page = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            assert page.status_code == 200
        times.sort()
        p95 = times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)]
        print(f"  {name:<20} p50 {statistics.median(times):7.1f} ms   p95 {p95:7.1f} ms")
    start = time.perf_counter()
    report = client.get("/office/area/D3/report.pdf")
    assert report.status_code == 200
    print(f"district report (100 communities): {time.perf_counter() - start:.2f} s, {len(report.data) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
