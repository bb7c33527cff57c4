"""Telegram settings from the environment, and registering the webhook at start-up.

A clinic turns Telegram on with environment variables only (credentials.yml
just lists the channel, and secrets never live in files):
  TELEGRAM_TOKEN         the token from @BotFather; without it the channel is off
  TELEGRAM_WEBHOOK_URL   the public HTTPS address Telegram posts updates to
  TELEGRAM_SECRET_TOKEN  the shared secret Telegram sends in every webhook call
                         (optional: derived from the token when unset)
  TELEGRAM_BOT_USERNAME  how people @mention the bot in groups (optional: read
                         from getMe at start-up when unset)
  TELEGRAM_API_BASE      https://api.telegram.org, or a local fake in tests

Registration runs when the server starts rather than as a separate command:
the clinic cannot forget it, the webhook always carries the secret this
server checks, and a changed URL takes effect on the next restart. It runs in
the background and only logs failures, so a Telegram outage never stops the
website channel from starting.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

from channels.telegram.api import DEFAULT_API_BASE, BotApi, TelegramApiError
from clinic.settings import Settings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram/webhook"
# Only what we answer: channel posts, membership changes and the like are never even sent to us.
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")  # edits: only for warning signs
COMMANDS = ({"command": "start", "description": "What I can help with"},
            {"command": "help", "description": "How to ask, and how to reach a person"})
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def derived_secret(token: str) -> str:
    """A webhook secret nobody can guess without the token, the same on every instance of the server."""
    return hmac.new(token.encode(), b"clinic-telegram-webhook-secret", hashlib.sha256).hexdigest()


def webhook_url(raw: str) -> str:
    """Accepts the full URL or just the public origin (https://chat.example.com)."""
    raw = raw.strip()
    if raw and urlsplit(raw).path in ("", "/"):
        return raw.rstrip("/") + WEBHOOK_PATH
    return raw


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    secret: str
    webhook_url: str = ""
    bot_username: str = ""
    api_base: str = DEFAULT_API_BASE

    @property
    def bot_id(self) -> Optional[int]:
        """The bot's user id is the token's first part (123456:ABC...), useful before getMe answers."""
        head = self.token.split(":", 1)[0]
        return int(head) if head.isdigit() else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Optional[TelegramConfig]:
        """The channel's configuration, or None when Telegram is off (no token) or misconfigured (logged)."""
        token = settings.telegram_token
        if not token:
            return None
        secret = settings.telegram_secret_token or derived_secret(token)
        if not _SECRET_RE.fullmatch(secret):
            logger.error("Telegram channel OFF: TELEGRAM_SECRET_TOKEN may only hold A-Z, a-z, 0-9, _ and - "
                         "(1 to 256 characters), as Telegram requires.")
            return None
        url = webhook_url(settings.telegram_webhook_url)
        if url and not url.startswith("https://"):
            logger.warning("TELEGRAM_WEBHOOK_URL should start with https://: Telegram only posts to HTTPS addresses.")
        return cls(token=token, secret=secret, webhook_url=url, bot_username=settings.telegram_bot_username,
                   api_base=settings.telegram_api_base)


async def register_webhook(api: BotApi, config: TelegramConfig) -> Optional[Dict[str, Any]]:
    """Checks the token (getMe) and points Telegram at our webhook; returns the bot's getMe record.

    Every outcome gets one clear log line; nothing raises, so start-up never fails because of Telegram.
    """
    try:
        me = await api.call("getMe")
    except TelegramApiError as exc:
        if exc.unauthorized:
            logger.error("Telegram rejected TELEGRAM_TOKEN (401 Unauthorized): check the token @BotFather gave "
                         "you. The webhook was not registered, so the bot will not answer on Telegram.")
        else:
            logger.error("Telegram getMe failed (%s %s); the webhook was not registered. It is retried at the "
                         "next start.", exc.status, exc.description)
        return None
    me = me if isinstance(me, dict) else {}
    username = str(me.get("username") or "")
    if config.bot_username and username and config.bot_username.lower() != username.lower():
        logger.warning("TELEGRAM_BOT_USERNAME is @%s but the token belongs to @%s; using @%s.",
                       config.bot_username, username, username)
    if not config.webhook_url:
        logger.warning("Telegram bot @%s ready, but TELEGRAM_WEBHOOK_URL is not set: the webhook was not "
                       "registered, so Telegram will not deliver messages here (see docs/telegram.md).", username)
        return me
    try:
        await api.call("setWebhook", {
            "url": config.webhook_url,
            "secret_token": config.secret,
            "allowed_updates": list(ALLOWED_UPDATES),
            # Questions patients sent while the server restarted still deserve an answer.
            "drop_pending_updates": False,
        })
    except TelegramApiError as exc:
        if exc.unauthorized:
            logger.error("Telegram rejected TELEGRAM_TOKEN (401 Unauthorized) when setting the webhook: check "
                         "the token @BotFather gave you.")
        else:
            logger.error("Telegram setWebhook to %s failed: %s %s", config.webhook_url, exc.status, exc.description)
        return me
    logger.info("Telegram webhook registered: bot @%s receives updates at %s", username, config.webhook_url)
    try:  # the menu Telegram shows next to the input
        await api.call("setMyCommands", {"commands": list(COMMANDS)})
    except TelegramApiError as exc:
        logger.warning("Telegram setMyCommands failed (%s %s); the command menu stays as it was", exc.status,
                       exc.description)
    return me
