"""Starts the real action server and Rasa server for tests, on free loopback ports.

Used by every test that talks to the running assistant (REST, widget,
Telegram, durability). Processes get their own log files under the test's
folder and are always stopped, even when a test fails. The servers serve a
private copy of the fact store (private_fact_store), which tests read back
(served_snapshot, fact_of) and may edit while the servers run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Protocol, TypeVar

import requests

from clinic.fact_store import DEFAULT_FACTS_DIR, DEFAULT_SETTINGS, FactStore, Snapshot, domain_intents

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 240
TEST_INTEGRATION = "tests"


class Startable(Protocol):
    def start(self) -> Any: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextlib.contextmanager
def running(server: S) -> Iterator[S]:
    """`server.start()`, then `server.stop()` whatever happened: the fixtures' start, yield, stop in one place.

    Any harness server: a Stack, the fake Bot API, the console, PostgreSQL, Redis (each stop()
    is safe after a start that failed half-way).
    """
    try:
        server.start()
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_sender(prefix: str = "patient") -> str:
    """A sender id no one has used: the first message from it opens a new conversation."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def private_fact_store(root: Path) -> Dict[str, str]:
    """A copy of data/facts and data/clinic.yml under root (once), and the variables that point the servers at it."""
    if not (root / "facts").exists():
        shutil.copytree(DEFAULT_FACTS_DIR, root / "facts")
        shutil.copy(DEFAULT_SETTINGS, root / "clinic.yml")
    return {"FACTS_DIR": str(root / "facts"), "CLINIC_SETTINGS": str(root / "clinic.yml")}


def served_snapshot(root: Path) -> Snapshot:
    """The store exactly as servers started with private_fact_store(root) see it."""
    return FactStore(root / "facts", root / "clinic.yml", domain_intents()).current()


def fact_of(snapshot: Snapshot, text: str) -> str:
    """Which fact a bot message is (its rendered text opens the message)."""
    matches = [f.id for f in snapshot.facts.values() if text.startswith(snapshot.render(f))]
    assert matches, f"not a fact from the store: {text[:120]!r}"
    return max(matches, key=lambda i: len(snapshot.facts[i].text))


def latest_model() -> Path:
    """The newest model in models/, or the one TEST_MODEL names (a developer setting, for trying a model)."""
    if os.environ.get("TEST_MODEL"):
        return Path(os.environ["TEST_MODEL"])
    models = sorted((PROJECT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise RuntimeError("No trained model in models/: run `make train` (make test does it first)")
    return models[-1]


def wait_until(url: str, process: subprocess.Popen, log: Path, timeout: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def stop(process: Optional[subprocess.Popen]) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Stack:
    """One action server and one Rasa server, started and stopped together or apart."""

    workdir: Path
    env: Dict[str, str] = field(default_factory=dict)
    endpoints_extra: str = ""  # more endpoints.yml text: tracker_store, lock_store, ...
    credentials: Optional[Path] = None
    selective_domain: bool = True  # False: Rasa sends the whole domain with every action call, as shipped
    stock_commands: bool = False  # True: `rasa run actions` and `rasa run`, as Rasa's docs start them
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    actions: Optional[subprocess.Popen] = None
    rasa: Optional[subprocess.Popen] = None
    model: Optional[Path] = None
    # Tests talk over REST as an integration holding an API key, so they choose their senders
    # (clinic/conversation_ids.py); the widget's tests and the security tests go without one.
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    conversation_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def base_env(self) -> Dict[str, str]:
        """What every test stack runs with, before the test's own env."""
        return {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore",
                "REST_API_KEYS": f"{TEST_INTEGRATION}:{self.api_key}",
                "CONVERSATION_SECRET": self.conversation_secret,
                "DATA_DIR": str(self.workdir / "data"),  # never the project's own var/data
                "RATE_LIMIT_PER_ADDRESS": "600"}  # one machine plays every patient

    @property
    def auth(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @staticmethod
    def conversation_id(sender: str) -> str:
        """Where Rasa stores the conversation of a sender this stack's `say` used."""
        return f"api:{TEST_INTEGRATION}:{sender}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    def _spawn(self, name: str, args: List[str]) -> subprocess.Popen:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / f"{name}.log"
        env = {**os.environ, **self.base_env, **self.env}
        return subprocess.Popen(
            args, cwd=PROJECT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def endpoints_file(self) -> Path:
        path = self.workdir / "endpoints.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        selective = str(self.selective_domain).lower()
        token = ('  headers:\n    Authorization: Bearer ${ACTION_SERVER_TOKEN}\n'
                 if self.env.get("ACTION_SERVER_TOKEN") else "")  # as ops/endpoints.py writes it
        path.write_text(f'action_endpoint:\n  url: "{self.actions_url}/webhook"\n'
                        f"  enable_selective_domain: {selective}\n{token}{self.endpoints_extra}")
        return path

    def start_actions(self) -> None:
        command = ([str(BIN / "rasa"), "run", "actions"] if self.stock_commands
                   else [str(BIN / "python"), "-m", "rasa_extensions.action_server"])  # as `make run` starts it
        self.actions = self._spawn("actions", [*command, "--port", str(self.actions_port)]
                                   + (["--actions", "actions"] if self.stock_commands else []))
        wait_until(f"{self.actions_url}/health", self.actions, self.workdir / "actions.log")

    def start_rasa(self) -> None:
        model = self.model or latest_model()
        credentials = self.credentials or PROJECT / "credentials.yml"
        launcher = [str(BIN / "python"), "-m", "rasa_extensions.launcher"]  # as `make run`: extensions installed
        command = [str(BIN / "rasa")] if self.stock_commands else launcher
        self.rasa = self._spawn("rasa", [
            *command, "run", "--model", str(model), "--port", str(self.rasa_port),
            "--endpoints", str(self.endpoints_file()), "--credentials", str(credentials), "--cors", "*",
        ])
        wait_until(f"{self.url}/webhooks/rest/", self.rasa, self.workdir / "rasa.log")

    def start(self) -> Stack:
        self.start_actions()
        self.start_rasa()
        return self

    def stop(self) -> None:
        stop(self.rasa)
        stop(self.actions)

    def say(self, sender: str, message: str, timeout: float = 30) -> List[dict]:
        reply = requests.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message},
                              headers=self.auth, timeout=timeout)
        reply.raise_for_status()
        return reply.json()


def store_stack(workdir: Path, store_env: Dict[str, str], facts_env: Optional[Dict[str, str]] = None,
                **env: str) -> Stack:
    """A Stack whose conversation and lock stores are what ops/endpoints.py writes for `store_env`.

    `facts_env` defaults to a private copy of the fact store under `workdir`; `env` adds variables.
    """
    from clinic.settings import Settings
    from ops import endpoints

    settings = Settings.from_env(store_env)
    extra = endpoints.render(endpoints.endpoints_sections(settings), only=["tracker_store", "lock_store"])
    endpoints.prepare_data_dir(settings)
    facts = private_fact_store(workdir) if facts_env is None else facts_env
    return Stack(workdir, env={**store_env, **facts, **env}, endpoints_extra=extra)
