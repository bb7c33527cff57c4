"""The Bot API client and the webhook registration, against the local fake Bot API (no Rasa needed)."""

from __future__ import annotations

import logging
import time
from typing import Iterator

import pytest

from channels.telegram.api import BotApi, TelegramApiError
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
