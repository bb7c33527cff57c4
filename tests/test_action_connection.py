"""Calls to the action server share kept-alive connections, and Rasa's shutdown closes them.

A real HTTP server on loopback counts the TCP connections it is given; Rasa's own
EndpointConfig.request makes the calls, with rasa_extensions.action_connection
installed for the test only.
"""

from __future__ import annotations

from typing import AsyncIterator, List

import pytest
import rasa.core.run as rasa_run
from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from rasa_extensions import action_connection


@pytest.fixture
def kept_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EndpointConfig, "session", action_connection.session)
    monkeypatch.setattr(rasa_run, "close_resources", action_connection.close_resources)
    monkeypatch.setitem(action_connection._original, "close_resources", lambda app, loop: _nothing())


async def _nothing() -> None:
    return None


@pytest.fixture
async def server() -> AsyncIterator[tuple]:
    """An action-server stand-in answering {"events": []} and noting each call's client port."""
    ports: List[int] = []

    async def webhook(request: web.Request) -> web.Response:
        ports.append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"events": [], "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/webhook", ports
    await runner.cleanup()


async def call(endpoint: EndpointConfig, times: int) -> None:
    for _ in range(times):
        assert await endpoint.request(json={"next_action": "action_answer"}, method="post", timeout=5) == \
            {"events": [], "responses": []}


async def test_calls_share_one_connection(server: tuple, kept_alive: None) -> None:
    url, ports = server
    endpoint = EndpointConfig(url, headers={"Authorization": "Bearer t"})
    await call(endpoint, 5)
    assert len(ports) == 5 and len(set(ports)) == 1, ports
    session = action_connection.installed_session(endpoint)
    assert await action_connection.close_all() == 1
    assert session is not None and session.closed and action_connection.installed_session(endpoint) is None


async def test_rasa_as_shipped_opens_a_connection_per_call(server: tuple) -> None:
    """The baseline the extension exists for: if Rasa starts keeping connections itself, this fails."""
    url, ports = server
    await call(EndpointConfig(url), 3)
    assert len(set(ports)) == 3, ports


async def test_rasas_shutdown_closes_the_kept_sessions(server: tuple, kept_alive: None) -> None:
    url, _ = server
    endpoint = EndpointConfig(url)
    await call(endpoint, 1)
    session = action_connection.installed_session(endpoint)
    assert session is not None and not session.closed
    await rasa_run.close_resources(None, None)
    assert session.closed


async def test_a_closed_session_is_replaced(server: tuple, kept_alive: None) -> None:
    url, ports = server
    endpoint = EndpointConfig(url)
    await call(endpoint, 1)
    await action_connection.close_all()
    await call(endpoint, 1)
    assert len(set(ports)) == 2
    await action_connection.close_all()
