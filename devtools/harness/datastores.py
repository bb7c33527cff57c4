"""Throwaway PostgreSQL and Redis servers for the durability tests, on free loopback ports.

Real servers, not fakes: what is tested is Rasa's SQL tracker store and our
Redis lock store against the databases a clinic runs. Both live in /tmp, keep
nothing on disk after `stop()`, and never listen beyond 127.0.0.1.
PostgreSQL refuses to run as root, so as root its commands run as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import psycopg2
import redis

from devtools.harness.binaries import postgres_bin
from devtools.harness.servers import free_port

START_TIMEOUT_S = 60


def _as_postgres(args: List[str]) -> List[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Postgres:
    """One PostgreSQL cluster: `url` is a postgresql:// URL with a password, as in production."""

    database: str = "clinic"
    user: str = "clinic"
    password: str = "s3cret-p@ss"  # an '@' on purpose: URLs must be escaped
    port: int = field(default_factory=free_port)
    root: Optional[Path] = None

    @property
    def url(self) -> str:
        from urllib.parse import quote

        return f"postgresql://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, args: List[str]) -> None:
        result = subprocess.run(_as_postgres(args), capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if result.returncode != 0:
            log = (self.root / "postgres.log") if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}{tail}")

    def start(self) -> Postgres:
        pg_bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="clinic-pg-", dir="/tmp"))
        data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
        self.resume()
        # The superuser comes in over the Unix socket (trust); the clinic's user needs its password on TCP.
        conn = psycopg2.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f"CREATE USER {self.user} WITH PASSWORD %s", (self.password,))
                cur.execute(f"CREATE DATABASE {self.database} OWNER {self.user}")
        finally:
            conn.close()
        return self

    def halt(self) -> None:
        """Stops the server, keeping its data: an outage, for fault tests."""
        assert self.root is not None
        self._run([str(postgres_bin() / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"])

    def resume(self) -> None:
        """Starts the halted server again on the same port, with the same data."""
        assert self.root is not None
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([str(postgres_bin() / "pg_ctl"), "-D", str(self.root / "data"), "-o", options, "-l",
                   str(self.root / "postgres.log"), "-w", "-t", str(START_TIMEOUT_S), "start"])

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                                dbname=self.database)

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run([str(postgres_bin() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


@dataclass
class Redis:
    """One Redis server without persistence; `url` is a redis:// URL as in production."""

    port: int = field(default_factory=free_port)
    process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> Redis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: run devtools/system_deps.sh")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                if self.client().ping():
                    return self
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT_S}s")

    def halt(self) -> None:
        """Stops the server (its locks are gone with it): an outage, for fault tests."""
        self.stop()

    def resume(self) -> None:
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
