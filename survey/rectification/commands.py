"""Flask commands of the rectification area: ``flask import-units FILE.csv``, ``flask create-unit-account``."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Blueprint
from flask.cli import with_appcontext
from sqlalchemy import select

from survey import db
from survey.auth import AccountError, create_user
from survey.csv_files import import_csv_file
from survey.models import Area
from survey.rectification.units import UnitError, import_units


def register(bp: Blueprint) -> None:
    """Add the commands to ``bp`` (a blueprint with cli_group=None: they are top-level ``flask`` commands)."""
    bp.cli.add_command(import_units_command)
    bp.cli.add_command(create_unit_account_command)


@click.command("import-units")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_units_command(csv_file: Path) -> None:
    """Import responsible units from CSV: name,contact,phone,communities,grids (UTF-8, with or without BOM)."""
    count = import_csv_file(csv_file, import_units, UnitError)
    click.echo(f"Imported {count} units from {csv_file}")


@click.command("create-unit-account")
@with_appcontext
@click.argument("username")
@click.option("--unit", "unit_name", required=True, help="the unit's name, as imported")
@click.password_option(help="asked for when not given; or set STAFF_PASSWORD", envvar="STAFF_PASSWORD")
def create_unit_account_command(username: str, unit_name: str, password: str) -> None:
    """Create a unit account: it sees its unit's communities and tasks, nothing else."""
    try:
        with db.write_transaction() as session:
            city = session.scalar(select(Area).where(Area.level == "city").order_by(Area.id).limit(1))
            if city is None:
                raise AccountError("no city yet; import areas first")
            user = create_user(session, username, password, "unit", city.code, unit_name=unit_name)
            click.echo(f"Created unit account {user.username} for {unit_name}")
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
