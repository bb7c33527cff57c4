"""The fact store: its content rules, its error messages, and reloading without retraining."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from clinic.fact_store import SYSTEM_FACTS, FactStore, Snapshot, load_snapshot
from clinic.facts_schema import FactStoreError
from clinic.replies import is_topic_intent

MONEY = re.compile(r"[$£€]\s?\d|\d+\s?(dollars|usd|pounds|euros)", re.IGNORECASE)


# --- the shipped content -------------------------------------------------------------------------

def test_every_intent_has_a_default_answer(snapshot: Snapshot, intents: list) -> None:
    for intent in intents:
        fact = snapshot.select(intent, "")
        assert fact is not None and intent in fact.intents, intent


def test_topic_answers_cite_sources_and_are_reviewed(snapshot: Snapshot) -> None:
    for fact in snapshot.facts.values():
        assert fact.reviewed_on <= dt.date.today(), fact.id
        if any(is_topic_intent(i) for i in fact.intents) or fact.id == "urgent":
            assert fact.sources, f"{fact.id} answers a patient question but cites no source"


def test_items_needing_sign_off_are_flagged(snapshot: Snapshot) -> None:
    # The reference marks the isotretinoin waiting period as needing a clinician's sign-off.
    assert snapshot.facts["candidacy_medication"].status == "needs_clinician_review"


def test_every_answer_renders_without_leftover_placeholders(snapshot: Snapshot) -> None:
    for fact in snapshot.facts.values():
        if snapshot.usable(fact):
            text = snapshot.render(fact)
            assert "{" not in text and "}" not in text, fact.id


def test_urgent_answer_carries_the_phone_numbers(snapshot: Snapshot) -> None:
    text = snapshot.render(snapshot.facts["urgent"])
    for key in ("phone", "after_hours_phone", "emergency_number"):
        assert str(snapshot.settings[key]) in text, key


def test_system_messages_exist(snapshot: Snapshot) -> None:
    assert set(SYSTEM_FACTS) <= set(snapshot.facts)


def test_out_of_scope_answer_states_no_microneedling_fact(snapshot: Snapshot) -> None:
    assert not snapshot.facts["out_of_scope"].sources


@pytest.mark.parametrize("text, expected", [
    ("can I wear makeup the next day?", "aftercare_makeup"),
    ("when can I go back to the gym", "aftercare_exercise"),
    ("is retinol ok afterwards", "aftercare_skincare"),
    ("what should I do after", "aftercare"),
])
def test_variant_is_chosen_by_its_words(snapshot: Snapshot, text: str, expected: str) -> None:
    assert snapshot.select("ask_aftercare", text).id == expected


# --- prices are never invented ------------------------------------------------------------------

def _set_price(store_dir: Path, price) -> None:
    path = store_dir / "clinic.yml"
    settings = yaml.safe_load(path.read_text())
    settings["prices"]["session"] = price
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def test_without_a_configured_price_the_cost_answer_offers_a_consultation(store_dir: Path, intents: list) -> None:
    _set_price(store_dir, None)
    snap = load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)
    fact = snap.select("ask_cost", "how much is it?")
    assert fact.id == "cost_consultation"
    assert not MONEY.search(snap.render(fact))
    assert "consultation" in snap.render(fact).lower()


def test_a_configured_price_is_quoted_exactly(store_dir: Path, intents: list) -> None:
    _set_price(store_dir, "$325 per face session")
    snap = load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)
    fact = snap.select("ask_cost", "how much is it?")
    assert fact.id == "cost_with_price"
    assert "$325 per face session" in snap.render(fact)


# --- errors name the file, the fact and the field ------------------------------------------------

def _edit_fact(store_dir: Path, fact_id: str, **changes) -> Path:
    for path in sorted((store_dir / "facts").glob("*.yml")):
        data = yaml.safe_load(path.read_text())
        for fact in data.get("facts", []):
            if fact["id"] == fact_id:
                for key, value in changes.items():
                    if value is None:
                        fact.pop(key, None)
                    else:
                        fact[key] = value
                path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
                return path
    raise AssertionError(f"no fact {fact_id}")


@pytest.mark.parametrize("fact_id, changes, field, words", [
    ("downtime", {"text": None}, "text", "required"),
    ("downtime", {"status": "draft"}, "status", "approved"),
    ("downtime", {"reviewed_on": "last week"}, "reviewed_on", "date"),
    ("downtime", {"sources": [{"title": "AAD", "url": "aad.org"}]}, "sources[0].url", "https://"),
    ("downtime", {"follow_ups": ["no_such_fact"]}, "follow_ups", "no_such_fact"),
    ("downtime", {"text": "Call {fax_number} today."}, "text", "{fax_number}"),
    ("downtime", {"intents": ["ask_weather"]}, "intents", "ask_weather"),
    ("downtime", {"colour": "red"}, "colour", "unknown field"),
    ("downtime", {"text": "<b>Red</b> for a day."}, "text", "plain text"),
    ("sunscreen", {"id": "downtime"}, "id", "also used"),
])
def test_a_broken_fact_is_reported_with_file_fact_and_field(
    store_dir: Path, intents: list, fact_id: str, changes: dict, field: str, words: str
) -> None:
    path = _edit_fact(store_dir, fact_id, **changes)
    with pytest.raises(FactStoreError) as caught:
        load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)
    message = str(caught.value)
    assert path.name in message or caught.value.path.endswith(".yml")
    assert f"field '{field}'" in message
    assert "fact '" in message
    assert words in message


def test_invalid_yaml_names_the_file_and_line(store_dir: Path, intents: list) -> None:
    path = store_dir / "facts" / "recovery.yml"
    path.write_text(path.read_text() + "\n  - id: [unclosed\n")
    with pytest.raises(FactStoreError, match=r"recovery\.yml: is not valid YAML \(line \d+\)"):
        load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)


def test_an_empty_placeholder_value_is_refused(store_dir: Path, intents: list) -> None:
    path = store_dir / "clinic.yml"
    settings = yaml.safe_load(path.read_text())
    settings["after_hours_phone"] = None
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    # the first fact (by file, then order) that uses it: callback.yml's, before conversation.yml's not_text
    expected = (r"callback.yml: fact 'callback_confirmed_closed': field 'text': "
                r"placeholder \{after_hours_phone\} is empty")
    with pytest.raises(FactStoreError, match=expected):
        load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)


def test_a_clinic_without_a_phone_is_refused(store_dir: Path, intents: list) -> None:
    path = store_dir / "clinic.yml"
    settings = yaml.safe_load(path.read_text())
    settings["phone"] = ""
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    with pytest.raises(FactStoreError, match=r"clinic\.yml: field 'phone'"):
        load_snapshot(store_dir / "facts", store_dir / "clinic.yml", intents)


# --- editing takes effect without retraining; a broken edit keeps the last good version ----------

def _touch_later(path: Path) -> None:
    """Some filesystems keep mtimes coarse; make sure each edit looks new."""
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))


def test_edits_are_served_and_broken_edits_keep_the_last_good_version(
    store_dir: Path, intents: list, caplog: pytest.LogCaptureFixture
) -> None:
    store = FactStore(store_dir / "facts", store_dir / "clinic.yml", intents, check_every=0)
    original = store.current().facts["downtime"].text

    path = _edit_fact(store_dir, "downtime", text="Redness usually settles within two days.")
    _touch_later(path)
    assert store.current().facts["downtime"].text == "Redness usually settles within two days."

    with caplog.at_level(logging.ERROR, logger="clinic.fact_store"):
        path = _edit_fact(store_dir, "downtime", status="maybe")
        _touch_later(path)
        served = store.current()
    assert served.facts["downtime"].text == "Redness usually settles within two days."
    assert store.last_error is not None and "fact 'downtime': field 'status'" in str(store.last_error)
    assert "recovery.yml" in caplog.text and "field 'status'" in caplog.text

    path = _edit_fact(store_dir, "downtime", status="approved", text=original)
    stamp = time.time() + 4
    os.utime(path, (stamp, stamp))
    assert store.current().facts["downtime"].text == original
    assert store.last_error is None


def test_clinic_settings_edits_are_served(store_dir: Path, intents: list) -> None:
    store = FactStore(store_dir / "facts", store_dir / "clinic.yml", intents, check_every=0)
    path = store_dir / "clinic.yml"
    settings = yaml.safe_load(path.read_text())
    settings["phone"] = "(555) 010-0142"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    _touch_later(path)
    snap = store.current()
    assert "(555) 010-0142" in snap.render(snap.facts["urgent"])
