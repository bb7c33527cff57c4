"""How many messages a conversation or a client address may send a minute.

A sliding one-minute window per key, in this process's memory: a flood from one
sender or one address is refused politely (HTTP 429 with Retry-After) before it
reaches the dialogue or the database. Memory is bounded: at most `max_keys`
keys are remembered, the least recently seen forgotten first. With several
instances each counts its own share, which a load balancer spreading requests
makes a limit of instances × the setting; docs/security.md says so.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from typing import Callable, Deque, Optional

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, per_minute: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, Deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> Optional[int]:
        """None when `key` may send now (and counts it); else the seconds to wait."""
        if self.per_minute <= 0:
            return None
        now = self._clock()
        times = self._seen.pop(key, None) or deque()
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        self._seen[key] = times  # most recently seen last
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        if len(times) >= self.per_minute:
            return max(1, math.ceil(WINDOW_S - (now - times[0])))
        times.append(now)
        return None
