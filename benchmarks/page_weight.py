"""Page weight of the office dashboard and community page on a first load, against the 1 MB target.

    python -m benchmarks.page_weight [--respondents 3000]

Seeds the demo city in a temporary SQLite database, analyses it, adds a past wave (so the community
page draws its trend chart), logs in as the city office and fetches each page and every same-origin
file it loads (stylesheets, scripts, images, icons, fonts named in the CSS) through the app. Prints
per file the bytes uncompressed, as served to a client that accepts only gzip, and as served to a
browser that accepts "gzip, deflate, br, zstd" (what Chromium sends), with the encoding used.
Static files are streamed, and Flask-Compress streams only zstd, brotli or deflate (its maintainers
find gzip unsuited to streaming), so a client that accepts gzip alone gets the stylesheet as it is.
"""
from __future__ import annotations

import argparse
import re
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from survey import create_app, db
from survey.auth import create_user
from survey.models import AnalysisRun, Area, AreaResult, Wave

TARGET = 1_000_000
PASSWORD = "Office-2026-strong"
BROWSER = "gzip, deflate, br, zstd"
ASSETS = re.compile(r'<(?:link|script|img|source)\b[^>]*?\b(?:href|src)="(/[^/"][^"]*)"', re.I)
CSS_URLS = re.compile(r'url\(\s*["\']?(/[^/"\')][^"\')]*)')


def add_past_wave(session, shift: float = -3.0) -> Wave:
    """Add a closed wave before the newest one whose results are the newest run's, moved by ``shift`` points.

    Gives every area two waves of history (the community page's trend) without a second survey.
    """
    newest = session.scalars(select(AnalysisRun).order_by(AnalysisRun.id.desc()).limit(1)).one()
    wave = Wave(name=f"上一轮（{newest.wave.name}之前）", opens_at=newest.wave.opens_at - timedelta(days=90),
                closes_at=newest.wave.opens_at - timedelta(days=60))
    session.add(wave)
    session.flush()
    run = AnalysisRun(wave_id=wave.id, questionnaire_code=newest.questionnaire_code, created_at=newest.created_at,
                      respondents=newest.respondents, summary=newest.summary)
    session.add(run)
    session.flush()
    columns = [c.key for c in AreaResult.__table__.columns if c.key not in ("id", "run_id")]
    for result in session.scalars(select(AreaResult).where(AreaResult.run_id == newest.id)):
        values = {key: getattr(result, key) for key in columns}
        for key in ("estimate", "ci_low", "ci_high", "eb_estimate"):
            if values[key] is not None:
                values[key] = max(0.0, values[key] + shift)
        session.add(AreaResult(run_id=run.id, **values))
    return wave


def build_app(folder: Path, respondents: int):
    """Return an app on a demo city in ``folder``, analysed, with a city account and a past wave."""
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'weight.sqlite'}", "SECRET_KEY": "weight",
                      "RATELIMIT_ENABLED": False, "HOUSEKEEPING_INTERVAL_S": 0})
    runner = app.test_cli_runner()
    for args in (["init-db"], ["seed-demo", "--respondents", str(respondents)], ["analyze"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output)
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "weight", PASSWORD, "city", "C")
        add_past_wave(session)
    return app


def log_in(client) -> None:
    page = client.get("/office/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = client.post("/office/login", data={"csrf_token": token, "username": "weight", "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code


def fetch(client, path: str, accept: str | None) -> tuple[int, str, bytes]:
    """Return (bytes on the wire, encoding, decoded body) of one GET."""
    headers = {"Accept-Encoding": accept} if accept else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    wire = response.get_data()
    encoding = response.headers.get("Content-Encoding", "")
    response.close()
    if not encoding:
        return len(wire), "-", wire
    from flask_compress.flask_compress import _uncompress_data

    return len(wire), encoding, _uncompress_data(wire, encoding)


def page_files(client, path: str) -> list[str]:
    """Return the page and every same-origin file it loads, in order, each once."""
    html = client.get(path).get_data(as_text=True)
    files = [path]
    for found in ASSETS.findall(html):
        if found not in files:
            files.append(found)
            if found.split("?")[0].endswith(".css"):
                css = client.get(found).get_data(as_text=True)
                files += [u for u in CSS_URLS.findall(css) if u not in files]
    return files


def measure(client, name: str, path: str) -> dict[str, int]:
    print(f"\n{name}: {path}")
    print(f"  {'file':<44} {'uncompressed':>12} {'gzip only':>10} {'browser':>10}  encoding")
    totals = {"raw": 0, "gzip": 0, "browser": 0}
    for file in page_files(client, path):
        raw_size, _, raw = fetch(client, file, None)
        gzip_size, _, decoded = fetch(client, file, "gzip")
        browser_size, encoding, decoded_browser = fetch(client, file, BROWSER)
        assert decoded == raw == decoded_browser or file == path, file  # pages carry a fresh CSRF token each time
        totals["raw"] += raw_size
        totals["gzip"] += gzip_size
        totals["browser"] += browser_size
        print(f"  {file[:44]:<44} {raw_size:>12,} {gzip_size:>10,} {browser_size:>10,}  {encoding}")
    verdict = "meets" if max(totals.values()) < TARGET else "MISSES"
    print(f"  {'total':<44} {totals['raw']:>12,} {totals['gzip']:>10,} {totals['browser']:>10,}  "
          f"{verdict} the {TARGET:,}-byte target")
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = build_app(Path(folder), args.respondents)
        with app.app_context():
            session = db.session()
            district = session.scalars(select(Area.code).where(Area.level == "district").order_by(Area.code)).first()
            newest = session.scalars(select(AnalysisRun).order_by(AnalysisRun.wave_id.desc()).limit(1)).one()
            # The community with the most answers: the longest comment list and term counts.
            community = session.scalars(
                select(Area.code).join(AreaResult, AreaResult.area_id == Area.id)
                .where(AreaResult.run_id == newest.id, Area.level == "community").order_by(AreaResult.n.desc()).limit(1)
            ).one()
        client = app.test_client()
        log_in(client)
        print(f"Demo city with {args.respondents:,} responses; target: under {TARGET:,} bytes per page and its files.")
        print("(Static files are streamed: Flask-Compress sends them as zstd, br or deflate, never gzip.)")
        results = {
            "city dashboard": measure(client, "City dashboard", "/office/area/C"),
            "district dashboard": measure(client, "District dashboard", f"/office/area/{district}"),
            "community page": measure(client, "Community page", f"/office/community/{community}"),
        }
        app.extensions["db_engine"].dispose()
    print("\nSummary (bytes: uncompressed / gzip only / browser):")
    for name, totals in results.items():
        share = max(totals.values()) / TARGET
        print(f"  {name:<20} {totals['raw']:>9,} / {totals['gzip']:>9,} / {totals['browser']:>9,}  "
              f"({share:.1%} of the 1 MB target at most)")


if __name__ == "__main__":
    main()
