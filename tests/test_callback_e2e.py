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
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests

from clinic import callbacks
from clinic.fact_store import FactStore, Snapshot
from clinic.settings import Settings
from console import queries
from console.database import Database
from console.pages import Views
from console.proposals import Review
from console.summaries import Summaries
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


def test_a_patient_can_have_their_request_deleted_with_the_conversation(clinic: Tuple[Stack, str]) -> None:
    """"Delete my conversation" and yes: the request leaves the store and the console's callback list."""
    stack, url = clinic
    sender = new_sender()
    conversation = stack.conversation_id(sender)
    request_callback(stack, sender, name="Robin Hale", phone="0612 345 999")
    say(stack, sender, "yes")
    assert [r.sender_id for r in queries.callback_requests(Database(url)) if r.sender_id == conversation] == [
        conversation]
    ask = say(stack, sender, "delete my conversation")
    assert texts(ask)[0] == fill(stack, "forget_confirm")
    yes = next(b for m in ask for b in m.get("buttons") or [] if "conversation_deleted" in b["payload"])
    done = stack.say(sender, yes["payload"])
    assert {"conversation_deleted": True} in [m.get("custom") for m in done]
    assert stored_requests(url, conversation) == [] and stored_events(url, conversation, "user") == []
    assert [r for r in queries.callback_requests(Database(url)) if r.sender_id == conversation] == []


def test_the_console_hides_the_number_the_form_repeats(clinic: Tuple[Stack, str], tmp_path: Path) -> None:
    """A conversation through the form: the consent question and the confirmation repeat the name and number;
    the transcript masks them in the assistant's lines as in the patient's, until a staff member reveals them."""
    stack, url = clinic
    sender = new_sender()
    request_callback(stack, sender, name="Robin Hale", phone="0612 345 888")
    say(stack, sender, "yes")
    db = Database(url)
    [request] = [r for r in queries.callback_requests(db) if r.sender_id == stack.conversation_id(sender)]
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "REVIEW_DIR": str(tmp_path / "review")})
    views = Views(settings, db, Summaries(db), FactStore.from_settings(settings), Review.from_settings(settings))
    shown = views.conversation(request.id, reveal=False)
    assert shown is not None and shown["has_hidden"]
    assistant = [line["text"] for line in shown["lines"] if line["line"].who == "assistant"]
    assert sum("[phone hidden]" in text for text in assistant) >= 2  # the consent question and the confirmation
    assert not any("345 888" in line["text"] for line in shown["lines"])
    revealed = views.conversation(request.id, reveal=True)
    assert revealed is not None and any("0612 345 888" in line["text"] for line in revealed["lines"]
                                        if line["line"].who == "assistant")
    db.dispose()


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


def turn_messages(stack: Stack, fake: FakeTelegram, chat: int, update: Dict[str, Any], count: int
                  ) -> List[Dict[str, Any]]:
    """The next `count` messages the bot sends to the chat after this update."""
    before = len(fake.calls("sendMessage", chat, ok_only=True))
    post(stack, update)
    calls = fake.wait_for(lambda: fake.calls("sendMessage", chat, ok_only=True)[before:][:count]
                          if len(fake.calls("sendMessage", chat, ok_only=True)) >= before + count else None,
                          what=f"{count} answers in chat {chat}")
    return [call.params for call in calls]


def telegram_form(stack: Stack, fake: FakeTelegram, chat: int, name: str, phone: str, time: str
                  ) -> Dict[str, Any]:
    """Over Telegram, from the request to the consent question (the phone number typed); returns that question."""
    assert turn(stack, fake, chat, message(chat, text=ASK))["text"] == fill(stack, callbacks.START)
    turn(stack, fake, chat, message(chat, text=name))
    assert turn(stack, fake, chat, message(chat, text=phone))["text"] == fill(stack, "callback_ask_time")
    consent = turn(stack, fake, chat, message(chat, text=time))
    assert inline(consent) == ["yes", "no"] and phone in consent["text"]
    return consent


def test_on_telegram_an_invalid_number_is_asked_for_again(clinic: Tuple[Stack, str], fake: FakeTelegram) -> None:
    stack, url = clinic
    chat = random.randint(10_000_000, 2_000_000_000)
    turn(stack, fake, chat, message(chat, text=ASK))
    turn(stack, fake, chat, message(chat, text="Pat Smith"))
    refused, again = turn_messages(stack, fake, chat, message(chat, text="12 34"), 2)
    assert refused["text"] == fill(stack, "callback_phone_invalid")
    asked = fill(stack, "callback_ask_phone", name="Pat Smith")
    assert again["text"] == f"{asked} {fill(stack, callbacks.SHARE_PHONE)}"
    assert again["reply_markup"]["keyboard"][0] == [{"text": "Share my phone number", "request_contact": True}]
    assert stored_requests(url, f"telegram:{chat}") == []
    assert turn(stack, fake, chat, message(chat, text="+44 20 7946 0958"))["text"] == fill(stack, "callback_ask_time")
    turn(stack, fake, chat, message(chat, text="after 5pm"))
    assert "Your callback request is stored" in turn(stack, fake, chat, press(chat, "yes"))["text"]
    [request] = stored_requests(url, f"telegram:{chat}")
    assert (request["name"], request["phone"], request["time"]) == ("Pat Smith", "+44 20 7946 0958", "after 5pm")


def test_on_telegram_no_consent_stores_nothing(clinic: Tuple[Stack, str], fake: FakeTelegram) -> None:
    stack, url = clinic
    chat = random.randint(10_000_000, 2_000_000_000)
    telegram_form(stack, fake, chat, "Sam", "0612 345 678", "mornings")
    assert turn(stack, fake, chat, press(chat, "no"))["text"] == fill(stack, callbacks.DECLINED)
    assert stored_requests(url, f"telegram:{chat}") == []
    slots = {e["name"]: e["value"] for e in stored_events(url, f"telegram:{chat}", "slot")}
    assert all(slots.get(slot) is None for slot in callbacks.SLOTS)  # the answers typed are not kept in the form
    assert not [r for r in queries.callback_requests(Database(url)) if r.sender_id == f"telegram:{chat}"]


def test_on_telegram_a_second_request_replaces_the_first(clinic: Tuple[Stack, str], fake: FakeTelegram) -> None:
    stack, url = clinic
    chat = random.randint(10_000_000, 2_000_000_000)
    telegram_form(stack, fake, chat, "Pat", "0612 345 678", "mornings")
    assert "Your callback request is stored" in turn(stack, fake, chat, press(chat, "yes"))["text"]
    telegram_form(stack, fake, chat, "Pat Smith", "0612 999 000", "evenings")
    replaced, confirmation = turn_messages(stack, fake, chat, press(chat, "yes"), 2)
    assert replaced["text"] == fill(stack, callbacks.REPLACED) and confirmed(stack, confirmation["text"], "Pat Smith")
    assert [r["phone"] for r in stored_requests(url, f"telegram:{chat}")] == ["0612 345 678", "0612 999 000"]
    listed = [r for r in queries.callback_requests(Database(url)) if r.sender_id == f"telegram:{chat}"]
    assert [(r.name, r.phone, r.channel) for r in listed] == [("Pat Smith", "0612 999 000", "telegram")]
