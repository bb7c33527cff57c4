"""The training data keeps its contract: exactly the product's intents, enough varied examples,
and a test set that training never sees."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest

from devtools.harness.nlu_sets import TEST_SET, load_examples

PROJECT = Path(__file__).resolve().parent.parent
MIN_EXAMPLES = 25


def examples(paths: List[Path]) -> Dict[str, List[str]]:
    """Each intent's examples as written, repeats kept (Rasa would drop them silently; these tests forbid them)."""
    found: Dict[str, List[str]] = {}
    for path in paths:
        for text, intent in load_examples(path, unique=False):
            found.setdefault(intent, []).append(text)
    return found


@pytest.fixture(scope="module")
def training() -> Dict[str, List[str]]:
    return examples(sorted((PROJECT / "data" / "nlu").glob("*.yml")))


@pytest.fixture(scope="module")
def test_set() -> Dict[str, List[str]]:
    return examples([TEST_SET])


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def test_training_and_test_set_cover_exactly_the_domain_intents(training, test_set, intents) -> None:
    assert sorted(training) == sorted(intents)
    assert sorted(test_set) == sorted(intents)


def test_every_intent_has_enough_examples(training) -> None:
    thin = {intent: len(lines) for intent, lines in training.items() if len(lines) < MIN_EXAMPLES}
    assert not thin


def test_no_example_is_repeated_or_shared_between_intents(training) -> None:
    counts = Counter(norm(line) for lines in training.values() for line in lines)
    assert [line for line, n in counts.items() if n > 1] == []


def test_training_never_sees_the_test_set(training, test_set) -> None:
    seen = {norm(line) for lines in training.values() for line in lines}
    leaked = [line for lines in test_set.values() for line in lines if norm(line) in seen]
    assert leaked == []


def test_button_titles_are_taught_as_typed_text(training, snapshot) -> None:
    taught = {norm(line): intent for intent, lines in training.items() for line in lines}
    for fact in snapshot.facts.values():
        if fact.intents and any(fact.id in f.follow_ups for f in snapshot.facts.values()):
            assert taught.get(norm(fact.title)) in fact.intents, f"button '{fact.title}' ({fact.id})"
