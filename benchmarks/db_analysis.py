"""The analysis from the database: one GROUP BY in PostgreSQL, then raking and every community's SE.

    python -m benchmarks.db_analysis [--url postgresql://postgres@127.0.0.1:5432/survey_bench]
                                     [--responses 1000000] [--communities 1000]

Creates (or reuses) the benchmark database, fills it with synthetic responses generated inside
PostgreSQL, then times: the aggregation query, the analysis of its cells, and both together.
"""
from __future__ import annotations

import argparse
import resource
import time

import pandas as pd
from sqlalchemy import create_engine, text

from analysis.pipeline import analyze_aggregates
from analysis.raking import restrict_margins
from survey import create_app, db
from survey.plans import plan_for, questionnaire_definitions, score_cells
from survey.results import margins_frame

AREAS_SQL = """
INSERT INTO area (code, name, level, parent_id, adult_population, path)
SELECT 'B' || lpad(g::text, 4, '0'), '社区' || g, 'community', NULL, 3000 + (g * 7919) % 9000, '/'
FROM generate_series(1, :communities) AS g
"""

RESPONSES_SQL = """
INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at,
                      attributes, score, scored_items)
SELECT :wave, :version, a.id, 'qr', 'bench-' || g, now(),
       jsonb_build_object('sex', CASE WHEN random() < 0.5 THEN 'M' ELSE 'F' END,
                          'age_band', (ARRAY['18-29','30-44','45-59','60+'])[1 + floor(random() * 4)::int]),
       least(100, greatest(20, 60 + (a.id % 30) + 20 * random())), 10
FROM generate_series(1, :responses) AS g
JOIN area a ON a.id = (SELECT min(id) FROM area) + (g * 7) % :communities
"""


def ensure_database(url: str) -> None:
    server = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    engine = create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_bench")
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--communities", type=int, default=1000)
    args = parser.parse_args()
    ensure_database(args.url)
    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench"})
    runner = app.test_cli_runner()
    with app.app_context():
        engine = db.engine()
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        assert runner.invoke(args=["init-db"]).exit_code == 0
        assert runner.invoke(args=["create-wave", "bench", "--opens", "2020-01-01", "--closes", "2030-01-01"]).exit_code == 0
        start = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(AREAS_SQL), {"communities": args.communities})
            wave, version = conn.execute(text("SELECT w.id, v.id FROM wave w, questionnaire_version v JOIN questionnaire q ON q.id = v.questionnaire_id WHERE q.code = 'citizen'")).one()
            conn.execute(text(RESPONSES_SQL), {"wave": wave, "version": version, "responses": args.responses, "communities": args.communities})
            conn.execute(text("ANALYZE response"))
        print(f"generated {args.responses:,} responses in {args.communities} communities in {time.perf_counter() - start:.1f} s")
        session = db.session()
        margins = margins_frame(session)
        total = margins["total"].sum()
        margins = pd.concat([margins, pd.DataFrame({"variable": ["sex", "sex"], "category": ["M", "F"], "total": [total * 0.49, total * 0.51]}),
                             pd.DataFrame({"variable": "age_band", "category": ["18-29", "30-44", "45-59", "60+"], "total": [total * 0.2, total * 0.28, total * 0.29, total * 0.23]})])
        plan = plan_for(questionnaire_definitions(session, "citizen"), "citizen", margins["variable"])  # sex, age band
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            cells = score_cells(session, wave, [version], plan=plan)
            aggregated = time.perf_counter()
            restricted, _ = restrict_margins(margins, "community", set(cells["community"]))
            result = analyze_aggregates(cells, restricted, by="community", simulations=2000)
            done = time.perf_counter()
            session.rollback()
            timings.append((aggregated - start, done - aggregated, done - start))
        best = min(timings, key=lambda t: t[2])
        print(f"{int(cells['n'].sum()):,} responses -> {len(cells):,} cells; {len(result.domains)} communities with SEs")
        print(f"GROUP BY {best[0]:.2f} s, analysis {best[1]:.2f} s, total {best[2]:.2f} s (best of 3); "
              f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
