"""Callback requests and staff-alert outcomes in the staff console.

First the queries and the page's figures over Rasa's events table, as Rasa's SQL store writes
it (devtools/harness/events.py), on SQLite and on a real PostgreSQL (marked `servers`); then
the console over HTTP (`python -m console`): the Callbacks page, revealing a number (audit
log), changing a status (CSRF), the CSV export, and alert outcomes on "Urgent & hand-offs".
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
import sqlalchemy as sa

from clinic import callbacks
from clinic.fact_store import FactStore
from clinic.settings import Settings
from console import auth, queries
from console.database import Database
from console.pages import Views
from console.proposals import Review
from console.queries import Period
from console.summaries import Summaries
from devtools.harness import events
from devtools.harness.console import ConsoleServer, csrf_of
from devtools.harness.servers import running
from ops import alerts as alerts_module

PASSWORD = "correct horse battery"
NOW = time.time()
A, B, C = "web:aaaa", "telegram:123456", "api:tests:p1"


def request(name: str, phone: str, status: str = "new") -> dict:
    return {"name": name, "phone": phone, "time": "after 4pm", "consent_at": "2026-11-30T10:00:00Z",
            "status": status}


def callback_rows() -> List[events.Row]:
    rows: List[events.Row] = []
    rows += events.conversation(A, NOW - 3600, [("can you call me back", "request_callback", 0.9,
                                                 {"kind": "callback", "facts": ["callback_request"]})])
    rows.append(events.slot(A, "callback_request", request("Maria", "+1 555 010 0123"), NOW - 3500))
    rows.append(events.slot(A, "callback_request", request("Maria Lopez", "555 010 0199"), NOW - 3400))  # replaces
    rows += events.conversation(B, NOW - 1800, [("ring me please", "request_callback", 0.8,
                                                 {"kind": "callback", "facts": ["callback_request"]})])
    rows.append(events.slot(B, "callback_request", request("Sam", "0612 345 678"), NOW - 1700))
    rows += events.conversation(C, NOW - 600, [("how long am I red", "ask_downtime", 0.9,
                                                {"kind": "answer", "facts": ["downtime"]})])
    return rows


def add_alerts(url: str) -> None:
    engine = sa.create_engine(url)
    alerts_module.metadata.create_all(engine)
    with engine.begin() as conn:
        for conversation, kind, telegram, email, error in (
                (A, "person", "sent", "off", None),
                (B, "urgent", "failed", "sent", "telegram: TelegramApiError: 403 Forbidden"),
                (C, "callback", "sent", "sent", None)):
            conn.execute(alerts_module.table.insert().values(
                conversation_id=conversation, kind=kind, channel="rest", words="words", created_at=NOW - 100,
                telegram=telegram, email=email, attempts=3, next_at=NOW, last_error=error))
    engine.dispose()


def views_for(db: Database, data_dir: Path) -> Views:
    settings = Settings.from_env({"DATA_DIR": str(data_dir), "REVIEW_DIR": str(data_dir / "review")})
    return Views(settings, db, Summaries(db), FactStore.from_settings(settings), Review.from_settings(settings))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with events.stored(request.param, tmp_path, callback_rows()) as url:
        add_alerts(url)
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


def test_each_conversation_shows_its_latest_request_newest_first(db: Database) -> None:
    found = queries.callback_requests(db)
    assert [(r.sender_id, r.name, r.phone, r.channel) for r in found] == [
        (B, "Sam", "0612 345 678", "telegram"), (A, "Maria Lopez", "555 010 0199", "web")]
    assert queries.callback_requests(db, found[1].id) == [found[1]]
    older = found[1].id - 1  # the request Maria's second one replaced
    assert queries.callback_requests(db, older) == []


def test_status_changes_keep_the_latest_with_who_and_when(db: Database) -> None:
    first = queries.callback_requests(db)[0]
    assert db.callback_statuses([first.id]) == {}
    db.set_callback_status(first.id, "called", "anna", at=1000.0)
    db.set_callback_status(first.id, "closed", "ben", at=2000.0)
    assert db.callback_statuses([first.id]) == {first.id: ("closed", "ben", 2000.0)}
    with pytest.raises(ValueError):
        db.set_callback_status(first.id, "lost", "ben")


def test_the_page_masks_numbers_until_one_is_revealed(db: Database, tmp_path: Path) -> None:
    views = views_for(db, tmp_path)
    found = queries.callback_requests(db)
    page = views.callbacks(only_open=False, page=1)
    assert [row["phone"] for row in page["rows"]] == ["[phone hidden]", "[phone hidden]"]
    revealed = views.callbacks(only_open=False, page=1, revealed=found[0].id)
    assert [row["phone"] for row in revealed["rows"]] == ["0612 345 678", "[phone hidden]"]
    db.set_callback_status(found[0].id, "closed", "anna")
    assert [row["request"].id for row in views.callbacks(only_open=True, page=1)["rows"]] == [found[1].id]
    header, rows = views.callbacks_rows(only_open=False)
    assert header[3] == "phone" and [r[3] for r in rows] == ["[phone hidden]", "[phone hidden]"]
    assert rows[0][6:8] == ["closed", "anna"] and rows[1][6:8] == ["new", ""]


def test_a_deleted_conversation_takes_its_request_with_it(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM events WHERE sender_id = :s"), {"s": B})
    assert [r.sender_id for r in queries.callback_requests(db)] == [A]


def form_rows(sender: str, at: float, name: str, phone: str) -> List[events.Row]:
    """A conversation through the callback form, with the form's own questions and confirmation (the fact store's
    texts, filled in as clinic/callbacks.py fills them)."""
    snapshot = FactStore.from_settings(Settings.from_env({})).current()
    values = {"name": name, "phone": phone, "time": "after 4pm", "days": "30"}
    turns = [("call me back", callbacks.START), (name, callbacks.ASK[callbacks.PHONE]),
             (phone, callbacks.ASK[callbacks.TIME]), ("after 4pm", callbacks.ASK[callbacks.CONSENT]),
             ("yes", callbacks.CONFIRMED)]
    rows = events.session_start(sender, at)
    for n, (said, fact) in enumerate(turns):
        rows.append(events.user(sender, said, "request_callback" if n == 0 else "inform", 0.9, at + n * 10 + 1))
        rows.append(events.bot(sender, callbacks.fill(snapshot, fact, values), {"kind": "callback", "facts": [fact]},
                               at + n * 10 + 2))
    rows.append(events.slot(sender, callbacks.REQUEST_SLOT, request(name, phone), at + 60))
    return rows


def test_a_transcript_through_the_form_hides_the_number_in_the_assistants_lines_too(db: Database,
                                                                                      tmp_path: Path) -> None:
    """The form repeats the number in its consent question and its confirmation: masked like the patient's."""
    phone = "+1 (555) 010-0177"
    with db.engine.begin() as conn:
        conn.execute(events.EVENTS.insert(), form_rows("web:formtranscript", NOW - 200, "Robin Hale", phone))
    views = views_for(db, tmp_path)
    [request_] = [r for r in queries.callback_requests(db) if r.sender_id == "web:formtranscript"]
    shown = views.conversation(request_.id, reveal=False)
    assert shown is not None and shown["has_hidden"]
    said = [line["text"] for line in shown["lines"] if line["line"].who == "assistant"]
    assert len(said) == 5 and not any("555" in text for text in said)
    assert sum("[phone hidden]" in text for text in said) >= 2  # the consent question and the confirmation
    assert not any("555" in line["text"] for line in shown["lines"])
    revealed = views.conversation(request_.id, reveal=True)
    assert revealed is not None and not revealed["has_hidden"] and revealed["revealed"]
    assert sum(phone in line["text"] for line in revealed["lines"] if line["line"].who == "assistant") >= 2


def test_alert_outcomes_for_the_urgent_page(db: Database, tmp_path: Path) -> None:
    views = views_for(db, tmp_path)
    outcomes = views.alert_outcomes(Period.last_days(1))
    assert [(a["what"], a["telegram"], a["email"], a["failed"]) for a in outcomes] == [
        ("Callback request", "sent", "sent", False), ("Urgent", "FAILED", "sent", True),
        ("Asked for a person", "sent", "off", False)]
    assert outcomes[1]["error"].startswith("telegram: TelegramApiError") and outcomes[1]["link"]
    assert views.urgent(Period.last_days(1), False, 1)["alerts_failed"] == 1
    header, rows = views.alerts_rows(Period.last_days(1))  # the same list as CSV (every list exports)
    assert header[:5] == ["queued", "what", "channel", "telegram", "e-mail"]
    assert [row[1:5] for row in rows] == [["Callback request", "REST integrations", "sent", "sent"],
                                          ["Urgent", "Telegram", "FAILED", "sent"],
                                          ["Asked for a person", "Website", "sent", "off"]]
    assert "words" not in str(rows)  # the patient's words stay out of the alerts list


def test_callback_turns_are_not_counted_as_unanswered(db: Database) -> None:
    with db.engine.begin() as conn:  # a name typed into the form: low confidence, but no question
        asked = {"kind": "callback", "facts": ["callback_ask_phone"]}
        for row in events.conversation("web:form", NOW - 300, [("Maria", "greet", 0.2, asked)]):
            conn.execute(events.EVENTS.insert(), [row])
    summary = Summaries(db).period(Period.last_days(1))
    assert summary.low_confidence == set() and summary.outcomes["callback"] == 3


# --- over HTTP ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    data = tmp_path_factory.mktemp("callback-console")
    with events.stored("sqlite", data, callback_rows()) as url:
        add_alerts(url)
        with running(ConsoleServer(data, env={"DATA_DIR": str(data), "REVIEW_DIR": str(data / "review"),
                                              "STAFF_ACCOUNTS": f"anna:{auth.hash_password(PASSWORD)}"})) as server:
            yield server


def audit_events(console: ConsoleServer) -> List[dict]:
    return [json.loads(line) for line in (console.workdir / "audit.log").read_text().splitlines()]


def test_staff_see_reveal_and_handle_callback_requests(console: ConsoleServer) -> None:
    session = console.signed_in(PASSWORD, "anna")
    page = session.get(f"{console.url}/callbacks", timeout=30)
    assert page.status_code == 200 and re.search(r'href="/callbacks\?[^"]*" aria-current="page">Callbacks<', page.text)
    assert "Maria Lopez" in page.text and "Sam" in page.text and "0612 345 678" not in page.text
    assert "[phone hidden]" in page.text and "<script" not in page.text
    sam = queries.callback_requests(Database(f"sqlite:///{console.workdir / 'conversations.db'}"))[0]

    assert session.post(f"{console.url}/callbacks/{sam.id}/reveal", data={}, timeout=30).status_code == 403
    token = csrf_of(page.text)
    revealed = session.post(f"{console.url}/callbacks/{sam.id}/reveal", data={"csrf": token}, timeout=30)
    assert revealed.status_code == 200 and "0612 345 678" in revealed.text and "555 010 0199" not in revealed.text
    last = audit_events(console)[-1]
    assert last["event"] == "console_contact_details_revealed" and last["staff"] == "anna"
    assert "0612" not in json.dumps(last) and "Sam" not in json.dumps(last)

    assert session.post(f"{console.url}/callbacks/{sam.id}/status", data={"status": "called"},
                        timeout=30).status_code == 403
    changed = session.post(f"{console.url}/callbacks/{sam.id}/status",
                           data={"csrf": token, "status": "called", "back": "/callbacks"}, allow_redirects=False,
                           timeout=30)
    assert changed.status_code == 303 and changed.headers["Location"] == f"/callbacks#callback-{sam.id}"
    assert session.post(f"{console.url}/callbacks/{sam.id}/status", data={"csrf": token, "status": "lost"},
                        timeout=30).status_code == 400
    assert session.post(f"{console.url}/callbacks/999999/status", data={"csrf": token, "status": "closed"},
                        timeout=30).status_code == 404
    page = session.get(f"{console.url}/callbacks", timeout=30).text
    assert "status-called" in page and "anna" in page
    assert audit_events(console)[-1]["event"] == "console_callback_status"

    export = session.get(f"{console.url}/export/callbacks.csv", timeout=30)
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert export.status_code == 200 and len(rows) == 3 and "0612" not in export.text
    assert rows[1][1:4] == ["Telegram", "Sam", "[phone hidden]"] and rows[1][6:8] == ["called", "anna"]


def test_the_urgent_page_shows_what_became_of_each_alert(console: ConsoleServer) -> None:
    session = console.signed_in(PASSWORD, "anna")
    page = session.get(f"{console.url}/urgent", timeout=30).text
    assert 'id="staff-alerts-table"' in page and "FAILED" in page and "403 Forbidden" in page
    assert 'data-figure="alerts-failed">1<' in page and ">Callback request<" in page
    assert 'href="/export/alerts.csv?' in page
    export = session.get(f"{console.url}/export/alerts.csv", timeout=30)
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert export.status_code == 200 and [row[1] for row in rows[1:]] == ["Callback request", "Urgent",
                                                                          "Asked for a person"]
    assert rows[2][3:7] == ["FAILED", "sent", "3", "telegram: TelegramApiError: 403 Forbidden"]
    assert audit_events(console)[-1]["event"] == "console_export" and audit_events(console)[-1]["list"] == "alerts"
    assert requests.get(f"{console.url}/callbacks", allow_redirects=False, timeout=30).status_code == 303
