"""The one custom action: every user message is answered from the fact store.

Thin on purpose: it reads the tracker into a `Turn`, lets `replies.decide`
choose, and turns the `Reply` into messages and slot events.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.fact_store import default_store
from clinic.replies import FORGET, FORGET_KEY, Turn, decide, ranking_from
from clinic.scope import Judgement
from clinic.urgent import message_custom, urgent_custom

logger = logging.getLogger(__name__)

LAST_TOPIC_SLOT = "last_topic"
CLARIFYING_SLOT = "clarifying"


def user_turns_this_session(events: List[Dict[str, Any]]) -> int:
    count = 0
    for event in reversed(events):
        if event.get("event") == "session_started":
            break
        if event.get("event") == "user":
            count += 1
    return count


def turn_from_tracker(tracker: Tracker) -> Turn:
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name")
    # Only text: a payload may carry any JSON, and an object here once crashed the action.
    fact_ids = [value for value in tracker.get_latest_entity_values("fact") if isinstance(value, str)]
    return Turn(
        text=str(message.get("text") or ""),
        intent=intent,
        ranking=ranking_from(message.get("intent_ranking") or []),
        fact_entity=fact_ids[0] if fact_ids else None,
        first_of_session=user_turns_this_session(tracker.events) <= 1,
        last_topic=tracker.get_slot(LAST_TOPIC_SLOT),
        clarifying=bool(tracker.get_slot(CLARIFYING_SLOT)),
        scope=Judgement.from_dict(message.get("scope")),  # what the message is about (rasa_extensions/scope.py)
    )


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        turn = turn_from_tracker(tracker)
        snapshot = default_store().current()
        reply = decide(turn, snapshot)
        logger.info("reply kind=%s facts=%s reason=%s", reply.kind, ",".join(reply.facts), reply.reason)
        # Stored with each bot message (BotUttered.metadata): how the turn ended, for the staff
        # console and the evaluation, without re-deriving it from the text.
        outcome = {"kind": reply.kind, "facts": list(reply.facts), "reason": reply.reason}
        for message in reply.messages:  # a message in the patient's language carries its tag (and, urgent, the numbers)
            dispatcher.utter_message(text=message.text, buttons=message.button_dicts() or None,
                                     json_message=message_custom(snapshot, message, reply.kind == "urgent"),
                                     clinic=outcome)
        if reply.kind == "urgent":  # the numbers as data too, so a channel can offer call buttons
            dispatcher.utter_message(json_message=urgent_custom(snapshot), clinic=outcome)
        if reply.kind == FORGET:  # the channel deletes the conversation once this turn is stored
            dispatcher.utter_message(json_message={FORGET_KEY: True})
        events = [SlotSet(CLARIFYING_SLOT, reply.clarifying)]
        if reply.topic:
            events.append(SlotSet(LAST_TOPIC_SLOT, reply.topic))
        return events
