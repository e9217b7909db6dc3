"""Command line: ``flask --app survey <command>``."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from survey import db
from survey.appcontext import app_object
from survey.areas import AreaImportError, import_areas
from survey.csv_files import import_csv_file
from survey.links import make_community_links, public_url
from survey.localtime import format_local, parse_local, zone_name
from survey.migrate import upgrade
from survey.models import AnalysisRun, Area, AreaResult, Link, Questionnaire
from survey.questionnaires import install_bundled
from survey.reading import documents
from survey.waves import create_wave


def init_app(app: Flask) -> None:
    for command in (init_db, import_areas_command, create_wave_command, make_links, list_links, seed_demo_command, demo_info,
                    import_margins_command, analyze_command, create_user_command, report_command,
                    qr_sheet_command, import_schools_command, print_questionnaires_command, import_sample_command,
                    import_boundaries_command, import_sites_command):
        app.cli.add_command(command)
    for command in (housekeeping_command, reset_password_command, disable_user_command, worker_command):
        app.cli.add_command(command)
    app.cli.add_command(export_command)
    app.cli.add_command(import_questionnaire_command)
    app.cli.add_command(export_questionnaire_command)


def _parse_date(value: str, name: str) -> datetime:
    """Return a typed date or time as UTC: a date is midnight in the app's zone (TIMEZONE)."""
    try:
        return parse_local(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-12-01 or a time like 2026-12-01T08:00 "
                                 f"({zone_name()} time unless an offset is given)", param_hint=name) from None


def _local(moment: datetime) -> str:
    """Return ``moment`` as local time followed by the zone's name, e.g. 2026-10-01 00:00 Asia/Shanghai."""
    return f"{format_local(moment)} {zone_name()}"


def _base_url(base_url: str | None, port: int | None = None) -> str:
    """Return the address printed links start with: --base-url, PUBLIC_BASE_URL, or this machine at $PORT."""
    chosen = port or os.environ.get("PORT") or 5000
    return (base_url or current_app.config.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{chosen}").rstrip("/")


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema and install the bundled questionnaires."""
    upgrade(db.engine())
    with db.write_transaction() as session:
        versions = install_bundled(session)
        names = ", ".join(f"{v.questionnaire.code} v{v.version}" for v in versions)
    click.echo(f"Database ready ({db.engine().url.render_as_string(hide_password=True)}); questionnaires: {names}")


@click.command("import-areas")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_areas_command(csv_file: Path) -> None:
    """Import areas from CSV: code,name,level,parent_code,adult_population,responsible_unit."""
    count = import_csv_file(csv_file, import_areas, AreaImportError)
    documents.forget_all(current_app)  # a cached report lists the communities of its area as they were
    click.echo(f"Imported {count} areas from {csv_file}")


@click.command("import-boundaries")
@with_appcontext
@click.argument("geojson_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_boundaries_command(geojson_file: Path) -> None:
    """Import area outlines from GeoJSON: a feature per area, properties.code the area's code (WGS84)."""
    from survey.boundaries import MAX_BYTES, BoundaryError, import_boundaries, parse_geojson

    try:
        if geojson_file.stat().st_size > MAX_BYTES:  # refused before it is read
            raise BoundaryError(f"the file is larger than {MAX_BYTES:,} bytes; simplify the outlines in the GIS")
        boundaries = parse_geojson(geojson_file.read_bytes())
        with db.write_transaction() as session:
            count = import_boundaries(session, boundaries)
    except BoundaryError as exc:
        raise click.ClickException(f"{geojson_file}: {exc}; nothing was imported") from None
    documents.forget_all(current_app)  # a cached report draws the map as it was
    click.echo(f"Imported {count} boundaries from {geojson_file}")


@click.command("import-sites")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_sites_command(csv_file: Path) -> None:
    """Import sites (点位) from CSV: code,name,type,community_code,unit,lat,lon (UTF-8, with or without BOM)."""
    from survey.sites import MAX_BYTES, SiteError, import_sites

    count = import_csv_file(csv_file, import_sites, SiteError, MAX_BYTES)
    click.echo(f"Imported {count} sites from {csv_file}")


@click.command("create-wave")
@with_appcontext
@click.argument("name")
@click.option("--opens", required=True, help="start, e.g. 2026-12-01 (midnight local time) or 2026-12-01T08:00")
@click.option("--closes", required=True, help="end (exclusive), e.g. 2027-01-01 (midnight local time)")
@click.option("--questionnaire", "questionnaires", multiple=True, default=["citizen", "minor"], show_default=True)
def create_wave_command(name: str, opens: str, closes: str, questionnaires: tuple[str, ...]) -> None:
    """Create a survey wave fielding the newest version of each questionnaire."""
    try:
        with db.write_transaction() as session:
            wave = create_wave(session, name, _parse_date(opens, "--opens"), _parse_date(closes, "--closes"), list(questionnaires))
            click.echo(f"Created wave {wave.name}: {_local(wave.opens_at)} to {_local(wave.closes_at)}")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("make-links")
@with_appcontext
@click.option("--questionnaire", default="citizen", show_default=True)
def make_links(questionnaire: str) -> None:
    """Make a QR link for every community that has none yet."""
    try:
        with db.write_transaction() as session:
            links = make_community_links(session, questionnaire)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(links)} community links for {questionnaire}; list them with: flask --app survey list-links")


@click.command("list-links")
@with_appcontext
@click.option("--questionnaire", default=None, help="only this questionnaire")
@click.option("--base-url", default=None, help="address the links start with (default: PUBLIC_BASE_URL, else http://127.0.0.1:$PORT)")
def list_links(questionnaire: str | None, base_url: str | None) -> None:
    """Print every link as tab-separated area code, area name, questionnaire, channel, URL."""
    session = db.session()
    query = select(Link).join(Questionnaire).outerjoin(Area, Link.area_id == Area.id).order_by(
        Questionnaire.code, Area.code, Link.school_class_id, Link.audience)
    if questionnaire:
        query = query.where(Questionnaire.code == questionnaire)
    base = _base_url(base_url)
    with current_app.test_request_context(base_url=base):
        for link in session.scalars(query):
            area = link.area
            state = "" if link.enabled else "\tdisabled"
            if link.school_class is not None:
                code, name = "-", f"{link.school_class.school.name} {link.school_class.name} ({link.audience})"
            else:
                code, name = (area.code, area.name) if area else ("-", "-")
            click.echo(f"{code}\t{name}\t{link.questionnaire.code}\t{link.channel}\t{public_url(link, base)}{state}")


@click.command("seed-demo")
@with_appcontext
@click.option("--respondents", default=3000, show_default=True, help="synthetic responses to create")
@click.option("--seed", default=7, show_default=True)
@click.option("--if-missing", is_flag=True, help="do nothing when the demo city exists already")
@click.option("--previous-wave", is_flag=True, help="also an earlier, analysed wave (the tasks' next-wave proof)")
def seed_demo_command(respondents: int, seed: int, if_missing: bool, previous_wave: bool) -> None:
    """Create a demo city: areas, an open wave, community links and synthetic responses."""
    from survey.demo import demo_exists, seed_demo

    upgrade(db.engine())
    if if_missing and demo_exists(db.session()):
        click.echo("Demo city exists already")
        return
    try:
        with db.write_transaction() as session, click.progressbar(length=respondents, label="Synthetic responses") as bar:
            summary = seed_demo(session, respondents=respondents, seed=seed, progress=bar.update,
                                previous_wave=previous_wave)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Demo city ready: wave {summary['wave']}, {summary['links']} community links, "
               f"{summary['responses']} responses, {summary['pupils']} pupils' answers, {summary['sites']} sites on the map")


@click.command("demo-info")
@with_appcontext
@click.option("--port", default=None, type=int, help="port the demo serves on (default: $PORT, else 5000)")
def demo_info(port: int | None) -> None:
    """Print the demo city's survey link and logins."""
    from survey.demo import demo_links

    base = _base_url(None, port)
    links = demo_links(db.session())
    if not links:
        raise click.ClickException("no demo city; run: flask --app survey seed-demo")
    from survey.demo import demo_school_link, reset_demo_logins

    with db.write_transaction() as session:
        logins = reset_demo_logins(session)
    click.echo("")
    first = links[0]  # a community's link (demo_links joins its area)
    click.echo(f"Survey link: {base}/s/{first.token}   ({first.area.name if first.area else ''}, citizen questionnaire)")
    school_link = demo_school_link(db.session())
    if school_link is not None and school_link.school_class is not None:
        klass = school_link.school_class
        click.echo(f"School link: {base}/s/{school_link.token}   ({klass.school.name} {klass.name}, parents pick their community)")
    click.echo(f"All links: flask --app survey list-links --base-url {base}")
    for username, password, area_name in logins:
        click.echo(f"Staff login: {base}/office/login  user {username:<10} password {password}   ({area_name})")
    click.echo("")


@click.command("import-margins")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--questionnaire", default="citizen", show_default=True)
def import_margins_command(csv_file: Path, questionnaire: str) -> None:
    """Replace the raking targets with CSV rows variable,category,total (e.g. sex,F,51230)."""
    from survey.results import MarginsError, import_margins

    try:
        with db.write_transaction() as session:
            count = import_margins(session, csv_file.read_text(encoding="utf-8"), questionnaire)
    except (MarginsError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{csv_file}: {exc}; nothing was imported") from None
    click.echo(f"Imported {count} margin rows for {questionnaire}")


@click.command("import-sample")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wave", "wave_name", required=True, help="the wave the sample belongs to (a wave of its own)")
@click.option("--questionnaire", default="citizen", show_default=True)
@click.option("--id", "id_column", default="respondent_id", show_default=True, help="column of respondent ids (unique)")
@click.option("--unit", "unit_column", default=None, help="column of the unit area codes (default: the unit, e.g. community)")
@click.option("--weights", default=None, help="column of base weights (inverse selection probabilities)")
@click.option("--strata", default=None, help="column of strata")
@click.option("--cluster", default=None, help="cluster column per stage, A+B (default: the respondents are the PSUs)")
@click.option("--fpc", default=None, help="population size (or fraction) column per stage, F1+F2")
@click.option("--lonely-psu", type=click.Choice(["fail", "adjust", "certainty"]), default="fail", show_default=True,
              help="a stratum with one PSU, as R's survey.lonely.psu")
def import_sample_command(csv_file: Path, wave_name: str, questionnaire: str, id_column: str, unit_column: str | None,
                          weights: str | None, strata: str | None, cluster: str | None, fpc: str | None,
                          lonely_psu: str) -> None:
    """Import a designed sample (a third-party assessment) with its design; refreshes analyse it with that design."""
    from survey.models import Wave
    from survey.samples import SampleError, import_sample

    try:
        with db.write_transaction() as session:
            wave = session.scalar(select(Wave).where(Wave.name == wave_name))
            if wave is None:
                raise SampleError(f"no wave {wave_name!r}: create one with create-wave")
            count = import_sample(session, csv_file.read_text(encoding="utf-8"), wave, questionnaire, id_column=id_column,
                                  unit_column=unit_column, weights=weights, strata=strata, cluster=cluster, fpc=fpc,
                                  lonely_psu=lonely_psu, source=csv_file.name[:200])
    except (SampleError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{csv_file}: {exc}; nothing was imported") from None
    click.echo(f"Imported {count} responses of a designed sample into {wave_name} ({questionnaire}); "
               f"analyse with: flask analyze --wave {wave_name} --questionnaire {questionnaire}")


@click.command("analyze")
@with_appcontext
@click.option("--wave", "wave_name", default=None, help="wave name (default: the latest)")
@click.option("--questionnaire", default="citizen", show_default=True)
@click.option("--include-flagged", is_flag=True, help="keep speeders, straight-liners and repeated devices in")
@click.option("--full", is_flag=True, help="rebuild the stored statistics from all responses (default: add the new ones)")
def analyze_command(wave_name: str | None, questionnaire: str, include_flagged: bool, full: bool) -> None:
    """Weight, estimate, shrink and flag a wave's responses; store the results for the pages.

    The same refresh as the background job and the office's 刷新 button (survey/refresh.py); it
    waits for a refresh of the same wave that is running.
    """
    from analysis.errors import AnalysisError
    from survey.models import Wave
    from survey.refresh import refresh
    from survey.results import MarginsError
    from survey.waves import latest_wave

    session = db.session()
    wave = session.scalar(select(Wave).where(Wave.name == wave_name)) if wave_name else latest_wave(session)
    if wave is None:
        raise click.ClickException(f"no wave {wave_name!r}" if wave_name else "no wave yet: create one with create-wave")
    wave_id, name = wave.id, wave.name
    session.rollback()  # the refresh has a transaction of its own
    steps = ["flag", "aggregate", "count", "read", "weight", "store"]  # run_analysis says each (fewer: nothing new)
    try:
        with click.progressbar(length=len(steps), label=f"Analysing {name}") as bar:
            outcome = refresh(wave_id, questionnaire, force=True, wait=True, include_flagged=include_flagged, full=full,
                              progress=lambda _message: bar.update(1))
    except (AnalysisError, MarginsError) as exc:
        raise click.ClickException(str(exc)) from None
    run = session.get(AnalysisRun, outcome.run_id) if outcome.run_id is not None else None
    if run is None:  # the wave was deleted meanwhile
        raise click.ClickException(f"{name}: no analysis was stored")
    city = run.summary["city"]
    run_id, respondents = run.id, run.respondents
    left_out = run.summary["communities_without_responses"]
    quality = run.summary["quality"]
    click.echo(
        f"Data quality: {quality['flagged']} flagged responses {'kept in' if include_flagged else 'left out'} "
        f"(too fast {quality['flag_speeder']}, same choice throughout {quality['flag_straightline']}, "
        f"repeated device {quality['flag_repeat_device']})"
    )
    click.echo(city_figures(run_id, questionnaire, respondents, city))
    if left_out:
        click.echo(f"{len(left_out)} communities had no responses and were left out of the weighting: {', '.join(left_out[:10])}")
    for line in variance_warnings(session, run):
        click.echo(line)


def city_figures(run_id: int, questionnaire: str, respondents: int, city: dict) -> str:
    """Return the CLI's line of city figures; an interval the design cannot carry (None) is 数据不足."""
    low, high = city.get("ci_low"), city.get("ci_high")
    interval = f"95% CI {low:.1f}-{high:.1f}" if low is not None and high is not None else "95% CI 数据不足 (no interval)"
    figures = f"Run {run_id} ({questionnaire}): {respondents:,} responses; city {city['estimate']:.1f} ({interval})"
    if city.get("variance_warning"):
        figures += f" [warning: {city['variance_warning']}]"
    if questionnaire == "citizen" and city.get("points") is not None:
        figures += f", {city['points']:.2f} of 20 points, P(pass a third-party survey) = {city['third_party_prob_pass']:.2f}"
    return figures


VARIANCE_WARNINGS = {
    "single_psu": "lie within one PSU per stratum (design df 0): no variance, no interval, 数据不足",
    "zero_variance": "have identical answers (SE 0): no interval; their flag uses a smoothed variance or is 数据不足",
}


def variance_warnings(session, run: AnalysisRun) -> list[str]:
    """Return the run's warnings: areas without a usable variance by kind and level, the design's lonely strata."""
    rows = session.execute(
        select(AreaResult.variance_warning, AreaResult.level, func.count())
        .where(AreaResult.run_id == run.id, AreaResult.variance_warning.is_not(None), AreaResult.variance_warning != "")
        .group_by(AreaResult.variance_warning, AreaResult.level).order_by(AreaResult.variance_warning, AreaResult.level)
    ).all()
    lines = [f"warning: {count} {level} area(s) {VARIANCE_WARNINGS.get(kind, kind)}" for kind, level, count in rows]
    lonely = (run.summary.get("rake") or {}).get("lonely") or []
    if lonely:
        lines.append(f"warning: {len(lonely)} stratum/strata with a single PSU (lonely PSUs): {', '.join(lonely[:10])}")
    return lines


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(["city", "district", "street", "community", "school", "grid"]), required=True)
@click.option("--area", "area_code", required=True, help="code of the area the account sees")
@click.option("--school", "school_name", default=None, help="school name, for a school account")
@click.password_option(help="asked for when not given; or set STAFF_PASSWORD", envvar="STAFF_PASSWORD")
def create_user_command(username: str, role: str, area_code: str, school_name: str | None, password: str) -> None:
    """Create a staff account: an office seeing one area and below, a school, or a grid worker."""
    from survey.auth import AccountError, create_user

    try:
        with db.write_transaction() as session:
            user = create_user(session, username, password, role, area_code, school_name)
            click.echo(f"Created {role} account {user.username} for {user.area.name} ({area_code})")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


def _area_or_city(session, area_code: str | None) -> Area:
    """Return the area with ``area_code``, or the city when no code is given."""
    area = (session.scalar(select(Area).where(Area.code == area_code)) if area_code
            else session.scalar(select(Area).where(Area.level == "city").limit(1)))
    if area is None:
        raise click.ClickException(f"no area {area_code!r}" if area_code else "no city area; import areas first")
    return area


def _area_and_run(area_code: str | None, wave_name: str | None):
    from survey.reading.dashboard import runs_by_wave

    session = db.session()
    area = _area_or_city(session, area_code)
    runs = runs_by_wave(session)
    run = next((r for r in runs if r.wave.name == wave_name), None) if wave_name else (runs[-1] if runs else None)
    if run is None:
        raise click.ClickException(f"no analysis for wave {wave_name!r}" if wave_name else "no analysis yet: run `flask --app survey analyze`")
    return session, area, run


@click.command("report")
@with_appcontext
@click.option("--area", "area_code", default=None, help="area code (default: the whole city)")
@click.option("--wave", "wave_name", default=None, help="wave name (default: the latest analysed)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def report_command(area_code: str | None, wave_name: str | None, out: Path) -> None:
    """Write the PDF report of an area and wave."""
    from reports.pdf import ReportError
    from survey.reading.reporting import area_report

    session, area, run = _area_and_run(area_code, wave_name)
    with click.progressbar(length=1, label=f"Rendering {area.name} report") as bar:
        try:
            pdf = area_report(session, run, area)
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
        bar.update(1)
    out.write_bytes(pdf)
    click.echo(f"Wrote {out} ({len(pdf) / 1024:.0f} KiB): {area.name}, {run.wave.name}")


@click.command("qr-sheet")
@with_appcontext
@click.option("--area", "area_code", default=None, help="area code (default: the whole city)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-url", default=None, help="address the QR codes point to (default: PUBLIC_BASE_URL, else http://127.0.0.1:$PORT)")
def qr_sheet_command(area_code: str | None, out: Path, base_url: str | None) -> None:
    """Write an A4 PDF of QR codes for every community link in an area."""
    from reports.pdf import ReportError
    from survey.reading.reporting import qr_sheet

    session = db.session()
    area = _area_or_city(session, area_code)
    base = _base_url(base_url)
    with current_app.test_request_context(base_url=base):
        try:
            pdf = qr_sheet(session, area, base)
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
    out.write_bytes(pdf)
    click.echo(f"Wrote {out}: QR codes for {area.name} (links point to {base})")


@click.command("print-questionnaires")
@with_appcontext
@click.option("--questionnaire", "code", required=True, help="questionnaire code, e.g. citizen")
@click.option("--area", "area_code", required=True, help="code of the community the copies are for")
@click.option("--count", required=True, type=int, help="number of copies (1 to 500)")
@click.option("--wave", "wave_name", default=None, help="wave name (default: the open wave fielding the questionnaire, else the next one)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def print_questionnaires_command(code: str, area_code: str, count: int, wave_name: str | None, out: Path) -> None:
    """Write numbered A4 paper questionnaires for a community and record the print run."""
    from reports.pdf import ReportError
    from survey.paper import PrintError, print_questionnaires

    session = db.session()
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise click.ClickException(f"no area {area_code!r}")
    try:
        printed = print_questionnaires(session, code, area, count, wave_name=wave_name)
    except (PrintError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(printed.pdf)
    click.echo(f"Wrote {out}: {printed.copies} copies of {code} for {area.name} ({printed.wave.name}), "
               f"serials {printed.first} to {printed.last}")


@click.command("import-schools")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_schools_command(csv_file: Path) -> None:
    """Import schools and classes (school,district,class,grade,pupils) and give each class its links."""
    from survey.schools import SchoolImportError, import_schools, make_class_links

    try:
        with db.write_transaction() as session:
            schools, classes = import_schools(session, csv_file.read_text(encoding="utf-8"))
            links = make_class_links(session)
    except (SchoolImportError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{csv_file}: {exc}; nothing was imported") from None
    click.echo(f"Imported {classes} classes of {schools} schools; {len(links)} class links (parents and pupils)")


@click.command("housekeeping")
@with_appcontext
def housekeeping_command() -> None:
    """Clear closed waves' device ids, IP hashes and salts; drop expired sessions and login records."""
    from survey.housekeeping import run_once

    done = run_once()
    click.echo("Housekeeping: " + ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in done.items()))


def _user(session, username: str):
    from survey.models import User

    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no account {username!r}")
    return user


@click.command("reset-password")
@with_appcontext
@click.argument("username")
@click.password_option(help="asked for when not given; or set STAFF_PASSWORD", envvar="STAFF_PASSWORD")
def reset_password_command(username: str, password: str) -> None:
    """Set a staff account's password; every session of the account ends."""
    from survey.auth import AccountError, set_password

    try:
        with db.write_transaction() as session:
            set_password(session, _user(session, username), password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"New password set for {username}; its sessions have ended")


@click.command("disable-user")
@with_appcontext
@click.argument("username")
@click.option("--enable", is_flag=True, help="enable the account again instead")
def disable_user_command(username: str, enable: bool) -> None:
    """Disable a staff account (its sessions end at once), or enable it again."""
    from survey.auth import set_active

    with db.write_transaction() as session:
        set_active(session, _user(session, username), enable)
    click.echo(f"{username} {'enabled' if enable else 'disabled; its sessions have ended'}")


@click.command("export")
@with_appcontext
@click.argument("what", type=click.Choice(["responses", "estimates", "problems"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "sav", "dta"]), default="csv", show_default=True)
@click.option("--wave", "wave_name", default=None, help="wave name (default: the latest wave)")
@click.option("--area", "area_code", default=None, help="area code (default: the whole city)")
@click.option("--questionnaire", default="citizen", show_default=True, help="questionnaire code")
@click.option("--labels", is_flag=True, help="write the choice labels instead of the choice codes")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_command(what: str, fmt: str, wave_name: str | None, area_code: str | None, questionnaire: str, labels: bool,
                   out: Path) -> None:
    """Write responses, estimates or the problem list as CSV, XLSX, SPSS .sav or Stata .dta (the office pages' code)."""
    from survey.models import Wave
    from survey.reading.dashboard import runs_by_wave
    from survey.reading.exports import table_for, write
    from survey.waves import latest_wave

    session = db.session()
    area = _area_or_city(session, area_code)
    wave = session.scalar(select(Wave).where(Wave.name == wave_name)) if wave_name else latest_wave(session)
    if wave is None:
        raise click.ClickException(f"no wave {wave_name!r}" if wave_name else "no wave yet")
    run = next((r for r in runs_by_wave(session, questionnaire) if r.wave_id == wave.id), None)
    try:
        table = table_for(session, what, area, wave.id, questionnaire, run.id if run else None)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    with click.progressbar(length=table.total, label=f"Exporting {table.total} rows") as bar:
        written = 0

        def progress(done: int) -> None:
            nonlocal written
            bar.update(done - written)
            written = done

        write(table, fmt, out, labels, progress)
    click.echo(f"Wrote {out} ({out.stat().st_size / 1024:.0f} KiB): {written} rows, {area.name}, {wave.name}")


@click.command("import-questionnaire")
@with_appcontext
@click.argument("xlsx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--code", default=None, help="questionnaire code (default: the settings sheet's form_id)")
def import_questionnaire_command(xlsx_file: Path, code: str | None) -> None:
    """Publish an XLSForm workbook as the next version of its questionnaire (nothing is stored on errors)."""
    from survey.questionnaires import check_xlsform, publish

    checked = check_xlsform(xlsx_file.read_bytes(), xlsx_file.name, code)
    for warning in checked.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not checked.ok or checked.raw is None:  # (ok: a definition and no errors)
        for error in checked.errors:
            click.echo(f"error: {error}", err=True)
        raise click.ClickException(f"{xlsx_file}: {len(checked.errors)} error(s); nothing was published")
    with db.write_transaction() as session:
        published = publish(session, checked.raw)
        code, number = published.version.questionnaire.code, published.version.version
    if not published.created:
        click.echo(f"{xlsx_file} is the same as the published {code} v{number}: nothing was stored")
        return
    asked = checked.raw.get("version")
    note = f" (the file says version {asked}; published versions are numbered in order)" if asked != number else ""
    click.echo(f"Published {code} v{number} from {xlsx_file}{note}; "
               f"field it with: flask create-wave NAME --questionnaire {code} ...")


@click.command("export-questionnaire")
@with_appcontext
@click.argument("code")
@click.option("--version", "number", type=int, default=None, help="version number (default: the latest)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_questionnaire_command(code: str, number: int | None, out: Path) -> None:
    """Write a stored questionnaire version as an XLSForm workbook (.xlsx)."""
    from survey.questionnaires import export_xlsx, find_version

    try:
        version = find_version(db.session(), code, number)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(export_xlsx(version))
    click.echo(f"Wrote {out}: {code} v{version.version}")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="check once, run what is queued, then stop (cron, tests)")
def worker_command(burst: bool) -> None:
    """Refresh stored results in the background: the RQ worker on REDIS_URL, or this process's own thread.

    It loads jieba's dictionary first (no job and no page waits for it), checks for new responses
    every REFRESH_INTERVAL_S seconds and runs the refreshes queued by it, the app servers and the
    city office's 刷新 button. With REDIS_URL: ``flask --app survey worker`` on one or more machines
    (deploy/systemd/survey-worker.service); ``rq worker -w rq.SimpleWorker <queue>`` works too (this command prints the queue's name).
    """
    import threading

    from survey import refresh

    app = app_object()  # RQ's SimpleWorker runs each job here, in this app's context
    refresh.warm_up()
    interval = float(app.config.get("REFRESH_INTERVAL_S", 60)) or 60.0
    stop = threading.Event()
    if app.config.get("REDIS_URL"):
        queued = refresh.check(app)
        click.echo(f"Refresh worker on queue {refresh.queue_name(app)}; queued now: {len(queued)}")
        if not burst:
            threading.Thread(target=refresh.checker_loop, args=(app, interval, stop), daemon=True,
                             name="survey-refresh-check").start()
        # A SimpleWorker: it runs jobs in this process, the app, its pool and the loaded dictionary reused.
        refresh.rq_worker(app).work(burst=burst, logging_level="WARNING")
        stop.set()
        return
    click.echo("Refresh worker in this process (no REDIS_URL)")
    while True:
        queued = refresh.check(app)
        if queued:
            click.echo(f"queued {len(queued)} refresh(es): " + ", ".join(f"wave {w} {c}" for w, c in queued))
        refresh.wait_idle(app, timeout=24 * 3600)
        if burst or stop.wait(interval):
            return
