"""What a message is about (clinic/scope.py): foreign words, words naming the topic, typos and word forms."""

from __future__ import annotations

from typing import List, Tuple

import pytest

from clinic.scope import Judgement, Vocabulary

# A miniature general English: common words, a few rarer ones, and what it has never seen.
ENGLISH = {"the": -3.0, "how": -5.0, "long": -7.4, "take": -7.5, "does": -6.0, "skin": -9.5, "face": -8.5,
           "red": -9.6, "redness": -13.9, "microneedling": -19.0, "scar": -12.1, "session": -11.1,
           "egg": -10.5, "boil": -11.9, "kitchen": -10.8, "wrinkle": -12.5, "wrinkly": -14.5, "charge": -9.5,
           "charger": -12.0, "sun": -9.0, "spots": -10.0, "sunspots": -16.0, "fully": -10.2, "treatment": -10.0,
           "consult": -12.3, "consultation": -11.5}
DOMAIN = (["how", "long", "take", "skin", "face", "red", "redness", "microneedling", "scar", "session",
           "wrinkle", "charge", "sun", "spots", "treatment", "consultation"] * 20
          + ["redness", "microneedling", "scar", "wrinkle", "skin", "consultation"] * 40)
OFF_TOPIC_TRAINING = ["session", "charge"] * 10  # "how many sessions of therapy", "what do you charge"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.build(DOMAIN, ENGLISH, OFF_TOPIC_TRAINING)


def words(text: str) -> List[Tuple[str, str]]:
    return [(w, w) for w in text.lower().split()]


def test_a_message_about_something_else_has_foreign_words_and_nothing_naming_the_topic(vocabulary) -> None:
    judgement = vocabulary.judge(words("boil egg"), "how long does it take to boil an egg")
    assert judgement.foreign == ("boil", "egg") and judgement.anchors == () and judgement.off_topic


def test_a_domain_word_names_the_topic_and_keeps_the_message_in_scope(vocabulary) -> None:
    judgement = vocabulary.judge(words("kitchen scar"), "a scar from a kitchen knife")
    assert judgement.anchors == ("scar",) and not judgement.off_topic


def test_generic_question_words_are_neither_foreign_nor_naming_the_topic(vocabulary) -> None:
    judgement = vocabulary.judge(words("long take"), "how long does it take")
    assert judgement == Judgement() and not judgement.off_topic


def test_naming_the_treatment_keeps_any_message_in_scope(vocabulary) -> None:
    assert not vocabulary.judge(words("kitchen"), "can I do micro-needling in my kitchen").off_topic


def test_a_word_shared_with_off_topic_training_does_not_name_the_topic(vocabulary) -> None:
    assert "session" in vocabulary.scores and "session" not in vocabulary.anchors
    assert "scar" in vocabulary.anchors


@pytest.mark.parametrize("typed, meant", [
    ("treatmnt", "treatment"),  # a letter missing
    ("microneedlling", "microneedling"),  # a letter too many
    ("wrinkly", "wrinkle"),  # another form of a word naming the topic
    ("sunspots", "spots"),  # two domain words joined
    ("consult", "consultation"),  # a shortened form
])
def test_misspellings_and_word_forms_are_read_as_the_domain_word(vocabulary, typed: str, meant: str) -> None:
    assert vocabulary.domain_word(typed, typed) == meant


def test_a_real_word_is_not_taken_for_a_form_of_a_common_domain_word(vocabulary) -> None:
    assert vocabulary.domain_word("charger", "charger") is None  # a phone charger is not a charge
    assert vocabulary.judge(words("charger"), "my old charger").foreign == ("charger",)


def test_adverbs_say_how_not_what(vocabulary) -> None:
    assert vocabulary.judge(words("fully"), "fully healed").foreign == ()


def test_the_vocabulary_survives_a_round_trip_through_json(vocabulary) -> None:
    again = Vocabulary.from_json(vocabulary.to_json())
    assert again.scores == vocabulary.scores and again.anchors == vocabulary.anchors
    assert again.judge(words("boil egg scar")) == vocabulary.judge(words("boil egg scar"))


def test_a_judgement_travels_as_parse_data_and_back() -> None:
    judgement = Judgement(("egg",), ("scar",), True)
    assert Judgement.from_dict(judgement.as_dict()) == judgement
    assert Judgement.from_dict(None) is None and Judgement.from_dict("junk") is None  # type: ignore[arg-type]
