"""Time and peak memory of ``flask export responses`` with 1M stored responses on PostgreSQL.

    python -m benchmarks.export_speed [--url postgresql://postgres@127.0.0.1:5432/survey_export]
                                      [--responses 1000000] [--formats csv,sav] [--reuse]

Builds a city of 10 districts x 10 streets x 10 communities and N citizen responses with every
item answered (3 attributes, 4 yes-type, 10 ratings; a comment on one in ten), generated inside
PostgreSQL, then runs ``flask export responses --format F --out FILE`` in a child process for each
format and prints its wall time and peak memory (the child's maxrss from ``wait4``) against the
targets: 1M responses to CSV in <= 60 s and <= 400 MiB, to .sav in <= 120 s.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from benchmarks.db_analysis import ensure_database
from benchmarks.office_pages import empty_city
from survey import create_app, db

TARGETS = {"csv": (60.0, 400.0), "sav": (120.0, None)}

RESPONSES = """
INSERT INTO response (wave_id, questionnaire_version_id, area_id, channel, submission_key, submitted_at, duration_s,
                      attributes, score, scored_items, flag_speeder)
SELECT :wave, :version, first.id + (g::bigint * 7919) % 1000, (ARRAY['qr','qr','school','paper'])[1 + g % 4],
       'bench-' || g, now() - (g % 86400) * interval '1 second', 60 + g % 600,
       jsonb_build_object('sex', CASE WHEN g % 2 = 0 THEN 'M' ELSE 'F' END,
                          'age_band', (ARRAY['18-29','30-44','45-59','60+'])[1 + g % 4],
                          'resident_6m', CASE WHEN g % 9 = 0 THEN 'N' ELSE 'Y' END), 0, 10, g % 50 = 0
FROM generate_series(1, :responses) g, (SELECT min(id) AS id FROM area WHERE level = 'community') first
"""

# One INSERT, ordered by response, so each response's answers sit together on disk as they do when
# the app writes a response and its answers in one transaction.
ITEMS = ", ".join(
    [("('sex', 'sex', 0, 1)"), ("('age_band', 'age', 0, 2)"), ("('resident', 'res', 0, 3)")]
    + [f"('k0{i}', 'k', {i}, {3 + i})" for i in range(1, 5)]
    + [f"('q{i:02d}', 'q', {i}, {7 + i})" for i in range(1, 11)]
    + ["('comment', 'c', 0, 18)"]
)
ANSWERS = [
    f"""INSERT INTO answer (response_id, item_code, choice_code, score, text)
       SELECT r.id, i.code,
              CASE i.kind WHEN 'sex' THEN r.attributes ->> 'sex' WHEN 'age' THEN r.attributes ->> 'age_band'
                          WHEN 'res' THEN r.attributes ->> 'resident_6m'
                          WHEN 'k' THEN (ARRAY['Y','Y','N','U'])[1 + (r.id * i.n) % 4]
                          WHEN 'q' THEN least(5, greatest(1, 3 + ((r.id * 31 + i.n * 17) % 5) / 2))::text END,
              CASE WHEN i.kind = 'q' THEN 20.0 * least(5, greatest(1, 3 + ((r.id * 31 + i.n * 17) % 5) / 2)) END,
              CASE WHEN i.kind = 'c' THEN '楼道灯坏了两周，希望尽快修好（' || r.id || '）' END
       FROM response r CROSS JOIN (VALUES {ITEMS}) AS i(code, kind, n, ord)
       WHERE i.kind <> 'c' OR r.id % 10 = 0
       ORDER BY r.id, i.ord""",
    """UPDATE response r SET score = s.avg FROM (SELECT response_id, avg(score) AS avg FROM answer
       WHERE score IS NOT NULL GROUP BY response_id) s WHERE s.response_id = r.id""",
]


def build(app, responses: int) -> None:
    start = time.perf_counter()
    engine, wave, version = empty_city(app)
    with engine.begin() as conn:
        conn.execute(text(RESPONSES), {"wave": wave, "version": version, "responses": responses})
        for statement in ANSWERS:
            conn.execute(text(statement))
        conn.exec_driver_sql("ANALYZE")
    with engine.connect() as conn:
        answers = conn.execute(text("SELECT count(*) FROM answer")).scalar()
    print(f"generated {responses:,} responses and {answers:,} answers in {time.perf_counter() - start:.0f} s", flush=True)


def run_export(url: str, fmt: str, out: Path) -> tuple[float, float, float, int]:
    """Run ``flask export responses`` in a child process; return (seconds, CPU seconds, peak MiB, file bytes)."""
    env = dict(os.environ, DATABASE_URL=url, FLASK_APP="survey", SECRET_KEY="bench", HOUSEKEEPING_INTERVAL_S="0")
    command = [sys.executable, "-m", "flask", "export", "responses", "--format", fmt, "--out", str(out)]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export to {fmt} failed: {output.decode(errors='replace')}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_export")
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,sav", help="comma-separated: csv, xlsx, sav, dta")
    parser.add_argument("--reuse", action="store_true", help="keep the data of an earlier run")
    args = parser.parse_args()
    ensure_database(args.url)
    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench", "HOUSEKEEPING_INTERVAL_S": 0})
    with app.app_context():
        if not args.reuse:
            build(app, args.responses)
        count = db.session().execute(text("SELECT count(*) FROM response")).scalar()
    app.extensions["db_engine"].dispose()
    scale = 1_000_000 / count
    print(f"{count:,} stored responses; `flask export responses --format F --out FILE` in a child process "
          f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    verdicts = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt in args.formats.split(","):
            seconds, cpu, peak, size = run_export(args.url, fmt, Path(folder) / f"responses.{fmt}")
            print(f"  {fmt:<5} {seconds:7.1f} s (export process CPU {cpu:5.1f} s)   peak {peak:6.0f} MiB   "
                  f"file {size / 2**20:5.0f} MiB", flush=True)
            if fmt in TARGETS:
                limit_s, limit_mib = TARGETS[fmt]
                scaled = seconds * scale
                note = f" (scaled to 1M from {seconds:.1f} s)" if count != 1_000_000 else ""
                verdicts.append((f"1M responses to {fmt}: wall time", f"{scaled:.1f} s{note}", f"<= {limit_s:.0f} s",
                                 scaled <= limit_s))
                if limit_mib is not None:
                    verdicts.append((f"1M responses to {fmt}: peak memory", f"{peak:.0f} MiB", f"<= {limit_mib:.0f} MiB",
                                     peak <= limit_mib))
    print(f"targets (load average now {os.getloadavg()[0]:.1f}):")
    for name, figure, target, met in verdicts:
        print(f"  {name:<32} {figure:<28} target {target:<10} {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
