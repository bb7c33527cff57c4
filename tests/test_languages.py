"""Messages in other languages (clinic/languages.py, data/languages.yml), as a table."""

from __future__ import annotations

import pytest

from clinic.languages import LanguagesError, detect, languages, names_warning_sign, parse, warning_sign_language

LANGUAGES = languages()


@pytest.mark.parametrize("text, code, urgent", [
    ("¿Cuánto tiempo dura la rojez después del tratamiento?", "es", False),
    ("tengo fiebre y pus en la cara desde ayer", "es", True),
    ("mi hija tiene la cara muy hinchada y le cuesta respirar", "es", True),
    ("no para de sangrar la zona tratada", "es", True),
    ("Combien de temps dure la rougeur après?", "fr", False),
    ("j'ai de la fièvre et du pus", "fr", True),
    ("Quanto tempo dura a vermelhidão depois?", "pt", False),
    ("微针治疗后多久可以化妆？", "zh", False),
    ("微针后我发烧了，脸上有脓", "zh", True),
    ("Сколько длится покраснение?", "ru", False),
    ("how long is my face red after?", None, False),
    ("is it ok to use la roche posay after", None, False),
    ("hola", None, False),
    ("I have a fever and pus", None, False),
    ("😬🔥", None, False),
])
def test_the_language_and_its_warning_signs_are_recognised(text: str, code: str | None, urgent: bool) -> None:
    language = detect(text, LANGUAGES)
    assert (language.code if language else None) == code
    assert (names_warning_sign(text, language) if language else False) == urgent


@pytest.mark.parametrize("data, message", [
    ({}, "expected a `languages:` mapping"),
    ({"languages": {"xx": {"name": "X", "notice": "n"}}}, "language 'xx': field 'urgent' is required text"),
    ({"languages": {"xx": {"name": "X", "notice": "n", "urgent": "u", "script": "klingon"}}}, "field 'script'"),
    ({"languages": {"xx": {"name": "X", "notice": "n", "urgent": "u"}}}, "needs `markers`"),
    ({"languages": {"xx": {"name": "X", "notice": "n", "urgent": "u", "markers": ["a", "b"],
                           "warning_signs": ["(unclosed"]}}}, "field 'warning_signs'"),
])
def test_a_broken_languages_file_names_the_language_and_field(data: dict, message: str) -> None:
    with pytest.raises(LanguagesError, match=message.replace("(", r"\(").replace("`", "`")):
        parse(data)


@pytest.mark.parametrize("text, intent, kind, facts", [
    ("¿Cuánto tiempo dura la rojez después del tratamiento?", "goodbye", "other_language", ()),
    ("微针治疗后多久可以化妆？", "goodbye", "other_language", ()),
    ("tengo fiebre y pus en la cara", "out_of_scope", "urgent", ("urgent",)),
    ("tengo fiebre", "out_of_scope", "urgent", ("urgent",)),  # one Spanish marker: too short for detect()
    ("me cuesta respirar", "out_of_scope", "urgent", ("urgent",)),
    ("estou com febre", "out_of_scope", "urgent", ("urgent",)),
    ("how long is my face red after?", "ask_downtime", "answer", ("downtime",)),
])
def test_the_dialogue_answers_other_languages_plainly(snapshot, text: str, intent: str, kind: str,
                                                      facts: tuple) -> None:
    from clinic.replies import Turn, decide

    reply = decide(Turn(text=text, intent=intent, ranking=((intent, 0.9),)), snapshot)
    assert (reply.kind, reply.facts) == (kind, facts)
    if kind != "answer":
        assert snapshot.settings["phone"] in reply.messages[0].text  # in their language, with the phone


@pytest.mark.parametrize("text, kind, tags", [
    ("¿Cuánto tiempo dura la rojez después del tratamiento?", "other_language", ["es"]),
    ("微针治疗后多久可以化妆？", "other_language", ["zh"]),
    ("tengo fiebre y pus en la cara", "urgent", ["es", None]),  # then the English urgent answer, untagged
    ("how long is my face red after?", "answer", [None]),
])
def test_each_message_carries_its_language_tag(snapshot, text: str, kind: str, tags: list) -> None:
    """The channel marks a message in the patient's language with it (the widget's lang attribute)."""
    from clinic.replies import Turn, decide

    reply = decide(Turn(text=text, intent="goodbye", ranking=(("goodbye", 0.9),)), snapshot)
    assert reply.kind == kind
    assert [m.lang for m in reply.messages] == tags


@pytest.mark.parametrize("text, code", [
    ("tengo fiebre", "es"),  # one marker: detect() cannot tell, the warning sign still counts
    ("me cuesta respirar", "es"),
    ("fiebre", "es"),
    ("微针后我发烧了", "zh"),
    ("j'ai de la fièvre et du pus", "fr"),
    ("no pus, is that normal?", None),  # English: its own checks (with negation) decide
    ("I get herpes every winter, is that a problem?", None),
    ("tengo una pregunta sobre el precio", None),
])
def test_a_warning_sign_counts_in_any_language_unless_the_message_reads_as_english(text: str,
                                                                                  code: str | None) -> None:
    language = warning_sign_language(text, LANGUAGES)
    assert (language.code if language else None) == code
