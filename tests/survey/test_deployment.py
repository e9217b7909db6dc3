"""Running behind gunicorn and a proxy: shared rate-limit counts, client addresses, printed links."""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from survey import create_app, db
from survey.limits import LOCAL_REDIS, redis_answers, storage_uri
from survey.models import Response, Wave
from survey.quality import ip_hash
from tests.conftest import TEST_PASSWORD_HASH, dispose, form_fields, full_answers

ROOT = Path(__file__).resolve().parents[2]

# One "worker": its own process and app on the test database, posting wrong logins from one address.
WORKER = """
import json, sys
from survey import create_app
config = json.loads(sys.argv[1])
client = create_app(config).test_client()
client.environ_base["REMOTE_ADDR"] = "10.7.7.7"
print(" ".join(str(client.post("/office/login", data={"username": "nobody", "password": "x"}).status_code)
               for _ in range(int(sys.argv[2]))))
"""


@pytest.fixture(scope="module")
def redis_url():
    """A Redis server: the shared one on 127.0.0.1:6379, else one of our own on a free port."""
    if redis_answers(LOCAL_REDIS):
        yield LOCAL_REDIS
        return
    assert shutil.which("redis-server"), "redis-server is missing: sudo apt-get install redis-server"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    for _ in range(100):
        if redis_answers(url):
            break
        time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


def run_workers(app, count: int, workers: int = 2, **config) -> list[list[int]]:
    """Run stand-in worker processes at once, ``count`` login attempts each; return their status codes."""
    config = {"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test-secret",
              "WTF_CSRF_ENABLED": False, "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH} | config
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(config), str(count)], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ | {"PYTHONPATH": str(ROOT)})
               for _ in range(workers)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in outputs]
    return [[int(s) for s in out.split()] for out, _ in outputs]


def test_two_workers_share_one_login_count_in_redis(app, redis_url):
    import redis

    prefix = f"test-{uuid.uuid4().hex}"
    try:
        statuses = run_workers(app, 6, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix)
        assert sorted(statuses[0] + statuses[1]) == [401] * 10 + [429] * 2  # 10 a minute in all, not 10 per worker
        assert list(redis.Redis.from_url(redis_url).scan_iter(f"*{prefix}*"))
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
        client.close()


def test_without_redis_each_worker_counts_on_its_own(app):
    assert run_workers(app, 6, RATELIMIT_STORAGE_URI="memory://") == [[401] * 6, [401] * 6]


def test_a_worker_whose_redis_is_gone_counts_in_memory_instead_of_failing(app):
    assert run_workers(app, 11, workers=1, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1") == [[401] * 10 + [429]]


def _bare(testing: bool = True, **config) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=testing, **config)
    return app


def test_storage_is_redis_whenever_it_answers(redis_url, monkeypatch, caplog):
    assert storage_uri(_bare(RATELIMIT_STORAGE_URI="redis://cache:6379/2", REDIS_URL="redis://other")) == "redis://cache:6379/2"
    assert storage_uri(_bare(REDIS_URL="redis://cache:6379/3")) == "redis://cache:6379/3"
    assert storage_uri(_bare(RATELIMIT_PROBE_URL=redis_url)) == redis_url
    with caplog.at_level(logging.WARNING):
        assert storage_uri(_bare(RATELIMIT_PROBE_URL="redis://127.0.0.1:1")) == "memory://"
    assert "each worker process counts on its own" in caplog.text

    probed = []
    monkeypatch.setattr("survey.limits.redis_answers", lambda url: probed.append(url) or True)
    assert storage_uri(_bare()) == "memory://" and probed == []  # the test suite stays on memory
    assert storage_uri(_bare(testing=False)) == LOCAL_REDIS and probed == [LOCAL_REDIS]


def _public_app(app, **config):
    return create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test-secret",
                       "SERVER_NAME": "survey.test"} | config)


def _incomplete_posts(public_app, token: str, count: int, address: str = "10.9.9.9") -> list[int]:
    """POST an incomplete questionnaire ``count`` times from one address (422 each: nothing is stored)."""
    client = public_app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    fields = form_fields(client.get(f"/s/{token}").get_data(as_text=True))
    answers = full_answers()
    del answers["q01"]
    return [client.post(f"/s/{token}", data=fields | answers).status_code for _ in range(count)]


def test_two_servers_share_the_public_form_count_in_redis(app, city, redis_url):
    import redis

    from survey.limits import PUBLIC_POST_LIMIT

    per_minute = int(PUBLIC_POST_LIMIT.split()[0])
    prefix = f"test-{uuid.uuid4().hex}"
    servers = [_public_app(app, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=prefix) for _ in range(2)]
    try:
        first = _incomplete_posts(servers[0], city["A1"], per_minute - 20)
        second = _incomplete_posts(servers[1], city["A1"], 21)
        assert first == [422] * (per_minute - 20) and second == [422] * 20 + [429]
        assert list(redis.Redis.from_url(redis_url).scan_iter(f"*{prefix}*"))  # counted under this deployment's prefix
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
        client.close()
        for server in servers:
            dispose(server)


def test_the_public_form_counts_in_memory_while_redis_is_gone(app, city, caplog):
    from survey.limits import PUBLIC_POST_LIMIT

    per_minute = int(PUBLIC_POST_LIMIT.split()[0])
    server = _public_app(app, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    try:
        with caplog.at_level(logging.WARNING):
            assert _incomplete_posts(server, city["A1"], per_minute + 1) == [422] * per_minute + [429]
        assert "counting the public form in memory" in caplog.text
    finally:
        dispose(server)


def _proxied_app(app, hops: int):
    return create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test-secret",
                       "SERVER_NAME": "survey.test", "WTF_CSRF_ENABLED": False, "TRUSTED_PROXIES": hops,
                       "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH})


def _login_statuses(client, forwarded_for: list[str]) -> list[int]:
    return [client.post("/office/login", data={"username": "nobody", "password": "x"},
                        headers={"X-Forwarded-For": address}).status_code for address in forwarded_for]


def test_behind_one_trusted_proxy_each_resident_has_their_own_address(app, city):
    proxied = _proxied_app(app, 1)
    client = proxied.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.2"  # the proxy
    assert _login_statuses(client, ["203.0.113.7"] * 10) == [401] * 10
    # The same resident again, even when they add a made-up address in front (the proxy appends the real one):
    assert _login_statuses(client, ["203.0.113.7", "198.51.100.1, 203.0.113.7"]) == [429, 429]
    assert _login_statuses(client, ["203.0.113.8"]) == [401]  # a neighbour behind the same proxy

    resident = proxied.test_client()
    resident.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    headers = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    fields = form_fields(resident.get(f"/s/{city['A1']}", headers=headers).get_data(as_text=True))
    assert resident.post(f"/s/{city['A1']}", data=fields | full_answers(), headers=headers).status_code == 200
    with proxied.app_context():
        salt = db.session().scalars(select(Wave)).one().ip_salt
        assert db.session().scalars(select(Response)).one().ip_hash == ip_hash("203.0.113.9", salt)
    dispose(proxied)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(app, city):
    direct = _proxied_app(app, 0)
    client = direct.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert _login_statuses(client, [f"198.51.100.{i}" for i in range(11)]) == [401] * 10 + [429]
    fields = form_fields(client.get(f"/s/{city['A1']}").get_data(as_text=True))
    assert client.post(f"/s/{city['A1']}", data=fields | full_answers(),
                       headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200
    with direct.app_context():
        salt = db.session().scalars(select(Wave)).one().ip_salt
        assert db.session().scalars(select(Response)).one().ip_hash == ip_hash("203.0.113.7", salt)
    dispose(direct)


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_trusted_proxies_must_be_a_number_of_hops(app, value):
    with pytest.raises(ValueError, match=f"TRUSTED_PROXIES '{value}' is not a number of proxy hops"):
        _proxied_app(app, value)


def test_printed_links_use_the_address_the_demo_serves(app, runner, city, monkeypatch, tmp_path):
    monkeypatch.delenv("PORT", raising=False)
    default = runner.invoke(args=["list-links"]).output.splitlines()
    assert default[0].startswith("A1\t甲社区\tcitizen\tqr\thttp://127.0.0.1:5000/s/")
    given = runner.invoke(args=["list-links", "--base-url", "http://10.1.1.1:8123/"]).output.splitlines()
    assert given[0].endswith(f"http://10.1.1.1:8123/s/{city['A1']}")
    monkeypatch.setenv("PORT", "8765")
    assert f"http://127.0.0.1:8765/s/{city['A1']}" in runner.invoke(args=["list-links"]).output
    sheet = runner.invoke(args=["qr-sheet", "--out", str(tmp_path / "qr.pdf"), "--base-url", "https://wenming.example.cn"])
    assert sheet.exit_code == 0 and "links point to https://wenming.example.cn" in sheet.output


def test_demo_info_prints_the_list_links_command_for_its_port(app, runner, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    assert runner.invoke(args=["seed-demo", "--respondents", "50"]).exit_code == 0
    info = runner.invoke(args=["demo-info", "--port", "8123"])
    assert info.exit_code == 0, info.output
    assert "Survey link: http://127.0.0.1:8123/s/" in info.output
    assert "All links: flask --app survey list-links --base-url http://127.0.0.1:8123\n" in info.output
    logins = [line for line in info.output.splitlines() if line.startswith("Staff login:")]
    assert any(line.endswith("(市文明办：示范市)") for line in logins), logins  # each login says its role
    assert any("(网格员/录入员：" in line for line in logins) and any("(责任单位：" in line for line in logins)
    listed = runner.invoke(args=["list-links", "--base-url", "http://127.0.0.1:8123"]).output
    assert listed and all("\thttp://127.0.0.1:8123/s/" in line for line in listed.splitlines())


def test_a_burst_refused_by_the_minute_limit_leaves_the_hour_limit_alone():
    """Counting every limit on each refused request let a 4-second burst use up the hour's 2000."""
    from limits import parse_many

    from survey.limits import PublicCounter

    counter = PublicCounter(_bare(RATELIMIT_STORAGE_URI="memory://", RATELIMIT_KEY_PREFIX="t"))
    minute, hour = items = parse_many("2 per minute; 3 per hour")
    assert [counter.hit(items, "10.0.0.9") for _ in range(6)] == [True, True, False, False, False, False]
    assert counter.primary.get_window_stats(hour, "t", "10.0.0.9").remaining == 1
    assert counter.primary.get_window_stats(minute, "t", "10.0.0.9").remaining == 0
