"""Crash test: kill -9 the app server mid-run, and restart PostgreSQL mid-run.

    python -m benchmarks.crash [--seconds 20] [--concurrency 16]

Phones submit through gunicorn on PostgreSQL; each answer carries a unique marker in its free
text. Phones do what people do when a page fails: tap "submit" again (the same form, so the same
one-time key) until they see the thank-you page. Afterwards every acknowledged marker must be in
the database exactly once, and no marker twice. Prints one JSON object per scenario.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlencode, urlsplit

from sqlalchemy import create_engine, text

from benchmarks.load import DEFAULT_URL, FIELDS, answers, prepare, serve, stop

PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect"]


def postgres_restart() -> float:
    """Restart the local PostgreSQL cluster; return seconds it took."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    start = time.perf_counter()
    subprocess.run([*PG_CLUSTER, version, "main", "restart"], check=True, capture_output=True)
    return time.perf_counter() - start


def run(base_holder: dict, tokens: list[str], seconds: float, concurrency: int, disrupt) -> dict:
    acked: list[str] = []
    retries = Counter()
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def request(method: str, path: str, body: str | None = None, cookie: str = "") -> tuple[int, str, list[str]]:
        host = urlsplit(base_holder["base"])
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=15)
        try:
            headers = {"Cookie": cookie}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.read().decode(), reply.headers.get_all("Set-Cookie") or []
        finally:
            conn.close()

    def phone(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            token = rng.choice(tokens)
            try:
                status, html, cookies = request("GET", f"/s/{token}")
            except (OSError, http.client.HTTPException):
                with lock:
                    retries["get"] += 1
                time.sleep(0.2)
                continue
            if status != 200:
                time.sleep(0.2)
                continue
            marker = uuid.uuid4().hex
            cookie = "; ".join(c.split(";")[0] for c in cookies)
            body = urlencode(dict(FIELDS.findall(html)) | answers(rng) | {"comment": f"marker {marker}"})
            deadline = time.perf_counter() + seconds + 60  # keep tapping until it works
            while time.perf_counter() < deadline:
                try:
                    status, page, _ = request("POST", f"/s/{token}", body, cookie)
                    if status == 200 and "提交成功" in page:
                        with lock:
                            acked.append(marker)
                        break
                    with lock:
                        retries[f"post_{status}"] += 1
                except (OSError, http.client.HTTPException):
                    with lock:
                        retries["post_connection"] += 1
                time.sleep(0.25)

    threads = [threading.Thread(target=phone, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(seconds / 3)
    event = disrupt()
    for t in threads:
        t.join()
    return {"acked": acked, "retries": dict(retries), "event": event}


def check(url: str, acked: list[str]) -> dict:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        texts = [row[0] for row in conn.execute(text("SELECT text FROM answer WHERE item_code = 'comment'"))]
        stored = conn.execute(text("SELECT count(*) FROM response")).scalar()
    engine.dispose()
    markers = Counter(re.sub(r"^marker ", "", t) for t in texts)
    return {
        "acked": len(acked),
        "stored": int(stored),
        "acked_missing": sum(1 for m in acked if markers[m] == 0),
        "stored_twice": sum(1 for count in markers.values() if count > 1),
        "stored_not_acked": sum(1 for m in markers if m not in set(acked)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    env = os.environ | {"DATABASE_URL": args.url, "RATELIMIT_ENABLED": "0", "SECRET_KEY": "crash-benchmark"}

    # 1. kill -9 the whole app server, start a new one on another port, phones follow it.
    tokens = prepare(args.url)
    process, base = serve("survey:create_app()", env, 2, 8)
    holder = {"base": base}

    def kill_server():
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        down = time.perf_counter()
        new_process, new_base = serve("survey:create_app()", env, 2, 8)
        holder["base"], holder["process"] = new_base, new_process
        return {"killed": "gunicorn master and workers (SIGKILL)", "restart_s": round(time.perf_counter() - down, 2)}

    outcome = run(holder, tokens, args.seconds, args.concurrency, kill_server)
    stop(holder["process"])
    print(json.dumps({"scenario": "kill -9 app server"} | check(args.url, outcome["acked"])
                     | {"retries": outcome["retries"], "event": outcome["event"]}), flush=True)

    # 2. restart PostgreSQL under load.
    tokens = prepare(args.url)
    process, base = serve("survey:create_app()", env, 2, 8)
    holder = {"base": base}
    outcome = run(holder, tokens, args.seconds, args.concurrency, lambda: {"postgres_restart_s": round(postgres_restart(), 2)})
    stop(process)
    print(json.dumps({"scenario": "restart PostgreSQL"} | check(args.url, outcome["acked"])
                     | {"retries": outcome["retries"], "event": outcome["event"]}), flush=True)


if __name__ == "__main__":
    main()
