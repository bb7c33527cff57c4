"""The callback form end to end: the real Rasa and action servers, conversations stored in SQLite.

Over REST and over Telegram (a local fake Bot API): the happy path, an invalid phone number,
cancelling half-way, no consent (nothing stored), two requests from one patient, a warning
sign in the middle of the form, the hand-off's "Request a callback" button, and the Rasa
server restarted in the middle of the form. The assertions read what was stored, not only
what was said (devtools/harness/records.py).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests

from clinic import callbacks
from clinic.fact_store import Snapshot
from clinic.settings import Settings
from console import queries
from console.database import Database
from devtools.harness.fake_telegram import FakeTelegram, telegram_credentials
from devtools.harness.records import stored_events
from devtools.harness.servers import Stack, new_sender, running, served_snapshot, stop, store_stack

pytestmark = pytest.mark.servers

TOKEN = "7000003:callback-test-token"
SECRET = "callback_secret-123"
USERNAME = "DemoClinicBot"
ASK = "call me back please"
_update_ids = itertools.count(9000)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN, username=USERNAME)) as server:
        yield server


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, fake: FakeTelegram) -> Iterator[Tuple[Stack, str]]:
    root = tmp_path_factory.mktemp("callbacks")
    store = {"DATA_DIR": str(root / "data")}
    stack = store_stack(root, store, **fake.channel_env(SECRET), TELEGRAM_BOT_USERNAME=USERNAME,
                        TELEGRAM_WEBHOOK_URL="https://clinic.example.com/webhooks/telegram/webhook")
    stack.credentials = telegram_credentials(root)
    with running(stack):
        yield stack, Settings.from_env(store).conversations_url


def snapshot_of(stack: Stack) -> Snapshot:
    return served_snapshot(stack.workdir)


def say(stack: Stack, sender: str, text: str) -> List[Dict[str, Any]]:
    return [m for m in stack.say(sender, text) if m.get("text")]


def texts(replies: List[Dict[str, Any]]) -> List[str]:
    return [m["text"] for m in replies]


def fill(stack: Stack, fact_id: str, **values: str) -> str:
    return callbacks.fill(snapshot_of(stack), fact_id, values)


def stored_requests(url: str, conversation_id: str) -> List[Any]:
    return [e["value"] for e in stored_events(url, conversation_id, "slot") if e["name"] == callbacks.REQUEST_SLOT]


def confirmed(stack: Stack, text: str, name: str) -> bool:
    """The confirmation, in or outside opening hours (the clinic's hours against the clock now)."""
    expected = {fill(stack, fact, name=name).split("[")[0][:40] for fact in (callbacks.CONFIRMED,
                                                                              callbacks.CONFIRMED_CLOSED)}
    return any(text.startswith(prefix) for prefix in expected)


def request_callback(stack: Stack, sender: str, name: str = "Maria Lopez", phone: str = "+1 (555) 010-0123",
                     time: str = "weekday mornings") -> List[Dict[str, Any]]:
    """The form from the request to the consent question."""
    first = say(stack, sender, ASK)
    assert texts(first) == [fill(stack, callbacks.START)]
    assert [(b["title"], b["payload"]) for b in first[0]["buttons"]] == [("Cancel", "cancel")]
    assert texts(say(stack, sender, name)) == [fill(stack, "callback_ask_phone", name=name)]
    assert texts(say(stack, sender, phone)) == [fill(stack, "callback_ask_time")]
    consent = say(stack, sender, time)
    assert texts(consent) == [fill(stack, "callback_ask_consent", name=name, phone=phone, time=time, days="30")]
    assert [b["payload"] for b in consent[0]["buttons"]] == ["yes", "no"]
    return consent


def test_a_request_is_stored_only_once_the_patient_agrees(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    sender = new_sender()
    conversation = stack.conversation_id(sender)
    say(stack, sender, ASK)
    assert texts(say(stack, sender, "Maria Lopez")) == [fill(stack, "callback_ask_phone", name="Maria Lopez")]
    # an invalid number is refused, and asked for again
    assert texts(say(stack, sender, "12 34")) == [fill(stack, "callback_phone_invalid"),
                                                  fill(stack, "callback_ask_phone", name="Maria Lopez")]
    assert texts(say(stack, sender, "+1 (555) 010-0123")) == [fill(stack, "callback_ask_time")]
    say(stack, sender, "weekday mornings")
    assert stored_requests(url, conversation) == []  # asked for consent: nothing stored yet
    [reply] = say(stack, sender, "yes")
    assert confirmed(stack, reply["text"], "Maria Lopez") and "+1 (555) 010-0123" in reply["text"]
    [request] = stored_requests(url, conversation)
    assert {k: request[k] for k in ("name", "phone", "time", "status")} == {
        "name": "Maria Lopez", "phone": "+1 (555) 010-0123", "time": "weekday mornings", "status": "new"}
    assert request["consent_at"].endswith("Z")
    slots = {e["name"]: e["value"] for e in stored_events(url, conversation, "slot")}
    assert all(slots[slot] is None for slot in callbacks.SLOTS)  # the form's answers are emptied
    # the form is over: a question is answered as usual
    assert texts(say(stack, sender, "how long does the redness last?")) == [
        fill(stack, "downtime") + f"\nSource: {snapshot_of(stack).facts['downtime'].sources[0].title} "
                                  f"({snapshot_of(stack).facts['downtime'].sources[0].url})"]


def test_cancelling_half_way_or_saying_no_stores_nothing(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    cancelled = new_sender()
    say(stack, cancelled, ASK)
    say(stack, cancelled, "Sam")
    assert texts(say(stack, cancelled, "never mind")) == [fill(stack, callbacks.CANCELLED)]
    declined = new_sender()
    request_callback(stack, declined, name="Sam")
    assert texts(say(stack, declined, "no")) == [fill(stack, callbacks.DECLINED)]
    for sender in (cancelled, declined):
        assert stored_requests(url, stack.conversation_id(sender)) == []
        slots = {e["name"]: e["value"] for e in stored_events(url, stack.conversation_id(sender), "slot")}
        assert all(slots.get(slot) is None for slot in callbacks.SLOTS)
    # a new request starts from the first question again, nothing left over from the cancelled one
    assert texts(say(stack, cancelled, ASK)) == [fill(stack, callbacks.START)]


def test_a_second_request_replaces_the_first(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    sender = new_sender()
    request_callback(stack, sender, name="Maria")
    say(stack, sender, "yes")
    request_callback(stack, sender, name="Maria Lopez", phone="555 010 0199")
    replies = texts(say(stack, sender, "yes"))
    assert replies[0] == fill(stack, callbacks.REPLACED) and confirmed(stack, replies[1], "Maria Lopez")
    conversation = stack.conversation_id(sender)
    assert [r["name"] for r in stored_requests(url, conversation)] == ["Maria", "Maria Lopez"]
    listed = [r for r in queries.callback_requests(Database(url)) if r.sender_id == conversation]
    assert [(r.name, r.phone) for r in listed] == [("Maria Lopez", "555 010 0199")]  # the console lists the latest


def test_a_warning_sign_during_the_form_gets_the_urgent_answer_and_ends_it(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    sender = new_sender()
    say(stack, sender, ASK)
    replies = stack.say(sender, "my face is swollen and hot and I have a fever")
    snapshot = snapshot_of(stack)
    assert replies[0]["text"].startswith(snapshot.render(snapshot.facts["urgent"]))
    assert any((m.get("custom") or {}).get("urgent") for m in replies)
    assert fill(stack, "callback_ask_phone", name="") not in [m.get("text") for m in stack.say(sender, "Maria")]
    assert stored_requests(url, stack.conversation_id(sender)) == []


def test_asking_to_delete_the_conversation_stops_the_form(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    sender = new_sender()
    say(stack, sender, ASK)
    say(stack, sender, "Maria")
    replies = say(stack, sender, "delete my conversation")
    assert texts(replies)[0] == fill(stack, "forget_confirm")  # the usual question, with its buttons
    slots = {e["name"]: e["value"] for e in stored_events(url, stack.conversation_id(sender), "slot")}
    assert all(slots.get(slot) is None for slot in callbacks.SLOTS)
    assert texts(say(stack, sender, ASK)) == [fill(stack, callbacks.START)]  # a new request starts afresh


def test_the_hand_off_offers_a_callback_that_starts_the_form(clinic: Tuple[Stack, str]) -> None:
    stack, _ = clinic
    sender = new_sender()
    replies = say(stack, sender, "can i talk to a real person")
    buttons = {b["title"]: b["payload"] for m in replies for b in m.get("buttons") or []}
    assert buttons["Request a callback"] == '/request_callback{"fact":"callback_request"}'
    assert texts(say(stack, sender, buttons["Request a callback"])) == [fill(stack, callbacks.START)]


def test_the_form_continues_after_the_rasa_server_restarts(clinic: Tuple[Stack, str]) -> None:
    stack, url = clinic
    sender = new_sender()
    say(stack, sender, ASK)
    say(stack, sender, "Robin")
    stop(stack.rasa)
    stack.start_rasa()
    assert texts(say(stack, sender, "0612 345 678")) == [fill(stack, "callback_ask_time")]
    say(stack, sender, "any time")
    assert confirmed(stack, say(stack, sender, "yes")[0]["text"], "Robin")
    assert [r["phone"] for r in stored_requests(url, stack.conversation_id(sender))] == ["0612 345 678"]


# --- Telegram -----------------------------------------------------------------------------------------------

def post(stack: Stack, update: Dict[str, Any]) -> None:
    reply = requests.post(f"{stack.url}/webhooks/telegram/webhook", json=update,
                          headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=30)
    assert reply.status_code == 200, reply.text


def message(chat: int, **content: Any) -> Dict[str, Any]:
    chat_info = {"id": chat, "type": "private", "first_name": "Pat"}
    return {"update_id": next(_update_ids), "message": {
        "message_id": next(_update_ids), "date": 1764500000, "chat": chat_info,
        "from": {"id": chat, "is_bot": False, "first_name": "Pat"}, **content}}


def press(chat: int, data: str) -> Dict[str, Any]:
    return {"update_id": next(_update_ids), "callback_query": {
        "id": f"cb{next(_update_ids)}", "from": {"id": chat, "is_bot": False, "first_name": "Pat"}, "data": data,
        "message": {"message_id": 1, "date": 1764500000, "chat": {"id": chat, "type": "private"}}}}


def next_message(fake: FakeTelegram, chat: int, before: int) -> Dict[str, Any]:
    calls = fake.wait_for(lambda: fake.calls("sendMessage", chat, ok_only=True)[before:],
                          what=f"an answer in chat {chat}")
    return calls[0].params


def turn(stack: Stack, fake: FakeTelegram, chat: int, update: Dict[str, Any]) -> Dict[str, Any]:
    before = len(fake.calls("sendMessage", chat, ok_only=True))
    post(stack, update)
    return next_message(fake, chat, before)


def inline(params: Dict[str, Any]) -> Optional[List[str]]:
    markup = params.get("reply_markup") or {}
    return [row[0]["callback_data"] for row in markup["inline_keyboard"]] if "inline_keyboard" in markup else None


def test_on_telegram_with_the_share_my_number_button(clinic: Tuple[Stack, str], fake: FakeTelegram) -> None:
    stack, url = clinic
    chat = random.randint(10_000_000, 2_000_000_000)
    first = turn(stack, fake, chat, message(chat, text=ASK))
    assert first["text"] == fill(stack, callbacks.START) and inline(first) == ["cancel"]
    phone_question = turn(stack, fake, chat, message(chat, text="Pat Smith"))
    assert phone_question["text"] == f"{fill(stack, 'callback_ask_phone', name='Pat Smith')} " \
                                     f"{fill(stack, callbacks.SHARE_PHONE)}"
    assert phone_question["reply_markup"]["keyboard"] == [
        [{"text": "Share my phone number", "request_contact": True}], [{"text": "Cancel"}]]
    shared = {"phone_number": "+15550100123", "first_name": "Pat", "user_id": chat}
    assert turn(stack, fake, chat, message(chat, contact=shared))["text"] == fill(stack, "callback_ask_time")
    consent = turn(stack, fake, chat, message(chat, text="evenings"))
    assert inline(consent) == ["yes", "no"] and "+15550100123" in consent["text"]
    assert "Your callback request is stored" in turn(stack, fake, chat, press(chat, "yes"))["text"]
    [request] = stored_requests(url, f"telegram:{chat}")
    assert (request["name"], request["phone"], request["time"]) == ("Pat Smith", "+15550100123", "evenings")


def test_on_telegram_the_cancel_button_stops_the_form(clinic: Tuple[Stack, str], fake: FakeTelegram) -> None:
    stack, url = clinic
    chat = random.randint(10_000_000, 2_000_000_000)
    turn(stack, fake, chat, message(chat, text=ASK))
    assert turn(stack, fake, chat, press(chat, "cancel"))["text"] == fill(stack, callbacks.CANCELLED)
    assert stored_requests(url, f"telegram:{chat}") == []
