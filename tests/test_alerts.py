"""Staff alerts (ops/alerts.py) with real parts: the Rasa stack, a local fake Bot API for the staff chat,
and a local SMTP server with STARTTLS and a password (aiosmtpd), started by the test."""

from __future__ import annotations

import ssl
import subprocess
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Iterator, List

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devtools.harness.fake_telegram import FakeTelegram
from devtools.harness.servers import Stack, free_port, new_sender, running, store_stack

pytestmark = pytest.mark.servers

TOKEN = "7000004:alerts-test-token"
STAFF_CHAT = -1001234567890
SMTP_USER, SMTP_PASSWORD = "alerts@clinic.example", "smtp-secret-123"
URGENT_WORDS = "my face is swollen and hot and I have a fever"


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


def test_an_urgent_report_alerts_the_staff_chat_and_mail_without_delaying_the_patient(
        stack: Stack, fake: FakeTelegram, smtp: Smtp) -> None:
    smtp.stop()  # the mail server is down at first: the alert waits and is retried
    fake.fail_next("sendMessage", 502, times=3)  # the Bot API fails the first tries too
    sender = new_sender()
    before = len(staff_texts(fake))
    reply = stack.say(sender, URGENT_WORDS)
    answered_at = time.monotonic()
    assert reply and reply[-1]["text"]  # the patient is answered while no alert could be sent yet
    assert len(staff_texts(fake)) == before
    alert = fake.wait_for(lambda: staff_texts(fake)[before:], timeout=90, what="the staff chat alert")[0]
    assert alert.startswith("URGENT") and URGENT_WORDS in alert and "Channel: rest" in alert
    assert "https://console.clinic.example/conversation/" in alert
    assert time.monotonic() > answered_at  # ordering: the alert came after the reply, not before it
    smtp.start()
    deadline = time.monotonic() + 90
    while not smtp.inbox.messages and time.monotonic() < deadline:
        time.sleep(0.5)
    [raw] = smtp.inbox.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "nurse@clinic.example" and mail["Subject"].startswith("URGENT")
    assert URGENT_WORDS in mail.get_payload(decode=True).decode()


def test_one_alert_per_conversation_within_the_window(stack: Stack, fake: FakeTelegram) -> None:
    sender = new_sender()
    before = len(staff_texts(fake))
    stack.say(sender, "there is pus coming out of my cheek")
    stack.say(sender, "and now I have a fever too")
    fake.wait_for(lambda: len(staff_texts(fake)) > before, timeout=60, what="the first alert")
    stack.say(new_sender(), "hello")  # a barrier: an ordinary message alerts nobody
    time.sleep(3)  # the sending loop runs every second
    assert len([t for t in staff_texts(fake)[before:] if t.startswith("URGENT")]) == 1


def test_a_request_for_a_person_alerts_the_staff(stack: Stack, fake: FakeTelegram) -> None:
    before = len(staff_texts(fake))
    stack.say(new_sender(), "can I talk to a real person please")
    alert = fake.wait_for(lambda: staff_texts(fake)[before:], timeout=60, what="the hand-off alert")[0]
    assert alert.startswith("A patient asks for a person")


def test_without_an_alert_channel_the_start_up_warns_and_the_assistant_works(tmp_path: Path) -> None:
    with running(store_stack(tmp_path, {"DATA_DIR": str(tmp_path / "data")})) as stack:
        assert stack.say(new_sender(), URGENT_WORDS)[-1]["text"]
    assert "No staff alert channel is configured" in (tmp_path / "rasa.log").read_text()


def test_an_alert_never_sent_is_kept_as_failed(tmp_path: Path) -> None:
    """The give-up path, on the table itself: after a day of failures the alert is marked failed (the console
    lists it)."""
    import asyncio

    from clinic.settings import Settings
    from ops import alerts as alerts_module

    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "ALERT_EMAIL_TO": "n@clinic.example",
                                  "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port())})
    queue = alerts_module.Alerts(settings)
    alert_id = queue.notify("web:abc", alerts_module.URGENT, "web", "I have a fever")
    assert alert_id is not None
    with queue.engine.begin() as conn:  # a day old already
        conn.execute(alerts_module.table.update().values(created_at=time.time() - 2 * 86400))
    [row] = queue._due()
    asyncio.run(queue._send(row))
    [saved] = alerts_module.status_rows(queue.engine)
    assert saved["email"] == alerts_module.FAILED and "email:" in saved["last_error"]


def test_a_callback_request_alerts_the_staff_with_what_they_need_to_call(stack: Stack, fake: FakeTelegram) -> None:
    sender = new_sender()
    before = len(staff_texts(fake))
    for text in ("could someone call me back please", "Maria Lopez", "+1 (555) 010-0123", "weekday mornings", "yes"):
        stack.say(sender, text)
    alert = fake.wait_for(lambda: [t for t in staff_texts(fake)[before:] if "called back" in t], timeout=60,
                          what="the callback alert")[0]
    assert "Maria Lopez, +1 (555) 010-0123, weekday mornings" in alert
