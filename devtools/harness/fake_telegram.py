"""A local fake of the Telegram Bot API, for testing the Telegram channel without the internet.

An aiohttp app on 127.0.0.1 (a free port), run in a thread with its own event
loop. It answers /bot<token>/<method> the way api.telegram.org does
({"ok": true, "result": ...} or {"ok": false, "error_code", "description",
"parameters": {"retry_after"}}), records every call (also the failed ones),
and can be told to fail the next calls of a method with a status, a 429 with
retry_after, or a delay, for every chat or for one chat only.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from aiohttp import web

from devtools.harness.servers import free_port


@dataclass
class Call:
    method: str
    params: Dict[str, Any]
    status: int  # what the fake answered
    at: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    status: int
    retry_after: Optional[int] = None
    delay_s: float = 0.0
    description: str = ""
    chat_id: Any = None  # None: any call of the method; else only calls to this chat

    def applies_to(self, params: Dict[str, Any]) -> bool:
        return self.chat_id is None or params.get("chat_id") == self.chat_id


def telegram_credentials(folder: Path) -> Path:
    """A credentials file with the REST and the Telegram channels, as a clinic on Telegram has."""
    path = folder / "credentials.yml"
    path.write_text("channels.rest.ClinicRestInput: {}\nchannels.telegram.TelegramChannel: {}\n")
    return path


class FakeTelegram:
    """Start with `.start()`, point TELEGRAM_API_BASE at `.url`, read `.calls`."""

    def __init__(self, token: str, username: str = "DemoClinicBot", bot_id: Optional[int] = None) -> None:
        self.token = token
        self.username = username
        self.bot_id = bot_id if bot_id is not None else int(token.split(":")[0])
        self.port = free_port()
        self._calls: List[Call] = []
        self._failures: Dict[str, List[Failure]] = {}
        self._lock = threading.Lock()
        self._message_ids = 1000
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def channel_env(self, secret: str) -> Dict[str, str]:
        """The variables that point the Telegram channel at this fake, with `secret` as the webhook secret."""
        return {"TELEGRAM_TOKEN": self.token, "TELEGRAM_API_BASE": self.url, "TELEGRAM_SECRET_TOKEN": secret}

    # ---- what tests use -------------------------------------------------------------------------

    def fail_next(self, method: str, status: int, times: int = 1, retry_after: Optional[int] = None,
                  delay_s: float = 0.0, description: str = "", chat_id: Any = None) -> None:
        """The next `times` calls of `method` (to `chat_id` only, when given) answer `status` (after `delay_s`)."""
        with self._lock:
            self._failures.setdefault(method, []).extend(
                [Failure(status, retry_after, delay_s, description, chat_id)] * times)

    def clear_failures(self, chat_id: Any = None) -> None:
        """Forgets the failures still to come (those for `chat_id` only, when given): Telegram is back."""
        with self._lock:
            for method, queue in self._failures.items():
                self._failures[method] = [f for f in queue if chat_id is not None and f.chat_id != chat_id]

    def calls(self, method: Optional[str] = None, chat_id: Any = None, ok_only: bool = False) -> List[Call]:
        with self._lock:
            found = list(self._calls)
        return [c for c in found
                if (method is None or c.method == method)
                and (chat_id is None or c.params.get("chat_id") == chat_id)
                and (not ok_only or c.status == 200)]

    def sent_texts(self, chat_id: Any) -> List[str]:
        return [c.params.get("text", "") for c in self.calls("sendMessage", chat_id, ok_only=True)]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 60.0, what: str = "the expected calls") -> Any:
        """Polls until `condition()` is truthy and returns it; fails with the calls seen so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; calls: "
                             f"{[(c.method, c.status, c.params) for c in self.calls()][-12:]}")

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._failures.clear()

    # ---- the server -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        params: Dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            try:
                params = json.loads(raw) if raw else {}
            except ValueError:
                params = {"_raw": raw.decode("utf-8", "replace")}
        params.update(request.query)
        if token != self.token:
            return self._answer(method, params, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        with self._lock:
            queue = self._failures.get(method) or []
            failure = next((f for f in queue if f.applies_to(params)), None)
            if failure is not None:
                queue.remove(failure)
        if failure is not None:
            if failure.delay_s:
                await asyncio.sleep(failure.delay_s)
            if failure.status == 200:  # fail_next(..., 200, delay_s=...): accepted, but answered too late
                return self._answer(method, params, 200, {"ok": True, "result": self._result(method, params)})
            body: Dict[str, Any] = {"ok": False, "error_code": failure.status,
                                    "description": failure.description or f"Error {failure.status}"}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
                body["description"] = f"Too Many Requests: retry after {failure.retry_after}"
            return self._answer(method, params, failure.status, body)
        return self._answer(method, params, 200, {"ok": True, "result": self._result(method, params)})

    def _answer(self, method: str, params: Dict[str, Any], status: int, body: Dict[str, Any]) -> web.Response:
        with self._lock:
            self._calls.append(Call(method, params, status))
        return web.json_response(body, status=status)

    def _result(self, method: str, params: Dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": self.bot_id, "is_bot": True, "first_name": "Demo Clinic", "username": self.username}
        if method == "sendMessage":
            with self._lock:
                self._message_ids += 1
                message_id = self._message_ids
            return {"message_id": message_id, "date": int(time.time()), "text": params.get("text", ""),
                    "chat": {"id": params.get("chat_id"), "type": "private"},
                    "from": {"id": self.bot_id, "is_bot": True, "first_name": "Demo Clinic",
                             "username": self.username}}
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True

    def start(self) -> FakeTelegram:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/bot{token}/{method}", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-telegram", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Telegram server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
