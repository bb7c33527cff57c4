"""Reading a Telegram update: what, if anything, the assistant should do with it.

Telegram sends many update kinds and adds new ones over time; Rasa's stock
connector crashed on several. Here every update is read defensively (any field
may be missing or of the wrong type) and becomes one `Incoming`, or None for
"stay silent". The rules, each a product decision (docs/telegram.md):
- private chats: text goes to the assistant; /start greets; /help and unknown
  commands explain; photos, stickers, voice, locations, documents... get the
  polite 'not_text' reply (a caption is also answered, because it may name a
  warning sign);
- groups: only messages addressed to the bot (an @mention, a reply to one of
  its messages, a /command) are answered; the rest is other people talking;
- a shared contact (Telegram's "share my phone number" button, which the callback form
  offers in private chats) is read as its phone number, typed;
- edited messages are read only for warning signs: the original was already
  answered, and a second answer to a changed question arrives out of order, but
  an edit that adds "and now I have a fever" must reach the urgent answer;
- nobody wrote to us (channel posts, membership changes, polls, ...): silence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

from clinic.callbacks import BUTTON_PAYLOADS

# What a person can send that is not text; anything else without text is a service message.
USER_CONTENT = (
    "photo", "sticker", "voice", "video", "video_note", "audio", "document", "animation",
    "location", "venue", "contact", "poll", "dice", "game", "story",
)
PRIVATE = "private"
GROUPS = ("group", "supergroup")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{3,64}))?(?=\s|$)")
# Our own button payloads (clinic.replies.payload_for): /intent{"fact":"id"}. Anything else in
# callback_data was forged by a modified client (e.g. /restart) and never reaches the dialogue.
_PAYLOAD = re.compile(r'^/[a-z_]{1,40}\{"fact":"[a-z0-9_]{1,40}"\}$')
# The callback form's buttons (yes, no, cancel) send words a patient could type as well.


@dataclass(frozen=True)
class Incoming:
    """One thing to answer. kind: text | command | media | callback | edited."""

    kind: str
    chat_id: Optional[int]
    chat_type: str
    text: str = ""  # the text, a media caption, a command name or a callback payload
    message_id: Optional[int] = None
    callback_id: Optional[str] = None
    update_id: Optional[int] = None  # Telegram's id of the update: the message's id in the record
    user_id: Optional[int] = None  # who wrote: in groups each member has a conversation of their own
    argument: str = ""  # what follows a command: /start's deep-link payload (which page or ad sent them)

    @property
    def in_group(self) -> bool:
        return self.chat_type in GROUPS


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _utf16_slice(text: str, offset: Any, length: Any) -> str:
    """Telegram entity offsets count UTF-16 code units, not Python characters."""
    if _int(offset) is None or _int(length) is None:
        return ""
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2:(offset + length) * 2].decode("utf-16-le", errors="ignore")


def _mentions(message: Dict[str, Any], text: str, username: str) -> bool:
    if not username:
        return False
    wanted = f"@{username}".lower()
    for entity in message.get("entities") or message.get("caption_entities") or []:
        entity = _dict(entity)
        if entity.get("type") == "mention" and _utf16_slice(text, entity.get("offset"), entity.get("length")).lower() \
                == wanted:
            return True
    return re.search(rf"(?<![\w@]){re.escape(wanted)}(?!\w)", text.lower()) is not None


def _replies_to_bot(message: Dict[str, Any], username: str, bot_id: Optional[int]) -> bool:
    author = _dict(_dict(message.get("reply_to_message")).get("from"))
    if not author.get("is_bot"):
        return False
    return (bot_id is not None and author.get("id") == bot_id) or \
        (bool(username) and _str(author.get("username")).lower() == username.lower())


def strip_mention(text: str, username: str) -> str:
    """'@ClinicBot how long is the redness?' -> 'how long is the redness?'."""
    if not username:
        return text.strip()
    return re.sub(rf"\s*(?<![\w@])@{re.escape(username)}(?!\w)[,:]?\s*", " ", text, flags=re.IGNORECASE).strip()


def is_our_payload(data: str) -> bool:
    return bool(_PAYLOAD.match(data)) or data in BUTTON_PAYLOADS


def _read_callback(query: Dict[str, Any]) -> Optional[Incoming]:
    callback_id = _str(query.get("id"))
    if not callback_id:
        return None
    message = _dict(query.get("message"))  # absent for inline-mode messages; then we can only stop the spinner
    chat = _dict(message.get("chat"))
    return Incoming("callback", _int(chat.get("id")), _str(chat.get("type")), text=_str(query.get("data")),
                    message_id=_int(message.get("message_id")), callback_id=callback_id,
                    user_id=_int(_dict(query.get("from")).get("id")))


def _read_message(message: Dict[str, Any], username: str, bot_id: Optional[int]) -> Optional[Incoming]:
    chat = _dict(message.get("chat"))
    chat_id, chat_type = _int(chat.get("id")), _str(chat.get("type"))
    if chat_id is None or (chat_type != PRIVATE and chat_type not in GROUPS):
        return None
    if _dict(message.get("from")).get("is_bot"):  # other bots (and ourselves): never start a bot-to-bot loop
        return None
    text = _str(message.get("text"))
    caption = _str(message.get("caption"))
    message_id = _int(message.get("message_id"))
    user_id = _int(_dict(message.get("from")).get("id"))
    command = _COMMAND.match(text)
    if command:
        target = command.group(2)
        if target and (not username or target.lower() != username.lower()) and chat_type in GROUPS:
            return None  # /help@OtherBot in a group
        return Incoming("command", chat_id, chat_type, text=command.group(1).lower(), message_id=message_id,
                        user_id=user_id, argument=text[command.end():].strip()[:64])
    if chat_type in GROUPS:
        addressed = _mentions(message, text or caption, username) or _replies_to_bot(message, username, bot_id)
        if not addressed:
            return None
        text, caption = strip_mention(text, username), strip_mention(caption, username)
    if text.strip():
        return Incoming("text", chat_id, chat_type, text=text, message_id=message_id, user_id=user_id)
    phone = _str(_dict(message.get("contact")).get("phone_number")).strip()
    if phone and chat_type == PRIVATE:
        return Incoming("text", chat_id, chat_type, text=phone, message_id=message_id, user_id=user_id)
    if any(key in message for key in USER_CONTENT):
        return Incoming("media", chat_id, chat_type, text=caption, message_id=message_id, user_id=user_id)
    if "text" in message:  # "@ClinicBot" alone, or only spaces: the channel asks for a question
        return Incoming("text", chat_id, chat_type, text="", message_id=message_id, user_id=user_id)
    return None  # service messages: members joining, pinned messages, ...


def read_update(update: Any, username: str = "", bot_id: Optional[int] = None) -> Optional[Incoming]:
    """What to answer for one update, or None for silence. Never raises on any JSON value."""
    update = _dict(update)
    if "message" in update:
        return _read_message(_dict(update["message"]), username, bot_id)
    if "callback_query" in update:
        return _read_callback(_dict(update["callback_query"]))
    if "edited_message" in update:  # read for warning signs only (the channel decides)
        edited = _read_message(_dict(update["edited_message"]), username, bot_id)
        if edited is not None and edited.kind in ("text", "media") and edited.text.strip():
            return Incoming("edited", edited.chat_id, edited.chat_type, text=edited.text,
                            message_id=edited.message_id, user_id=edited.user_id)
        return None
    return None  # channel_post, my_chat_member, chat_member, poll, ... : see the module doc
