"""What the channels need from Rasa's running agent: the last reply's buttons, and deleting a conversation.

Both read or change the conversation store the agent uses (app.ctx.agent, set by
`rasa run`), so they live here with the other Rasa extensions; the decisions
(which typed "/..." to honour, when to delete) are made in clinic/.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.core.events import BotUttered, SlotSet, UserUttered

from clinic import audit
from clinic.replies import FORGET_KEY
from clinic.settings import Settings
from rasa_extensions.tracker_store import storage_reason
from rasa_extensions.turns import channel_reply_event, events_of_turn

logger = logging.getLogger(__name__)



def _agent(app: Any) -> Any:
    return getattr(getattr(app, "ctx", None), "agent", None)


def _store(app: Any) -> Any:
    agent = _agent(app)
    store = getattr(agent, "tracker_store", None)
    return getattr(store, "_tracker_store", store)  # Rasa may wrap it in an AwaitableTrackerStore


async def offered_payloads(app: Any, sender_id: str) -> Tuple[str, ...]:
    """The button payloads of the assistant's last reply in this conversation."""
    store = _store(app)
    if store is None:
        return ()
    tracker = await store.retrieve(sender_id)
    payloads: List[str] = []
    for event in reversed(tracker.events if tracker is not None else []):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            payloads += [b["payload"] for b in event.data.get("buttons") or []
                         if isinstance(b, dict) and isinstance(b.get("payload"), str)]
    return tuple(payloads)


async def payloads_offered_ever(app: Any, sender_id: str) -> Tuple[str, ...]:
    """The button payloads of every reply in the conversation's current session.

    Telegram keeps the buttons under every earlier answer pressable, so a press is honoured when
    its data is one of these: the assistant offered it to this patient; anything else was forged.
    """
    store = _store(app)
    tracker = await store.retrieve(sender_id) if store is not None else None
    return tuple(b["payload"] for event in (tracker.events if tracker is not None else [])
                 if isinstance(event, BotUttered)
                 for b in event.data.get("buttons") or [] if isinstance(b, dict) and isinstance(b.get("payload"), str))


FEEDBACK_SLOT = "feedback"


def answered_fact(events: List[Any]) -> Optional[str]:
    """The fact of the latest answer in the conversation (the bot message's stored outcome)."""
    for event in reversed(events):
        if isinstance(event, BotUttered):
            outcome = (event.metadata or {}).get("clinic") or {}
            facts = [f for f in outcome.get("facts") or [] if f != "welcome"]
            if outcome.get("kind") in ("answer", "out_of_scope") and facts:
                return str(facts[-1])
    return None


async def latest_answer(app: Any, sender_id: str) -> Optional[str]:
    """The fact of the assistant's latest message when it was an answer (something to rate), else None."""
    store = _store(app)
    tracker = await store.retrieve(sender_id) if store is not None else None
    for event in reversed(list(tracker.events) if tracker is not None else []):
        if isinstance(event, BotUttered) and (event.metadata or {}).get("clinic"):
            return answered_fact([event])
    return None


def answer_to(events: List[Any], message_id: str) -> Optional[str]:
    """The fact the assistant answered the patient's message `message_id` with, or None (not found, not an answer).

    So a thumbs pressed under an older answer is stored against that answer, not the newest one.
    """
    turn = events_of_turn(events, message_id)
    return answered_fact(turn) if turn else None


async def record_feedback(app: Any, sender_id: str, value: str, answer_of: Optional[str] = None) -> bool:
    """Stores a thumbs up/down as a slot event; False when there is nothing to rate.

    `answer_of`: the message id of the patient's message whose answer the thumbs were under (Telegram
    puts it in the button's data; the widget and REST clients send it as `message_id`); without it,
    the latest answer is rated.
    """
    agent, store = _agent(app), _store(app)
    if agent is None or store is None:
        return False
    async with agent.lock_store.lock(sender_id):  # never interleaved with a message being answered
        tracker = await store.retrieve(sender_id)
        events = list(tracker.events) if tracker is not None else []
        fact = answer_to(events, answer_of) if answer_of else answered_fact(events)
        if tracker is None or fact is None:
            return False
        rated = {"value": value, "fact": fact, **({"message_id": answer_of} if answer_of else {})}
        tracker.update(SlotSet(FEEDBACK_SLOT, rated))
        await store.save(tracker)
    return True


async def record_channel_replies(app: Any, sender_id: str, replies: List[Dict[str, Any]], reason: str) -> List[Any]:
    """Stores replies a channel sent without the dialogue (Telegram's urgent answer to an edit or to the end
    of a long message) as bot turns, so the record shows what the patient was told; returns the events.

    As rasa_extensions/turns.py stores the fallback when the dialogue said nothing. Raises when the
    store fails (the caller has already sent the reply and logs it).
    """
    agent, store = _agent(app), _store(app)
    if agent is None or store is None:
        return []
    events = [channel_reply_event(reply, reason) for reply in replies]
    async with agent.lock_store.lock(sender_id):
        tracker = await store.retrieve(sender_id) or await store.create_tracker(sender_id)
        for event in events:
            tracker.update(event)
        await store.save(tracker)
    return events


def is_ready(app: Any) -> bool:
    """Rasa runs on without a model when loading one fails, answering nothing: that is not ready."""
    agent = _agent(app)
    return agent is not None and bool(agent.is_ready())


async def storage_problem(app: Any) -> Optional[str]:
    """None when a real write to the conversation store and a ping of the lock store succeed; else why not."""
    import asyncio

    store = _store(app)
    agent = _agent(app)
    if not is_ready(app):
        return "no model loaded: see the log's first error"
    try:
        if store is not None and hasattr(store, "check_writable"):
            await asyncio.get_running_loop().run_in_executor(None, store.check_writable)
        red = getattr(getattr(agent, "lock_store", None), "red", None)
        if red is not None:
            await asyncio.get_running_loop().run_in_executor(None, red.ping)
    except Exception as exc:  # reported to the load balancer, never raised
        return f"{type(exc).__name__}: {exc}" if "Cannot write" in str(exc) else type(exc).__name__
    return None


def asks_to_forget(message: Dict[str, Any]) -> bool:
    custom = message.get("custom")
    return isinstance(custom, dict) and bool(custom.get(FORGET_KEY))


def forget(app: Any, settings: Settings, sender_id: str, channel: str) -> Optional[int]:
    """Deletes the conversation's stored events, and records that it happened; None when it could not.

    Never raises: a channel must be able to tell the patient that nothing was deleted.
    """
    store = _store(app)
    if store is None or not hasattr(store, "forget"):
        logger.error("The conversation store cannot delete conversations; configure the project's tracker store")
        return None
    try:
        deleted = int(store.forget(sender_id))
    except Exception as exc:  # the database refused: nothing was deleted, and the channel must say so
        logger.error("A %s conversation could not be deleted at the patient's request (%s)", channel,
                     storage_reason(exc))
        return None
    try:
        from ops.alerts import alerts

        deleted += alerts(settings).forget(sender_id)
    except Exception:  # the conversation is gone either way; an alert row left is purged by retention
        logger.exception("The staff alerts of a deleted conversation could not be deleted")
    audit.record(settings, "conversation deleted", by="patient", channel=channel,
                 conversation=audit.conversation_ref(sender_id), events=deleted)
    logger.info("A %s conversation was deleted at the patient's request (%d events)", channel, deleted)
    return deleted
