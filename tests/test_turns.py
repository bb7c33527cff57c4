"""Which stored bot messages answered a message id (rasa_extensions/turns.py); the message path itself
runs against the real servers in test_reliability.py."""

from __future__ import annotations

from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered

from rasa_extensions.turns import stored_replies


def test_a_known_message_id_gives_the_replies_stored_after_it() -> None:
    events = [SessionStarted(), UserUttered("hi", message_id="m1"), ActionExecuted("action_answer"),
              BotUttered("welcome"), BotUttered("hello"), UserUttered("numbing?", message_id="m2"),
              BotUttered("we numb"), UserUttered("bye", message_id="m3")]
    assert [r["text"] for r in stored_replies(events, "m1") or []] == ["welcome", "hello"]
    assert [r["text"] for r in stored_replies(events, "m2") or []] == ["we numb"]
    assert stored_replies(events, "m3") == []  # stored, not answered: the record says so
    assert stored_replies(events, "m4") is None  # new
