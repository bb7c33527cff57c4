"""Staff alerts (ops/alerts.py) with real parts: the Rasa stack, a local fake Bot API for the staff chat,
and a local SMTP server with STARTTLS and a password (aiosmtpd), started by the test."""

from __future__ import annotations

import logging
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from clinic.settings import Settings
from devtools.harness.fake_telegram import FakeTelegram
from devtools.harness.servers import Stack, free_port, new_sender, running, store_stack
from ops import alerts as alerts_module

pytestmark = pytest.mark.servers

TOKEN = "7000004:alerts-test-token"
STAFF_CHAT = -1001234567890
SMTP_USER, SMTP_PASSWORD = "alerts@clinic.example", "smtp-secret-123"
URGENT_WORDS = "my face is swollen and hot and I have a fever"
ALERT_HELD_S = 6.0  # how long the fake staff chat holds an alert before accepting it
QUICK_S = 15.0  # "within seconds": the bound is the point of that test (the sending loop polls every second)


@dataclass
class Inbox:
    """Whatever the SMTP server accepted."""

    messages: List[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 OK"


def authenticate(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")], check=True,
                   capture_output=True)
    return folder


class Smtp:
    """A real SMTP server on loopback that requires STARTTLS and a password; can be stopped and started."""

    def __init__(self, certificate: Path) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
        self.controller: Controller | None = None

    def start(self) -> Smtp:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, tls_context=self.context,
                                     require_starttls=True, authenticator=authenticate, auth_required=True)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with running(FakeTelegram(TOKEN, username="AlertsBot")) as server:
        yield server


@pytest.fixture(scope="module")
def smtp(certificate: Path) -> Iterator[Smtp]:
    server = Smtp(certificate)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake: FakeTelegram, smtp: Smtp, certificate: Path
          ) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("alerts")
    with running(store_stack(root, {"DATA_DIR": str(root / "data")}, TELEGRAM_TOKEN=TOKEN, TELEGRAM_API_BASE=fake.url,
                             ALERT_TELEGRAM_CHAT=str(STAFF_CHAT), ALERT_EMAIL_TO="nurse@clinic.example",
                             SMTP_HOST="localhost", SMTP_PORT=str(smtp.port), SMTP_USER=SMTP_USER,
                             SMTP_PASSWORD=SMTP_PASSWORD, SMTP_CA_FILE=str(certificate / "cert.pem"),
                             CONSOLE_URL="https://console.clinic.example", ALERT_DEDUPE_MINUTES="30")) as stack:
        yield stack


def staff_texts(fake: FakeTelegram) -> List[str]:
    return fake.sent_texts(STAFF_CHAT)


def store_of(stack: Stack) -> str:
    return Settings.from_env({"DATA_DIR": stack.env["DATA_DIR"]}).conversations_url


def queued(stack: Stack, sender: str) -> List[Dict[str, Any]]:
    """The staff alerts the assistant queued for this patient's conversation (ops/alerts.py's table)."""
    engine = sa.create_engine(store_of(stack))
    try:
        conversation = stack.conversation_id(sender)
        rows = alerts_module.status_rows(engine, limit=10_000)
        return [row for row in rows if row["conversation_id"] == conversation]
    finally:
        engine.dispose()


def mails_with(smtp: Smtp, words: str) -> List[Any]:
    found = [message_from_bytes(raw) for raw in smtp.inbox.messages]
    return [mail for mail in found if words in mail.get_payload(decode=True).decode()]


def test_the_patient_is_answered_while_the_staff_alert_is_still_pending(stack: Stack, fake: FakeTelegram,
                                                                         smtp: Smtp) -> None:
    """Ordering, not timing: the staff chat takes its time to accept the alert (the fake Bot API holds the
    sendMessage call); the patient's reply has come back before that call is answered, and the alert is queued
    (pending) at that moment. Sending the alert inside the patient's turn would record the call first."""
    if smtp.controller is None:
        smtp.start()
    fake.fail_next("sendMessage", 200, delay_s=ALERT_HELD_S)  # accepted, but only after ALERT_HELD_S
    sender = new_sender()
    before = len(staff_texts(fake))
    reply = stack.say(sender, URGENT_WORDS)
    answered_at = time.monotonic()
    assert reply and reply[-1]["text"]
    assert len(staff_texts(fake)) == before  # the staff chat has not taken the alert yet
    [alert] = fake.wait_for(lambda: queued(stack, sender), timeout=10, what="the alert queued")
    assert alert["kind"] == "urgent" and alert["telegram"] == alerts_module.PENDING  # still pending
    fake.wait_for(lambda: staff_texts(fake)[before:], timeout=60, what="the held staff chat alert")
    [call] = fake.calls("sendMessage", STAFF_CHAT, ok_only=True)[before:]
    assert URGENT_WORDS in call.params["text"]
    assert call.at > answered_at  # the staff chat accepted the alert after the patient had the answer
    fake.wait_for(lambda: queued(stack, sender)[0]["telegram"] == alerts_module.SENT, timeout=30,
                  what="the alert marked sent")


def test_an_urgent_alert_is_retried_until_the_staff_chat_and_mail_take_it(stack: Stack, fake: FakeTelegram,
                                                                          smtp: Smtp) -> None:
    smtp.stop()  # the mail server is down at first: the alert waits and is retried
    fake.fail_next("sendMessage", 502, times=3)  # the Bot API fails the first tries too
    sender = new_sender()
    before, mails_before = len(fake.calls("sendMessage", STAFF_CHAT)), len(mails_with(smtp, URGENT_WORDS))
    reply = stack.say(sender, URGENT_WORDS)
    assert reply and reply[-1]["text"]  # the patient is answered while no alert could be sent yet
    fake.wait_for(lambda: [c for c in fake.calls("sendMessage", STAFF_CHAT)[before:] if c.status == 200],
                  timeout=90, what="the staff chat alert")
    calls = fake.calls("sendMessage", STAFF_CHAT)[before:]
    assert [c.status for c in calls] == [502, 502, 502, 200]  # three failed tries, then the alert, once
    alert = calls[-1].params["text"]
    assert alert.startswith("URGENT") and URGENT_WORDS in alert and "Channel: rest" in alert
    assert "https://console.clinic.example/conversation/" in alert
    assert queued(stack, sender)[0]["email"] == alerts_module.PENDING  # the mail is still being retried
    smtp.start()
    [mail] = fake.wait_for(lambda: mails_with(smtp, URGENT_WORDS)[mails_before:], timeout=90,
                           what="the alert by mail")
    assert mail["To"] == "nurse@clinic.example" and mail["Subject"].startswith("URGENT")
    fake.wait_for(lambda: queued(stack, sender)[0]["email"] == alerts_module.SENT, timeout=30, what="mail marked sent")
    [row] = queued(stack, sender)
    assert row["telegram"] == alerts_module.SENT and row["attempts"] >= 2


def test_one_alert_per_conversation_within_the_window(stack: Stack, fake: FakeTelegram, smtp: Smtp) -> None:
    """Three worried messages in a row are one alert, on each channel: one row queued, one chat message, one mail."""
    if smtp.controller is None:
        smtp.start()
    sender = new_sender()
    before = len(staff_texts(fake))
    stack.say(sender, "there is pus coming out of my cheek")
    stack.say(sender, "and now I have a fever too")
    stack.say(sender, "my face is swollen and hot")
    fake.wait_for(lambda: queued(stack, sender), timeout=10, what="the alert queued")
    fake.wait_for(lambda: queued(stack, sender)[0]["email"] == alerts_module.SENT
                  and queued(stack, sender)[0]["telegram"] == alerts_module.SENT, timeout=60, what="the alert sent")
    assert len(queued(stack, sender)) == 1  # the second and third were deduplicated when they were answered
    assert len([t for t in staff_texts(fake)[before:] if "pus coming out of my cheek" in t]) == 1
    assert [t for t in staff_texts(fake)[before:] if "fever too" in t or "swollen and hot\"" in t] == []
    assert len(mails_with(smtp, "pus coming out of my cheek")) == 1
    assert mails_with(smtp, "and now I have a fever too") == []


def test_a_request_for_a_person_alerts_the_staff(stack: Stack, fake: FakeTelegram) -> None:
    before = len(staff_texts(fake))
    stack.say(new_sender(), "can I talk to a real person please")
    alert = fake.wait_for(lambda: staff_texts(fake)[before:], timeout=60, what="the hand-off alert")[0]
    assert alert.startswith("A patient asks for a person")


def test_without_an_alert_channel_the_start_up_warns_and_the_assistant_works(tmp_path: Path) -> None:
    with running(store_stack(tmp_path, {"DATA_DIR": str(tmp_path / "data")})) as stack:
        assert stack.say(new_sender(), URGENT_WORDS)[-1]["text"]
    assert "No staff alert channel is configured" in (tmp_path / "rasa.log").read_text()


def test_with_only_the_two_documented_variables_an_urgent_report_reaches_the_staff_chat(
        tmp_path: Path, fake: FakeTelegram) -> None:
    """docs/alerts.md: TELEGRAM_TOKEN and ALERT_TELEGRAM_CHAT are all a clinic sets (the API base points the bot at
    the local fake). The staff message arrives within seconds of the report."""
    chat = -1009876543210
    with running(store_stack(tmp_path, {"DATA_DIR": str(tmp_path / "data")}, TELEGRAM_TOKEN=TOKEN,
                             ALERT_TELEGRAM_CHAT=str(chat), TELEGRAM_API_BASE=fake.url)) as small:
        assert small.say(new_sender(), URGENT_WORDS)[-1]["text"]
        [alert] = fake.wait_for(lambda: fake.sent_texts(chat), timeout=QUICK_S, what="the staff chat alert")
    assert alert.startswith("URGENT") and URGENT_WORDS in alert and "/conversation/" in alert
    assert "Staff alerts go to: telegram" in (tmp_path / "rasa.log").read_text()


def test_an_alert_never_sent_is_kept_as_failed_and_logged_loudly(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The give-up path, on the table itself: after a day of failures the alert is marked failed (the console
    lists it) and an error is logged, without the patient's words."""
    import asyncio

    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "ALERT_EMAIL_TO": "n@clinic.example",
                                  "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port())})
    queue = alerts_module.Alerts(settings)
    alert_id = queue.notify("web:abc", alerts_module.URGENT, "web", "I have a fever")
    assert alert_id is not None
    with queue.engine.begin() as conn:  # a day old already
        conn.execute(alerts_module.table.update().values(created_at=time.time() - 2 * 86400))
    [row] = queue._due()
    with caplog.at_level(logging.WARNING, logger="ops.alerts"):
        asyncio.run(queue._send(row))
    [saved] = alerts_module.status_rows(queue.engine)
    assert saved["email"] == alerts_module.FAILED and "email:" in saved["last_error"]
    [loud] = [r for r in caplog.records if r.name == "ops.alerts"]
    assert loud.levelno == logging.ERROR and "could not be sent for a day and was given up" in loud.getMessage()
    assert "fever" not in loud.getMessage()


def test_a_callback_request_alerts_the_staff_with_what_they_need_to_call(stack: Stack, fake: FakeTelegram) -> None:
    sender = new_sender()
    before = len(staff_texts(fake))
    for text in ("could someone call me back please", "Maria Lopez", "+1 (555) 010-0123", "weekday mornings", "yes"):
        stack.say(sender, text)
    alert = fake.wait_for(lambda: [t for t in staff_texts(fake)[before:] if "called back" in t], timeout=60,
                          what="the callback alert")[0]
    assert "Maria Lopez, +1 (555) 010-0123, weekday mornings" in alert
