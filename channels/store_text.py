"""Fact-store messages that channels send without asking the dialogue.

Two cases never reach Rasa's dialogue:
- a blank message: Rasa's LogisticRegressionClassifier fails on a message with
  no tokens, and there is nothing to classify anyway;
- no reply at all: when the action server is down or too slow, Rasa logs the
  failure and sends nothing, which would leave a patient waiting.
The texts are facts ('empty_message', 'action_error'), edited like any answer,
so the apology carries the clinic's phone number.
"""

from __future__ import annotations

import logging

from actions.fact_store import default_store

logger = logging.getLogger(__name__)

LAST_RESORT = "Sorry, I can't answer just now. Please try again in a moment, or call the clinic."


def fact_text(fact_id: str) -> str:
    try:
        snapshot = default_store().current()
        return snapshot.render(snapshot.facts[fact_id])
    except Exception:  # the store itself is unreadable: still say something
        logger.exception("Fact store unavailable for the '%s' message", fact_id)
        return LAST_RESORT


def apology_text() -> str:
    return fact_text("action_error")


def is_blank(text: str) -> bool:
    return not text.strip()
