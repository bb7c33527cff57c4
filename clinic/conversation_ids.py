"""Conversation ids the server gives out, so a conversation belongs to whoever holds its id.

Rasa addresses a conversation by a sender id the client chooses. On the open
internet that lets anyone who learns or guesses an id (Telegram's are
`telegram:<chat id>`) read that patient's context and write into their record.
So the website and anonymous REST clients never choose: the server issues
`<random>.<signature>`, a client that presents anything else gets a new one,
and each channel keeps its own namespace in storage:

    web:<random>                 the widget and anonymous REST clients
    api:<integration>:<sender>   an integration holding a REST API key (REST_API_KEYS)
    telegram:<chat id>           Telegram (channels/telegram/)

The signing key is CONVERSATION_SECRET, or, on a single machine with nothing
set, a random key generated once into DATA_DIR (owner-only). Several instances
need the same CONVERSATION_SECRET.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path
from typing import Optional

from clinic.settings import Settings

SECRET_FILE = ".conversation-secret"
WEB_PREFIX = "web:"
API_PREFIX = "api:"
_TOKEN = re.compile(r"^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})\Z")
# What an integration may call its own patients: printable, no separators of other namespaces' shape.
API_SENDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}\Z")


MIN_SEED_BITS = 122  # a random UUIDv4's; our own ids hold 128
MIN_SEED_DISTINCT = 8  # 30 random hex digits show fewer than 8 different ones with p < C(16,7)(7/16)^30 < 1e-6
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-([0-9a-fA-F])[0-9a-fA-F]{3}-([0-9a-fA-F])[0-9a-fA-F]{3}-"
                   r"[0-9a-fA-F]{12}\Z")
_HEX = re.compile(r"^[0-9a-fA-F]+\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+\Z")


def strong_seed(seed: str) -> bool:
    """Whether a client's message_id looks drawn at random from at least MIN_SEED_BITS bits.

    A random UUIDv4 (what the widget sends: crypto.randomUUID) or a long random hex or base64url
    string passes; a counter, a UUID of another version (v1 holds a clock) or a repeated character
    does not. It cannot prove randomness, only refuse what is plainly not random.
    """
    uuid_form = _UUID.fullmatch(seed)
    if uuid_form is not None:
        return uuid_form.group(1) == "4" and uuid_form.group(2).lower() in "89ab" \
            and len(set(seed.replace("-", "").lower())) >= MIN_SEED_DISTINCT
    if _HEX.fullmatch(seed):
        bits = 4 * len(seed)
        seed = seed.lower()
    elif _B64URL.fullmatch(seed):
        bits = 6 * len(seed)
    else:
        return False
    return bits >= MIN_SEED_BITS and len(set(seed)) >= MIN_SEED_DISTINCT


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class ConversationIds:
    """Issues and checks signed conversation ids; pure, so every channel and test can use it."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the conversation secret must hold at least 16 bytes")
        self._secret = secret

    def _signature(self, key: str) -> str:
        return _b64(hmac.new(self._secret, key.encode(), hashlib.sha256).digest()[:16])

    def issue(self, seed: Optional[str] = None) -> str:
        """A new id for a client: unguessable and signed.

        With a `seed` (the client's random message_id of its first message) the same seed gives the
        same id, so a first message sent again after a lost reply lands in the same conversation,
        where its message_id is recognised, instead of starting a second one. The seed is chosen by
        the client, so it counts only when it is as unguessable as an id we would draw (`strong_seed`):
        two clients sending the same weak id ("00000001") would otherwise share a conversation.
        A weak seed costs only that property: its retry starts a second conversation.
        """
        raw = hmac.new(self._secret, b"seed:" + seed.encode(), hashlib.sha256).digest()[:16] \
            if seed is not None and strong_seed(seed) else secrets.token_bytes(16)
        key = _b64(raw)
        return f"{key}.{self._signature(key)}"

    def verify(self, token: object) -> Optional[str]:
        """The stored sender id for a token this server issued, else None (forged, altered, or not an id)."""
        if not isinstance(token, str):
            return None
        match = _TOKEN.fullmatch(token)
        if match is None or not hmac.compare_digest(match.group(2), self._signature(match.group(1))):
            return None
        return WEB_PREFIX + match.group(1)


def api_sender(integration: str, sender: object) -> Optional[str]:
    """The stored sender id of an integration's patient, or None when the sender id is not acceptable."""
    if isinstance(sender, int) and not isinstance(sender, bool):
        sender = str(sender)
    if not isinstance(sender, str) or not API_SENDER.fullmatch(sender):
        return None
    return f"{API_PREFIX}{integration}:{sender}"


def load_secret(settings: Settings) -> bytes:
    """CONVERSATION_SECRET, else the key generated once into DATA_DIR (created owner-only)."""
    if settings.conversation_secret:
        return settings.conversation_secret.encode()
    path: Path = settings.data_dir / SECRET_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()
