"""Incremental aggregation: the analysis's two GROUP BYs kept as stored sufficient statistics.

For each wave and questionnaire the tables of ``survey/models/aggregates.py`` hold, per unit area
x weighting-attribute cell (``aggregate_cell``) x version x channel x flagged, the count, sum and
sum of squares of respondent scores, and per cell x version x flagged x item x choice the answer
counts, of every response with an id up to the state's **watermark**. A refresh

1. checks the state: the same plan (unit, weighting attributes, versions) and the same count and
   sum of ids of the responses up to the watermark (a deleted response, or one that committed below
   the watermark after it was read, changes them); otherwise, or with ``full``, it starts over;
2. moves the aggregated responses whose data-quality flag state changed (``mark_wave`` runs first:
   the speeder threshold moves with every new response) from one flag state to the other: the
   responses counted as flagged are listed in ``aggregate_flagged``, so the change is a set
   difference, whoever changed the flags;
3. adds the responses after the watermark, up to the newest **settled** watermark, and moves the
   watermark there;
4. counts the responses after that (not settled yet) on the fly, without storing them;
5. reads the statistics back (flagged ones left out unless ``include_flagged``) as the frames
   :func:`survey.plans.score_cells` and :func:`survey.plans.choice_counts` return (or, given
   the choices' values, the item cells :func:`analysis.scoring.choice_cells` makes of the latter).

On PostgreSQL the tables are UNLOGGED (migration 0012): derived data, emptied all together, state
included, by a crash, after which the next refresh rebuilds them.

Late commits. PostgreSQL takes a response's id from a sequence when the row is inserted, before
the transaction commits, so a response with an id below the highest visible one may still become
visible later. A watermark W read at server time T is *settled* when no other transaction of the
database that started at or before T is still open (``pg_stat_activity``): every id up to W was
taken by a transaction that started before T, so all of them are committed or gone. Each refresh
records its (T, W); the watermark moves to the newest settled one (usually its own, checked after
the flag work; otherwise that of an earlier refresh), and what lies above it is counted as the
unstored tail, so it shows at once and is stored by a later refresh. A transaction that stays
open for long (an import) only keeps the watermark back; nothing is lost, nothing counted twice.
(The app's database role sees its own sessions in ``pg_stat_activity``; responses written under
another role that is not a superuser's would not be waited for: the checksum then rebuilds.)

A refresh that finds nothing new does not call :meth:`Aggregator.update` at all: the state holding
exactly what the newest run analysed (:meth:`Aggregator.holds_up_to`: the same plan, nothing after the
watermark, nothing pending) is enough, so a response deleted or a flag set by hand is then found by the
next refresh that has anything new (its checksum and flag difference), or by ``flask analyze --full``.

What changes stored responses besides their flags and new ones (an edit of answers, scores,
attributes or areas by hand or by a migration) must be followed by ``flask analyze --full``.
On SQLite one writer at a time takes max(id) + 1 under the write lock, so the watermark read in
the refresh's write transaction is settled at once. The checksum of step 1 is the safety net.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.orm import Session

from analysis.scoring import choice_cells
from survey.db import driver_connection, oldest_open_transaction, settled_at
from survey.models import AggregateChoice, AggregateFlagged, AggregateState, Area, Response
from survey.plans import choice_counts, score_cells

STATE_ROWS = (AggregateChoice, AggregateFlagged)  # a state's rows without a foreign key to it (migration 0012)
PENDING_KEPT = 20  # earlier refreshes' watermarks remembered while not yet settled
FLAGGED_SQL = "(r.flag_speeder OR r.flag_straightline OR r.flag_repeat_device)"


@dataclass
class Outcome:
    """What the aggregation did, for the run's summary."""

    mode: str  # "full" (built from all responses) or "incremental"
    reason: str = ""
    added: int = 0  # responses stored (scored or not) in this refresh
    moved: int = 0  # stored responses whose flag state changed
    tail: int = 0  # responses after the watermark counted but not stored (not settled yet)
    watermark: int = 0
    upto: int = 0  # the highest response id analysed (stored or in the tail)
    responses: int = 0  # responses (scored or not) with an id up to ``upto``: the stored ones and the tail

    def as_dict(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "added": self.added, "moved": self.moved,
                "tail": self.tail, "watermark": self.watermark, "upto": self.upto, "responses": self.responses}


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def cell_key_sql(session: Session, attributes: tuple[str, ...]) -> tuple[str, dict]:
    """Return the SQL of a response's attribute values as a JSON array text, and its parameters."""
    if not attributes:
        return "'[]'", {}
    params = {f"attr{i}": name for i, name in enumerate(attributes)}
    if _postgres(session):
        values = ", ".join(f"r.attributes ->> :attr{i}" for i in range(len(attributes)))
        return f"jsonb_build_array({values})::text", params
    params = {key: '$."' + name.replace('"', '""') + '"' for key, name in params.items()}
    values = ", ".join(f"json_extract(r.attributes, :attr{i})" for i in range(len(attributes)))
    return f"json_array({values})", params


class Aggregator:
    """The stored statistics of one wave and questionnaire under one plan."""

    def __init__(self, session: Session, wave_id: int, questionnaire_code: str, version_ids: list[int], plan,
                 settled: Callable[[Session, datetime, datetime | None], bool] | None = None) -> None:
        self.session, self.wave_id, self.code = session, wave_id, questionnaire_code
        self.versions = sorted(version_ids)
        self.plan = plan
        self.plan_key = {"unit": plan.unit, "attributes": list(plan.attributes), "versions": self.versions}
        self.key, key_params = cell_key_sql(session, plan.attributes)
        self.params = {"wave": wave_id, "versions": self.versions, **key_params}
        self.settled = settled or settled_at
        self.state: AggregateState | None = None
        self.fresh = False  # the state was just made: its tables hold nothing yet

    @property
    def current(self) -> AggregateState:
        """The state :meth:`update` found or made (every step and read below runs after it)."""
        if self.state is None:
            raise RuntimeError("no aggregate state yet: Aggregator.update() comes first")
        return self.state

    # --- SQL pieces ---------------------------------------------------------------------------

    def _exec(self, sql: str, **params):
        statement = text(sql)
        if ":versions" in sql:
            statement = statement.bindparams(bindparam("versions", expanding=True))
        return self.session.execute(statement, {**self.params, "state": self.state.id, **params}
                                    if self.state is not None else {**self.params, **params})

    @property
    def _base(self) -> str:
        return ("r.wave_id = :wave AND r.questionnaire_version_id IN :versions AND r.score IS NOT NULL "
                "AND r.area_id IS NOT NULL")

    def _scratch(self) -> tuple[str, str]:
        """Return the kind and name prefix of the scratch tables of one batch.

        PostgreSQL reads a temporary table in the session's own process only, so a GROUP BY over
        the answers of a full build could not run in parallel; an unlogged table of this state
        (made and dropped in the refresh's transaction: a failed refresh leaves none) can, where
        the role may create tables. A refresh's few new responses, and SQLite: a temporary table
        (its answers are found by index; a parallel plan would scan them all).
        """
        if self.fresh and _postgres(self.session) and self.session.execute(
                text("SELECT has_schema_privilege(current_schema(), 'CREATE')")).scalar():
            return "UNLOGGED", f"aggregate_scratch_{int(self.current.id)}"
        return "TEMPORARY", "aggregate_scratch"

    def _add(self, where: str, flagged: str, sign: int, params: dict) -> None:
        """Add (sign 1) or take away (-1) the responses ``where`` selects, counted as ``flagged``.

        Each response's cell is looked up once, into a scratch table that the answers join on
        their response id (not a JSON expression per answer). The answer counts are grouped into
        a second scratch table first: ``CREATE TABLE AS`` may run in parallel, ``INSERT ... SELECT``
        may not (PostgreSQL), and the GROUP BY over 10M answers is most of a full build.
        """
        conflict = "ON CONFLICT ({keys}) DO UPDATE SET {sets}"
        kind, prefix = self._scratch()
        if self.fresh:  # nothing to add to: plain INSERTs (each group is one new row)
            conflict = ""
        batch, sums = f"{prefix}_batch", f"{prefix}_sums"
        for table in (batch, sums):
            self._exec(f"DROP TABLE IF EXISTS {table}")
        if self.fresh:
            self._cells_of_all(kind, prefix, where, flagged, params)
        else:  # a few responses, found by id: their cells looked up directly
            if sign > 0:
                self._exec(f"""
                    INSERT INTO aggregate_cell (state_id, area_id, attrs)
                    SELECT DISTINCT :state, r.area_id, {self.key} FROM response r WHERE {self._base} AND {where}
                    ON CONFLICT (state_id, area_id, attrs) DO NOTHING""", **params)
            self._exec(f"""
                CREATE {kind} TABLE {batch} AS
                SELECT r.id, c.id AS cell_id, r.questionnaire_version_id AS version_id, r.channel,
                       {flagged} AS flagged, r.score
                FROM response r
                JOIN aggregate_cell c ON c.state_id = :state AND c.area_id = r.area_id AND c.attrs = {self.key}
                WHERE {self._base} AND {where}""", **params)
        if _postgres(self.session):
            self._exec(f"ANALYZE {batch}")  # a few new ones: the answers' index; all: a (parallel) hash join
        self._exec(f"""
            INSERT INTO aggregate_score (state_id, cell_id, version_id, channel, flagged, n, total, total_sq)
            SELECT :state, t.cell_id, t.version_id, t.channel, t.flagged,
                   {sign} * count(*), {sign} * sum(t.score), {sign} * sum(t.score * t.score)
            FROM {batch} t WHERE true
            GROUP BY t.cell_id, t.version_id, t.channel, t.flagged
            """ + conflict.format(
                keys="state_id, cell_id, version_id, channel, flagged",
                sets="n = aggregate_score.n + excluded.n, total = aggregate_score.total + excluded.total, "
                     "total_sq = aggregate_score.total_sq + excluded.total_sq"))
        # The batch's id range as numbers the planner sees: a refresh's new responses are a short range
        # whose answers it then reads by index (it scanned all 10M answers for them otherwise); a full
        # build's range is all of them (one hash join).
        low, high = self._exec(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {batch}").one()
        self._exec(f"""
            CREATE {kind} TABLE {sums} AS
            SELECT t.cell_id, t.version_id, t.flagged, a.item_code, a.choice_code, count(*) AS n
            FROM {batch} t JOIN answer a ON a.response_id = t.id
            WHERE a.choice_code IS NOT NULL AND a.response_id BETWEEN :low AND :high
            GROUP BY t.cell_id, t.version_id, t.flagged, a.item_code, a.choice_code""", low=int(low), high=int(high))
        self._exec(f"""
            INSERT INTO aggregate_choice (state_id, cell_id, version_id, flagged, item_code, choice_code, n)
            SELECT :state, s.cell_id, s.version_id, s.flagged, s.item_code, s.choice_code, {sign} * s.n
            FROM {sums} s WHERE true
            """ + conflict.format(keys="state_id, cell_id, version_id, flagged, item_code, choice_code",
                                  sets="n = aggregate_choice.n + excluded.n"))
        self._exec(f"DROP TABLE {sums}")
        self._exec(f"DROP TABLE {batch}")

    def _cells_of_all(self, kind: str, prefix: str, where: str, flagged: str, params: dict) -> None:
        """Make a new state's cells and the batch table of its responses in one pass over them.

        Each response's cell key is worked out once into a scratch table, from which the cells are
        made and which the cells join (a full build read the responses twice for them).
        """
        raw, batch = f"{prefix}_raw", f"{prefix}_batch"
        self._exec(f"DROP TABLE IF EXISTS {raw}")
        self._exec(f"""
            CREATE {kind} TABLE {raw} AS
            SELECT r.id, r.area_id, {self.key} AS attrs, r.questionnaire_version_id AS version_id, r.channel,
                   {flagged} AS flagged, r.score
            FROM response r WHERE {self._base} AND {where}""", **params)
        self._exec(f"INSERT INTO aggregate_cell (state_id, area_id, attrs) "
                   f"SELECT DISTINCT :state, t.area_id, t.attrs FROM {raw} t")
        if _postgres(self.session):
            # The planner knows nothing of a new state's cells or of a scratch table: without this it looks the
            # cell of each of a million responses up by index (a minute) instead of one hash join.
            self._exec(f"ANALYZE {raw}")
            self._exec("ANALYZE aggregate_cell")
        self._exec(f"""
            CREATE {kind} TABLE {batch} AS
            SELECT t.id, c.id AS cell_id, t.version_id, t.channel, t.flagged, t.score
            FROM {raw} t JOIN aggregate_cell c ON c.state_id = :state AND c.area_id = t.area_id AND c.attrs = t.attrs""")
        self._exec(f"DROP TABLE {raw}")

    # --- the steps ------------------------------------------------------------------------------

    def _checksum(self, upto: int) -> tuple[int, int]:
        count, ids = self._exec(
            "SELECT count(*), coalesce(sum(r.id), 0) FROM response r "
            "WHERE r.wave_id = :wave AND r.questionnaire_version_id IN :versions AND r.id <= :upto", upto=upto
        ).one()
        return int(count), int(ids)

    def _start_over(self) -> AggregateState:
        old = select(AggregateState.id).where(AggregateState.wave_id == self.wave_id,
                                              AggregateState.questionnaire_code == self.code).scalar_subquery()
        for model in STATE_ROWS:  # no foreign key: deleted here, not by the state's cascade
            self.session.execute(delete(model).where(model.state_id == old).execution_options(synchronize_session=False))
        self.session.execute(delete(AggregateState).where(AggregateState.wave_id == self.wave_id,
                                                          AggregateState.questionnaire_code == self.code))
        self.state = state = AggregateState(wave_id=self.wave_id, questionnaire_code=self.code, plan=self.plan_key,
                                            watermark=0, responses=0, id_sum=0, pending=[])
        self.session.add(state)
        self.session.flush()
        for model in STATE_ROWS:  # rows a state deleted by hand (a wave's cascade) left under an id now reused (SQLite)
            self.session.execute(delete(model).where(model.state_id == state.id)
                                 .execution_options(synchronize_session=False))
        self.fresh = True
        return state

    def _move_changed_flags(self) -> int:
        """Move stored responses whose flag state changed since they were counted; return how many."""
        stored = "EXISTS (SELECT 1 FROM aggregate_flagged f WHERE f.state_id = :state AND f.response_id = r.id)"
        upto = "r.id <= :upto"
        newly = f"{upto} AND {FLAGGED_SQL} AND NOT {stored}"
        cleared = f"{upto} AND NOT {FLAGGED_SQL} AND {stored}"
        params = {"upto": self.current.watermark}
        # One pass over each of the two sets, the partial index of flagged responses (migration 0012) and the
        # flagged list, joined on the id (not two anti-joins that each read both): not every response of the
        # wave. A stored response still exists (the checksum said so).
        flagged_now, cleared_now = (int(count) for count in self._exec(f"""
            SELECT count(*) FILTER (WHERE f.response_id IS NULL), count(*) FILTER (WHERE r.id IS NULL)
            FROM (SELECT r.id FROM response r WHERE {self._base} AND {upto} AND {FLAGGED_SQL}) r
            FULL JOIN (SELECT response_id FROM aggregate_flagged WHERE state_id = :state) f ON f.response_id = r.id""",
            **params).one())
        if flagged_now:
            self._add(newly, "true", 1, params)
            self._add(newly, "false", -1, params)
        if cleared_now:
            self._add(cleared, "false", 1, params)
            self._add(cleared, "true", -1, params)
        if flagged_now or cleared_now:
            self._exec(f"INSERT INTO aggregate_flagged (state_id, response_id) "
                       f"SELECT :state, r.id FROM response r WHERE {self._base} AND {newly}", **params)
            self._exec(f"DELETE FROM aggregate_flagged WHERE state_id = :state AND EXISTS "
                       f"(SELECT 1 FROM response r WHERE r.id = aggregate_flagged.response_id AND NOT {FLAGGED_SQL})")
            self._exec("DELETE FROM aggregate_score WHERE state_id = :state AND n = 0")
            self._exec("DELETE FROM aggregate_choice WHERE state_id = :state AND n = 0")
        return flagged_now + cleared_now

    def _store_range(self, after: int, upto: int) -> int:
        """Add the responses with ``after < id <= upto`` and move the watermark to ``upto``."""
        params = {"after": after, "upto": upto}
        where = "r.id > :after AND r.id <= :upto"
        self._add(where, FLAGGED_SQL, 1, params)
        self._exec(f"INSERT INTO aggregate_flagged (state_id, response_id) "
                   f"SELECT :state, r.id FROM response r WHERE {self._base} AND {where} AND {FLAGGED_SQL}", **params)
        count, ids = self._exec(
            "SELECT count(*), coalesce(sum(r.id), 0) FROM response r "
            f"WHERE r.wave_id = :wave AND r.questionnaire_version_id IN :versions AND {where}", **params).one()
        state = self.current
        state.watermark = upto
        state.responses += int(count)
        state.id_sum += int(ids)
        return int(count)

    def _read_mark(self) -> tuple[int, datetime]:
        """Return the highest response id of the wave's versions and the server time after reading it."""
        highest = self._exec("SELECT coalesce(max(r.id), 0) FROM response r "
                             "WHERE r.wave_id = :wave AND r.questionnaire_version_id IN :versions").scalar()
        if _postgres(self.session):
            now = self.session.execute(text("SELECT clock_timestamp()")).scalar_one()
        else:
            now = datetime.now(UTC)
        return int(highest), now

    def holds_up_to(self, upto: int) -> bool:
        """Return whether the stored statistics hold every response of the wave's versions up to ``upto`` and no
        other, under this plan, with nothing after it and nothing unsettled: two index look-ups, no count.

        What it cannot see (a response deleted by hand, a flag set by hand: what :meth:`update`'s checksum and
        flag difference catch) waits for the next refresh that has anything new, or ``flask analyze --full``.
        """
        stored = self.session.scalar(select(AggregateState).where(
            AggregateState.wave_id == self.wave_id, AggregateState.questionnaire_code == self.code))
        if stored is None or stored.plan != self.plan_key or stored.watermark != upto or stored.pending:
            return False
        highest, _ = self._read_mark()
        return highest == upto

    def update(self, full: bool = False) -> Outcome:
        """Bring the stored statistics up to the newest settled watermark (see the module's text)."""
        if _postgres(self.session):  # hash the 10M answers of a full build in memory, not on disk
            self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        highest, read_at = self._read_mark()
        self.state = stored = self.session.scalar(select(AggregateState).where(
            AggregateState.wave_id == self.wave_id, AggregateState.questionnaire_code == self.code))
        reason = ""
        if full:
            reason = "asked for"
        elif stored is None:
            reason = "no stored statistics yet"
        elif stored.plan != self.plan_key:
            reason = "the plan changed (margins, attributes or versions)"
        elif self._checksum(stored.watermark) != (stored.responses, stored.id_sum):
            reason = "responses up to the watermark changed (deleted, or committed late)"
        outcome = Outcome("full" if reason else "incremental", reason)
        if reason or stored is None:  # (a missing state always comes with a reason)
            state = self._start_over()
        else:
            state = stored
            outcome.moved = self._move_changed_flags()
        candidates = [(datetime.fromisoformat(t), int(w)) for t, w in state.pending] + [(read_at, highest)]
        oldest_open = oldest_open_transaction(self.session)
        safe = [w for t, w in candidates if self.settled(self.session, t, oldest_open)]
        target = max([state.watermark, *safe])
        if target > state.watermark:
            outcome.added = self._store_range(state.watermark, target)
            if outcome.mode == "full" and _postgres(self.session):  # fresh tables: plan the reads on real counts
                self.session.execute(text("ANALYZE aggregate_cell, aggregate_score, aggregate_choice, aggregate_flagged"))
        self.fresh = False
        state.pending = [[t.isoformat(), w] for t, w in candidates if w > target][-PENDING_KEPT:]
        state.updated_at = datetime.now(UTC)
        self.session.flush()
        outcome.watermark = state.watermark
        self.tail_upto = highest
        return outcome

    # --- reading back ---------------------------------------------------------------------------

    def frames(self, include_flagged: bool, areas: dict[int, Area], values: Mapping[tuple, float] | None = None,
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return the stored statistics as (score cells, choice counts) frames of the unit level.

        With ``values`` ((version id, item, choice) -> value), the second frame is the item cells
        :func:`analysis.scoring.choice_cells` makes of the choice counts, worked out on the cell ids.
        """
        keep = "" if include_flagged else "AND NOT s.flagged"
        scores = self._rows(f"""
            SELECT s.cell_id, s.channel, CAST(sum(s.n) AS BIGINT), sum(s.total), sum(s.total_sq)
            FROM aggregate_score s WHERE s.state_id = :state {keep} GROUP BY s.cell_id, s.channel""")
        if include_flagged:
            choices = self._rows("""
                SELECT s.cell_id, s.version_id, s.item_code, s.choice_code, CAST(sum(s.n) AS BIGINT)
                FROM aggregate_choice s WHERE s.state_id = :state
                GROUP BY s.cell_id, s.version_id, s.item_code, s.choice_code""")
        else:  # one row per key already
            choices = self._rows("""
                SELECT s.cell_id, s.version_id, s.item_code, s.choice_code, s.n
                FROM aggregate_choice s WHERE s.state_id = :state AND NOT s.flagged""")
        codes = {area.id: area.code for area in areas.values() if area.level == self.plan.unit}
        cells = {cell_id: (codes[area_id], *json.loads(attrs))
                 for cell_id, area_id, attrs in self._rows("SELECT id, area_id, attrs FROM aggregate_cell "
                                                           "WHERE state_id = :state")
                 if area_id in codes}
        scored = self._frame(scores, cells, ["channel", "n", "total", "total_sq"])
        if values is not None:
            return scored, self._item_frame(choices, cells, values)
        return scored, self._frame(choices, cells, ["version_id", "item", "choice", "n"])

    def _item_frame(self, rows: list[tuple], cells: dict[int, tuple], values: Mapping[tuple, float]) -> pd.DataFrame:
        """Return choice count rows (cell id, version id, item, choice, n) as item cells [item, *keys, n, total, total_sq].

        The rows and order :func:`analysis.scoring.choice_cells` gives for the choice counts frame (a
        choice without a value and a cell with a missing key left out, sorted by item and keys), grouped
        on integer codes: the key strings are spread only over the groups, not over every count.
        """
        keys = [self.plan.unit, *self.plan.attributes]
        # Only complete cells (the GROUP BY of choice_cells leaves missing keys out), in the order of their keys.
        ranked = sorted((key, cell_id) for cell_id, key in cells.items() if all(k is not None for k in key))
        columns = ["item", *keys, "n", "total", "total_sq"]
        if not rows or not ranked or not values:
            return pd.DataFrame(columns=columns)
        grid = np.empty((len(rows), 5), dtype=object)
        grid[:] = rows  # one pass over the tuples (zip(*rows) takes a quarter of a second for 230k rows)
        cell = pd.Index([cell_id for _, cell_id in ranked]).get_indexer(grid[:, 0].astype(np.int64))
        # Each column factorized (a hash pass), the value looked up in a table of the few distinct combinations.
        version, version_names = pd.factorize(grid[:, 1].astype(np.int64))
        item, item_names = pd.factorize(grid[:, 2])
        choice, choice_names = pd.factorize(grid[:, 3])
        counts = grid[:, 4].astype(np.int64)
        table = np.full((len(version_names), len(item_names), len(choice_names)), np.nan)
        where = [{name: i for i, name in enumerate(names)} for names in (version_names, item_names, choice_names)]
        for (version_id, item_code, choice_code), worth in values.items():
            at = (where[0].get(version_id), where[1].get(item_code), where[2].get(choice_code))
            if None not in at:
                table[at] = worth
        value = table[version, item, choice]
        keep = (cell >= 0) & ~np.isnan(value)
        value, n = value[keep], counts[keep]
        items = np.asarray(item_names, dtype=object)
        rank = np.empty(len(items), dtype=np.int64)
        rank[np.argsort(items.astype(str), kind="stable")] = np.arange(len(items))  # items in name order, as the GROUP BY
        group = rank[item[keep]] * len(ranked) + cell[keep]  # item first: the order of choice_cells
        present, inverse = np.unique(group, return_inverse=True)
        weighted = n * value
        out = {"item": items[np.argsort(rank)][present // len(ranked)]}
        for i, name in enumerate(keys):
            column = np.empty(len(ranked), dtype=object)
            column[:] = [key[i] for key, _ in ranked]
            out[name] = column[present % len(ranked)]
        out["n"] = np.bincount(inverse, weights=n, minlength=len(present)).astype(np.int64)
        out["total"] = np.bincount(inverse, weights=weighted, minlength=len(present))
        out["total_sq"] = np.bincount(inverse, weights=n * value**2, minlength=len(present))
        return pd.DataFrame(out, columns=columns)

    def _rows(self, sql: str) -> list[tuple]:
        """Return the rows of a query whose only parameter is ``:state`` as plain tuples.

        On PostgreSQL through the driver's cursor of the session's connection: SQLAlchemy's Row
        objects cost ten times psycopg's own fetch for the few hundred thousand choice counts.
        """
        if not _postgres(self.session):
            return [tuple(row) for row in self._exec(sql)]
        cursor = driver_connection(self.session).cursor()
        with cursor:
            return cursor.execute(sql.replace(":state", "%(state)s"), {"state": self.current.id}).fetchall()

    def _frame(self, rows: list[tuple], cells: dict[int, tuple], rest: list[str]) -> pd.DataFrame:
        """Return rows (cell id, *rest) as a frame [unit, *attributes, *rest] of the cells of unit areas."""
        keys = [self.plan.unit, *self.plan.attributes]
        raw = pd.DataFrame.from_records(rows, columns=["cell", *rest], nrows=len(rows))
        raw = raw[raw["cell"].isin(list(cells))].reset_index(drop=True)
        # One take per key column; object arrays keep a missing attribute value as None, as the GROUP BY returns it.
        position = pd.Index(list(cells)).get_indexer(raw["cell"])
        columns = {}
        for i, key in enumerate(keys):
            values = np.empty(len(cells), dtype=object)
            values[:] = [cell[i] for cell in cells.values()]
            columns[key] = pd.Series(values[position], dtype=object)
        return pd.DataFrame(columns | {c: raw[c] for c in rest}, columns=[*keys, *rest])


def combine(stored: pd.DataFrame, tail: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return the sum of two statistics frames by ``keys`` (missing attribute values are a key too)."""
    if tail.empty:
        return stored
    if stored.empty:
        return tail
    values = [c for c in stored.columns if c not in keys]
    both = pd.concat([stored, tail], ignore_index=True)
    return both.groupby(keys, dropna=False, sort=False)[values].sum().reset_index()


def aggregated_frames(session: Session, wave_id: int, questionnaire_code: str, version_ids: list[int], plan,
                      include_flagged: bool = False, full: bool = False, settled: Callable | None = None,
                      values: Mapping[tuple, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, Outcome]:
    """Update the stored statistics and return (score cells, choice counts, what was done).

    With ``values`` ((version id, item, choice) -> value), item cells instead of choice counts
    (:func:`analysis.scoring.choice_cells` of them: the same rows, in the same order).
    """
    aggregator, outcome = update_aggregates(session, wave_id, questionnaire_code, version_ids, plan, full, settled)
    cells, choices = read_aggregates(aggregator, outcome, include_flagged, values)
    return cells, choices, outcome


def update_aggregates(session: Session, wave_id: int, questionnaire_code: str, version_ids: list[int], plan,
                      full: bool = False, settled: Callable | None = None) -> tuple[Aggregator, Outcome]:
    """Bring the stored statistics up to date; return the aggregator (for :func:`read_aggregates`) and what was done.

    The outcome's ``tail`` and ``upto`` already say what lies after the watermark (one count by id), so
    a caller can tell that nothing changed before reading anything back.
    """
    aggregator = Aggregator(session, wave_id, questionnaire_code, version_ids, plan, settled)
    outcome = aggregator.update(full)
    after, upto = outcome.watermark, aggregator.tail_upto
    if upto > after:
        outcome.tail = session.scalar(
            select(func.count()).select_from(Response).where(
                Response.wave_id == wave_id, Response.questionnaire_version_id.in_(version_ids),
                Response.id > after, Response.id <= upto)) or 0
    outcome.upto = max(upto, after)
    outcome.responses = aggregator.current.responses + outcome.tail
    return aggregator, outcome


def read_aggregates(aggregator: Aggregator, outcome: Outcome, include_flagged: bool = False,
                    values: Mapping[tuple, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the stored statistics with the unsettled tail counted on the fly (see :func:`aggregated_frames`)."""
    session, plan = aggregator.session, aggregator.plan
    wave_id, version_ids = aggregator.wave_id, aggregator.versions
    areas = {a.id: a for a in session.scalars(select(Area))}
    cells, choices = aggregator.frames(include_flagged, areas, values)
    after, upto = outcome.watermark, outcome.upto
    if upto > after:
        ids = (after, upto)
        keys = [plan.unit, *plan.attributes]
        cells = combine(cells, score_cells(session, wave_id, version_ids, include_flagged, plan, ids=ids),
                        [*keys, "channel"])
        tail = choice_counts(session, wave_id, version_ids, include_flagged, plan, ids=ids)
        if values is None:
            choices = combine(choices, tail, [*keys, "version_id", "item", "choice"])
        else:
            choices = combine(choices, choice_cells(tail, values, keys), ["item", *keys])
            choices = choices.sort_values(["item", *keys], kind="stable").reset_index(drop=True)
    return cells, choices
