"""What the channels need from Rasa's running agent: the last reply's buttons, and deleting a conversation.

Both read or change the conversation store the agent uses (app.ctx.agent, set by
`rasa run`), so they live here with the other Rasa extensions; the decisions
(which typed "/..." to honour, when to delete) are made in clinic/.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.core.events import BotUttered, UserUttered

from clinic import audit
from clinic.replies import FORGET_KEY
from clinic.settings import Settings

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


def asks_to_forget(message: Dict[str, Any]) -> bool:
    custom = message.get("custom")
    return isinstance(custom, dict) and bool(custom.get(FORGET_KEY))


def forget(app: Any, settings: Settings, sender_id: str, channel: str) -> Optional[int]:
    """Deletes the conversation's stored events, and records that it happened; None when it could not."""
    store = _store(app)
    if store is None or not hasattr(store, "forget"):
        logger.error("The conversation store cannot delete conversations; configure the project's tracker store")
        return None
    deleted = int(store.forget(sender_id))
    audit.record(settings, "conversation deleted", by="patient", channel=channel,
                 conversation=audit.conversation_ref(sender_id), events=deleted)
    logger.info("A %s conversation was deleted at the patient's request (%d events)", channel, deleted)
    return deleted
