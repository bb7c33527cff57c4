"""Turning the assistant's replies into sendMessage calls Telegram accepts.

Plain text, no parse_mode, on purpose: answers are edited by clinic staff and
contain characters that MarkdownV2 reserves (. ( ) - ! in every "Source: ...
(https://...)" line) and that HTML reserves (< > &). One missed escape makes
Telegram refuse the whole message with 400 "can't parse entities", so the
patient would get nothing. Without a parse mode every character arrives as
typed, and Telegram still makes the source URLs clickable.

Telegram refuses messages over 4096 characters, counted in UTF-16 code units
(an emoji counts twice), so long texts are split on paragraph, then line, then
sentence, then word boundaries, and the buttons go with the last part.

The callback form's phone question asks for a reply keyboard instead of inline buttons
(custom data clinic.callbacks.TELEGRAM_KEYBOARD): Telegram's "share my phone number"
button (request_contact) and a Cancel button that sends its title as text.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Optional, Sequence

from clinic.callbacks import TELEGRAM_KEYBOARD

logger = logging.getLogger(__name__)

MAX_MESSAGE_UTF16 = 4096
MAX_CALLBACK_DATA_BYTES = 64
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _prefix_fitting(text: str, limit: int) -> int:
    """The largest n such that text[:n] is at most `limit` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _cut_point(window: str) -> int:
    """Where to end the next part inside `window`: the latest boundary that keeps parts reasonably full."""
    floor = len(window) // 3  # a boundary very early would make many tiny messages
    for pattern in ("\n\n", "\n"):
        at = window.rfind(pattern)
        if at >= floor:
            return at + len(pattern)
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if sentence_ends and sentence_ends[-1] >= floor:
        return sentence_ends[-1]
    space = max(window.rfind(" "), window.rfind("\t"))
    if space >= floor:
        return space + 1
    return len(window)  # one very long word or URL: cut it hard


def split_text(text: str, limit: int = MAX_MESSAGE_UTF16) -> List[str]:
    """Parts of at most `limit` UTF-16 units, split on the most natural boundary; never an empty part."""
    rest = text.strip()
    parts: List[str] = []
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        window = rest[:max(1, _prefix_fitting(rest, limit))]
        cut = max(1, _cut_point(window))
        head = rest[:cut].strip()
        if head:
            parts.append(head)
        rest = rest[cut:].strip()
    return parts


def inline_keyboard(buttons: Optional[Sequence[Dict[str, Any]]]) -> Optional[Dict[str, Any]]:
    """Rasa buttons [{title, payload}] as an inline keyboard, one button per row (titles are long).

    A payload over Telegram's 64-byte callback_data limit cannot be a button; it
    is left out with a warning rather than making Telegram refuse the message.
    """
    rows = []
    for button in buttons or ():
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or "")
        if not title or not payload:
            continue
        if len(payload.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
            logger.warning("Button '%s' left out: its payload is over %d bytes", title, MAX_CALLBACK_DATA_BYTES)
            continue
        rows.append([{"text": title, "callback_data": payload}])
    return {"inline_keyboard": rows} if rows else None


def reply_keyboard(spec: Any) -> Optional[Dict[str, Any]]:
    """{"contact": title, "cancel": title} -> a one-time reply keyboard sharing the patient's number, or cancelling."""
    if not isinstance(spec, dict) or not isinstance(spec.get("contact"), str) or not spec["contact"].strip():
        return None
    rows: List[List[Dict[str, Any]]] = [[{"text": spec["contact"], "request_contact": True}]]
    if isinstance(spec.get("cancel"), str) and spec["cancel"].strip():
        rows.append([{"text": spec["cancel"]}])
    return {"keyboard": rows, "one_time_keyboard": True, "resize_keyboard": True}


def with_reply_keyboards(messages: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rasa sends a message's custom data apart from its text: a reply keyboard rejoins the text it belongs to."""
    joined: List[Dict[str, Any]] = []
    for message in messages:
        custom = message.get("custom")
        keyboard = reply_keyboard(custom.get(TELEGRAM_KEYBOARD)) if isinstance(custom, dict) else None
        if keyboard and joined and joined[-1].get("text") and not message.get("text"):
            joined[-1] = {**joined[-1], "reply_keyboard": keyboard, "buttons": None}
            continue
        joined.append(message)
    return joined


def send_message_params(chat_id: int | str, text: str, buttons: Optional[Sequence[Dict[str, Any]]] = None,
                        reply_to_message_id: Optional[int] = None,
                        keyboard: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The sendMessage calls for one reply: the text split to fit, buttons (or a reply keyboard) on the last part,
    no parse_mode."""
    parts = split_text(text)
    calls = []
    for index, part in enumerate(parts):
        params: Dict[str, Any] = {"chat_id": chat_id, "text": part, "link_preview_options": {"is_disabled": True}}
        if reply_to_message_id is not None and index == 0:
            params["reply_parameters"] = {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
        if index == len(parts) - 1:
            markup = keyboard or inline_keyboard(buttons)
            if markup:
                params["reply_markup"] = markup
        calls.append(params)
    return calls
