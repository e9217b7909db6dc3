"""The shipped deployment files: nginx's site in front of the app, the gunicorn config, the env example."""
from __future__ import annotations

import gzip
import http.client
import json
import runpy
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from benchmarks import nginx
from benchmarks.load import free_port
from survey import create_app, db
from survey.models import Response, Wave
from survey.quality import ip_hash
from tests.conftest import TEST_PASSWORD_HASH, dispose, form_fields, full_answers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_the_shipped_site_passes_nginx_t(tmp_path):
    checked = nginx.check_config(nginx.write_config(tmp_path, nginx.site_logs_to(tmp_path)))
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_site_sets_what_the_app_relies_on():
    site = nginx.SITE.read_text(encoding="utf-8")
    for line in ("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "proxy_set_header X-Forwarded-Proto $scheme;",
                 "proxy_set_header Host $host;", "proxy_next_upstream error timeout;", "client_max_body_size 256k;"):
        assert line in site
    assert "non_idempotent" not in site.replace("(not non_idempotent)", "")  # nginx must never resend a POST


def test_the_gunicorn_config_imports_and_scales_with_the_machine(monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)
    monkeypatch.setattr("multiprocessing.cpu_count", lambda: 6)
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert (config["worker_class"], config["workers"], config["threads"]) == ("gthread", 6, 8)
    assert config["bind"] == "127.0.0.1:8000" and config["timeout"] >= 30 and config["accesslog"] == "-"
    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_BIND", "10.0.0.12:8000")
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert (config["workers"], config["bind"]) == (3, "10.0.0.12:8000")


WORKER_START = """
import gc, json, runpy, sys
from survey import create_app
app = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1], "SECRET_KEY": "x"})
app.test_cli_runner().invoke(args=["init-db"])
class Log:
    def info(self, *args): pass
class Worker:
    wsgi, log = app, Log()
    def notify(self): pass
before = gc.get_freeze_count()
runpy.run_path(sys.argv[2])["post_worker_init"](Worker())
print(json.dumps([before, gc.get_freeze_count()]))
"""


def test_a_gunicorn_worker_warms_up_and_freezes_its_start_up_heap(tmp_path):
    """Full garbage collections walked the app's start-up objects and held office pages up to 100 ms."""
    out = subprocess.run([sys.executable, "-c", WORKER_START, f"sqlite:///{tmp_path / 'w.sqlite'}", str(DEPLOY / "gunicorn.conf.py")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == 0 and after > 50_000


def test_the_env_example_names_settings_the_app_reads():
    example = (DEPLOY / "survey.env.example").read_text(encoding="utf-8")
    names = {line.split("=", 1)[0].lstrip("# ") for line in example.splitlines() if "=" in line}
    app_source = (ROOT / "survey" / "__init__.py").read_text(encoding="utf-8")
    app_settings = {name for name in names if not name.startswith("GUNICORN_")}
    assert {"DATABASE_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "TIMEZONE", "TRUSTED_PROXIES", "REDIS_URL",
            "SESSION_COOKIE_SECURE", "HOUSEKEEPING_INTERVAL_S"} <= app_settings
    assert all(f'os.environ.get("{name}"' in app_source for name in app_settings), app_settings
    assert "TRUSTED_PROXIES=1" in example and "SESSION_COOKIE_SECURE=1" in example


def test_the_limit_prefix_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RATELIMIT_KEY_PREFIX", "city-a")
    config = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "x", "TESTING": True}
    assert create_app(config).config["RATELIMIT_KEY_PREFIX"] == "city-a"
    monkeypatch.delenv("RATELIMIT_KEY_PREFIX")
    assert create_app(config).config["RATELIMIT_KEY_PREFIX"] == "survey"


class Phone:
    """A client on its own loopback address (127.0.0.x), so nginx sees a different resident."""

    def __init__(self, port: int, address: str, host: str = "survey.example.cn") -> None:
        self.port, self.address, self.host = port, address, host

    def request(self, method: str, path: str, body: str | bytes | None = None, **headers: str):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.address, 0))
        try:
            headers = {"Host": self.host} | {k.replace("_", "-"): v for k, v in headers.items()}
            if body is not None:
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, dict(reply.getheaders()), reply.read()
        finally:
            conn.close()


@pytest.fixture
def behind_nginx(app, tmp_path):
    """Serve the app with TRUSTED_PROXIES=1 on a free port, and nginx with the shipped site in front."""
    proxied = create_app({"TESTING": True, "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "test-secret",
                          "TRUSTED_PROXIES": 1, "LINK_CACHE_SECONDS": 0, "HOUSEKEEPING_INTERVAL_S": 0,
                          "WTF_CSRF_ENABLED": False, "PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH})
    server = make_server("127.0.0.1", 0, proxied, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = free_port()
    process = nginx.start(tmp_path, port, [f"127.0.0.1:{server.server_port}"])
    try:
        yield proxied, port
    finally:
        nginx.stop(process)
        server.shutdown()
        thread.join(timeout=5)
        dispose(proxied)


def test_through_nginx_the_app_sees_the_residents_own_address(behind_nginx, city):
    proxied, port = behind_nginx
    phone = Phone(port, "127.0.0.77")
    # A made-up X-Forwarded-For from the phone: nginx appends the address it saw, the app takes that one.
    status, _, html = phone.request("GET", f"/s/{city['A1']}", X_Forwarded_For="198.51.100.1")
    assert status == 200
    body = urlencode(form_fields(html.decode()) | full_answers())
    status, _, page = phone.request("POST", f"/s/{city['A1']}", body, X_Forwarded_For="198.51.100.1",
                                    Origin="https://survey.example.cn")
    assert status == 200 and "提交成功" in page.decode()
    with proxied.app_context():
        salt = db.session().scalars(select(Wave)).one().ip_salt
        assert db.session().scalars(select(Response)).one().ip_hash == ip_hash("127.0.0.77", salt)


def test_through_nginx_limits_count_per_resident_not_per_proxy(behind_nginx):
    _, port = behind_nginx
    login = urlencode({"username": "nobody", "password": "x"})
    guesser, neighbour = Phone(port, "127.0.0.78"), Phone(port, "127.0.0.79")
    assert [guesser.request("POST", "/office/login", login)[0] for _ in range(11)] == [401] * 10 + [429]
    assert neighbour.request("POST", "/office/login", login)[0] == 401


def test_nginx_compresses_serves_static_files_and_refuses_big_bodies(behind_nginx, city):
    _, port = behind_nginx
    phone = Phone(port, "127.0.0.80")
    status, headers, raw = phone.request("GET", f"/s/{city['A1']}", Accept_Encoding="gzip")
    assert status == 200 and headers.get("Content-Encoding") == "gzip"
    assert 'name="submission_key"' in gzip.decompress(raw).decode()
    status, headers, css = phone.request("GET", "/static/style.css")
    assert status == 200 and css == (ROOT / "survey" / "static" / "style.css").read_bytes()
    assert "max-age=604800" in headers.get("Cache-Control", "")  # nginx's, not Flask's
    # Host passes through: a browser's POST from the site's own pages is not foreign, another site's is.
    status, _, html = phone.request("GET", f"/s/{city['A1']}")
    body = urlencode(form_fields(html.decode()) | full_answers())
    assert phone.request("POST", f"/s/{city['A1']}", body, Origin="https://evil.example")[0] == 403
    status, _, refused = phone.request("POST", f"/s/{city['A1']}", "x=" + "a" * 300 * 1024)
    assert status == 413 and "nginx" in refused.decode()  # refused by nginx, before it reaches the app
    # A body under the limit but over nginx's memory buffer goes through nginx's temp file to the app.
    padding = {f"pad{i}": "x" * 100 for i in range(800)}  # 85 KB: more than nginx keeps in memory
    status, _, page = phone.request("POST", f"/s/{city['A1']}", urlencode(form_fields(html.decode()) | full_answers() | padding))
    assert status == 200 and "提交成功" in page.decode()


def test_nginx_lets_a_units_report_with_phone_photos_through_and_nothing_bigger(behind_nginx):
    _, port = behind_nginx
    unit = Phone(port, "127.0.0.81")
    photos = 5 * 2 * 1024 * 1024  # five photos of 2 MiB
    boundary = "x" * 20
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * photos + f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    status, headers, reply = unit.request("POST", "/rectification/tasks/1/report", body, Content_Type=content_type)
    assert status == 302 and "/office/login" in headers["Location"]  # reached the app: not signed in
    status, _, refused = unit.request("POST", "/rectification/tasks/1/report", b"\xff" * (33 * 1024 * 1024),
                                      Content_Type=content_type)
    assert status == 413 and "nginx" in refused.decode()
    status, _, refused = unit.request("POST", "/rectification/tasks/1/start", body, Content_Type=content_type)
    assert status == 413 and "nginx" in refused.decode()  # only the report takes photos


def test_the_two_server_benchmark_reads_the_login_and_public_forms_hidden_fields(app, client, city):
    """Its login part sent no CSRF token (the public form's field pattern) and measured 400s, not the limit."""
    from benchmarks.two_servers import FIELDS

    login = dict(FIELDS.findall(client.get("/office/login").get_data(as_text=True)))
    public = dict(FIELDS.findall(client.get(f"/s/{city['A1']}").get_data(as_text=True)))
    assert set(login) == {"csrf_token"} and set(public) == {"submission_key"}


def test_the_load_benchmark_compares_each_round_with_its_own_ceiling():
    """A machine that speeds up between rounds must not pair one round's ceiling with another's app."""
    from benchmarks.load import summarise

    def figures(rate, p99=100.0, acked=10, stored=10):
        return {"submissions_per_s": rate, "p50_ms": 50.0, "p99_ms": p99, "errors": 0, "acked": acked, "stored": stored}

    ceiling = [figures(775), figures(584), figures(605)]
    app = [figures(205, p99=330), figures(296), figures(296, p99=240)]
    summary, median_ceiling, median_app = summarise(ceiling, app, 32)
    assert summary["round_ratios"] == [0.265, 0.507, 0.489]
    assert summary["ratio"] == 0.489 and (median_ceiling, median_app) == (ceiling[2], app[2])
    assert summary["ratio_best_of_each"] == round(296 / 775, 3)
    assert summary["meets_target"] and summary["app_p99_ms"] == 240
    # Two rounds: the lower ratio; a lost answer fails the run whatever the ratio.
    assert summarise(ceiling[1:], app[1:], 32)[0]["ratio"] == 0.489
    app[2]["stored"] = 9
    assert not summarise(ceiling, app, 32)[0]["meets_target"]
