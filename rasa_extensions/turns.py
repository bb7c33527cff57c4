"""Every turn stored once and completely, or not answered as if it were.

Three changes to Rasa's message handling, installed by rasa_extensions.install():

- **No silent fallback to memory.** Rasa wraps the conversation store in a
  FailSafeTrackerStore: when the database fails it logs an error and carries on
  with an empty in-memory conversation, so the patient is welcomed as a stranger
  and the turn is never written (538 messages lost in a 10-second PostgreSQL
  outage). Here the store's error reaches the channel, which answers 503 with
  Retry-After (channels/rest.py), so the client sends the same message again.
- **Idempotent messages.** A channel that passes a message id (the widget's and
  REST clients' `message_id`, Telegram's update id) gets, for a repeat of an id
  already stored in the conversation, the stored reply instead of a second turn.
  The check runs inside the conversation's lock (MessageProcessor.handle_message
  runs under it), so two instances cannot both take it for new. The message is
  marked `duplicate` so Telegram does not send the answer twice.
- **The record is complete.** When the dialogue said nothing (the action server
  down or too slow), the reply the channel would send (the apology, or the urgent
  answer when the words call for it: clinic/urgent.py) is stored as a bot turn
  and sent, instead of leaving a question with no answer in the record.

tests/test_rasa_contracts.py pins the Rasa internals used here.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

logger = logging.getLogger(__name__)

_original: Dict[str, Any] = {}
EXPLICIT_ID_ATTRIBUTE = "clinic_explicit_id"  # set by our channels: Rasa invents an id when none is given


def events_of_turn(events: List[Any], message_id: str) -> Optional[List[Any]]:
    """The events that followed the patient's message `message_id`, up to their next message; None when
    no message has that id (a new message, or one from another conversation)."""
    from rasa.shared.core.events import UserUttered

    turn: Optional[List[Any]] = None
    for event in events:
        if isinstance(event, UserUttered):
            if turn is not None:
                break
            if event.message_id == message_id:
                turn = []
        elif turn is not None:
            turn.append(event)
    return turn


def stored_replies(events: List[Any], message_id: str) -> Optional[List[Dict[str, Any]]]:
    """The bot messages that answered `message_id` in this conversation, or None when it is new."""
    from rasa.shared.core.events import BotUttered

    turn = events_of_turn(events, message_id)
    return None if turn is None else [event.message() for event in turn if isinstance(event, BotUttered)]


async def handle_message(self: Any, message: Any) -> Optional[List[Dict[str, Any]]]:
    """MessageProcessor.handle_message, answering a repeated message id from the record."""
    if getattr(message, EXPLICIT_ID_ATTRIBUTE, False):
        tracker = await self.tracker_store.retrieve(message.sender_id)
        replies = stored_replies(list(tracker.events), message.message_id) if tracker is not None else None
        if replies is not None:
            message.duplicate = True
            for reply in replies:
                await message.output_channel.send_response(message.sender_id, reply)
            logger.info("Message %s of conversation %s was already answered: stored reply sent again",
                        message.message_id, message.sender_id)
            return getattr(message.output_channel, "messages", None)
    return await _original["handle_message"](self, message)


async def run_prediction_loop(self: Any, output_channel: Any, tracker: Any) -> None:
    """MessageProcessor._run_prediction_loop, storing a reply when the dialogue gave none."""
    from rasa.shared.core.events import BotUttered

    from clinic.channel_texts import fallback

    before = len(tracker.events)
    await _original["_run_prediction_loop"](self, output_channel, tracker)
    text = (tracker.latest_message.text if tracker.latest_message else "") or ""
    said = [event for event in list(tracker.events)[before:] if isinstance(event, BotUttered)]
    if said:
        alert_staff(tracker, said, text)
        return
    stored = []
    for reply in fallback(text):  # the urgent answer may come in two messages: the patient's language, then English
        event = channel_reply_event(reply, "no reply")
        tracker.update(event)
        stored.append(event)
        await output_channel.send_response(tracker.sender_id, reply)
    alert_staff(tracker, stored, text)  # once per turn, however many messages it took


def channel_reply_event(reply: Dict[str, Any], reason: str) -> Any:
    """A reply a channel sent without the dialogue (the apology, or the urgent answer), as the bot turn the
    record keeps: with its kind for the staff console and the alerts, as actions/answer.py stores answers."""
    from rasa.shared.core.events import BotUttered

    urgent = bool((reply.get("custom") or {}).get("urgent"))
    outcome = {"kind": "urgent" if urgent else "apology", "facts": ["urgent"] if urgent else [], "reason": reason}
    data = {"custom": reply["custom"]} if "custom" in reply else {}
    return BotUttered(reply.get("text"), data=data, metadata={"clinic": outcome})


def alert_staff(tracker: Any, said: List[Any], text: str) -> None:
    """Queues a staff alert for an urgent answer or a request for a person, without delaying the reply."""
    from clinic.callbacks import CONFIRMED, CONFIRMED_CLOSED, REQUEST_SLOT
    from ops.alerts import CALLBACK, PERSON, URGENT

    outcomes = [(event.metadata or {}).get("clinic") or {} for event in said]
    facts = {fact for o in outcomes for fact in o.get("facts") or []}
    kind = URGENT if any(o.get("kind") == "urgent" for o in outcomes) else \
        CALLBACK if facts & {CONFIRMED, CONFIRMED_CLOSED} else PERSON if "human_handoff" in facts else None
    if kind is None:
        return
    if kind == CALLBACK:  # what staff need to call back: the request the patient consented to store
        request = tracker.get_slot(REQUEST_SLOT) or {}
        text = ", ".join(str(request.get(k) or "?") for k in ("name", "phone", "time"))
    channel = (tracker.latest_message.input_channel if tracker.latest_message else None) or "unknown"
    queue_alert(tracker.sender_id, kind, channel, text)


def queue_alert(sender_id: str, kind: str, channel: str, text: str) -> None:
    """Queues one staff alert (ops/alerts.py) off the event loop: the patient's reply never waits for it,
    and a failure to queue is logged, never raised."""
    import asyncio

    from ops.alerts import alerts

    def queue() -> None:
        try:
            alerts().notify(sender_id, kind, channel, text)
        except Exception:  # the patient's reply is never affected; the console shows what was not sent
            logger.exception("A staff alert could not be queued")

    asyncio.get_running_loop().run_in_executor(None, queue)


def without_memory_fallback(store: Any, domain: Any) -> Any:
    """Agent._create_tracker_store, minus the FailSafeTrackerStore wrapper."""
    from rasa.core.tracker_store import InMemoryTrackerStore

    if store is None:
        return InMemoryTrackerStore(domain)
    store.domain = domain
    return store


def apply() -> str:
    from rasa.core.agent import Agent
    from rasa.core.processor import MessageProcessor

    if not _original:
        _original["handle_message"] = MessageProcessor.handle_message
        _original["_run_prediction_loop"] = MessageProcessor._run_prediction_loop
    MessageProcessor.handle_message = handle_message
    MessageProcessor._run_prediction_loop = run_prediction_loop
    Agent._create_tracker_store = staticmethod(without_memory_fallback)
    return "repeated messages answered from the record; every turn stored with its reply; no fallback to memory"
