"""Phone numbers and e-mail addresses in patients' words, masked unless a staff member asks to see them.

Masking is for what the console shows and exports; the stored conversation is
unchanged. Revealing is logged to the audit log by the page that does it (app.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A run of digits with the separators people type (+44 (0)20 7946-0958, 0612345678, 06 12 34 56 78).
PHONE_CANDIDATE = re.compile(r"(?<![\w])\+?\(?\d[\d\s().\-/]{5,}\d(?![\w])")
MIN_PHONE_DIGITS = 7
EMAIL_MASK = "[e-mail hidden]"
PHONE_MASK = "[phone hidden]"


def _phone(match: re.Match) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return PHONE_MASK if digits >= MIN_PHONE_DIGITS else match.group(0)


@lru_cache(maxsize=65536)  # the same questions recur; a page masks each text more than once
def mask(text: str) -> str:
    """The text with every e-mail address and phone number replaced by a marker."""
    return PHONE_CANDIDATE.sub(_phone, EMAIL.sub(EMAIL_MASK, text))


def has_contact_details(text: str) -> bool:
    return mask(text) != text
