"""Runs the assistant's processes and keeps them running (`make run` calls it from ops/run.sh).

One process stopping no longer stops the assistant: it is restarted with
back-off (1 s, doubling to 30 s; back to 1 s once it has run for a minute) and
the others keep serving. Each process appends to its own log under RUN_DIR, so
the evidence of a failure survives the restart; what the supervisor did (starts,
stops, restarts) goes to RUN_DIR/supervisor.log as well as to the terminal. Logs
are rotated at start and then daily (here, whatever RETENTION_EVERY_HOURS says:
with the retention process off they rotated never); logs, RUN_DIR and DATA_DIR are
made owner-only at start, also when an older version created them readable by all.
Ctrl+C or SIGTERM stops everything.

    python -m ops.supervise --endpoints var/run/endpoints.yml
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, List, Optional

from clinic.settings import PROJECT_DIR, ConfigError, Settings
from ops.alerts import configured_channels

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0  # a process that ran this long starts again at the first back-off
STOP_GRACE_S = 20.0
READY_TIMEOUT_S = 180.0


@dataclass
class Program:
    name: str
    command: List[str]
    health_url: Optional[str] = None
    process: Optional[subprocess.Popen] = None
    started_at: float = 0.0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: Optional[float] = None
    restarts: int = 0
    log: Optional[Path] = field(default=None, repr=False)

    def start(self, run_dir: Path) -> None:
        self.log = run_dir / f"{self.name}.log"
        with open_private_log(self.log) as handle:  # appended: the last crash's evidence stays
            self.process = subprocess.Popen(self.command, cwd=PROJECT_DIR, stdout=handle, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None


def programs(settings: Settings, endpoints: Path) -> List[Program]:
    python = sys.executable
    found = [
        Program("actions", [python, "-m", "rasa_extensions.action_server", "--port", str(settings.actions_port)],
                f"http://127.0.0.1:{settings.actions_port}/health"),
        Program("rasa", [python, "-m", "rasa_extensions.launcher", "run", "--model", "models", "--credentials",
                         "credentials.yml", "--endpoints", str(endpoints), "--port", str(settings.rasa_port),
                         "--cors", *settings.allowed_origins],
                f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/"),
    ]
    if settings.retention_every_hours > 0:
        found.append(Program("retention", [python, "-m", "ops.retention", "--no-logs", "--every-hours",
                                           f"{settings.retention_every_hours:g}"]))
    if settings.console_enabled:  # the staff console (docs/console.md): only when someone can sign in
        found.append(Program("console", [python, "-m", "console"],
                             f"http://{settings.console_host}:{settings.console_port}/sign-in"))
    return found


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - our own loopback address
            return bool(reply.status == 200)
    except OSError:
        return False


def open_private_log(path: Path) -> BinaryIO:
    """Opens a log for appending, readable by this user only whatever the umask (logs hold conversation ids)."""
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    os.chmod(path, 0o600)  # created 0644 by an older version: made private too
    return handle


def make_private(run_dir: Path, data_dir: Path) -> List[Path]:
    """RUN_DIR and DATA_DIR 0700, every log in RUN_DIR 0600; returns what was changed.

    Why: an older version created logs 0644 and `make run` only ever tightened new files, so
    logs from before stayed readable by every user of the machine.
    """
    changed: List[Path] = []
    wanted = [(run_dir, 0o700), (data_dir, 0o700)] + [(log, 0o600) for log in sorted(run_dir.glob("*.log*"))]
    for path, mode in wanted:
        try:
            if path.exists() and path.stat().st_mode & 0o777 != mode:
                os.chmod(path, mode)
                changed.append(path)
        except OSError as exc:  # not ours (a shared DATA_DIR): said, and the assistant still starts
            say(f"Could not make {path} readable by this user only: {exc}")
    return changed


def say(text: str, log: Optional[Path] = None) -> None:
    """To the terminal and, when given, appended to the supervisor's own log."""
    line = time.strftime("%H:%M:%S ") + text
    print(line, file=sys.stderr, flush=True)
    if log is not None:
        try:
            with open_private_log(log) as handle:
                handle.write(time.strftime("%Y-%m-%d ").encode() + line.encode() + b"\n")
        except OSError as exc:  # a full disk must not stop the supervisor from restarting what stopped
            print(f"(could not write {log}: {exc})", file=sys.stderr, flush=True)


class Supervisor:
    """Starts `items`, restarts each that stops after its back-off, rotates the logs under RUN_DIR.

    Everything it needs comes in (settings for RUN_DIR, DATA_DIR and RETENTION_DAYS, the
    program list), so tests run it on dummy programs without Rasa.
    """

    def __init__(self, settings: Settings, items: List[Program]) -> None:
        self.settings = settings
        self.items = items
        self.stopping = False
        self.rotated_on = ""  # the UTC day the logs were last rotated

    @property
    def log(self) -> Path:
        return self.settings.run_dir / "supervisor.log"

    def say(self, text: str) -> None:
        say(text, self.log)

    def prepare(self) -> None:
        """Before anything starts: folders and logs owner-only, the previous run's logs rotated."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in make_private(self.settings.run_dir, self.settings.data_dir):
            self.say(f"Made {path} readable by this user only")
        self.rotate_if_due()

    def rotate_if_due(self) -> None:
        """Rotates the logs once per UTC day (at start, then at each new day), deleting old rotated ones."""
        from ops.retention import rotate_logs

        today = time.strftime("%Y%m%d", time.gmtime())
        if today == self.rotated_on:
            return
        self.rotated_on = today
        try:
            rotate_logs(self.settings.run_dir, self.settings.retention_days)
        except OSError as exc:
            self.say(f"Could not rotate the logs in {self.settings.run_dir}: {exc}")

    def check(self) -> None:
        """Restarts what stopped, after its back-off."""
        now = time.monotonic()
        for item in self.items:
            if item.process is None:
                continue
            code = item.process.poll()
            if code is None:
                if now - item.started_at >= HEALTHY_AFTER_S:
                    item.backoff_s = FIRST_BACKOFF_S
                continue
            if item.restart_at is None:
                item.restart_at = now + item.backoff_s
                self.say(f"{item.name} stopped (exit code {code}); restarting it in {item.backoff_s:g} s "
                         f"(log: {item.log})")
                item.backoff_s = min(item.backoff_s * 2, MAX_BACKOFF_S)
            elif now >= item.restart_at:
                item.restarts += 1
                item.start(self.settings.run_dir)
                self.say(f"{item.name} restarted (restart {item.restarts})")

    def stop(self) -> None:
        self.stopping = True
        for item in self.items:
            if item.process is not None and item.process.poll() is None:
                os.killpg(item.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for item in self.items:
            if item.process is None:
                continue
            try:
                item.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(item.process.pid, signal.SIGKILL)

    def wait_until_ready(self) -> bool:
        """True once every program with a health check answers; progress dots meanwhile."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = [item for item in self.items if item.health_url]
        while waiting and time.monotonic() < deadline and not self.stopping:
            waiting = [item for item in waiting if not answers(item.health_url or "")]
            self.check()
            if waiting:
                print(".", end="", file=sys.stderr, flush=True)
                time.sleep(1)
        print(file=sys.stderr)
        return not waiting

    def run(self) -> int:
        self.prepare()
        for item in self.items:
            item.start(self.settings.run_dir)
        self.say(f"Starting {', '.join(i.name for i in self.items)} (logs in {self.settings.run_dir}/)")
        if not self.wait_until_ready():
            self.say(f"The assistant did not start within {READY_TIMEOUT_S:g} s; see {self.settings.run_dir}/*.log")
            self.stop()
            return 1
        print(banner(self.settings), file=sys.stderr, flush=True)
        while not self.stopping:
            self.check()
            self.rotate_if_due()
            time.sleep(0.5)
        return 0


def banner(settings: Settings) -> str:
    port = settings.rasa_port
    console = (f"Staff console: http://{settings.console_host}:{settings.console_port}/ (docs/console.md)"
               if settings.console_enabled else "Staff console off: set STAFF_PASSWORD to turn it on (docs/console.md)")
    channels = configured_channels(settings)
    alerts = (f"Staff alerts to: {', '.join(channels)}" if channels else
              "Staff alerts off: nobody is told of urgent reports; set ALERT_TELEGRAM_CHAT or ALERT_EMAIL_TO "
              "(docs/alerts.md)")
    return f"""
  The assistant is running.
    See it on the demo clinic page:  http://localhost:{port}/webhooks/web/
    Websites allowed to embed the chat widget (ALLOWED_ORIGINS): {' '.join(settings.allowed_origins)}
    Talk to it over REST:
      curl -s -XPOST http://localhost:{port}/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{{"message": "how long is my face red after?"}}'
    Or in a terminal:  make shell
  {console}
  {alerts}
  A process that stops is restarted; Ctrl+C stops everything.
"""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    os.umask(0o077)
    supervisor = Supervisor(settings, programs(settings, args.endpoints))

    def on_signal(signum: int, _frame: object) -> None:
        if not supervisor.stopping:
            supervisor.say("Stopping ...")
            supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return supervisor.run()
    finally:
        if not supervisor.stopping:
            supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
