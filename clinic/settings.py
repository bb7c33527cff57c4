"""Every environment variable the assistant reads, defaulted and validated in one place.

Why one place: a clinic configures the assistant only through the environment
(secrets never live in the repository), and a typo in a variable should stop
start-up with a sentence naming the variable, not surface later as a crash in
whichever process happened to parse it. Each process calls `current()` once
(cached); tests build their own `Settings.from_env({...})`.

The README's configuration table is generated from VARIABLES
(`python -m clinic.settings --markdown`) and a test keeps the two equal.
`python -m clinic.settings --shell` prints the values for ops/run.sh.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shlex
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

PROJECT_DIR = Path(__file__).resolve().parent.parent

SQL_SCHEMES = ("postgresql", "postgresql+psycopg2", "sqlite")
REDIS_SCHEMES = ("redis", "rediss")
SQLITE_FILE = "conversations.db"
MIN_SECRET_CHARS = 16
INTEGRATION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")  # \Z: "$" would accept a final newline
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class ConfigError(ValueError):
    """A variable that would make a process fail later, caught before it starts."""

    safe_to_log = True  # names a variable, never a patient's words (clinic/private_logs.py)


@dataclass(frozen=True)
class Variable:
    """One environment variable: its README row, and how it is read."""

    names: Tuple[str, ...]
    default: str  # as the README shows it
    help: str


VARIABLES: Tuple[Variable, ...] = (
    Variable(("RASA_PORT", "ACTIONS_PORT"), "5005, 5055", "ports of the Rasa server and the action server"),
    Variable(("FACTS_DIR", "CLINIC_SETTINGS"), "`data/facts`, `data/clinic.yml`",
             "where the fact store and clinic details live"),
    Variable(("MAX_MESSAGE_CHARS",), "1000", "longest message accepted (longer gets a 413)"),
    Variable(("PYTHON",), "found automatically", "the Python 3.10 to build `.venv` with (read by ops/bootstrap.sh)"),
    Variable(("ALLOWED_ORIGINS",), "the assistant's own address",
             "websites allowed to embed the widget (comma-separated origins)"),
    Variable(("TELEGRAM_TOKEN", "TELEGRAM_BOT_USERNAME", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_SECRET_TOKEN"),
             "unset (Telegram off)", "the Telegram channel ([docs/telegram.md](docs/telegram.md))"),
    Variable(("TELEGRAM_API_BASE",), "`https://api.telegram.org`",
             "the Bot API address (tests point it at a local fake)"),
    Variable(("DATA_DIR",), "`var/data`", "where the SQLite conversation store lives"),
    Variable(("RUN_DIR",), "`var/run`", "where `make run` writes its logs and the generated endpoints file"),
    Variable(("TRACKER_STORE_URL", "LOCK_STORE_URL", "ACTION_SERVER_URL"),
             "SQLite, in-memory lock, local action server",
             "production mode: PostgreSQL, Redis, remote action servers"),
    Variable(("ACTION_TIMEOUT_S",), "10", "longest wait for the action server before the apology"),
    Variable(("TICKET_LOCK_LIFETIME",), "60", "Rasa's own: seconds a conversation's lock lives (keep it well above "
             "`ACTION_TIMEOUT_S`)"),
    Variable(("TRACKER_CACHE_SIZE",), "256", "conversations each Rasa instance keeps in memory between messages "
             "(0: off); they are still stored first"),
    Variable(("RETENTION_DAYS", "RETENTION_EVERY_HOURS"), "30, 24",
             "delete every message older than this, and logs too; how often `make run` purges (0: never)"),
    Variable(("CONVERSATION_SECRET",), "generated once into `DATA_DIR`",
             "signs the conversation ids the server gives the widget and REST clients; set the same value on "
             "every instance"),
    Variable(("REST_API_KEYS",), "unset (none)", "integrations allowed to choose their own sender ids over REST, "
             "as `name:key` pairs, comma-separated ([docs/security.md](docs/security.md))"),
    Variable(("RATE_LIMIT_PER_SENDER", "RATE_LIMIT_PER_ADDRESS"), "20, 60",
             "messages a minute one conversation, or one client address without an API key, may send (0: no "
             "limit); more get a polite 429"),
    Variable(("TRUSTED_PROXIES",), "unset (none)",
             "addresses or networks (CIDR) of the HTTPS proxies in front of the Rasa server, comma-separated: the "
             "per-address limit then counts the client each of them names in `X-Forwarded-For` "
             "([docs/security.md](docs/security.md))"),
    Variable(("ACTIONS_HOST", "ACTION_SERVER_TOKEN"), "127.0.0.1, unset",
             "where the action server listens; the shared token Rasa must send it (required when not on loopback)"),
    Variable(("LOG_LEVEL",), "INFO", "DEBUG also logs patients' words and whole requests: for a developer's machine "
             "only"),
    # The staff console (console/, docs/console.md)
    Variable(("STAFF_PASSWORD", "STAFF_ACCOUNTS"), "unset (console off)",
             "turn the staff console on: one shared password (at least 12 characters; account `staff`) and/or named "
             "accounts as `name:hash` entries separated by spaces, each hash from `python -m console hash-password` "
             "([docs/console.md](docs/console.md))"),
    Variable(("CONSOLE_HOST", "CONSOLE_PORT"), "127.0.0.1, 5010", "where the staff console listens"),
    Variable(("CONSOLE_HTTPS",), "false", "`true` when staff reach the console through HTTPS (a reverse proxy): its "
             "cookie is then Secure; required when `CONSOLE_HOST` is not loopback"),
    Variable(("FACT_REVIEW_DAYS",), "365", "a fact last reviewed longer ago than this is listed as due for review"),
    Variable(("REVIEW_DIR",), "`data/review`", "where the console writes training proposals, and the reviewer's "
             "accepted examples that `make train` reads"),
    # Staff alerts (ops/alerts.py, docs/alerts.md)
    Variable(("ALERT_TELEGRAM_CHAT",), "unset", "a staff Telegram chat (its id, e.g. -1001234567890) told of every "
             "urgent report and request for a person; uses `TELEGRAM_TOKEN`'s bot"),
    Variable(("ALERT_EMAIL_TO", "SMTP_HOST", "SMTP_PORT"), "unset, unset, 587",
             "e-mail alerts: to whom, through which SMTP server"),
    Variable(("SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM"), "unset, unset, `ALERT_EMAIL_TO`",
             "the SMTP account, and the sender address"),
    Variable(("SMTP_STARTTLS", "SMTP_CA_FILE"), "true, the system's", "encrypt with STARTTLS (always, except on a "
             "trusted local relay), and the certificate authorities to trust"),
    Variable(("CONSOLE_URL",), "`http://localhost:CONSOLE_PORT`", "the staff console's address, for the links in "
             "alerts"),
    Variable(("ALERT_DEDUPE_MINUTES",), "30", "one alert per conversation and kind within this many minutes"),
)
NAMES = frozenset(name for variable in VARIABLES for name in variable.names)


def _text(env: Mapping[str, str], name: str) -> str:
    """A variable's value without surrounding blanks; unset and blank both read as ''."""
    return (env.get(name) or "").strip()


def _number(env: Mapping[str, str], name: str, default: float, convert: Callable[[str], float] = float,
            minimum: float = 0, strictly_above: bool = False, what: str = "a number") -> float:
    raw = _text(env, name)
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None
    if value < minimum or (strictly_above and value == minimum):
        bound = f"more than {minimum:g}" if strictly_above else f"at least {minimum:g}"
        raise ConfigError(f"{name}={raw!r}: must be {bound}")
    return value


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    """Relative paths are taken from the project folder, where every process runs."""
    raw = _text(env, name)
    path = Path(raw) if raw else default
    return path if path.is_absolute() else PROJECT_DIR / path


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = int(_number(env, name, default, int, minimum=1, what="a port number"))
    if port > 65535:
        raise ConfigError(f"{name}={port}: a port is at most 65535")
    return port


def _tracker_store_url(env: Mapping[str, str]) -> str:
    url = _text(env, "TRACKER_STORE_URL")
    if not url:
        return ""
    scheme = urlsplit(url).scheme
    if scheme == "postgres":
        raise ConfigError("TRACKER_STORE_URL: write postgresql://... (SQLAlchemy 1.4 rejects postgres://)")
    if scheme not in SQL_SCHEMES:
        raise ConfigError(f"TRACKER_STORE_URL: scheme '{scheme}' is not one of {', '.join(SQL_SCHEMES)}")
    return url


def _lock_store_url(env: Mapping[str, str]) -> str:
    url = _text(env, "LOCK_STORE_URL")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
        raise ConfigError("LOCK_STORE_URL: expected redis://[:password@]host:port/db (or rediss:// for TLS)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"LOCK_STORE_URL: {exc}") from None
    return url


def _http_url(env: Mapping[str, str], name: str, default: str, example: str) -> str:
    url = _text(env, name) or default
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{name}: expected {example}")
    return url


def _secret(env: Mapping[str, str], name: str) -> str:
    value = _text(env, name)
    if value and len(value) < MIN_SECRET_CHARS:
        raise ConfigError(f"{name} is too short to be a secret: use at least {MIN_SECRET_CHARS} random characters")
    return value


def _api_keys(env: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    keys: List[Tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in _text(env, "REST_API_KEYS").split(","))):
        name, _, key = item.partition(":")
        if not INTEGRATION_NAME.fullmatch(name) or len(key) < MIN_SECRET_CHARS:
            raise ConfigError(f"REST_API_KEYS: expected name:key pairs (name of letters, digits, - or _; key of at "
                              f"least {MIN_SECRET_CHARS} characters), not '{name}:…'")
        keys.append((name, key))
    if len({name for name, _ in keys}) != len(keys):
        raise ConfigError("REST_API_KEYS: each integration name may appear once")
    return tuple(keys)


def _networks(env: Mapping[str, str], name: str) -> Tuple[Network, ...]:
    """Comma- or blank-separated addresses and CIDR networks; a typo stops start-up rather than trusting nobody."""
    networks: List[Network] = []
    for item in _text(env, name).replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: '{item}' is not an IP address or network (such as 10.0.0.5 or "
                              "10.0.0.0/24)") from None
    return tuple(networks)


def _choice(env: Mapping[str, str], name: str, allowed: Tuple[str, ...], default: str) -> str:
    value = _text(env, name).upper() or default
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one process, parsed and checked."""

    rasa_port: int
    actions_port: int
    facts_dir: Path
    clinic_settings: Path
    max_message_chars: int
    allowed_origins: Tuple[str, ...]
    telegram_token: str
    telegram_bot_username: str
    telegram_webhook_url: str
    telegram_secret_token: str
    telegram_api_base: str
    data_dir: Path
    run_dir: Path
    tracker_store_url: str  # '' = the embedded SQLite file
    lock_store_url: str  # '' = Rasa's in-memory lock store
    action_server_url: str
    action_timeout_s: float
    ticket_lock_lifetime_s: float
    tracker_cache_size: Optional[int]  # None: not set, the store's own default
    retention_days: float
    retention_every_hours: float
    conversation_secret: str  # '' = the one generated into DATA_DIR (conversation_ids.py)
    rest_api_keys: Tuple[Tuple[str, str], ...]  # (integration name, key)
    rate_limit_per_sender: int
    rate_limit_per_address: int
    trusted_proxies: Tuple[Network, ...]  # () = the peer's address is the client's
    actions_host: str
    action_server_token: str
    log_level: str
    # the staff console
    staff_password: str  # '' = no shared password
    staff_accounts: Tuple[Tuple[str, str], ...]  # (name, Argon2 hash)
    console_host: str
    console_port: int
    console_https: bool
    fact_review_days: int
    review_dir: Path
    # staff alerts
    alert_telegram_chat: str
    alert_email_to: str
    smtp_host: str
    smtp_port: int
    smtp_user: str
    smtp_password: str
    smtp_from: str
    smtp_starttls: bool
    smtp_ca_file: str
    console_url: str
    alert_dedupe_minutes: float

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> Settings:
        env = os.environ if env is None else env
        prefixes = ("TELEGRAM_", "RETENTION_", "RATE_LIMIT_", "STAFF_", "CONSOLE_", "ALERT_", "SMTP_")
        unknown_prefixed = sorted(n for n in env if n.startswith(prefixes) and n not in NAMES)
        if unknown_prefixed:
            raise ConfigError(f"Unknown variable(s) {', '.join(unknown_prefixed)}: see the README's configuration "
                              "table for the names")
        rasa_port = _port(env, "RASA_PORT", 5005)
        actions_port = _port(env, "ACTIONS_PORT", 5055)
        origins = _text(env, "ALLOWED_ORIGINS") or f"http://localhost:{rasa_port},http://127.0.0.1:{rasa_port}"
        cache = _text(env, "TRACKER_CACHE_SIZE")
        if cache and not cache.isdigit():
            raise ConfigError(f"TRACKER_CACHE_SIZE: expected a whole number of conversations (0 = off), not '{cache}'")
        settings = cls(
            rasa_port=rasa_port,
            actions_port=actions_port,
            facts_dir=_path(env, "FACTS_DIR", Path("data/facts")),
            clinic_settings=_path(env, "CLINIC_SETTINGS", Path("data/clinic.yml")),
            max_message_chars=int(_number(env, "MAX_MESSAGE_CHARS", 1000, int, minimum=1, what="a whole number")),
            allowed_origins=tuple(o for o in origins.replace(" ", ",").split(",") if o),
            telegram_token=_text(env, "TELEGRAM_TOKEN"),
            telegram_bot_username=_text(env, "TELEGRAM_BOT_USERNAME").lstrip("@"),
            telegram_webhook_url=_text(env, "TELEGRAM_WEBHOOK_URL"),
            telegram_secret_token=_text(env, "TELEGRAM_SECRET_TOKEN"),
            telegram_api_base=_http_url(env, "TELEGRAM_API_BASE", "https://api.telegram.org",
                                        "http(s)://host of the Bot API"),
            data_dir=_path(env, "DATA_DIR", Path("var/data")),
            run_dir=_path(env, "RUN_DIR", Path("var/run")),
            tracker_store_url=_tracker_store_url(env),
            lock_store_url=_lock_store_url(env),
            action_server_url=_http_url(env, "ACTION_SERVER_URL", f"http://localhost:{actions_port}/webhook",
                                        "http(s)://host:port/webhook"),
            action_timeout_s=_number(env, "ACTION_TIMEOUT_S", 10.0, minimum=0, strictly_above=True),
            ticket_lock_lifetime_s=_number(env, "TICKET_LOCK_LIFETIME", 60.0, minimum=0, strictly_above=True),
            tracker_cache_size=int(cache) if cache else None,
            retention_days=_number(env, "RETENTION_DAYS", 30.0, minimum=0, strictly_above=True,
                                   what="a number of days"),
            retention_every_hours=_number(env, "RETENTION_EVERY_HOURS", 24.0, minimum=0, what="a number of hours"),
            conversation_secret=_secret(env, "CONVERSATION_SECRET"),
            rest_api_keys=_api_keys(env),
            rate_limit_per_sender=int(_number(env, "RATE_LIMIT_PER_SENDER", 20, int, what="a whole number")),
            rate_limit_per_address=int(_number(env, "RATE_LIMIT_PER_ADDRESS", 60, int, what="a whole number")),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            actions_host=_text(env, "ACTIONS_HOST") or "127.0.0.1",
            action_server_token=_secret(env, "ACTION_SERVER_TOKEN"),
            log_level=_choice(env, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO"),
            staff_password=_staff_password(env),
            staff_accounts=_staff_accounts(env),
            console_host=_text(env, "CONSOLE_HOST") or "127.0.0.1",
            console_port=_port(env, "CONSOLE_PORT", 5010),
            console_https=_flag(env, "CONSOLE_HTTPS"),
            fact_review_days=int(_number(env, "FACT_REVIEW_DAYS", 365, int, minimum=1, what="a whole number of days")),
            review_dir=_path(env, "REVIEW_DIR", Path("data/review")),
            alert_telegram_chat=_text(env, "ALERT_TELEGRAM_CHAT"),
            alert_email_to=_text(env, "ALERT_EMAIL_TO"),
            smtp_host=_text(env, "SMTP_HOST"),
            smtp_port=_port(env, "SMTP_PORT", 587),
            smtp_user=_text(env, "SMTP_USER"),
            smtp_password=_text(env, "SMTP_PASSWORD"),
            smtp_from=_text(env, "SMTP_FROM") or _text(env, "ALERT_EMAIL_TO"),
            smtp_starttls=_text(env, "SMTP_STARTTLS").lower() not in ("false", "0", "no"),
            smtp_ca_file=_text(env, "SMTP_CA_FILE"),
            console_url=_text(env, "CONSOLE_URL") or f"http://localhost:{_port(env, 'CONSOLE_PORT', 5010)}",
            alert_dedupe_minutes=_number(env, "ALERT_DEDUPE_MINUTES", 30.0, minimum=0, what="a number of minutes"),
        )
        if settings.alert_telegram_chat and not settings.telegram_token:
            raise ConfigError("ALERT_TELEGRAM_CHAT needs TELEGRAM_TOKEN: the alerts are sent by the clinic's bot")
        if bool(settings.alert_email_to) != bool(settings.smtp_host):
            raise ConfigError("E-mail alerts need both ALERT_EMAIL_TO and SMTP_HOST")
        if settings.console_host not in LOOPBACK and not settings.console_https:
            raise ConfigError(f"CONSOLE_HOST={settings.console_host} would send staff passwords and patients' "
                              "messages unencrypted: serve the console through HTTPS (a reverse proxy) and set "
                              "CONSOLE_HTTPS=true, or keep CONSOLE_HOST=127.0.0.1")
        if settings.actions_host not in LOOPBACK and not settings.action_server_token:
            raise ConfigError(f"ACTIONS_HOST={settings.actions_host} exposes the action server beyond this machine: "
                              "set ACTION_SERVER_TOKEN (a long random value) so only Rasa can call it")
        if settings.action_timeout_s >= settings.ticket_lock_lifetime_s:
            raise ConfigError(f"ACTION_TIMEOUT_S ({settings.action_timeout_s:g}) must be well under "
                              f"TICKET_LOCK_LIFETIME ({settings.ticket_lock_lifetime_s:g}): a conversation's lock "
                              "would expire while its message still waits for the action server")
        return settings

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / SQLITE_FILE

    @property
    def conversations_url(self) -> str:
        """The SQLAlchemy URL of the conversations: TRACKER_STORE_URL, else the embedded SQLite file."""
        return self.tracker_store_url or f"sqlite:///{self.sqlite_path}"

    @property
    def console_enabled(self) -> bool:
        """The staff console runs only when someone can sign in to it."""
        return bool(self.staff_password or self.staff_accounts)


# --- the staff console's variables ------------------------------------------------------------------

MIN_STAFF_PASSWORD_CHARS = 12
STAFF_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}\Z")  # \Z: "$" would accept a final newline
SHARED_STAFF_ACCOUNT = "staff"  # the account STAFF_PASSWORD signs in to


def _staff_password(env: Mapping[str, str]) -> str:
    value = env.get("STAFF_PASSWORD") or ""  # not stripped: blanks may be part of a password
    if value.strip() and len(value) < MIN_STAFF_PASSWORD_CHARS:
        raise ConfigError(f"STAFF_PASSWORD is too short: use at least {MIN_STAFF_PASSWORD_CHARS} characters")
    return value if value.strip() else ""


def _staff_accounts(env: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    """`name:$argon2id$...` entries separated by blanks (an Argon2 hash holds commas, never blanks)."""
    accounts: List[Tuple[str, str]] = []
    for item in _text(env, "STAFF_ACCOUNTS").replace(";", " ").split():
        name, _, hashed = item.partition(":")
        if not STAFF_NAME.fullmatch(name) or not hashed.startswith("$argon2"):
            raise ConfigError(f"STAFF_ACCOUNTS: expected name:hash entries separated by spaces, the hash from "
                              f"`python -m console hash-password` (starting $argon2id$), not '{name}:…'; quote the "
                              "value with single quotes so the shell leaves the $ signs alone")
        accounts.append((name, hashed))
    names = [name for name, _ in accounts]
    if len(set(names)) != len(names):
        raise ConfigError("STAFF_ACCOUNTS: each name may appear once")
    return tuple(accounts)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _text(env, name).lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={value!r}: expected true or false")


@lru_cache(maxsize=1)
def current() -> Settings:
    """This process's settings, read from the environment once."""
    return Settings.from_env()


def markdown_table() -> str:
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for variable in VARIABLES:
        names = ", ".join(f"`{n}`" for n in variable.names)
        rows.append(f"| {names} | {variable.default} | {variable.help} |")
    return "\n".join(rows) + "\n"


def shell_exports(settings: Settings) -> str:
    """What ops/run.sh needs, already validated, as `export NAME=value` lines.

    Only names of VARIABLES: the processes run.sh starts read the same environment again, and an
    unknown name with a known prefix would stop them (a guard against typos).
    """
    values: Dict[str, str] = {
        "RASA_PORT": str(settings.rasa_port),
        "ACTIONS_PORT": str(settings.actions_port),
        "ALLOWED_ORIGINS": " ".join(settings.allowed_origins),
        "RUN_DIR": str(settings.run_dir),
        "RETENTION_EVERY_HOURS": f"{settings.retention_every_hours:g}",
        "ACTIONS_HOST": settings.actions_host,
        "CONSOLE_HOST": settings.console_host,
        "CONSOLE_PORT": str(settings.console_port),
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="the README's configuration table")
    group.add_argument("--shell", action="store_true", help="validated values for ops/run.sh")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    try:
        sys.stdout.write(shell_exports(Settings.from_env()))
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
