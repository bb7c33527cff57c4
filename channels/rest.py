"""Rasa's REST channel, hardened for the open internet.

The stock channel answers a JSON array body or a failing dialogue with a 500
and accepts any size of message. This one validates first and answers bad
input with a clear 4xx, so nothing malformed reaches the dialogue. It keeps the
stock URL (/webhooks/rest/webhook) and reply format.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Dict, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.channel_texts import apology_text, fact_text, is_blank
from clinic.settings import current as current_settings

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128


def max_message_chars() -> int:
    """MAX_MESSAGE_CHARS lets a clinic change the limit; the widget and Telegram read the same value."""
    return current_settings().max_message_chars


def error(status: int, message: str, **extra: Any) -> HTTPResponse:
    return response.json({"error": message, **extra}, status=status)


def parse_request(body: bytes, limit: int) -> Tuple[Dict[str, Any] | None, HTTPResponse | None]:
    """The validated {sender, message, metadata}, or the 4xx response to send instead."""
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "The body must be JSON such as {\"sender\": \"abc\", \"message\": \"hello\"}.")
    if not isinstance(data, dict):
        return None, error(400, "The body must be a JSON object.")
    sender = data.get("sender")
    if isinstance(sender, int) and not isinstance(sender, bool):
        sender = str(sender)
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return None, error(400, f"'sender' is required: text of 1 to {MAX_SENDER_CHARS} characters.")
    message = data.get("message")
    if not isinstance(message, str):
        return None, error(400, "'message' is required and must be text.")
    if len(message) > limit:
        return None, error(413, f"The message is too long: please keep it under {limit} characters.",
                           max_chars=limit)
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return None, error(400, "'metadata' must be a JSON object.")
    return {"sender": sender.strip(), "message": message, "metadata": metadata}, None


class ClinicRestInput(InputChannel):
    """POST /webhooks/rest/webhook {"sender": ..., "message": ...} -> list of bot messages."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("clinic_rest_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            parsed, problem = parse_request(request.body, max_message_chars())
            if problem is not None:
                return problem
            if is_blank(parsed["message"]):
                return response.json([{"recipient_id": parsed["sender"], "text": fact_text("empty_message")}])
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(
                    parsed["message"], collector, parsed["sender"],
                    input_channel=self.name(), metadata=parsed["metadata"],
                ))
            except Exception:  # the dialogue failed; the patient still gets an answer
                logger.exception("Could not handle a REST message from %s", parsed["sender"])
            if not collector.messages:
                return response.json([{"recipient_id": parsed["sender"], "text": apology_text()}])
            return response.json(collector.messages)

        return webhook
