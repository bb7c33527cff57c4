"""ops/supervise.py on small dummy programs (no Rasa): restarts with back-off, logs kept and private.

The supervisor runs in a thread, as `make run` runs it in the foreground; its programs are
real processes (python -c ...), so a crash is a real exit and a restart a real new process.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest

from clinic.settings import Settings
from ops.supervise import Program, Supervisor

CRASHER = "import sys; print('crashing now', flush=True); sys.exit(3)"
STEADY = "import time; print('serving', flush=True); time.sleep(300)"


def settings_for(root: Path) -> Settings:
    """RUN_DIR and DATA_DIR under `root`; the retention process off, as RETENTION_EVERY_HOURS=0 turns it off."""
    return Settings.from_env({"RUN_DIR": str(root / "run"), "DATA_DIR": str(root / "data"),
                              "RETENTION_EVERY_HOURS": "0"})


def program(name: str, code: str) -> Program:
    return Program(name, [sys.executable, "-c", code])


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.1)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[[List[Program]], Supervisor]]:
    """Runs a Supervisor on the given programs in a thread; stops it (and its programs) afterwards."""
    running: List[Tuple[Supervisor, threading.Thread]] = []

    def start(items: List[Program]) -> Supervisor:
        supervisor = Supervisor(settings_for(tmp_path), items)
        thread = threading.Thread(target=supervisor.run, daemon=True)
        thread.start()
        running.append((supervisor, thread))
        return supervisor

    yield start
    for supervisor, thread in running:
        supervisor.stop()
        thread.join(timeout=30)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_crashing_program_is_restarted_with_back_off_while_the_others_keep_running(
        supervised: Callable[[List[Program]], Supervisor]) -> None:
    crasher, steady = program("crasher", CRASHER), program("steady", STEADY)
    began = time.monotonic()
    supervisor = supervised([crasher, steady])
    wait_for(lambda: steady.process is not None and (supervisor.settings.run_dir / "steady.log").exists(),
             30, "the steady program did not start")
    first_pid = steady.process.pid  # type: ignore[union-attr]
    run_dir = supervisor.settings.run_dir

    def restarted_twice() -> bool:  # logged, and the third run had its say
        logged = (run_dir / "supervisor.log").read_text() if (run_dir / "supervisor.log").exists() else ""
        crashes = (run_dir / "crasher.log").read_text() if (run_dir / "crasher.log").exists() else ""
        return "crasher restarted (restart 2)" in logged and crashes.count("crashing now") >= 3

    wait_for(restarted_twice, 60, "the crashing program was not restarted twice")
    # Two back-offs, 1 s then 2 s, came first: a lower bound is the point, not a duration.
    assert time.monotonic() - began >= 1 + 2

    assert steady.process is not None and steady.process.pid == first_pid and steady.process.poll() is None
    assert steady.restarts == 0
    log = (run_dir / "supervisor.log").read_text()
    first = log.index("crasher stopped (exit code 3); restarting it in 1 s")
    second = log.index("crasher stopped (exit code 3); restarting it in 2 s")
    assert first < log.index("crasher restarted (restart 1)") < second < log.index("crasher restarted (restart 2)")
    assert "steady stopped" not in log
    assert mode(run_dir / "supervisor.log") == 0o600
    # Appended at each restart: every run's output is still there.
    assert (run_dir / "crasher.log").read_text().count("crashing now") >= 3
    assert mode(run_dir / "crasher.log") == 0o600


def test_a_start_rotates_the_previous_logs_and_makes_old_files_private(tmp_path: Path) -> None:
    """With the retention process off (RETENTION_EVERY_HOURS=0) the logs still rotate; files an older version
    made readable by all (0644, folders 0755) are owner-only after the start."""
    settings = settings_for(tmp_path)
    settings.run_dir.mkdir(mode=0o755)
    settings.data_dir.mkdir(mode=0o755)
    settings.run_dir.chmod(0o755)
    settings.data_dir.chmod(0o755)
    previous = settings.run_dir / "rasa.log"
    previous.write_text("Traceback: the crash an operator needs to read\n")
    previous.chmod(0o644)
    old_supervisor_log = settings.run_dir / "supervisor.log"
    old_supervisor_log.write_text("earlier supervisor lines\n")
    old_supervisor_log.chmod(0o644)

    Supervisor(settings, []).prepare()

    assert mode(settings.run_dir) == 0o700 and mode(settings.data_dir) == 0o700
    [rotated] = settings.run_dir.glob("rasa.log.*")
    assert rotated.read_text() == "Traceback: the crash an operator needs to read\n"
    assert previous.read_text() == ""
    for log in settings.run_dir.glob("*.log*"):
        assert mode(log) == 0o600, log
    assert "earlier supervisor lines" in "".join(p.read_text() for p in settings.run_dir.glob("supervisor.log*"))


def test_the_logs_rotate_again_on_a_new_day_while_running(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    supervisor = Supervisor(settings, [])
    supervisor.prepare()
    (settings.run_dir / "actions.log").write_text("a day of lines\n")
    supervisor.rotate_if_due()  # the same day: nothing
    assert (settings.run_dir / "actions.log").read_text() == "a day of lines\n"
    supervisor.rotated_on = "19700101"  # as if the last rotation was on an earlier day
    supervisor.rotate_if_due()
    assert (settings.run_dir / "actions.log").read_text() == ""
    assert "a day of lines\n" in [p.read_text() for p in settings.run_dir.glob("actions.log.*")]


def test_under_make_run_only_the_supervisor_rotates_the_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retention process starts with the others: rotating then moved the lines just written aside."""
    from ops import retention
    from ops.supervise import programs

    settings = settings_for(tmp_path)
    on = Settings.from_env({"RUN_DIR": str(settings.run_dir), "DATA_DIR": str(settings.data_dir)})
    command = next(p.command for p in programs(on, Path("endpoints.yml")) if p.name == "retention")
    flags = command[command.index("ops.retention") + 1:]
    settings.run_dir.mkdir(parents=True)
    log = settings.run_dir / "supervisor.log"
    log.write_text("12:00:00 Starting actions, rasa, retention\n")
    monkeypatch.setenv("RUN_DIR", str(settings.run_dir))
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    assert retention.main([f for f in flags if f != "--every-hours" and not f[0].isdigit()]) == 0
    assert log.read_text() == "12:00:00 Starting actions, rasa, retention\n"
    assert list(settings.run_dir.glob("*.log.*")) == []
