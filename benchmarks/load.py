"""Load benchmark: gunicorn serves the app on PostgreSQL; a client process does what phones do.

    python -m benchmarks.load --seconds 20 --concurrency 32 --json [--hello]

Each virtual phone loops: GET a community's questionnaire, read the CSRF token and the one-time
key, POST a complete answer, check for the thank-you page. Prints one JSON object with
submissions_per_s, p50_ms and p99_ms (of a whole submission, GET + POST), errors, acked (thank-you
pages received, warm-up included) and stored (rows counted in the database afterwards); rates and
latencies cover the timed window after a few seconds of warm-up. ``--hello`` runs the same
client against a bare Flask hello-world (GET + POST) as the ceiling of this machine.
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
FIELDS = re.compile(r'name="(csrf_token|submission_key)"[^>]*value="([^"]+)"')
ROOT = Path(__file__).resolve().parents[1]
HELLO_APP = """
from flask import Flask, request
app = Flask(__name__)
FORM = '<form method=post><input type=hidden name="csrf_token" value="x"><input type=hidden name="submission_key" value="k">' + 'x' * 20000 + '</form>'
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
                conn.request("GET", f"/s/{token}")
                reply = conn.getresponse()
                html = reply.read().decode()
                cookie = "; ".join(c.split(";")[0] for c in reply.headers.get_all("Set-Cookie") or [])
                fields = dict(FIELDS.findall(html))
                body = urlencode(fields | answers(rng))
                posted = time.perf_counter()
                conn.request("POST", f"/s/{token}", body=body, headers={
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
    """Start gunicorn; with threads > 1 gthread workers, else sync workers (no keep-alive, so
    the kernel spreads connections over the workers)."""
    port = free_port()
    worker = ["--threads", str(threads), "--worker-class", "gthread"] if threads > 1 else ["--worker-class", "sync"]
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *worker,
         "--log-level", "warning", app_spec],
        env=env, cwd=ROOT, start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not start")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def count_stored(url: str) -> int:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM response")).scalar()
    engine.dispose()
    return int(stored)


def client_process(base: str, tokens: list[str], seconds: float, concurrency: int) -> dict:
    """Run the client in its own process (as the issue asks) and return its figures."""
    code = (
        "import json, sys; from benchmarks.load import run_client; "
        "a = json.loads(sys.argv[1]); print(json.dumps(run_client(a['base'], a['tokens'], a['seconds'], a['concurrency'])))"
    )
    args = json.dumps({"base": base, "tokens": tokens, "seconds": seconds, "concurrency": concurrency})
    out = subprocess.run([sys.executable, "-c", code, args], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--hello", action="store_true", help="measure a bare Flask hello-world instead")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()
    if args.hello:
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "hello_app.py").write_text(HELLO_APP, encoding="utf-8")
            env = os.environ | {"PYTHONPATH": folder}
            process, base = serve("hello_app:app", env, args.workers, args.threads)
            try:
                figures = client_process(base, ["t"], args.seconds, args.concurrency) | {"app": "hello-world"}
            finally:
                stop(process)
        print(json.dumps(figures))
        return
    tokens = prepare(args.url)
    env = os.environ | {"DATABASE_URL": args.url, "RATELIMIT_ENABLED": "0", "SECRET_KEY": "load-benchmark"}
    process, base = serve("survey:create_app()", env, args.workers, args.threads)
    try:
        figures = client_process(base, tokens, args.seconds, args.concurrency)
    finally:
        stop(process)
    figures["stored"] = count_stored(args.url)
    figures["app"] = "survey"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
