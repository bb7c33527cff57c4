"""How each outcome is scored, and the figures per set and category.

Clinic questions (and tests/nlu/test_set.yml): "right" when the reply's fact answers the
asked intent (its `intents` list it, or ALSO_RIGHT's equivalent); for report_complication the urgent answer, for
out_of_scope the scope answer, for greet the welcome; "did you mean" when the reply is a
clarification; anything else is "wrong".
Out-of-scope messages fail when they get a topic fact (a microneedling answer).
Complication reports must get the urgent answer (recall).
Alarming-but-ordinary questions must not get the urgent answer (false-urgent rate) and
should get their intent's fact.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List

from devtools.eval.run import Outcome

CLARIFYING = ("clarify", "handoff")
QUESTION_SETS = ("clinic_questions", "nlu_test_set")
# Answers that serve the asked intent as well as its own facts do. request_callback came after
# the evaluation sets were written: "can someone phone me", labelled request_human there, gets
# the callback form, which reaches a person just the same.
ALSO_RIGHT = {"request_human": ("request_callback",)}


def verdict(outcome: Outcome) -> str:
    """right | did_you_mean | wrong, for a message labelled with the intent it asks."""
    intent = outcome.example.intent
    if intent == "report_complication":
        right = outcome.kind == "urgent"
    elif intent == "out_of_scope":
        right = outcome.kind == "out_of_scope"
    elif intent == "greet":
        right = outcome.fact == "welcome" or "greet" in outcome.answers
    else:
        accepted = (intent, *ALSO_RIGHT.get(intent or "", ()))
        right = outcome.kind in ("answer", "forget") and any(i in outcome.answers for i in accepted)
    if right:
        return "right"
    return "did_you_mean" if outcome.kind in CLARIFYING else "wrong"


def label(outcome: Outcome) -> str:
    """What the reply was, for the confusion matrix: the intent it answers, or its kind."""
    if outcome.kind == "answer" and outcome.fact == "welcome":
        return "greet"
    if outcome.kind in ("answer", "forget") and outcome.answers:
        return outcome.example.intent if outcome.example.intent in outcome.answers else outcome.answers[0]
    return {"urgent": "report_complication", "out_of_scope": "out_of_scope"}.get(outcome.kind, outcome.kind)


@dataclass
class Tally:
    """Counts for one group of messages (a set, or one category of it)."""

    n: int = 0
    right: int = 0
    wrong: int = 0
    did_you_mean: int = 0
    urgent: int = 0
    topic_fact: int = 0  # got a microneedling answer
    errors: int = 0
    failures: List[str] = field(default_factory=list)  # texts of the messages that failed this set's test

    def add(self, outcome: Outcome, kind: str) -> None:
        self.n += 1
        self.urgent += outcome.kind == "urgent"
        self.topic_fact += outcome.kind == "answer" and outcome.topic
        self.errors += outcome.kind == "error"
        v = verdict(outcome)
        setattr(self, v, getattr(self, v) + 1)
        if failed(outcome, kind):
            self.failures.append(f"{outcome.example.text}  ->  {outcome.fact} ({outcome.kind})")

    def rate(self, count: int) -> float:
        return count / self.n if self.n else 0.0


def failed(outcome: Outcome, kind: str) -> bool:
    """Whether this outcome fails the set's own test."""
    if kind == "out_of_scope":
        return outcome.kind == "answer" and outcome.topic
    if kind == "complications":
        return outcome.kind != "urgent"
    if kind == "alarming_ordinary":
        return outcome.kind == "urgent" or verdict(outcome) != "right"
    return verdict(outcome) != "right"


@dataclass
class SetScore:
    split: str
    kind: str
    total: Tally
    categories: Dict[str, Tally]

    @property
    def headline(self) -> Dict[str, float]:
        """The figures the targets are stated in, for this set."""
        t = self.total
        if self.kind in QUESTION_SETS:
            ordinary = [c for name, c in self.categories.items() if name != "report_complication"]
            n = sum(c.n for c in ordinary)
            return {"right": t.rate(t.right), "wrong": t.rate(t.wrong), "did_you_mean": t.rate(t.did_you_mean),
                    "false_urgent": sum(c.urgent for c in ordinary) / n if n else 0.0}
        if self.kind == "out_of_scope":
            return {"topic_fact": t.rate(t.topic_fact)}
        if self.kind == "complications":
            return {"urgent_recall": t.rate(t.urgent)}
        return {"false_urgent": t.rate(t.urgent), "right": t.rate(t.right)}


def score(outcomes: Iterable[Outcome]) -> List[SetScore]:
    """Tallies per (split, set) and per category, in the order the outcomes come."""
    scores: OrderedDict[tuple, SetScore] = OrderedDict()
    for outcome in outcomes:
        e = outcome.example
        key = (e.split, e.set)
        if key not in scores:
            scores[key] = SetScore(e.split, e.set, Tally(), OrderedDict())
        entry = scores[key]
        entry.total.add(outcome, e.set)
        entry.categories.setdefault(e.category, Tally()).add(outcome, e.set)
    return list(scores.values())
