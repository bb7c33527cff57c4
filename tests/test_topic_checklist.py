"""The "adding a topic" checklist (docs/adding-a-topic.md), checked for every intent: a forgotten step is named."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Set

import pytest
import yaml

from devtools.harness.nlu_sets import load_examples
from devtools.harness.servers import PROJECT

MIN_TRAINING_EXAMPLES = 25
SYSTEM_INTENTS = {"nlu_fallback"}


def domain_intents() -> List[str]:
    return [i if isinstance(i, str) else next(iter(i)) for i in yaml.safe_load((PROJECT / "domain.yml").read_text())
            ["intents"]]


def intents_in(paths: List[Path]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for path in paths:
        for _, intent in load_examples(path, unique=False):
            counts[intent] = counts.get(intent, 0) + 1
    return counts


def rule_intents() -> Set[str]:
    found: Set[str] = set()
    for rule in yaml.safe_load((PROJECT / "data" / "rules.yml").read_text())["rules"]:
        for step in rule["steps"]:
            for option in step.get("or", [step]):
                if "intent" in option:
                    found.add(option["intent"])
    return found


def story_intents() -> Set[str]:
    found: Set[str] = set()
    for path in (PROJECT / "tests" / "stories").glob("*.yml"):
        for story in yaml.safe_load(path.read_text()).get("stories", []):
            found |= {step["intent"] for step in story["steps"] if "intent" in step}
    return found


def fact_intents() -> Set[str]:
    found: Set[str] = set()
    for path in (PROJECT / "data" / "facts").glob("*.yml"):
        for fact in (yaml.safe_load(path.read_text()) or {}).get("facts", []) or []:
            found |= set(fact.get("intents") or [])
    return found


INTENTS = domain_intents()
TRAINING = intents_in(sorted((PROJECT / "data" / "nlu").glob("*.yml")))
DEV = intents_in([PROJECT / "tests" / "nlu" / "test_set.yml"])
LOCKED = intents_in([PROJECT / "tests" / "eval" / "locked" / "clinic_questions.yml"])


@pytest.mark.parametrize("intent", INTENTS)
def test_every_step_of_the_checklist_is_done(intent: str) -> None:
    missing = []
    if intent not in rule_intents():
        missing.append("1. data/rules.yml: list it in the rule's `or:`")
    if TRAINING.get(intent, 0) < MIN_TRAINING_EXAMPLES:
        missing.append(f"2. data/nlu/: {TRAINING.get(intent, 0)} examples, need {MIN_TRAINING_EXAMPLES}")
    if intent not in fact_intents():
        missing.append("3. data/facts/: no fact lists it in `intents`")
    if intent not in DEV:
        missing.append("4. tests/nlu/test_set.yml: no dev examples")
    if intent not in LOCKED:
        missing.append("4. tests/eval/locked/clinic_questions.yml: no locked examples")
    if intent not in story_intents():
        missing.append("5. tests/stories/: no story")
    assert missing == [], f"intent '{intent}' (docs/adding-a-topic.md): " + "; ".join(missing)


def test_nothing_is_trained_or_answered_that_the_domain_does_not_list() -> None:
    known = set(INTENTS) | SYSTEM_INTENTS
    assert set(TRAINING) - known == set()
    assert rule_intents() - known == set()
    assert story_intents() - known == set()
