"""Writes the endpoints file Rasa runs with, from environment variables.

Why generated: one Rasa configuration serves two very different set-ups, and a
clinic should switch between them without editing YAML.

- Embedded (no variables set): conversations in SQLite under DATA_DIR
  (default var/data/conversations.db), one Rasa process, in-memory lock store.
  This is exactly what the repository's endpoints.yml documents.
- Production: TRACKER_STORE_URL=postgresql://... and LOCK_STORE_URL=redis://...
  so several Rasa instances share the conversations; see docs/deployment.md.

Secrets stay out of the file: a URL that came from the environment is written
as ``${TRACKER_STORE_URL}``, which Rasa expands itself when it reads the file.

    python -m scripts.endpoints --out var/run/endpoints.yml
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional
from urllib.parse import urlsplit

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = "var/data"
SQLITE_FILE = "conversations.db"
LOCK_STORE_CLASS = "channels.lock_store.AtomicRedisLockStore"
# Rasa's SQL store plus the conversations in use kept in memory (channels/tracker_store.py);
# "SQL" is Rasa's own, which `make bench` runs for the stock baseline.
TRACKER_STORE_CLASS = "channels.tracker_store.CachedSQLTrackerStore"
SQL_SCHEMES = ("postgresql", "postgresql+psycopg2", "sqlite")
REDIS_SCHEMES = ("redis", "rediss")


class ConfigError(ValueError):
    """A variable that would make Rasa fail at start-up, caught before it starts."""


def variable(env: Mapping[str, str], name: str) -> str:
    """A variable's value without surrounding blanks; unset and blank both read as ''."""
    return (env.get(name) or "").strip()


def data_dir(env: Mapping[str, str]) -> Path:
    """DATA_DIR, relative to the project when not absolute (Rasa runs from the project root)."""
    path = Path(env.get("DATA_DIR") or DEFAULT_DATA_DIR)
    return path if path.is_absolute() else PROJECT / path


def sqlite_path(env: Mapping[str, str]) -> Path:
    return data_dir(env) / SQLITE_FILE


def tracker_store_url(env: Mapping[str, str]) -> str:
    """The SQLAlchemy URL of the conversations: TRACKER_STORE_URL, else the embedded SQLite file.

    Shared with scripts/retention.py so the purge always cleans the store Rasa writes to.
    """
    url = variable(env, "TRACKER_STORE_URL")
    if not url:
        return f"sqlite:///{sqlite_path(env)}"
    scheme = urlsplit(url).scheme
    if scheme == "postgres":
        raise ConfigError("TRACKER_STORE_URL: write postgresql://... (SQLAlchemy 1.4 rejects postgres://)")
    if scheme not in SQL_SCHEMES:
        raise ConfigError(f"TRACKER_STORE_URL: scheme '{scheme}' is not one of {', '.join(SQL_SCHEMES)}")
    return url


def check_lock_store_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
        raise ConfigError("LOCK_STORE_URL: expected redis://[:password@]host:port/db (or rediss:// for TLS)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigError(f"LOCK_STORE_URL: {exc}") from None


def action_server_url(env: Mapping[str, str]) -> str:
    url = variable(env, "ACTION_SERVER_URL")
    if url:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError("ACTION_SERVER_URL: expected http(s)://host:port/webhook")
        return url
    return f"http://localhost:{env.get('ACTIONS_PORT') or 5055}/webhook"


def tracker_cache_lines(env: Mapping[str, str]) -> List[str]:
    """TRACKER_CACHE_SIZE: conversations kept in memory between messages (0 turns the cache off)."""
    value = variable(env, "TRACKER_CACHE_SIZE")
    if not value:
        return []
    if not value.isdigit():
        raise ConfigError(f"TRACKER_CACHE_SIZE: expected a whole number of conversations (0 = off), not '{value}'")
    return [f"  cache_size: {int(value)}"]


def endpoints_sections(env: Mapping[str, str], tracker_store_type: str = TRACKER_STORE_CLASS) -> Dict[str, List[str]]:
    """The endpoint sections as YAML lines, keyed by section name (tests reuse single sections)."""
    # Selective domain: Rasa sends the domain only to actions that ask for it (ours never reads it),
    # instead of serialising it into every action call.
    sections: Dict[str, List[str]] = {
        "action_endpoint": [f'  url: "{action_server_url(env)}"', "  enable_selective_domain: true"],
    }
    if variable(env, "TRACKER_STORE_URL"):
        tracker_store_url(env)  # validate; the file keeps only the reference
        sections["tracker_store"] = [f"  type: {tracker_store_type}", "  url: ${TRACKER_STORE_URL}"]
    else:
        sections["tracker_store"] = [f"  type: {tracker_store_type}", "  dialect: sqlite",
                                     f'  db: "{sqlite_path(env)}"']
    if tracker_store_type == TRACKER_STORE_CLASS:
        sections["tracker_store"] += tracker_cache_lines(env)
    lock_url = variable(env, "LOCK_STORE_URL")
    if lock_url:
        check_lock_store_url(lock_url)
        sections["lock_store"] = [f"  type: {LOCK_STORE_CLASS}", "  url: ${LOCK_STORE_URL}"]
    else:
        sections["lock_store"] = ["  type: in_memory"]
    return sections


def render(sections: Mapping[str, List[str]], only: Optional[List[str]] = None) -> str:
    """Hand-written YAML: ${VAR} must stay a plain (unquoted) scalar for Rasa to expand it."""
    names = only if only is not None else list(sections)
    return "".join(f"{name}:\n" + "\n".join(sections[name]) + "\n" for name in names)


def prepare_data_dir(env: Mapping[str, str]) -> None:
    """SQLite creates the file, not its folder; without it Rasa silently keeps conversations in memory."""
    if not variable(env, "TRACKER_STORE_URL"):
        data_dir(env).mkdir(parents=True, exist_ok=True)


def write(env: Mapping[str, str], out: Path) -> Path:
    text = "# Generated by scripts/endpoints.py from the environment; edits are overwritten.\n"
    text += render(endpoints_sections(env))
    prepare_data_dir(env)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT / "var" / "run" / "endpoints.yml")
    args = parser.parse_args(argv)
    try:
        path = write(os.environ, args.out)
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    store = "TRACKER_STORE_URL" if os.environ.get("TRACKER_STORE_URL") else str(sqlite_path(os.environ))
    lock = "LOCK_STORE_URL (Redis)" if os.environ.get("LOCK_STORE_URL") else "in memory (one Rasa instance)"
    print(f"Endpoints written to {path}: conversations in {store}, lock store {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
