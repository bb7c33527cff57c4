"""Starts the staff console (`python -m console`, as `make run` does) for tests and the benchmark.

On a free loopback port, with its own log file, always stopped by its process group.
`signed_in()` returns a requests session that went through the real sign-in form.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import requests

from devtools.harness.servers import PROJECT, free_port

START_TIMEOUT_S = 600  # the first start on a big store builds its indexes


@dataclass
class ConsoleServer:
    workdir: Path
    env: Dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Optional[subprocess.Popen] = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"console-{self.port}.log"

    def start(self) -> ConsoleServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "CONSOLE_PORT": str(self.port), **self.env}
        started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, "-m", "console"], cwd=PROJECT, env=env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = started + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/sign-in", timeout=5).status_code == 200:
                    self.startup_s = time.monotonic() - started
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the console did not start within {START_TIMEOUT_S}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def signed_in(self, password: str, name: str = "") -> requests.Session:
        session = requests.Session()
        page = session.get(f"{self.url}/sign-in", timeout=30).text
        token = csrf_of(page)
        reply = session.post(f"{self.url}/sign-in", data={"name": name, "password": password, "csrf": token},
                             timeout=30, allow_redirects=False)
        if reply.status_code != 303:
            raise AssertionError(f"sign-in failed: {reply.status_code} {reply.text[:300]}")
        return session


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    if not found:
        raise AssertionError("no CSRF field on the page")
    return found.group(1)


def edit_facts(facts_dir: Path, changes: Dict[str, Dict[str, str]]) -> None:
    """Sets some facts' one-line keys (`reviewed_on`, `status`) in a copy of the fact store (private_fact_store),
    line by line so the files keep their comments: {fact id: {key: value}}."""
    for path in sorted(facts_dir.glob("*.yml")):
        lines, fact = path.read_text(encoding="utf-8").splitlines(), None
        for number, line in enumerate(lines):
            if line.startswith("  - id: "):
                fact = line.split(": ", 1)[1].strip()
            for key, value in changes.get(fact or "", {}).items():
                if line.startswith(f"    {key}:"):
                    lines[number] = f"    {key}: {value}"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
