"""Command line: ``flask --app survey <command>``."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from survey import db
from survey.areas import AreaImportError, import_areas
from survey.links import make_community_links, public_url
from survey.migrate import upgrade
from survey.models import Area, Link, Questionnaire
from survey.questionnaires import install_bundled
from survey.waves import create_wave


def init_app(app: Flask) -> None:
    for command in (init_db, import_areas_command, create_wave_command, make_links, list_links, seed_demo_command, demo_info,
                    import_margins_command, analyze_command):
        app.cli.add_command(command)


def _parse_date(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-12-01 or 2026-12-01T08:00", param_hint=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
    try:
        text = csv_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{csv_file} is not UTF-8 text; save it as UTF-8 CSV") from None
    try:
        with db.write_transaction() as session:
            count = import_areas(session, text)
    except AreaImportError as exc:
        raise click.ClickException(f"{csv_file}: {exc}; nothing was imported") from None
    click.echo(f"Imported {count} areas from {csv_file}")


@click.command("create-wave")
@with_appcontext
@click.argument("name")
@click.option("--opens", required=True, help="start, e.g. 2026-12-01")
@click.option("--closes", required=True, help="end (exclusive), e.g. 2027-01-01")
@click.option("--questionnaire", "questionnaires", multiple=True, default=["citizen", "minor"], show_default=True)
def create_wave_command(name: str, opens: str, closes: str, questionnaires: tuple[str, ...]) -> None:
    """Create a survey wave fielding the newest version of each questionnaire."""
    try:
        with db.write_transaction() as session:
            wave = create_wave(session, name, _parse_date(opens, "--opens"), _parse_date(closes, "--closes"), list(questionnaires))
            click.echo(f"Created wave {wave.name}: {wave.opens_at:%Y-%m-%d %H:%M} to {wave.closes_at:%Y-%m-%d %H:%M} UTC")
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
def list_links(questionnaire: str | None) -> None:
    """Print every link as tab-separated area code, area name, questionnaire, channel, URL."""
    session = db.session()
    query = select(Link).join(Questionnaire).outerjoin(Area, Link.area_id == Area.id).order_by(Questionnaire.code, Area.code)
    if questionnaire:
        query = query.where(Questionnaire.code == questionnaire)
    with current_app.test_request_context(base_url=current_app.config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000"):
        for link in session.scalars(query):
            area = link.area
            state = "" if link.enabled else "\tdisabled"
            click.echo(f"{area.code if area else '-'}\t{area.name if area else '-'}\t{link.questionnaire.code}\t{link.channel}\t{public_url(link)}{state}")


@click.command("seed-demo")
@with_appcontext
@click.option("--respondents", default=3000, show_default=True, help="synthetic responses to create")
@click.option("--seed", default=7, show_default=True)
@click.option("--if-missing", is_flag=True, help="do nothing when the demo city exists already")
def seed_demo_command(respondents: int, seed: int, if_missing: bool) -> None:
    """Create a demo city: areas, an open wave, community links and synthetic responses."""
    from survey.demo import demo_exists, seed_demo

    upgrade(db.engine())
    if if_missing and demo_exists(db.session()):
        click.echo("Demo city exists already")
        return
    try:
        with db.write_transaction() as session, click.progressbar(length=respondents, label="Synthetic responses") as bar:
            summary = seed_demo(session, respondents=respondents, seed=seed, progress=bar.update)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Demo city ready: wave {summary['wave']}, {summary['links']} community links, {summary['responses']} responses")


@click.command("demo-info")
@with_appcontext
@click.option("--port", default=5000, show_default=True)
def demo_info(port: int) -> None:
    """Print the demo city's survey link and logins."""
    from survey.demo import demo_links

    base = current_app.config.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{port}"
    links = demo_links(db.session())
    if not links:
        raise click.ClickException("no demo city; run: flask --app survey seed-demo")
    click.echo("")
    click.echo(f"Survey link: {base}/s/{links[0].token}   ({links[0].area.name}, citizen questionnaire)")
    click.echo("All community links: flask --app survey list-links")
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


@click.command("analyze")
@with_appcontext
@click.option("--wave", "wave_name", default=None, help="wave name (default: the latest)")
@click.option("--questionnaire", default="citizen", show_default=True)
def analyze_command(wave_name: str | None, questionnaire: str) -> None:
    """Weight, estimate, shrink and flag a wave's responses; store the results for the pages."""
    from analysis.errors import AnalysisError
    from survey.models import Wave
    from survey.results import MarginsError, run_analysis
    from survey.waves import latest_wave

    session = db.session()
    wave = session.scalar(select(Wave).where(Wave.name == wave_name)) if wave_name else latest_wave(session)
    if wave is None:
        raise click.ClickException(f"no wave {wave_name!r}" if wave_name else "no wave yet: create one with create-wave")
    steps = ["aggregate", "weight", "store"]
    try:
        with db.write_transaction(session), click.progressbar(length=len(steps), label=f"Analysing {wave.name}") as bar:
            run = run_analysis(session, wave, questionnaire, progress=lambda _message: bar.update(1))
            city = run.summary["city"]
            run_id, respondents = run.id, run.respondents
    except (AnalysisError, MarginsError) as exc:
        raise click.ClickException(str(exc)) from None
    left_out = run.summary["communities_without_responses"]
    click.echo(
        f"Run {run_id}: {respondents:,} responses; city {city['estimate']:.1f} "
        f"(95% CI {city['ci_low']:.1f}-{city['ci_high']:.1f}), {city['points']:.2f} of 20 points, "
        f"P(pass a third-party survey) = {city['third_party_prob_pass']:.2f}"
    )
    if left_out:
        click.echo(f"{len(left_out)} communities had no responses and were left out of the weighting: {', '.join(left_out[:10])}")
