"""Migration 0009: the rectification tables and the role 'unit', without losing sessions or the export log."""
from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from survey import create_app, db
from survey.migrate import alembic_config, current_revision, upgrade
from tests.conftest import BACKENDS, POSTGRES_URL, _reset_postgres, dispose

USER = ("INSERT INTO staff_user (id, username, password_hash, role, area_id, active, created_at) "
        "VALUES (:id, :name, 'x', :role, 1, true, '2026-01-01T00:00:00+00:00')")


@pytest.fixture(params=BACKENDS)
def old_app(request, tmp_path):
    if request.param == "postgresql":
        _reset_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-secret", "HOUSEKEEPING_INTERVAL_S": 0})
    with app.app_context():
        upgrade(db.engine(), "0008")
    yield app
    dispose(app)


def test_migration_0009_adds_the_unit_role_and_keeps_sessions_and_the_export_log(old_app):
    with old_app.app_context():
        engine = db.engine()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO area (id, code, name, level, path) VALUES (1, 'C', '市', 'city', '/1/')"))
            conn.execute(text(USER), {"id": 1, "name": "city", "role": "city"})
            conn.execute(text("INSERT INTO staff_session (token_hash, user_id, created_at, last_seen_at) "
                              "VALUES ('t', 1, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"))
            conn.execute(text("INSERT INTO export_log (user_id, created_at, what, file_format, rows) "
                              "VALUES (1, '2026-01-01T00:00:00+00:00', 'problems', 'csv', 3)"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(USER), {"id": 2, "name": "unit1", "role": "unit"})
        upgrade(engine, "0009")  # this migration alone; later ones have tests of their own
        assert current_revision(engine) == "0009"
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM staff_session")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM export_log")).scalar() == 1
            conn.execute(text(USER), {"id": 2, "name": "unit1", "role": "unit"})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(USER), {"id": 3, "name": "x", "role": "nobody"})
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
        with engine.begin() as conn:  # the unit account went; the office's session and log stayed
            assert conn.execute(text("SELECT username FROM staff_user")).scalars().all() == ["city"]
            assert conn.execute(text("SELECT count(*) FROM staff_session")).scalar() == 1
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(USER), {"id": 2, "name": "unit1", "role": "unit"})
