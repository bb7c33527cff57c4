"""The Bot API client and the webhook registration, against the local fake Bot API (no Rasa needed)."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from channels.telegram.api import BotApi, TelegramApiError
from channels.telegram.outbox import QUEUED, SENT, Outbox
from channels.telegram.outbox import table as outbox_table
from channels.telegram.setup import ALLOWED_UPDATES, TelegramConfig, derived_secret, register_webhook, webhook_url
from clinic.settings import Settings
from devtools.harness.fake_telegram import FakeTelegram
from devtools.harness.servers import free_port, running

TOKEN = "7000001:unit-test-token"


def from_env(env: dict) -> TelegramConfig | None:
    return TelegramConfig.from_settings(Settings.from_env(env))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN)) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake: FakeTelegram) -> None:
    fake.reset()


def api_for(fake: FakeTelegram, token: str = TOKEN, **options) -> BotApi:
    return BotApi(token, fake.url, **{"backoff_s": 0.05, **options})


@pytest.mark.asyncio
async def test_a_429_waits_retry_after_then_succeeds_once(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    api = api_for(fake)
    started = time.monotonic()
    try:
        result = await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    finally:
        await api.close()
    assert result["text"] == "hi"
    assert [c.status for c in fake.calls("sendMessage")] == [429, 200]
    assert time.monotonic() - started >= 0.9  # it honoured retry_after, not its own short back-off


@pytest.mark.asyncio
async def test_server_errors_are_retried_with_back_off(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 502, times=2)
    api = api_for(fake)
    try:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    finally:
        await api.close()
    assert [c.status for c in fake.calls("sendMessage")] == [502, 502, 200]


@pytest.mark.asyncio
async def test_attempts_are_bounded(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 500, times=10)
    api = api_for(fake, max_attempts=3)
    with pytest.raises(TelegramApiError) as raised:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    await api.close()
    assert raised.value.status == 500 and len(fake.calls("sendMessage")) == 3


@pytest.mark.asyncio
async def test_a_retry_after_too_long_to_wait_for_fails_at_once(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=3600)
    api = api_for(fake)
    with pytest.raises(TelegramApiError) as raised:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    await api.close()
    assert raised.value.status == 429 and raised.value.retry_after == 3600
    assert len(fake.calls("sendMessage")) == 1


@pytest.mark.parametrize("status", [400, 403])
@pytest.mark.asyncio
async def test_client_errors_are_not_retried(fake: FakeTelegram, status: int) -> None:
    fake.fail_next("sendMessage", status, description="Forbidden: bot was blocked by the user")
    api = api_for(fake)
    with pytest.raises(TelegramApiError) as raised:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    await api.close()
    assert raised.value.status == status and "blocked" in raised.value.description
    assert len(fake.calls("sendMessage")) == 1


@pytest.mark.asyncio
async def test_timeouts_and_refused_connections_end_in_bounded_time(fake: FakeTelegram) -> None:
    fake.fail_next("getMe", 500, times=2, delay_s=2)
    api = api_for(fake, timeout_s=0.3, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(TelegramApiError) as raised:
        await api.call("getMe")
    await api.close()
    assert raised.value.status == 0 and time.monotonic() - started < 5

    closed = BotApi(TOKEN, f"http://127.0.0.1:{free_port()}", max_attempts=2, backoff_s=0.05)
    with pytest.raises(TelegramApiError) as raised:
        await closed.call("getMe")
    await closed.close()
    assert raised.value.status == 0 and TOKEN not in str(raised.value)


@pytest.mark.asyncio
async def test_registration_sets_the_webhook_with_the_secret(fake: FakeTelegram) -> None:
    config = from_env({
        "TELEGRAM_TOKEN": TOKEN, "TELEGRAM_API_BASE": fake.url, "TELEGRAM_SECRET_TOKEN": "s3cret_-X",
        "TELEGRAM_WEBHOOK_URL": "https://chat.example.com"})
    api = api_for(fake)
    me = await register_webhook(api, config)
    await api.close()
    assert me["username"] == fake.username
    [call] = fake.calls("setWebhook")
    assert call.params == {"url": "https://chat.example.com/webhooks/telegram/webhook", "secret_token": "s3cret_-X",
                           "allowed_updates": list(ALLOWED_UPDATES), "drop_pending_updates": False}


@pytest.mark.asyncio
async def test_a_wrong_token_is_logged_clearly_and_nothing_is_registered(
        fake: FakeTelegram, caplog: pytest.LogCaptureFixture) -> None:
    config = from_env({"TELEGRAM_TOKEN": "123:wrong", "TELEGRAM_API_BASE": fake.url,
                                              "TELEGRAM_WEBHOOK_URL": "https://chat.example.com"})
    api = api_for(fake, token="123:wrong")
    with caplog.at_level(logging.ERROR, logger="channels.telegram.setup"):
        assert await register_webhook(api, config) is None
    await api.close()
    assert "rejected TELEGRAM_TOKEN (401 Unauthorized)" in caplog.text
    assert "123:wrong" not in caplog.text
    assert fake.calls("setWebhook") == [] and [c.status for c in fake.calls("getMe")] == [401]


def test_configuration_from_the_environment() -> None:
    assert from_env({}) is None
    assert from_env({"TELEGRAM_TOKEN": "  "}) is None
    assert from_env({"TELEGRAM_TOKEN": "1:a", "TELEGRAM_SECRET_TOKEN": "no spaces!"}) is None
    config = from_env({"TELEGRAM_TOKEN": "42:abc", "TELEGRAM_BOT_USERNAME": "@ClinicBot"})
    assert config.secret == derived_secret("42:abc") and config.secret != derived_secret("43:abc")
    assert config.bot_username == "ClinicBot" and config.bot_id == 42
    assert config.api_base == "https://api.telegram.org"
    assert webhook_url("https://x.example/hook") == "https://x.example/hook"


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    """A port whose connection attempts hang unanswered, as behind a firewall that drops packets.

    A listening socket that never accepts, its backlog already full: the kernel drops further SYNs.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: List[socket.socket] = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        with pytest.raises(OSError):  # the port really does hang (else the test below proves nothing)
            probe.connect(("127.0.0.1", port))
    finally:
        probe.close()
    try:
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


@pytest.mark.asyncio
async def test_a_connect_timeout_is_retryable_not_maybe_delivered(blackholed_port: int) -> None:
    api = BotApi(TOKEN, f"http://127.0.0.1:{blackholed_port}", timeout_s=0.3, max_attempts=2, backoff_s=0.05)
    with pytest.raises(TelegramApiError) as raised:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    await api.close()
    assert raised.value.status == 0 and not raised.value.maybe_delivered and raised.value.retryable


@pytest.mark.asyncio
async def test_a_timeout_after_the_request_was_sent_may_have_been_delivered(fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 200, delay_s=1.5)  # accepted, answered too late
    api = api_for(fake, timeout_s=0.3)
    with pytest.raises(TelegramApiError) as raised:
        await api.call("sendMessage", {"chat_id": 5, "text": "hi"})
    await api.close()
    assert raised.value.maybe_delivered and not raised.value.retryable
    fake.wait_for(lambda: fake.calls("sendMessage"), timeout=10, what="the slow call")
    assert len(fake.calls("sendMessage")) == 1  # never sent a second time


@pytest.mark.asyncio
async def test_the_outbox_keeps_a_reply_while_telegram_is_unreachable_then_delivers_it_once(
        fake: FakeTelegram, blackholed_port: int, tmp_path: Path) -> None:
    api = BotApi(TOKEN, f"http://127.0.0.1:{blackholed_port}", timeout_s=0.3, max_attempts=2, backoff_s=0.05)
    outbox = Outbox(f"sqlite:///{tmp_path / 'conversations.db'}", api)
    try:
        assert await outbox.send(77, [{"chat_id": 77, "text": "your answer"}]) == QUEUED
        assert len(outbox._pending("77")) == 1  # kept, not given up as "maybe delivered"
        api.base_url = fake.url  # Telegram reachable again
        with outbox.engine.begin() as conn:  # due now, rather than after the back-off
            conn.execute(outbox_table.update().values(next_at=0))
        assert await outbox.flush_chat("77") == SENT
        assert await outbox.flush_chat("77") == SENT and outbox._pending("77") == []
    finally:
        await outbox.stop()
        await api.close()
    assert fake.sent_texts(77) == ["your answer"]
