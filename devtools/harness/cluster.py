"""Two Rasa instances, each with its action server, on one PostgreSQL and one Redis: a clinic scaled out.

tests/test_durability.py and tests/test_reliability.py both run it; one clinic has one fact store,
one API key and one conversation secret, so a client may reach either instance.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List

from devtools.harness.datastores import Postgres, Redis
from devtools.harness.servers import Stack, private_fact_store, running, stop, store_stack


@dataclass
class Cluster:
    a: Stack
    b: Stack
    postgres: Postgres
    redis: Redis
    root: Path

    @property
    def instances(self) -> List[Stack]:
        return [self.a, self.b]


def in_parallel(*steps: Callable[[], None]) -> None:
    """Starts processes side by side (each waits for its own health check); the first error is raised."""
    with ThreadPoolExecutor(len(steps)) as pool:
        for future in [pool.submit(step) for step in steps]:
            future.result()


def stop_all(stacks: List[Stack]) -> None:
    if stacks:
        in_parallel(*(lambda p=p: stop(p) for stack in stacks for p in (stack.rasa, stack.actions)))


@contextlib.contextmanager
def running_cluster(root: Path, **env: str) -> Iterator[Cluster]:
    """Both instances started and healthy; `env` adds variables to each (ACTION_TIMEOUT_S...)."""
    stacks: List[Stack] = []
    with running(Postgres()) as postgres, running(Redis()) as redis:
        try:
            store_env = {"TRACKER_STORE_URL": postgres.url, "LOCK_STORE_URL": redis.url}
            facts_env = private_fact_store(root)  # one fact store for the whole clinic
            stacks = [store_stack(root / name, store_env, facts_env, **env) for name in ("a", "b")]
            stacks[1].api_key, stacks[1].conversation_secret = stacks[0].api_key, stacks[0].conversation_secret
            # Both may create the tables at once; Rasa tolerates it (SQLTrackerStore.__init__).
            in_parallel(*(step for stack in stacks for step in (stack.start_actions, stack.start_rasa)))
            yield Cluster(stacks[0], stacks[1], postgres, redis, root)
        finally:
            stop_all(stacks)
