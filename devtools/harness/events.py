"""Rows of Rasa's `events` table, written as Rasa's SQL tracker store writes them, without running Rasa.

For the staff console's SQL-level tests and its benchmark (devtools/bench/console.py),
which need conversations in SQLite and PostgreSQL faster than a real server could
produce them. Each row has the store's columns (sender_id, type_name, timestamp,
intent_name, action_name, data = the event as JSON, via `json.dumps` as Rasa does);
the end-to-end console tests check the same queries against conversations that
went through the real REST channel.

    rows = conversation("api:tests:p1", start, [("how long am I red?", "ask_downtime", 0.93,
                                                 {"kind": "answer", "facts": ["downtime"]})])
    insert(engine, rows)
"""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import sqlalchemy as sa

Row = Dict[str, Any]
# (patient's text, intent, confidence, outcome = metadata.clinic of the reply)
Turn = Tuple[str, str, float, Dict[str, Any]]

EVENTS = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("type_name"), sa.column("timestamp"),
                  sa.column("intent_name"), sa.column("action_name"), sa.column("data"))
RANKED_INTENTS = ("ask_downtime", "ask_aftercare", "ask_cost", "ask_pain", "ask_results", "ask_sessions",
                  "ask_side_effects", "ask_suitability", "ask_sunscreen", "out_of_scope")


def create_table(engine: sa.engine.Engine, metadata: Optional[sa.MetaData] = None) -> None:
    """The table exactly as Rasa 3.6's SQLTrackerStore declares it (tests/test_console_sql.py checks that)."""
    metadata = sa.MetaData() if metadata is None else metadata
    sa.Table("events", metadata,
             sa.Column("id", sa.Integer, sa.Sequence("events_seq", optional=True), primary_key=True),
             sa.Column("sender_id", sa.String(255), nullable=False, index=True),
             sa.Column("type_name", sa.String(255), nullable=False),
             sa.Column("timestamp", sa.Float),
             sa.Column("intent_name", sa.String(255)),
             sa.Column("action_name", sa.String(255)),
             sa.Column("data", sa.Text))
    metadata.create_all(engine)


def _row(sender_id: str, data: Dict[str, Any], intent: Optional[str] = None) -> Row:
    return {"sender_id": sender_id, "type_name": data["event"], "timestamp": data["timestamp"],
            "intent_name": intent, "action_name": data.get("name"), "data": json.dumps(data)}


def action(sender_id: str, name: str, at: float) -> Row:
    return _row(sender_id, {"event": "action", "timestamp": at, "name": name, "policy": None, "confidence": None,
                            "action_text": None, "hide_rule_turn": False})


def session_start(sender_id: str, at: float) -> List[Row]:
    return [action(sender_id, "action_session_start", at),
            _row(sender_id, {"event": "session_started", "timestamp": at}),
            action(sender_id, "action_listen", at)]


def user(sender_id: str, text: str, intent: str, confidence: float, at: float, channel: str = "rest") -> Row:
    ranking = [{"name": intent, "confidence": confidence}]
    rest = (1 - confidence) / (len(RANKED_INTENTS) - 1)
    ranking += [{"name": name, "confidence": rest} for name in RANKED_INTENTS if name != intent][:9]
    message_id = uuid.uuid4().hex
    parse = {"intent": {"name": intent, "confidence": confidence}, "entities": [], "text": text,
             "message_id": message_id, "metadata": {}, "intent_ranking": ranking}
    # the keys in the order UserUttered.as_dict() writes them
    return _row(sender_id, {"event": "user", "timestamp": at, "text": text, "parse_data": parse,
                            "input_channel": channel, "message_id": message_id, "metadata": {}}, intent=intent)


def bot(sender_id: str, text: str, outcome: Optional[Dict[str, Any]], at: float,
        buttons: Optional[List[Dict[str, str]]] = None) -> Row:
    metadata: Dict[str, Any] = {"utter_action": None}
    if outcome is not None:
        metadata["clinic"] = {"kind": outcome["kind"], "facts": list(outcome.get("facts", ())),
                              "reason": outcome.get("reason", "")}
    return _row(sender_id, {"event": "bot", "timestamp": at, "metadata": metadata, "text": text,
                            "data": {"elements": None, "quick_replies": None, "buttons": buttons,
                                     "attachment": None, "image": None, "custom": None}})


def slot(sender_id: str, name: str, value: Any, at: float) -> Row:
    return _row(sender_id, {"event": "slot", "timestamp": at, "name": name, "value": value})


def feedback(sender_id: str, vote: str, fact: str, at: float) -> Row:
    """A patient's thumbs up or down on an answer, as the widget and Telegram store it."""
    return slot(sender_id, "feedback", {"value": vote, "fact": fact}, at)


def conversation(sender_id: str, start: float, turns: Sequence[Turn], gap_s: float = 20.0,
                 answer_text: str = "An answer from the fact store.") -> List[Row]:
    """A session start, then each turn as Rasa stores it: user, action, the reply's bot message(s), slots, listen."""
    rows = session_start(sender_id, start)
    at = start
    for index, (text, intent, confidence, outcome) in enumerate(turns):
        at += gap_s
        rows.append(user(sender_id, text, intent, confidence, at))
        rows.append(action(sender_id, "action_answer", at + 0.2))
        if index == 0 and outcome.get("kind") != "urgent":  # the welcome opens the first reply (clinic/replies.py)
            outcome = {**outcome, "facts": ["welcome", *outcome.get("facts", ())]}
            rows.append(bot(sender_id, "Hello! I answer questions about microneedling.", outcome, at + 0.3))
        rows.append(bot(sender_id, answer_text, outcome, at + 0.3))
        rows.append(slot(sender_id, "clarifying", outcome.get("kind") == "clarify", at + 0.3))
        rows.append(action(sender_id, "action_listen", at + 0.4))
    return rows


@contextlib.contextmanager
def stored(kind: str, folder: Path, rows: Iterable[Row]) -> Iterator[str]:
    """A conversations database holding `rows`; yields its URL.

    kind "sqlite": conversations.db in `folder`; "postgresql": a PostgreSQL server of its own,
    stopped afterwards.
    """
    from devtools.harness.datastores import Postgres
    from devtools.harness.servers import running

    if kind == "sqlite":
        yield _filled(f"sqlite:///{folder / 'conversations.db'}", rows)
        return
    with running(Postgres()) as postgres:
        yield _filled(postgres.url, rows)


def _filled(url: str, rows: Iterable[Row]) -> str:
    engine = sa.create_engine(url)
    create_table(engine)
    insert(engine, rows)
    engine.dispose()
    return url


def insert(engine: sa.engine.Engine, rows: Iterable[Row], batch: int = 5000) -> int:
    """Inserts the rows in order (ids follow the order, as Rasa's do); returns how many."""
    count = 0
    pending: List[Row] = []
    with engine.begin() as conn:
        for row in rows:
            pending.append(row)
            if len(pending) >= batch:
                conn.execute(EVENTS.insert(), pending)
                count += len(pending)
                pending = []
        if pending:
            conn.execute(EVENTS.insert(), pending)
            count += len(pending)
    return count
