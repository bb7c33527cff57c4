"""The running assistant over the REST channel: real Rasa server, real action server."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml

from clinic import languages
from clinic.settings import Settings
from devtools.harness.nlu_sets import load_examples
from devtools.harness.records import stored_events
from devtools.harness.servers import PROJECT, Stack, fact_of, new_sender, served_snapshot, store_stack

pytestmark = pytest.mark.servers


@pytest.mark.parametrize("intent, message", [
    ("ask_collagen", "how does microneedling actually work?"),
    ("ask_wrinkles", "will it get rid of my forehead lines"),
    ("ask_skin_tone", "can it help with sun spots and uneven skin tone"),
    ("ask_acne_scars", "will it fix my acne scars"),
    ("ask_scars", "does it work on an old surgery scar"),
    ("ask_stretch_marks", "can it fade stretch marks on my stomach"),
    ("ask_session_length", "how long does the appointment take"),
    ("ask_numbing", "do u numb it"),
    ("ask_downtime", "how long is my face red after?"),
    ("ask_sunscreen", "do I need sunscreen after the treatment"),
    ("ask_aftercare", "what should I do for aftercare"),
    ("ask_sessions", "how many sessions will I need"),
    ("ask_side_effects", "what are the side effects"),
    ("ask_candidacy", "is it safe while pregnant"),
    ("ask_cost", "how much does it cost"),
    ("book_appointment", "I want to book an appointment"),
    ("request_human", "can I talk to a real person"),
    ("report_complication", "my skin is oozing pus and I have a fever"),
    ("greet", "hello"),
    ("goodbye", "bye, see you"),
    ("thank", "thanks so much"),
    ("bot_challenge", "am I talking to a bot?"),
    ("out_of_scope", "what's the weather in Paris tomorrow"),
])
def test_each_intent_gets_its_kind_of_answer(stack: Stack, intent: str, message: str) -> None:
    snapshot = served_snapshot(stack.workdir)
    replies = stack.say(new_sender(), message)
    answered = fact_of(snapshot, replies[-1]["text"])
    expected = "welcome" if intent == "greet" else "urgent" if intent == "report_complication" else None
    if expected:
        assert answered == expected
    else:
        assert intent in snapshot.facts[answered].intents, answered
    if intent not in ("greet", "report_complication"):
        assert fact_of(snapshot, replies[0]["text"]) == "welcome"  # the first message says what this is


def test_buttons_come_back_and_work_as_payloads_and_as_typed_text(stack: Stack) -> None:
    snapshot = served_snapshot(stack.workdir)
    sender = new_sender()
    replies = stack.say(sender, "how long will my face stay red afterwards?")
    buttons = replies[-1]["buttons"]
    assert buttons
    chosen = buttons[0]
    target = next(f for f in snapshot.facts.values() if f.title == chosen["title"])
    assert fact_of(snapshot, stack.say(sender, chosen["payload"])[-1]["text"]) == target.id
    typed = fact_of(snapshot, stack.say(sender, chosen["title"])[-1]["text"])
    assert set(snapshot.facts[typed].intents) & set(target.intents)


def training_examples() -> set:
    return {" ".join(t.lower().split()) for path in (PROJECT / "data" / "nlu").glob("*.yml")
            for t, _ in load_examples(path)}


# A referring question that is no training example and that, on its own, the assistant cannot place.
FOLLOW_UP = "does that fade on its own?"


def test_a_follow_up_question_keeps_the_topic(stack: Stack) -> None:
    snapshot = served_snapshot(stack.workdir)
    assert " ".join(FOLLOW_UP.lower().split()) not in training_examples()
    alone = fact_of(snapshot, stack.say(new_sender(), FOLLOW_UP)[-1]["text"])
    assert alone != "downtime", "asked first, the follow-up must not already get the topic: context would prove nothing"
    sender = new_sender()
    assert fact_of(snapshot, stack.say(sender, "how long is my face red after?")[-1]["text"]) == "downtime"
    assert fact_of(snapshot, stack.say(sender, FOLLOW_UP)[-1]["text"]) == "downtime"  # decided by the context


# Two messages the assistant cannot place (neither off-topic nor a topic): "did you mean", then a person.
UNCLEAR = ("is that the same for everyone?", "the thing with the stuff")


def test_two_misunderstandings_lead_to_a_person(stack: Stack) -> None:
    snapshot = served_snapshot(stack.workdir)
    assert not {" ".join(t.lower().split()) for t in UNCLEAR} & training_examples()
    sender = new_sender()
    stack.say(sender, "hello")
    first = stack.say(sender, UNCLEAR[0])[-1]
    assert fact_of(snapshot, first["text"]) == "clarify"  # not the out-of-scope answer: a misunderstanding
    assert first["buttons"][-1]["title"] == snapshot.facts["human_handoff"].title
    second = stack.say(sender, UNCLEAR[1])[-1]
    assert fact_of(snapshot, second["text"]) == "clarify_failed"
    assert snapshot.settings["phone"] in second["text"]


def post(stack: Stack, body: bytes) -> requests.Response:
    return requests.post(f"{stack.url}/webhooks/rest/webhook", data=body,
                         headers={"Content-Type": "application/json"}, timeout=60)


@pytest.mark.parametrize("name, body", [
    ("empty text", json.dumps({"sender": "bad-1", "message": ""})),
    ("only spaces", json.dumps({"sender": "bad-2", "message": "   \n "})),
    ("20,000 characters", json.dumps({"sender": "bad-3", "message": "redness " * 2500})),
    ("emoji only", json.dumps({"sender": "bad-4", "message": "😬🔥💉"})),
    ("another language", json.dumps({"sender": "bad-5", "message": "Combien de temps dure la rougeur après?"})),
    ("script tags", json.dumps({"sender": "bad-6", "message": "<script>alert('x')</script><img src=x onerror=1>"})),
    ("malformed json", '{"sender": "bad-7", "message": "hi"'),
    ("missing sender", json.dumps({"message": "hello"})),
    ("array body", "[1, 2, 3]"),
    ("number as message", json.dumps({"sender": "bad-8", "message": 12})),
    ("null bytes and controls", json.dumps({"sender": "bad-9", "message": "hi\u0000\u0007there"})),
])
def test_bad_input_gets_a_polite_reply_or_a_4xx(stack: Stack, name: str, body: str) -> None:
    reply = post(stack, body.encode())
    assert reply.status_code < 500, (name, reply.status_code, reply.text[:300])
    if reply.status_code == 200:
        messages = reply.json()
        assert messages and all(m.get("text") for m in messages), name
        assert "<script" not in reply.text and "onerror" not in reply.text
    else:
        assert 400 <= reply.status_code < 500 and reply.json()["error"]
    assert stack.say(new_sender(), "do you numb the skin first?")  # still serving


def test_an_edited_answer_is_served_without_retraining(stack: Stack) -> None:
    path = Path(stack.workdir / "facts" / "recovery.yml")
    original = path.read_text()
    data = yaml.safe_load(original)
    fact = next(f for f in data["facts"] if f["id"] == "sunscreen")
    fact["text"] = "EDITED: wear SPF 50 every day for " + "{aftercare.sun_avoid}."
    try:
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if stack.say(new_sender(), "do I need sunscreen after?")[-1]["text"].startswith("EDITED: wear SPF 50"):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the edited answer was not served within 10 seconds")
    finally:
        path.write_text(original)


def test_action_server_down_gets_an_apology_with_the_phone_then_recovers(stack: Stack) -> None:
    snapshot = served_snapshot(stack.workdir)
    sender = new_sender()
    stack.say(sender, "hello")
    from devtools.harness.servers import stop

    stop(stack.actions)
    try:
        reply = stack.say(sender, "how long does the redness last?")
        assert len(reply) == 1 and snapshot.settings["phone"] in reply[0]["text"]
        assert reply[0]["text"] == snapshot.render(snapshot.facts["action_error"])
    finally:
        stack.start_actions()
    assert fact_of(snapshot, stack.say(sender, "how long does the redness last?")[-1]["text"]) == "downtime"


@pytest.mark.parametrize("text, urgent", [
    ("¿Cuánto tiempo dura la rojez después del tratamiento?", False),
    ("tengo fiebre y pus en la cara desde ayer", True),
    ("微针治疗后多久可以化妆？", False),
])
def test_another_language_is_told_plainly_and_its_warning_signs_reach_urgent(stack: Stack, text: str,
                                                                             urgent: bool) -> None:
    snapshot = served_snapshot(stack.workdir)
    texts = [m["text"] for m in stack.say(new_sender(), text) if m.get("text")]
    if urgent:  # no welcome first: what to do now, in their language, then the urgent answer in English
        assert snapshot.settings["phone"] in texts[0] and fact_of(snapshot, texts[1]) == "urgent"
    else:  # the welcome, then one sentence in their language with the phone, and no fact
        assert fact_of(snapshot, texts[0]) == "welcome" and snapshot.settings["phone"] in texts[1]
        assert len(texts) == 2


# A warning sign in English and in Spanish (data/languages.yml): with no dialogue to ask, the channel
# itself must give the urgent answer, with every number to call, and store it in the conversation.
URGENT_WITHOUT_DIALOGUE = [
    (None, "I have a fever and pus on my face after microneedling"),
    ("es", "tengo fiebre desde ayer y me cuesta respirar"),  # no English warning sign in it at all
]


def say_once(stack: Stack, sender: str, message: str, message_id: str) -> list:
    """A message with the id a client sends it with (the widget's message_id): a repeat is answered from the record."""
    reply = requests.post(f"{stack.url}/webhooks/rest/webhook", headers=stack.auth, timeout=60,
                          json={"sender": sender, "message": message, "message_id": message_id})
    assert reply.status_code == 200, (reply.status_code, reply.text[:300])
    return reply.json()


def without_dialogue(stack: Stack, how: str):
    """Stops ("stopped") or freezes with SIGSTOP ("frozen": accepts connections, never answers) the action
    server; returns how to bring it back for the next tests."""
    from devtools.harness.servers import stop

    assert stack.actions is not None and stack.actions.poll() is None
    if how == "stopped":
        stop(stack.actions)
        return stack.start_actions
    pid = stack.actions.pid
    os.killpg(pid, signal.SIGSTOP)
    return lambda: os.killpg(pid, signal.SIGCONT)


def assert_urgent_reply(snapshot, replies: list, language: str | None) -> None:
    numbers = [snapshot.settings[key] for key in ("phone", "after_hours_phone", "emergency_number")]
    assert [m.get("custom", {}).get("lang") for m in replies] == ([language, None] if language else [None])
    if language:  # what to do now in the patient's language, first
        own = languages.languages()[language]
        assert replies[0]["text"] == languages.render(own.urgent, snapshot.settings)
    assert fact_of(snapshot, replies[-1]["text"]) == "urgent"
    for message in replies:
        assert all(number in message["text"] for number in numbers), message["text"]
        assert message["custom"]["urgent"] is True
        assert [p["number"] for p in message["custom"]["phones"]] == numbers  # call buttons for all three


@pytest.mark.parametrize("how", ["stopped", "frozen"])
def test_an_urgent_message_gets_the_urgent_answer_while_the_action_server_is_down(stack: Stack, how: str) -> None:
    snapshot = served_snapshot(stack.workdir)
    sent = [(language, text, new_sender(), str(uuid.uuid4())) for language, text in URGENT_WITHOUT_DIALOGUE]
    restore = without_dialogue(stack, how)
    try:
        for language, text, sender, message_id in sent:
            replies = say_once(stack, sender, text, message_id)
            assert_urgent_reply(snapshot, replies, language)
            # Stored in the conversation: the same message again is answered from the record, not anew.
            again = say_once(stack, sender, text, message_id)
            assert [(m["text"], m.get("custom")) for m in again] == [(m["text"], m.get("custom")) for m in replies]
    finally:
        restore()
    answer = stack.say(new_sender(), "how long does the redness last?")[-1]["text"]
    assert fact_of(snapshot, answer) == "downtime"  # the dialogue is back for the next tests


# --- a thumbs under an older answer (the widget keeps thumbs under every answer until rated) --------------------

@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The servers keeping conversations in SQLite, as `make run` does (the shared stack keeps them in memory),
    so the test reads the stored record."""
    workdir = tmp_path_factory.mktemp("recorded")
    running = store_stack(workdir, {"DATA_DIR": str(workdir / "data")})
    try:
        yield running.start()
    finally:
        running.stop()


def stored_feedback(stack: Stack, sender: str) -> list:
    """The thumbs stored in the conversation, oldest first, read from the conversation store itself."""
    url = Settings.from_env({**stack.base_env, **stack.env}).conversations_url
    events = stored_events(url, Stack.conversation_id(sender))
    return [e["value"] for e in events if e.get("event") == "slot" and e.get("name") == "feedback"]


def thumbs(stack: Stack, sender: str, value: str, **extra: object) -> requests.Response:
    return requests.post(f"{stack.url}/webhooks/rest/feedback", headers=stack.auth, timeout=30,
                         json={"sender": sender, "value": value, **extra})


def test_a_thumbs_under_an_older_answer_rates_that_answer(recorded: Stack) -> None:
    stack = recorded
    snapshot = served_snapshot(stack.workdir)
    sender, first_id, second_id = new_sender(), str(uuid.uuid4()), str(uuid.uuid4())
    first = fact_of(snapshot, say_once(stack, sender, "how long is the downtime?", first_id)[-1]["text"])
    second = fact_of(snapshot, say_once(stack, sender, "do you numb the skin first?", second_id)[-1]["text"])
    assert first != second  # otherwise the test could not tell which answer was rated

    assert thumbs(stack, sender, "down", message_id=first_id).status_code == 204
    assert stored_feedback(stack, sender) == [{"value": "down", "fact": first, "message_id": first_id}]
    assert thumbs(stack, sender, "up").status_code == 204  # without a message_id: the latest answer, as before
    assert stored_feedback(stack, sender)[-1] == {"value": "up", "fact": second}

    elsewhere = new_sender()
    other_id = str(uuid.uuid4())
    say_once(stack, elsewhere, "how long is the downtime?", other_id)
    for unknown in (str(uuid.uuid4()), other_id):  # never sent, or sent in another conversation
        reply = thumbs(stack, sender, "up", message_id=unknown)
        assert reply.status_code == 404 and "no answer" in reply.json()["error"]
    for malformed in ("short", first_id + "\n", 12345678, "../" + first_id):
        reply = thumbs(stack, sender, "up", message_id=malformed)
        assert reply.status_code == 400 and "message_id" in reply.json()["error"]
    assert len(stored_feedback(stack, sender)) == 2 and stored_feedback(stack, elsewhere) == []
