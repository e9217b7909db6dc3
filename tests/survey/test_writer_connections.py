"""The autocommit connections that store residents' answers on PostgreSQL (survey.db.WriterConnections)."""
from __future__ import annotations

import pytest

from survey import db
from tests.conftest import POSTGRESQL_ONLY, form_fields, full_answers

pytestmark = pytest.mark.parametrize("app", POSTGRESQL_ONLY, indirect=True)


def test_answers_are_stored_on_a_kept_autocommit_connection_closed_with_the_engine(app, client, city):
    for _ in range(2):
        page = client.get(f"/s/{city['A1']}").get_data(as_text=True)
        assert client.post(f"/s/{city['A1']}", data=form_fields(page) | full_answers()).status_code == 200
    engine = app.extensions["db_engine"]
    writers = db.writer_connections(engine)
    assert len(writers._idle) == 1  # taken and given back twice: one connection, kept
    kept = writers._idle[0]
    assert kept.autocommit and not kept.closed
    engine.dispose()
    assert kept.closed and writers._idle == []


def test_a_connection_that_is_not_clean_is_closed_not_kept(app):
    writers = db.writer_connections(app.extensions["db_engine"])
    in_transaction = writers.take()
    in_transaction.autocommit = False
    in_transaction.execute("SELECT 1")  # now inside a transaction, which must not reach the next resident
    closed = writers.take()
    closed.close()
    writers.give_back(in_transaction)
    writers.give_back(closed)
    assert in_transaction.closed and writers._idle == []


def test_no_more_idle_connections_are_kept_than_the_limit(app):
    writers = db.writer_connections(app.extensions["db_engine"])
    taken = [writers.take() for _ in range(writers.keep + 2)]
    for connection in taken:
        writers.give_back(connection)
    assert len(writers._idle) == writers.keep
    assert sum(c.closed for c in taken) == 2
    writers.close_all()
    assert all(c.closed for c in taken)
