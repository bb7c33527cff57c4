"""The cached SQL tracker store returns exactly what Rasa's own SQLTrackerStore would, from the same database.

Every test writes through our store into a real SQLite file and reads the
conversation back with Rasa's stock SQLTrackerStore as the reference; the
event-class table is compared with Rasa's own walk over Event's subclasses.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import EventVerbosity
from rasa.shared.utils.common import all_subclasses

from devtools.harness.servers import PROJECT
from ops import retention
from rasa_extensions import event_types
from rasa_extensions.tracker_store import CachedSQLTrackerStore, StorageError

DOMAIN = Domain.load(str(PROJECT / "domain.yml"))


def stores(tmp_path: Path, **kwargs: Any) -> Dict[str, Any]:
    db = str(tmp_path / "conversations.db")
    return {"ours": CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db, **kwargs),
            "stock": SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db),
            "url": f"sqlite:///{db}"}


async def turn(store: SQLTrackerStore, sender: str, text: str, new_session: bool = False) -> None:
    """One message as Rasa's processor handles it: retrieve, update, save."""
    tracker = await store.get_or_create_tracker(sender)
    if new_session:
        for event in (ActionExecuted(ACTION_SESSION_START_NAME), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)):
            tracker.update(event)
    for event in (UserUttered(text, {"intent": {"name": "ask_downtime", "confidence": 0.9}, "entities": []}),
                  ActionExecuted("action_answer"), BotUttered(f"answer to {text}"),
                  SlotSet("last_topic", "downtime"), ActionExecuted(ACTION_LISTEN_NAME)):
        tracker.update(event)
    await store.save(tracker)


async def state(store: SQLTrackerStore, sender: str) -> Any:
    tracker = await store.retrieve(sender)
    return None if tracker is None else tracker.current_state(EventVerbosity.ALL)


async def assert_same(ours: CachedSQLTrackerStore, stock: SQLTrackerStore, sender: str) -> Dict[str, Any]:
    expected = await state(stock, sender)
    assert await state(ours, sender) == expected
    return expected


def user_texts(current: Dict[str, Any]) -> List[str]:
    return [e["text"] for e in current["events"] if e["event"] == "user"]


@pytest.mark.asyncio
@pytest.mark.parametrize("sessions", [
    [False],                      # the first message
    [False, False, False],        # a conversation in one session
    [False, False, True, False],  # a new session starts in the middle: only the latest is returned
    [True, False],                # a session start first, as Rasa's processor writes it
])
async def test_every_turn_reads_back_as_rasas_store_reads_it(tmp_path: Path, sessions: List[bool]) -> None:
    s = stores(tmp_path)
    for number, new_session in enumerate(sessions):
        await turn(s["ours"], "patient", f"message {number}", new_session)
        await assert_same(s["ours"], s["stock"], "patient")
    cold = CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "conversations.db"))
    await assert_same(cold, s["stock"], "patient")


@pytest.mark.asyncio
async def test_a_conversation_in_use_is_not_read_back_from_the_database(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    s = stores(tmp_path)
    await turn(s["ours"], "patient", "first")
    expected = await state(s["stock"], "patient")

    def no_reading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the conversation was read from the database")

    monkeypatch.setattr(s["ours"], "_event_query", no_reading)
    assert await state(s["ours"], "patient") == expected
    await turn(s["ours"], "patient", "second")  # retrieve and save, both without reading the rows
    monkeypatch.undo()
    await assert_same(s["ours"], s["stock"], "patient")


@pytest.mark.asyncio
async def test_messages_answered_by_another_instance_are_seen(tmp_path: Path) -> None:
    s = stores(tmp_path)
    other = CachedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "conversations.db"))
    await turn(s["ours"], "patient", "one")
    await turn(other, "patient", "two")
    await turn(s["stock"], "patient", "three")  # an instance running Rasa's own store
    await turn(s["ours"], "patient", "four")
    current = await assert_same(s["ours"], s["stock"], "patient")
    assert user_texts(current) == ["one", "two", "three", "four"]


@pytest.mark.asyncio
async def test_a_purged_conversation_is_not_served_from_memory(tmp_path: Path) -> None:
    s = stores(tmp_path)
    await turn(s["ours"], "patient", "private history")
    purged = retention.purge(s["url"], days=1, now=time.time() + 2 * 86400)
    assert purged.conversations == 1
    assert await state(s["ours"], "patient") is None
    await turn(s["ours"], "patient", "a new start")
    current = await assert_same(s["ours"], s["stock"], "patient")
    assert user_texts(current) == ["a new start"]


@pytest.mark.asyncio
async def test_a_failed_save_keeps_memory_and_database_in_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stores(tmp_path)
    await turn(s["ours"], "patient", "kept")
    values_for = CachedSQLTrackerStore._values_for
    calls = {"n": 0}

    def fails_on_the_third(sender_id: str, event: Event) -> Dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return values_for(sender_id, event)

    monkeypatch.setattr(CachedSQLTrackerStore, "_values_for", staticmethod(fails_on_the_third))
    with pytest.raises(OSError):
        await turn(s["ours"], "patient", "lost")
    monkeypatch.undo()
    current = await assert_same(s["ours"], s["stock"], "patient")
    assert user_texts(current) == ["kept"]  # nothing half-written, nothing remembered that was not stored
    await turn(s["ours"], "patient", "again")
    assert user_texts(await assert_same(s["ours"], s["stock"], "patient")) == ["kept", "again"]


@pytest.mark.asyncio
async def test_a_database_gone_after_the_read_is_a_storage_error(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing rolls the read back; when that fails the message must be refused (503), not answered unstored."""
    s = stores(tmp_path)
    await turn(s["ours"], "patient", "kept")

    def gone(_connection: Any) -> None:
        raise sqlite3.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(s["ours"].engine.dialect, "do_rollback", gone)
    with pytest.raises(StorageError):
        await s["ours"].retrieve("patient")


@pytest.mark.asyncio
@pytest.mark.parametrize("cache_size", [0, 2])
async def test_memory_holds_at_most_cache_size_conversations(tmp_path: Path, cache_size: int) -> None:
    s = stores(tmp_path, cache_size=cache_size)
    senders = [f"patient-{n}" for n in range(4)]
    for round_no in range(2):
        for sender in senders:
            await turn(s["ours"], sender, f"{sender} says {round_no}")
    assert len(s["ours"]._conversations) == cache_size
    for sender in senders:
        assert user_texts(await assert_same(s["ours"], s["stock"], sender)) == [f"{sender} says 0", f"{sender} says 1"]


@pytest.mark.asyncio
async def test_sqlite_commits_through_a_write_ahead_log_with_full_sync(tmp_path: Path) -> None:
    import sqlite3

    s = stores(tmp_path)
    await turn(s["ours"], "patient", "hello")
    with sqlite3.connect(tmp_path / "conversations.db") as other:  # the mode is kept in the file
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with s["ours"].engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_an_unknown_conversation_is_none_as_with_rasas_store(tmp_path: Path) -> None:
    import asyncio

    s = stores(tmp_path)
    assert asyncio.run(state(s["ours"], "nobody")) is None


# --- event classes by type name (rasa_extensions/event_types.py) -----------------------------------------

def rasas_resolve_by_type() -> Any:
    """Rasa's own method: nothing in the test process installs the extensions (test_rasa_contracts checks)."""
    assert event_types._rasas is None
    return Event.resolve_by_type


@pytest.mark.parametrize("type_name", sorted({cls.type_name for cls in all_subclasses(Event)}))
def test_every_event_type_resolves_to_the_class_rasa_finds(type_name: str) -> None:
    assert event_types.resolve_by_type(type_name) is rasas_resolve_by_type()(type_name)


def test_names_outside_the_table_behave_as_in_rasa() -> None:
    rasas = rasas_resolve_by_type()
    assert event_types.resolve_by_type("topic") is None is rasas("topic")
    assert event_types.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        event_types.resolve_by_type("no_such_event")


def test_rasa_deserialises_events_through_the_table_once_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_types, "_rasas", None)
    monkeypatch.setattr(Event, "resolve_by_type", Event.__dict__["resolve_by_type"])  # restored after the test
    event_types.apply()
    assert Event.resolve_by_type is event_types.resolve_by_type
    assert isinstance(Event.from_parameters({"event": "session_started"}), SessionStarted)


# --- storage errors: one message fails, the process stays up, the log names the store and not the words ----------

def test_a_value_error_inside_a_session_is_a_storage_error_not_an_exit(tmp_path: Path) -> None:
    """Rasa's own session scope calls sys.exit on any ValueError (it takes it for a missing PostgreSQL schema)."""
    store = stores(tmp_path)["ours"]
    with pytest.raises(StorageError) as raised:
        with store.session_scope():
            raise ValueError("A string literal cannot contain NUL (0x00) characters.")
    assert str(tmp_path / "conversations.db") in str(raised.value)  # the log can say which store
    assert not isinstance(raised.value, SystemExit)


@pytest.mark.asyncio
async def test_a_failed_write_names_the_store_and_the_cause_but_never_the_words(tmp_path: Path) -> None:
    s = stores(tmp_path)
    await turn(s["ours"], "patient", "kept")
    with sqlite3.connect(tmp_path / "conversations.db") as db:  # the database refuses this one write
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.data LIKE '%zebra-quartz%' "
                   "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    with pytest.raises(StorageError) as raised:
        await turn(s["ours"], "patient", "my words zebra-quartz")
    message = str(raised.value)
    assert str(tmp_path / "conversations.db") in message and "refused by the test" in message
    assert "zebra-quartz" not in message  # SQLAlchemy's own text quotes the statement's parameters


def test_a_url_in_a_storage_error_never_carries_its_password() -> None:
    error = StorageError("Cannot write conversations to postgresql://clinic:s3cret-p@ss@db.internal:5432/clinic: x")
    assert "s3cret" not in str(error) and "ss@" not in str(error) and "//clinic" not in str(error)
    assert "postgresql://***@db.internal:5432/clinic" in str(error)  # the host stays: the health check names it


@pytest.mark.servers
def test_instances_checking_a_new_postgresql_database_together_all_pass() -> None:
    """Start-up's write check on a database no instance has used yet, by several instances at once.

    CI found it: two Rasa instances started together on a new PostgreSQL database, and one stopped
    with "duplicate key value violates unique constraint pg_type_typname_nsp_index" (PostgreSQL's
    CREATE TABLE IF NOT EXISTS is not atomic); a shared row id collided the same way.
    """
    import threading

    from devtools.harness.datastores import Postgres

    server = Postgres().start()
    try:
        stores = [CachedSQLTrackerStore(domain=DOMAIN, dialect="postgresql", host="127.0.0.1", port=server.port,
                                        username=server.user, password=server.password, db=server.database)
                  for _ in range(6)]
        failures: List[BaseException] = []
        for _ in range(8):  # each round, the health table is new again
            with stores[0].engine.begin() as connection:
                connection.exec_driver_sql("DROP TABLE IF EXISTS clinic_health")
            barrier = threading.Barrier(len(stores))

            def check(store: CachedSQLTrackerStore, barrier: threading.Barrier) -> None:
                barrier.wait()
                try:
                    store.check_writable()
                except BaseException as exc:  # every failure is the finding
                    failures.append(exc)

            threads = [threading.Thread(target=check, args=(store, barrier)) for store in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert failures == []
    finally:
        for store in locals().get("stores", []):
            store.engine.dispose()
        server.stop()
