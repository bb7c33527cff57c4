"""What to answer: a pure function from one user turn to a reply.

Kept free of Rasa types so every dialogue rule (safety first, buttons, variants,
context, low-confidence handling, the welcome) is tested with plain values.
The order of the rules is the product's safety contract:
  1. warning signs and complication reports -> the urgent answer, always;
  2. nothing readable -> a polite "please type your question";
  3. a button press -> exactly the fact it names;
  4. low confidence -> "did you mean ...?" buttons, then a person, never a guess;
  5. before a topic fact, the scope: a question about another treatment gets the
     `other_treatment` answer, a question about something else (clinic/scope.py) the
     out-of-scope answer; a short referring follow-up keeps the previous topic;
  6. otherwise the fact for the intent (the variant whose words match).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Sequence, Tuple

from clinic import languages
from clinic.fact_store import Fact, Snapshot
from clinic.safety import URGENT_INTENT, urgent_reason
from clinic.scope import TREATMENT, Judgement

FALLBACK_INTENT = "nlu_fallback"
FORGET = "forget"  # the reply that deletes the conversation (the channel does it: rasa_extensions/conversations.py)
FORGET_FACT = "conversation_deleted"
FORGET_KEY = "forget_conversation"  # the custom payload that tells the channel to delete
OUT_OF_SCOPE = "out_of_scope"
OTHER_LANGUAGE = "other_language"  # the reply to a message in a language the assistant does not answer in
OTHER_TREATMENT = "other_treatment"  # the out-of-scope variant for treatments the assistant does not cover
MAX_SUGGESTIONS = 3
# Below this top confidence, a referring question is read in the light of the last topic.
CONTEXT_CONFIDENCE = 0.6
UNSURE_BELOW = 0.3  # as config.yml's FallbackClassifier threshold
# A message with a word from outside the domain (clinic/scope.py) is off-topic when the
# classifier gives out_of_scope at least this much, even if it also uses a domain word
# ("how long will my knee stay swollen after arthroscopy"). Chosen on the dev sets
# (docs/evaluation.md): 0.2 to 0.3 all gave the same dev figures.
OFF_TOPIC_FOREIGN = 0.25
# One foreign word does not outweigh a classifier sure of a clinic topic that sees nothing off-topic
# ("do you take card payments or is it cash only": ask_cost 0.98, out_of_scope 0.00; "cash" is foreign).
# Chosen on the dev sets (docs/evaluation.md).
SURE_TOPIC = 0.9
NOTHING_OFF_TOPIC = 0.02
_ANAPHORA = re.compile(r"\b(that|it|this|those|these|they|them)\b", re.IGNORECASE)
# "it" that refers to nothing: "is it safe to...", "how long does it take to...", "it's worth..."
_DUMMY_IT = re.compile(
    r"\b(is|was|will|would|isn'?t) it (be )?(really |generally |usually )?"
    r"(ok|okay|alright|safe|fine|normal|possible|worth|true|bad|wise|advisable|dangerous|better|best|good|"
    r"too late|too soon|a good idea|a bad idea)\b|"
    r"\bit'?s (ok|okay|safe|fine|normal|possible|worth|true|bad|wise|better|best|good)\b|"
    r"\b(does|did|will|would|should) it (take|cost)\b",
    re.IGNORECASE,
)
_READABLE = re.compile(r"[^\W_]", re.UNICODE)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Message:
    text: str
    buttons: Tuple[Button, ...] = ()
    # The language of the text when it is not English (data/languages.yml's code): channels tag it
    # (the widget's lang attribute, so a screen reader speaks Spanish as Spanish). None: English.
    lang: str | None = None

    def button_dicts(self) -> List[Dict[str, str]]:
        """The buttons as Rasa's bot messages carry them."""
        return [{"title": b.title, "payload": b.payload} for b in self.buttons]


@dataclass(frozen=True)
class Turn:
    """What the assistant knows about the newest user message and the conversation."""

    text: str
    intent: str | None
    ranking: Tuple[Tuple[str, float], ...] = ()
    fact_entity: str | None = None  # set by a button payload such as /ask_aftercare{"fact":"aftercare_makeup"}
    first_of_session: bool = False
    last_topic: str | None = None
    clarifying: bool = False  # our previous reply was a "did you mean ...?"
    scope: Judgement | None = None  # what the message is about (the NLU's DomainScope; None: unknown)


@dataclass(frozen=True)
class Reply:
    kind: str  # answer | urgent | clarify | handoff | empty | out_of_scope | other_language | forget
    messages: Tuple[Message, ...]
    facts: Tuple[str, ...]
    topic: str | None = None  # the topic fact to remember for follow-up questions
    clarifying: bool = False
    reason: str = field(default="", compare=False)


def is_topic_intent(intent: str) -> bool:
    return intent.startswith("ask_") or intent == "book_appointment"


def payload_for(fact: Fact) -> str:
    return f"/{fact.intents[0]}{json.dumps({'fact': fact.id}, separators=(',', ':'))}"


def render_fact(snapshot: Snapshot, fact: Fact, with_buttons: bool = True) -> Message:
    text = snapshot.render(fact)
    if fact.sources:
        source = fact.sources[0]
        text = f"{text}\nSource: {source.title} ({source.url})"  # a blank line would split the message
    buttons: Tuple[Button, ...] = ()
    if with_buttons:
        targets = [snapshot.facts[i] for i in fact.follow_ups if snapshot.usable(snapshot.facts[i])]
        buttons = tuple(Button(t.title, payload_for(t)) for t in targets)
    return Message(text, buttons)


def _real_ranking(turn: Turn) -> List[Tuple[str, float]]:
    return [(name, conf) for name, conf in turn.ranking if name != FALLBACK_INTENT]


def _is_follow_up_question(turn: Turn) -> bool:
    """'and how long does that last?' refers back to the previous topic."""
    return bool(_ANAPHORA.search(turn.text)) and len(turn.text.split()) <= 8


def _refers_back(turn: Turn) -> bool:
    """The message points at something said before: "is it a laser?", not "is it safe to ...?"."""
    return bool(_ANAPHORA.search(_DUMMY_IT.sub(" ", turn.text)))


def _continues_topic(turn: Turn, snapshot: Snapshot) -> bool:
    return bool(turn.last_topic) and turn.last_topic in snapshot.facts and _is_follow_up_question(turn)


def _other_treatment(turn: Turn, snapshot: Snapshot) -> Reply | None:
    """The `other_treatment` answer for a question about a treatment the assistant does not cover."""
    other = snapshot.facts.get(OTHER_TREATMENT)
    if other is None or TREATMENT.search(turn.text) or _refers_back(turn):
        return None
    if snapshot.select(OUT_OF_SCOPE, turn.text) is not other:
        return None
    return _answer(snapshot, other, kind=OUT_OF_SCOPE, reason="another treatment")


def _off_topic(turn: Turn, snapshot: Snapshot) -> Reply | None:
    """The scope answer for a message about another treatment or about something else; None when in scope."""
    if TREATMENT.search(turn.text) or _continues_topic(turn, snapshot):
        return None
    other = _other_treatment(turn, snapshot)
    if other is not None:
        return other
    scope = turn.scope
    if scope is None:
        return None
    ranking = _real_ranking(turn)
    out_of_scope = dict(ranking).get(OUT_OF_SCOPE, 0.0)
    sure = bool(ranking) and ranking[0][1] >= SURE_TOPIC and out_of_scope < NOTHING_OFF_TOPIC
    if scope.off_topic and not (sure and len(scope.foreign) <= 1):
        reason = f"off topic: {', '.join(scope.foreign)}"
    elif scope.foreign and out_of_scope >= OFF_TOPIC_FOREIGN:
        reason = f"likely off topic ({out_of_scope:.2f}): {', '.join(scope.foreign)}"
    else:
        return None
    return _answer(snapshot, snapshot.facts[OUT_OF_SCOPE], kind=OUT_OF_SCOPE, reason=reason)


def _about_the_topic(turn: Turn) -> bool:
    """The classifier leans to "not about us", the words say otherwise: the message names the clinic's
    topic ("what's best to soothe the redness") and nothing from outside it. Not sure which topic, so the
    assistant asks (did you mean…?) rather than give a topic fact or the out-of-scope answer. Not when
    the classifier is sure: a stray domain word ("will it be sunny on saturday") must not undo that."""
    scope = turn.scope
    ranking = _real_ranking(turn)
    sure_off_topic = bool(ranking) and ranking[0][0] == OUT_OF_SCOPE and ranking[0][1] >= CONTEXT_CONFIDENCE
    return bool(scope is not None and (scope.anchors or scope.names_treatment) and not scope.foreign
                and not sure_off_topic)


def _contextual_intent(turn: Turn, snapshot: Snapshot) -> str | None:
    """The previous topic's intent, for a short referring question the classifier is unsure about."""
    if not turn.last_topic or turn.last_topic not in snapshot.facts or not _is_follow_up_question(turn):
        return None
    topic_intents = snapshot.facts[turn.last_topic].intents
    ranking = _real_ranking(turn)
    if turn.intent == FALLBACK_INTENT:
        return topic_intents[0]
    unsure = not ranking or ranking[0][1] < CONTEXT_CONFIDENCE
    close = [name for name, _ in ranking[:MAX_SUGGESTIONS]]
    return next((i for i in topic_intents if unsure and i in close), None)


def _answer(snapshot: Snapshot, fact: Fact, kind: str = "answer", reason: str = "") -> Reply:
    if fact.id == FORGET_FACT:
        kind = FORGET  # whenever the assistant says it deleted the conversation, it is deleted
    topic = fact.id if any(is_topic_intent(i) for i in fact.intents) else None
    return Reply(kind, (render_fact(snapshot, fact),), (fact.id,), topic=topic, reason=reason)


def _clarify(turn: Turn, snapshot: Snapshot) -> Reply:
    fact: Fact | None
    if turn.clarifying:
        fact = snapshot.facts["clarify_failed"]
        return Reply("handoff", (render_fact(snapshot, fact),), (fact.id,), reason="second misunderstanding")
    ranking = _real_ranking(turn)
    if ranking and ranking[0][0] == OUT_OF_SCOPE and not _about_the_topic(turn):
        fact = snapshot.select(OUT_OF_SCOPE, turn.text) or snapshot.facts[OUT_OF_SCOPE]
        return _answer(snapshot, fact, kind=OUT_OF_SCOPE, reason="unsure, likely off-topic")
    other = _other_treatment(turn, snapshot)
    if other is not None:
        return other
    suggestions: List[Fact] = []
    for name, _ in ranking:
        if is_topic_intent(name):
            fact = snapshot.select(name, turn.text)
            if fact is not None and fact not in suggestions:
                suggestions.append(fact)
        if len(suggestions) == MAX_SUGGESTIONS:
            break
    handoff = snapshot.facts["human_handoff"]
    buttons = tuple(Button(f.title, payload_for(f)) for f in suggestions)
    buttons += (Button(handoff.title, payload_for(handoff)),)
    prompt = snapshot.facts["clarify"]
    return Reply("clarify", (Message(snapshot.render(prompt), buttons),), (prompt.id,),
                 clarifying=True, reason="low confidence")


def _next_best(turn: Turn) -> Turn:
    """The turn as if the classifier had not offered report_complication: its next intent, or "not sure"."""
    ranking = tuple((n, c) for n, c in turn.ranking if n not in (URGENT_INTENT, FALLBACK_INTENT))
    intent = ranking[0][0] if ranking and ranking[0][1] >= UNSURE_BELOW else FALLBACK_INTENT
    return replace(turn, intent=intent, ranking=ranking)


def _other_language(turn: Turn, snapshot: Snapshot, urgent_because: str | None) -> Reply | None:
    """A message in another language (clinic/languages.py): say so in it; its warning signs still reach urgent.

    An urgent message gets, before the urgent answer, what to do now in the patient's language,
    whether the warning sign was found in their words or by the English checks.
    """
    table = languages.languages()
    signed = languages.warning_sign_language(turn.text, table)  # "tengo fiebre": too short for detect()
    language = signed or languages.detect(turn.text, table)
    if language is None:
        return None
    if urgent_because or signed is not None:
        urgent = snapshot.facts["urgent"]
        own = Message(languages.render(language.urgent, snapshot.settings), lang=language.code)
        return Reply("urgent", (own, render_fact(snapshot, urgent)), (urgent.id,),
                     reason=urgent_because or f"warning sign in {language.name}")
    notice = Message(languages.render(language.notice, snapshot.settings), lang=language.code)
    return Reply(OTHER_LANGUAGE, (notice,), (), reason=f"written in {language.name}")


def _core_reply(turn: Turn, snapshot: Snapshot) -> Reply:
    fact: Fact | None
    reason = urgent_reason(turn.text, turn.ranking, snapshot.warning_signs)
    foreign = _other_language(turn, snapshot, reason)
    if foreign is not None:
        return foreign
    if reason:
        return _answer(snapshot, snapshot.facts["urgent"], kind="urgent", reason=reason)
    if not _READABLE.search(turn.text or ""):
        fact = snapshot.facts["empty_message"]
        return Reply("empty", (render_fact(snapshot, fact),), (fact.id,), reason="no words")

    if turn.intent == URGENT_INTENT:  # the classifier heard a complication, the words say it is a question
        turn = _next_best(turn)
    if turn.fact_entity and turn.fact_entity in snapshot.facts:
        fact = snapshot.facts[turn.fact_entity]
        if turn.intent in fact.intents and snapshot.usable(fact):
            return _answer(snapshot, fact, reason="button")

    intent = _contextual_intent(turn, snapshot) or turn.intent
    if intent is None or intent == FALLBACK_INTENT:
        return _clarify(turn, snapshot)
    if intent == OUT_OF_SCOPE and _about_the_topic(turn):
        return _clarify(turn, snapshot)
    if intent != turn.intent:
        fact = snapshot.select(intent, turn.text)
        if fact is not None:
            return _answer(snapshot, fact, reason="context")
    if is_topic_intent(intent):
        off_topic = _off_topic(turn, snapshot)
        if off_topic is not None:
            return off_topic
    fact = snapshot.select(intent, turn.text)
    if fact is None:  # an intent the store does not answer: never guess
        return _clarify(turn, snapshot)
    kind = OUT_OF_SCOPE if intent == OUT_OF_SCOPE else "answer"
    return _answer(snapshot, fact, kind=kind, reason="intent")


def decide(turn: Turn, snapshot: Snapshot) -> Reply:
    """The reply for one user turn; the first turn of a session also carries the welcome."""
    reply = _core_reply(turn, snapshot)
    if not turn.first_of_session or reply.kind == "urgent":
        return reply
    welcome = snapshot.facts["welcome"]
    if turn.intent == "greet":
        return Reply("answer", (render_fact(snapshot, welcome),), (welcome.id,), reason="welcome")
    messages = (render_fact(snapshot, welcome, with_buttons=False), *reply.messages)
    return Reply(reply.kind, messages, (welcome.id, *reply.facts), topic=reply.topic,
                 clarifying=reply.clarifying, reason=reply.reason)


def ranking_from(intent_ranking: Sequence[dict]) -> Tuple[Tuple[str, float], ...]:
    return tuple((str(r.get("name")), float(r.get("confidence") or 0.0)) for r in intent_ranking if r.get("name"))
