"""Refresh cost with incremental aggregation: a full rebuild, a refresh after 10,000 new responses, one with nothing new.

    python -m benchmarks.refresh_speed [--url postgresql://postgres@127.0.0.1:5432/survey_incr]
                                       [--responses 1000000] [--new 10000] [--reuse]

Builds (unless ``--reuse``) the city of ``benchmarks/office_pages.py`` (1,000 communities) with
1M responses x 10 answers generated inside PostgreSQL, with durations and device ids so the
data-quality flags have work to do; imports sex x age band margins. Then times

* the baseline: reading the wave's data once (its responses, and their answers, one scan each), before
  and after the refreshes; every figure is also printed as a multiple of it (the machine may be shared:
  absolute seconds do not travel, ratios to the baseline of the same run do);
* a full rebuild: ``refresh(full=True)``, i.e. ``flask analyze --full`` (all responses aggregated
  into the stored statistics, then raking, SEs, storing the run);
* ``--new`` more responses (generated the same way, not timed as part of the refresh);
* a refresh: the flags marked again, the new responses added to the statistics, the analysis;
* a refresh with nothing new: it must store nothing (no run, no result row) and move the newest run's
  data time (数据截至).

Each refresh is printed split into its steps (flags, aggregation, counting the wave's responses per area,
reading the statistics back, raking and SEs with the analysis's own parts, storing) and with the CPU
seconds of this Python process (on a loaded machine the wall time is mostly waiting), with the targets
of issue 28: nothing new <= 0.3 s, after 10,000 new responses <= 1.5 s, full rebuild <= 15 s.
"""
from __future__ import annotations

import argparse
import os
import time

from sqlalchemy import func, select, text

from benchmarks.db_analysis import ensure_database
from benchmarks.office_pages import empty_city
from survey import create_app, db
from survey.models import AnalysisRun, Response, Wave

# As office_pages.RESPONSES, with a duration (150-600 s; one in 50 is 130 s shorter, a speeder) and a device id (every
# 33rd response comes from the device of the one before: a repeat). ``:first`` numbers the responses, so a second call adds more.
RESPONSES = """
INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at,
                      duration_s, device_id, attributes, score, scored_items)
SELECT :wave, :version, first.id + (g::bigint * 7919) % 1000, (ARRAY['qr','qr','school','paper'])[1 + g % 4],
       'bench-' || g, now() + g * interval '1 millisecond', 150 + (g * 7919) % 450 - 130 * (g % 50 = 0)::int,
       'dev-' || CASE WHEN g % 33 = 0 THEN g - 1 ELSE g END,
       jsonb_build_object('sex', CASE WHEN random() < 0.5 THEN 'M' ELSE 'F' END,
                          'age_band', (ARRAY['18-29','30-44','45-59','60+'])[1 + floor(random() * 4)::int]), 0, 10
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g, (SELECT min(id) AS id FROM area WHERE level = 'community') first
"""

ANSWERS = """
INSERT INTO answer (response_id, item_code, choice_code, score)
SELECT r.id, 'q' || lpad(i::text, 2, '0'), v.code, v.score
FROM response r CROSS JOIN generate_series(1, 10) i
CROSS JOIN LATERAL (SELECT least(5, greatest(1, 3 + floor(random() * 2.2 + (r.area_id % 7) / 6.0)::int)) AS k) k
CROSS JOIN LATERAL (SELECT k.k::text AS code, 20.0 * k.k AS score) v
WHERE r.id > :after
"""

SCORES = """
UPDATE response r SET score = s.avg
FROM (SELECT response_id, avg(score) AS avg FROM answer WHERE response_id > :after GROUP BY response_id) s
WHERE s.response_id = r.id
"""


def add_responses(engine, wave: int, version: int, first: int, last: int) -> None:
    """Generate responses numbered first..last with their answers and scores, in one transaction."""
    with engine.begin() as conn:
        after = conn.execute(text("SELECT coalesce(max(id), 0) FROM response")).scalar()
        conn.execute(text(RESPONSES), {"wave": wave, "version": version, "first": first, "last": last})
        conn.execute(text(ANSWERS), {"after": after})
        conn.execute(text(SCORES), {"after": after})


def build(app, responses: int) -> None:
    runner = app.test_cli_runner()
    start = time.perf_counter()
    engine, wave, version = empty_city(app)
    add_responses(engine, wave, version, 1, responses)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
        population = conn.execute(text("SELECT sum(adult_population) FROM area WHERE level = 'community'")).scalar()
    print(f"generated {responses:,} responses with 10 answers each in {time.perf_counter() - start:.0f} s", flush=True)
    quarter = population // 4
    margins = (f"variable,category,total\nsex,M,{population // 2}\nsex,F,{population - population // 2}\n"
               f"age_band,18-29,{quarter}\nage_band,30-44,{quarter}\nage_band,45-59,{quarter}\n"
               f"age_band,60+,{population - 3 * quarter}\n")
    path = os.path.join(app.instance_path, "bench-margins.csv")
    os.makedirs(app.instance_path, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(margins)
    assert runner.invoke(args=["import-margins", path]).exit_code == 0


def ids(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT w.id, v.id FROM wave w, questionnaire_version v JOIN questionnaire q ON q.id = v.questionnaire_id "
            "WHERE q.code = 'citizen'")).one()


STEPS = {"flags:": "flags", "aggregated": "aggregation", "counted": "counting per area", "read": "reading back",
         "raked": "raking and SEs", "stored": "storing", "nothing": "nothing new"}


def read_once(engine, wave_id: int) -> float:
    """Return the seconds of reading the wave's data once: its responses, then their answers (one scan each)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SET jit = off")
        start = time.perf_counter()
        conn.execute(text("SELECT count(*), sum(score), sum(duration_s) FROM response WHERE wave_id = :w"), {"w": wave_id})
        conn.execute(text("SELECT count(*), sum(a.score) FROM answer a WHERE a.response_id IN "
                          "(SELECT id FROM response WHERE wave_id = :w)"), {"w": wave_id})
        return time.perf_counter() - start


def stored_rows(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT (SELECT count(*) FROM analysis_run), (SELECT count(*) FROM area_result), "
                                       "(SELECT count(*) FROM item_result)")).one())


DERIVED = "aggregate_state, aggregate_cell, aggregate_score, aggregate_choice, aggregate_flagged"


def vacuum_derived(engine) -> bool:
    """Without autovacuum (a server set up for tests), vacuum the stored statistics' tables as it would have:
    a full build turns all their rows over, far beyond its thresholds. The responses and answers are left
    as they are (autovacuum waits for a fifth of them to change). Return whether it was needed."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if conn.exec_driver_sql("SHOW autovacuum").scalar() == "on":
            return False
        conn.exec_driver_sql(f"VACUUM ANALYZE {DERIVED}")
    return True


def timed_refresh(wave_id: int, full: bool) -> tuple[float, dict[str, float], dict]:
    """Run one refresh; return its seconds, the seconds of its steps and the run's aggregation summary."""
    from survey.refresh import refresh

    if vacuum_derived(db.engine()):
        print(f"    (autovacuum is off on this server: vacuumed {DERIVED} first, as it would have)", flush=True)
    marks = [("start", time.perf_counter())]
    start, cpu = marks[0][1], time.process_time()
    outcome = refresh(wave_id, force=True, wait=True, full=full, progress=lambda m: marks.append((m, time.perf_counter())))
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu  # this process only (not the database's): says how loaded the machine was
    steps = {}
    for (_, before), (message, after) in zip(marks, marks[1:], strict=False):
        name = next((label for key, label in STEPS.items() if message.startswith(key)), message)
        steps[name] = after - before
    steps["summary, terms, commit"] = time.perf_counter() - marks[-1][1]
    session = db.session()
    run = session.get(AnalysisRun, outcome.run_id)
    summary = {"state": outcome.state, "run": outcome.run_id, "data_as_of": run.summary["data_as_of"],
               **run.summary["aggregation"], "respondents": run.respondents, "python_cpu_s": round(cpu, 2),
               "analysis": {k: round(v, 2) for k, v in (run.summary.get("timings") or {}).items()}}
    session.rollback()
    return total, steps, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_incr")
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    ensure_database(args.url)
    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench", "REFRESH_INTERVAL_S": 0,
                      "REFRESH_PRERENDER": ""})
    with app.app_context():
        if not args.reuse:
            build(app, args.responses)
        engine = db.engine()
        session = db.session()
        wave_id = session.scalar(select(Wave.id))
        responses = session.scalar(select(func.count()).select_from(Response))
        answers = session.execute(text("SELECT count(*) FROM answer")).scalar()
        session.rollback()  # an open transaction would (rightly) keep the watermark back
        print(f"{responses:,} responses, {answers:,} answers", flush=True)
        read_once(engine, wave_id)  # into the cache, as the refreshes find it
        baseline = read_once(engine, wave_id)
        print(f"baseline: reading the wave's data once (responses, then their answers) {baseline:.2f} s", flush=True)

        def show(label: str, total: float, steps: dict, summary: dict, target: float) -> None:
            parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items())
            verdict = "meets" if total <= target else "MISSES"
            print(f"{label}: {total:.2f} s = {total / baseline:.2f} x the baseline ({verdict} the target of {target:g} s)"
                  f"\n    {parts}\n    {summary}", flush=True)

        show("full rebuild (flask analyze --full)", *timed_refresh(wave_id, full=True), target=15)
        wave, version = ids(engine)
        start = time.perf_counter()
        add_responses(engine, wave, version, responses + 1, responses + args.new)
        print(f"added {args.new:,} responses with their answers in {time.perf_counter() - start:.1f} s (not timed below)",
              flush=True)
        show(f"refresh after {args.new:,} new responses", *timed_refresh(wave_id, full=False), target=1.5)
        stored = stored_rows(engine)
        total, steps, summary = timed_refresh(wave_id, full=False)
        show("refresh with nothing new", total, steps, summary, target=0.3)
        after = stored_rows(engine)
        print(f"    stored by it: {after[0] - stored[0]} runs, {after[1] - stored[1]} area rows, "
              f"{after[2] - stored[2]} item rows; state {summary['state']}, data time {summary['data_as_of']}", flush=True)
        again = read_once(engine, wave_id)
        print(f"baseline again after the refreshes: {again:.2f} s (the machine's noise: compare with {baseline:.2f} s)")


if __name__ == "__main__":
    main()
