"""The staff console's queries over Rasa's events table, on SQLite and on a real PostgreSQL.

A small clinic day is written as Rasa's SQL tracker store writes it (devtools/harness/events.py),
with every outcome the console counts; each figure is checked by hand. The PostgreSQL run
starts a real server (devtools/harness/datastores.Postgres) and is marked `servers`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import sqlalchemy as sa

from clinic.fact_store import FactStore
from clinic.settings import Settings
from console import queries
from console.database import INDEXES, Database
from console.pages import Views
from console.proposals import Review
from console.queries import Period, Search
from console.summaries import Summaries
from devtools.harness import events
from devtools.harness.console import edit_facts
from devtools.harness.servers import private_fact_store

DAY = dt.date(2025, 3, 10)
NEXT = DAY + dt.timedelta(days=1)
A, B, C, D, E = "web:aaaa", "telegram:123456", "api:tests:p1", "api:tests:p2", "web:eeee"


def at(day: dt.date, hour: float) -> float:
    return time.mktime(day.timetuple()) + hour * 3600


def answer(*facts: str) -> dict:
    return {"kind": "answer", "facts": list(facts), "reason": "intent"}


def clinic_day() -> List[events.Row]:
    rows: List[events.Row] = []
    rows += events.conversation(A, at(DAY, 9), [
        ("how long is the downtime?", "ask_downtime", 0.95, answer("downtime")),
        ("how much does it cost", "ask_cost", 0.42, answer("cost_no_price")),  # low confidence
    ])
    rows += events.conversation(B, at(DAY, 10), [
        ("blorf wibble", "nlu_fallback", 0.2, {"kind": "clarify", "facts": ["clarify"]}),
        ("still blorf", "nlu_fallback", 0.2, {"kind": "handoff", "facts": ["clarify_failed"]}),
    ])
    rows += events.conversation(C, at(DAY, 11), [
        ("I have pus and a fever, call me on 0612 345 678", "report_complication", 0.9,
         {"kind": "urgent", "facts": ["urgent"], "reason": "warning sign"}),
    ])
    rows += events.conversation(D, at(DAY, 12), [
        ("can I talk to a person", "request_human", 0.97, answer("human_handoff")),
        ("what about the weather", "out_of_scope", 0.8, {"kind": "out_of_scope", "facts": ["out_of_scope"]}),
    ])
    rows.append(events.feedback(A, "up", "downtime", at(DAY, 13)))
    rows += events.conversation(E, at(NEXT, 9), [
        ("Est-ce que ça fait mal? 100% sûr", "ask_numbing", 0.9, answer("numbing")),
    ])
    rows.append(events.feedback(E, "down", "numbing", at(NEXT, 9.5)))
    return rows


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with events.stored(request.param, tmp_path, clinic_day()) as url:
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


def day(tz_day: dt.date = DAY, last: dt.date = DAY) -> Period:
    return Period.of(tz_day, last)


def test_the_day_in_figures(db: Database) -> None:
    summary = Summaries(db).period(day())
    assert summary.conversations == 4 and summary.total_messages == 7
    assert dict(summary.messages) == {"web": 2, "telegram": 2, "api": 3}
    assert {c: summary.conversations_in(c) for c in ("web", "telegram", "api")} == {"web": 1, "telegram": 1, "api": 2}
    # one outcome per patient message, although a first reply has two bot messages (the welcome)
    assert dict(summary.outcomes) == {"answer": 2, "clarify": 1, "handoff": 2, "urgent": 1, "out_of_scope": 1}
    assert dict(summary.topics) == {"ask_downtime": 1, "ask_cost": 1, "nlu_fallback": 2, "report_complication": 1,
                                    "request_human": 1, "out_of_scope": 1}
    assert summary.daily[DAY] == {"web": (1, 2), "telegram": (1, 2), "api": (2, 3)}
    assert summary.facts["downtime"] == 1 and summary.facts["welcome"] == 3  # welcome: first replies but the urgent


def test_unanswered_alerts_and_feedback(db: Database) -> None:
    summary = Summaries(db).period(day(DAY, NEXT))
    texts = queries.messages_by_id(db, [*summary.failed, *summary.low_confidence])
    failed = {texts[i].text: kind for i, kind in summary.failed.items()}
    assert failed == {"blorf wibble": "clarify", "still blorf": "handoff", "what about the weather": "out_of_scope"}
    assert [texts[i].text for i in summary.low_confidence] == ["how much does it cost"]
    assert summary.unanswered == texts  # the same messages, read in the day's pass (the Unanswered page uses them)
    alerts = queries.messages_by_id(db, summary.alerts)
    assert {alerts[i].text: kind for i, kind in summary.alerts.items()} == {
        "I have pus and a fever, call me on 0612 345 678": "urgent", "can I talk to a person": "request",
        "still blorf": "handoff"}
    votes = queries.feedback(db, day(DAY, NEXT))
    assert [(v.vote, v.fact) for v in votes] == [("up", "downtime"), ("down", "numbing")]
    judged = queries.judged_questions(db, votes)
    assert {queries.messages_by_id(db, [m])[m].text for m in judged.values()} == {
        "how long is the downtime?", "Est-ce que ça fait mal? 100% sûr"}
    assert queries.feedback(db, day()) == votes[:1]  # the period bounds the votes too


def test_search_transcript_and_handled_marks(db: Database) -> None:
    period = day(DAY, NEXT)

    def found(**criteria: str) -> List[str]:
        total, rows = queries.search(db, period, Search(**criteria))
        assert total == len(rows)
        return sorted(r.sender_id for r in rows)

    assert found() == sorted([A, B, C, D, E])
    assert found(words="FEVER") == [C]
    assert found(words="sûr") == [E] and found(words="100%") == [E] and found(words="100_") == []
    assert found(words="ça mal") == [E] and found(words="parse_data") == []  # the message's words, not the JSON's
    assert found(channel="telegram") == [B] and found(intent="ask_cost") == [A]
    assert found(channel="api", words="person") == [D]
    assert queries.search(db, day(), Search())[0] == 4
    total, rows = queries.search(db, period, Search(), limit=2, offset=4)
    assert total == 5 and len(rows) == 1

    urgent_id = next(i for i, kind in Summaries(db).period(day()).alerts.items() if kind == "urgent")
    transcript = queries.transcript(db, urgent_id)
    assert transcript is not None and transcript.sender_id == C and transcript.channel == "api"
    assert [line.who for line in transcript.lines] == ["patient", "assistant"]
    assert transcript.lines[1].outcome == "urgent"
    assert queries.transcript(db, 10**9) is None
    first_of_e = queries.search(db, period, Search(words="sûr"))[1][0].first_id
    with_feedback = queries.transcript(db, first_of_e)
    assert with_feedback is not None
    assert [line.who for line in with_feedback.lines] == ["patient", "assistant", "assistant", "feedback"]
    assert with_feedback.lines[-1].text == "thumbs down on “numbing”"

    assert db.handled([urgent_id]) == {}
    first = db.mark_handled(urgent_id, "anna", at=1000.0)
    again = db.mark_handled(urgent_id, "ben")
    assert first == again and db.handled([urgent_id])[urgent_id].by == "anna"


def test_migrations_are_idempotent_and_add_the_indexes(db: Database) -> None:
    assert db.ready()
    db.migrate()  # a second start
    names = {index["name"] for index in sa.inspect(db.engine).get_indexes("events")}
    assert {name for name, _ in INDEXES} <= names
    assert sa.inspect(db.engine).has_table("console_handled")


def test_figures_follow_deletions_and_new_messages(db: Database) -> None:
    summaries = Summaries(db, recheck_s=0)  # an older day's fingerprint is read at every request
    assert summaries.period(day()).conversations == 4
    with db.engine.begin() as conn:  # the retention purge, or a patient's "delete my conversation"
        conn.execute(sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": D})
    after = summaries.period(day())
    assert after.conversations == 3 and after.total_messages == 5 and "request" not in after.alerts.values()
    engine = sa.create_engine(str(db.url))
    events.insert(engine, [events.user(A, "and sunscreen?", "ask_sunscreen", 0.9, at(DAY, 20)),
                           events.bot(A, "Yes, every day.", answer("sunscreen"), at(DAY, 20.01))])
    engine.dispose()
    again = summaries.period(day())
    assert again.total_messages == 6 and again.facts["sunscreen"] == 1


def test_an_empty_store_shows_nothing(tmp_path: Path) -> None:
    missing = Database(f"sqlite:///{tmp_path / 'none.db'}")
    assert not missing.ready() and not (tmp_path / "none.db").exists()  # Rasa creates the file, not the console
    assert Summaries(missing).period(day()).conversations == 0
    assert queries.search(missing, day(), Search()) == (0, [])


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_harness_writes_the_table_rasa_declares(dialect: str) -> None:
    from rasa.core.tracker_store import SQLTrackerStore
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    compiler = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}[dialect]
    ours = sa.MetaData()
    events.create_table(sa.create_engine("sqlite://"), ours)

    def ddl(table: sa.Table) -> List[str]:
        return [str(CreateTable(table).compile(dialect=compiler)).strip(),
                *sorted(str(CreateIndex(i).compile(dialect=compiler)) for i in table.indexes)]

    assert ddl(ours.tables["events"]) == ddl(SQLTrackerStore.SQLEvent.__table__)


def test_a_user_event_is_stored_with_its_text_before_parse_data() -> None:
    """PostgreSQL searches cut the text out of the stored JSON between these keys (console/queries.py)."""
    from rasa.shared.core.events import UserUttered

    stored = json.dumps(UserUttered('say "hi" \\ ok', {"name": "greet", "confidence": 1.0}).as_dict())
    assert stored.index('"text": "say \\"hi\\" \\\\ ok", "parse_data"') < stored.index('"metadata"')
    ours = events.user("web:x", "hello", "greet", 1.0, 0.0)["data"]
    assert list(json.loads(ours)) == list(json.loads(stored))  # the harness writes the same keys, same order


def test_an_older_day_is_rechecked_after_a_while(db: Database) -> None:
    summaries = Summaries(db, recheck_s=3600)
    assert summaries.period(day()).conversations == 4
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": D})
    assert summaries.period(day()).conversations == 4  # trusted for recheck_s
    summaries.recheck_s = 0
    assert summaries.period(day()).conversations == 3


def test_the_facts_page_flags_facts_due_for_review_or_awaiting_a_clinician(db: Database, tmp_path: Path) -> None:

    today = dt.date.today()
    env = private_fact_store(tmp_path / "store")
    edit_facts(Path(env["FACTS_DIR"]), {
        "downtime": {"reviewed_on": (today - dt.timedelta(days=400)).isoformat()},  # older than 365 days
        "cost_consultation": {"status": "needs_clinician_review", "reviewed_on": today.isoformat()},
        "numbing": {"reviewed_on": (today - dt.timedelta(days=365)).isoformat()},  # exactly the limit: not due
    })
    settings = Settings.from_env({**env, "DATA_DIR": str(tmp_path), "REVIEW_DIR": str(tmp_path / "review")})
    views = Views(settings, db, Summaries(db), FactStore.from_settings(settings), Review.from_settings(settings))
    page = views.facts_page(Period.of(DAY, NEXT))
    rows = {row["fact"].id: row for row in page["rows"]}
    flags = {fact: (rows[fact]["due"], rows[fact]["awaiting"], rows[fact]["age"])
             for fact in ("downtime", "cost_consultation", "numbing")}
    assert flags == {"downtime": (True, False, 400), "cost_consultation": (False, True, 0),
                     "numbing": (False, False, 365)}
    attention = {row["fact"].id for row in page["attention"]}
    assert {"downtime", "cost_consultation"} <= attention and "numbing" not in attention
    assert attention == {fact for fact, row in rows.items() if row["due"] or row["awaiting"]}
    assert (rows["downtime"]["given"], rows["downtime"]["up"], rows["downtime"]["down"]) == (1, 1, 0)
    assert (rows["numbing"]["given"], rows["numbing"]["up"], rows["numbing"]["down"]) == (1, 0, 1)
    exported = {row[0]: row for row in views.facts_rows(Period.of(DAY, NEXT))[1]}
    assert exported["downtime"][5] == "yes" and exported["numbing"][5] == "no"
    assert exported["cost_consultation"][3] == "needs_clinician_review"
