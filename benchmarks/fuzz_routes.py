"""Fuzz every route of the app as every kind of account: no request may get a 5xx.

    python -m benchmarks.fuzz_routes [--url postgresql://postgres@127.0.0.1:5432/survey_fuzz]
                                     [--requests 10000] [--seed 1]

Builds the demo city (seeded, analysed, tasks in every status) in its own PostgreSQL database
(made if missing, emptied first), then sends ``--requests`` requests through the app in this
process: each picks an account (the demo's city, district, street, grid, school and unit logins,
or nobody), a URL rule of the app's map, fills its path arguments with real values (area codes,
link tokens, ids that exist) or hostile ones (ids past 2**31, negative, Unicode digits, NUL,
``..``, 5,000 characters), adds a query string of the names the views read with such values, and
sends GET, or POST with a random form (a valid CSRF token or not, fields named like the form's).
A request that logs an account out or disables it is undone before the next round. Prints the
count of each status and every 5xx with what was sent (as JSON); exits 1 if there was one.
Rate limits are off: they answer 429 before a view runs, which would hide the views.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from urllib.parse import quote

from sqlalchemy import select, text, update

from benchmarks.db_analysis import ensure_database
from survey import create_app, db
from survey.auth import create_user, set_password
from survey.demo import DEMO_LOGINS
from survey.models import Area, Link, Task, TaskPhoto, Unit, User, Wave

PASSWORD = "Fuzz-2026-strong"
CONFIG = {"SECRET_KEY": "fuzz", "RATELIMIT_ENABLED": False, "REFRESH_PRERENDER": "", "HOUSEKEEPING_INTERVAL_S": 0}
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
QUERY_NAMES = ["wave", "compare", "unit", "published", "page", "q", "status", "overdue", "area", "sort", "from", "to",
               "by", "format", "labels", "next", "term", "community", "pick", "fmt", "level", "search"]
HOSTILE = ["2147483648", "9223372036854775808", "-1", "0", "１２", "٣", "1e3", "", " ", "\x00", "a\x00b", "..",
           "../../etc/passwd", "%00", "x" * 5000, "<script>alert(1)</script>", "'; DROP TABLE area; --", "\u202e",
           "🙂", "null", "NaN", "inf", "2026-02-30", "9999-12-31", "0000-00-00", "1" * 40]
FORM_NAMES = ["csrf_token", "note", "reason", "title", "deadline", "priority", "detail", "name", "contact", "phone",
              "communities", "grids", "username", "password", "role", "area", "school", "unit", "wave", "code",
              "serial", "submission_key", "community", "pick", "next", "confirm", "photos", "q01", "sex", "comment"]


def build(url: str):
    """Return the app on a fresh demo city in ``url``, with every demo login's password set."""
    ensure_database(url)
    app = create_app(CONFIG | {"DATABASE_URL": url})
    with app.app_context(), db.engine().begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    runner = app.test_cli_runner()
    for args in (["init-db"], ["seed-demo", "--respondents", "600", "--previous-wave"], ["analyze"],
                 ["analyze", "--questionnaire", "minor"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
    with app.app_context(), db.write_transaction() as session:
        for username, role, code, school in DEMO_LOGINS:
            school_name, unit_name = (None, school) if role == "unit" else (school, None)
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                create_user(session, username, PASSWORD, role, code, school_name, unit_name)
            else:  # the demo's unit account is made with the units
                set_password(session, user, PASSWORD)
    return app


def known_values(app) -> dict[str, list[str]]:
    """Values that exist in the database, by the name of the path argument they fit."""
    with app.app_context():
        session = db.session()
        ids = lambda model: [str(i) for i in session.scalars(select(model.id).limit(50))]  # noqa: E731
        codes = [a.code for a in session.scalars(select(Area).limit(200))]
        return {"code": codes + ["citizen", "minor"], "token": [lnk.token for lnk in session.scalars(select(Link).limit(50))],
                "task_id": ids(Task), "photo_id": ids(TaskPhoto), "unit_id": ids(Unit), "wave_id": ids(Wave),
                "account_id": ids(User), "number": ["1", "2"], "what": ["responses", "estimates", "problems"],
                "fmt": ["csv", "xlsx", "sav", "dta", "pdf"], "action": ["start", "report", "close", "return", "remind",
                                                                         "disable", "enable"]}


def path_for(rule, known: dict[str, list[str]], rng: random.Random) -> str | None:
    values = {}
    for name in rule.arguments:
        pool = known.get(name) or known["code"]
        value = rng.choice(pool) if pool and rng.random() < 0.6 else rng.choice(HOSTILE)
        values[name] = value
    path = rule.rule
    for name, value in values.items():
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", quote(value, safe=""), path)
    return path


def query(rng: random.Random, known: dict[str, list[str]]) -> str:
    if rng.random() < 0.3:
        return ""
    pairs = []
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(QUERY_NAMES)
        pool = known.get({"wave": "wave_id", "compare": "wave_id", "unit": "unit_id", "area": "code"}.get(name, ""), [])
        value = rng.choice(pool) if pool and rng.random() < 0.5 else rng.choice(HOSTILE)
        pairs.append(f"{quote(name)}={quote(value, safe='')}")
    return "?" + "&".join(pairs)


def login(app, username: str | None):
    client = app.test_client()
    if username is None:
        return client
    page = client.get("/office/login").get_data(as_text=True)
    reply = client.post("/office/login", data={"csrf_token": CSRF.search(page).group(1), "username": username,
                                               "password": PASSWORD})
    assert reply.status_code == 302, f"{username} could not log in"
    return client


def restore(app) -> None:
    """Undo what a fuzzed request may have done to the fuzzing accounts (disabled, password reset)."""
    with app.app_context(), db.write_transaction() as session:
        names = [n for n, *_ in DEMO_LOGINS]
        session.execute(update(User).where(User.username.in_(names)).values(active=True))
        for user in session.scalars(select(User).where(User.username.in_(names))):
            set_password(session, user, PASSWORD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/survey_fuzz")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    app = build(args.url)
    known = known_values(app)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    accounts = [None] + [name for name, *_ in DEMO_LOGINS]
    clients = {name: login(app, name) for name in accounts}
    statuses: Counter = Counter()
    by_endpoint: Counter = Counter()
    failures = []
    done = 0
    print(f"Built the demo city in {time.perf_counter() - started:.0f} s; {len(rules)} routes, "
          f"{len(accounts)} accounts", file=sys.stderr)
    sent_at = time.perf_counter()
    while done < args.requests:
        for _ in range(200):
            account = rng.choice(accounts)
            client = clients[account]
            rule = rng.choice(rules)
            path = path_for(rule, known, rng) + query(rng, known)
            method = "POST" if "POST" in rule.methods and (rng.random() < 0.5 or "GET" not in rule.methods) else "GET"
            data = None
            if method == "POST":
                data = {rng.choice(FORM_NAMES): rng.choice(HOSTILE + ["1", "Y", "2026-12-31", "正常的说明"])
                        for _ in range(rng.randint(0, 6))}
                if rng.random() < 0.7:
                    page = clients[account].get("/office/login" if account is None else "/office/").get_data(as_text=True)
                    token = CSRF.search(page)
                    data["csrf_token"] = token.group(1) if token else ""
            try:
                reply = client.open(path, method=method, data=data, headers={"Origin": "http://localhost"}
                                    if rng.random() < 0.2 else {})
                status = reply.status_code
                reply.close()
            except Exception as exc:  # an exception the app let through: as bad as a 500
                status = 599
                failures.append({"path": path[:300], "method": method, "account": account, "error": repr(exc)[:300]})
            statuses[status] += 1
            by_endpoint[rule.endpoint] += 1
            if 500 <= status < 599:
                failures.append({"path": path[:300], "method": method, "account": account, "status": status,
                                 "form": {k: v[:60] for k, v in (data or {}).items()}})
            done += 1
        restore(app)
        clients = {name: login(app, name) for name in accounts}
        print(f"\r{done}/{args.requests} requests, {sum(v for k, v in statuses.items() if k >= 500)} 5xx",
              end="", file=sys.stderr)
    seconds = time.perf_counter() - sent_at
    print(file=sys.stderr)
    print(json.dumps({"requests": done, "seconds": round(seconds, 1), "database": app.config["DATABASE_URL"],
                      "statuses": dict(sorted(statuses.items())), "routes": len(rules),
                      "least_hit_routes": by_endpoint.most_common()[-5:], "failures": failures[:50],
                      "five_xx": sum(v for k, v in statuses.items() if k >= 500)}, ensure_ascii=False, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
