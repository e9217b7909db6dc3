"""A test app served by a real gunicorn (a worker process of its own), for what the test client never meets.

The test client hands the app the whole body at once; gunicorn reads it from a socket in network-sized
pieces, which is where Werkzeug's form limits apply (a phone photo refused with 413 passed every
in-process test). ``serving(app)`` starts ``gunicorn 'tests.served:create()'`` on a free local port
with the test app's database and secret, and yields its base URL; ``Browser`` is a tiny cookie-keeping
HTTP client for it (urllib, no third-party package).
"""
from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from werkzeug.datastructures import MultiDict
from werkzeug.test import encode_multipart

ROOT = Path(__file__).resolve().parents[1]
SERVED = ("DATABASE_URL", "SECRET_KEY", "TIMEZONE")


def create():
    """The app gunicorn serves: the test app's settings from the environment (SURVEY_SERVED_CONFIG)."""
    from survey import create_app

    config = json.loads(os.environ["SURVEY_SERVED_CONFIG"])
    return create_app(config | {"HOUSEKEEPING_INTERVAL_S": 0, "REFRESH_INTERVAL_S": 0, "RATELIMIT_ENABLED": False})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app, log_folder: Path) -> Iterator[str]:
    """Serve ``app``'s database with one gunicorn worker; yield its base URL, stop it afterwards."""
    port = _free_port()
    config = {name: app.config[name] for name in SERVED if app.config.get(name)}
    log = log_folder / "gunicorn.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
             "--worker-class", "gthread", "--timeout", "60", "tests.served:create()"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env=os.environ | {"SURVEY_SERVED_CONFIG": json.dumps(config), "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/office/login", timeout=10).close()
                break
            except OSError:  # refused while the worker starts, or a read timed out
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Reply:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Browser:
    """Requests to a served app with cookies kept and redirects not followed."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), self._NoRedirect())

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Reply:
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=60) as reply:
                return Reply(reply.status, reply.headers, reply.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, fields: MultiDict) -> Reply:
        """POST ``fields`` (FileStorage values are files) as multipart/form-data, as a browser sends a form."""
        boundary, body = encode_multipart(fields)
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                 "Origin": self.base_url})
