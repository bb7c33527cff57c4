"""Callback requests without servers: the answers the form accepts, opening hours, what is stored, and the actions.

Tables over clinic/callbacks.py (no Rasa), then the action server's adapter (actions/callback.py)
run with `Tracker.from_dict` trackers, and the Telegram pieces (reply keyboard, shared contact).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.callback import ActionStopCallback, ActionSubmitCallback, AskCallbackPhone, ValidateCallbackForm
from channels.telegram.format import send_message_params, with_reply_keyboards
from channels.telegram.updates import is_our_payload, read_update
from clinic import callbacks
from clinic.callbacks import CONSENT, NAME, PHONE, TIME
from clinic.fact_store import FactStore, FactStoreError, Snapshot, domain_intents, load_snapshot
from clinic.replies import render_fact

CHICAGO = "America/Chicago"


def local(text: str) -> dt.datetime:
    """'2026-12-01 10:30' in the demo clinic's time zone."""
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(CHICAGO))


# --- the answers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Maria Lopez", "Maria Lopez"),
    ("  my name is Sam ", "Sam"),
    ("I'm Jo-Anne O'Neil.", "Jo-Anne O'Neil"),
    ("José", "José"),
    ("555 010 0123", None),  # a number typed a step early
    ("how long does the redness last?", None),
    ("a b c d e f g h", None),
    ("", None),
    ("!!!", None),
])
def test_names(text: str, expected: Optional[str]) -> None:
    assert callbacks.clean_name(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("+1 (555) 010-0123", "+1 (555) 010-0123"),
    ("5550100123", "5550100123"),
    ("0612 345 678", "0612 345 678"),
    ("my number is 555 010 0123", "555 010 0123"),
    ("tel: +44 20 7946 0958", "+44 20 7946 0958"),
    ("+15550100123", "+15550100123"),  # a number shared from Telegram
    ("555 0100", "555 0100"),  # 7 digits: the shortest
    ("555 010", None),  # 6 digits
    ("1234567890123456", None),  # 16 digits
    ("555.010.0123", None),  # dots are not among the allowed characters
    ("555 010 0123 ext 4", None),
    ("55+5 010 0123", None),  # + only at the start
    ("(555 010 0123", None),  # unbalanced bracket
    ("call me on my mobile", None),
    ("", None),
])
def test_phone_numbers(text: str, expected: Optional[str]) -> None:
    assert callbacks.clean_phone(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("weekday mornings", "weekday mornings"),
    ("  after   4pm ", "after 4pm"),
    ("?!", None),
    ("x" * 200, None),
])
def test_preferred_times(text: str, expected: Optional[str]) -> None:
    assert callbacks.clean_time(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("yes", "yes"), ("Yes, I agree", "yes"), ("ok", "yes"), ("sure!", "yes"), ("I consent", "yes"),
    ("no", "no"), ("No thanks", "no"), ("I don't agree", "no"), ("nope", "no"), ("yes... actually no", "no"),
    ("maybe", None), ("", None), ("what will you store?", None),
])
def test_consent_answers(text: str, expected: Optional[str]) -> None:
    assert callbacks.consent_of(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("cancel", True), ("Cancel", True), ("stop", True), ("never mind", True), ("nevermind, thanks", True),
    ("forget it", True), ("please cancel the callback", True), ("STOP!", True),
    ("after I stop work at 5", False), ("Maria", False), ("don't call before noon, cancel my 3pm slot", False),
])
def test_cancel(text: str, expected: bool) -> None:
    assert callbacks.is_cancel(text) is expected


@pytest.mark.parametrize("slot, text, value, stop, facts", [
    (NAME, "Maria", "Maria", None, ()),
    (NAME, "12345678", None, None, ("callback_name_invalid",)),
    (PHONE, "555-010-0123", "555-010-0123", None, ()),
    (PHONE, "123", None, None, ("callback_phone_invalid",)),
    (TIME, "tomorrow morning", "tomorrow morning", None, ()),
    (CONSENT, "yes", "yes", None, ()),
    (CONSENT, "perhaps", None, None, ("callback_consent_invalid",)),
    (PHONE, "cancel", None, "cancelled", ("callback_cancelled",)),
    (CONSENT, "never mind", None, "cancelled", ("callback_cancelled",)),
    # safety first, at any step: a warning sign gets the urgent answer and ends the form
    (NAME, "I have a fever and pus since my session", None, "urgent", ("urgent",)),
    (TIME, "asap, my face is swollen and spreading red", None, "urgent", ("urgent",)),
])
def test_each_answer_is_checked_safety_first(snapshot: Snapshot, slot: str, text: str, value: Optional[str],
                                             stop: Optional[str], facts: tuple) -> None:
    step = callbacks.check_answer(slot, text, snapshot)
    assert (step.value, step.stop, step.facts) == (value, stop, facts)
    assert step.kind == ("urgent" if stop == "urgent" else "callback")
    if stop == "urgent":
        assert step.messages[0].text == render_fact(snapshot, snapshot.facts["urgent"]).text


def test_the_classifier_hearing_a_complication_also_ends_the_form(snapshot: Snapshot) -> None:
    text = "my cheek feels really wrong since the session"
    assert callbacks.check_answer(TIME, text, snapshot).stop is None  # no warning sign in the words
    assert callbacks.check_answer(TIME, text, snapshot, [("report_complication", 0.8), ("greet", 0.1)]).stop == "urgent"


# --- what it says --------------------------------------------------------------------------------------------

def test_the_consent_question_names_what_is_stored_and_for_how_long(snapshot: Snapshot) -> None:
    question = callbacks.ask(CONSENT, snapshot, {NAME: "Maria", PHONE: "555 010 0123", TIME: "after 4pm"}, 30)
    for shown in ("Maria", "555 010 0123", "after 4pm", "30 days", "this conversation"):
        assert shown in question.text
    assert [(b.title, b.payload) for b in question.buttons] == [("Yes, I agree", "yes"), ("No", "no")]
    assert "[" not in question.text and "{" not in question.text
    ask_phone = callbacks.ask(PHONE, snapshot, {NAME: "Maria"}, 30)
    assert ask_phone.text.startswith("Thanks, Maria.") and [b.payload for b in ask_phone.buttons] == ["cancel"]


def test_every_callback_fact_is_there_and_fills_only_known_fields(snapshot: Snapshot) -> None:
    assert callbacks.missing_fields(snapshot) == {}
    for fact_id in callbacks.FACTS:
        fact = snapshot.facts[fact_id]
        assert fact.status == "approved" and fact.sources == ()


def test_human_handoff_and_the_second_miss_offer_a_callback_button(snapshot: Snapshot) -> None:
    for fact_id in ("human_handoff", "clarify_failed"):
        buttons = render_fact(snapshot, snapshot.facts[fact_id]).buttons
        assert ("Request a callback", '/request_callback{"fact":"callback_request"}') in \
            [(b.title, b.payload) for b in buttons]


# --- opening hours ------------------------------------------------------------------------------------------

HOURS = {"hours.timezone": CHICAGO, "hours.monday.open": "09:00", "hours.monday.close": "18:00",
         "hours.saturday.open": "10:00", "hours.saturday.close": "14:00"}


@pytest.mark.parametrize("now, open_now, reopens", [
    ("2026-11-30 10:00", True, "2026-12-05 10:00"),  # a Monday, open; the next opening is Saturday's
    ("2026-11-30 08:59", False, "2026-11-30 09:00"),  # before opening: today
    ("2026-11-30 18:00", False, "2026-12-05 10:00"),  # closing time is closed
    ("2026-12-05 13:59", True, "2026-12-07 09:00"),
    ("2026-12-06 12:00", False, "2026-12-07 09:00"),  # Sunday, closed all day
])
def test_open_now_and_the_next_opening(now: str, open_now: bool, reopens: str) -> None:
    hours = callbacks.hours_from(HOURS)
    assert hours is not None
    assert callbacks.is_open(hours, local(now)) is open_now
    assert callbacks.next_opening(hours, local(now)) == local(reopens)


def test_hours_are_read_in_the_clinic_time_zone() -> None:
    hours = callbacks.hours_from(HOURS)
    assert hours is not None
    monday_10_chicago_in_utc = dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.timezone.utc)
    assert callbacks.is_open(hours, monday_10_chicago_in_utc)
    assert callbacks.when_text(local("2026-12-07 09:00")) == "Monday 7 December, 09:00"


@pytest.mark.parametrize("settings", [{}, {"hours.timezone": "Mars/Olympus"}])
def test_without_usable_hours_there_are_none(settings: Dict[str, Any]) -> None:
    assert callbacks.hours_from(settings) is None


def test_the_clinic_file_has_hours_and_a_broken_hour_is_refused(store_dir: Path, intents: list) -> None:
    snapshot = load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)
    assert callbacks.hours_from(snapshot.settings) is not None
    path = store_dir / "clinic.yml"
    for key, value, problem in (("monday", {"open": 900, "close": "18:00"}, "hours.monday.open"),
                                ("timezone", "Nowhere/Town", "hours.timezone")):
        raw = yaml.safe_load(path.read_text())
        raw["hours"][key] = value
        broken = store_dir / f"clinic-{key}.yml"
        broken.write_text(yaml.safe_dump(raw, sort_keys=False))
        with pytest.raises(FactStoreError, match=problem):
            load_snapshot(store_dir / "facts", broken, intents)


# --- storing ------------------------------------------------------------------------------------------------

FILLED = {NAME: "Maria", PHONE: "555 010 0123", TIME: "after 4pm", CONSENT: "yes"}


@pytest.mark.parametrize("slots, previous, now, facts, stored", [
    (FILLED, None, "2026-11-30 10:00", ("callback_confirmed",), True),
    (FILLED, None, "2026-11-30 20:00", ("callback_confirmed_closed",), True),
    (FILLED, {"name": "M", "phone": "1234567", "time": "x", "status": "new"}, "2026-11-30 10:00",
     ("callback_replaced", "callback_confirmed"), True),
    ({**FILLED, CONSENT: "no"}, None, "2026-11-30 10:00", ("callback_declined",), False),
    ({NAME: None, PHONE: None, TIME: None, CONSENT: None}, None, "2026-11-30 10:00", (), False),  # cancelled
    ({**FILLED, PHONE: None}, None, "2026-11-30 10:00", (), False),
])
def test_only_consent_stores_a_request(snapshot: Snapshot, slots: Dict[str, Any], previous: Any, now: str,
                                       facts: tuple, stored: bool) -> None:
    outcome = callbacks.submit(slots, previous, snapshot, local(now))
    assert outcome.facts == facts
    if stored:
        assert outcome.request == {"name": "Maria", "phone": "555 010 0123", "time": "after 4pm",
                                   "consent_at": local(now).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "status": "new"}
    else:
        assert outcome.request is None


def test_outside_hours_the_confirmation_says_when_and_repeats_the_numbers(snapshot: Snapshot) -> None:
    outcome = callbacks.submit(FILLED, None, snapshot, local("2026-11-29 15:00"))  # a Sunday
    text = outcome.messages[-1].text
    settings = snapshot.settings
    assert "Monday 30 November, 09:00" in text
    assert str(settings["after_hours_phone"]) in text and str(settings["emergency_number"]) in text
    assert "555 010 0123" in text and "after 4pm" in text


# --- the actions, with Rasa SDK trackers --------------------------------------------------------------------

def tracker(slots: Dict[str, Any], text: str = "", channel: str = "rest", chat_type: str = "private",
            requested: Optional[str] = None) -> Tracker:
    metadata = {"telegram": {"chat_type": chat_type}} if channel == "telegram" else {}
    events = [{"event": "user", "text": text, "input_channel": channel, "metadata": metadata,
               "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.2}}}]
    if requested:  # what Rasa's form extracted from the message (validate_callback_form checks it)
        events.append({"event": "slot", "name": requested, "value": slots.get(requested)})
    return Tracker.from_dict({"sender_id": "web:x", "slots": {**slots, "requested_slot": requested},
                              "latest_message": {"text": text, "intent": {"name": "nlu_fallback"}},
                              "events": events, "active_loop": {"name": "callback_form"},
                              "latest_input_channel": channel})


DOMAIN = {"forms": {"callback_form": {"required_slots": list(callbacks.SLOTS)}}}  # Rasa sends validate_ actions it


def run(action: Any, state: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, state, DOMAIN))
    return dispatcher.messages, events


def as_dict(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_the_validation_accepts_asks_again_or_stops_the_form() -> None:
    messages, events = run(ValidateCallbackForm(), tracker({PHONE: "555 010 0123"}, "555 010 0123",
                                                           requested=PHONE))
    assert as_dict(events) == {PHONE: "555 010 0123"} and messages == []
    messages, events = run(ValidateCallbackForm(), tracker({PHONE: "12"}, "12", requested=PHONE))
    assert as_dict(events) == {PHONE: None}
    assert [m["clinic"]["facts"] for m in messages] == [["callback_phone_invalid"]]
    messages, events = run(ValidateCallbackForm(), tracker({NAME: "Maria", TIME: "cancel"}, "cancel",
                                                           requested=TIME))
    assert as_dict(events) == {NAME: None, PHONE: None, TIME: None, CONSENT: None, "requested_slot": None}
    assert messages[0]["clinic"] == {"kind": "callback", "facts": ["callback_cancelled"], "reason": "cancelled"}


def test_a_warning_sign_in_the_form_gets_the_urgent_answer_with_the_phones() -> None:
    text = "I feel feverish and there's pus"
    messages, events = run(ValidateCallbackForm(), tracker({NAME: text}, text, requested=NAME))
    assert as_dict(events)["requested_slot"] is None
    assert messages[0]["clinic"]["kind"] == "urgent" and messages[-1]["custom"]["urgent"] is True


def test_submitting_stores_only_with_consent_and_empties_the_form() -> None:
    messages, events = run(ActionSubmitCallback(), tracker(FILLED))
    slots = as_dict(events)
    assert slots[callbacks.REQUEST_SLOT]["phone"] == "555 010 0123" and slots[callbacks.REQUEST_SLOT]["status"] == "new"
    assert all(slots[s] is None for s in callbacks.SLOTS)
    messages, events = run(ActionSubmitCallback(), tracker({**FILLED, CONSENT: "no"}))
    assert callbacks.REQUEST_SLOT not in as_dict(events) and messages[0]["clinic"]["reason"] == "declined"
    _, events = run(ActionStopCallback(), tracker(FILLED))
    assert {"event": "active_loop", "name": None} in [{k: e.get(k) for k in ("event", "name")} for e in events]
    assert all(as_dict(events)[s] is None for s in callbacks.SLOTS)


@pytest.mark.parametrize("channel, chat_type, keyboard", [("telegram", "private", True), ("telegram", "group", False),
                                                          ("rest", "private", False)])
def test_on_telegram_the_phone_question_offers_to_share_the_number(channel: str, chat_type: str,
                                                                   keyboard: bool) -> None:
    messages, _ = run(AskCallbackPhone(), tracker({NAME: "Maria"}, "Maria", channel, chat_type))
    [message] = messages
    if keyboard:
        assert message["custom"][callbacks.TELEGRAM_KEYBOARD] == {"contact": "Share my phone number",
                                                                  "cancel": "Cancel"}
        assert "Share my phone number" in message["text"] and not message["buttons"]
    else:
        assert not message.get("custom") and [b["payload"] for b in message["buttons"]] == ["cancel"]


# --- Telegram's side ----------------------------------------------------------------------------------------

def test_the_reply_keyboard_joins_its_text() -> None:
    messages = [{"text": "What number?", "buttons": None},
                {"custom": {callbacks.TELEGRAM_KEYBOARD: {"contact": "Share my phone number", "cancel": "Cancel"}}}]
    [joined] = with_reply_keyboards(messages)
    [params] = send_message_params(42, joined["text"], joined["buttons"], keyboard=joined["reply_keyboard"])
    assert params["reply_markup"] == {"keyboard": [[{"text": "Share my phone number", "request_contact": True}],
                                                   [{"text": "Cancel"}]],
                                      "one_time_keyboard": True, "resize_keyboard": True}
    assert with_reply_keyboards([{"text": "hi"}, {"custom": {"urgent": True}}]) == \
        [{"text": "hi"}, {"custom": {"urgent": True}}]


def test_a_shared_contact_reads_as_its_number_and_the_form_buttons_are_accepted() -> None:
    update = {"update_id": 1, "message": {"message_id": 3, "chat": {"id": 77, "type": "private"},
                                          "from": {"id": 77, "is_bot": False, "first_name": "Pat"},
                                          "contact": {"phone_number": "+15550100123", "first_name": "Pat",
                                                      "user_id": 77}}}
    incoming = read_update(update)
    assert incoming is not None and (incoming.kind, incoming.text) == ("text", "+15550100123")
    assert all(is_our_payload(p) for p in ("yes", "no", "cancel", '/request_callback{"fact":"callback_request"}'))
    assert not is_our_payload("/restart") and not is_our_payload("maybe")


def test_the_domain_lists_the_form_its_slots_and_actions() -> None:
    domain = yaml.safe_load((Path(__file__).resolve().parent.parent / "domain.yml").read_text())
    assert domain["forms"]["callback_form"]["required_slots"] == list(callbacks.SLOTS)
    for slot in callbacks.SLOTS:
        assert domain["slots"][slot]["influence_conversation"] is False
        [mapping] = domain["slots"][slot]["mappings"]
        assert mapping["type"] == "from_text"
        assert mapping["conditions"] == [{"active_loop": "callback_form", "requested_slot": slot}]
    assert "request_callback" in domain_intents()
    assert FactStore  # the real store loads with the new facts (conftest's snapshot fixture)
