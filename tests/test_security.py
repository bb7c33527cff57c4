"""Each finding of the security review, run against the real servers, with the safe outcome asserted.

Two stacks: the embedded default (SQLite) with Telegram on against a local fake
Bot API, and the production store (PostgreSQL). A fuzz test sends a few thousand
generated bodies to every public endpoint and checks: no 5xx, every process
still up, other patients' conversations unchanged. The rows refer to the table
of findings in docs/security.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

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


@pytest.fixture(scope="module")
def fake_telegram() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN, username="SecurityBot")) as server:
        yield server


@pytest.fixture(scope="module")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, fake_telegram: FakeTelegram) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("security-sqlite")
    stack = store_stack(root, {"DATA_DIR": str(root / "data")}, RATE_LIMIT_PER_ADDRESS=str(ADDRESS_LIMIT),
                        RATE_LIMIT_PER_SENDER=str(SENDER_LIMIT), **fake_telegram.channel_env(TG_SECRET))
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
    body = {"message": "do you numb the skin first?", "message_id": new_sender("first")}
    first, again = post(sqlite_stack, body).json(), post(sqlite_stack, body).json()  # the first reply was "lost"
    issued = first[0]["recipient_id"]
    assert again[0]["recipient_id"] == issued
    conversation = f"web:{issued.split('.')[0]}"
    assert [e.get("message_id") for e in stored(url_of(sqlite_stack), conversation) if e.get("event") == "user"] \
        == [body["message_id"]]


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
def test_row3_metadata_is_small_and_allowlisted(sqlite_stack: Stack, metadata: Dict[str, str], status: int) -> None:
    assert post(sqlite_stack, {"message": "hi", "metadata": metadata}, key=True).status_code == status
    assert alive(sqlite_stack)


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

def test_row7_typed_commands_are_read_as_words(sqlite_stack: Stack) -> None:
    sender = new_sender()
    sqlite_stack.say(sender, "how long is my face red after?")
    for typed in ("/restart", "/session_start", "/back", '/ask_cost{"fact":"cost"}',
                  '/ask_aftercare{"fact": {"nested": "object"}}'):
        reply = sqlite_stack.say(sender, typed)
        assert reply and all(m.get("text") for m in reply), typed
    events = stored(url_of(sqlite_stack), Stack.conversation_id(sender))
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


# --- 10. nesting, content type, caching ----------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type, status", [
    (b'{"message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 413),
    (b'{"message": ' + b"[" * 3000 + b"]" * 3000 + b"}", "application/json", 400),
    (b'{"message": "hello"}', "text/plain", 415),
])
def test_row10_bodies_that_are_not_plain_json_get_a_4xx(sqlite_stack: Stack, body: bytes, content_type: str,
                                                         status: int) -> None:
    assert post(sqlite_stack, body, key=True, content_type=content_type).status_code == status


def test_row10_replies_are_never_cached(sqlite_stack: Stack) -> None:
    reply = post(sqlite_stack, {"message": "hello"}, key=False)
    assert reply.headers["Cache-Control"] == "no-store"


# --- forgetting a conversation, on request -----------------------------------------------------------------------

def test_a_patient_can_have_the_conversation_deleted(sqlite_stack: Stack) -> None:
    sender = new_sender()
    sqlite_stack.say(sender, "is microneedling safe when pregnant?")
    snapshot = served_snapshot(sqlite_stack.workdir)
    ask = sqlite_stack.say(sender, "please delete my conversation")
    assert fact_of(snapshot, ask[-1]["text"]) == "forget_confirm"
    yes = next(b for b in ask[-1]["buttons"] if "conversation_deleted" in b["payload"])
    done = sqlite_stack.say(sender, yes["payload"])
    assert fact_of(snapshot, done[0]["text"]) == "conversation_deleted"
    assert {"conversation_deleted": True} in [m.get("custom") for m in done]
    assert stored(url_of(sqlite_stack), Stack.conversation_id(sender)) == []
    audit = [json.loads(line) for line in (Path(sqlite_stack.env["DATA_DIR"]) / "audit.log").read_text().splitlines()]
    ref = hashlib.sha256(Stack.conversation_id(sender).encode()).hexdigest()[:16]
    assert any(e["event"] == "conversation deleted" and e["conversation"] == ref for e in audit)
    assert sender not in (Path(sqlite_stack.env["DATA_DIR"]) / "audit.log").read_text()


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


def fuzz_body(rng: random.Random) -> bytes:
    shape = rng.randrange(6)
    if shape == 0:  # a well-formed request with odd field values
        body: Any = {"sender": random_value(rng), "message": random_value(rng), "metadata": random_value(rng)}
    elif shape == 1:  # a plausible message with hostile text
        body = {"sender": rng.choice(["a", "telegram:1", "web:x.y", new_sender()]),
                "message": random_text(rng, rng.randint(0, 1200))}
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


def test_fuzz_every_public_endpoint(pg_stack: Stack, sqlite_stack: Stack) -> None:
    """REST (anonymous and with a key) and the demo pages on PostgreSQL; Telegram (with its secret) on SQLite."""
    rng = random.Random(12345)
    victims = [new_sender() for _ in range(3)]
    for victim in victims:
        pg_stack.say(victim, "do you numb the skin before the needles?")
    url = url_of(pg_stack)
    before = {v: stored(url, Stack.conversation_id(v)) for v in victims}
    telegram = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    targets: List[Tuple[Stack, str, str, Dict[str, str]]] = [
        (pg_stack, "POST", "/webhooks/rest/webhook", {}), (pg_stack, "POST", "/webhooks/rest/webhook", pg_stack.auth),
        (sqlite_stack, "POST", "/webhooks/telegram/webhook", telegram), (pg_stack, "GET", "/webhooks/web/", {}),
    ]
    server_errors = []
    with requests.Session() as http:
        for n in range(FUZZ_BODIES):
            stack, method, path, auth = targets[n % len(targets)]
            headers = {"Content-Type": rng.choice(["application/json", "application/json", "text/plain", ""]), **auth}
            if method == "GET":
                reply = http.get(stack.url + path + random_text(rng, rng.randint(0, 40)).replace("\x00", ""),
                                 timeout=60)
            else:
                reply = http.post(stack.url + path, data=fuzz_body(rng), headers=headers, timeout=60)
            if reply.status_code >= 500:
                server_errors.append((n, path, reply.status_code, reply.text[:120]))
    assert server_errors == []
    assert alive(pg_stack) and alive(sqlite_stack)
    assert {v: stored(url, Stack.conversation_id(v)) for v in victims} == before
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
