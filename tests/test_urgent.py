"""The channel's own urgent answer (clinic/urgent.py), for when the dialogue cannot answer at all.

With the action server down or frozen, the REST channel, rasa_extensions/turns.py and the Telegram
channel decide from the words alone. A warning sign in the patient's language (data/languages.yml)
must reach the urgent answer, with what to do now in that language first, and every number.
"""

from __future__ import annotations

from typing import List

import pytest

from clinic import channel_texts, languages, urgent
from clinic.fact_store import Snapshot, default_store
from clinic.replies import render_fact

NUMBERS = ("phone", "after_hours_phone", "emergency_number")


def numbers(snapshot: Snapshot) -> List[str]:
    return [str(snapshot.settings[key]) for key in NUMBERS]


def english_urgent(snapshot: Snapshot) -> str:
    return render_fact(snapshot, snapshot.facts["urgent"], with_buttons=False).text


def assert_urgent_custom(snapshot: Snapshot, message: dict) -> None:
    custom = message["custom"]
    assert custom["urgent"] is True
    assert [p["number"] for p in custom["phones"]] == numbers(snapshot)  # day phone, after hours, emergency


@pytest.mark.parametrize("text, code", [
    ("tengo fiebre y pus", "es"),
    ("tengo fiebre", "es"),  # one Spanish marker: too short for detect(), still a warning sign
    ("me cuesta respirar", "es"),
    ("no para de sangrar", "es"),
    ("j'ai de la fièvre", "fr"),
    ("estou com febre", "pt"),
    ("微针后我发烧了", "zh"),
])
def test_a_warning_sign_in_another_language_gets_the_urgent_answer_in_it_first(snapshot: Snapshot, text: str,
                                                                               code: str) -> None:
    assert urgent.is_urgent_text(snapshot, text)
    own, english = urgent.fallback_messages(snapshot, text)
    language = languages.languages()[code]
    assert own["text"] == languages.render(language.urgent, snapshot.settings)
    assert all(number in own["text"] for number in numbers(snapshot))
    assert own["custom"]["lang"] == code  # the widget marks it lang="es", not "en"
    assert_urgent_custom(snapshot, own)
    assert english["text"] == english_urgent(snapshot)
    assert "lang" not in english["custom"]
    assert_urgent_custom(snapshot, english)


def test_an_english_warning_sign_gets_the_english_urgent_answer_alone(snapshot: Snapshot) -> None:
    [message] = urgent.fallback_messages(snapshot, "I have a fever and pus on my face after microneedling")
    assert message["text"] == english_urgent(snapshot)
    assert_urgent_custom(snapshot, message)


def test_a_spanish_message_urgent_by_the_english_checks_still_gets_its_language_first(snapshot: Snapshot) -> None:
    """Whatever found the sign, a patient detected as writing Spanish reads what to do in Spanish."""
    text = "hola, tengo la cara roja y me duele mucho, debo ir al hospital? should I go to hospital"
    messages = urgent.fallback_messages(snapshot, text)
    assert [m["custom"].get("lang") for m in messages] == ["es", None]


@pytest.mark.parametrize("text", [
    "how long is my face red after?",
    "no pus, is that normal?",  # English, negated: the Spanish "pus" pattern does not count
    "I get herpes quite often, can I still have it done?",
    "¿Cuánto tiempo dura la rojez después del tratamiento?",
    "hola, cuánto cuesta",
    "",
])
def test_no_warning_sign_gets_the_apology_with_the_phone(snapshot: Snapshot, text: str) -> None:
    assert not urgent.is_urgent_text(snapshot, text)
    [message] = urgent.fallback_messages(snapshot, text)
    assert message == {"text": snapshot.render(snapshot.facts["action_error"])}
    assert snapshot.settings["phone"] in message["text"]


def test_an_unreadable_languages_file_still_leaves_the_english_urgent_answer(snapshot: Snapshot,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict:
        raise languages.LanguagesError("data/languages.yml: expected a `languages:` mapping")

    monkeypatch.setattr(languages, "languages", broken)
    [message] = urgent.fallback_messages(snapshot, "I have a fever and pus, tengo fiebre")
    assert message["text"] == english_urgent(snapshot)
    assert_urgent_custom(snapshot, message)


def test_the_channels_fallback_is_the_same_answer() -> None:
    """channel_texts.fallback is what rasa_extensions/turns.py, channels/rest.py and Telegram send."""
    sent = channel_texts.fallback("me cuesta respirar")
    assert sent == urgent.fallback_messages(default_store().current(), "me cuesta respirar")
    assert [m["custom"].get("lang") for m in sent] == ["es", None]


@pytest.mark.parametrize("text, customs", [
    ("tengo fiebre y pus en la cara", [{"lang": "es", "urgent": True}, None]),  # then urgent_custom, as today
    ("¿Cuánto tiempo dura la rojez después del tratamiento?", [{"lang": "es"}]),
    ("how long is my face red after?", [None]),
])
def test_a_dialogue_message_carries_its_language_and_in_an_urgent_reply_the_numbers(snapshot: Snapshot, text: str,
                                                                                   customs: list) -> None:
    from clinic.replies import Turn, decide

    reply = decide(Turn(text=text, intent="goodbye", ranking=(("goodbye", 0.9),)), snapshot)
    sent = [urgent.message_custom(snapshot, m, reply.kind == "urgent") for m in reply.messages]
    assert [{k: c[k] for k in ("lang", "urgent") if k in c} if c else None for c in sent] == customs
    if reply.kind == "urgent":
        assert_urgent_custom(snapshot, {"custom": sent[0]})
