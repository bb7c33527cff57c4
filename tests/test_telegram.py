"""The Telegram channel end to end: real Rasa and action servers, a local fake Bot API.

Updates shaped as in the Bot API docs are posted to the running webhook
(/webhooks/telegram/webhook); the assertions are on what the fake Bot API
received. The channel answers in the background, so tests poll the fake with a
deadline. To show that an update was NOT answered, a /help is posted to the
same chat afterwards: the channel handles a chat's updates in order, so once
the help text has arrived, anything the earlier update caused would have too.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
import sqlalchemy as sa
import yaml

from clinic.replies import Message, render_fact
from clinic.settings import Settings
from devtools.harness.fake_telegram import FakeTelegram, telegram_credentials
from devtools.harness.records import stored_events
from devtools.harness.servers import PROJECT, Stack, running, served_snapshot, stop, store_stack

pytestmark = pytest.mark.servers

TOKEN = "7000002:e2e-test-token"
SECRET = "e2e_secret-123"
USERNAME = "DemoClinicBot"
WEBHOOK_URL = "https://clinic.example.com/webhooks/telegram/webhook"
_update_ids = itertools.count(500)
DOWNTIME_QUESTION = "how long does the redness last?"  # the model is sure of this one (ask_downtime)
STAFF_CHAT = -4_000_000_001  # where staff alerts go (ALERT_TELEGRAM_CHAT)
PER_CHAT_LIMIT = 8  # messages a minute; no other test sends that many to one chat


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN, username=USERNAME)) as server:
        yield server


@pytest.fixture(scope="module")
def tg(fake: FakeTelegram, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Rasa + actions with Telegram on, serving a private copy of the fact store; conversations, the outbox and
    staff alerts in the SQLite database `make run` uses (so tests can read the record)."""
    workdir = tmp_path_factory.mktemp("telegram")
    stack = store_stack(workdir, {"DATA_DIR": str(workdir / "data")}, **fake.channel_env(SECRET),
                        TELEGRAM_BOT_USERNAME=USERNAME, TELEGRAM_WEBHOOK_URL=WEBHOOK_URL,
                        ALERT_TELEGRAM_CHAT=str(STAFF_CHAT), RATE_LIMIT_PER_SENDER=str(PER_CHAT_LIMIT))
    stack.credentials = telegram_credentials(workdir)
    with running(stack) as started:
        yield started


def database(stack: Stack) -> str:
    """The URL of the stack's conversations database (also the outbox's and the alerts')."""
    return Settings.from_env({**stack.base_env, **stack.env}).conversations_url


def record(stack: Stack, conversation: str, type_name: Optional[str] = None) -> List[Dict[str, Any]]:
    return stored_events(database(stack), conversation, type_name)


def run_sql(stack: Stack, *statements: str) -> None:
    engine = sa.create_engine(database(stack))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def staff_alerts(stack: Stack, conversation: str) -> List[Any]:
    engine = sa.create_engine(database(stack))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT kind, channel FROM staff_alerts WHERE conversation_id = :c"),
                                     {"c": conversation}))
    finally:
        engine.dispose()


def press(chat: int, data: str, update_id: Optional[int] = None, message_id: int = 1001) -> Dict[str, Any]:
    """A callback_query update: the patient pressed a button carrying `data`."""
    update_id = update_id if update_id is not None else next(_update_ids)
    return {"update_id": update_id, "callback_query": {
        "id": f"cbq-{update_id}", "from": user(chat), "chat_instance": "-9", "data": data,
        "message": {"message_id": message_id, "date": 1, "chat": {"id": chat, "type": "private"}}}}


def urgent_turns(stack: Stack, conversation: str) -> List[Dict[str, Any]]:
    urgent = fact(stack, "urgent", with_buttons=False).text
    return [e for e in record(stack, conversation, "bot") if e.get("text") == urgent
            and ((e.get("metadata") or {}).get("clinic") or {}).get("kind") == "urgent"]


def fact(stack: Stack, fact_id: str, with_buttons: bool = True) -> Message:
    snapshot = served_snapshot(stack.workdir)
    return render_fact(snapshot, snapshot.facts[fact_id], with_buttons=with_buttons)


def thumbs(update_id: int) -> List[List[Dict[str, str]]]:
    """The thumbs under an answer: their data names the update whose message the answer answered."""
    return [[{"text": "👍 Helpful", "callback_data": f"feedback:up:{update_id}"}],
            [{"text": "👎 Not helpful", "callback_data": f"feedback:down:{update_id}"}]]


def keyboard(message: Message, rated_for: Optional[int] = None) -> Dict[str, Any]:
    """The inline keyboard of a message; an answer (to the update `rated_for`) also carries the thumbs."""
    rows = [[{"text": b.title, "callback_data": b.payload}] for b in message.buttons]
    return {"inline_keyboard": rows + (thumbs(rated_for) if rated_for is not None else [])}


def new_chat() -> int:
    return random.randint(10_000_000, 2_000_000_000)


def user(chat_id: int) -> Dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Pat", "language_code": "en"}


def message_update(chat_id: int, chat_type: str = "private", kind: str = "message", **content: Any) -> Dict[str, Any]:
    chat = {"id": chat_id, "type": chat_type, **({"first_name": "Pat"} if chat_type == "private" else
                                                 {"title": "Skin questions"})}
    sender = user(chat_id if chat_type == "private" else 4242)
    body = {"message_id": content.pop("message_id", 1), "from": sender, "chat": chat, "date": 1764150000, **content}
    return {"update_id": next(_update_ids), kind: body}


def text_update(chat_id: int, text: str, **extra: Any) -> Dict[str, Any]:
    if text.startswith("/"):
        extra.setdefault("entities", [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}])
    return message_update(chat_id, text=text, **extra)


def post(stack: Stack, update: Any, secret: str | None = SECRET) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    body = update if isinstance(update, (bytes, str)) else json.dumps(update)
    return requests.post(f"{stack.url}/webhooks/telegram/webhook", data=body, headers=headers, timeout=30)


def deliver(stack: Stack, update: Any) -> None:
    reply = post(stack, update)
    assert reply.status_code == 200, reply.text


def wait_for_texts(fake: FakeTelegram, chat_id: int, count: int) -> List[str]:
    return fake.wait_for(lambda: len(fake.sent_texts(chat_id)) >= count and fake.sent_texts(chat_id),
                         what=f"{count} messages to chat {chat_id}")


def help_barrier(stack: Stack, fake: FakeTelegram, chat_id: int, chat_type: str = "private") -> List[str]:
    """Posts /help and waits for its answer: everything posted to the chat before it has been handled."""
    before = len(fake.sent_texts(chat_id))
    deliver(stack, message_update(chat_id, chat_type, text="/help",
                                  entities=[{"offset": 0, "length": 5, "type": "bot_command"}]))
    help_text = fact(stack, "help").text
    return fake.wait_for(lambda: help_text in fake.sent_texts(chat_id)[before:] and fake.sent_texts(chat_id),
                         what=f"the /help answer in chat {chat_id}")


def test_the_webhook_is_registered_at_start_with_the_secret(tg: Stack, fake: FakeTelegram) -> None:
    [call] = fake.wait_for(lambda: fake.calls("setWebhook", ok_only=True), what="setWebhook")
    assert call.params == {"url": WEBHOOK_URL, "secret_token": SECRET,
                           "allowed_updates": ["message", "edited_message", "callback_query"],
                           "drop_pending_updates": False}
    assert fake.calls("getMe", ok_only=True)
    [menu] = fake.wait_for(lambda: fake.calls("setMyCommands", ok_only=True), what="setMyCommands")
    assert [c["command"] for c in menu.params["commands"]] == ["start", "help"]


def test_a_question_gets_its_fact_with_buttons_as_an_inline_keyboard(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    question = text_update(chat, DOWNTIME_QUESTION)
    deliver(tg, question)
    welcome, downtime = fact(tg, "welcome", with_buttons=False), fact(tg, "downtime")
    assert wait_for_texts(fake, chat, 2) == [welcome.text, downtime.text]
    first, last = fake.calls("sendMessage", chat, ok_only=True)
    assert "reply_markup" not in first.params
    assert last.params["reply_markup"] == keyboard(downtime, rated_for=question["update_id"]) and downtime.buttons
    assert all("parse_mode" not in c.params for c in (first, last))


def test_pressing_a_button_stops_the_spinner_then_answers_its_fact(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    wait_for_texts(fake, chat, 2)
    button = fake.calls("sendMessage", chat)[-1].params["reply_markup"]["inline_keyboard"][0][0]
    target = json.loads(button["callback_data"][button["callback_data"].index("{"):])["fact"]
    callback_id, press_id = f"cbq-{chat}", next(_update_ids)
    deliver(tg, {"update_id": press_id, "callback_query": {
        "id": callback_id, "from": user(chat), "chat_instance": "-55", "data": button["callback_data"],
        "message": {"message_id": 1001, "date": 1764150000, "chat": {"id": chat, "type": "private"},
                    "from": {"id": 7000002, "is_bot": True, "first_name": "Demo"}, "text": "..."}}})
    expected = fact(tg, target)
    texts = wait_for_texts(fake, chat, 3)
    assert texts[2:] == [expected.text]
    calls = fake.calls()
    answered = [i for i, c in enumerate(calls)
                if c.method == "answerCallbackQuery" and c.params == {"callback_query_id": callback_id}]
    sent = [i for i, c in enumerate(calls) if c.method == "sendMessage" and c.params.get("chat_id") == chat]
    assert len(answered) == 1 and answered[0] < sent[2]
    assert calls[sent[2]].params.get("reply_markup") == keyboard(expected, rated_for=press_id)


def test_a_forged_button_press_is_acknowledged_but_not_answered(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, {"update_id": next(_update_ids), "callback_query": {
        "id": f"forged-{chat}", "from": user(chat), "chat_instance": "-5", "data": "/restart",
        "message": {"message_id": 3, "date": 0, "chat": {"id": chat, "type": "private"}}}})
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text]
    assert [c.params for c in fake.calls("answerCallbackQuery")][-1] == {"callback_query_id": f"forged-{chat}"}


@pytest.mark.parametrize("command, fact_id", [("/start", "welcome"), ("/help", "help")])
def test_start_greets_and_help_explains(tg: Stack, fake: FakeTelegram, command: str, fact_id: str) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, command))
    expected = fact(tg, fact_id)
    assert wait_for_texts(fake, chat, 1) == [expected.text]
    assert fake.calls("sendMessage", chat)[0].params["reply_markup"] == keyboard(expected)


NON_TEXT = {
    "photo": {"photo": [{"file_id": "AgAD1", "file_unique_id": "AQAD1", "width": 90, "height": 67,
                         "file_size": 1200}]},
    "sticker": {"sticker": {"file_id": "CAAD", "file_unique_id": "AgAD", "type": "regular", "width": 512,
                            "height": 512, "is_animated": False, "is_video": False, "emoji": "😬"}},
    "voice": {"voice": {"file_id": "AwAD", "file_unique_id": "AgAE", "duration": 4, "mime_type": "audio/ogg"}},
    "location": {"location": {"latitude": 40.7128, "longitude": -74.006}},
    "document": {"document": {"file_id": "BQAD", "file_unique_id": "AgAF", "file_name": "my-skin.pdf",
                              "mime_type": "application/pdf"}},
}


@pytest.mark.parametrize("kind", sorted(NON_TEXT))
def test_non_text_gets_the_text_only_reply_once(tg: Stack, fake: FakeTelegram, kind: str) -> None:
    chat = new_chat()
    deliver(tg, message_update(chat, **NON_TEXT[kind]))
    assert help_barrier(tg, fake, chat) == [fact(tg, "not_text").text, fact(tg, "help").text]


def test_a_photo_caption_naming_a_warning_sign_still_gets_the_urgent_answer(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, message_update(chat, caption="my skin is oozing pus and I have a fever", **NON_TEXT["photo"]))
    assert wait_for_texts(fake, chat, 2) == [fact(tg, "not_text").text, fact(tg, "urgent").text]


def test_an_edited_message_is_ignored(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, message_update(chat, kind="edited_message", text=DOWNTIME_QUESTION,
                               edit_date=1764150100))
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text]


def test_an_edit_that_adds_a_warning_sign_gets_the_urgent_answer(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, message_update(chat, kind="edited_message", edit_date=1764150100,
                               text=DOWNTIME_QUESTION + " and now there is pus and I have a fever"))
    assert wait_for_texts(fake, chat, 1) == [fact(tg, "urgent", with_buttons=False).text]
    # in the record, as the dialogue's urgent answers are, and the staff are told
    fake.wait_for(lambda: urgent_turns(tg, f"telegram:{chat}"), what="the urgent reply in the record")
    fake.wait_for(lambda: ("urgent", "telegram") in staff_alerts(tg, f"telegram:{chat}"), what="the staff alert")


def test_a_long_message_is_read_to_its_end_for_warning_signs(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    long = "I had microneedling last week and I want to describe everything. " * 70 + "Now I have a fever and pus."
    deliver(tg, text_update(chat, long))
    texts = wait_for_texts(fake, chat, 2)
    assert texts[:2] == [fact(tg, "urgent", with_buttons=False).text, fact(tg, "message_too_long").text]
    fake.wait_for(lambda: urgent_turns(tg, f"telegram:{chat}"), what="the urgent reply in the record")
    fake.wait_for(lambda: ("urgent", "telegram") in staff_alerts(tg, f"telegram:{chat}"), what="the staff alert")


def test_a_photo_gets_the_phone_numbers(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, message_update(chat, **NON_TEXT["photo"]))
    [text] = wait_for_texts(fake, chat, 1)
    settings = served_snapshot(tg.workdir).settings
    assert settings["phone"] in text and settings["after_hours_phone"] in text


def test_the_assistant_shows_typing_while_it_answers(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    wait_for_texts(fake, chat, 2)
    assert {"chat_id": chat, "action": "typing"} in [c.params for c in fake.calls("sendChatAction")]


def test_in_a_group_each_member_has_a_conversation_and_urgent_replies_go_privately(
        tg: Stack, fake: FakeTelegram) -> None:
    group, alice, bob = -new_chat(), new_chat(), new_chat()

    def from_member(member: int, message_id: int, text: str) -> Dict[str, Any]:
        update = message_update(group, "supergroup", message_id=message_id, text="@DemoClinicBot " + text,
                                entities=[{"offset": 0, "length": 14, "type": "mention"}])
        update["message"]["from"] = user(member)
        return update

    deliver(tg, from_member(alice, 20, "my face is swollen, hot and I have a fever"))
    private = fake.wait_for(lambda: fake.sent_texts(alice), what="the urgent answer, privately")
    assert fact(tg, "urgent", with_buttons=False).text in private
    group_texts = wait_for_texts(fake, group, 1)
    assert group_texts == [fact(tg, "urgent_sent_privately").text]  # the group never sees the details
    deliver(tg, from_member(bob, 21, "hello"))
    texts = wait_for_texts(fake, group, 2)
    # Bob starts his own conversation: welcomed, not answered in Alice's context
    assert texts[1].startswith(fact(tg, "welcome", with_buttons=False).text)



def test_updates_nobody_wrote_to_us_are_silent(tg: Stack, fake: FakeTelegram) -> None:
    chat, channel = new_chat(), -1000000000000 - new_chat()
    member = {"user": user(chat), "status": "member"}
    updates = [
        {"channel_post": {"message_id": 9, "sender_chat": {"id": channel, "type": "channel", "title": "News"},
                          "chat": {"id": channel, "type": "channel", "title": "News"}, "date": 1, "text": "Sale!"}},
        {"my_chat_member": {"chat": {"id": chat, "type": "private", "first_name": "Pat"}, "from": user(chat),
                            "date": 1, "old_chat_member": member,
                            "new_chat_member": {"user": user(chat), "status": "kicked", "until_date": 0}}},
        {"chat_member": {"chat": {"id": channel, "type": "supergroup", "title": "G"}, "from": user(chat), "date": 1,
                         "old_chat_member": member, "new_chat_member": {**member, "status": "left"}}},
        {"poll": {"id": "5", "question": "?", "options": [], "total_voter_count": 0, "is_closed": True,
                  "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}},
        {"message_reaction": {"chat": {"id": chat, "type": "private"}, "message_id": 1, "date": 1}},
        {"brand_new_kind": {"chat": {"id": chat}}},
    ]
    for update in updates:
        deliver(tg, {"update_id": next(_update_ids), **update})
    deliver(tg, message_update(chat, new_chat_title="renamed"))  # a service message in a private chat
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text]
    assert fake.calls("sendMessage", channel) == []


def test_in_a_group_only_messages_addressed_to_the_bot_are_answered(tg: Stack, fake: FakeTelegram) -> None:
    group = -new_chat()
    deliver(tg, message_update(group, "supergroup", message_id=10, text=DOWNTIME_QUESTION))
    deliver(tg, message_update(group, "supergroup", message_id=11, text="@DemoClinicBot " + DOWNTIME_QUESTION,
                               entities=[{"offset": 0, "length": 14, "type": "mention"}]))
    welcome, downtime = fact(tg, "welcome", with_buttons=False), fact(tg, "downtime")
    assert wait_for_texts(fake, group, 2) == [welcome.text, downtime.text]
    replied_to = {c.params["reply_parameters"]["message_id"] for c in fake.calls("sendMessage", group)}
    assert replied_to == {11}
    reply_to_bot = {"message_id": 1002, "date": 1, "chat": {"id": group, "type": "supergroup"},
                    "from": {"id": 7000002, "is_bot": True, "first_name": "Demo", "username": USERNAME}}
    deliver(tg, message_update(group, "supergroup", message_id=12, text="do you numb the skin?",
                               reply_to_message=reply_to_bot))
    assert len(wait_for_texts(fake, group, 3)) == 3
    assert fake.calls("sendMessage", group)[-1].params["reply_parameters"]["message_id"] == 12


@pytest.mark.parametrize("secret, status", [(None, 401), ("wrong", 403), (SECRET + "x", 403), ("", 401)])
def test_a_missing_or_wrong_secret_is_refused_and_nothing_is_sent(
        tg: Stack, fake: FakeTelegram, secret: str | None, status: int) -> None:
    chat = new_chat()
    assert post(tg, text_update(chat, "/help"), secret=secret).status_code == status
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"update"', b"", b"\xff\xfe"])
def test_malformed_bodies_get_a_400(tg: Stack, body: bytes) -> None:
    assert post(tg, body).status_code == 400


def test_a_repeated_update_is_answered_once(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    update = text_update(chat, "/help")
    deliver(tg, update)
    deliver(tg, update)
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text] * 2


def test_an_update_delivered_again_after_a_restart_is_answered_once(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    update = text_update(chat, "/help")
    deliver(tg, update)
    wait_for_texts(fake, chat, 1)
    stop(tg.rasa)  # its memory of update ids is gone; the database's is not
    tg.start_rasa()
    deliver(tg, update)
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text] * 2


@pytest.mark.parametrize("status, retry_after", [(429, 1), (502, None)])
def test_rate_limits_and_server_errors_are_retried_and_delivered_once(
        tg: Stack, fake: FakeTelegram, status: int, retry_after: int | None) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", status, retry_after=retry_after)
    deliver(tg, text_update(chat, "/help"))
    assert wait_for_texts(fake, chat, 1) == [fact(tg, "help").text]
    assert [c.status for c in fake.calls("sendMessage", chat)] == [status, 200]


def test_special_characters_arrive_exactly_as_written(tg: Stack, fake: FakeTelegram) -> None:
    path = Path(tg.workdir / "facts" / "conversation.yml")
    original = path.read_text()
    data = yaml.safe_load(original)
    special = "Markdown _*[]()~`>#+-=|{}.! and HTML 5 < 6 > 4 & &amp; call {phone}."
    next(f for f in data["facts"] if f["id"] == "help")["text"] = special
    try:
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        expected = fact(tg, "help").text
        assert "_*[]()~`>#+-=|{}.!" in expected and "<" in expected and "&amp;" in expected

        def help_in_a_new_chat() -> Dict[str, Any]:
            chat = new_chat()
            deliver(tg, text_update(chat, "/help"))
            wait_for_texts(fake, chat, 1)
            return fake.calls("sendMessage", chat, ok_only=True)[0].params

        params = fake.wait_for(lambda: (p := help_in_a_new_chat())["text"] == expected and p, timeout=30,
                               what="the edited help text")  # the store reloads within about a second
        assert params["text"] == expected and "parse_mode" not in params
    finally:
        path.write_text(original)
    original_help = fact(tg, "help").text
    fake.wait_for(lambda: help_in_a_new_chat()["text"] == original_help, timeout=30, what="the original help text")


def test_the_action_server_down_gets_the_apology_then_recovers(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    stop(tg.actions)
    try:
        deliver(tg, text_update(chat, "how long does the redness last?"))
        assert wait_for_texts(fake, chat, 1) == [fact(tg, "action_error").text]
    finally:
        tg.start_actions()
    deliver(tg, text_update(chat, "how long does the redness last?"))
    assert wait_for_texts(fake, chat, 2)[-1] == fact(tg, "downtime").text


def test_the_project_credentials_list_the_channel() -> None:
    assert "channels.telegram.TelegramChannel" in yaml.safe_load((PROJECT / "credentials.yml").read_text())


def test_without_a_token_the_channel_is_off(stack: Stack) -> None:
    """The shared stack runs the project's credentials.yml with no TELEGRAM_TOKEN: 404, nothing called."""
    if os.environ.get("TELEGRAM_TOKEN"):
        pytest.skip("TELEGRAM_TOKEN is set in this environment")
    assert post(stack, text_update(new_chat(), "/help")).status_code == 404
    assert requests.get(f"{stack.url}/webhooks/telegram/", timeout=10).json() == {"status": "ok", "enabled": False}


def test_replies_survive_a_long_bot_api_outage_and_are_delivered_once(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", 502, times=7)  # longer than the client's own retries (about 3.5 s)
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    texts = wait_for_texts(fake, chat, 2)
    welcome, downtime = fact(tg, "welcome", with_buttons=False), fact(tg, "downtime")
    assert texts == [welcome.text, downtime.text]  # in order, each once
    assert help_barrier(tg, fake, chat)[:2] == [welcome.text, downtime.text]


def test_a_long_retry_after_is_waited_for_not_dropped(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", 429, times=1, retry_after=35)  # beyond the client's 30 s patience
    deliver(tg, text_update(chat, "/help", entities=[{"offset": 0, "length": 5, "type": "bot_command"}]))
    texts = fake.wait_for(lambda: fake.sent_texts(chat), timeout=90, what="the help text after retry_after")
    assert texts == [fact(tg, "help").text]


def test_a_message_accepted_but_answered_too_late_is_not_sent_twice(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", 200, times=1, delay_s=12)  # past the client's 10 s timeout
    deliver(tg, text_update(chat, "/help", entities=[{"offset": 0, "length": 5, "type": "bot_command"}]))
    fake.wait_for(lambda: fake.sent_texts(chat), timeout=60, what="the slow delivery")
    barrier = help_barrier(tg, fake, chat)
    assert barrier == [fact(tg, "help").text] * 2  # the slow one once, the barrier's once


def test_a_thumbs_down_under_an_answer_is_recorded_and_thanked(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    question = text_update(chat, DOWNTIME_QUESTION)
    deliver(tg, question)
    wait_for_texts(fake, chat, 2)
    rows = fake.calls("sendMessage", chat)[-1].params["reply_markup"]["inline_keyboard"]
    assert rows[-2:] == thumbs(question["update_id"])
    deliver(tg, {"update_id": next(_update_ids), "callback_query": {
        "id": f"thumb-{chat}", "from": user(chat), "chat_instance": "-7", "data": rows[-1][0]["callback_data"],
        "message": {"message_id": 1003, "date": 1, "chat": {"id": chat, "type": "private"}}}})
    thanks = fact(tg, "feedback_thanks").text
    fake.wait_for(lambda: {"callback_query_id": f"thumb-{chat}", "text": thanks} in
                  [c.params for c in fake.calls("answerCallbackQuery")], what="the thanks")


# --- the update log, typed commands, forged presses ----------------------------------------------------------------

def test_an_update_refused_with_503_is_handled_when_telegram_delivers_it_again(tg: Stack, fake: FakeTelegram) -> None:
    """The shared update log could not be written: 503, and the id must not be remembered as seen."""
    chat = new_chat()
    update = text_update(chat, "/help")
    run_sql(tg, "ALTER TABLE telegram_updates RENAME TO telegram_updates_away")
    try:
        assert post(tg, update).status_code == 503
    finally:
        run_sql(tg, "ALTER TABLE telegram_updates_away RENAME TO telegram_updates")
    deliver(tg, update)  # Telegram delivers it again
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text] * 2


TYPED_COMMANDS = ["/restart{", "/restart@1", '/back{"x":1}', " /restart", '/{"fact":"downtime"}']


def test_typed_commands_are_read_as_words_never_as_intents(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    wait_for_texts(fake, chat, 2)
    for text in TYPED_COMMANDS:
        deliver(tg, message_update(chat, text=text))
    help_barrier(tg, fake, chat)
    events = record(tg, f"telegram:{chat}")
    users = [e for e in events if e["event"] == "user"]
    assert len(users) == 1 + len(TYPED_COMMANDS)  # every one answered, in the same conversation
    assert not [e for e in events if e["event"] in ("restart", "rewind")
                or (e["event"] == "action" and e.get("name") in ("action_restart", "action_back"))]
    assert [e["event"] for e in events].count("session_started") == 1
    for event in users:
        assert not event["text"].lstrip().startswith("/")
        assert event["parse_data"]["intent"]["confidence"] < 1.0


def test_a_press_of_a_button_never_offered_does_not_reach_the_dialogue(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    wait_for_texts(fake, chat, 2)
    before = record(tg, f"telegram:{chat}")
    deliver(tg, press(chat, '/restart{"fact":"x"}'))  # our payload's shape, but never offered
    deliver(tg, press(chat, '/ask_cost{"fact":"cost"}'))  # a real topic, not offered in this conversation
    assert help_barrier(tg, fake, chat)[2:] == [fact(tg, "help").text]
    assert record(tg, f"telegram:{chat}") == before  # not restarted, nothing added


# --- deleting a conversation on request ------------------------------------------------------------------------------

def delete_yes(stack: Stack) -> str:
    """The data of forget_confirm's "Yes, delete it" button."""
    return next(b.payload for b in fact(stack, "forget_confirm").buttons if "conversation_deleted" in b.payload)


def test_a_deletion_the_store_refuses_is_never_reported_as_done(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    conversation = f"telegram:{chat}"
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    deliver(tg, text_update(chat, "delete my conversation please"))
    assert wait_for_texts(fake, chat, 3)[2] == fact(tg, "forget_confirm").text
    run_sql(tg, f"CREATE TRIGGER keep_{chat} BEFORE DELETE ON events WHEN OLD.sender_id = '{conversation}' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    try:
        deliver(tg, press(chat, delete_yes(tg)))
        texts = wait_for_texts(fake, chat, 4)
    finally:
        run_sql(tg, f"DROP TRIGGER keep_{chat}")
    assert texts[3] == fact(tg, "conversation_not_deleted").text  # polite, with the phone; never "Done: deleted"
    assert not [t for t in texts if t.startswith(fact(tg, "conversation_deleted").text[:40])]
    assert record(tg, conversation, "user")  # indeed still there


def test_a_deletion_also_drops_the_replies_still_waiting_for_telegram(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deleted_text = fact(tg, "conversation_deleted").text
    fake.fail_next("sendMessage", 502, times=100_000, chat_id=chat)  # Telegram cannot take this chat's replies
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    deliver(tg, text_update(chat, "delete my conversation please"))
    deliver(tg, press(chat, delete_yes(tg)))
    fake.wait_for(lambda: deleted_text in [c.params.get("text") for c in fake.calls("sendMessage", chat)],
                  what="the confirmation's first attempt")  # the earlier replies no longer wait before it
    fake.clear_failures(chat)
    assert help_barrier(tg, fake, chat) == [deleted_text, fact(tg, "help").text]
    assert record(tg, f"telegram:{chat}", "user") == []


# --- thumbs, typing, and the Bot API's faults ------------------------------------------------------------------------

def test_thumbs_under_an_older_answer_rate_that_answer(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    first = wait_for_texts(fake, chat, 2)[1]
    first_keyboard = fake.calls("sendMessage", chat, ok_only=True)[-1].params["reply_markup"]["inline_keyboard"]
    deliver(tg, text_update(chat, "how much does it cost?"))
    second = wait_for_texts(fake, chat, 3)[2]
    second_keyboard = fake.calls("sendMessage", chat, ok_only=True)[-1].params["reply_markup"]["inline_keyboard"]
    assert second != first and second_keyboard[-1][0]["callback_data"].startswith("feedback:down:")  # an answer too
    deliver(tg, press(chat, first_keyboard[-1][0]["callback_data"]))  # 👎 under the FIRST answer
    fake.wait_for(lambda: record(tg, f"telegram:{chat}", "slot") and [
        e for e in record(tg, f"telegram:{chat}", "slot") if e["name"] == "feedback"], what="the stored feedback")
    [vote] = [e["value"] for e in record(tg, f"telegram:{chat}", "slot") if e["name"] == "feedback"]
    assert (vote["value"], vote["fact"]) == ("down", "downtime")


def test_typing_is_shown_again_while_a_slow_answer_is_prepared(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    assert tg.actions is not None
    os.kill(tg.actions.pid, signal.SIGSTOP)  # frozen: Rasa waits for the action timeout (10 s)
    try:
        deliver(tg, text_update(chat, DOWNTIME_QUESTION))
        wait_for_texts(fake, chat, 1)
    finally:
        os.kill(tg.actions.pid, signal.SIGCONT)
    calls = fake.calls()
    answered = next(i for i, c in enumerate(calls) if c.method == "sendMessage" and c.params.get("chat_id") == chat)
    typing = [c for c in calls[:answered] if c.method == "sendChatAction" and c.params.get("chat_id") == chat]
    assert len(typing) >= 2  # Telegram shows one for about 5 s: it was sent again while the answer was pending
    help_barrier(tg, fake, chat)


def test_a_hanging_answer_callback_query_does_not_delay_the_answer(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, DOWNTIME_QUESTION))
    wait_for_texts(fake, chat, 2)
    button = fake.calls("sendMessage", chat)[-1].params["reply_markup"]["inline_keyboard"][0][0]
    update = press(chat, button["callback_data"])
    callback_id = update["callback_query"]["id"]
    fake.fail_next("answerCallbackQuery", 200, delay_s=12)  # answered, 12 s late
    deliver(tg, update)
    wait_for_texts(fake, chat, 3)
    # the answer arrived while the acknowledgement was still hanging (the fake records a call when it answers)
    assert callback_id not in [c.params.get("callback_query_id") for c in fake.calls("answerCallbackQuery")]
    fake.wait_for(lambda: callback_id in [c.params.get("callback_query_id") for c in fake.calls("answerCallbackQuery")],
                  what="the late acknowledgement")


def test_an_urgent_message_in_a_group_from_a_member_the_bot_cannot_reach_gets_the_numbers_in_the_group(
        tg: Stack, fake: FakeTelegram) -> None:
    group, member = -new_chat(), new_chat()
    fake.fail_next("sendMessage", 403, chat_id=member, description="Forbidden: bot can't initiate conversation")
    update = message_update(group, "supergroup", message_id=30, text="@DemoClinicBot my face is swollen, hot and "
                            "I have a fever", entities=[{"offset": 0, "length": 14, "type": "mention"}])
    update["message"]["from"] = user(member)
    deliver(tg, update)
    assert wait_for_texts(fake, group, 1) == [fact(tg, "urgent_in_group").text]
    assert fake.sent_texts(member) == [] and [c.status for c in fake.calls("sendMessage", member)] == [403]


def test_the_deep_link_payload_of_start_is_stored_as_the_source(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    deliver(tg, text_update(chat, "/start spring-ad"))
    wait_for_texts(fake, chat, 1)
    [first] = fake.wait_for(lambda: record(tg, f"telegram:{chat}", "user"), what="the stored /start")
    assert first["metadata"]["source"] == "spring-ad"


def test_four_429s_in_a_row_then_the_reply_is_delivered_exactly_once(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    fake.fail_next("sendMessage", 429, times=4, retry_after=1, chat_id=chat)  # as many as the client's attempts
    deliver(tg, text_update(chat, "/help"))
    assert wait_for_texts(fake, chat, 1) == [fact(tg, "help").text]
    assert help_barrier(tg, fake, chat) == [fact(tg, "help").text] * 2
    assert [c.status for c in fake.calls("sendMessage", chat)] == [429] * 4 + [200] * 2


def test_an_urgent_message_with_the_action_server_stopped_gets_every_number(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    stop(tg.actions)
    try:
        deliver(tg, text_update(chat, "my face is swollen, hot and I have a fever"))
        [text] = wait_for_texts(fake, chat, 1)
    finally:
        tg.start_actions()
    settings = served_snapshot(tg.workdir).settings
    for number in ("phone", "after_hours_phone", "emergency_number"):
        assert str(settings[number]) in text, number


def test_a_chat_sending_too_fast_is_answered_politely(tg: Stack, fake: FakeTelegram) -> None:
    chat = new_chat()
    for _ in range(PER_CHAT_LIMIT + 1):
        deliver(tg, text_update(chat, "/start"))
    texts = wait_for_texts(fake, chat, PER_CHAT_LIMIT + 1)
    assert texts[-1] == fact(tg, "too_many_messages").text
    assert str(served_snapshot(tg.workdir).settings["phone"]) in texts[-1]


def test_an_update_being_handled_when_the_server_is_killed_is_answered_after_the_restart(
        tg: Stack, fake: FakeTelegram) -> None:
    """Telegram got its 200, so it never delivers the update again: the channel kept it in the database."""
    chat = new_chat()
    assert tg.actions is not None and tg.rasa is not None
    os.kill(tg.actions.pid, signal.SIGSTOP)  # the answer is still being prepared when the server dies
    try:
        deliver(tg, text_update(chat, DOWNTIME_QUESTION))
        fake.wait_for(lambda: fake.calls("sendChatAction", chat), what="the update being handled")
        os.killpg(tg.rasa.pid, signal.SIGKILL)  # no graceful stop: nothing is drained
        tg.rasa.wait(timeout=30)
    finally:
        os.kill(tg.actions.pid, signal.SIGCONT)
    tg.start_rasa()
    texts = fake.wait_for(lambda: len(fake.sent_texts(chat)) >= 2 and fake.sent_texts(chat), timeout=120,
                          what="the answer, after the restart")
    assert texts == [fact(tg, "welcome", with_buttons=False).text, fact(tg, "downtime").text]
    assert help_barrier(tg, fake, chat)[:2] == texts  # once
