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
they came, and update ids already seen are skipped. Before the 200 the update is
stored (outbox.py's telegram_inbox) until handled, so one being handled when the
server is killed is handled after the restart, or by another instance.

Every chat is its own conversation, with sender id "telegram:<chat id>" in the
same tracker store as the website. When the dialogue produces nothing (action
server down), the patient gets the 'action_error' apology, as over REST.
Typed text never reaches Rasa as "/intent{...}", and a button press only when
its data is a button the assistant offered in that conversation.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import re
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
from clinic.inbound import readable_text, typed_commands
from clinic.rate_limit import RateLimiter
from clinic.settings import current as current_settings
from clinic.urgent import is_urgent_text
from ops.alerts import URGENT
from rasa_extensions.conversations import (
    asks_to_forget,
    forget,
    is_ready,
    latest_answer,
    payloads_offered_ever,
    record_channel_replies,
    record_feedback,
)
from rasa_extensions.tracker_store import StorageError
from rasa_extensions.turns import EXPLICIT_ID_ATTRIBUTE, queue_alert

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
TYPING_EVERY_S = 4.0  # Telegram shows "typing…" for about 5 s after each sendChatAction
CHANNEL_FACTS = ("help", "not_text", "empty_message")  # sent by the channel itself, with their buttons


def sender_id(chat_id: int) -> str:
    return f"{SENDER_PREFIX}{chat_id}"


# Callback data of the thumbs under an answer: feedback:<up|down>:<update id of the message it answered>
# (at most 30 bytes of Telegram's 64), so a press under an older answer rates that answer. Thumbs sent
# before the reference existed ("feedback:up") rate the latest answer, as they always did.
FEEDBACK = re.compile(r"^feedback:(up|down)(?::([0-9]{1,16}))?$")


def message_id_of(update_id: int) -> str:
    """The id under which the patient's message of this update is stored (Rasa's UserUttered.message_id)."""
    return f"telegram-{update_id}"


def with_feedback_buttons(messages: List[Dict[str, Any]], answers: Optional[int] = None) -> List[Dict[str, Any]]:
    """The thumbs up / down under the answer (its last message), stored by record_feedback when pressed.

    `answers`: the update id of the patient's message this answers, carried in the buttons' data.
    """
    ref = f":{answers}" if answers is not None else ""
    *rest, last = messages
    thumbs = [{"title": fact_text("feedback_up"), "payload": f"feedback:up{ref}"},
              {"title": fact_text("feedback_down"), "payload": f"feedback:down{ref}"}]
    return [*rest, {**last, "buttons": [*(last.get("buttons") or []), *thumbs]}]


def channel_payloads() -> Set[str]:
    """Payloads of the buttons under the facts the channel sends itself (/help, ...): never in the record."""
    return {b["payload"] for fact_id in CHANNEL_FACTS for b in fact_message(fact_id).get("buttons") or []
            if isinstance(b, dict) and isinstance(b.get("payload"), str)}


def patient_text(text: str) -> str:
    """What a patient typed, never read as a command: "/restart@1" or '/back{"x":1}' would otherwise reach
    Rasa as an intent at confidence 1.0. On Telegram buttons send callback data, never typed text, so no
    typed "/..." is ever one of the assistant's offers."""
    return typed_commands(text, ())


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
    """The last few thousand update ids this process took, to skip an update Telegram delivers twice.

    Checking and remembering are separate: an id is remembered only once it is really taken (the
    shared database said so), so an update answered 503 is handled when Telegram delivers it again.
    """

    def __init__(self, size: int = REMEMBERED_UPDATE_IDS) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def seen(self, update_id: int) -> bool:
        return update_id in self._ids

    def remember(self, update_id: int) -> None:
        self._ids[update_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


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
                    self.outbox.recover = lambda update_id, update: self.resume(update_id, update, on_new_message)
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
            incoming = self.read(update)
            # Kept in the database until handled (when there is something to handle), before Telegram gets its 200.
            not_new = await self.take_update(update_id, json.dumps(update) if incoming is not None else None)
            if not_new is not None:
                return not_new
            if incoming is not None:
                self.submit(incoming, on_new_message)
            return response.json({"ok": True})

        return webhook

    def read(self, update: Dict[str, Any]) -> Optional[Incoming]:
        """What to answer for the update (with its id), or None for silence; never raises."""
        update_id = update.get("update_id")
        try:
            incoming = read_update(update, self.username, self.bot_id)
            if incoming is not None and isinstance(update_id, int):
                incoming = dataclasses.replace(incoming, update_id=update_id)
            return incoming
        except Exception:  # never a 500: Telegram would re-send the same update again and again
            logger.exception("Unreadable Telegram update %s", update_id)
            return None

    def submit(self, incoming: Incoming, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Handles the update in the background, after its chat's earlier ones; then its stored copy goes."""
        async def work() -> None:
            try:
                await self.handle(incoming, on_new_message)
            finally:
                await self.release(incoming.update_id)

        key = incoming.chat_id if incoming.chat_id is not None else incoming.callback_id
        self.queue.submit(key, work)

    async def release(self, update_id: Optional[int]) -> None:
        if update_id is None or self.outbox is None:
            return
        try:
            await self.outbox.handled(update_id)
        except Exception as exc:  # the copy is handled again later, and answered from the record (message id)
            logger.error("Telegram update %s: its stored copy could not be deleted (%s)", update_id,
                         type(exc).__name__)

    def resume(self, update_id: int, update: Dict[str, Any],
               on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """An update taken by an instance that died before handling it (outbox.py's telegram_inbox)."""
        incoming = self.read(update)
        if incoming is None or incoming.update_id != update_id:
            self.in_background(self.release(update_id))
            return
        self.recent.remember(update_id)
        self.submit(incoming, on_new_message)

    async def take_update(self, update_id: Any, body: Optional[str] = None) -> Optional[HTTPResponse]:
        """None when the update is new and now ours; else Telegram's answer (200: seen before, 503: try later).

        The id is remembered here only after the shared database took it: remembered before a failed
        check, Telegram's redelivery would be skipped as "seen" and the update lost. `body`: the update,
        kept in the database until handled.
        """
        if not isinstance(update_id, int):
            return None
        if self.recent.seen(update_id):
            return response.json({"ok": True})
        if 0 <= update_id < 2 ** 53 and self.outbox is not None:
            try:
                first = await self.outbox.first_time(update_id, body)
            except Exception:  # the database is down: 503, so Telegram keeps the update for later
                logger.error("Telegram update %s: the update log cannot be written; answered 503", update_id)
                return _problem(503, "conversations cannot be stored just now; Telegram delivers the update later")
            if not first:  # taken before a restart, or by another instance
                self.recent.remember(update_id)
                return response.json({"ok": True})
        self.recent.remember(update_id)
        return None

    async def handle(self, incoming: Incoming, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Answers one update; runs in the background, after Telegram got its 200."""
        assert self.api is not None
        if incoming.kind == "callback":
            await self.press(incoming, on_new_message)
        elif incoming.kind == "edited":  # an edit is answered only when it adds a warning sign
            if is_urgent_text(default_store().current(), incoming.text):
                await self.send_urgent(incoming, incoming.text, "an edited message added a warning sign")
        elif incoming.kind == "command":
            if incoming.text == "start":  # a deep link's payload (t.me/bot?start=spring-ad) tells where they came from
                await self.ask(incoming, START_PAYLOAD, on_new_message, source=incoming.argument)
            else:  # /help, and any command we do not know
                await self.send(incoming, [fact_message("help")])
        elif incoming.kind == "media":
            await self.send(incoming, [fact_message("not_text")])
            if patient_text(incoming.text).strip():  # a caption such as "is this infected?" may name a warning sign
                await self.ask(incoming, patient_text(incoming.text), on_new_message)
        elif not patient_text(incoming.text).strip():
            await self.send(incoming, [fact_message("empty_message")])
        else:
            await self.ask(incoming, patient_text(incoming.text), on_new_message)

    async def press(self, incoming: Incoming, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """A button press: thumbs are stored; a topic button is answered only if the assistant offered it here."""
        thumbs = FEEDBACK.match(incoming.text)
        if thumbs and incoming.chat_id is not None:
            answer_of = message_id_of(int(thumbs.group(2))) if thumbs.group(2) else None
            recorded = await record_feedback(self.app, conversation_of(incoming), thumbs.group(1), answer_of)
            self.in_background(self._answer_callback(incoming.callback_id or "",
                                                     fact_text("feedback_thanks") if recorded else ""))
            return
        # First, so the button's spinner stops; in the background, so a slow Bot API never delays the answer.
        self.in_background(self._answer_callback(incoming.callback_id or ""))
        if incoming.chat_id is None:
            return
        if await self.offered(incoming):
            await self.ask(incoming, incoming.text, on_new_message)
        else:
            logger.warning("Ignored a button press in chat %s: its data is not a button the assistant offered there",
                           incoming.chat_id)

    async def offered(self, incoming: Incoming) -> bool:
        """True when the press's data is a button the assistant showed in this conversation (or under a fact
        the channel sends itself). Anything else was forged by a modified client, e.g. '/restart{"fact":"x"}'."""
        if not is_our_payload(incoming.text):
            return False
        if incoming.text in channel_payloads():
            return True
        try:
            return incoming.text in await payloads_offered_ever(self.app, conversation_of(incoming))
        except Exception as exc:  # the store cannot be read: the dialogue could not answer either
            logger.error("Telegram chat %s: the conversation could not be read (%s)", incoming.chat_id,
                         type(exc).__name__)
            await self.send(incoming, fallback(""))
            return False

    async def send_urgent(self, incoming: Incoming, text: str, reason: str) -> None:
        """The urgent answer the channel gives on its own (the dialogue never saw these words)."""
        replies = fallback(text)
        await self.send(incoming, replies)
        await self.record_urgent(incoming, replies, text, reason)

    async def record_urgent(self, incoming: Incoming, replies: List[Dict[str, Any]], text: str, reason: str) -> None:
        """Stores the channel's urgent reply in the conversation and tells the staff, as the dialogue's are."""
        conversation = conversation_of(incoming)
        try:
            await record_channel_replies(self.app, conversation, replies, reason)
        except Exception as exc:  # the patient has the answer; the record misses it (logged, never raised)
            logger.error("Telegram chat %s: an urgent reply was sent but could not be stored (%s)", incoming.chat_id,
                         type(exc).__name__)
        if any((r.get("custom") or {}).get("urgent") for r in replies):
            queue_alert(conversation, URGENT, self.name(), text)

    async def ask(self, incoming: Incoming, text: str, on_new_message: Callable[[UserMessage], Awaitable[Any]],
                  source: str = "") -> None:
        """Runs the dialogue for one message and sends what it said, or the apology when it said nothing."""
        assert incoming.chat_id is not None
        conversation = conversation_of(incoming)
        if self.per_chat.retry_after(conversation) is not None:
            await self.send(incoming, [{"text": fact_text("too_many_messages")}])
            return
        typing = self.keep_typing(incoming)
        try:
            text = readable_text(text) or ""
            early = await self.read_to_the_end(incoming, text)
            limit = max_message_chars()
            metadata: Dict[str, Any] = {"telegram": {"chat_type": incoming.chat_type,
                                                     "message_id": incoming.message_id}}
            if readable_text(source):  # which page or ad sent them: kept with the message, as on the website
                metadata["source"] = readable_text(source)
            said = await self.run_dialogue(incoming, conversation, text[:limit], metadata, on_new_message)
        finally:
            typing.cancel()
        if early:
            await self.record_urgent(incoming, early, text, "a long message, read to its end")
        if said is not None:
            await self.send(incoming, await self.reply_for(incoming, conversation, said, text[:limit]))

    async def read_to_the_end(self, incoming: Incoming, text: str) -> List[Dict[str, Any]]:
        """Only a message's start is given to the dialogue; a warning sign after the cut still gets the urgent
        answer, at once. Returns the urgent replies sent (to be stored), if any."""
        if len(text) <= max_message_chars():
            return []
        urgent = fallback(text) if is_urgent_text(default_store().current(), text) else []
        if urgent:
            await self.send(incoming, urgent)
        await self.send(incoming, [{"text": fact_text("message_too_long")}])
        return urgent

    async def run_dialogue(self, incoming: Incoming, conversation: str, text: str, metadata: Dict[str, Any],
                           on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Optional[List[Dict[str, Any]]]:
        """What the dialogue said; None when nothing more is to be sent (never stored, or answered before)."""
        told = False
        for attempt, delay in enumerate((*STORE_RETRY_DELAYS_S, None)):
            collector = CollectingOutputChannel()
            message = UserMessage(
                text, collector, conversation, input_channel=self.name(), metadata=metadata,
                message_id=message_id_of(incoming.update_id) if incoming.update_id is not None else None)
            setattr(message, EXPLICIT_ID_ATTRIBUTE, incoming.update_id is not None)
            try:
                await on_new_message(message)
            except (StorageError, LockError) as exc:  # not stored: tell the patient once, then try again
                logger.error("Telegram chat %s: conversation not stored (%s), attempt %d", incoming.chat_id,
                             type(exc).__name__, attempt + 1)
                self.store_down_until = time.monotonic() + STORE_DOWN_HOLD_S
                if not told:
                    await self.send(incoming, fallback(text))
                    told = True
                if delay is None:
                    return None
                await asyncio.sleep(delay)
                continue
            except Exception:  # the dialogue failed; the patient still gets an answer
                logger.exception("Could not handle a Telegram message from chat %s", incoming.chat_id)
            if getattr(message, "duplicate", False):  # already answered (another instance, or a re-delivery)
                return None
            return list(collector.messages)
        return None

    async def reply_for(self, incoming: Incoming, conversation: str, said: List[Dict[str, Any]],
                        text: str) -> List[Dict[str, Any]]:
        """What to send for what the dialogue said: deletion done (or refused), thumbs under an answer."""
        messages = [m for m in said if not asks_to_forget(m)]
        if len(messages) < len(said):
            messages = await self.forget(incoming, conversation, messages)
        elif messages and not incoming.in_group and await latest_answer(self.app, conversation):
            messages = with_feedback_buttons(messages, incoming.update_id)
        return messages or fallback(text)

    async def forget(self, incoming: Incoming, conversation: str,
                     confirmation: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Deletes the conversation, and the chat's replies still waiting in the outbox (they quote answers to
        the patient's questions). The patient is told it is done only when it is; else that it is not.

        The update ids in telegram_updates stay: they hold no words and no chat, and keep an update
        Telegram delivers again from being answered twice (and re-creating what was deleted).
        In a group, the outbox is shared by every member, so only the conversation is deleted.
        """
        loop = asyncio.get_running_loop()
        deleted = await loop.run_in_executor(None, forget, self.app, self.settings, conversation, self.name())
        if deleted is None:
            return [{"text": not_deleted_text()}]
        if self.outbox is not None and not incoming.in_group and incoming.chat_id is not None:
            try:
                await self.outbox.forget_chat(incoming.chat_id)
            except Exception as exc:  # they expire within a day; the conversation itself is gone
                logger.error("Telegram chat %s: waiting replies could not be deleted (%s)", incoming.chat_id,
                             type(exc).__name__)
        return confirmation

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

    def keep_typing(self, incoming: Incoming) -> asyncio.Future:
        """"typing…" in the chat while the answer is prepared: Telegram shows it for about 5 s, so it is sent
        again every 4 s until the caller cancels it, and never longer than an action may take (plus one)."""
        assert incoming.chat_id is not None
        return asyncio.ensure_future(self._keep_typing(incoming.chat_id,
                                                       self.settings.action_timeout_s + TYPING_EVERY_S))

    async def _keep_typing(self, chat_id: int, bound_s: float) -> None:
        deadline = time.monotonic() + bound_s
        while True:
            await self._typing(chat_id)
            if time.monotonic() + TYPING_EVERY_S > deadline:
                return
            await asyncio.sleep(TYPING_EVERY_S)

    async def _typing(self, chat_id: int) -> None:
        assert self.api is not None
        try:
            await self.api.call("sendChatAction", {"chat_id": chat_id, "action": "typing"})
        except TelegramApiError:  # never an error: the answer matters, not the indicator
            pass


def not_deleted_text() -> str:
    """What a patient is told when their conversation could not be deleted: never that it was."""
    return fact_text("conversation_not_deleted")
