"""Telegram replies kept in the conversation database until Telegram has them: never lost, never sent twice.

The same database remembers which update ids were already taken, so an update
Telegram delivers again (after a restart, or to another instance) is answered once.
And it keeps each update taken until it has been handled (`telegram_inbox`): the
webhook answers Telegram 200 only after the update is stored, so an instance killed
while handling it (or before) loses nothing: its updates are claimed and handled by
another instance, or by this one after a restart, once their claim has lapsed.

Before, a reply was lost after a few seconds of Bot API errors (about 3.5 s of
5xx, four 429s, or one `retry_after` over 30 s), and a sendMessage that timed
out after Telegram had accepted it was sent again. Now each reply is written to
a small table (`telegram_outbox`, in the same SQLite file or PostgreSQL
database as the conversations) before it is sent, and deleted once Telegram
confirms it. What cannot be sent now is tried again by a background loop on
every instance, in order for each chat, until it goes out or expires (a day).
A row is claimed before it is sent, so two instances never send the same one.
A call that timed out after it was sent may have arrived: it is not sent again
(a reply twice confuses more than a reply late). A refusal that retrying cannot
fix (the patient blocked the bot, the chat is gone) ends the row, logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import sqlalchemy as sa

from channels.telegram.api import BotApi, TelegramApiError

logger = logging.getLogger(__name__)

EXPIRE_S = 24 * 3600
CLAIM_S = 60.0
POLL_S = 1.0
MAX_BACKOFF_S = 300.0

SENT, QUEUED, REFUSED = "sent", "queued", "refused"

metadata = sa.MetaData()
table = sa.Table(
    "telegram_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chat_id", sa.String(64), nullable=False, index=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_until", sa.Float),
)


updates = sa.Table(
    "telegram_updates", metadata,  # update ids already taken, by any instance, for a day
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seen_at", sa.Float, nullable=False, index=True),
)
SEEN_FOR_S = 24 * 3600  # Telegram gives up re-delivering an update long before this

inbox = sa.Table(
    "telegram_inbox", metadata,  # updates taken but not yet handled: the patient's words, for seconds
    sa.Column("update_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("claimed_by", sa.String(64), nullable=False),
    sa.Column("claimed_until", sa.Float, nullable=False),
)
INBOX_CLAIM_S = 30.0  # an instance renews its claims every few seconds; a dead one's lapse after this
INBOX_RENEW_TICKS = 5


class Outbox:
    def __init__(self, url: str, api: BotApi, expire_s: float = EXPIRE_S) -> None:
        self.api = api
        self.expire_s = expire_s
        self.instance = uuid.uuid4().hex[:12]
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:  # SQLite makes the file, not its folder
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.engine = sa.create_engine(parsed)
        metadata.create_all(self.engine)
        self._chat_locks: Dict[str, asyncio.Lock] = {}
        self._task: Optional[asyncio.Task] = None
        # Called with each update found unhandled (its instance died): the channel handles it again.
        self.recover: Optional[Callable[[int, Dict[str, Any]], None]] = None

    # --- database work, run off the event loop -------------------------------------------------------

    async def _db(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, work, *args)

    def _add(self, chat_id: str, params_list: List[Dict[str, Any]]) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(table.insert(), [{"chat_id": chat_id, "params": json.dumps(p), "created_at": now,
                                           "next_at": now, "attempts": 0} for p in params_list])

    def _pending(self, chat_id: str) -> List[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(table).where(table.c.chat_id == chat_id).order_by(table.c.id)))

    def _due_chats(self) -> List[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.chat_id).where(table.c.next_at <= time.time()).distinct())
            return [row[0] for row in rows]

    def _claim(self, row_id: int) -> bool:
        now = time.time()
        with self.engine.begin() as conn:
            free = sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now,
                          table.c.claimed_by == self.instance)
            done = conn.execute(table.update().where(table.c.id == row_id).where(free).values(
                claimed_by=self.instance, claimed_until=now + CLAIM_S))
            return bool(done.rowcount)

    def _delete(self, row_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id == row_id))

    def _later(self, row_id: int, attempts: int, wait_s: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == row_id).values(
                attempts=attempts, next_at=time.time() + wait_s, claimed_by=None, claimed_until=None))

    def _forget_chat(self, chat_id: str) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(table.delete().where(table.c.chat_id == chat_id)).rowcount or 0)

    async def forget_chat(self, chat_id: Any) -> int:
        """Deletes the chat's replies not yet delivered (the patient asked to delete their conversation)."""
        return int(await self._db(self._forget_chat, str(chat_id)))

    # --- updates already taken -----------------------------------------------------------------------------

    def _take(self, update_id: int, body: Optional[str]) -> bool:
        now = time.time()
        try:
            with self.engine.begin() as conn:  # one transaction: taken and kept, or neither
                conn.execute(updates.insert().values(update_id=update_id, seen_at=now))
                if body is not None:
                    conn.execute(inbox.insert().values(update_id=update_id, body=body, received_at=now,
                                                       claimed_by=self.instance,
                                                       claimed_until=now + INBOX_CLAIM_S))
            return True
        except sa.exc.IntegrityError:  # another instance, or this one before a restart, took it
            return False

    async def first_time(self, update_id: int, body: Optional[str] = None) -> bool:
        """True the first time any instance sees this update id (shared through the database).

        With `body` (the update's JSON), the update is also kept until `handled` is called, so it
        survives this instance being killed before it is answered.
        """
        return bool(await self._db(self._take, update_id, body))

    def _handled(self, update_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(inbox.delete().where(inbox.c.update_id == update_id))

    async def handled(self, update_id: int) -> None:
        """The update was handled (answered, or answered as well as it could be): its copy goes."""
        await self._db(self._handled, update_id)

    def _renew_claims(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(inbox.update().where(inbox.c.claimed_by == self.instance).values(
                claimed_until=time.time() + INBOX_CLAIM_S))

    def _claim_orphans(self) -> List[Tuple[int, str]]:
        """Updates whose instance stopped renewing its claim (killed): now this instance's, oldest first."""
        now = time.time()
        claimed = []
        with self.engine.connect() as conn:
            lapsed = list(conn.execute(sa.select(inbox.c.update_id, inbox.c.body).where(
                inbox.c.claimed_until < now).order_by(inbox.c.update_id)))
        for update_id, body in lapsed:
            with self.engine.begin() as conn:
                done = conn.execute(inbox.update().where(inbox.c.update_id == update_id).where(
                    inbox.c.claimed_until < now).values(claimed_by=self.instance, claimed_until=now + INBOX_CLAIM_S))
            if done.rowcount:  # not taken by another instance in between
                claimed.append((int(update_id), str(body)))
        return claimed

    async def _recover_orphans(self) -> None:
        for update_id, body in await self._db(self._claim_orphans):
            logger.warning("Telegram update %s was taken but never handled (its instance stopped): handling it now",
                           update_id)
            try:
                update = json.loads(body)
            except ValueError:
                update = None
            if self.recover is None or not isinstance(update, dict):
                await self._db(self._handled, update_id)
                continue
            self.recover(update_id, update)

    def _forget_old_updates(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(updates.delete().where(updates.c.seen_at < time.time() - SEEN_FOR_S))
            conn.execute(inbox.delete().where(inbox.c.received_at < time.time() - SEEN_FOR_S))

    # --- sending -------------------------------------------------------------------------------------------

    async def send(self, chat_id: Any, params_list: List[Dict[str, Any]]) -> str:
        """Stores the messages, then sends what is due for the chat: SENT, QUEUED (will be retried) or REFUSED."""
        key = str(chat_id)
        await self._db(self._add, key, params_list)
        return await self.flush_chat(key)

    async def flush_chat(self, chat_id: str) -> str:
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:  # one sender per chat in this process: the order is kept
            outcome = SENT
            for row in await self._db(self._pending, chat_id):
                if row.next_at > time.time():
                    return QUEUED  # an earlier message waits: later ones wait behind it
                if not await self._db(self._claim, row.id):
                    return QUEUED  # another instance is sending this chat's messages
                outcome = await self._attempt(row)
                if outcome == QUEUED:
                    return QUEUED
            return outcome

    async def _attempt(self, row: Any) -> str:
        try:
            await self.api.call("sendMessage", json.loads(row.params))
        except TelegramApiError as exc:
            if exc.maybe_delivered:
                logger.warning("Telegram sendMessage to chat %s timed out after it was sent: not sent again",
                               row.chat_id)
            elif exc.retryable and time.time() - row.created_at < self.expire_s:
                wait = exc.retry_after or min(MAX_BACKOFF_S, 2.0 * 2 ** row.attempts)
                await self._db(self._later, row.id, row.attempts + 1, wait)
                logger.warning("Telegram sendMessage to chat %s failed (%s); trying again in %.0f s",
                               row.chat_id, exc.status, wait)
                return QUEUED
            else:
                logger.error("Telegram refused a message to chat %s for good: %s %s", row.chat_id, exc.status,
                             exc.description)
                await self._db(self._delete, row.id)
                return REFUSED
            await self._db(self._delete, row.id)
            return SENT
        await self._db(self._delete, row.id)
        return SENT

    async def _run(self) -> None:
        ticks = 0
        while True:
            try:
                if ticks % INBOX_RENEW_TICKS == 0:
                    await self._db(self._renew_claims)
                    await self._recover_orphans()
                for chat_id in await self._db(self._due_chats):
                    await self.flush_chat(chat_id)
                ticks += 1
                if ticks % 3600 == 0:
                    await self._db(self._forget_old_updates)
            except Exception:  # the database may be down: try again at the next tick
                logger.exception("The Telegram outbox could not be read")
            await asyncio.sleep(POLL_S)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.engine.dispose()
