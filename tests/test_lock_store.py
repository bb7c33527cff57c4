"""Redis unreachable is a LockError for the message, from every operation Rasa calls on the lock store.

The channels answer a LockError with 503 and Retry-After (the client sends the message
again); any other exception would be taken for a failed dialogue and answered with the
apology and a 200, with nothing stored. No Redis runs here: the store points at a closed port.
"""

from __future__ import annotations

import socket
from typing import Callable

import pytest
from rasa.core.lock_store import LockError

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
