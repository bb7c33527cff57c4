"""Kept-alive connections to the action server, instead of a new one for every action call.

Rasa's `EndpointConfig.request` opens a new aiohttp ClientSession for every call
(`async with self.session() as session`) and closes it afterwards, so every
custom action pays for a new session, a TCP connection and its teardown. A
profile at 10 clients put that at about 7% of the Rasa process's CPU
(docs/benchmarks.md).

Here `EndpointConfig.session` hands out one ClientSession per event loop and
endpoint settings, and leaving its `async with` does not close it. That holds
for every endpoint Rasa calls this way: the action server, and a model or NLG
server when one is configured. Each call
still gets Rasa's own headers, per-call timeout and error handling, since
`request` itself is unchanged. Idle connections are dropped by the client
after IDLE_CLOSE_S, before the action server's Sanic closes them (its
keep-alive timeout is 5 s), so a request is never sent on a connection the
server is closing. Rasa's shutdown (`rasa.core.run.close_resources`) closes
the sessions, so nothing is reported as unclosed.

tests/test_rasa_contracts.py pins what this relies on: `request` uses
`async with self.session()`, and `serve_application` registers
`close_resources` to run after the server stops.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Optional, Tuple

IDLE_CLOSE_S = 2.0  # below Sanic's default KEEP_ALIVE_TIMEOUT (5 s) on the action server

_sessions: Dict[Tuple[Any, ...], Tuple[asyncio.AbstractEventLoop, Any]] = {}
_original: Dict[str, Any] = {}


class KeptSession:
    """What `async with endpoint.session()` needs, without closing the session on exit."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_exc: Any) -> None:
        return None


def _key(endpoint: Any, loop: asyncio.AbstractEventLoop) -> Tuple[Any, ...]:
    auth = tuple(sorted((endpoint.basic_auth or {}).items()))
    headers = tuple(sorted((endpoint.headers or {}).items()))
    return id(loop), endpoint.url, headers, auth


def session(self: Any) -> KeptSession:
    """EndpointConfig.session: the same ClientSession for every call from this loop to this endpoint."""
    import aiohttp
    import rasa.utils.endpoints as endpoints

    loop = asyncio.get_running_loop()
    key = _key(self, loop)
    kept = _sessions.get(key)
    if kept is None or kept[0] is not loop or kept[1].closed:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) \
            if self.basic_auth else None
        client = aiohttp.ClientSession(
            headers=self.headers, auth=auth,
            timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CLOSE_S))
        kept = (loop, client)
        _sessions[key] = kept
    return KeptSession(kept[1])


async def close_all() -> int:
    """Closes the kept sessions of the running loop; returns how many."""
    loop = asyncio.get_running_loop()
    mine = [key for key, (owner, _) in _sessions.items() if owner is loop]
    for key in mine:
        await _sessions.pop(key)[1].close()
    return len(mine)


async def close_resources(app: Any, loop: Any) -> None:
    """rasa.core.run.close_resources, then the kept sessions."""
    await _original["close_resources"](app, loop)
    await close_all()


def apply() -> str:
    import rasa.core.run as rasa_run
    from rasa.utils.endpoints import EndpointConfig

    if not _original:
        _original["session"] = EndpointConfig.session
        _original["close_resources"] = rasa_run.close_resources
    EndpointConfig.session = session
    rasa_run.close_resources = close_resources
    return f"connections to the action server kept alive (closed after {IDLE_CLOSE_S:g} s idle)"


def installed_session(endpoint: Any) -> Optional[Any]:
    """The kept session for `endpoint` in the running loop, if one was made (for tests)."""
    kept = _sessions.get(_key(endpoint, asyncio.get_running_loop()))
    return kept[1] if kept else None
