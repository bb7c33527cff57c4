"""Rasa's SQL tracker store, with the conversations in use kept in memory between messages.

For every message, Rasa's SQLTrackerStore reads the whole conversation back from
the database (every event since the session started, each decoded from JSON),
and before saving counts those rows again to know which events are new. A
profile at 10 clients put loading and counting at about a third of Rasa's CPU
per message (docs/benchmarks.md).

This store keeps, for the last `cache_size` conversations, the rows Rasa's query
would return, and asks the database one small question per message instead:
how many rows the conversation has and the highest id (`_fingerprint`). When
the answer is what this process last wrote or read, the memory copy is exactly
what the database holds; when it is not (another Rasa instance answered, the
retention purge deleted the conversation, someone edited the table), the
conversation is read from the database as Rasa does. Every event is still
written to the database before the answer goes out, so a restart loses
nothing. Writes to one conversation are serialised by Rasa's lock store (in
memory for one instance, Redis for several: docs/deployment.md), the same
guarantee the stock store relies on.

An SQLite database is switched to write-ahead logging (WAL), still with a full
sync at every commit: the same durability, and on this machine a commit's p99
went from 10.9 ms to 4.8 ms with Rasa's connection per session. Rasa waits for
the commit while answering, so its slow tail becomes everyone's queueing delay
(docs/benchmarks.md).

Configured in the endpoints file (ops/endpoints.py writes it):

    tracker_store:
      type: rasa_extensions.tracker_store.CachedSQLTrackerStore
      dialect: sqlite            # or url: postgresql://...
      db: var/data/conversations.db
      cache_size: 256            # optional: conversations kept in memory
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, ensure_schema_exists
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from clinic.private_logs import redact_credentials
from rasa_extensions.version import check_rasa_version

logger = logging.getLogger(__name__)

HEALTH_LOCK_KEY = 0x636C696E6963  # "clinic": PostgreSQL advisory lock taken by the write check
HEALTH_ROWS_KEPT_S = 3600  # older health rows are deleted by the next check
DEFAULT_CACHE_SIZE = 256  # open conversations; about 40 KB each after ten turns

Fingerprint = Tuple[int, Optional[int]]  # (rows of the conversation, highest row id)


@dataclass(frozen=True)
class Row:
    """One stored event, as much of it as selecting the current session needs."""

    id: int
    timestamp: Optional[float]
    type_name: str
    data: str  # the event as JSON, exactly as stored


@dataclass(frozen=True)
class Conversation:
    fingerprint: Fingerprint  # of every row of the sender in the database
    rows: Tuple[Row, ...]  # the rows Rasa's `_event_query` returns: the latest session


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    """Every new SQLite connection: write-ahead log (kept in the file), a full sync at each commit."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def owner_only(database: Optional[str]) -> None:
    """Health data: the SQLite file readable by this user only (SQLite gives its -wal/-shm files the same mode)."""
    if database and database != ":memory:" and os.path.exists(database):
        os.chmod(database, 0o600)


def latest_session(rows: List[Row]) -> Tuple[Row, ...]:
    """The rows since the latest session start, by the rule of Rasa's `_event_query`.

    Rasa keeps the rows whose timestamp is at or after the latest `session_started`
    timestamp (all rows when there is none), in id order.
    """
    timestamps = [row.timestamp for row in rows if row.type_name == SessionStarted.type_name]
    starts = [t for t in timestamps if t is not None]
    if not starts:
        return tuple(rows)
    start = max(starts)
    return tuple(row for row in rows if row.timestamp is not None and row.timestamp >= start)


class StorageError(RuntimeError):
    """The conversation store could not be read or written: the message fails, the process stays up."""

    safe_to_log = True  # names the database, never a patient's words (clinic/private_logs.py)

    def __init__(self, message: str) -> None:
        # The message is logged and may reach the health check: a URL in it never carries its login.
        super().__init__(redact_credentials(message))


def storage_reason(exc: BaseException) -> str:
    """What a failed store says, for the log: our StorageError names the store and the cause (never words)."""
    if getattr(exc, "safe_to_log", False):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def failure_reason(exc: BaseException) -> str:
    """Why the database refused, safe to log: the driver's first line ("database is locked", "could not connect
    to server"), never SQLAlchemy's full text, which quotes the statement and its parameters (a patient's words).
    Any other exception is named by its type only: a ValueError's message may quote the value it refused."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa.exc.DBAPIError) and orig is not None:
        lines = str(orig).strip().splitlines()
        first = lines[0][:160] if lines else ""
        return f"{type(orig).__name__}: {first}" if first else type(orig).__name__
    return type(orig if isinstance(orig, BaseException) else exc).__name__


class CachedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore that answers `retrieve` from memory when the database has not changed."""

    engine: sa.engine.Engine  # set by SQLTrackerStore.__init__; replaced for SQLite (_keep_sqlite_connection_open)

    def __init__(self, *args: Any, cache_size: int = DEFAULT_CACHE_SIZE, **kwargs: Any) -> None:
        check_rasa_version()
        try:
            super().__init__(*args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            where = kwargs.get("db") if kwargs.get("dialect") == "sqlite" else kwargs.get("host")
            if where and "://" in str(where):
                where = sa.engine.make_url(str(where)).render_as_string(hide_password=True)
            reason = getattr(exc, "orig", None) or exc
            raise StorageError(f"Cannot open the conversation store {where}: {reason}") from exc
        self.cache_size = max(0, int(cache_size))
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()
        # Core statements built once: the ORM's per-call query building cost more than the query.
        table = self.SQLEvent.__table__
        self._fingerprint_sql = sa.select(sa.func.count(table.c.id), sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id"))
        self._insert_sql = table.insert()
        if self.engine.dialect.name == "sqlite":
            self._keep_sqlite_connection_open()
            owner_only(self.engine.url.database)
        self.check_writable()  # fail at start-up, loudly and by name, not at the first patient

    def _keep_sqlite_connection_open(self) -> None:
        """A pooled SQLite connection, where SQLAlchemy 1.4 opens and closes one per session.

        Closing the last connection to a WAL database checkpoints the log into the database and
        deletes it, and the next session creates it again: two or three times per message. With
        the connection kept open, checkpoints happen as SQLite schedules them (every 1,000 pages).
        Measured on this machine: REST p50 at one client 17-20 ms -> 14-16 ms (docs/benchmarks.md).
        The file then stays open for writing, so Linux refuses to remount its file system
        read-only while Rasa runs (tests/test_reliability.py forces it the way a disk error does).
        """
        database = self.engine.url.database
        if database and database != ":memory:":  # each in-memory connection is a database of its own
            fresh = sa.create_engine(self.engine.url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=4,
                                     connect_args={"check_same_thread": False})  # any one thread at a time
            self.engine.dispose()
            self.engine = fresh
            self.sessionmaker = sa.orm.session.sessionmaker(bind=fresh)
        sa.event.listen(self.engine, "connect", _sqlite_wal)

    @contextlib.contextmanager
    def session_scope(self) -> Iterator[Any]:
        """Rasa's session scope, minus its exit: Rasa calls sys.exit on any ValueError raised inside it.

        Rasa reads every ValueError as "the PostgreSQL schema is missing" and stops the whole
        process, so one message PostgreSQL cannot store (a NUL byte) stopped the service for
        everyone. Here a failure is a StorageError for that one message; the schema check stays.
        Closing counts too: it rolls back the read's transaction, which fails when the database
        went away after the read, and an unwrapped error there was taken for a failed dialogue,
        answered 200 and never stored (tests/test_reliability.py found it).
        """
        session = self.sessionmaker()
        try:
            try:
                ensure_schema_exists(session)
            except ValueError as exc:
                raise StorageError(f"PostgreSQL schema '{exc}' was not found in the database") from None
            yield session
        except (ValueError, sa.exc.SQLAlchemyError) as exc:
            raise StorageError(f"The conversation store {self.where} failed: {failure_reason(exc)}") from exc
        finally:
            try:
                session.close()
            except sa.exc.SQLAlchemyError as exc:
                raise StorageError(f"The conversation store {self.where} failed: {failure_reason(exc)}") from exc

    @property
    def where(self) -> str:
        """The database, for messages: the SQLite path, or the URL without its password."""
        url = self.engine.url
        return str(url.database) if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)

    def check_writable(self) -> None:
        """Writes and commits one row of a small table of ours: start-up and the health check prove a real write.

        A read-only folder, a full disk or a database that refuses writes is then found before a
        patient's message is, and named: "Cannot write conversations to /path/conversations.db".
        """
        try:
            self._write_health_row()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StorageError(f"Cannot write conversations to {self.where}: {reason}") from exc

    def _write_health_row(self) -> None:
        """One row per check, under an id of its own: instances checking at once never collide on a row.

        On PostgreSQL the checks take turns (a transaction-scoped advisory lock): instances starting
        together on a new database otherwise race to create the table, and CREATE TABLE IF NOT
        EXISTS is not atomic there ("type clinic_health already exists", or pg_type's unique index).
        """
        now = time.time()
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": HEALTH_LOCK_KEY})
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS clinic_health (id INTEGER PRIMARY KEY, "
                                       "checked_at FLOAT)"))
            connection.execute(sa.text("DELETE FROM clinic_health WHERE checked_at < :stale OR id = 1"),
                               {"stale": now - HEALTH_ROWS_KEPT_S})
            connection.execute(sa.text("INSERT INTO clinic_health (id, checked_at) VALUES (:id, :now)"),
                               {"id": secrets.randbelow(2**31 - 2) + 2, "now": now})

    def forget(self, sender_id: str) -> int:
        """Deletes every stored event of a conversation (a patient's request); returns how many."""
        table = self.SQLEvent.__table__
        self._conversations.pop(sender_id, None)
        with self.session_scope() as session:
            deleted = session.connection().execute(table.delete().where(table.c.sender_id == sender_id)).rowcount
            session.commit()
        self._conversations.pop(sender_id, None)  # a read that raced the delete must not survive it
        return int(deleted or 0)

    def _fingerprint(self, session: Any, sender_id: str) -> Fingerprint:
        count, highest = session.connection().execute(self._fingerprint_sql, {"sender_id": sender_id}).one()
        return int(count), highest

    def _remember(self, sender_id: str, conversation: Conversation) -> None:
        if self.cache_size == 0:
            return
        self._conversations[sender_id] = conversation
        self._conversations.move_to_end(sender_id)
        while len(self._conversations) > self.cache_size:
            self._conversations.popitem(last=False)

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The latest session of the conversation, as SQLTrackerStore.retrieve returns it."""
        with self.session_scope() as session:
            # The fingerprint before the rows: a row written between the two queries then makes
            # the fingerprint stale, which only costs a reload next time, never a missed row.
            fingerprint = self._fingerprint(session, sender_id)
            conversation = self._conversations.get(sender_id)
            if conversation is None or conversation.fingerprint != fingerprint:
                rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
                conversation = Conversation(fingerprint,
                                            tuple(Row(r.id, r.timestamp, r.type_name, r.data) for r in rows))
            self._remember(sender_id, conversation)
        if not (self.domain and conversation.rows):
            return None
        events = [json.loads(row.data) for row in conversation.rows]
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Writes the events the database does not have yet, as SQLTrackerStore.save does."""
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        # Forgotten until the commit succeeds: after a failure the next retrieve reads the database.
        known = self._conversations.pop(sender_id, None)
        with self.session_scope() as session:
            if known is None:
                stored = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).count()
            else:
                stored = len(known.rows)
            connection = session.connection()
            new_rows = []
            for event in itertools.islice(tracker.events, stored, len(tracker.events)):
                values = self._values_for(sender_id, event)
                [row_id] = connection.execute(self._insert_sql, values).inserted_primary_key
                new_rows.append(Row(row_id, values["timestamp"], values["type_name"], values["data"]))
            session.commit()
        if known is not None:
            count, highest = known.fingerprint
            if new_rows:
                count, highest = count + len(new_rows), new_rows[-1].id  # ids only grow
            self._remember(sender_id, Conversation((count, highest), latest_session([*known.rows, *new_rows])))
        logger.debug(f"Tracker with sender_id '{sender_id}' stored to database")

    @staticmethod
    def _values_for(sender_id: str, event: Any) -> Dict[str, Any]:
        """The row SQLTrackerStore.save writes for an event."""
        data = event.as_dict()
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }
