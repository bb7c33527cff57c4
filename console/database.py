"""The console's connection to the conversation store, its own migrations, and its one table.

The console reads Rasa's `events` table where Rasa writes it (Settings.conversations_url:
SQLite under DATA_DIR, or PostgreSQL at TRACKER_STORE_URL). It adds, idempotently, at
start-up (and at the first request after Rasa has created the table):
- indexes its queries need on `events` (by type and time; by conversation), so pages stay
  under a second with 100,000 conversations (docs/benchmarks.md);
- `console_handled`: which urgent or hand-off message a staff member marked handled, who
  and when. It holds event ids and staff names, never a patient's words.
- `console_callbacks`: the status staff gave a callback request (new, called, closed), who
  and when, by the id of the event that stored the request (the conversation keeps the
  request itself, so retention and deletion apply to it).
Nothing else is written to the store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Tuple

import sqlalchemy as sa

logger = logging.getLogger(__name__)

HANDLED = "console_handled"
CALLBACKS = "console_callbacks"
CALLBACK_STATUSES = ("new", "called", "closed")
# (name, columns): created with IF NOT EXISTS; on PostgreSQL CONCURRENTLY, so Rasa keeps writing meanwhile.
INDEXES = (
    ("ix_console_events_type_time", "type_name, timestamp, id"),  # a period's messages; day fingerprints
    ("ix_console_events_sender_type", "sender_id, type_name, id"),  # the reply to a message; one conversation
    ("ix_console_events_action_time", "action_name, timestamp"),  # feedback (slot events named `feedback`)
    ("ix_console_events_intent_time", "intent_name, timestamp"),  # transcripts by topic; requests for a person
)

metadata = sa.MetaData()
handled_table = sa.Table(
    HANDLED, metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),  # the patient's message
    sa.Column("handled_by", sa.String(64), nullable=False),
    sa.Column("handled_at", sa.Float, nullable=False),
)

callbacks_table = sa.Table(
    CALLBACKS, metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),  # the request's slot event
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("changed_by", sa.String(64), nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Handled:
    by: str
    at: float


class Database:
    """One engine for the process; `ready()` is False until Rasa has stored a first conversation."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url)
        self.dialect = self.url.get_backend_name()
        self._engine: Optional[sa.engine.Engine] = None
        self._migrated = False
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.engine.Engine:
        if self._engine is None:
            if self.dialect == "sqlite":
                # Rasa writes to the same file meanwhile: wait for its short transactions instead of failing.
                self._engine = sa.create_engine(self.url, connect_args={"timeout": 15, "check_same_thread": False})
            else:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=4, max_overflow=4)
        return self._engine

    def _store_exists(self) -> bool:
        """A missing SQLite file is not created here: Rasa creates it with the first conversation."""
        return self.dialect != "sqlite" or os.path.exists(self.url.database or "")

    def ready(self) -> bool:
        """Migrates once the events table exists; True from then on."""
        if self._migrated:
            return True
        if not self._store_exists():
            return False
        with self._lock:
            if self._migrated:
                return True
            if not sa.inspect(self.engine).has_table("events"):
                return False
            self.migrate()
            self._migrated = True
        return True

    def migrate(self) -> None:
        """Idempotent: indexes on events and the console's own table."""
        started = time.monotonic()
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name, columns in INDEXES:
                    conn.execute(sa.text(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON events ({columns})"))
                conn.execute(sa.text("ANALYZE events"))  # statistics for the planner (autovacuum keeps them fresh)
        else:
            with self.engine.begin() as conn:
                for name, columns in INDEXES:
                    conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON events ({columns})"))
                conn.execute(sa.text("ANALYZE events"))  # so SQLite's planner knows which index narrows most
        metadata.create_all(self.engine, checkfirst=True)
        logger.info("Console migrations applied in %.1f s", time.monotonic() - started)

    # --- handled marks ---------------------------------------------------------------------------------

    def handled(self, event_ids: Iterable[int]) -> Dict[int, Handled]:
        ids = sorted(set(event_ids))
        found: Dict[int, Handled] = {}
        if not ids or not self.ready():
            return found
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(handled_table).where(handled_table.c.event_id.in_(ids[start:start + 500]))
                for row in conn.execute(query):
                    found[int(row.event_id)] = Handled(row.handled_by, float(row.handled_at))
        return found

    def mark_handled(self, event_id: int, by: str, at: Optional[float] = None) -> Handled:
        """The first mark stays: marking again does not change who handled it."""
        existing = self.handled([event_id]).get(event_id)
        if existing:
            return existing
        mark = Handled(by, time.time() if at is None else at)
        try:
            with self.engine.begin() as conn:
                conn.execute(handled_table.insert().values(event_id=event_id, handled_by=by, handled_at=mark.at))
        except sa.exc.IntegrityError:  # marked by someone else a moment ago
            return self.handled([event_id])[event_id]
        return mark

    # --- callback request statuses ---------------------------------------------------------------------

    def callback_statuses(self, event_ids: Iterable[int]) -> Dict[int, Tuple[str, str, float]]:
        """event id -> (status, changed by, changed at), for the requests staff have changed."""
        ids = sorted(set(event_ids))
        found: Dict[int, Tuple[str, str, float]] = {}
        if not ids or not self.ready():
            return found
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(callbacks_table).where(callbacks_table.c.event_id.in_(ids[start:start + 500]))
                for row in conn.execute(query):
                    found[int(row.event_id)] = (row.status, row.changed_by, float(row.changed_at))
        return found

    def set_callback_status(self, event_id: int, status: str, by: str, at: Optional[float] = None) -> None:
        """The latest change wins; who made it and when is kept with it."""
        if status not in CALLBACK_STATUSES:
            raise ValueError(f"status must be one of {', '.join(CALLBACK_STATUSES)}")
        values = {"status": status, "changed_by": by, "changed_at": time.time() if at is None else at}
        update = callbacks_table.update().where(callbacks_table.c.event_id == event_id).values(**values)
        with self.engine.begin() as conn:
            if conn.execute(update).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(callbacks_table.insert().values(event_id=event_id, **values))
        except sa.exc.IntegrityError:  # inserted by someone else a moment ago: ours is the latest
            with self.engine.begin() as conn:
                conn.execute(update)

    def event_exists(self, event_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM events WHERE id = :id"), {"id": event_id}).first() is not None

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def execute(db: Database, sql: str, params: Dict[str, Any]) -> list:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))
