"""Fact-store messages that channels send without asking the dialogue.

Telegram's /help and its answer to a photo or sticker are facts sent by the
channel itself (fact_message). Two cases never reach Rasa's dialogue at all:
- a blank message: Rasa's LogisticRegressionClassifier fails on a message with
  no tokens, and there is nothing to classify anyway;
- no reply at all: when the action server is down or too slow, Rasa logs the
  failure and sends nothing, which would leave a patient waiting.
The texts are facts ('empty_message', 'action_error'), edited like any answer,
so the apology carries the clinic's phone number.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from clinic.fact_store import default_store
from clinic.replies import render_fact
from clinic.urgent import fallback_messages

logger = logging.getLogger(__name__)

LAST_RESORT = "Sorry, I can't answer just now. Please try again in a moment, or call the clinic."


def fact_text(fact_id: str) -> str:
    try:
        snapshot = default_store().current()
        return snapshot.render(snapshot.facts[fact_id])
    except Exception:  # the store itself is unreadable: still say something
        logger.exception("Fact store unavailable for the '%s' message", fact_id)
        return LAST_RESORT


def fact_message(fact_id: str) -> Dict[str, Any]:
    """A fact as a bot message {text, buttons}, rendered as the dialogue renders it (source line, follow-ups)."""
    try:
        snapshot = default_store().current()
        message = render_fact(snapshot, snapshot.facts[fact_id])
        return {"text": message.text, "buttons": message.button_dicts()}
    except Exception:  # the store is unreadable: fact_text logs it and still says something
        return {"text": fact_text(fact_id)}


def apology_text() -> str:
    return fact_text("action_error")


def fallback(text: str) -> List[Dict[str, Any]]:
    """The reply when the dialogue could not answer: urgent when the words call for it, else the apology."""
    try:
        return fallback_messages(default_store().current(), text)
    except Exception:  # the store is unreadable: fact_text logs it and still says something
        return [{"text": apology_text()}]


def is_blank(text: str) -> bool:
    return not text.strip()
