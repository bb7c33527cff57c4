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

from typing import Any, Dict, List

from clinic.fact_store import Snapshot
from clinic.replies import render_fact
from clinic.safety import urgent_reason

URGENT_FACT = "urgent"
PHONE_LABELS = (("phone", "Call the clinic"), ("after_hours_phone", "After-hours line"),
                ("emergency_number", "Emergency services"))


def phones(snapshot: Snapshot) -> List[Dict[str, str]]:
    """The clinic's numbers, in the order a worried patient should try them."""
    return [{"label": label, "number": str(snapshot.settings[key])}
            for key, label in PHONE_LABELS if snapshot.settings.get(key)]


def urgent_custom(snapshot: Snapshot) -> Dict[str, Any]:
    return {"urgent": True, "phones": phones(snapshot)}


def is_urgent_text(snapshot: Snapshot, text: str) -> bool:
    """Urgent from the words alone (the warning signs), for when no classifier could be asked."""
    return urgent_reason(text, (), snapshot.warning_signs) is not None


def fallback_messages(snapshot: Snapshot, text: str) -> List[Dict[str, Any]]:
    """What a channel sends when the dialogue said nothing: the urgent answer when the words call for it."""
    if is_urgent_text(snapshot, text):
        message = render_fact(snapshot, snapshot.facts[URGENT_FACT], with_buttons=False)
        return [{"text": message.text, "custom": urgent_custom(snapshot)}]
    return [{"text": snapshot.render(snapshot.facts["action_error"])}]
