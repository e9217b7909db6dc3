"""Load benchmark: the app against the bare-Flask ceiling, same gunicorn settings, same client.

    python -m benchmarks.load --seconds 20 --concurrency 32 [--rounds 3] [--json]

Each virtual phone loops: GET a community's questionnaire, read the one-time key, POST a
complete answer, check for the thank-you page. The client runs in its own process. One run
measures, in turn, a bare Flask hello-world (a GET of a 20 kB page and a POST) and the survey app
on PostgreSQL, ``--rounds`` times each, alternating, so both see the same machine; it prints each
round, each round's ratio (its app against the ceiling measured just before), and the median
round against the target (>= 0.45 of the ceiling with p99 <= 250 ms at 32 concurrent phones,
acked = stored). The ratio of the best round of each is printed too; on a machine whose speed
drifts between rounds it pairs figures from different moments. Rates and latencies cover the timed
window after a few seconds of warm-up; acked counts every thank-you page, warm-up included, and
stored counts the rows in the database afterwards. ``--hello`` or ``--app-only`` measure one side.

The app runs without its rate limits (every phone comes from 127.0.0.1) and without its background
analysis. ``--limits [REDIS_URL]`` measures it as deployed behind nginx instead: limits on, counted
in Redis (keys under a prefix of the run's own, which expire within the hour), each phone with an
address of its own in X-Forwarded-For and TRUSTED_PROXIES=1.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlalchemy import create_engine, text

from benchmarks.db_analysis import ensure_database

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/survey_load"
FIELDS = re.compile(r'name="(submission_key)"[^>]*value="([^"]+)"')
TARGET_RATIO, TARGET_P99_MS = 0.45, 250.0
ROOT = Path(__file__).resolve().parents[1]
HELLO_APP = """
from flask import Flask, request
app = Flask(__name__)
FORM = '<form method=post><input type=hidden name="submission_key" value="k">' + 'x' * 20000 + '</form>'
@app.route('/s/<token>', methods=['GET', 'POST'])
def hello(token):
    return FORM if request.method == 'GET' else '<h1>提交成功</h1>'
"""


def answers(rng: random.Random) -> dict[str, str]:
    out = {"sex": rng.choice("MF"), "age_band": rng.choice(["18-29", "30-44", "45-59", "60+"]), "resident": "Y"}
    out |= {f"k0{i}": rng.choice("YNU") for i in range(1, 5)}
    out |= {f"q{i:02d}": rng.choice("123450") for i in range(1, 11)}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_client(base: str, tokens: list[str], seconds: float, concurrency: int, warmup: float = 3.0) -> dict:
    """Run the phones for ``warmup`` + ``seconds``; return counts and latencies of the latter.

    The warm-up lets every worker finish booting and fill its caches before timing starts.
    """
    host = urlsplit(base)
    latencies: list[float] = []
    post_latencies: list[float] = []
    get_latencies: list[float] = []
    counts = {"acked": 0, "errors": 0, "acked_all": 0}
    lock = threading.Lock()
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds

    def phone(seed: int) -> None:
        # Each submission is a new visitor: a new connection for its GET and POST, closed by
        # the client afterwards (as a phone would), so that connections spread over the workers.
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            token = rng.choice(tokens)
            start = time.perf_counter()
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
            try:
                # Each phone its own address (X-Forwarded-For, read by the app only with --limits,
                # as behind nginx): per-address limits then count as they would for residents.
                address = {"X-Forwarded-For": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"}
                conn.request("GET", f"/s/{token}", headers=address)
                reply = conn.getresponse()
                html = reply.read().decode()
                cookie = "; ".join(c.split(";")[0] for c in reply.headers.get_all("Set-Cookie") or [])
                fields = dict(FIELDS.findall(html))
                body = urlencode(fields | answers(rng))
                posted = time.perf_counter()
                conn.request("POST", f"/s/{token}", body=body, headers=address | {
                    "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
                reply = conn.getresponse()
                page = reply.read().decode()
                done = time.perf_counter()
                ok = reply.status == 200 and "提交成功" in page
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                conn.close()
            with lock:
                counts["acked_all"] += ok
            if start < measure_from:
                continue
            with lock:
                if ok:
                    counts["acked"] += 1
                    latencies.append(done - start)
                    post_latencies.append(done - posted)
                    get_latencies.append(posted - start)
                else:
                    counts["errors"] += 1

    threads = [threading.Thread(target=phone, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - measure_from

    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    return {
        "seconds": round(elapsed, 2),
        "concurrency": concurrency,
        "submissions_per_s": round(counts["acked"] / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "get_p99_ms": round(pct(get_latencies, 0.99), 1),
        "post_p99_ms": round(pct(post_latencies, 0.99), 1),
        "errors": counts["errors"],
        "measured": counts["acked"],
        "acked": counts["acked_all"],
    }


def prepare(url: str) -> list[str]:
    """Give the benchmark database a fresh schema, a small city, an open wave and links."""
    ensure_database(url)
    env = os.environ | {"DATABASE_URL": url, "FLASK_APP": "survey"}
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    flask = [sys.executable, "-m", "flask"]
    areas = "code,name,level,parent_code,adult_population\nC,压测市,city,,\nD,一区,district,C,\nS,一街道,street,D,\n"
    areas += "".join(f"A{i},社区{i},community,S,5000\n" for i in range(20))
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        handle.write(areas)
    for args in (["init-db"], ["import-areas", handle.name],
                 ["create-wave", "压测", "--opens", "2020-01-01", "--closes", "2099-01-01"], ["make-links"]):
        subprocess.run(flask + args, env=env, check=True, capture_output=True, cwd=ROOT)
    with engine.connect() as conn:
        tokens = [row[0] for row in conn.execute(text("SELECT token FROM link"))]
    engine.dispose()
    return tokens


def serve(app_spec: str, env: dict, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """Start gunicorn and wait until every worker answers; with threads > 1 gthread workers, else
    sync workers (no keep-alive, so the kernel spreads connections over the workers)."""
    port = free_port()
    worker = ["--threads", str(threads), "--worker-class", "gthread"] if threads > 1 else ["--worker-class", "sync"]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *worker,
         "--log-level", "warning", app_spec],
        env=env, cwd=ROOT, start_new_session=True,
    )
    deadline = time.time() + 120
    answered = 0
    while time.time() < deadline and answered < 4 * workers:
        try:
            # The master listens before its workers have imported the app: wait for answers.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/s/warm-up-token")
            conn.getresponse().read()
            conn.close()
            answered += 1
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    if answered < 4 * workers:
        process.kill()
        raise RuntimeError("gunicorn did not start")
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def count_stored(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM response")).scalar()
    engine.dispose()
    return int(stored)


def client_process(base: str, tokens: list[str], seconds: float, concurrency: int, server: subprocess.Popen | None = None,
                   database: str | None = None) -> dict:
    """Run the client in its own process (as the issue asks) and return its figures.

    With the ``server`` (gunicorn, its own process group) and the ``database`` name, the figures
    also say where the CPU went per acknowledged submission (GET + POST): the app server's
    processes, the PostgreSQL backends serving that database, and the client itself.
    """
    code = (
        "import json, resource, sys; from benchmarks.load import run_client; "
        "a = json.loads(sys.argv[1]); f = run_client(a['base'], a['tokens'], a['seconds'], a['concurrency']); "
        "u = resource.getrusage(resource.RUSAGE_SELF); f['client_cpu_s'] = u.ru_utime + u.ru_stime; print(json.dumps(f))"
    )
    args = json.dumps({"base": base, "tokens": tokens, "seconds": seconds, "concurrency": concurrency})
    before = cpu_seconds(server, database)
    out = subprocess.run([sys.executable, "-c", code, args], cwd=ROOT, check=True, capture_output=True, text=True)
    after = cpu_seconds(server, database)
    figures = json.loads(out.stdout)
    client_cpu = figures.pop("client_cpu_s")
    if before is not None and after is not None and figures["acked"]:
        per = 1000 / figures["acked"]
        figures["cpu_ms_per_submission"] = {
            "server": round((after[0] - before[0]) * per, 2),
            "database": round((after[1] - before[1]) * per, 2) if database else None,
            "client": round(client_cpu * per, 2),
        }
    return figures


def cpu_seconds(server: subprocess.Popen | None, database: str | None) -> tuple[float, float] | None:
    """Return the CPU seconds used so far by the server's process group and the database's backends (Linux /proc)."""
    if server is None or not Path("/proc/self/stat").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    server_s = database_s = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        used = (int(fields[11]) + int(fields[12])) / tick
        if int(fields[2]) == server.pid:  # gunicorn runs in its own session: the process group is its pid
            server_s += used
        elif database and command.startswith("postgres: ") and f" {database} " in command:
            database_s += used
    return server_s, database_s


def measure_hello(args) -> dict:
    """Run the client against a bare Flask hello-world under the same gunicorn settings."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "hello_app.py").write_text(HELLO_APP, encoding="utf-8")
        env = os.environ | {"PYTHONPATH": folder}
        process, base = serve("hello_app:app", env, args.workers, args.threads)
        try:
            return client_process(base, ["t"], args.seconds, args.concurrency, process) | {"app": "hello-world"}
        finally:
            stop(process)


def measure_app(args, tokens: list[str]) -> dict:
    """Run the client against the survey app; count what the database stored during the run."""
    before = count_stored(args.url)
    # The background analysis (survey/refresh.py) is off: each gunicorn start would otherwise refresh the
    # growing wave and render its PDFs inside the measured window, a cost that refresh_speed measures and
    # that a city setup runs in its own `flask worker` process (REDIS_URL), not per resident. WARM_UP=1
    # prepares each worker as deploy/gunicorn.conf.py does (warm-up, then the start-up heap frozen).
    env = os.environ | {"DATABASE_URL": args.url, "RATELIMIT_ENABLED": "0", "SECRET_KEY": "load-benchmark",
                        "HOUSEKEEPING_INTERVAL_S": "0", "REFRESH_INTERVAL_S": "0", "WARM_UP": "1"}
    if args.limits:
        # As deployed behind nginx: limits on, counted in Redis, the address taken from X-Forwarded-For.
        env |= {"RATELIMIT_ENABLED": "1", "RATELIMIT_STORAGE_URI": args.limits, "TRUSTED_PROXIES": "1",
                "RATELIMIT_KEY_PREFIX": f"load-benchmark-{os.getpid()}"}
    process, base = serve("survey:create_app()", env, args.workers, args.threads)
    try:
        figures = client_process(base, tokens, args.seconds, args.concurrency, process, urlsplit(args.url).path.lstrip("/"))
    finally:
        stop(process)
    return figures | {"stored": count_stored(args.url) - before, "app": "survey"}


def summarise(ceiling: list[dict], app: list[dict], concurrency: int) -> tuple[dict, dict, dict]:
    """Return the run's summary and the median round's ceiling and app figures."""
    # Each round's app against the ceiling measured just before it: the machine's own speed drifts
    # (seen here: the ceiling at 584 and 775/s in one run), so a round's two figures are compared
    # with each other, and the median round is reported. The best of each, from different
    # moments, is printed beside it.
    round_ratios = [a["submissions_per_s"] / c["submissions_per_s"] for c, a in zip(ceiling, app)]
    median = sorted(range(len(app)), key=lambda i: round_ratios[i])[(len(app) - 1) // 2]  # the lower one of two
    best_ceiling, best_app = ceiling[median], app[median]
    ratio = round_ratios[median]
    best_of_each = max(f["submissions_per_s"] for f in app) / max(f["submissions_per_s"] for f in ceiling)
    summary = {
        "app_submissions_per_s": best_app["submissions_per_s"], "app_p50_ms": best_app["p50_ms"],
        "app_p99_ms": best_app["p99_ms"], "ceiling_submissions_per_s": best_ceiling["submissions_per_s"],
        "ratio": round(ratio, 3), "round_ratios": [round(r, 3) for r in round_ratios],
        "ratio_best_of_each": round(best_of_each, 3),
        "acked": sum(f["acked"] for f in app), "stored": sum(f["stored"] for f in app),
        "errors": sum(f["errors"] for f in app), "concurrency": concurrency,
        "meets_target": ratio >= TARGET_RATIO and best_app["p99_ms"] <= TARGET_P99_MS
        and sum(f["acked"] for f in app) == sum(f["stored"] for f in app),
    }
    return summary, best_ceiling, best_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ceiling and app")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--hello", action="store_true", help="measure only the bare Flask hello-world")
    parser.add_argument("--app-only", action="store_true", help="measure only the survey app")
    parser.add_argument("--json", action="store_true", help="print only the summary JSON object")
    parser.add_argument("--limits", nargs="?", const="redis://127.0.0.1:6379", default=None, metavar="REDIS_URL",
                        help="run the app with its rate limits on, counted in this Redis (each phone its own address)")
    args = parser.parse_args()
    say = (lambda *_: None) if args.json else print
    if args.hello:
        print(json.dumps(measure_hello(args)))
        return
    tokens = prepare(args.url)
    if args.app_only:
        print(json.dumps(measure_app(args, tokens)))
        return
    ceiling, app = [], []
    for round_ in range(1, args.rounds + 1):
        ceiling.append(measure_hello(args))
        say(f"round {round_} ceiling: {json.dumps(ceiling[-1])}")
        app.append(measure_app(args, tokens))
        say(f"round {round_} app:     {json.dumps(app[-1])}")
    summary, best_ceiling, best_app = summarise(ceiling, app, args.concurrency)
    app_cpu, ceiling_cpu = best_app.get("cpu_ms_per_submission"), best_ceiling.get("cpu_ms_per_submission")
    if app_cpu and ceiling_cpu:
        summary["cpu_ms_per_submission"] = {"app": app_cpu, "ceiling": ceiling_cpu}
        say(f"CPU per submission (GET + POST), 2 cores = {2000 / best_ceiling['submissions_per_s']:.2f} ms of machine time "
            f"per ceiling submission: app server {app_cpu['server']} ms vs bare Flask {ceiling_cpu['server']} ms, "
            f"PostgreSQL {app_cpu['database']} ms, client {app_cpu['client']} ms vs {ceiling_cpu['client']} ms")
    say(f"median round: app {summary['app_submissions_per_s']}/s (p99 {summary['app_p99_ms']} ms) vs ceiling "
        f"{summary['ceiling_submissions_per_s']}/s: ratio {summary['ratio']} (target >= {TARGET_RATIO}, "
        f"p99 <= {TARGET_P99_MS:.0f} ms); rounds {summary['round_ratios']}, best of each {summary['ratio_best_of_each']}; "
        f"acked {summary['acked']} {'=' if summary['acked'] == summary['stored'] else '!='} stored {summary['stored']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
