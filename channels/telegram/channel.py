"""The Telegram channel: a webhook Telegram posts updates to, and replies sent with the Bot API.

Listed in credentials.yml as `channels.telegram.TelegramChannel: {}` and
configured by environment variables (channels/telegram/setup.py); without
TELEGRAM_TOKEN it is off: the webhook answers 404 and nothing is called.

The webhook answers Telegram at once (200 after checking the secret and the
JSON) and handles the update in the background. Telegram waits for that answer
before it sends the chat's next update, and re-sends an update it got no
answer to: answering only after the dialogue and a possibly rate-limited
sendMessage (a 429 can ask us to wait 30 s) would risk duplicate answers and a
stalled bot. Updates of one chat are still handled one at a time, in the order
they came, and update ids already seen are skipped. The price: an update being
handled when the server is killed is lost (a normal stop waits for them).

Every chat is its own conversation, with sender id "telegram:<chat id>" in the
same tracker store as the website. When the dialogue produces nothing (action
server down), the patient gets the 'action_error' apology, as over REST.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel, UserMessage
from rasa.core.lock_store import LockError
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.rest import max_message_chars
from channels.telegram.api import BotApi, TelegramApiError
from channels.telegram.format import send_message_params, with_reply_keyboards
from channels.telegram.outbox import REFUSED, Outbox
from channels.telegram.setup import TelegramConfig, register_webhook
from channels.telegram.updates import Incoming, is_our_payload, read_update
from clinic.channel_texts import fact_message, fact_text, fallback
from clinic.fact_store import default_store
from clinic.inbound import readable_text
from clinic.rate_limit import RateLimiter
from clinic.settings import current as current_settings
from clinic.urgent import is_urgent_text
from rasa_extensions.conversations import asks_to_forget, forget, is_ready, latest_answer, record_feedback
from rasa_extensions.tracker_store import StorageError
from rasa_extensions.turns import EXPLICIT_ID_ATTRIBUTE

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SENDER_PREFIX = "telegram:"
START_PAYLOAD = "/greet"  # /start is a greeting: the dialogue answers it with the welcome (and remembers it)
MAX_PENDING_UPDATES = 500  # beyond this, answer 503 and let Telegram deliver again later
REMEMBERED_UPDATE_IDS = 2048
STOP_GRACE_S = 10.0
# A message that could not be stored is tried again in the background, in order with its chat's
# others; meanwhile new updates get a 503, so Telegram keeps them and delivers them later.
STORE_RETRY_DELAYS_S = (2.0, 4.0, 8.0, 16.0, 30.0, 30.0)
STORE_DOWN_HOLD_S = 15.0


def sender_id(chat_id: int) -> str:
    return f"{SENDER_PREFIX}{chat_id}"


FEEDBACK = {"feedback:up": "up", "feedback:down": "down"}  # callback data of the thumbs under an answer


def with_feedback_buttons(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The thumbs up / down under the answer (its last message), stored by record_feedback when pressed."""
    *rest, last = messages
    thumbs = [{"title": fact_text("feedback_up"), "payload": "feedback:up"},
              {"title": fact_text("feedback_down"), "payload": "feedback:down"}]
    return [*rest, {**last, "buttons": [*(last.get("buttons") or []), *thumbs]}]


def conversation_of(incoming: Incoming) -> str:
    """A private chat is one conversation; in a group, each member has their own (telegram:<chat>:<member>).

    So one member's topic, history and deletion never touch another's.
    """
    assert incoming.chat_id is not None
    if incoming.in_group and incoming.user_id is not None:
        return f"{SENDER_PREFIX}{incoming.chat_id}:{incoming.user_id}"
    return sender_id(incoming.chat_id)


def chat_id_of(recipient_id: str) -> int | str:
    """'telegram:123' or 'telegram:-100:42' (our sender ids) or '123' -> the chat; Telegram also accepts '@name'."""
    raw = str(recipient_id)
    raw = raw[len(SENDER_PREFIX):] if raw.startswith(SENDER_PREFIX) else raw
    raw = raw.split(":", 1)[0]
    try:
        return int(raw)
    except ValueError:
        return raw


class TelegramOutput(OutputChannel):
    """Sends the assistant's messages to one Telegram chat: split to fit, buttons as an inline keyboard."""

    def __init__(self, api: BotApi, reply_to_message_id: Optional[int] = None,
                 outbox: Optional[Outbox] = None) -> None:
        self.api = api
        self.reply_to_message_id = reply_to_message_id  # in groups, answers quote the question they answer
        self.outbox = outbox  # kept until delivered (channels/telegram/outbox.py); None: sent directly

    @classmethod
    def name(cls) -> str:
        return "telegram"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self._send(recipient_id, text, None)

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: List[Dict[str, Any]],
                                     **kwargs: Any) -> None:
        await self._send(recipient_id, text, buttons)

    async def send_quick_replies(self, recipient_id: str, text: str, quick_replies: List[Dict[str, Any]],
                                 **kwargs: Any) -> None:
        await self._send(recipient_id, text, quick_replies)

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any) -> None:
        """Data for clients that can use it (the urgent answer's phones): its text already holds the numbers."""

    async def _send(self, recipient_id: str, text: str, buttons: Optional[List[Dict[str, Any]]]) -> None:
        await self._send_to(chat_id_of(recipient_id), text, buttons)

    async def deliver(self, chat_id: int | str, message: Dict[str, Any]) -> bool:
        """One bot message to one chat; False when Telegram refused it (blocked, chat gone, never started)."""
        if not message.get("text"):
            return True  # data only (the urgent answer's phones): its text already holds the numbers
        return await self._send_to(chat_id, message["text"], message.get("buttons") or message.get("quick_replies"),
                                   message.get("reply_keyboard"))

    async def _send_to(self, chat_id: int | str, text: str, buttons: Optional[List[Dict[str, Any]]],
                       keyboard: Optional[Dict[str, Any]] = None) -> bool:
        """False when Telegram refused the message for good; a message queued for a retry counts as sent."""
        params_list = send_message_params(chat_id, text or "", buttons, self.reply_to_message_id, keyboard)
        if self.outbox is not None:
            return await self.outbox.send(chat_id, params_list) != REFUSED
        for params in params_list:
            try:
                await self.api.call("sendMessage", params)
            except TelegramApiError as exc:
                # 403: the patient blocked the bot; 400: chat gone. The rest of this reply would fail the same way.
                logger.error("Could not send a message to Telegram chat %s: %s %s", chat_id, exc.status,
                             exc.description)
                return False
        return True


class ChatQueue:
    """Runs background work for each chat one at a time, in arrival order; chats run in parallel."""

    def __init__(self) -> None:
        self._last: Dict[Any, asyncio.Task] = {}
        self._tasks: Set[asyncio.Task] = set()  # strong references: asyncio keeps only weak ones

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def submit(self, key: Any, work: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._run(self._last.get(key), work))
        self._last[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: Any, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if self._last.get(key) is task:
            del self._last[key]

    @staticmethod
    async def _run(previous: Optional[asyncio.Task], work: Callable[[], Awaitable[None]]) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await work()
        except Exception:  # one bad update must never stop the chat's next ones
            logger.exception("Handling a Telegram update failed")

    async def drain(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


class RecentUpdates:
    """The last few thousand update ids, to skip an update Telegram delivers twice."""

    def __init__(self, size: int = REMEMBERED_UPDATE_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def seen_before(self, update_id: int) -> bool:
        if update_id in self._ids:
            return True
        self._ids[update_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return False


def _problem(status: int, message: str) -> HTTPResponse:
    return response.json({"ok": False, "error": message}, status=status)


class TelegramChannel(InputChannel):
    """POST /webhooks/telegram/webhook <- Telegram updates; replies go out through the Bot API."""

    def __init__(self, config: Optional[TelegramConfig] = None) -> None:
        self.config = config
        self.api = BotApi(config.token, config.api_base) if config else None
        self.username = config.bot_username if config else ""
        self.bot_id = config.bot_id if config else None
        self.queue = ChatQueue()
        self.recent = RecentUpdates()
        self._background: Set[asyncio.Task] = set()
        self.settings = current_settings()
        self.per_chat = RateLimiter(self.settings.rate_limit_per_sender)
        self.app: Any = None  # the Rasa server's Sanic app, for its conversation store
        self.store_down_until = 0.0  # while storing fails, new updates are left with Telegram (503)
        self.outbox: Optional[Outbox] = None

    @classmethod
    def name(cls) -> str:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> TelegramChannel:
        config = TelegramConfig.from_settings(current_settings())
        if config is None:
            logger.info("Telegram channel off (set TELEGRAM_TOKEN to turn it on; see docs/telegram.md)")
        else:
            logger.info("Telegram channel on; API %s", config.api_base)
        return cls(config)

    def get_output_channel(self) -> Optional[OutputChannel]:
        return TelegramOutput(self.api, outbox=self.outbox) if self.api else None

    def check_secret(self, header: Optional[str]) -> Optional[HTTPResponse]:
        """401 without the secret header, 403 with a wrong one; compared in constant time."""
        assert self.config is not None
        if not header:
            return _problem(401, f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(header.encode("utf-8", "replace"), self.config.secret.encode()):
            return _problem(403, f"wrong {SECRET_HEADER}")
        return None

    async def _register(self) -> None:
        assert self.api is not None and self.config is not None
        me = await register_webhook(self.api, self.config)
        if me and me.get("username"):
            self.username = str(me["username"])
        if me and isinstance(me.get("id"), int):
            self.bot_id = me["id"]

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("clinic_telegram_webhook", __name__)

        @webhook.listener("after_server_start")
        async def start(app: Any, loop: Any) -> None:
            self.app = app
            if self.api is not None:
                try:
                    self.outbox = Outbox(self.settings.conversations_url, self.api)
                    self.outbox.start()
                except Exception:  # replies still go out, directly, without surviving an outage
                    logger.exception("The Telegram outbox cannot use the conversation store; sending directly")
            if self.api is not None:  # in the background: start-up never waits for Telegram
                self.in_background(self._register())

        @webhook.listener("before_server_stop")
        async def stop(app: Any, loop: Any) -> None:
            await self.queue.drain(STOP_GRACE_S)
            if self.outbox is not None:
                await self.outbox.stop()
            if self.api is not None:
                await self.api.close()

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok", "enabled": self.config is not None})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self.config is None:
                return _problem(404, "the Telegram channel is off")
            problem = self.check_secret(request.headers.get(SECRET_HEADER))
            if problem is not None:
                logger.warning("Telegram webhook call refused (%s) from %s", problem.status, request.ip)
                return problem
            try:
                update = json.loads(request.body or b"")
            except (ValueError, UnicodeDecodeError, RecursionError):
                return _problem(400, "the body must be a JSON Telegram update")
            if not isinstance(update, dict):
                return _problem(400, "the body must be a JSON object")
            if self.queue.pending >= MAX_PENDING_UPDATES:
                return _problem(503, "busy; Telegram delivers the update again later")
            if not is_ready(request.app):  # no model loaded: Telegram keeps the update and delivers it later
                return _problem(503, "the assistant is not ready; Telegram delivers the update later")
            if time.monotonic() < self.store_down_until:  # Telegram keeps the update and delivers it again
                return _problem(503, "conversations cannot be stored just now; Telegram delivers the update later")
            update_id = update.get("update_id")
            if isinstance(update_id, int) and self.recent.seen_before(update_id):
                return response.json({"ok": True})
            if isinstance(update_id, int) and 0 <= update_id < 2 ** 53 and self.outbox is not None:
                try:
                    if not await self.outbox.first_time(update_id):  # taken before a restart, or by another instance
                        return response.json({"ok": True})
                except Exception:  # the database is down: 503, so Telegram keeps the update for later
                    logger.error("Telegram update %s: the update log cannot be written; answered 503", update_id)
                    return _problem(503, "conversations cannot be stored just now; Telegram delivers the update later")
            try:
                incoming = read_update(update, self.username, self.bot_id)
                if incoming is not None and isinstance(update_id, int):
                    incoming = dataclasses.replace(incoming, update_id=update_id)
            except Exception:  # never a 500: Telegram would re-send the same update again and again
                logger.exception("Unreadable Telegram update %s", update_id)
                incoming = None
            if incoming is not None:
                key = incoming.chat_id if incoming.chat_id is not None else incoming.callback_id
                self.queue.submit(key, lambda: self.handle(incoming, on_new_message))
            return response.json({"ok": True})

        return webhook

    async def handle(self, incoming: Incoming, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Answers one update; runs in the background, after Telegram got its 200."""
        assert self.api is not None
        if incoming.kind == "callback" and incoming.text in FEEDBACK and incoming.chat_id is not None:
            recorded = await record_feedback(self.app, conversation_of(incoming), FEEDBACK[incoming.text])
            self.in_background(self._answer_callback(incoming.callback_id or "",
                                                     fact_text("feedback_thanks") if recorded else ""))
        elif incoming.kind == "callback":
            # First, so the button's spinner stops; in the background, so a slow Bot API never delays the answer.
            self.in_background(self._answer_callback(incoming.callback_id or ""))
            if incoming.chat_id is not None and is_our_payload(incoming.text):
                await self.ask(incoming, incoming.text, on_new_message)
            elif incoming.chat_id is not None:
                logger.warning("Ignored a button press with unknown data in chat %s", incoming.chat_id)
        elif incoming.kind == "edited":  # an edit is answered only when it adds a warning sign
            if is_urgent_text(default_store().current(), incoming.text):
                await self.send(incoming, fallback(incoming.text))
        elif incoming.kind == "command":
            if incoming.text == "start":  # a deep link's payload (t.me/bot?start=spring-ad) tells where they came from
                await self.ask(incoming, START_PAYLOAD, on_new_message, source=incoming.argument)
            else:  # /help, and any command we do not know
                await self.send(incoming, [fact_message("help")])
        elif incoming.kind == "media":
            await self.send(incoming, [fact_message("not_text")])
            if incoming.text.strip():  # a caption such as "is this infected?" may name a warning sign
                await self.ask(incoming, incoming.text, on_new_message)
        elif not incoming.text.strip():
            await self.send(incoming, [fact_message("empty_message")])
        else:
            await self.ask(incoming, incoming.text, on_new_message)

    async def ask(self, incoming: Incoming, text: str, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                  source: str = "") -> None:
        """Runs the dialogue for one message and sends what it said, or the apology when it said nothing."""
        assert incoming.chat_id is not None
        conversation = conversation_of(incoming)
        if self.per_chat.retry_after(conversation) is not None:
            await self.send(incoming, [{"text": fact_text("too_many_messages")}])
            return
        self.typing(incoming)
        limit = max_message_chars()
        text = readable_text(text) or ""
        if len(text) > limit:  # read only the start, but never miss a warning sign near the end
            if is_urgent_text(default_store().current(), text):
                await self.send(incoming, fallback(text))
            await self.send(incoming, [{"text": fact_text("message_too_long")}])
            text = text[:limit]
        metadata: Dict[str, Any] = {"telegram": {"chat_type": incoming.chat_type, "message_id": incoming.message_id}}
        if source:
            metadata["source"] = source
        told = False
        for attempt, delay in enumerate((*STORE_RETRY_DELAYS_S, None)):
            collector = CollectingOutputChannel()
            message = UserMessage(
                text, collector, conversation, input_channel=self.name(), metadata=metadata,
                message_id=f"telegram-{incoming.update_id}" if incoming.update_id is not None else None)
            setattr(message, EXPLICIT_ID_ATTRIBUTE, incoming.update_id is not None)
            try:
                await on_new_message(message)
                break
            except (StorageError, LockError) as exc:  # not stored: tell the patient once, then try again
                logger.error("Telegram chat %s: conversation not stored (%s), attempt %d", incoming.chat_id,
                             type(exc).__name__, attempt + 1)
                self.store_down_until = time.monotonic() + STORE_DOWN_HOLD_S
                if not told:
                    await self.send(incoming, fallback(text))
                    told = True
                if delay is None:
                    return
                await asyncio.sleep(delay)
            except Exception:  # the dialogue failed; the patient still gets an answer
                logger.exception("Could not handle a Telegram message from chat %s", incoming.chat_id)
                break
        if getattr(message, "duplicate", False):  # already answered (another instance, or a re-delivery)
            return
        messages = [m for m in collector.messages if not asks_to_forget(m)]
        if len(messages) < len(collector.messages):
            forget(self.app, self.settings, conversation, self.name())
        elif messages and not incoming.in_group and await latest_answer(self.app, conversation):
            messages = with_feedback_buttons(messages)
        await self.send(incoming, messages or fallback(text))

    async def send(self, incoming: Incoming, messages: List[Dict[str, Any]]) -> None:
        """Sends a reply; in a group, an urgent one goes to the member privately, never to everyone."""
        assert self.api is not None and incoming.chat_id is not None
        messages = with_reply_keyboards(messages)  # the callback form's "share my phone number"
        urgent = any((m.get("custom") or {}).get("urgent") for m in messages)
        if urgent and incoming.in_group and incoming.user_id is not None:
            if await self._deliver(incoming.user_id, None, messages):
                note = [{"text": fact_text("urgent_sent_privately")}]
                await self._deliver(incoming.chat_id, incoming.message_id, note)
            else:  # they never opened a private chat with the bot: the numbers, without the details
                await self._deliver(incoming.chat_id, incoming.message_id, [{"text": fact_text("urgent_in_group")}])
            return
        await self._deliver(incoming.chat_id, incoming.message_id if incoming.in_group else None, messages)

    async def _deliver(self, chat_id: int, reply_to: Optional[int], messages: List[Dict[str, Any]]) -> bool:
        """True when every message went out."""
        assert self.api is not None
        output = TelegramOutput(self.api, reply_to, self.outbox)
        for message in messages:
            message = {k: v for k, v in message.items() if k != "recipient_id" and v is not None}
            if not await output.deliver(chat_id, message):
                return False
        return True

    def in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _answer_callback(self, callback_id: str, text: str = "") -> None:
        assert self.api is not None
        try:
            await self.api.call("answerCallbackQuery", {"callback_query_id": callback_id, **({"text": text} if text
                                                                                          else {})})
        except TelegramApiError as exc:  # e.g. a press older than Telegram's 15-minute window
            logger.warning("answerCallbackQuery failed: %s %s", exc.status, exc.description)

    def typing(self, incoming: Incoming) -> None:
        """"typing…" in the chat while the answer is prepared; never waited for, never an error."""
        if self.api is not None and incoming.chat_id is not None:
            self.in_background(self._typing(incoming.chat_id))

    async def _typing(self, chat_id: int) -> None:
        assert self.api is not None
        try:
            await self.api.call("sendChatAction", {"chat_id": chat_id, "action": "typing"})
        except TelegramApiError:
            pass
