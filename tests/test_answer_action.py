"""The Rasa action itself, driven by real tracker dictionaries as Rasa sends them."""

from __future__ import annotations

from typing import List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answer import ActionAnswer, user_turns_this_session


def tracker(text: str, intent: str, confidence: float = 0.93, entities: Optional[List[dict]] = None,
            slots: Optional[dict] = None, earlier_turns: int = 1) -> Tracker:
    user = {"event": "user", "text": text, "parse_data": {}}
    events = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"},
              {"event": "action", "name": "action_listen"}]
    events += [user, {"event": "bot", "text": "earlier answer"}] * (earlier_turns - 1) + [user]
    return Tracker.from_dict({
        "sender_id": "patient-1",
        "slots": {"last_topic": None, "clarifying": False, **(slots or {})},
        "latest_message": {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "intent_ranking": [{"name": intent, "confidence": confidence}],
            "entities": entities or [],
        },
        "events": events,
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    })


async def run(t: Tracker):
    dispatcher = CollectingDispatcher()
    events = await ActionAnswer().run(dispatcher, t, {})
    return dispatcher.messages, events


@pytest.mark.asyncio
async def test_answers_from_the_store_and_remembers_the_topic(snapshot) -> None:
    messages, events = await run(tracker("how long am I red for", "ask_downtime", earlier_turns=2))
    assert len(messages) == 1
    assert messages[0]["text"].startswith(snapshot.render(snapshot.facts["downtime"]))
    assert {b["title"] for b in messages[0]["buttons"]} <= {f.title for f in snapshot.facts.values()}
    assert SlotSet("last_topic", "downtime") in events
    assert SlotSet("clarifying", False) in events


@pytest.mark.asyncio
async def test_first_turn_sends_the_welcome_first(snapshot) -> None:
    messages, _ = await run(tracker("do you numb it", "ask_numbing", earlier_turns=1))
    assert messages[0]["text"] == snapshot.render(snapshot.facts["welcome"])
    assert messages[1]["text"].startswith(snapshot.render(snapshot.facts["numbing"]))


@pytest.mark.asyncio
async def test_button_entity_selects_the_variant(snapshot) -> None:
    entities = [{"entity": "fact", "value": "candidacy_pregnancy"}]
    messages, events = await run(tracker('/ask_candidacy{"fact":"candidacy_pregnancy"}', "ask_candidacy",
                                         1.0, entities=entities, earlier_turns=3))
    assert messages[0]["text"].startswith(snapshot.render(snapshot.facts["candidacy_pregnancy"]))
    assert SlotSet("last_topic", "candidacy_pregnancy") in events


@pytest.mark.asyncio
async def test_fallback_after_a_clarification_hands_over_to_a_person(snapshot) -> None:
    messages, events = await run(tracker("qwerty zxcv", "nlu_fallback", 0.7, slots={"clarifying": True},
                                         earlier_turns=3))
    assert messages[0]["text"] == snapshot.render(snapshot.facts["clarify_failed"])
    assert SlotSet("clarifying", False) in events


def test_counts_user_turns_since_the_session_started() -> None:
    events = [{"event": "user"}, {"event": "session_started"}, {"event": "user"}, {"event": "bot"},
              {"event": "user"}]
    assert user_turns_this_session(events) == 2
