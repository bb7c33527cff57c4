"""Staff alerts: the clinic learns at once when a patient reports a warning sign or asks for a person.

Until now the assistant gave the phone number and stopped there: nobody at the
clinic knew that a patient wrote "my face is swollen and hot and I have a fever"
at 9 pm. Now each such turn queues an alert, sent to the channels the clinic
configured (a staff Telegram chat, e-mail over SMTP), saying what happened, on
which channel, when, the patient's words, and a link to the staff console.

- The patient's reply never waits: the alert is written to a table of the
  conversation store (`staff_alerts`) and a background loop sends it.
- Sending is retried with back-off (10 s doubling to 10 minutes) for a day;
  an alert that still fails is logged as an error and shown as failed in the
  console (console/, "Urgent and hand-offs").
- One alert per conversation and kind within ALERT_DEDUPE_MINUTES: a patient
  writing three worried messages in a row is one alert, not three.
- Rows are claimed before sending, so several instances never send one twice.
- Nothing configured: a warning at start-up; the assistant works as before.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Dict, List, Optional

import sqlalchemy as sa

from clinic.settings import Settings

logger = logging.getLogger(__name__)

URGENT, PERSON, CALLBACK = "urgent", "person", "callback"
PENDING, SENT, FAILED, OFF = "pending", "sent", "failed", "off"
EXPIRE_S = 24 * 3600
FIRST_RETRY_S, MAX_RETRY_S = 10.0, 600.0
CLAIM_S = 60.0
POLL_S = 1.0
SMTP_TIMEOUT_S = 15.0
TITLES = {URGENT: "URGENT: a patient reports warning signs", PERSON: "A patient asks for a person",
          CALLBACK: "A patient asks to be called back"}

metadata = sa.MetaData()
table = sa.Table(
    "staff_alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(255), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("words", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("telegram", sa.String(16), nullable=False),
    sa.Column("email", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_by", sa.String(32)),
    sa.Column("claimed_until", sa.Float),
)


def configured_channels(settings: Settings) -> List[str]:
    found = []
    if settings.alert_telegram_chat and settings.telegram_token:
        found.append("telegram")
    if settings.alert_email_to and settings.smtp_host:
        found.append("email")
    return found


def alert_text(row: Any, link: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.created_at))
    said = f"Name, phone, preferred time: {row.words}" if row.kind == CALLBACK else f'Their words: "{row.words}"'
    return f"{TITLES.get(row.kind, row.kind)}\nChannel: {row.channel}\nWhen: {when}\n{said}\nTranscript: {link}"


class Alerts:
    """The queue and the sender; one per process (`alerts()`), created at first use, never at import."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channels = configured_channels(settings)
        self.instance = uuid.uuid4().hex[:12]
        parsed = sa.engine.make_url(settings.conversations_url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.engine = sa.create_engine(parsed)
        metadata.create_all(self.engine)
        self._task: Optional[asyncio.Task] = None
        self._api: Any = None

    # --- queueing (called for a patient's turn: quick, never raises) ------------------------------------

    def notify(self, conversation_id: str, kind: str, channel: str, words: str) -> Optional[int]:
        """Queues an alert unless one of this kind was queued for the conversation within the window."""
        if not self.channels:
            return None
        now = time.time()
        window = self.settings.alert_dedupe_minutes * 60
        with self.engine.begin() as conn:
            recent = conn.execute(sa.select(sa.func.count()).select_from(table).where(
                table.c.conversation_id == conversation_id, table.c.kind == kind,
                table.c.created_at > now - window)).scalar()
            if recent:
                return None
            result = conn.execute(table.insert().values(
                conversation_id=conversation_id, kind=kind, channel=channel, words=words[:2000], created_at=now,
                telegram=PENDING if "telegram" in self.channels else OFF,
                email=PENDING if "email" in self.channels else OFF, attempts=0, next_at=now))
            return int(result.inserted_primary_key[0])

    def forget(self, conversation_id: str) -> int:
        """The patient asked to delete their conversation: their words leave the alerts too."""
        with self.engine.begin() as conn:
            return int(conn.execute(table.delete().where(table.c.conversation_id == conversation_id)).rowcount or 0)

    # --- sending ---------------------------------------------------------------------------------------------

    def _due(self) -> List[Any]:
        now = time.time()
        with self.engine.begin() as conn:
            rows = list(conn.execute(sa.select(table).where(
                sa.or_(table.c.telegram == PENDING, table.c.email == PENDING), table.c.next_at <= now,
                sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)).order_by(table.c.id)))
            claimed = []
            for row in rows:
                done = conn.execute(table.update().where(table.c.id == row.id).where(
                    sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)).values(
                    claimed_by=self.instance, claimed_until=now + CLAIM_S))
                if done.rowcount:
                    claimed.append(row)
            return claimed

    def _transcript_link(self, conversation_id: str) -> str:
        base = self.settings.console_url.rstrip("/")
        with self.engine.connect() as conn:
            event_id = conn.execute(sa.text("SELECT max(id) FROM events WHERE sender_id = :s AND type_name = 'user'"),
                                    {"s": conversation_id}).scalar() if sa.inspect(self.engine).has_table(
                "events") else None
        return f"{base}/conversation/{event_id}" if event_id else f"{base}/urgent"

    async def _telegram(self, text: str) -> None:
        from channels.telegram.api import BotApi

        if self._api is None:
            self._api = BotApi(self.settings.telegram_token, self.settings.telegram_api_base)
        chat: Any = self.settings.alert_telegram_chat  # a numeric id, or @channelname
        await self._api.call("sendMessage", {"chat_id": int(chat) if chat.lstrip("-").isdigit() else chat,
                                             "text": text})

    def _email(self, subject: str, text: str) -> None:
        settings = self.settings
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, settings.smtp_from, settings.alert_email_to
        message.set_content(text)
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.smtp_ca_file or None))
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            smtp.send_message(message)

    async def _send(self, row: Any) -> None:
        loop = asyncio.get_running_loop()
        link = await loop.run_in_executor(None, self._transcript_link, row.conversation_id)
        text = alert_text(row, link)
        outcome: Dict[str, str] = {}
        errors = []
        if row.telegram == PENDING:
            try:
                await self._telegram(text)
                outcome["telegram"] = SENT
            except Exception as exc:  # any failure is retried
                errors.append(f"telegram: {type(exc).__name__}: {exc}")
        if row.email == PENDING:
            try:
                await loop.run_in_executor(None, self._email, TITLES.get(row.kind, row.kind), text)
                outcome["email"] = SENT
            except Exception as exc:  # any failure is retried
                errors.append(f"email: {type(exc).__name__}: {exc}")
        values: Dict[str, Any] = {**outcome, "claimed_by": None, "claimed_until": None,
                                  "attempts": row.attempts + 1, "last_error": "; ".join(errors) or None}
        if errors:
            if time.time() - row.created_at > EXPIRE_S:
                for name in ("telegram", "email"):
                    if getattr(row, name) == PENDING and name not in outcome:
                        values[name] = FAILED
                logger.error("A staff alert (%s, conversation alert #%d) could not be sent for a day and was "
                             "given up: %s", row.kind, row.id, values["last_error"])
            else:
                wait = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** row.attempts)
                values["next_at"] = time.time() + wait
                logger.warning("A staff alert (#%d) failed (%s); trying again in %.0f s", row.id,
                               values["last_error"], wait)
        else:
            logger.info("Staff alert #%d (%s) sent", row.id, row.kind)

        def save() -> None:
            with self.engine.begin() as conn:
                conn.execute(table.update().where(table.c.id == row.id).values(**values))
        await loop.run_in_executor(None, save)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                for row in await loop.run_in_executor(None, self._due):
                    await self._send(row)
            except Exception:  # the database may be down: the next tick tries again
                logger.exception("Staff alerts could not be read")
            await asyncio.sleep(POLL_S)

    def start(self) -> None:
        """Starts the sending loop on the running event loop (once)."""
        if self._task is None and self.channels:
            self._task = asyncio.get_running_loop().create_task(self._run())


_alerts: Optional[Alerts] = None


def alerts(settings: Optional[Settings] = None) -> Alerts:
    global _alerts
    if _alerts is None:
        from clinic.settings import current

        _alerts = Alerts(settings or current())
        if not _alerts.channels:
            logger.warning("No staff alert channel is configured: urgent reports and requests for a person are "
                           "answered, but nobody at the clinic is told. Set ALERT_TELEGRAM_CHAT (with "
                           "TELEGRAM_TOKEN) or ALERT_EMAIL_TO and SMTP_HOST (docs/alerts.md).")
        else:
            logger.info("Staff alerts go to: %s", ", ".join(_alerts.channels))
    return _alerts


def status_rows(engine: Any, limit: int = 200) -> List[Dict[str, Any]]:
    """For the console: the newest alerts with their outcome."""
    if not sa.inspect(engine).has_table("staff_alerts"):
        return []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]
