"""Splitting long answers and building sendMessage calls (plain text: nothing is escaped or lost)."""

from __future__ import annotations

import pytest

from channels.telegram.format import (
    MAX_MESSAGE_UTF16,
    inline_keyboard,
    send_message_params,
    split_text,
    utf16_len,
)

SPECIALS = "Prices_*[from]*(~`>#+-=|{}.!) and 5 < 6 > 4 & <b>bold</b> &amp; _under_ *star* `code`"


def test_a_short_text_is_one_part_unchanged() -> None:
    assert split_text("How long is the redness?") == ["How long is the redness?"]
    assert split_text("   ") == [] and split_text("") == []


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    first, second = "a" * 3000, "b" * 3000
    assert split_text(f"{first}\n\n{second}") == [first, second]


def test_sentences_are_kept_whole() -> None:
    sentence = "Redness usually fades within two or three days. "
    text = sentence * 200  # ~9,800 characters, no line breaks
    parts = split_text(text)
    assert len(parts) == 3
    assert all(utf16_len(p) <= MAX_MESSAGE_UTF16 for p in parts)
    assert all(p.endswith("days.") for p in parts)
    assert " ".join(parts).split() == text.split()


def test_words_are_kept_whole_without_sentences() -> None:
    text = "redness " * 1500
    parts = split_text(text)
    assert all(utf16_len(p) <= MAX_MESSAGE_UTF16 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_one_endless_word_is_cut_hard_and_nothing_is_lost() -> None:
    text = "x" * 10000
    parts = split_text(text)
    assert [len(p) for p in parts] == [4096, 4096, 1808]
    assert "".join(parts) == text


def test_the_limit_counts_utf16_units_like_telegram() -> None:
    text = "😬" * 3000  # 6,000 UTF-16 units in 3,000 Python characters
    parts = split_text(text)
    assert len(parts) == 2 and all(utf16_len(p) <= MAX_MESSAGE_UTF16 for p in parts)
    assert "".join(parts) == text


def test_special_characters_arrive_exactly_as_written_with_no_parse_mode() -> None:
    [params] = send_message_params(42, SPECIALS)
    assert params["text"] == SPECIALS
    assert "parse_mode" not in params and params["chat_id"] == 42


def test_buttons_become_an_inline_keyboard_on_the_last_part_only() -> None:
    buttons = [{"title": "Makeup after", "payload": '/ask_aftercare{"fact":"aftercare_makeup"}'},
               {"title": "Book", "payload": "/book_appointment"}]
    calls = send_message_params(7, "word " * 2000, buttons, reply_to_message_id=99)
    assert len(calls) == 3
    assert [c.get("reply_markup") for c in calls[:-1]] == [None, None]
    assert calls[-1]["reply_markup"] == {"inline_keyboard": [
        [{"text": "Makeup after", "callback_data": '/ask_aftercare{"fact":"aftercare_makeup"}'}],
        [{"text": "Book", "callback_data": "/book_appointment"}],
    ]}
    assert calls[0]["reply_parameters"]["message_id"] == 99 and "reply_parameters" not in calls[1]


@pytest.mark.parametrize("buttons", [None, [], [{"title": "", "payload": "/x"}], [{"title": "T", "payload": ""}],
                                     [{"title": "Too long", "payload": "/" + "a" * 64}]])
def test_unusable_buttons_are_left_out(buttons) -> None:
    assert inline_keyboard(buttons) is None


def test_every_button_payload_the_store_makes_fits_callback_data_and_is_accepted_back(snapshot) -> None:
    from channels.telegram.updates import is_our_payload
    from clinic.replies import payload_for

    for fact in snapshot.facts.values():
        if fact.intents:
            assert len(payload_for(fact).encode()) <= 64, fact.id
            assert is_our_payload(payload_for(fact)), fact.id
