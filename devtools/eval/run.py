"""Sends every evaluation message end to end and records how each was answered.

Over REST to a real Stack (action server + Rasa server, the trained model), one fresh
conversation per message, as a new visitor would ask it; the reply's last message is
mapped back to its fact (devtools.harness.servers.fact_of), and from the fact to the kind
of reply the action chose (answer, urgent, clarify, out_of_scope...).

`run_in_process` does the same without servers (the model's parser and clinic.replies.decide
in this process): a quick loop for development only; figures in reports come from REST.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from clinic.fact_store import Snapshot
from clinic.replies import FORGET_FACT, OUT_OF_SCOPE, Turn, decide, is_topic_intent, ranking_from
from clinic.scope import Judgement
from devtools.eval.sets import Example
from devtools.harness.servers import Stack, fact_of, new_sender, served_snapshot

# Which kind of reply each system fact is; every other fact is an answer.
KIND_OF_FACT = {
    "urgent": "urgent", "clarify": "clarify", "clarify_failed": "handoff", "empty_message": "empty",
    OUT_OF_SCOPE: "out_of_scope", "other_treatment": "out_of_scope", FORGET_FACT: "forget",
}


@dataclass(frozen=True)
class Outcome:
    example: Example
    kind: str  # answer | urgent | clarify | handoff | empty | out_of_scope | forget | error
    fact: Optional[str]  # the fact of the reply's last message (the answer; "welcome" for a bare greeting)
    topic: bool  # that fact answers a topic question (a microneedling fact)
    answers: Tuple[str, ...]  # the intents that fact answers


def outcome_of(example: Example, snapshot: Snapshot, fact_id: Optional[str]) -> Outcome:
    if fact_id is None or fact_id not in snapshot.facts:
        return Outcome(example, "error", fact_id, False, ())
    fact = snapshot.facts[fact_id]
    topic = any(is_topic_intent(i) for i in fact.intents)
    return Outcome(example, KIND_OF_FACT.get(fact_id, "answer"), fact_id, topic, tuple(fact.intents))


def run_rest(stack: Stack, examples: Sequence[Example], workers: int = 3,
             progress: Optional[Callable[[int, int], None]] = None) -> List[Outcome]:
    """Each example as the first message of a new conversation, over REST, a few at a time."""
    snapshot = served_snapshot(stack.workdir)

    def one(example: Example) -> Outcome:
        try:
            replies = stack.say(new_sender("eval"), example.text, timeout=60)
            texts = [r["text"] for r in replies if r.get("text")]
            return outcome_of(example, snapshot, fact_of(snapshot, texts[-1]) if texts else None)
        except Exception:  # a crash or 5xx is scored as an error, not raised: the report shows it
            return outcome_of(example, snapshot, None)

    outcomes: List[Outcome] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(one, examples):
            outcomes.append(outcome)
            if progress is not None:
                progress(len(outcomes), len(examples))
    return outcomes


def run_in_process(model_path: str, snapshot: Snapshot, examples: Sequence[Example]) -> List[Outcome]:
    """Development only: the model's parse and the dialogue rules in this process, no servers."""
    from rasa.core.agent import Agent

    agent = Agent.load(model_path)

    async def parse_all() -> List[dict]:
        return [await agent.parse_message(e.text) for e in examples]

    parsed = asyncio.run(parse_all())
    outcomes = []
    for example, p in zip(examples, parsed, strict=True):
        turn = Turn(text=example.text, intent=(p.get("intent") or {}).get("name"),
                    ranking=ranking_from(p.get("intent_ranking") or []), first_of_session=True,
                    scope=Judgement.from_dict(p.get("scope")))
        outcomes.append(outcome_of(example, snapshot, decide(turn, snapshot).facts[-1]))
    return outcomes
