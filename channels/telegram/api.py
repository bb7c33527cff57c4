"""A small Telegram Bot API client: JSON calls with timeouts and bounded retries.

Plain aiohttp instead of aiogram (which Rasa's stock connector pins and which
crashed on update kinds it did not model): we call five methods, and what
matters is how failures behave, so that is spelled out here:
- 429 Too Many Requests: wait `parameters.retry_after` seconds (as Telegram
  asks), then retry; a wait longer than `max_retry_after` is not worth holding
  a patient's answer for, so the call fails instead;
- 5xx, timeouts and connection errors: retry with exponential back-off; but a
  sendMessage that timed out after it was sent may have arrived, so it is not
  sent again (`maybe_delivered`); a timeout before anything was sent (no
  connection could be made) is an ordinary retryable failure;
- any other error (400 bad request, 401 wrong token, 403 bot blocked by the
  user): fail at once, retrying cannot help;
- at most `max_attempts` attempts, so every call ends in bounded time.
The token is part of every URL, so URLs are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Dict, Optional, cast

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
NOT_IDEMPOTENT = ("sendMessage",)  # calling it again after a timeout may send a second message


class TelegramApiError(Exception):
    """A Bot API call that failed for good (after any retries)."""

    def __init__(self, method: str, status: int, description: str, retry_after: Optional[float] = None,
                 maybe_delivered: bool = False) -> None:
        super().__init__(f"Telegram {method} failed: {status} {description}")
        self.method, self.status, self.description, self.retry_after = method, status, description, retry_after
        self.maybe_delivered = maybe_delivered  # timed out after it was sent: Telegram may have it

    @property
    def retryable(self) -> bool:
        """Telegram did not take it and may later (rate limit, its own error, no connection)."""
        return not self.maybe_delivered and (self.status in (0, 429) or self.status >= 500)

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


async def _mark_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
    """aiohttp trace hook: the request's headers were written to Telegram's connection."""
    progress = context.trace_request_ctx
    if isinstance(progress, dict):
        progress["sent"] = True


class BotApi:
    """Calls https://api.telegram.org/bot<token>/<method> (or a configured base URL, e.g. a fake in tests)."""

    def __init__(self, token: str, base_url: str = DEFAULT_API_BASE, *, timeout_s: float = 10.0,
                 max_attempts: int = 4, backoff_s: float = 0.5, max_retry_after_s: float = 30.0) -> None:
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._session: Optional[aiohttp.ClientSession] = None

    def _url(self, method: str) -> str:
        return f"{self.base_url}/bot{self.token}/{method}"

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "<token>") if self.token else text

    async def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop (never at import or construction).
        if self._session is None or self._session.closed:
            tracing = aiohttp.TraceConfig()
            tracing.on_request_headers_sent.append(_mark_sent)  # type: ignore[arg-type]  # aiohttp's stub is wrong
            self._session = aiohttp.ClientSession(timeout=self.timeout, trace_configs=[tracing])
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """The method's `result`, or TelegramApiError once retrying is pointless or exhausted."""
        last_error: TelegramApiError | None = None
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None
            try:
                return await self._attempt(method, params or {})
            except TelegramApiError as exc:
                last_error = exc
                wait = self._retry_wait(exc, attempt)
            if wait is None or attempt == self.max_attempts:
                break
            logger.warning("Telegram %s: %s %s; retrying in %.1fs (attempt %d of %d)", method,
                           last_error.status, last_error.description, wait, attempt + 1, self.max_attempts)
            await asyncio.sleep(wait)
        assert last_error is not None
        raise last_error

    def _retry_wait(self, error: TelegramApiError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when retrying cannot help."""
        if error.status == 429:
            retry_after = error.retry_after if error.retry_after is not None else self.backoff_s * 2 ** (attempt - 1)
            return retry_after if retry_after <= self.max_retry_after_s else None
        if error.maybe_delivered and error.method in NOT_IDEMPOTENT:
            return None  # sending it again could deliver it twice
        if error.status >= 500 or error.status == 0:  # 0: timeout or connection error
            return self.backoff_s * 2 ** (attempt - 1)
        return None

    async def _attempt(self, method: str, params: Dict[str, Any]) -> Any:
        session = await self._get_session()
        progress: Dict[str, bool] = {"sent": False}  # set by _mark_sent once the request left for Telegram
        try:
            async with session.post(self._url(method), json=params, trace_request_ctx=progress) as response:
                status = response.status
                raw = await response.read()
        except asyncio.TimeoutError:
            # Only a request that was sent may have reached Telegram. A connect timeout (Telegram
            # unreachable, a firewall dropping packets) never left here: it is retried, not given up.
            sent = progress["sent"]
            raise TelegramApiError(method, 0, "timed out" if sent else "connection timed out",
                                   maybe_delivered=sent) from None
        except aiohttp.ClientError as exc:
            raise TelegramApiError(method, 0, self._scrub(f"{type(exc).__name__}: {exc}")) from None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise TelegramApiError(method, status if status >= 400 else 502, "the answer was not Bot API JSON")
        if body.get("ok") is True and status < 400:
            return body.get("result")
        parameters = cast(Dict[str, Any], body.get("parameters") if isinstance(body.get("parameters"), dict) else {})
        retry_after = parameters.get("retry_after")
        code = cast(int, body.get("error_code") if isinstance(body.get("error_code"), int) else status)
        raise TelegramApiError(
            method, code if code >= 400 else 500, self._scrub(str(body.get("description") or "no description")),
            float(retry_after) if isinstance(retry_after, (int, float)) else None,
        )
