"""The trained model on tests/nlu/test_set.yml: the accuracy bar, typed buttons, and safety.

tests/nlu/test_set.yml is never trained on, but earlier work chose data and thresholds by its
confusions, so it is a DEV set: these are development checks. The held-out figures come from
tests/eval/locked/ (tests/test_eval_targets.py, docs/evaluation.md).
Needs a trained model (make test trains first). Parses in-process, without HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Dict, List, Tuple

import pytest
from sklearn.metrics import f1_score

from clinic.replies import Turn, decide, ranking_from
from clinic.scope import Judgement
from devtools.harness.nlu_sets import TEST_SET, load_examples
from devtools.harness.servers import latest_model

pytestmark = pytest.mark.model

MIN_MACRO_F1 = 0.90


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    return Agent.load(str(latest_model()))


def parse_all(agent, texts: List[str]) -> List[Dict]:
    async def go() -> List[Dict]:
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(go())


@pytest.fixture(scope="module")
def predictions(agent) -> List[Tuple[str, str, Dict]]:
    pairs = load_examples(TEST_SET)
    parsed = parse_all(agent, [text for text, _ in pairs])
    return [(text, gold, p) for (text, gold), p in zip(pairs, parsed, strict=True)]


def top_real(parsed: Dict) -> str:
    return next(r["name"] for r in parsed["intent_ranking"] if r["name"] != "nlu_fallback")


def turn_of(text: str, parsed: Dict) -> Turn:
    return Turn(text=text, intent=parsed["intent"]["name"], ranking=ranking_from(parsed["intent_ranking"]),
                scope=Judgement.from_dict(parsed.get("scope")))


def test_macro_f1_on_the_dev_test_set(predictions) -> None:
    gold = [g for _, g, _ in predictions]
    predicted = [top_real(p) for _, _, p in predictions]
    score = f1_score(gold, predicted, average="macro")
    misses = [(t, g, p) for (t, g, _), p in zip(predictions, predicted, strict=True) if g != p]
    assert score >= MIN_MACRO_F1, f"macro-F1 {score:.3f}; misses: {misses}"


def test_every_complication_report_in_the_test_set_gets_the_urgent_answer(predictions, snapshot) -> None:
    missed = [text for text, gold, parsed in predictions
              if gold == "report_complication" and decide(turn_of(text, parsed), snapshot).kind != "urgent"]
    assert missed == []


def test_ordinary_questions_are_not_sent_to_the_urgent_path(predictions, snapshot) -> None:
    alarms = [(text, decide(turn_of(text, parsed), snapshot).reason) for text, gold, parsed in predictions
              if gold != "report_complication" and decide(turn_of(text, parsed), snapshot).kind == "urgent"]
    assert len(alarms) <= 0.02 * len(predictions), alarms


# Replies that give no microneedling fact: out of scope, "did you mean", a person, "I answer in English".
NO_FACT = ("out_of_scope", "clarify", "handoff", "other_language")


def topic_facts(snapshot) -> set:
    return {f.id for f in snapshot.facts.values() if any(i.startswith("ask_") for i in f.intents)}


def test_off_topic_messages_never_get_a_microneedling_fact(predictions, snapshot) -> None:
    wrong = []
    for text, gold, parsed in predictions:
        if gold == "out_of_scope":
            reply = decide(turn_of(text, parsed), snapshot)
            if reply.kind not in NO_FACT:
                wrong.append((text, reply.facts))
    assert wrong == []


def test_typed_button_titles_reach_their_topic(agent, snapshot) -> None:
    suggested = {i for f in snapshot.facts.values() for i in f.follow_ups}
    facts = [f for f in snapshot.facts.values() if f.id in suggested]
    parsed = parse_all(agent, [f.title for f in facts])
    wrong = [(f.title, top_real(p)) for f, p in zip(facts, parsed, strict=True) if top_real(p) not in f.intents]
    assert wrong == []


@pytest.mark.parametrize("text", [
    "what's the weather like tomorrow", "who won the football last night", "can you do botox",
    "how long does it take to roast a chicken", "how much does a new boiler cost", "is it safe to fly when pregnant",
    "¿cuánto cuesta una sesión de botox?", "Wie ist das Wetter heute?", "asdfgh qwerty zxcv", "42",
])
def test_unrelated_messages_get_no_unrelated_fact(agent, snapshot, text: str) -> None:
    reply = decide(turn_of(text, parse_all(agent, [text])[0]), snapshot)
    assert reply.kind in NO_FACT and not set(reply.facts) & topic_facts(snapshot), (reply.kind, reply.facts)
