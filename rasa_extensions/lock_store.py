"""A Redis lock store for Rasa with every read-modify-write of a lock made atomic.

Why: several Rasa instances behind a load balancer must never process two
messages of one conversation at once, or the stored history interleaves. Rasa
does this with a ticket lock kept in Redis, but its RedisLockStore updates the
lock with a plain GET then SET. Two instances issuing a ticket at the same
moment can both get ticket 0 and both run, and a `cleanup` racing an
`issue_ticket` can drop the other instance's ticket (RasaHQ/rasa#9213; the fix,
PR #11256, was reverted in Rasa Open Source). Here each change is one Redis
transaction (WATCH/MULTI/EXEC, retried when another instance got in between).

Also, compared with the stock store:
- a waiting message polls every `wait_time_s` (default 0.1 s) instead of 1 s;
- a ticket lives 6 s and is renewed while its instance waits or works, so an
  instance killed mid-message holds its conversations for seconds, not a minute;
- a lock key expires in Redis with its last ticket, so an instance killed
  mid-message leaves nothing behind;
- Redis being down is a LockError for that message (the channels answer 503),
  never a crash;
- it is configured by one URL (redis://[:password@]host:port/db, rediss:// for TLS), or
  by Rasa's keys (url: host, port, db, password, use_ssl) as the Helm chart writes them.

endpoints.yml (written by ops/endpoints.py when LOCK_STORE_URL is set):
    lock_store:
      type: rasa_extensions.lock_store.AtomicRedisLockStore
      url: ${LOCK_STORE_URL}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Optional, Tuple, TypeVar, cast

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import DEFAULT_REDIS_LOCK_STORE_KEY_PREFIX as KEY_PREFIX
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from rasa_extensions.version import check_rasa_version

logger = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_WAIT_TIME_S = 0.1
DEFAULT_TICKET_LIFETIME_S = 6.0
DEFAULT_SOCKET_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 100  # optimistic transactions retried; contention is per conversation, so this is never reached
DEFAULT_URL = "redis://localhost:6379/1"


class AtomicRedisLockStore(LockStore):
    """A Redis ticket lock store whose lock updates cannot be lost to a concurrent instance.

    Built on Rasa's generic LockStore (its ticket logic) rather than on RedisLockStore,
    whose constructor takes no URL and no connect timeout: everything Redis-specific is here.
    """

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, url: Optional[str] = None,
                 key_prefix: Optional[str] = None, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S,
                 wait_time_s: float = DEFAULT_WAIT_TIME_S,
                 ticket_lifetime_s: float = DEFAULT_TICKET_LIFETIME_S) -> None:
        check_rasa_version()
        options: dict = dict(endpoint_config.kwargs) if endpoint_config else {}
        url = url or (endpoint_config.url if endpoint_config else None) or DEFAULT_URL
        key_prefix = options.get("key_prefix", key_prefix)
        socket_timeout = float(options.get("socket_timeout", socket_timeout))
        self.wait_time_s = float(options.get("wait_time_s", wait_time_s))
        self.ticket_lifetime_s = float(options.get("ticket_lifetime_s", ticket_lifetime_s))
        timeouts: dict[str, Any] = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
        if "://" in url:
            self.red = redis.StrictRedis.from_url(url, **timeouts)
        else:  # Rasa's own shape (the Helm chart writes it): url is the host, the rest are separate keys
            self.red = redis.StrictRedis(
                host=url, port=int(options.get("port", 6379)), db=int(options.get("db", 1)),
                username=options.get("username"), password=options.get("password"),
                ssl=bool(options.get("use_ssl", False)), **timeouts)
        self.key_prefix = KEY_PREFIX
        if key_prefix:
            if isinstance(key_prefix, str) and key_prefix.isalnum():
                self.key_prefix = f"{key_prefix}:{KEY_PREFIX}"
            else:
                logger.warning("Ignoring the non-alphanumeric Redis key prefix %r", key_prefix)
        super().__init__()

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        """Also read by Rasa's `_acquire_lock` while a message waits: Redis failing then is a LockError too,
        so the channel answers 503 and the client sends the message again (not a 200 with nothing stored)."""
        try:
            raw = self.red.get(self.key_prefix + conversation_id)
        except redis.RedisError as exc:
            raise LockError(f"The lock store is unavailable ({type(exc).__name__})") from exc
        return TicketLock.from_dict(json.loads(raw)) if raw else None

    def delete_lock(self, conversation_id: str) -> None:
        try:
            self.red.delete(self.key_prefix + conversation_id)
        except redis.RedisError as exc:
            raise LockError(f"The lock store is unavailable ({type(exc).__name__})") from exc

    # --- the one primitive: an atomic change of one conversation's lock --------------------------

    def _change(self, conversation_id: str,
                change: Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], T]]) -> T:
        """Applies `change` to the stored lock in one transaction; a None or empty lock is deleted."""
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    pipe.watch(key)
                    raw = cast(Optional[bytes], pipe.get(key))  # watched: get() returns the value, not the Pipeline
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    new_lock, result = change(lock)
                    pipe.multi()
                    self._write(pipe, key, new_lock)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another instance changed this lock first: read it again
                except redis.RedisError as exc:  # Redis down or unreachable: the message is not processed
                    raise LockError(f"The lock store is unavailable ({type(exc).__name__})") from exc
        raise LockError(f"Lock for conversation '{conversation_id}' kept changing; gave up after {MAX_ATTEMPTS} tries")

    @staticmethod
    def _write(pipe: Any, key: str, lock: Optional[TicketLock]) -> None:
        if lock is not None:
            lock.remove_expired_tickets()
        if lock is None or not lock.tickets:
            pipe.delete(key)
            return
        ttl_ms = int((max(t.expires for t in lock.tickets) - time.time()) * 1000) + 1000
        pipe.set(key, lock.dumps(), px=max(ttl_ms, 1000))

    # --- LockStore operations, each one atomic ---------------------------------------------------

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._change(conversation_id, issue)

    def renew(self, conversation_id: str, ticket_number: int) -> None:
        """Pushes a live ticket's expiry `ticket_lifetime_s` ahead (nothing when it is gone)."""
        def extend(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            for ticket in lock.tickets if lock is not None else []:
                if ticket.number == ticket_number:
                    ticket.expires = time.time() + self.ticket_lifetime_s
            return lock, None

        self._change(conversation_id, extend)

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_expired_tickets()
            return lock, None

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def remove(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change(conversation_id, remove)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Removes the ticket; the lock goes with its last ticket (in the same transaction)."""
        self.finish_serving(conversation_id, ticket_number)

    def save_lock(self, lock: TicketLock) -> None:
        with self.red.pipeline() as pipe:
            self._write(pipe, self.key_prefix + lock.conversation_id, lock)
            pipe.execute()

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncIterator[TicketLock]:
        """Rasa's ticket lock, with short-lived tickets renewed while their instance lives.

        Rasa's ticket lives TICKET_LOCK_LIFETIME (60 s) whatever happens, so when an instance
        dies mid-message its patients wait a minute. Here a ticket lives `ticket_lifetime_s`
        (6 s) and this instance renews it every third of that while it waits or works; a dead
        instance stops renewing and its conversations are free within seconds. Waiting polls
        every `wait_time_s` (Rasa's agent always asks for 1 s).
        """
        ticket = self.issue_ticket(conversation_id, self.ticket_lifetime_s)
        renewal = asyncio.create_task(self._keep_alive(conversation_id, ticket))
        try:
            yield await self._acquire_lock(conversation_id, ticket, self.wait_time_s)
        finally:
            renewal.cancel()
            try:
                self.cleanup(conversation_id, ticket)
            except LockError:  # Redis went away: the ticket expires on its own within seconds
                logger.warning("Could not release the lock of conversation %s; it expires by itself", conversation_id)

    async def _keep_alive(self, conversation_id: str, ticket: int) -> None:
        while True:
            await asyncio.sleep(self.ticket_lifetime_s / 3)
            try:
                self.renew(conversation_id, ticket)
            except LockError:
                logger.warning("Could not renew the lock of conversation %s", conversation_id)
