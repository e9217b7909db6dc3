"""Two app servers behind nginx, sharing one PostgreSQL database and Redis: keys, limits, kill -9.

    python -m benchmarks.two_servers [--url postgresql://postgres@127.0.0.1:5432/two_servers]
        [--keys 300] [--seconds 30] [--concurrency 16] [--workers 2] [--threads 4]

Runs the documented production setup on this machine: two gunicorn instances of
``survey:create_app()`` with deploy/gunicorn.conf.py and ``TRUSTED_PROXIES=1``, behind nginx with
the shipped site deploy/nginx/survey.conf (round-robin upstream), sharing the database, the secret
key and the rate-limit counts in Redis (a key prefix of this run's own, deleted afterwards).
Residents are told apart by their address: each client connects from its own loopback address
(127.x.y.z), which nginx puts into X-Forwarded-For. Prints one JSON object per part:

a. ``same_key``: each of ``--keys`` forms (one-time keys) is submitted four times at once, twice
   straight to each app server; every key must be stored exactly once and thanked once as new.
b. ``limits``: staff logins from one address through nginx (10 a minute: the 11th is refused
   whichever server gets it) and public submissions from one address (120 a minute).
c. ``kill``: phones submit through nginx; halfway one instance's gunicorn master and workers get
   SIGKILL. A phone whose submission fails taps submit again (the same form, so the same key)
   until it sees the thank-you page. Every acknowledged answer must be stored, none twice, and the
   other instance keeps serving (acknowledgements per second before and after the kill).

Not part of the test suite (tests/survey/test_deploy.py checks the nginx site quickly).
"""
from __future__ import annotations

import argparse
import http.client
import itertools
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
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, text

from benchmarks import nginx
from benchmarks.load import answers, free_port, prepare

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/two_servers"
REDIS = "redis://127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[1]
THANKS = "提交成功"
REPEATED = "此前已经收到"
# Hidden fields to send back: the public form's one-time key, the login form's CSRF token.
FIELDS = re.compile(r'name="(submission_key|csrf_token)"[^>]*value="([^"]+)"')
UPSTREAM_HEADER = "    add_header X-Upstream $upstream_addr always;   # benchmark only: which app server answered"


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def thanked(self) -> bool:
        return self.status == 200 and THANKS in self.body

    @property
    def cookie(self) -> str:
        return "; ".join(c.split(";")[0] for c in self.headers.get("set-cookie", []))


def request(port: int, method: str, path: str, body: str | None = None, source: str = "127.0.0.1",
            headers: dict[str, str] | None = None, timeout: float = 15) -> Reply:
    """Send one request on a new connection from ``source``; raise OSError/HTTPException on failure."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        sent = dict(headers or {})
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        reply = conn.getresponse()
        found: dict = {}
        for name, value in reply.getheaders():
            if name.lower() == "set-cookie":
                found.setdefault("set-cookie", []).append(value)
            else:
                found[name.lower()] = value
        return Reply(reply.status, found, reply.read().decode("utf-8", "replace"))
    finally:
        conn.close()


class Instance:
    """One app server: gunicorn with deploy/gunicorn.conf.py on a port of its own."""

    def __init__(self, name: str, env: dict, folder: Path, workers: int, threads: int) -> None:
        self.name, self.port = name, free_port()
        self.log = open(folder / f"gunicorn-{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "deploy" / "gunicorn.conf.py"), "survey:create_app()"],
            env=env | {"GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": str(workers),
                       "GUNICORN_THREADS": str(threads), "GUNICORN_LOGLEVEL": "warning"},
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if request(self.port, "GET", "/office/login", timeout=5).status == 200:
                    return
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn {name} did not start (see {self.log.name})")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def processes(self) -> list[int]:
        """Return the live processes (master and workers) of this instance's process group."""
        alive = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
            except (OSError, ValueError):
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if entry.name.isdigit() and int(fields[2]) == self.process.pid and fields[0] not in "ZX":
                alive.append(int(entry.name))
        return alive

    def kill(self) -> dict:
        """SIGKILL the master and every worker at once (they share one process group)."""
        before = self.processes()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"processes_killed": len(before), "processes_left": len(self.processes())}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=40)
        self.log.close()


def addresses(second_octet: int):
    """Yield loopback addresses 127.<second_octet>.y.z, one per resident."""
    for y, z in itertools.product(range(256), range(1, 255)):
        yield f"127.{second_octet}.{y}.{z}"


def markers_stored(url: str, phase: str) -> Counter:
    """Return how many responses carry each marker of ``phase`` (markers are in the comment answer)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        texts = conn.execute(text("SELECT text FROM answer WHERE item_code = 'comment' AND text LIKE :p"),
                             {"p": f"{phase}:%"}).scalars().all()
    engine.dispose()
    return Counter(texts)


def marked_body(html: str, rng: random.Random, marker: str) -> str:
    return urlencode(dict(FIELDS.findall(html)) | answers(rng) | {"comment": marker})


def same_key(url: str, servers: list[Instance], tokens: list[str], keys: int, parallel: int = 8) -> dict:
    """Part a: submit each form four times at once, twice straight to each server."""
    outcomes = Counter()
    new_per_key: Counter = Counter()
    lock = threading.Lock()
    todo = iter(range(keys))

    def one_key(number: int) -> None:
        rng = random.Random(number)
        # Straight to the app servers, as nginx would: the resident's address in X-Forwarded-For.
        headers = {"X-Forwarded-For": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"}
        token = rng.choice(tokens)
        page = request(servers[number % 2].port, "GET", f"/s/{token}", headers=headers)
        marker = f"a:{number}:{uuid.uuid4().hex}"
        body = marked_body(page.body, rng, marker)
        targets = [servers[0], servers[1], servers[0], servers[1]]
        start = threading.Barrier(len(targets))

        def post(server: Instance) -> None:
            start.wait()
            try:
                reply = request(server.port, "POST", f"/s/{token}", body, headers=headers | {"Cookie": page.cookie})
                outcome = ("thanked_repeated" if REPEATED in reply.body else "thanked_new") if reply.thanked \
                    else f"status_{reply.status}"
            except (OSError, http.client.HTTPException) as error:
                outcome = type(error).__name__
            with lock:
                outcomes[outcome] += 1
                new_per_key[marker] += outcome == "thanked_new"

        threads = [threading.Thread(target=post, args=(server,)) for server in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def worker() -> None:
        while True:
            with lock:
                number = next(todo, None)
            if number is None:
                return
            one_key(number)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(parallel)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stored = markers_stored(url, "a")
    return {
        "part": "a_same_key_to_both_servers",
        "keys": keys,
        "posts": 4 * keys,
        "seconds": round(time.perf_counter() - started, 1),
        "outcomes": dict(outcomes),
        "stored": sum(stored.values()),
        "keys_stored_once": sum(1 for m in new_per_key if stored[m] == 1),
        "keys_stored_twice_or_more": sum(1 for m in new_per_key if stored[m] > 1),
        "keys_missing": sum(1 for m in new_per_key if stored[m] == 0),
        "keys_thanked_as_new_once": sum(1 for count in new_per_key.values() if count == 1),
    }


def limits(port: int, tokens: list[str]) -> dict:
    """Part b: logins and public submissions from one address each, through nginx's round-robin."""
    login = []
    for _ in range(16):
        page = request(port, "GET", "/office/login", source="127.0.1.1")
        fields = dict(FIELDS.findall(page.body)) | {"username": "nobody", "password": "not-the-password"}
        reply = request(port, "POST", "/office/login", urlencode(fields), source="127.0.1.1",
                        headers={"Cookie": page.cookie})
        login.append((reply.status, reply.headers.get("x-upstream", "?")))
    neighbour = request(port, "GET", "/office/login", source="127.0.1.2")
    neighbour = request(port, "POST", "/office/login", urlencode(dict(FIELDS.findall(neighbour.body)) | {
        "username": "nobody", "password": "not-the-password"}), source="127.0.1.2", headers={"Cookie": neighbour.cookie})

    rng = random.Random(2)
    public = []
    for number in range(130):
        token = rng.choice(tokens)
        page = request(port, "GET", f"/s/{token}", source="127.0.1.3")
        reply = request(port, "POST", f"/s/{token}", marked_body(page.body, rng, f"b:{number}"), source="127.0.1.3",
                        headers={"Cookie": page.cookie})
        public.append(("thanked" if reply.thanked else reply.status, reply.headers.get("x-upstream", "?")))
    accepted = [upstream for outcome, upstream in public if outcome == "thanked"]
    return {
        "part": "b_limits_across_both_servers",
        "login_limit": "10 per minute per address",
        "login_statuses": [status for status, _ in login],
        "login_upstreams": [upstream.rsplit(":", 1)[-1] for _, upstream in login],
        "login_refused_by_upstream": dict(Counter(u.rsplit(":", 1)[-1] for s, u in login if s == 429)),
        "login_from_another_address": neighbour.status,
        "public_post_limit": "120 per minute per address",
        "public_posts": len(public),
        "public_accepted": len(accepted),
        "public_accepted_by_upstream": dict(Counter(u.rsplit(":", 1)[-1] for u in accepted)),
        "public_refused_429": sum(1 for outcome, _ in public if outcome == 429),
        "public_first_refused_at": next((i + 1 for i, (outcome, _) in enumerate(public) if outcome == 429), None),
    }


def kill_under_load(url: str, port: int, servers: list[Instance], tokens: list[str], seconds: float,
                    concurrency: int) -> dict:
    """Part c: phones submit through nginx; SIGKILL one instance halfway; phones retry until thanked."""
    acks: list[tuple[float, str, str]] = []
    retries = Counter()
    lock = threading.Lock()
    fresh = addresses(1)
    began = time.perf_counter()
    stop_at = began + seconds

    def phone(seed: int) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            with lock:
                source = next(fresh)
            token = rng.choice(tokens)
            try:
                page = request(port, "GET", f"/s/{token}", source=source)
            except (OSError, http.client.HTTPException):
                page = None
            if page is None or page.status != 200:
                with lock:
                    retries[f"get_{page.status if page else 'connection'}"] += 1
                time.sleep(0.2)
                continue
            marker = f"c:{uuid.uuid4().hex}"
            body = marked_body(page.body, rng, marker)
            deadline = time.perf_counter() + 120  # a person keeps tapping "submit"
            while time.perf_counter() < deadline:
                try:
                    reply = request(port, "POST", f"/s/{token}", body, source=source, headers={"Cookie": page.cookie})
                    if reply.thanked:
                        with lock:
                            acks.append((time.perf_counter() - began, marker, reply.headers.get("x-upstream", "?")))
                        break
                    outcome = f"post_{reply.status}"
                except (OSError, http.client.HTTPException):
                    outcome = "post_connection"
                with lock:
                    retries[outcome] += 1
                time.sleep(0.2)

    threads = [threading.Thread(target=phone, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(seconds / 2)
    killed_at = time.perf_counter() - began
    killed = servers[0].kill()
    dead = servers[0]
    dead_refuses = None  # seconds until the killed server's port refused connections
    while dead_refuses is None and time.perf_counter() - began < killed_at + 5:
        try:
            socket.create_connection(("127.0.0.1", dead.port), timeout=1).close()
            time.sleep(0.01)
        except OSError:
            dead_refuses = round(time.perf_counter() - began - killed_at, 2)
    for t in threads:
        t.join()
    ended = min(seconds, time.perf_counter() - began)

    warmup = 2.0
    before = [a for a in acks if warmup <= a[0] < killed_at]
    after = [a for a in acks if killed_at + 1 <= a[0] < ended]
    stored = markers_stored(url, "c")
    acked = {marker for _, marker, _ in acks}
    per_second = Counter(int(t) for t, _, _ in acks if t < ended)

    def by_upstream(items) -> dict:
        return dict(Counter(("killed " if u.endswith(f":{dead.port}") else "survivor ") + u.rsplit(":", 1)[-1]
                            for _, _, u in items))

    return {
        "part": "c_kill_9_one_server_under_load",
        "seconds": seconds,
        "concurrency": concurrency,
        "killed_at_s": round(killed_at, 1),
        "killed": killed,
        "killed_server_refuses_connections_after_s": dead_refuses,
        "acked": len(acks),
        "acked_distinct": len(acked),
        "stored": sum(stored.values()),
        "acked_missing": sum(1 for m in acked if stored[m] == 0),
        "stored_twice": sum(1 for count in stored.values() if count > 1),
        "stored_not_acked": sum(1 for m in stored if m not in acked),
        "acked_per_s_before_kill": round(len(before) / max(killed_at - warmup, 1e-9), 1),
        "acked_per_s_after_kill": round(len(after) / max(ended - killed_at - 1, 1e-9), 1),
        "served_before_kill": by_upstream(before),
        "served_after_kill": by_upstream(after),
        "acked_per_second": [per_second.get(s, 0) for s in range(int(ended) + 1)],
        "retries": dict(retries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app server")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    tokens = prepare(args.url)
    prefix = f"two-servers-{uuid.uuid4().hex[:12]}"
    env = os.environ | {
        "DATABASE_URL": args.url, "SECRET_KEY": f"two-servers-{uuid.uuid4().hex}", "TRUSTED_PROXIES": "1",
        "RATELIMIT_STORAGE_URI": REDIS, "RATELIMIT_KEY_PREFIX": prefix, "RATELIMIT_ENABLED": "1",
        "HOUSEKEEPING_INTERVAL_S": "0", "FLASK_APP": "survey",
    }
    servers: list[Instance] = []
    proxy = None
    with tempfile.TemporaryDirectory(prefix="two_servers_") as temp:
        folder = Path(temp)
        try:
            servers = [Instance(name, env, folder, args.workers, args.threads) for name in ("one", "two")]
            port = free_port()
            (folder / "nginx").mkdir()
            proxy = nginx.start(folder / "nginx", port, [s.address for s in servers], UPSTREAM_HEADER)
            print(json.dumps({"setup": {"nginx": f"127.0.0.1:{port}", "app_servers": [s.address for s in servers],
                                        "gunicorn_each": f"{args.workers} workers x {args.threads} threads (gthread)",
                                        "database": args.url.rsplit("/", 1)[-1], "redis_prefix": prefix}},
                             ensure_ascii=False), flush=True)
            print(json.dumps(same_key(args.url, servers, tokens, args.keys), ensure_ascii=False), flush=True)
            print(json.dumps(limits(port, tokens), ensure_ascii=False), flush=True)
            print(json.dumps(kill_under_load(args.url, port, servers, tokens, args.seconds, args.concurrency),
                             ensure_ascii=False), flush=True)
        finally:
            if proxy is not None:
                nginx.stop(proxy)
            for server in servers:
                server.stop()
            _forget_limits(prefix)


def _forget_limits(prefix: str) -> None:
    """Delete this run's rate-limit counters from the shared Redis (only keys with our prefix)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    try:
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
    finally:
        client.close()


if __name__ == "__main__":
    main()
