"""Each finding of the security review, run against the real servers, with the safe outcome asserted.

Two stacks: the embedded default (SQLite) with Telegram on against a local fake
Bot API, and the production store (PostgreSQL). A fuzz test sends a few thousand
generated bodies to every public endpoint and checks: no 5xx, every process
still up, other patients' conversations unchanged. The rows refer to the table
of findings in docs/security.md.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest
import requests
import sqlalchemy as sa

from clinic.settings import Settings
from devtools.harness.datastores import Postgres
from devtools.harness.fake_telegram import FakeTelegram, telegram_credentials
from devtools.harness.records import stored_events as stored
from devtools.harness.servers import (
    PROJECT,
    Stack,
    fact_of,
    free_port,
    new_sender,
    private_fact_store,
    running,
    served_snapshot,
    store_stack,
)

pytestmark = pytest.mark.servers

TOKEN = "7000003:security-test-token"
TG_SECRET = "security_secret-42"
ADDRESS_LIMIT = 30
SENDER_LIMIT = 20
MARKER = "zebra-quartz-4417"  # a patient's words, to look for in logs
PROXY = "127.0.0.2"  # the sqlite stack trusts this loopback address as its HTTPS proxy (TRUSTED_PROXIES)
REQUEST_TIMEOUT_S = 3  # the sqlite stack's SANIC_REQUEST_TIMEOUT: a client that stops sending is cut off
STORES = ["sqlite_stack", "pg_stack"]


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN, username="SecurityBot")) as server:
        yield server


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, fake_telegram: FakeTelegram) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("security-sqlite")
    stack = store_stack(root, {"DATA_DIR": str(root / "data")}, RATE_LIMIT_PER_ADDRESS=str(ADDRESS_LIMIT),
                        RATE_LIMIT_PER_SENDER=str(SENDER_LIMIT), TRUSTED_PROXIES=PROXY,
                        SANIC_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT_S), **fake_telegram.channel_env(TG_SECRET))
    stack.credentials = telegram_credentials(root)
    with running(stack):
        yield stack


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory, postgres: Postgres) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("security-pg")
    stack = store_stack(root, {"TRACKER_STORE_URL": postgres.url}, RATE_LIMIT_PER_ADDRESS="0")
    try:
        yield stack.start()
    finally:
        stack.stop()


def post(stack: Stack, body: Any, key: bool = False, content_type: str = "application/json",
         path: str = "/webhooks/rest/webhook") -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"Content-Type": content_type, **(stack.auth if key else {})}
    return requests.post(stack.url + path, data=data, headers=headers, timeout=60)


def url_of(stack: Stack) -> str:
    return Settings.from_env(stack.env).conversations_url


def alive(stack: Stack) -> bool:
    return stack.rasa is not None and stack.rasa.poll() is None and stack.actions is not None \
        and stack.actions.poll() is None


def user_texts(events: List[Dict[str, Any]]) -> List[str]:
    return [e.get("text") for e in events if e.get("event") == "user"]


def data_dir(stack: Stack) -> Path:
    return Path({**stack.base_env, **stack.env}["DATA_DIR"])


class Patient:
    """One conversation over REST: as an integration with its key, or as the widget (no key, the issued id)."""

    def __init__(self, stack: Stack, widget: bool) -> None:
        self.stack, self.widget = stack, widget
        self.sender: Optional[str] = None if widget else new_sender()

    def say(self, text: str, message_id: Optional[str] = None) -> requests.Response:
        body: Dict[str, Any] = {"message": text, **({"sender": self.sender} if self.sender else {})}
        if message_id:
            body["message_id"] = message_id
        reply = post(self.stack, body, key=not self.widget)
        if self.widget and reply.status_code == 200:
            self.sender = reply.json()[0]["recipient_id"]
        return reply

    @property
    def conversation_id(self) -> str:
        assert self.sender is not None
        return f"web:{self.sender.split('.')[0]}" if self.widget else Stack.conversation_id(self.sender)

    def stored(self) -> List[Dict[str, Any]]:
        return stored(url_of(self.stack), self.conversation_id)


def refuse(url: str, sql_op: str, table: str, condition: str, name: str) -> None:
    """Makes the database itself refuse one kind of write (a trigger): a failure no code of ours can fake."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text(f"CREATE TRIGGER {name} BEFORE {sql_op} ON {table} WHEN {condition} "
                                     "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"))
            else:
                conn.execute(sa.text(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                     f"IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                                     "RETURN COALESCE(NEW, OLD); END $$"))
                conn.execute(sa.text(f"CREATE TRIGGER {name} BEFORE {sql_op} ON {table} FOR EACH ROW "
                                     f"EXECUTE FUNCTION {name}()"))
    finally:
        engine.dispose()


def allow(url: str, table: str, name: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name}"))
            else:
                conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
                conn.execute(sa.text(f"DROP FUNCTION IF EXISTS {name}()"))
    finally:
        engine.dispose()


# --- 1. no single request stops a process ---------------------------------------------------------------

BREAKERS = [
    b'{"sender": "\\ud800", "message": "hello"}',
    b'{"sender": "a\\u0000b", "message": "hello"}',
    b'{"sender": "ok", "message": "lone \\udfff surrogate"}',
    b'{"sender": "ok", "message": "nul \\u0000 byte"}',
    b'{"sender": "ok", "message": "hi", "metadata": {"page": "\\u0000\\ud800"}}',
]


@pytest.mark.parametrize("store", ["sqlite_stack", "pg_stack"])
@pytest.mark.parametrize("key", [False, True], ids=["anonymous", "api-key"])
def test_row1_no_request_stops_the_server(request: pytest.FixtureRequest, store: str, key: bool) -> None:
    stack: Stack = request.getfixturevalue(store)
    for body in BREAKERS:
        reply = post(stack, body, key=key)
        assert reply.status_code < 500, (body, reply.status_code, reply.text[:200])
    assert alive(stack)
    assert stack.say(new_sender(), "do you numb the skin first?")


# --- 2. a conversation belongs to whoever holds its id ----------------------------------------------------

def test_row2_a_stranger_cannot_read_or_write_anothers_conversation(pg_stack: Stack) -> None:
    victim = new_sender()
    pg_stack.say(victim, "is microneedling safe when pregnant?")
    victim_id = Stack.conversation_id(victim)
    before = stored(url_of(pg_stack), victim_id)
    snapshot = served_snapshot(pg_stack.workdir)
    for guess in (victim_id, victim, f"telegram:{random.randint(1, 10**9)}", "web:AAAAAAAAAAAAAAAAAAAAAA"):
        reply = post(pg_stack, {"sender": guess, "message": "and is it safe?"})
        assert reply.status_code == 200
        messages = reply.json()
        assert messages[0]["recipient_id"] != guess  # a new conversation, with its own id
        assert fact_of(snapshot, messages[0]["text"]) == "welcome"  # not the patient's context
    assert stored(url_of(pg_stack), victim_id) == before


def test_row2_the_issued_id_continues_the_conversation(sqlite_stack: Stack) -> None:
    first = post(sqlite_stack, {"message": "how long is my face red after?"}).json()
    issued = first[0]["recipient_id"]
    follow = post(sqlite_stack, {"sender": issued, "message": "and how long does that last?"}).json()
    assert follow[0]["recipient_id"] == issued
    snapshot = served_snapshot(sqlite_stack.workdir)
    assert fact_of(snapshot, follow[0]["text"]) != "welcome"  # same conversation: no second welcome


def test_a_first_message_sent_again_lands_in_the_same_conversation_once(sqlite_stack: Stack) -> None:
    body = {"message": "do you numb the skin first?", "message_id": str(uuid.uuid4())}  # as the widget makes it
    first, again = post(sqlite_stack, body).json(), post(sqlite_stack, body).json()  # the first reply was "lost"
    issued = first[0]["recipient_id"]
    assert again[0]["recipient_id"] == issued
    conversation = f"web:{issued.split('.')[0]}"
    assert [e.get("message_id") for e in stored(url_of(sqlite_stack), conversation) if e.get("event") == "user"] \
        == [body["message_id"]]


def test_row2_two_clients_sending_the_same_weak_first_id_get_two_conversations(sqlite_stack: Stack) -> None:
    weak = "00000001"  # a client counting its messages: the next stranger's first message has the same id
    first = post(sqlite_stack, {"message": "is microneedling safe when pregnant?", "message_id": weak}).json()
    second = post(sqlite_stack, {"message": "what did I just ask?", "message_id": weak}).json()
    assert first[0]["recipient_id"] != second[0]["recipient_id"]
    snapshot = served_snapshot(sqlite_stack.workdir)
    assert fact_of(snapshot, second[0]["text"]) == "welcome"  # a new conversation, not the first one's


def test_row2_a_wrong_api_key_is_refused(sqlite_stack: Stack) -> None:
    reply = requests.post(f"{sqlite_stack.url}/webhooks/rest/webhook", json={"sender": "a", "message": "hi"},
                          headers={"Authorization": "Bearer not-the-key"}, timeout=30)
    assert reply.status_code == 401 and reply.json()["error"]


# --- 3. metadata and body size --------------------------------------------------------------------------

@pytest.mark.parametrize("metadata, status", [
    ({"page": "x" * 10_000_000}, 413),
    ({"page": "x" * 2000}, 400),
    ({"anything": "else"}, 400),
])
@pytest.mark.parametrize("store", STORES)
def test_row3_metadata_is_small_and_allowlisted(request: pytest.FixtureRequest, store: str,
                                                metadata: Dict[str, str], status: int) -> None:
    stack: Stack = request.getfixturevalue(store)
    sender = new_sender()
    assert post(stack, {"sender": sender, "message": "hi", "metadata": metadata}, key=True).status_code == status
    assert alive(stack)
    assert stored(url_of(stack), Stack.conversation_id(sender)) == []  # nothing of it was stored


# --- 4. telemetry ------------------------------------------------------------------------------------------

def test_row4_rasa_telemetry_is_off_in_the_process_the_launcher_prepares() -> None:
    check = ("from rasa_extensions.launcher import prepare_process; prepare_process(); "
             "import rasa.telemetry as t; print(t.is_telemetry_enabled())")
    env = {k: v for k, v in os.environ.items() if k != "RASA_TELEMETRY_ENABLED"}
    done = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-1500:]
    assert done.stdout.strip().splitlines()[-1] == "False"


# --- 5. patients' words stay out of logs; files are owner-only ----------------------------------------------

class EchoingActionServer(BaseHTTPRequestHandler):
    """Answers like the stock Rasa SDK does when an action fails: a 500 echoing the request."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"error": "boom", "request_body": json.loads(body or b"{}")}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_row5_a_failing_action_server_puts_no_patient_words_in_the_log(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), EchoingActionServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stack = store_stack(tmp_path, {"DATA_DIR": str(tmp_path / "data")})
    stack.actions_port = server.server_address[1]
    try:
        stack.start_rasa()
        replies = stack.say(new_sender(), f"my secret words are {MARKER}")
        assert replies and replies[-1]["text"]  # the apology
    finally:
        stack.stop()
        server.shutdown()
    log = (tmp_path / "rasa.log").read_text()
    assert "Encountered an exception while running action" in log  # the failure is logged...
    assert MARKER not in log  # ...without the patient's words


def test_row5_no_patient_words_in_logs_and_files_are_owner_only(sqlite_stack: Stack) -> None:
    sqlite_stack.say(new_sender(), f"I have a question about {MARKER}")
    for log in ("rasa.log", "actions.log"):
        assert MARKER not in (sqlite_stack.workdir / log).read_text(), log
    data = Path(sqlite_stack.env["DATA_DIR"])
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("conversations.db", ".conversation-secret"):
        path = data / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, name


def append_event(url: str, conversation_id: str, event: Any) -> None:
    """Writes one event into a stored conversation, as Rasa's SQL store writes it."""
    data = event.as_dict()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, :t, :ts, :d)"),
                         {"s": conversation_id, "t": event.type_name, "ts": data["timestamp"], "d": json.dumps(data)})
    finally:
        engine.dispose()


def test_row5_rasas_structured_warnings_carry_no_patient_words(sqlite_stack: Stack) -> None:
    """Rasa's `message.parsing.failed` warning (structlog) quotes the whole text of a "/..." it cannot read."""
    from rasa.shared.core.events import BotUttered

    sender, marker = new_sender(), f"{MARKER}-structlog"
    sqlite_stack.say(sender, "how long is my face red after?")
    words = f"/{{I think I am pregnant {marker}"
    # The only "/..." that reaches Rasa is a button the assistant offered: offer one Rasa cannot parse.
    offer = BotUttered("Pick one", {"buttons": [{"title": "Yes", "payload": words}]}, timestamp=time.time())
    append_event(url_of(sqlite_stack), Stack.conversation_id(sender), offer)
    assert sqlite_stack.say(sender, words)
    log = (sqlite_stack.workdir / "rasa.log").read_text()
    assert "message.parsing.failed" in log  # Rasa did log the event...
    assert marker not in log and "I think I am pregnant" not in log  # ...without the words


# --- 6. retention per message, on PostgreSQL ----------------------------------------------------------------

def test_row6_retention_deletes_each_old_message_on_postgres(pg_stack: Stack) -> None:
    from ops import retention

    sender = new_sender()
    pg_stack.say(sender, "how many sessions will I need?")
    url = url_of(pg_stack)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # make the first half of the conversation 60 days old
        ids = [r[0] for r in conn.execute(sa.text("SELECT id FROM events WHERE sender_id = :s ORDER BY id"),
                                          {"s": Stack.conversation_id(sender)})]
        conn.execute(sa.text("UPDATE events SET timestamp = timestamp - 60 * 86400 WHERE id IN :ids")
                     .bindparams(sa.bindparam("ids", expanding=True)), {"ids": ids[: len(ids) // 2]})
    engine.dispose()
    pg_stack.say(sender, "do I need sunscreen after?")  # written again this week
    result = retention.purge(url, days=30)
    assert result.events >= len(ids) // 2
    remaining = stored(url, Stack.conversation_id(sender))
    assert "do I need sunscreen after?" in user_texts(remaining)
    assert "how many sessions will I need?" not in user_texts(remaining)


# --- 7. typed commands -------------------------------------------------------------------------------------

TYPED_COMMANDS = ("/restart", "/session_start", "/back", '/ask_cost{"fact":"cost"}',
                  '/ask_aftercare{"fact": {"nested": "object"}}',
                  # Rasa strips every Unicode blank before it looks for "/": these were commands too
                  "/\t/restart", "/\n/restart", "/\u00a0/session_start", "/ \u2003/back")


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("widget", [False, True], ids=["rest", "widget"])
def test_row7_typed_commands_are_read_as_words(request: pytest.FixtureRequest, store: str, widget: bool) -> None:
    patient = Patient(request.getfixturevalue(store), widget)
    assert patient.say("how long is my face red after?").status_code == 200
    for typed in TYPED_COMMANDS:
        reply = patient.say(typed)
        assert reply.status_code == 200 and all(m.get("text") for m in reply.json()), typed
    events = patient.stored()
    assert not [e for e in events if e.get("event") in ("restart", "rewind", "session_started")][1:]
    typed_users = [e for e in events if e.get("event") == "user"][1:]
    assert all(not e["text"].startswith("/") for e in typed_users)
    assert all(e["parse_data"]["intent"].get("confidence", 0) < 1.0 for e in typed_users)


def test_row7_an_offered_button_is_still_honoured(sqlite_stack: Stack) -> None:
    sender = new_sender()
    first = sqlite_stack.say(sender, "how long is my face red after?")
    button = next(b for m in first for b in m.get("buttons") or [])
    snapshot = served_snapshot(sqlite_stack.workdir)
    target = next(f for f in snapshot.facts.values() if f.title == button["title"])
    assert fact_of(snapshot, sqlite_stack.say(sender, button["payload"])[-1]["text"]) == target.id


# --- 8. rate limits -------------------------------------------------------------------------------------------

def test_row8_one_sender_flooding_gets_a_polite_429(sqlite_stack: Stack) -> None:
    sender = new_sender()
    statuses = [post(sqlite_stack, {"sender": sender, "message": "hello"}, key=True)
                for _ in range(SENDER_LIMIT + 3)]
    assert [r.status_code for r in statuses[:SENDER_LIMIT]] == [200] * SENDER_LIMIT
    refused = statuses[-1]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    snapshot = served_snapshot(sqlite_stack.workdir)
    assert snapshot.settings["phone"] in refused.json()["error"]


def test_row8_one_address_flooding_without_a_key_gets_429(sqlite_stack: Stack) -> None:
    codes = [post(sqlite_stack, {"message": "hello"}).status_code for _ in range(ADDRESS_LIMIT + 5)]
    assert 429 in codes and all(code in (200, 429) for code in codes)


def post_from(stack: Stack, source: str, forwarded_for: Optional[str]) -> int:
    """An anonymous message sent from another loopback address, as a proxy (or a client) on the network would."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.rasa_port, timeout=60, source_address=(source, 0))
    headers = {"Content-Type": "application/json", **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    try:
        connection.request("POST", "/webhooks/rest/webhook", body=json.dumps({"message": "hello"}), headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_row8_clients_behind_a_trusted_proxy_each_have_their_own_limit(sqlite_stack: Stack) -> None:
    first, second = (f"198.51.100.{random.randint(1, 254)}", f"203.0.113.{random.randint(1, 254)}")
    # Left of the proxy's entry is what the client wrote itself: a new value each time must not buy a new limit.
    codes = [post_from(sqlite_stack, PROXY, f"10.9.{n}.9, {first}") for n in range(ADDRESS_LIMIT + 1)]
    assert codes == [200] * ADDRESS_LIMIT + [429]
    assert post_from(sqlite_stack, PROXY, second) == 200  # the second, behind the same proxy, is not


def test_row8_forwarded_for_from_an_untrusted_peer_is_ignored(sqlite_stack: Stack) -> None:
    """Anyone can write X-Forwarded-For: from a peer that is not a trusted proxy, a new one per request buys nothing."""
    codes = [post_from(sqlite_stack, "127.0.0.3", f"198.51.100.{n % 250 + 1}") for n in range(ADDRESS_LIMIT + 1)]
    assert codes[-1] == 429 and set(codes) == {200, 429}


def test_a_client_that_stops_sending_is_cut_off(sqlite_stack: Stack) -> None:
    # Four times the setting, well under the launcher's default (15 s): the stack's own setting cut it off.
    with socket.create_connection(("127.0.0.1", sqlite_stack.rasa_port), timeout=4 * REQUEST_TIMEOUT_S) as slow:
        slow.sendall(b"POST /webhooks/rest/webhook HTTP/1.1\r\nHost: clinic\r\nContent-Type: application/json\r\n")
        assert sqlite_stack.say(new_sender(), "do you numb the skin first?")  # others are served meanwhile
        answer = slow.recv(4096)  # a socket timeout here: the server kept waiting for the rest
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]


# --- 9. the action server ----------------------------------------------------------------------------------------

def listening_addresses(port: int) -> List[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.append(address)
    return found


def test_row9_the_action_server_listens_on_loopback_only(sqlite_stack: Stack) -> None:
    addresses = listening_addresses(sqlite_stack.actions_port)
    assert addresses and all(a in ("0100007F", "00000000000000000000000001000000") for a in addresses), addresses


def test_row9_the_action_server_wants_its_token_and_echoes_nothing(tmp_path: Path) -> None:
    token = "t" * 32
    stack = Stack(tmp_path, env={**private_fact_store(tmp_path), "ACTION_SERVER_TOKEN": token,
                                 "DATA_DIR": str(tmp_path / "data")})
    try:
        stack.start()  # Rasa sends the token (the endpoints file says so): the assistant answers
        answer = stack.say(new_sender(), "do you numb the skin first?")[-1]["text"]
        assert fact_of(served_snapshot(tmp_path), answer) != "action_error"
        webhook = f"{stack.actions_url}/webhook"
        broken = {"next_action": "action_answer", "tracker": {"sender_id": "x", "latest_message": MARKER}}
        assert requests.post(webhook, json=broken, timeout=30).status_code == 401
        failed = requests.post(webhook, json=broken, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert failed.status_code >= 400 and MARKER not in failed.text
        assert requests.get(f"{stack.actions_url}/health", timeout=10).status_code == 200
    finally:
        stack.stop()
    assert MARKER not in (tmp_path / "actions.log").read_text()


def test_the_public_health_check_names_the_store_but_never_its_login(pg_stack: Stack, postgres: Postgres) -> None:
    url = url_of(pg_stack)
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    refuse(url, "INSERT", "clinic_health", "TRUE", name)
    try:
        reply = requests.get(f"{pg_stack.url}/webhooks/rest/", timeout=30)
    finally:
        allow(url, "clinic_health", name)
    assert reply.status_code == 503
    problem = reply.json()["problem"]
    assert f"127.0.0.1:{postgres.port}" in problem and "refused by the test" in problem  # where, and why
    for secret in (postgres.password, requests.utils.quote(postgres.password, safe=""), f"//{postgres.user}"):
        assert secret not in problem, secret  # the parsed text: Sanic escapes "/" in JSON
    assert requests.get(f"{pg_stack.url}/webhooks/rest/", timeout=30).status_code == 200


# --- 10. nesting, content type, caching ----------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type, status", [
    (b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 413),
    (b'{"message": ' + b"[" * 3000 + b"]" * 3000 + b"}", "application/json", 400),
    (b'{"message": "hello"}', "text/plain", 415),
])
@pytest.mark.parametrize("store", STORES)
def test_row10_bodies_that_are_not_plain_json_get_a_4xx(request: pytest.FixtureRequest, store: str, body: bytes,
                                                         content_type: str, status: int) -> None:
    stack: Stack = request.getfixturevalue(store)
    assert post(stack, body, key=True, content_type=content_type).status_code == status
    assert alive(stack)


@pytest.mark.parametrize("store", STORES)
def test_row10_replies_are_never_cached(request: pytest.FixtureRequest, store: str) -> None:
    stack: Stack = request.getfixturevalue(store)
    reply = post(stack, {"sender": new_sender(), "message": "hello"}, key=True)
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"


# --- forgetting a conversation, on request -----------------------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
def test_a_patient_can_have_the_conversation_deleted(request: pytest.FixtureRequest, store: str) -> None:
    stack: Stack = request.getfixturevalue(store)
    sender = new_sender()
    stack.say(sender, "is microneedling safe when pregnant?")
    snapshot = served_snapshot(stack.workdir)
    ask = stack.say(sender, "please delete my conversation")
    assert fact_of(snapshot, ask[-1]["text"]) == "forget_confirm"
    yes = next(b for b in ask[-1]["buttons"] if "conversation_deleted" in b["payload"])
    done = stack.say(sender, yes["payload"])
    assert fact_of(snapshot, done[0]["text"]) == "conversation_deleted"
    assert {"conversation_deleted": True} in [m.get("custom") for m in done]
    assert stored(url_of(stack), Stack.conversation_id(sender)) == []
    audit_log = data_dir(stack) / "audit.log"
    audit = [json.loads(line) for line in audit_log.read_text().splitlines()]
    ref = hashlib.sha256(Stack.conversation_id(sender).encode()).hexdigest()[:16]
    assert any(e["event"] == "conversation deleted" and e["conversation"] == ref for e in audit)
    assert sender not in audit_log.read_text()


@pytest.mark.parametrize("store", STORES)
def test_a_message_the_store_refuses_is_a_503_logged_with_the_store_and_the_cause(request: pytest.FixtureRequest,
                                                                                  store: str) -> None:
    stack: Stack = request.getfixturevalue(store)
    sender = new_sender()
    conversation, url = Stack.conversation_id(sender), url_of(stack)
    stack.say(sender, "how long is my face red after?")
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    refuse(url, "INSERT", "events", f"NEW.sender_id = '{conversation}'", name)
    try:
        refused = post(stack, {"sender": sender, "message": f"and my words {MARKER}-store"}, key=True)
    finally:
        allow(url, "events", name)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    log = (stack.workdir / "rasa.log").read_text()
    line = next(line for line in log.splitlines() if "could not be stored" in line and conversation in line)
    where = data_dir(stack) / "conversations.db" if store == "sqlite_stack" else \
        f"127.0.0.1:{sa.engine.make_url(url).port}"
    assert str(where) in line and "refused by the test" in line, line  # which store, and why
    assert f"{MARKER}-store" not in log and str(sa.engine.make_url(url).password or MARKER) not in log


@pytest.mark.parametrize("store", STORES)
def test_a_deletion_the_store_refuses_is_a_503_and_succeeds_when_sent_again(request: pytest.FixtureRequest,
                                                                             store: str) -> None:
    stack: Stack = request.getfixturevalue(store)
    sender = new_sender()
    conversation, url = Stack.conversation_id(sender), url_of(stack)
    stack.say(sender, f"is microneedling safe when pregnant? {MARKER}-forget")
    ask = stack.say(sender, "please delete my conversation")
    yes = next(b for b in ask[-1]["buttons"] if "conversation_deleted" in b["payload"])
    body = {"sender": sender, "message": yes["payload"], "message_id": str(uuid.uuid4())}
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    refuse(url, "DELETE", "events", f"OLD.sender_id = '{conversation}'", name)
    try:
        refused = post(stack, body, key=True)
    finally:
        allow(url, "events", name)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1, refused.text[:300]
    assert refused.json()["error"] and refused.headers["Cache-Control"] == "no-store"
    assert user_texts(stored(url, conversation))  # nothing was deleted, and the patient was told so
    log = (stack.workdir / "rasa.log").read_text()
    assert any("could not be deleted" in line and conversation in line for line in log.splitlines())
    assert f"{MARKER}-forget" not in log
    again = post(stack, body, key=True)  # the widget sends it again after Retry-After, with the same message_id
    assert again.status_code == 200 and {"conversation_deleted": True} in [m.get("custom") for m in again.json()]
    assert stored(url, conversation) == []


def test_a_telegram_patient_can_have_the_conversation_deleted(sqlite_stack: Stack,
                                                               fake_telegram: FakeTelegram) -> None:
    chat = random.randint(10_000_000, 2_000_000_000)
    update_id = random.randint(10**6, 10**7)

    def send(text: str, callback: bool = False) -> None:
        nonlocal update_id
        update_id += 1
        user = {"id": chat, "is_bot": False, "first_name": "Pat"}
        if callback:
            update = {"update_id": update_id, "callback_query": {
                "id": str(update_id), "from": user, "data": text,
                "message": {"message_id": 9, "chat": {"id": chat, "type": "private"}, "date": 1}}}
        else:
            update = {"update_id": update_id, "message": {"message_id": update_id, "from": user, "date": 1,
                                                          "chat": {"id": chat, "type": "private"}, "text": text}}
        reply = requests.post(f"{sqlite_stack.url}/webhooks/telegram/webhook", json=update, timeout=30,
                              headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
        assert reply.status_code == 200

    send("is microneedling ok while breastfeeding?")
    fake_telegram.wait_for(lambda: len(fake_telegram.sent_texts(chat)) >= 2, what="the answer")
    send("delete my conversation please")
    fake_telegram.wait_for(lambda: len(fake_telegram.sent_texts(chat)) >= 3, what="the confirmation")
    send('/delete_conversation{"fact":"conversation_deleted"}', callback=True)
    snapshot = served_snapshot(sqlite_stack.workdir)
    fake_telegram.wait_for(lambda: any(t.startswith(snapshot.render(snapshot.facts["conversation_deleted"]))
                                       for t in fake_telegram.sent_texts(chat)), what="the deletion")
    assert stored(url_of(sqlite_stack), f"telegram:{chat}") == []


# --- fuzz: thousands of generated bodies at every public endpoint ------------------------------------------------

def random_text(rng: random.Random, size: int) -> str:
    pools = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x2FF), (0x400, 0x4FF), (0x4E00, 0x4FFF), (0x1F300, 0x1F64F),
             (0xD800, 0xDFFF), (0x202A, 0x202E)]
    return "".join(chr(rng.randint(*rng.choice(pools))) for _ in range(size))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**63, 1e308, float("nan")])
    if kind in (2, 3, 4):
        return random_text(rng, rng.choice([0, 1, 5, 50, 999, 1001, 5000]))
    if kind in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_text(rng, rng.randint(0, 8)): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def fuzz_body(rng: random.Random, senders: List[Any], feedback: bool = False) -> bytes:
    """One generated body; `senders` holds other patients' ids in every form an attacker might try."""
    shape = rng.randrange(6)
    if shape == 0:  # a well-formed request with odd field values
        sender = rng.choice(senders) if rng.random() < 0.3 else random_value(rng)
        body: Any = {"sender": sender, "message": random_value(rng), "metadata": random_value(rng)}
        if feedback:
            body = {"sender": sender, "value": rng.choice(["up", "down", random_value(rng)])}
    elif shape == 1:  # a plausible message with hostile text, addressed to someone else's conversation
        body = {"sender": rng.choice([*senders, "a", "telegram:1", "web:x.y", new_sender()]),
                "message": random_text(rng, rng.randint(0, 1200))}
        if feedback:
            body = {"sender": body["sender"], "value": rng.choice(["up", "down"])}
    elif shape == 2:
        body = random_value(rng)
    elif shape == 3:  # deep nesting
        depth = rng.choice([10, 1000, 20_000])
        return (b'{"message": ' + b"[" * depth + b"]" * depth + b"}")
    elif shape == 4:  # broken JSON and raw bytes
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    else:  # Telegram-shaped updates of every kind
        body = {"update_id": rng.randint(-5, 2**40), rng.choice(["message", "edited_message", "callback_query",
                                                                  "channel_post", "poll", "chat_member"]):
                random_value(rng)}
    text = json.dumps(body, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


FUZZ_BODIES = int(os.environ.get("FUZZ_BODIES", 2400))
GET_PATHS = ("/webhooks/web/", "/webhooks/web/config", "/webhooks/web/widget.js", "/webhooks/web/widget.css",
             "/webhooks/web/demo.css", "/webhooks/rest/")


def settled(url: str, conversation_id: str) -> List[Dict[str, Any]]:
    """The stored events once two reads a moment apart agree (a Telegram turn is stored after its webhook answers)."""
    events = stored(url, conversation_id)
    for _ in range(60):
        time.sleep(0.5)
        again = stored(url, conversation_id)
        if again == events and events:
            return events
        events = again
    raise AssertionError(f"the conversation {conversation_id} kept changing")


def telegram_victim(stack: Stack, fake_telegram: FakeTelegram) -> int:
    chat = random.randint(10_000_000, 2_000_000_000)
    update = {"update_id": random.randint(10**6, 10**7), "message": {
        "message_id": 1, "date": 1, "from": {"id": chat, "is_bot": False, "first_name": "Pat"},
        "chat": {"id": chat, "type": "private"}, "text": "is microneedling ok while breastfeeding?"}}
    assert requests.post(f"{stack.url}/webhooks/telegram/webhook", json=update, timeout=30,
                         headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}).status_code == 200
    fake_telegram.wait_for(lambda: fake_telegram.sent_texts(chat), what="the Telegram victim's answer")
    return chat


def fuzz_get(http: requests.Session, rng: random.Random, stack: Stack, path: str) -> requests.Response:
    """A GET with a random query (and for the demo page a random tail) and random caching headers."""
    printable = "".join(chr(rng.randint(0x21, 0x7E)) for _ in range(rng.randint(1, 40)))  # what a header may hold
    tail = random_text(rng, rng.randint(0, 40)).replace("\x00", "") if path == "/webhooks/web/" else ""
    headers = {"Accept-Encoding": rng.choice(["gzip", "*;q=0", printable, ""]),
               "If-None-Match": rng.choice(['"x"', "*", printable, ""])}
    query = quote(random_text(rng, rng.randint(0, 20)).encode("utf-8", "surrogatepass"), safe="")  # any bytes
    return http.get(f"{stack.url}{path}{tail}?q={query}", headers=headers, timeout=60)


def test_fuzz_every_public_endpoint(pg_stack: Stack, sqlite_stack: Stack, fake_telegram: FakeTelegram) -> None:
    """Every public route: REST and feedback (anonymous and with a key) on both stores, Telegram (with its secret),
    the widget's files, its config, the demo page and the health check. Other patients' conversations (an
    integration's, the widget's, Telegram's) are addressed in every form an attacker might try, and must not change."""
    rng = random.Random(12345)
    api_victims = [new_sender() for _ in range(2)]
    for victim in api_victims:
        pg_stack.say(victim, "do you numb the skin before the needles?")
    sqlite_victim = new_sender()
    sqlite_stack.say(sqlite_victim, "is microneedling safe when pregnant?")
    widget = Patient(pg_stack, widget=True)
    assert widget.say("is microneedling safe when pregnant?").status_code == 200
    chat = telegram_victim(sqlite_stack, fake_telegram)
    pg_url, sqlite_url = url_of(pg_stack), url_of(sqlite_stack)
    victims = [(pg_url, Stack.conversation_id(v)) for v in api_victims] + [
        (pg_url, widget.conversation_id), (sqlite_url, Stack.conversation_id(sqlite_victim)),
        (sqlite_url, f"telegram:{chat}")]
    before = {victim: settled(*victim) for victim in victims}
    token = widget.sender
    assert token is not None
    key = token.split(".")[0]
    # Never a victim's own secret (the widget's exact token; an API sender with the key): those are the owner's.
    senders: List[Any] = [conversation for _, conversation in victims] + [
        chat, str(chat), f"telegram:{chat}", key, f"{key}.{'A' * 22}", token + "\n", token + " ", " " + token,
        token.upper(), token[:-1], f"web:{key}", *[f"api:tests:{v}" for v in api_victims],
        f"api:tests:{sqlite_victim}"]
    telegram = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    rest, feedback = "/webhooks/rest/webhook", "/webhooks/rest/feedback"
    targets: List[Tuple[Stack, str, str, Dict[str, str]]] = [
        (pg_stack, "POST", rest, {}), (pg_stack, "POST", rest, pg_stack.auth),
        (pg_stack, "POST", feedback, {}), (pg_stack, "POST", feedback, pg_stack.auth),
        (sqlite_stack, "POST", "/webhooks/telegram/webhook", telegram),
        (sqlite_stack, "POST", rest, sqlite_stack.auth), (sqlite_stack, "POST", feedback, sqlite_stack.auth),
        *[(pg_stack, "GET", path, {}) for path in GET_PATHS],
    ]
    server_errors = []
    with requests.Session() as http:
        for n in range(FUZZ_BODIES):
            stack, method, path, auth = targets[n % len(targets)]
            if method == "GET":
                reply = fuzz_get(http, rng, stack, path)
            else:
                headers = {"Content-Type": rng.choice(["application/json", "application/json", "text/plain", ""]),
                           **auth}
                reply = http.post(stack.url + path, data=fuzz_body(rng, senders, feedback=path == feedback),
                                  headers=headers, timeout=60)
            if reply.status_code >= 500:
                server_errors.append((n, path, reply.status_code, reply.text[:120]))
    assert server_errors == []
    assert alive(pg_stack) and alive(sqlite_stack)
    assert {victim: stored(*victim) for victim in victims} == before
    assert pg_stack.say(new_sender(), "how long is my face red after?")


# --- feedback on an answer (the REST API's /feedback, used by the widget's thumbs) -------------------------------

def test_a_thumbs_up_or_down_is_stored_on_the_latest_answer(sqlite_stack: Stack) -> None:
    sender = new_sender()
    sqlite_stack.say(sender, "how long is my face red after?")
    url = f"{sqlite_stack.url}/webhooks/rest/feedback"
    reply = requests.post(url, json={"sender": sender, "value": "down"}, headers=sqlite_stack.auth, timeout=30)
    assert reply.status_code == 204
    slots = [e for e in stored(url_of(sqlite_stack), Stack.conversation_id(sender)) if e.get("event") == "slot"
             and e.get("name") == "feedback"]
    assert [s["value"] for s in slots] == [{"value": "down", "fact": "downtime"}]
    stranger = requests.post(url, json={"sender": "web:not-issued", "value": "up"}, timeout=30)
    assert stranger.status_code == 404  # nobody rates someone else's conversation
    assert requests.post(url, json={"sender": sender, "value": "meh"}, headers=sqlite_stack.auth,
                         timeout=30).status_code == 400
