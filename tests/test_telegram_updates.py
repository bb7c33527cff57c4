"""Reading Telegram updates: what is answered, what is silence, and that nothing crashes."""

from __future__ import annotations

import pytest

from channels.telegram.updates import Incoming, is_our_payload, read_update, strip_mention

BOT = "DemoClinicBot"
BOT_ID = 7000001
USER = {"id": 111, "is_bot": False, "first_name": "Pat"}
PRIVATE = {"id": 111, "type": "private", "first_name": "Pat"}
GROUP = {"id": -100200, "type": "supergroup", "title": "Skin friends"}


def message(chat: dict = PRIVATE, **fields) -> dict:
    return {"update_id": 1, "message": {"message_id": 5, "date": 1700000000, "from": USER, "chat": chat, **fields}}


def test_private_text_goes_to_the_assistant() -> None:
    assert read_update(message(text="how long is the redness?"), BOT, BOT_ID) == \
        Incoming("text", 111, "private", "how long is the redness?", message_id=5, user_id=111)


@pytest.mark.parametrize("text, command", [("/start", "start"), ("/help", "help"), ("/HELP@DemoClinicBot", "help"),
                                           ("/start deeplink", "start"), ("/prices", "prices")])
def test_commands(text: str, command: str) -> None:
    incoming = read_update(message(text=text), BOT, BOT_ID)
    assert incoming.kind == "command" and incoming.text == command


@pytest.mark.parametrize("content", [
    {"photo": [{"file_id": "a", "file_unique_id": "b", "width": 90, "height": 90}]},
    {"sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                 "is_animated": False, "is_video": False}},
    {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}},
    {"location": {"latitude": 51.5, "longitude": -0.1}},
    {"document": {"file_id": "d", "file_unique_id": "u", "file_name": "skin.pdf"}},
])
def test_private_non_text_is_media(content: dict) -> None:
    incoming = read_update(message(**content), BOT, BOT_ID)
    assert incoming.kind == "media" and incoming.text == ""


def test_a_caption_is_kept_so_its_words_are_read() -> None:
    incoming = read_update(message(photo=[], caption="is this pus normal?"), BOT, BOT_ID)
    assert incoming.kind == "media" and incoming.text == "is this pus normal?"


@pytest.mark.parametrize("update", [
    {"update_id": 2, "edited_message": message(chat=GROUP, text="edited, not addressed to us")["message"]},
    {"update_id": 3, "channel_post": {"message_id": 1, "date": 1, "chat": {"id": -1001, "type": "channel"},
                                      "text": "news"}},
    {"update_id": 4, "my_chat_member": {"chat": PRIVATE, "from": USER, "date": 1,
                                        "old_chat_member": {"status": "member", "user": USER},
                                        "new_chat_member": {"status": "kicked", "user": USER}}},
    {"update_id": 5, "chat_member": {"chat": GROUP, "from": USER, "date": 1}},
    {"update_id": 6, "poll": {"id": "p", "question": "?", "options": []}},
    {"update_id": 7, "something_new_in_2030": {"x": 1}},
    message(new_chat_members=[USER]),  # a service message
    message(chat=GROUP, text="how long is the redness?"),  # not addressed to us
    message(chat=GROUP, text="/help@OtherBot"),
    message(text="hello", **{"from": {"id": 9, "is_bot": True, "first_name": "Other bot"}}),
    {}, {"message": None}, {"message": "text"}, {"message": {"chat": {"id": "x"}}}, [], None, 5, "update",
    {"callback_query": {"data": "/greet"}},  # no id
])
def test_silence(update) -> None:
    assert read_update(update, BOT, BOT_ID) is None


def test_a_group_message_mentioning_the_bot_is_answered_without_the_mention() -> None:
    update = message(chat=GROUP, text="@democlinicbot how long is the redness?",
                     entities=[{"type": "mention", "offset": 0, "length": 14}])
    assert read_update(update, BOT, BOT_ID) == \
        Incoming("text", -100200, "supergroup", "how long is the redness?", message_id=5, user_id=111)


def test_a_group_reply_to_the_bot_is_answered() -> None:
    update = message(chat=GROUP, text="and how long does that last?",
                     reply_to_message={"message_id": 4, "date": 1, "chat": GROUP,
                                       "from": {"id": BOT_ID, "is_bot": True, "first_name": "Demo"}})
    assert read_update(update, BOT, BOT_ID).kind == "text"
    # a reply to another person is not for us
    update["message"]["reply_to_message"]["from"] = USER
    assert read_update(update, BOT, BOT_ID) is None


def test_mention_offsets_count_utf16_units() -> None:
    text = "😬 @DemoClinicBot is it painful?"
    update = message(chat=GROUP, text=text, entities=[{"type": "mention", "offset": 3, "length": 14}])
    assert read_update(update, "", BOT_ID) is None  # no username known: cannot be a mention of us
    assert read_update(update, BOT, BOT_ID).text == "😬 is it painful?"
    assert strip_mention("@DemoClinicBot, do you numb it?", BOT) == "do you numb it?"
    assert strip_mention("mail me@DemoClinicBot.com", BOT) == "mail me@DemoClinicBot.com"


def test_a_callback_query() -> None:
    update = {"update_id": 9, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": USER, "chat_instance": "-1",
        "data": '/ask_aftercare{"fact":"aftercare_makeup"}',
        "message": {"message_id": 77, "date": 1, "chat": PRIVATE, "text": "..."}}}
    assert read_update(update, BOT, BOT_ID) == Incoming(
        "callback", 111, "private", '/ask_aftercare{"fact":"aftercare_makeup"}', message_id=77,
        callback_id="4382bfdwdsb323b2d9", user_id=111)


@pytest.mark.parametrize("data, ours", [
    ('/ask_aftercare{"fact":"aftercare_makeup"}', True), ('/book_appointment{"fact":"booking"}', True),
    ("/restart", False), ("/book_appointment", False), ('/ask_cost{"fact":"x","intent":"y"}', False),
    ("hello", False), ("", False),
    ('/ask_cost{"fact":"../../etc"}', False),
])
def test_only_our_payload_shape_reaches_the_dialogue(data: str, ours: bool) -> None:
    assert is_our_payload(data) is ours


def test_an_edited_message_is_read_for_warning_signs_only() -> None:
    update = {"update_id": 3, "edited_message": message(text="and now I have a fever")["message"]}
    assert read_update(update, BOT, BOT_ID) == Incoming("edited", 111, "private", "and now I have a fever",
                                                        message_id=5, user_id=111)


def test_the_start_payload_of_a_deep_link_is_kept() -> None:
    update = message(text="/start spring-ad", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    incoming = read_update(update, BOT, BOT_ID)
    assert incoming is not None and (incoming.kind, incoming.text, incoming.argument) == ("command", "start",
                                                                                           "spring-ad")


@pytest.mark.parametrize("typed", ["/restart{", "/restart@1", '/back{"x":1}', " /restart", '/{"fact":"x"}',
                                   '/ask_cost{"fact":"cost"}'])
def test_typed_text_never_reaches_rasa_as_a_command(typed: str) -> None:
    from channels.telegram.channel import patient_text

    assert not patient_text(typed).lstrip().startswith("/")


def test_the_thumbs_name_the_answer_they_rate_within_telegrams_64_bytes() -> None:
    from channels.telegram.channel import FEEDBACK, with_feedback_buttons
    from channels.telegram.format import MAX_CALLBACK_DATA_BYTES

    [message] = with_feedback_buttons([{"text": "answer"}], answers=2 ** 53 - 1)
    data = [b["payload"] for b in message["buttons"]]
    assert all(len(d.encode()) <= MAX_CALLBACK_DATA_BYTES for d in data)
    assert [FEEDBACK.match(d).groups() for d in data] == [("up", str(2 ** 53 - 1)), ("down", str(2 ** 53 - 1))]
    assert FEEDBACK.match("feedback:up").groups() == ("up", None)  # thumbs sent before the reference existed
    assert FEEDBACK.match("feedback:up:1; DROP") is None
