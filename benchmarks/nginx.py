"""Run the shipped nginx site (deploy/nginx/survey.conf) as a process of our own, on free local ports.

Used by ``benchmarks.two_servers`` and tests/survey/test_nginx.py. The site is taken as shipped; only
what must differ on a test machine is replaced, and each replacement must find its target, so the
shipped file cannot drift away from what is tested: the app servers in the upstream, the listen
address, the static folder and the log folder. Everything nginx writes (pid, logs, temp files)
goes to a folder of our own; the system's nginx service and port 80 are never touched.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "deploy" / "nginx" / "survey.conf"
MIME_TYPES = Path("/etc/nginx/mime.types")


def nginx_binary() -> str:
    """Return the nginx executable (Debian package ``nginx``; scripts/system-deps.sh test installs it)."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None)
    if not found:
        raise RuntimeError("nginx is missing: sudo apt-get install nginx (or scripts/system-deps.sh test)")
    return found


def _replace(pattern: str, replacement: str, text: str, count: int) -> str:
    new, found = re.subn(pattern, lambda _match: replacement, text, flags=re.MULTILINE)
    if found != count:
        raise ValueError(f"deploy/nginx/survey.conf: expected {count} match(es) of {pattern!r}, found {found}")
    return new


def site_logs_to(folder: Path, site: str | None = None) -> str:
    """Return the shipped site with its log files moved into ``folder`` (nothing else changed)."""
    site = SITE.read_text(encoding="utf-8") if site is None else site
    return _replace(r"/var/log/nginx/", f"{folder}/", site, 2)


def local_site(folder: Path, port: int, backends: list[str], extra: str = "") -> str:
    """Return the shipped site listening on 127.0.0.1:``port`` in front of ``backends`` (host:port)."""
    site = site_logs_to(folder)
    servers = "".join(f"    server {backend} max_fails=1 fail_timeout=10s;\n" for backend in backends)
    site = _replace(r"^\s*server 127\.0\.0\.1:8000 [^;\n]*;\n", servers, site, 1)
    site = _replace(r"^\s*listen 80;$", f"    listen 127.0.0.1:{port};", site, 1)
    site = _replace(r"^\s*listen \[::\]:80;\n", "", site, 1)
    site = _replace(r"/opt/survey/survey/static/", f"{ROOT / 'survey' / 'static'}/", site, 1)
    if extra:
        name = re.search(r"^\s*server_name [^;\n]*;$", site, flags=re.MULTILINE)
        if name is None:
            raise ValueError("deploy/nginx/survey.conf: no server_name line")
        site = site[:name.end()] + "\n" + extra + site[name.end():]
    return site


def main_config(folder: Path, site_path: Path) -> str:
    """Return an nginx.conf that includes ``site_path`` and keeps pid, logs and temp files in ``folder``."""
    temp = "".join(f"    {kind}_temp_path {folder}/{kind}_temp;\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    mime = f"    include {MIME_TYPES};\n" if MIME_TYPES.exists() else ""
    # Started as root, nginx would run its workers as nobody, who may not reach a private temp
    # folder (pytest's is 0700): keep them as the user who runs this, as without root.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}"
        "daemon off;\n"
        "worker_processes 2;\n"
        f"pid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"{mime}"
        "    default_type application/octet-stream;\n"
        f"    access_log {folder}/access.log;\n"
        f"{temp}"
        f"    include {site_path};\n"
        "}\n"
    )


def write_config(folder: Path, site: str) -> Path:
    """Write ``site`` and an nginx.conf including it into ``folder``; return the nginx.conf path."""
    site_path = folder / "survey.conf"
    site_path.write_text(site, encoding="utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(main_config(folder, site_path), encoding="utf-8")
    return conf


def check_config(conf: Path) -> subprocess.CompletedProcess:
    """Run ``nginx -t`` on ``conf``; return the finished process (output in stderr)."""
    folder = conf.parent
    return subprocess.run([nginx_binary(), "-t", "-p", f"{folder}/", "-e", f"{folder}/error.log", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


def start(folder: Path, port: int, backends: list[str], extra: str = "") -> subprocess.Popen:
    """Start nginx with the shipped site on 127.0.0.1:``port``; return once it accepts connections."""
    conf = write_config(folder, local_site(folder, port, backends, extra))
    checked = check_config(conf)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
    process = subprocess.Popen([nginx_binary(), "-p", f"{folder}/", "-e", f"{folder}/error.log", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx stopped at start: {process.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError("nginx did not start listening")


def stop(process: subprocess.Popen) -> None:
    """Stop nginx (master and workers) and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)
    if process.stderr:
        process.stderr.close()
