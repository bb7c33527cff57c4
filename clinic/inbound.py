"""What a patient's client may send, checked before anything reaches the dialogue or the database.

Every channel passes text through `readable_text` and `typed_commands`:
- a lone UTF-16 surrogate cannot be encoded or stored (it stopped the Rasa
  process once), NUL bytes are refused by PostgreSQL, and other control
  characters are noise: the first is refused, the others are removed;
- Rasa reads a message that starts with "/" as an intent with confidence 1.0
  ("/restart" wipes the conversation). A patient's typed text must never do
  that, so "/..." is honoured only when it is exactly the payload of a button
  the assistant offered in its last reply; otherwise the slash is dropped and
  the words are read as words.
Metadata is limited to a small allowlist of keys and bytes, since Rasa stores
it with every event.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Dict, Iterable, Optional, Tuple

COMMAND_PREFIX = "/"
METADATA_KEYS = frozenset({"page", "source", "locale"})
MAX_METADATA_BYTES = 1024
_KEPT_CONTROLS = {"\n", "\t"}


def readable_text(text: str) -> Optional[str]:
    """The text without control characters; None when it cannot be stored (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in _KEPT_CONTROLS or unicodedata.category(ch) != "Cc")


def typed_commands(text: str, offered_payloads: Iterable[str]) -> str:
    """The text Rasa may see: a "/..." only when it is a payload the assistant offered.

    Rasa strips a message with `str.strip()` (every Unicode blank: tabs, newlines, no-break
    spaces) before it looks for the "/", twice over (UserMessage, then the regex handler). So
    slashes and blanks are removed in turns until the text no longer starts with "/": removing
    only "/" and spaces let "/\t/restart" or "/\u00a0/session_start" through as commands.
    """
    stripped = text.strip()
    if not stripped.startswith(COMMAND_PREFIX) or stripped in set(offered_payloads):
        return text
    while stripped.startswith(COMMAND_PREFIX):
        stripped = stripped[len(COMMAND_PREFIX):].strip()
    return stripped


def clean_metadata(metadata: Any) -> Tuple[Optional[Dict[str, str]], Optional[str]]:
    """(the metadata to keep, None) or (None, why it is refused)."""
    if metadata is None:
        return None, None
    if not isinstance(metadata, dict):
        return None, "'metadata' must be a JSON object."
    unknown = sorted(str(k) for k in metadata if k not in METADATA_KEYS)
    if unknown:
        return None, f"'metadata' may only hold {', '.join(sorted(METADATA_KEYS))}."
    if not all(isinstance(v, str) for v in metadata.values()):
        return None, "'metadata' values must be text."
    if len(json.dumps(metadata).encode()) > MAX_METADATA_BYTES:
        return None, f"'metadata' is limited to {MAX_METADATA_BYTES} bytes."
    cleaned = {k: readable_text(v) for k, v in metadata.items()}
    if any(v is None for v in cleaned.values()):
        return None, "'metadata' holds characters that cannot be read."
    return {k: v for k, v in cleaned.items() if v is not None}, None
