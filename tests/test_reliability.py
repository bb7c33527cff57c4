"""Nothing a patient says is lost: faults injected under a bounded load, then the record is counted.

Patients send numbered messages with a message_id, as the widget does, and
retry with the same id after a 503 or a dropped connection (a load balancer may
send the retry to the other instance). Meanwhile a test stops PostgreSQL, stops
Redis, kills an instance, fills the SQLite disk or has its disk turn read-only
after an error (on a mounted tmpfs or ext4 image where the machine allows mounting,
else through the Rasa process's file size limit: class Disk). Afterwards every
conversation is read from the database and counted: sent, stored, lost,
duplicated, out of order (printed for each run, and in a failure's message);
every answer a patient got was either a real answer (and then the message is
stored) or a 503 with Retry-After that said so.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Dict, Iterator, List

import pytest
import requests

from clinic.settings import Settings
from devtools.harness.cluster import Cluster, running_cluster
from devtools.harness.records import stored_events
from devtools.harness.servers import Stack, new_sender, running, stop, store_stack

pytestmark = pytest.mark.servers

PATIENTS = int(os.environ.get("FAULT_PATIENTS", 10))
MESSAGES = int(os.environ.get("FAULT_MESSAGES", 8))
OUTAGE_S = 8.0
FAULT_AFTER = 2  # answers per patient (on average) before the fault, of MESSAGES
RETRY_DEADLINE_S = 120.0
QUESTIONS = ["do you numb the skin first?", "how long is my face red after?", "how many sessions will I need?",
             "do I need sunscreen after?", "when can I wear makeup again?", "how long does a session take?",
             "is it safe for dark skin?", "does it help acne scars?"]


@dataclass
class Patient:
    sender: str
    sent: List[str] = field(default_factory=list)  # message ids, in the order sent
    answered: List[str] = field(default_factory=list)
    told_503: int = 0
    unexpected: List[str] = field(default_factory=list)
    longest_wait_s: float = 0.0


def talk(instances: List[Stack], patient: Patient, pause: Callable[[], None],
         retry_deadline_s: float = RETRY_DEADLINE_S) -> Patient:
    """Sends MESSAGES messages one after the other, retrying each (same id) until answered.

    A message still unanswered at `retry_deadline_s` ends the patient's conversation, as a
    widget that could not send it keeps it and stops.
    """
    with requests.Session() as http:
        for n in range(MESSAGES):
            message_id = f"{patient.sender}-{n:03d}"
            patient.sent.append(message_id)
            began = time.monotonic()
            attempt = 0
            while time.monotonic() - began < retry_deadline_s:
                instance = instances[(n + attempt) % len(instances)]
                attempt += 1
                try:
                    reply = http.post(f"{instance.url}/webhooks/rest/webhook", headers=instance.auth, timeout=60,
                                      json={"sender": patient.sender, "message": QUESTIONS[n % len(QUESTIONS)],
                                            "message_id": message_id})
                except requests.RequestException:
                    time.sleep(0.5)  # the instance is gone: the load balancer tries another
                    continue
                if reply.status_code == 200:
                    body = reply.json()
                    if not body or not all(m.get("text") for m in body):
                        patient.unexpected.append(f"{message_id}: empty answer")
                    patient.answered.append(message_id)
                    break
                if reply.status_code == 503:
                    patient.told_503 += 1
                    if not reply.json().get("text"):
                        patient.unexpected.append(f"{message_id}: a 503 that tells the patient nothing")
                    retry_after = reply.headers.get("Retry-After", "")
                    if not retry_after.isdigit():  # the widget and load balancers wait by it: never missing
                        patient.unexpected.append(f"{message_id}: a 503 without Retry-After ({retry_after!r})")
                    time.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, 2.0))
                    continue
                patient.unexpected.append(f"{message_id}: HTTP {reply.status_code} {reply.text[:100]}")
                break
            patient.longest_wait_s = max(patient.longest_wait_s, time.monotonic() - began)
            if message_id not in patient.answered:
                break
            pause()
    return patient


def stored_message_ids(url: str, conversation_id: str) -> List[str]:
    return [event.get("message_id") for event in stored_events(url, conversation_id, "user")]


def run_with_fault(instances: List[Stack], url: str, fault: Callable[[], None],
                   retry_deadline_s: float = RETRY_DEADLINE_S) -> List[Patient]:
    """The bounded load, with `fault` run once the load is under way; returns the patients' outcomes.

    With a fault that lasts (retry_deadline_s shorter than the load), a message may stay
    unanswered; it must then have been refused with a 503, never answered and not stored.
    """
    patients = [Patient(new_sender("fault")) for _ in range(PATIENTS)]
    under_way = threading.Semaphore(0)

    def pause() -> None:
        under_way.release()  # one more message answered
        time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=PATIENTS + 1) as pool:
        futures = [pool.submit(talk, instances, p, pause, retry_deadline_s) for p in patients]
        for _ in range(FAULT_AFTER * PATIENTS):  # a fixed delay let fast servers finish before the fault
            assert under_way.acquire(timeout=120), "the load never got under way"
        fault()
        results = [f.result(timeout=600) for f in futures]
    check_the_record(results, url, unanswered_ok=retry_deadline_s < RETRY_DEADLINE_S)
    return results


@dataclass
class Counts:
    """One run's record, in messages: what the issue's table counts."""
    sent: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    told_503: int = 0

    def add(self, sent: int, stored: int, lost: int, duplicated: int, out_of_order: int, told_503: int) -> None:
        self.sent += sent
        self.stored += stored
        self.lost += lost
        self.duplicated += duplicated
        self.out_of_order += out_of_order
        self.told_503 += told_503

    def __str__(self) -> str:
        return (f"sent {self.sent}, stored {self.stored}, lost {self.lost}, duplicated {self.duplicated}, "
                f"out of order {self.out_of_order} (503s told {self.told_503})")


def check_the_record(patients: List[Patient], url: str, unanswered_ok: bool = False) -> Counts:
    """Reads every patient's conversation back; asserts 0 lost, 0 duplicated, 0 out of order, and says the counts."""
    problems: Dict[str, Dict[str, object]] = {}
    counts = Counts()
    for patient in patients:
        stored = stored_message_ids(url, Stack.conversation_id(patient.sender))
        answered = patient.answered if unanswered_ok else patient.sent
        lost = [m for m in answered if m not in stored]
        duplicated = sorted({m for m in stored if stored.count(m) > 1})
        stored_sent = list(dict.fromkeys(m for m in stored if m in patient.sent))  # first time each was stored
        # A refused message may be missing at the end (unanswered_ok): compare what was stored, in order.
        misplaced = [m for m, expected in zip(stored_sent, patient.sent, strict=False) if m != expected]
        unanswered = [] if unanswered_ok else [m for m in patient.sent if m not in patient.answered]
        counts.add(len(patient.sent), len(stored_sent), len(lost), len(duplicated), len(misplaced), patient.told_503)
        if unanswered_ok and patient.sent[len(answered):] and not patient.told_503:
            patient.unexpected.append("a message neither answered nor refused with a 503")
        if lost or duplicated or misplaced or unanswered or patient.unexpected:
            problems[patient.sender] = {"lost": lost, "duplicated": duplicated, "out_of_order": misplaced,
                                        "unanswered": unanswered, "unexpected": patient.unexpected}
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].split(" ")[0]
    print(f"\n{test}: {counts}")
    assert problems == {}, f"{counts}\n" + json.dumps(problems, indent=1)[:3000]
    return counts


# --- two instances on PostgreSQL and Redis -----------------------------------------------------------------------

@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as both:
        yield both


def outage(halt: Callable[[], None], resume: Callable[[], None]) -> Callable[[], None]:
    def fault() -> None:
        halt()
        time.sleep(OUTAGE_S)
        resume()
    return fault


def test_postgres_stopped_under_load_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    patients = run_with_fault(cluster.instances, cluster.postgres.url,
                              outage(cluster.postgres.halt, cluster.postgres.resume))
    assert sum(p.told_503 for p in patients) > 0, "the outage was never noticed: the test proved nothing"


def test_redis_stopped_under_load_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    patients = run_with_fault(cluster.instances, cluster.postgres.url,
                              outage(cluster.redis.halt, cluster.redis.resume))
    assert sum(p.told_503 for p in patients) > 0, "the outage was never noticed: the test proved nothing"


def test_an_instance_killed_under_load_strands_nobody(cluster: Cluster) -> None:
    def kill_a() -> None:
        for process in (cluster.a.rasa, cluster.a.actions):
            assert process is not None
            os.killpg(process.pid, signal.SIGKILL)

    patients = run_with_fault(cluster.instances, cluster.postgres.url, kill_a)
    longest = max(p.longest_wait_s for p in patients)
    assert longest < 20, f"a patient waited {longest:.1f} s for one answer (a dead instance's lock lives 6 s)"


# --- one instance on SQLite: a full disk, a disk turned read-only ---------------------------------------------------

# Where mounting is not allowed (no root, or a container without CAP_SYS_ADMIN) the disk tests use a
# plain folder and a per-process file size limit instead; FAULT_DISK=limit forces that here too.
FORCE_LIMIT = os.environ.get("FAULT_DISK") == "limit"


@dataclass
class Disk:
    """The SQLite folder's disk, and how a test makes it full or read-only.

    Mounted: a tmpfs filled with dd, or an ext4 image turned read-only by a disk error.
    Not mounted: a plain folder; the Rasa process's RLIMIT_FSIZE is lowered to the size of the
    write-ahead log (where every commit goes), so each write that would grow a file fails with
    EFBIG (CPython ignores SIGXFSZ), as writes fail on a full disk. Raising it again frees the
    "disk"; a disk error keeps it for good. Rasa's own log fails to grow meanwhile too.
    """

    folder: Path
    mounted: bool

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def limit_writes(self, stack: Stack) -> None:
        assert stack.rasa is not None
        wal = self.data / "conversations.db-wal"
        size = wal.stat().st_size if wal.exists() else (self.data / "conversations.db").stat().st_size
        resource.prlimit(stack.rasa.pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    def fill(self, stack: Stack) -> None:
        if self.mounted:
            subprocess.run(["dd", "if=/dev/zero", f"of={self.folder / 'filler'}", "bs=1M", "count=64"],
                           capture_output=True)
        else:
            self.limit_writes(stack)

    def free(self, stack: Stack) -> None:
        if self.mounted:
            (self.folder / "filler").unlink()
        else:
            assert stack.rasa is not None
            resource.prlimit(stack.rasa.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)

    def fail(self, stack: Stack) -> None:
        """A disk error: the kernel makes the file system read-only, for good (the limit stays, unmounted)."""
        if self.mounted:
            disk_error(self.folder)
        else:
            self.limit_writes(stack)


@contextlib.contextmanager
def disk_at(mount: Path, *source: str) -> Iterator[Disk]:
    """`mount <source> <mount>` for the test; a plain folder (Disk.mounted False) where mounting is not
    allowed, or without a source."""
    mount.mkdir(mode=0o700)
    mountable = source and not FORCE_LIMIT
    done = subprocess.run(["mount", *source, str(mount)], capture_output=True, text=True) if mountable else None
    if done is None or done.returncode != 0:
        yield Disk(mount, mounted=False)
        return
    try:
        yield Disk(mount, mounted=True)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def stack_on(tmp_path: Path, disk: Disk) -> ContextManager[Stack]:
    """The embedded stack (SQLite) with its data folder on `disk`, running."""
    return running(store_stack(tmp_path / "stack", {"DATA_DIR": str(disk.data)}))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    """A 16 MB tmpfs for the SQLite folder (or a plain folder and the file size limit)."""
    with disk_at(tmp_path / "disk", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs") as disk:
        yield disk


@pytest.fixture
def embedded(tmp_path: Path, small_disk: Disk) -> Iterator[Stack]:
    with stack_on(tmp_path, small_disk) as stack:
        yield stack


def sqlite_url(stack: Stack) -> str:
    return Settings.from_env(stack.env).conversations_url


def test_a_full_disk_is_told_and_nothing_is_lost(embedded: Stack, small_disk: Disk) -> None:
    def fill() -> None:
        small_disk.fill(embedded)
        time.sleep(OUTAGE_S)
        small_disk.free(embedded)

    patients = run_with_fault([embedded], sqlite_url(embedded), fill)
    assert sum(p.told_503 for p in patients) > 0, "the full disk was never noticed: the test proved nothing"


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[Disk]:
    """An ext4 disk (a loop-mounted image) that turns read-only on its first error, as data disks are mounted.

    Rasa keeps the SQLite file open for writing, so Linux refuses a plain remount read-only;
    what makes a disk read-only under a running service is the kernel after a disk error,
    which ext4's `trigger_fs_error` raises on purpose. It cannot be undone while mounted.
    Without mkfs.ext4 or mount rights: a plain folder and the file size limit (Disk).
    """
    image = tmp_path / "disk.img"
    with image.open("wb") as out:
        out.truncate(64 * 2**20)
    made = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True, text=True)
    source = ["-o", "loop,errors=remount-ro", str(image)] if made.returncode == 0 else []
    with disk_at(tmp_path / "ext4", *source) as disk:
        yield disk


def disk_error(mount: Path) -> None:
    """The kernel's answer to a disk error on a data disk: the file system becomes read-only, for good."""
    device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mount)], capture_output=True, text=True,
                            check=True).stdout.strip()
    Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("test\n")
    options = subprocess.run(["findmnt", "-n", "-o", "OPTIONS", str(mount)], capture_output=True, text=True)
    assert "emergency_ro" in options.stdout or options.stdout.startswith("ro"), options.stdout


@pytest.fixture
def on_failing_disk(tmp_path: Path, failing_disk: Disk) -> Iterator[Stack]:
    with stack_on(tmp_path, failing_disk) as stack:
        yield stack


def test_a_disk_turned_read_only_is_told_and_nothing_stored_is_lost(on_failing_disk: Stack,
                                                                    failing_disk: Disk) -> None:
    patients = run_with_fault([on_failing_disk], sqlite_url(on_failing_disk),
                              lambda: failing_disk.fail(on_failing_disk), retry_deadline_s=OUTAGE_S)
    assert sum(p.told_503 for p in patients) > 0, "the read-only disk was never noticed: the test proved nothing"
    health = requests.get(f"{on_failing_disk.url}/webhooks/rest/", timeout=30)
    assert health.status_code == 503 and "conversations.db" in health.json()["problem"]


def test_the_health_check_writes_for_real(on_failing_disk: Stack, failing_disk: Disk) -> None:
    health = f"{on_failing_disk.url}/webhooks/rest/"
    assert requests.get(health, timeout=30).status_code == 200
    failing_disk.fail(on_failing_disk)  # reading still works: only a real write finds it
    reply = requests.get(health, timeout=30)
    assert reply.status_code == 503 and "conversations.db" in reply.json()["problem"]


@contextlib.contextmanager
def unwritable_folder(disk: Disk) -> Iterator[Path]:
    """A data folder Rasa cannot write: its disk remounted read-only; unmounted, a folder without write
    permission (root ignores permissions, so for root a /proc folder, where nobody can create a file)."""
    if disk.mounted:
        disk.data.mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk.folder)], check=True)
        try:
            yield disk.data
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk.folder)], check=True)
    elif os.geteuid() == 0:
        yield Path(f"/proc/{os.getpid()}")
    else:
        disk.data.mkdir(mode=0o500)
        try:
            yield disk.data
        finally:
            disk.data.chmod(0o700)


def test_an_unwritable_store_stops_start_up_and_names_the_path(tmp_path: Path, small_disk: Disk) -> None:
    with unwritable_folder(small_disk) as data:
        stack = store_stack(tmp_path / "stack", {"DATA_DIR": str(data)})
        try:
            with pytest.raises(RuntimeError):
                stack.start_rasa()
        finally:
            stop(stack.rasa)
    log = (tmp_path / "stack" / "rasa.log").read_text()
    assert f"{data}/conversations.db" in log


def test_a_repeated_message_id_is_answered_from_the_record(embedded: Stack) -> None:
    sender, message_id = new_sender(), "repeat-0001"

    def send() -> requests.Response:
        return requests.post(f"{embedded.url}/webhooks/rest/webhook", headers=embedded.auth, timeout=60,
                             json={"sender": sender, "message": "how long is my face red after?",
                                   "message_id": message_id})

    first, again = send(), send()
    assert first.status_code == again.status_code == 200
    assert [m.get("text") for m in again.json()] == [m.get("text") for m in first.json()]
    assert stored_message_ids(sqlite_url(embedded), Stack.conversation_id(sender)) == [message_id]


def test_an_apology_is_kept_in_the_record(embedded: Stack) -> None:
    assert embedded.actions is not None
    stop(embedded.actions)
    sender = new_sender()
    try:
        reply = embedded.say(sender, "how long does a session take?")
    finally:
        embedded.start_actions()
    bots = stored_events(sqlite_url(embedded), Stack.conversation_id(sender), "bot")
    assert [b["text"] for b in bots] == [m["text"] for m in reply if m.get("text")]
    assert bots[-1]["metadata"]["clinic"]["kind"] == "apology"
