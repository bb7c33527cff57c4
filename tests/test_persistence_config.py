"""Where conversations are kept, configured from the environment; the retention purge; the settings.

No servers: the generated endpoints file is read back with Rasa's own reader,
and the purge runs on a SQLite file with Rasa's own `events` table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain

from clinic.settings import ConfigError, Settings
from devtools.harness.servers import PROJECT
from ops import endpoints, retention
from rasa_extensions.tracker_store import DEFAULT_CACHE_SIZE, CachedSQLTrackerStore

DAY = 86400.0


def generate(tmp_path: Path, env: dict) -> Path:
    return endpoints.write(Settings.from_env(env), tmp_path / "endpoints.yml")


def test_the_generated_default_is_the_documented_endpoints_file(tmp_path: Path) -> None:
    generated = yaml.safe_load(generate(tmp_path, {"DATA_DIR": str(tmp_path / "data")}).read_text())
    documented = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
    documented["tracker_store"]["db"] = str(tmp_path / "data" / Path(documented["tracker_store"]["db"]).name)
    assert generated == documented
    assert (tmp_path / "data").is_dir()  # SQLite creates the file but not its folder


def test_the_default_data_dir_is_var_data_in_the_project(tmp_path: Path) -> None:
    config = yaml.safe_load(generate(tmp_path, {}).read_text())
    assert config["tracker_store"]["db"] == str(PROJECT / "var" / "data" / "conversations.db")
    relative = yaml.safe_load(generate(tmp_path, {"DATA_DIR": "var/other"}).read_text())
    assert relative["tracker_store"]["db"] == str(PROJECT / "var" / "other" / "conversations.db")


def test_production_urls_are_referenced_not_written_and_rasa_expands_them(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "TRACKER_STORE_URL": "postgresql://clinic:p%40ss-w0rd@db.internal:5432/assistant",
        "LOCK_STORE_URL": "redis://:r3dis-secret@redis.internal:6379/0",
        "ACTION_SERVER_URL": "http://actions.internal:5055/webhook",
    }
    path = generate(tmp_path, env)
    text = path.read_text()
    assert "p%40ss-w0rd" not in text and "r3dis-secret" not in text
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read = AvailableEndpoints.read_endpoints(str(path))
    assert read.action.url == env["ACTION_SERVER_URL"]
    assert read.tracker_store.type == endpoints.TRACKER_STORE_CLASS
    assert read.tracker_store.url == env["TRACKER_STORE_URL"]
    assert (read.lock_store.type, read.lock_store.url) == (endpoints.LOCK_STORE_CLASS, env["LOCK_STORE_URL"])


def test_the_action_server_token_is_referenced_and_rasa_sends_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    token = "a-long-random-action-server-token"
    path = generate(tmp_path, {"ACTION_SERVER_TOKEN": token})
    assert token not in path.read_text()
    monkeypatch.setenv("ACTION_SERVER_TOKEN", token)
    read = AvailableEndpoints.read_endpoints(str(path))
    assert read.action.headers == {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("env, cache_size", [({}, DEFAULT_CACHE_SIZE), ({"TRACKER_CACHE_SIZE": "0"}, 0),
                                             ({"TRACKER_CACHE_SIZE": "16"}, 16)])
def test_rasa_builds_our_cached_store_from_the_generated_file(tmp_path: Path, env: dict, cache_size: int) -> None:
    path = generate(tmp_path, {"DATA_DIR": str(tmp_path / "data"), **env})
    store = create_tracker_store(AvailableEndpoints.read_endpoints(str(path)).tracker_store, Domain.empty())
    store = getattr(store, "_tracker_store", store)  # unwrap Rasa's AwaitableTrackerStore, if any
    assert isinstance(store, CachedSQLTrackerStore) and store.cache_size == cache_size


def test_actions_port_moves_the_default_action_server() -> None:
    sections = endpoints.endpoints_sections(Settings.from_env({"ACTIONS_PORT": "6055"}))
    assert sections["action_endpoint"] == {"url": "http://localhost:6055/webhook", "enable_selective_domain": True}


@pytest.mark.parametrize("env, variable", [
    ({"TRACKER_STORE_URL": "postgres://u:p@h/db"}, "TRACKER_STORE_URL"),
    ({"TRACKER_STORE_URL": "mongodb://h/db"}, "TRACKER_STORE_URL"),
    ({"LOCK_STORE_URL": "localhost:6379"}, "LOCK_STORE_URL"),
    ({"LOCK_STORE_URL": "redis://h:port/0"}, "LOCK_STORE_URL"),
    ({"ACTION_SERVER_URL": "actions:5055"}, "ACTION_SERVER_URL"),
    ({"TRACKER_CACHE_SIZE": "lots"}, "TRACKER_CACHE_SIZE"),
    ({"TRACKER_CACHE_SIZE": "-1"}, "TRACKER_CACHE_SIZE"),
    ({"RETENTION_DAYS": "0"}, "RETENTION_DAYS"),
    ({"RETENTION_DAYS": "-3"}, "RETENTION_DAYS"),
    ({"RETENTION_DAYS": "thirty"}, "RETENTION_DAYS"),
    ({"RETENTION_EVERY_HOURS": "daily"}, "RETENTION_EVERY_HOURS"),
    ({"ACTION_TIMEOUT_S": "soon"}, "ACTION_TIMEOUT_S"),
    ({"ACTION_TIMEOUT_S": "0"}, "ACTION_TIMEOUT_S"),
    ({"ACTION_TIMEOUT_S": "90"}, "TICKET_LOCK_LIFETIME"),
    ({"MAX_MESSAGE_CHARS": "0"}, "MAX_MESSAGE_CHARS"),
    ({"RASA_PORT": "70000"}, "RASA_PORT"),
    ({"TELEGRAM_TOKN": "1:a"}, "TELEGRAM_TOKN"),
    ({"ACTIONS_HOST": "0.0.0.0"}, "ACTIONS_HOST"),  # the action server on the network without its token
    ({"ACTIONS_HOST": "10.0.0.7", "ACTION_SERVER_TOKEN": ""}, "ACTIONS_HOST"),
    ({"TRUSTED_PROXIES": "10.0.0.300"}, "TRUSTED_PROXIES"),
    ({"TRUSTED_PROXIES": "proxy.internal"}, "TRUSTED_PROXIES"),
])
def test_a_wrong_variable_is_refused_before_anything_starts(env: dict, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_the_action_server_may_leave_loopback_with_its_token_only() -> None:
    assert Settings.from_env({"ACTIONS_HOST": "0.0.0.0", "ACTION_SERVER_TOKEN": "t" * 32}).actions_host == "0.0.0.0"
    assert Settings.from_env({"ACTIONS_HOST": "::1"}).actions_host == "::1"


def test_trusted_proxies_are_addresses_and_networks() -> None:
    import ipaddress

    proxies = Settings.from_env({"TRUSTED_PROXIES": "10.0.0.5, 192.168.7.0/24 ::1"}).trusted_proxies
    assert [str(p) for p in proxies] == ["10.0.0.5/32", "192.168.7.0/24", "::1/128"]
    assert ipaddress.ip_address("192.168.7.20") in proxies[1]
    assert Settings.from_env({}).trusted_proxies == ()


def test_the_command_reports_a_wrong_url_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("TRACKER_STORE_URL", "postgres://u:p@h/db")
    assert endpoints.main(["--out", str(tmp_path / "e.yml")]) == 2
    assert "postgresql://" in capsys.readouterr().err
    assert not (tmp_path / "e.yml").exists()


# --- retention -------------------------------------------------------------------------------------

def sqlite_store(tmp_path: Path, conversations: dict) -> str:
    """A SQLite file with Rasa's events table; conversations = {sender: [event ages in days]}."""
    url = f"sqlite:///{tmp_path / 'conversations.db'}"
    engine = sa.create_engine(url)
    SQLTrackerStore.Base.metadata.create_all(engine)
    now = time.time()
    with engine.begin() as conn:
        for sender, ages in conversations.items():
            for age in ages:
                conn.execute(SQLTrackerStore.SQLEvent.__table__.insert().values(
                    sender_id=sender, type_name="user", timestamp=now - age * DAY,
                    data=json.dumps({"event": "user", "text": "hello"})))
    engine.dispose()
    return url


def stored(url: str) -> dict:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT sender_id, COUNT(*) FROM events GROUP BY sender_id")).all()
    engine.dispose()
    return dict(rows)


def test_purge_deletes_every_message_older_than_the_period(tmp_path: Path) -> None:
    url = sqlite_store(tmp_path, {
        "old": [90, 60, 45],      # nothing newer than 45 days: the whole conversation goes
        "recent": [2, 1],          # kept
        "resumed": [120, 100, 3],  # active 3 days ago: its two old messages go all the same
        "edge": [29.9],            # inside 30 days: kept
    })
    result = retention.purge(url, days=30)
    assert (result.conversations, result.emptied, result.events) == (2, 1, 5)
    assert stored(url) == {"recent": 2, "resumed": 1, "edge": 1}


def test_dry_run_counts_and_deletes_nothing(tmp_path: Path) -> None:
    url = sqlite_store(tmp_path, {"old": [40, 35], "new": [1]})
    result = retention.purge(url, days=30, dry_run=True)
    assert (result.conversations, result.emptied, result.events) == (1, 1, 2)
    assert stored(url) == {"old": 2, "new": 1}


def test_purge_before_anything_is_stored_creates_nothing(tmp_path: Path) -> None:
    result = retention.run_once(Settings.from_env({"DATA_DIR": str(tmp_path / "data"), "RUN_DIR": str(tmp_path)}))
    assert result.conversations == 0 and not (tmp_path / "data" / "conversations.db").exists()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(empty).connect().close()  # a database without Rasa's table
    assert retention.purge(empty, days=30).conversations == 0


def test_purge_uses_the_store_rasa_uses_and_retention_days(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sqlite_store(data, {"a": [10], "b": [3]})
    result = retention.run_once(Settings.from_env({"DATA_DIR": str(data), "RETENTION_DAYS": "7",
                                                   "RUN_DIR": str(tmp_path / "run")}))
    assert result.conversations == 1
    entry = json.loads((data / "audit.log").read_text().splitlines()[-1])
    assert entry["event"] == "retention purge" and entry["events"] == 1
    assert (data / "audit.log").stat().st_mode & 0o777 == 0o600
    assert stored(f"sqlite:///{data / 'conversations.db'}") == {"b": 1}


def test_logs_are_rotated_and_old_ones_deleted(tmp_path: Path) -> None:
    import os

    (tmp_path / "rasa.log").write_text("yesterday's lines\n")
    old = tmp_path / "rasa.log.20200101"
    old.write_text("ancient\n")
    os.utime(old, (time.time() - 40 * DAY, time.time() - 40 * DAY))
    assert retention.rotate_logs(tmp_path, days=30) == 1
    assert not old.exists() and (tmp_path / "rasa.log").read_text() == ""
    [rotated] = tmp_path.glob("rasa.log.*")
    assert rotated.read_text() == "yesterday's lines\n" and rotated.stat().st_mode & 0o777 == 0o600


# --- settings ------------------------------------------------------------------------------------

def test_the_readme_configuration_table_is_generated_from_the_settings() -> None:
    from clinic.settings import markdown_table

    readme = (PROJECT / "README.md").read_text()
    begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"
    assert begin in readme and end in readme, "the README's configuration table has lost its markers"
    table = readme.split(begin, 1)[1].split(end, 1)[0]
    assert table == markdown_table(), "README table out of date: python -m clinic.settings --markdown"


def test_every_variable_read_in_the_code_is_a_setting() -> None:
    """No module reads the environment on its own: every name goes through clinic/settings.py."""
    import re

    from clinic.settings import NAMES

    pattern = re.compile(r"(?:environ(?:\.get)?\(|environ\[|getenv\()\s*[\"']([A-Z_]+)[\"']")
    offenders = []
    for folder in ("clinic", "actions", "channels", "rasa_extensions", "ops"):
        for path in (PROJECT / folder).rglob("*.py"):
            for name in pattern.findall(path.read_text()):
                if name not in NAMES and name != "RASA_TELEMETRY_ENABLED":
                    offenders.append(f"{path.relative_to(PROJECT)}: {name}")
            if path.name != "settings.py" and "os.environ.get(" in path.read_text():
                offenders.append(f"{path.relative_to(PROJECT)} reads os.environ itself")
    assert offenders == []


def test_what_the_shell_exports_is_read_back_by_every_process_it_starts() -> None:
    """ops/run.sh evals the exports, then starts processes that read the environment again: no unknown name."""
    import re

    from clinic.settings import NAMES, shell_exports

    exported = dict(re.findall(r"^export (\w+)=(.*)$", shell_exports(Settings.from_env({})), re.M))
    assert set(exported) <= NAMES
    Settings.from_env({name: value.strip("'") for name, value in exported.items()})


def test_the_shell_sees_validated_values() -> None:
    from clinic.settings import shell_exports

    text = shell_exports(Settings.from_env({"RASA_PORT": "6005", "ALLOWED_ORIGINS": "https://a.example, https://b"}))
    assert "export RASA_PORT=6005\n" in text
    assert "export ALLOWED_ORIGINS='https://a.example https://b'\n" in text
