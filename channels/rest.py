"""Rasa's REST channel, hardened for the open internet; the website widget talks to it too.

The stock channel trusts the client: it answers a broken body with a 500,
accepts any size, lets the client choose which conversation it writes to, and
reads a typed "/restart" as a command. This one checks everything first (a 4xx
with a reason for anything malformed) and keeps the stock URL and reply format:

    POST /webhooks/rest/webhook   {"sender": ..., "message": ..., "metadata": {...}}
                                  -> [{"recipient_id": ..., "text": ..., "buttons": [...]}, ...]

- Conversations belong to whoever holds their id (clinic/conversation_ids.py):
  without an API key, "sender" must be an id this server issued; anything else
  starts a new conversation, whose id comes back as every reply's recipient_id.
  An integration with a key (REST_API_KEYS, `Authorization: Bearer <key>`)
  chooses its own sender ids, kept apart from every other channel's.
- Rate limits per conversation and per client address: a polite 429.
- Typed "/intent{...}" only for a button the assistant offered (clinic/inbound.py).
- "Delete my conversation", confirmed by its button, deletes it (docs/security.md).
Details for integrators: docs/security.md.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.lock_store import LockError
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from clinic.channel_texts import fact_text, fallback, is_blank
from clinic.conversation_ids import ConversationIds, api_sender, load_secret
from clinic.inbound import clean_metadata, readable_text, typed_commands
from clinic.private_logs import redact_credentials
from clinic.rate_limit import RateLimiter
from clinic.settings import Network, Settings
from clinic.settings import current as current_settings
from ops.alerts import alerts
from rasa_extensions.conversations import (
    asks_to_forget,
    forget,
    is_ready,
    offered_payloads,
    record_feedback,
    storage_problem,
)
from rasa_extensions.tracker_store import StorageError, storage_reason
from rasa_extensions.turns import EXPLICIT_ID_ATTRIBUTE

logger = logging.getLogger(__name__)

MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")  # \Z, not $: "$" lets a final "\n" through
STORE_RETRY_AFTER_S = 5
NO_STORE = {"Cache-Control": "no-store"}  # replies hold health information: no cache may keep them
MIN_BODY_BYTES = 16 * 1024
# Sent again with the same message_id (the widget does, after Retry-After), the stored reply asks again to delete.
FORGET_FAILED = "Your conversation could not be deleted just now. It will be tried again in a moment."


def max_message_chars() -> int:
    """MAX_MESSAGE_CHARS lets a clinic change the limit; the widget and Telegram read the same value."""
    return current_settings().max_message_chars


def error(status: int, message: str, headers: Optional[Dict[str, str]] = None, **extra: Any) -> HTTPResponse:
    return response.json({"error": message, **extra}, status=status, headers={**NO_STORE, **(headers or {})})


def body_limit(max_chars: int) -> int:
    """Bytes a valid request can need: every character escaped as \\uXXXX, plus room for the rest."""
    return max(MIN_BODY_BYTES, 6 * max_chars + 4096)


def parse_request(body: bytes, limit: int, content_type: str = "application/json"
                  ) -> Tuple[Dict[str, Any] | None, HTTPResponse | None]:
    """The validated {sender (as sent), message, metadata}, or the 4xx response to send instead."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        # A cross-site page can post text/plain without asking first; JSON needs a CORS preflight.
        return None, error(415, "Send the body as JSON, with the header Content-Type: application/json.")
    if len(body) > body_limit(limit):
        return None, error(413, f"The message is too long: please keep it under {limit} characters.",
                           max_chars=limit)
    try:
        data = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, error(400, "The body must be JSON such as {\"sender\": \"abc\", \"message\": \"hello\"}.")
    if not isinstance(data, dict):
        return None, error(400, "The body must be a JSON object.")
    message = data.get("message")
    if not isinstance(message, str):
        return None, error(400, "'message' is required and must be text.")
    if len(message) > limit:
        return None, error(413, f"The message is too long: please keep it under {limit} characters.",
                           max_chars=limit)
    cleaned = readable_text(message)
    if cleaned is None:
        return None, error(400, "The message holds characters that cannot be read; please type it again.")
    metadata, problem = clean_metadata(data.get("metadata"))
    if problem:
        return None, error(400, problem)
    message_id = data.get("message_id")
    if message_id is not None and (not isinstance(message_id, str) or not MESSAGE_ID.fullmatch(message_id)):
        return None, error(400, "'message_id' must be 8 to 64 letters, digits, - or _ (a UUID fits).")
    return {"sender": data.get("sender"), "message": cleaned, "metadata": metadata, "message_id": message_id}, None


def parse_feedback(body: bytes, content_type: str = "application/json"
                   ) -> Tuple[Dict[str, Any] | None, HTTPResponse | None]:
    """The validated {sender (as sent), value, message_id or None} of a thumbs, or the 4xx to send instead.

    The message_id is checked as the webhook checks it: a malformed one is a 400, never "no answer".
    """
    if content_type.split(";")[0].strip().lower() != "application/json":
        return None, error(415, "Send the body as JSON, with the header Content-Type: application/json.")
    try:
        data = json.loads(body[:MIN_BODY_BYTES] or b"")
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("value") not in ("up", "down"):
        return None, error(400, 'Send {"sender": "<conversation id>", "value": "up" or "down"}.')
    message_id = data.get("message_id")
    if message_id is not None and (not isinstance(message_id, str) or not MESSAGE_ID.fullmatch(message_id)):
        return None, error(400, "'message_id' must be 8 to 64 letters, digits, - or _: the id the rated "
                                "answer's question was sent with.")
    return {"sender": data.get("sender"), "value": data["value"], "message_id": message_id}, None


def _trusted(address: str, proxies: Tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: List[str], proxies: Tuple[Network, ...]) -> str:
    """The address a rate limit counts: the peer, or behind trusted proxies the client they name.

    Behind an HTTPS proxy every request comes from the proxy, so one flood would lock every patient
    out. A trusted proxy appends the address it saw to X-Forwarded-For; read from the right, the
    first address that is not a trusted proxy is the client. Anything left of it was written by the
    client and may be forged, and from a peer that is not a trusted proxy the header is ignored
    whole: anyone can send it.
    """
    if not proxies or not _trusted(peer, proxies):
        return peer or "unknown"
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:  # not what a proxy writes: count it against the proxy, never a free bucket
                return peer
    return peer


class ClinicRestInput(InputChannel):
    """POST /webhooks/rest/webhook {"sender": ..., "message": ...} -> list of bot messages."""

    def __init__(self, settings: Optional[Settings] = None) -> None:
        self._settings = settings
        self._ids: Optional[ConversationIds] = None
        self._per_sender: Optional[RateLimiter] = None
        self._per_address: Optional[RateLimiter] = None

    @classmethod
    def name(cls) -> str:
        return "rest"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = current_settings()
        return self._settings

    def _prepare(self) -> None:
        """At start-up, not import: the signing key may be a file to create."""
        if self._ids is None:
            self._ids = ConversationIds(load_secret(self.settings))
            self._per_sender = RateLimiter(self.settings.rate_limit_per_sender)
            self._per_address = RateLimiter(self.settings.rate_limit_per_address)

    def integration(self, request: Request) -> Tuple[Optional[str], bool]:
        """(the integration's name, True) for a valid API key; (None, True) for none; (None, False) for a wrong one."""
        header = request.headers.get("authorization") or ""
        if not header:
            return None, True
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer":
            return None, False
        found = None
        for name, expected in self.settings.rest_api_keys:
            if hmac.compare_digest(key.strip().encode(), expected.encode()):
                found = name
        return found, found is not None

    def conversation(self, integration: Optional[str], sender: Any, start_new: bool,
                     message_id: Optional[str] = None) -> Tuple[Optional[str], Any]:
        """(the stored conversation id, the id the client sends next time), or (None, sender) when refused.

        An integration chooses its senders, inside its own namespace. Anyone else must present an id
        this server issued; otherwise `start_new` gives a new conversation (never someone else's).
        """
        assert self._ids is not None
        if integration is not None:
            return api_sender(integration, sender), sender
        stored = self._ids.verify(sender)
        if stored is None and start_new:
            sender = self._ids.issue(seed=message_id)
            stored = self._ids.verify(sender)
        return stored, sender

    def address(self, request: Request) -> str:
        """The client's address for the per-address limit (TRUSTED_PROXIES: docs/security.md)."""
        return client_address(request.ip or "", request.headers.getall("x-forwarded-for", []),
                              self.settings.trusted_proxies)

    def too_many(self, limiter: Optional[RateLimiter], key: str) -> Optional[HTTPResponse]:
        wait = limiter.retry_after(key) if limiter is not None else None
        if wait is None:
            return None
        return error(429, fact_text("too_many_messages"), headers={"Retry-After": str(wait)}, retry_after=wait)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("clinic_rest_webhook", __name__)
        self._prepare()

        @webhook.listener("after_server_start")
        async def start_alerts(app: Any, loop: Any) -> None:
            """Staff alerts are sent from the Rasa server's loop (ops/alerts.py); the REST channel is always on."""
            try:
                alerts(self.settings).start()
            except Exception:  # alerts must never stop the assistant from starting
                logger.exception("Staff alerts could not start")

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            """For load balancers: ok only when a real write to the conversation store succeeds."""
            problem = await storage_problem(request.app)
            if problem is not None:  # public: it may name the store (path, host), never its login
                return response.json({"status": "unavailable", "problem": redact_credentials(problem)}, status=503,
                                     headers=NO_STORE)
            return response.json({"status": "ok"}, headers=NO_STORE)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            integration, authorised = self.integration(request)
            if not authorised:
                return error(401, "Unknown API key: check REST_API_KEYS, or send no Authorization header.")
            if integration is None:
                refused = self.too_many(self._per_address, self.address(request))
                if refused is not None:
                    return refused
            parsed, problem = parse_request(request.body, max_message_chars(), request.content_type or "")
            if problem is not None:
                return problem
            assert parsed is not None  # parse_request returns exactly one of the two
            sender_id, client_id = self.conversation(integration, parsed["sender"], start_new=True,
                                                     message_id=parsed["message_id"])
            if sender_id is None:
                return error(400, "'sender' is required: 1 to 128 letters, digits, or . _ @ + -")
            refused = self.too_many(self._per_sender, sender_id)
            if refused is not None:
                return refused
            text = parsed["message"]
            if not is_ready(request.app):  # no model loaded: nothing would be stored or answered
                logger.error("No model is loaded: conversation %s answered 503", sender_id)
                return self.unavailable(client_id, text)
            if text.lstrip().startswith("/"):
                text = typed_commands(text, await offered_payloads(request.app, sender_id))
            if is_blank(text):
                return self.reply(client_id, [{"text": fact_text("empty_message")}])
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender_id, input_channel=self.name(),
                                  metadata=parsed["metadata"], message_id=parsed["message_id"])
            setattr(message, EXPLICIT_ID_ATTRIBUTE, parsed["message_id"] is not None)
            try:
                await on_new_message(message)
            except (StorageError, LockError) as exc:  # not stored: say so, and let the client send it again
                logger.error("Conversation %s could not be stored (%s): answered 503", sender_id,
                             storage_reason(exc))
                return self.unavailable(client_id, text)
            except Exception:  # the dialogue failed; the patient still gets an answer
                logger.exception("Could not handle a REST message in conversation %s", sender_id)
            messages = [m for m in collector.messages if not asks_to_forget(m)]
            if len(messages) < len(collector.messages):
                refused = self.delete_conversation(request, sender_id, client_id)
                if refused is not None:
                    return refused
                messages.append({"custom": {"conversation_deleted": True}})
            if not messages:
                messages = fallback(text)
            return self.reply(client_id, messages)

        @webhook.route("/feedback", methods=["POST"])
        async def feedback(request: Request) -> HTTPResponse:
            """A thumbs up or down: {"sender": <conversation id>, "value": "up"|"down", "message_id": optional}.

            "message_id" names the patient's message whose answer is rated (the widget keeps thumbs under
            every answer until rated, so an older one can be rated after a newer one came); without it the
            latest answer is rated, as before.
            """
            integration, authorised = self.integration(request)
            if not authorised:
                return error(401, "Unknown API key: check REST_API_KEYS, or send no Authorization header.")
            data, problem = parse_feedback(request.body, request.content_type or "")
            if problem is not None:
                return problem
            assert data is not None  # parse_feedback returns exactly one of the two
            answer_of = data["message_id"]
            sender_id, _ = self.conversation(integration, data.get("sender"), start_new=False)
            if sender_id is None:
                return error(404, "No such conversation.")
            refused = self.too_many(self._per_sender, sender_id)
            if refused is not None:
                return refused
            try:
                recorded = await record_feedback(request.app, sender_id, data["value"], answer_of=answer_of)
            except (StorageError, LockError) as exc:
                logger.error("Feedback on conversation %s could not be stored (%s): answered 503", sender_id,
                             storage_reason(exc))
                return error(503, "Your feedback could not be saved just now; please try again.",
                             headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
            if not recorded and answer_of is not None:
                return error(404, "That message has no answer to give feedback on in this conversation.")
            if not recorded:
                return error(404, "There is no answer to give feedback on yet.")
            return response.empty(status=204, headers=NO_STORE)

        return webhook

    def delete_conversation(self, request: Request, sender_id: str, client_id: str) -> Optional[HTTPResponse]:
        """Deletes the conversation the patient confirmed; None when done, else the 503 to send.

        Never a "Done: deleted" over a store that refused: nothing was deleted, so the patient is
        told and the client sends the same message again after Retry-After (same message_id: the
        stored reply asks again to delete; rasa_extensions/turns.py).
        """
        if forget(request.app, self.settings, sender_id, self.name()) is not None:
            return None
        logger.error("Conversation %s could not be deleted: answered 503", sender_id)  # forget() logged why
        return error(503, FORGET_FAILED, headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
                     retry_after=STORE_RETRY_AFTER_S, recipient_id=client_id)

    @staticmethod
    def unavailable(client_id: str, text: str) -> HTTPResponse:
        """503: the message was not stored. The body still carries what the patient must know now."""
        messages = fallback(text)
        urgent = any((m.get("custom") or {}).get("urgent") for m in messages)
        return response.json({"error": "Your message could not be saved just now. It will be sent again in a moment.",
                              "urgent": urgent, "text": messages[0]["text"], "recipient_id": client_id,
                              "retry_after": STORE_RETRY_AFTER_S,  # the header is hidden from other sites (CORS)
                              **({"custom": messages[0]["custom"]} if "custom" in messages[0] else {})},
                             status=503, headers={**NO_STORE, "Retry-After": str(STORE_RETRY_AFTER_S)})

    @staticmethod
    def reply(client_id: str, messages: List[Dict[str, Any]]) -> HTTPResponse:
        """The stock reply format, addressed with the id the client must send next time.

        Data sent on its own (the urgent answer's phones) joins the text it belongs to, so a
        client sees one message with its text and its call buttons.
        """
        merged: List[Dict[str, Any]] = []
        for message in messages:
            if merged and "custom" in message and not message.get("text") and "custom" not in merged[-1]:
                merged[-1] = {**merged[-1], "custom": message["custom"]}
            else:
                merged.append(dict(message))
        return response.json([{**m, "recipient_id": client_id} for m in merged], headers=NO_STORE)
