"""The one notion of "urgent" every part shares: when a message is urgent, and the numbers to call.

The dialogue decides with the classifier as well (clinic/safety.py via
clinic/replies.py). When the dialogue cannot answer at all (the action server
down, the conversation store failing), a channel still decides from the words
alone, with the same warning signs, and gives the same urgent answer: a patient
reporting a fever and pus must never get only "sorry, try again".
The phones travel with an urgent reply as `custom` data so a channel can offer
call buttons (`tel:` links in the widget).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from clinic import languages
from clinic.fact_store import Snapshot
from clinic.replies import Message, render_fact
from clinic.safety import urgent_reason

logger = logging.getLogger(__name__)

URGENT_FACT = "urgent"
PHONE_LABELS = (("phone", "Call the clinic"), ("after_hours_phone", "After-hours line"),
                ("emergency_number", "Emergency services"))


def phones(snapshot: Snapshot) -> List[Dict[str, str]]:
    """The clinic's numbers, in the order a worried patient should try them."""
    return [{"label": label, "number": str(snapshot.settings[key])}
            for key, label in PHONE_LABELS if snapshot.settings.get(key)]


def urgent_custom(snapshot: Snapshot) -> Dict[str, Any]:
    return {"urgent": True, "phones": phones(snapshot)}


def message_custom(snapshot: Snapshot, message: Message, urgent: bool) -> Optional[Dict[str, Any]]:
    """The data a dialogue message carries besides its text (actions/answer.py): its language tag when it is
    not English, and, in an urgent reply, the numbers too, so that what to do now in the patient's language
    is an urgent answer as it is when the channel gives it (fallback_messages)."""
    if message.lang is None:
        return None
    return {**urgent_custom(snapshot), "lang": message.lang} if urgent else {"lang": message.lang}


def _languages() -> Dict[str, languages.Language]:
    """data/languages.yml; when it cannot be read, English alone (the urgent answer must still go out)."""
    try:
        return languages.languages()
    except Exception:  # a broken file is reported by `make check-facts`; here it must not cost the answer
        logger.exception("data/languages.yml is unusable: warning signs are checked in English only")
        return {}


def _urgent_language(snapshot: Snapshot, text: str) -> tuple[bool, Optional[languages.Language]]:
    """(urgent?, the patient's language when it is not English), from the words alone."""
    table = _languages()
    signed = languages.warning_sign_language(text, table)
    if signed is not None:
        return True, signed
    if urgent_reason(text, (), snapshot.warning_signs) is None:
        return False, None
    return True, languages.detect(text, table)


def is_urgent_text(snapshot: Snapshot, text: str) -> bool:
    """Urgent from the words alone (the warning signs, in English and in data/languages.yml), for when no
    classifier could be asked."""
    return _urgent_language(snapshot, text)[0]


def fallback_messages(snapshot: Snapshot, text: str) -> List[Dict[str, Any]]:
    """What a channel sends when the dialogue said nothing: the urgent answer when the words call for it.

    In another language, what to do now comes first in that language (as the dialogue sends it,
    clinic/replies.py), marked with its language tag; the English urgent answer follows. Both carry the
    numbers: a channel that can show only one message (a 503, channels/rest.py) shows the first.
    """
    urgent, language = _urgent_language(snapshot, text)
    if not urgent:
        return [{"text": snapshot.render(snapshot.facts["action_error"])}]
    message = render_fact(snapshot, snapshot.facts[URGENT_FACT], with_buttons=False)
    english = {"text": message.text, "custom": urgent_custom(snapshot)}
    if language is None:
        return [english]
    own = {"text": languages.render(language.urgent, snapshot.settings),
           "custom": {**urgent_custom(snapshot), "lang": language.code}}
    return [own, english]
