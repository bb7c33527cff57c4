"""The lock store: Redis unreachable is a LockError for the message; tickets are renewed while held.

The channels answer a LockError with 503 and Retry-After (the client sends the message
again); any other exception would be taken for a failed dialogue and answered with the
apology and a 200, with nothing stored. For those tests no Redis runs: the store points at
a closed port. The renewal tests (marked `servers`) run a real Redis: a ticket lives
seconds and is renewed while its instance works, so a long message keeps its lock and a
dead instance's lock goes within seconds, not Rasa's 60.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Callable, Iterator

import pytest
from rasa.core.lock_store import LockError

from devtools.harness.datastores import Redis
from devtools.harness.servers import PROJECT, running
from rasa_extensions.lock_store import AtomicRedisLockStore


@pytest.fixture
def unreachable() -> AtomicRedisLockStore:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return AtomicRedisLockStore(url=f"redis://127.0.0.1:{port}/0", socket_timeout=0.5)


@pytest.mark.parametrize("operation", [
    lambda store: store.get_lock("c"),  # what Rasa's _acquire_lock reads while a message waits
    lambda store: store.delete_lock("c"),
    lambda store: store.issue_ticket("c"),
    lambda store: store.update_lock("c"),
    lambda store: store.finish_serving("c", 0),
    lambda store: store.renew("c", 0),
])
def test_every_operation_fails_as_a_lock_error(unreachable: AtomicRedisLockStore,
                                               operation: Callable[[AtomicRedisLockStore], object]) -> None:
    with pytest.raises(LockError, match="unavailable"):
        operation(unreachable)


async def test_taking_the_lock_fails_as_a_lock_error(unreachable: AtomicRedisLockStore) -> None:
    with pytest.raises(LockError):
        async with unreachable.lock("c"):
            pass  # pragma: no cover - never reached


# --- ticket renewal, on a real Redis (devtools/harness/datastores.py) ------------------------------------------

LIFETIME_S = 2.0  # short, so the tests are quick; production uses DEFAULT_TICKET_LIFETIME_S (6 s)
HOLDER = """
import asyncio, sys
from rasa_extensions.lock_store import AtomicRedisLockStore

async def hold() -> None:
    store = AtomicRedisLockStore(url=sys.argv[1], ticket_lifetime_s=float(sys.argv[3]))
    async with store.lock(sys.argv[2]):
        print("held", flush=True)
        await asyncio.sleep(600)

asyncio.run(hold())
"""


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running(Redis()) as server:
        yield server.url


def conversation() -> str:
    return f"renewal-{uuid.uuid4().hex[:8]}"


@pytest.mark.servers
async def test_a_lock_held_longer_than_its_ticket_lifetime_keeps_the_next_message_waiting(redis_url: str) -> None:
    """Renewal works: a message that takes three ticket lifetimes still has its conversation to itself."""
    holder, waiter = (AtomicRedisLockStore(url=redis_url, ticket_lifetime_s=LIFETIME_S / 2) for _ in range(2))
    name, happened, held = conversation(), [], asyncio.Event()

    async def first() -> None:
        async with holder.lock(name):
            happened.append("first acquired")
            held.set()
            await asyncio.sleep(3 * LIFETIME_S / 2)
            happened.append("first done")

    async def second() -> None:
        await held.wait()
        async with waiter.lock(name):
            happened.append("second acquired")

    await asyncio.gather(first(), second())
    assert happened == ["first acquired", "first done", "second acquired"]


@pytest.mark.servers
async def test_the_lock_of_a_dead_instance_is_released_within_its_ticket_lifetime(redis_url: str) -> None:
    """An instance killed while holding a lock (SIGKILL: no cleanup) stops renewing; its ticket expires in seconds."""
    name = conversation()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, name, str(LIFETIME_S)], cwd=PROJECT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiter = AtomicRedisLockStore(url=redis_url, ticket_lifetime_s=LIFETIME_S)
        await asyncio.sleep(2 * LIFETIME_S)  # alive: it renews, so its ticket is still there
        waiter.update_lock(name)  # drops expired tickets, as a waiting message does
        lock = waiter.get_lock(name)
        assert lock is not None and [t.number for t in lock.tickets] == [0]
        holder.kill()
        holder.wait(timeout=30)
        killed = time.monotonic()
        async with waiter.lock(name):
            waited = time.monotonic() - killed
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert waited < LIFETIME_S + 2, f"the dead instance's lock held the conversation {waited:.1f} s"
