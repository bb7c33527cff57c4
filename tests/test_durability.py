"""Conversations that survive: restarts, several Rasa instances, a slow action server, broken facts.

Real processes only: Rasa and action servers (devtools/harness/servers.py), PostgreSQL
and Redis (devtools/harness/datastores.py). Two set-ups are started once per module:
- embedded: the `make run` default, conversations in SQLite under DATA_DIR;
- cluster: two Rasa instances, each with its own action server, sharing one
  PostgreSQL (TRACKER_STORE_URL) and one Redis lock store (LOCK_STORE_URL),
  as behind a load balancer (devtools/harness/cluster.py). The test client plays the load balancer.
Endpoints come from ops/endpoints.py, as in `make run`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import yaml

from clinic.fact_store import Snapshot
from clinic.settings import Settings
from devtools.harness import records
from devtools.harness.cluster import Cluster, in_parallel, running_cluster, stop_all
from devtools.harness.servers import (
    PROJECT,
    Stack,
    fact_of,
    new_sender,
    served_snapshot,
    stop,
    store_stack,
)
from devtools.harness.stats import percentile
from ops import endpoints

pytestmark = pytest.mark.servers

SLOW_ACTION_TIMEOUT_S = 3  # the embedded stack's, so the slow-action test is quick
CLUSTER_ACTION_TIMEOUT_S = 10  # the production default (rasa_extensions/action_timeout.py)
QUESTIONS = [  # each one classified with high confidence, so the answers do not hinge on a retrain
    "do u numb it",
    "how many sessions will I need",
    "what are the side effects",
    "how long does the appointment take",
    "do I need sunscreen after the treatment",
    "will it fix my acne scars",
    "can it fade stretch marks on my stomach",
    "what should I do for aftercare",
    "will it get rid of my forehead lines",
    "how does microneedling actually work?",
    "can it help with sun spots and uneven skin tone",
    "how long will my skin be red afterwards",
]
# A message the assistant cannot place (neither a topic nor off-topic: tests/test_e2e_rest.py uses it too)
# gets "did you mean ...?"; a second one in a row gets the clinic's phone, which shows that the
# `clarifying` slot came back from the store. (A typed "/nlu_fallback" is no payload any more:
# clinic/inbound.py passes it on as words.)
NOT_UNDERSTOOD = "the thing with the stuff"


# --- set-ups ---------------------------------------------------------------------------------------

def kill(process: Optional[subprocess.Popen]) -> None:
    """SIGKILL, as a crash or a lost machine would: nothing gets the chance to flush or say goodbye."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def restart_all(stack: Stack) -> None:
    """Both processes of the stack are killed, then start again (Rasa needs no action server to start)."""
    kill(stack.rasa)
    kill(stack.actions)
    in_parallel(stack.start_actions, stack.start_rasa)


@dataclass
class Embedded:
    stack: Stack
    url: str  # the SQLAlchemy URL of the conversations
    root: Path


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    root = tmp_path_factory.mktemp("embedded")
    store_env = {"DATA_DIR": str(root / "data")}
    stack = store_stack(root, store_env, ACTION_TIMEOUT_S=str(SLOW_ACTION_TIMEOUT_S))
    try:
        in_parallel(stack.start_actions, stack.start_rasa)
        yield Embedded(stack, Settings.from_env(store_env).conversations_url, root)
    finally:
        stop_all([stack])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), ACTION_TIMEOUT_S=str(CLUSTER_ACTION_TIMEOUT_S)) as both:
        yield both


# --- reading replies and the stored history --------------------------------------------------------

def texts(replies: List[dict]) -> List[str]:
    return [r.get("text", "") for r in replies]


def welcomed(snapshot: Snapshot, replies: List[dict]) -> bool:
    """A new conversation opens with the welcome; a continued one does not."""
    return bool(replies) and replies[0].get("text", "").startswith(snapshot.render(snapshot.facts["welcome"]))


def apology(snapshot: Snapshot) -> str:
    return snapshot.render(snapshot.facts["action_error"])


@dataclass
class Turn:
    user: str
    bot: List[str] = field(default_factory=list)
    actions: List[str] = field(default_factory=list)
    slots: Dict[str, object] = field(default_factory=dict)


def stored_events(url: str, sender: str) -> List[dict]:
    """The events of a sender this test talked to through `Stack.say`."""
    return records.stored_events(url, Stack.conversation_id(sender))


def stored_turns(url: str, sender: str) -> List[Turn]:
    turns: List[Turn] = []
    for event in stored_events(url, sender):
        kind = event.get("event")
        if kind == "user":
            turns.append(Turn(event.get("text") or ""))
        elif turns and kind == "bot":
            turns[-1].bot.append(event.get("text") or "")
        elif turns and kind == "action":
            turns[-1].actions.append(event.get("name"))
        elif turns and kind == "slot":
            turns[-1].slots[event.get("name")] = event.get("value")
    return turns


def assert_whole_turns(turns: List[Turn]) -> None:
    """Each message was handled once, alone: one answer action, then listening, nothing interleaved."""
    for turn in turns:
        assert turn.actions.count("action_answer") == 1, (turn.user, turn.actions)
        assert turn.actions[-1] == "action_listen", (turn.user, turn.actions)


def session_starts(url: str, sender: str) -> int:
    return sum(1 for e in stored_events(url, sender) if e.get("event") == "session_started")


# --- a restart of every process keeps every conversation -------------------------------------------

def check_survives_restart(stack: Stack, url: str, root: Path, restart: Callable[[], None]) -> None:
    """A conversation with context (the welcome was given, a "did you mean?" is pending) outlives a restart."""
    snapshot = served_snapshot(root)
    sender = new_sender()
    first = stack.say(sender, "do u numb it")
    assert welcomed(snapshot, first) and "ask_numbing" in snapshot.facts[fact_of(snapshot, first[-1]["text"])].intents
    unsure = stack.say(sender, NOT_UNDERSTOOD)
    assert fact_of(snapshot, unsure[-1]["text"]) == "clarify"
    before = stored_turns(url, sender)
    assert before[-1].slots.get("clarifying") is True and before[0].slots.get("last_topic")

    restart()

    again = stack.say(sender, NOT_UNDERSTOOD)
    assert not welcomed(snapshot, again), "the restart started a new conversation"
    assert fact_of(snapshot, again[-1]["text"]) == "clarify_failed", "the pending 'did you mean?' was forgotten"
    turns = stored_turns(url, sender)
    assert [t.user for t in turns] == ["do u numb it", NOT_UNDERSTOOD, NOT_UNDERSTOOD]
    assert [t.bot for t in turns] == [texts(first), texts(unsure), texts(again)]
    assert_whole_turns(turns)
    assert session_starts(url, sender) == 1


def test_embedded_sqlite_conversation_survives_a_restart_of_every_process(embedded: Embedded) -> None:
    check_survives_restart(embedded.stack, embedded.url, embedded.root, lambda: restart_all(embedded.stack))
    assert (embedded.root / "data" / "conversations.db").stat().st_size > 0


def test_postgresql_conversation_survives_a_restart_of_rasa_and_its_action_server(cluster: Cluster) -> None:
    check_survives_restart(cluster.a, cluster.postgres.url, cluster.root, lambda: restart_all(cluster.a))


# --- several instances share one conversation ------------------------------------------------------

def test_one_conversation_alternates_between_two_instances(cluster: Cluster) -> None:
    snapshot = served_snapshot(cluster.root)
    sender = new_sender()
    sent, replies = [], []
    for i, question in enumerate(QUESTIONS[:6]):
        reply = cluster.instances[i % 2].say(sender, question)
        sent.append(question)
        replies.append(texts(reply))
        assert reply and reply[-1]["text"] != apology(snapshot)
        assert welcomed(snapshot, reply) == (i == 0)
    turns = stored_turns(cluster.postgres.url, sender)
    assert [t.user for t in turns] == sent
    assert [t.bot for t in turns] == replies
    assert_whole_turns(turns)


def test_concurrent_messages_of_one_conversation_on_two_instances_are_handled_one_at_a_time(cluster: Cluster) -> None:
    snapshot = served_snapshot(cluster.root)
    sender = new_sender()
    questions = QUESTIONS[:8]
    start = threading.Barrier(len(questions))
    answers: Dict[str, List[str]] = {}

    def send(i: int) -> None:
        start.wait(timeout=30)
        answers[questions[i]] = texts(cluster.instances[i % 2].say(sender, questions[i], timeout=60))

    with ThreadPoolExecutor(len(questions)) as pool:
        list(pool.map(send, range(len(questions))))

    assert set(answers) == set(questions)
    for question, reply in answers.items():
        assert reply and reply[-1] != apology(snapshot), question
    # Handled one at a time: only the first one processed was the start of the conversation.
    assert sum(welcomed(snapshot, [{"text": r[0]}]) for r in answers.values()) == 1
    turns = stored_turns(cluster.postgres.url, sender)
    assert sorted(t.user for t in turns) == sorted(questions)
    for turn in turns:
        assert turn.bot == answers[turn.user], turn.user  # exactly the reply that was sent back
    assert_whole_turns(turns)
    assert session_starts(cluster.postgres.url, sender) == 1


# --- a patient typing fast: messages sent without waiting for the replies ---------------------------

TYPING_GAP_S = 0.15  # a patient who sends three short messages in a row, ~150 ms apart
ORDER_ROUNDS = 4  # conversations per set-up


def type_fast(instances: List[Stack], sender: str, questions: List[str]) -> Tuple[List[str], Dict[str, List[str]]]:
    """Sends `questions` TYPING_GAP_S apart, each without waiting for the previous reply, round robin over
    `instances`; returns them in the order sent, and each one's reply."""
    sent: List[str] = []
    replies: Dict[str, List[str]] = {}
    sending = threading.Lock()

    def send(i: int) -> None:
        time.sleep(i * TYPING_GAP_S)
        with sending:
            sent.append(questions[i])
        replies[questions[i]] = texts(instances[i % len(instances)].say(sender, questions[i], timeout=60))

    with ThreadPoolExecutor(len(questions)) as pool:
        list(pool.map(send, range(len(questions))))
    return sent, replies


@pytest.mark.parametrize("spread", ["one instance", "two instances"])
def test_messages_sent_without_waiting_are_answered_and_stored_in_the_order_sent(cluster: Cluster,
                                                                                  spread: str) -> None:
    """Three messages of one conversation in flight at once: each gets its own reply, stored in the order sent.

    On two instances the messages alternate (a, b, a), as a round-robin load balancer sends them:
    the lock store's tickets, issued in the order the messages reach an instance, set the order.
    """
    instances = [cluster.a] if spread == "one instance" else cluster.instances
    counts = {"sent": 0, "answered": 0, "stored": 0, "out_of_order": 0}
    for round_ in range(ORDER_ROUNDS):
        sender = new_sender("fast")
        sent, replies = type_fast(instances, sender, [QUESTIONS[(3 * round_ + i) % len(QUESTIONS)] for i in range(3)])
        turns = stored_turns(cluster.postgres.url, sender)
        counts["sent"] += len(sent)
        counts["answered"] += sum(1 for q in sent if replies.get(q))
        counts["stored"] += len(turns)
        counts["out_of_order"] += sum(1 for t, q in zip(turns, sent, strict=False) if t.user != q)
        assert [t.user for t in turns] == sent, f"{spread}: stored out of the order sent ({counts})"
        for turn in turns:
            assert turn.bot and turn.bot == replies[turn.user], turn.user  # its own reply, and that one stored
        assert_whole_turns(turns)
    print(f"\n{spread}, messages sent {TYPING_GAP_S:g} s apart: {counts}")


# --- load: two instances, many patients ------------------------------------------------------------

# 50 patients x 10 messages keeps this test near a minute on 2 cores; LOAD_MESSAGES=20 is the full run
# recorded in docs/deployment.md.
LOAD_SENDERS = int(os.environ.get("LOAD_SENDERS", 50))
LOAD_MESSAGES = int(os.environ.get("LOAD_MESSAGES", 10))
LOAD_CAP_S = float(os.environ.get("LOAD_CAP_S", 300))
LOAD_RESULTS = PROJECT / "results" / "durability" / "load.json"


def test_load_on_two_instances_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    """LOAD_SENDERS patients at once, each sending LOAD_MESSAGES back to back, spread over both instances.

    Back to back, with no time to type, is a stress test: it saturates the two instances, so the
    latencies are mostly queueing. What must hold whatever the load is integrity: every message gets
    one reply, is stored once and in order, with exactly the replies the patient received. Replies
    that are the apology (the action call timed out in an overloaded instance) are counted.
    """
    snapshot = served_snapshot(cluster.root)
    sorry = apology(snapshot)
    run = uuid.uuid4().hex[:6]
    senders = [f"load-{run}-{n:03d}" for n in range(LOAD_SENDERS)]
    stop = threading.Event()
    latencies: List[float] = []
    sent: Dict[str, List[str]] = {s: [] for s in senders}
    received: Dict[str, List[List[str]]] = {s: [] for s in senders}
    failures: List[str] = []

    def patient(n: int) -> None:
        sender = senders[n]
        with requests.Session() as http:
            for i in range(LOAD_MESSAGES):
                if stop.is_set():
                    return
                question = QUESTIONS[(n + i) % len(QUESTIONS)]
                instance = cluster.instances[(n + i) % 2]  # round robin, as a load balancer would
                began = time.monotonic()
                try:
                    reply = http.post(f"{instance.url}/webhooks/rest/webhook",
                                      json={"sender": sender, "message": question}, headers=instance.auth, timeout=60)
                    reply.raise_for_status()
                    answer = texts(reply.json())
                except (requests.RequestException, ValueError) as exc:
                    failures.append(f"{sender} #{i}: {exc}")
                    return
                latencies.append(time.monotonic() - began)
                sent[sender].append(question)
                received[sender].append(answer)

    began = time.monotonic()
    pool = ThreadPoolExecutor(LOAD_SENDERS)
    futures = [pool.submit(patient, n) for n in range(LOAD_SENDERS)]
    deadline = began + LOAD_CAP_S
    for future in futures:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            break
    stop.set()
    pool.shutdown(wait=True, cancel_futures=True)
    elapsed = time.monotonic() - began

    total = LOAD_SENDERS * LOAD_MESSAGES
    apologies = sum(1 for answers in received.values() for answer in answers if answer == [sorry])
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "senders": LOAD_SENDERS, "messages_per_sender": LOAD_MESSAGES, "replies": len(latencies),
        "apologies": apologies, "seconds": round(elapsed, 1),
        "messages_per_second": round(len(latencies) / elapsed, 1),
        **({f"p{p}_ms": round(1000 * percentile(latencies, p)) for p in (50, 95, 99)} if latencies else {}),
        "max_ms": round(1000 * max(latencies)) if latencies else None,
    }
    LOAD_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    LOAD_RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"\nload test: {summary}")
    assert not failures, failures[:5]
    assert len(latencies) == total, f"only {len(latencies)} of {total} replies within {LOAD_CAP_S}s"

    for sender in senders:
        turns = stored_turns(cluster.postgres.url, sender)
        assert [t.user for t in turns] == sent[sender], f"{sender}: lost, duplicated or reordered messages"
        # Every reply is stored as sent, the apology too (rasa_extensions/turns.py): the record is complete.
        assert [t.bot for t in turns] == received[sender], f"{sender}: stored replies differ from those sent"
        assert_whole_turns(turns)
        assert session_starts(cluster.postgres.url, sender) == 1


def test_the_lock_store_never_issues_a_ticket_twice(cluster: Cluster) -> None:
    """Eight instances' lock stores race on one conversation; every ticket is unique and kept."""
    from rasa.utils.endpoints import EndpointConfig

    from rasa_extensions.lock_store import AtomicRedisLockStore

    stores = [AtomicRedisLockStore(url=cluster.redis.url) for _ in range(7)]
    # The Helm chart's shape: host in `url`, the rest as separate keys.
    chart = EndpointConfig(url="127.0.0.1", port=cluster.redis.port, db=0, type=endpoints.LOCK_STORE_CLASS)
    stores.append(AtomicRedisLockStore(endpoint_config=chart))

    def issue(store: AtomicRedisLockStore, conversation: str, start: threading.Barrier, tickets: List[int]) -> None:
        start.wait(timeout=30)
        for _ in range(5):
            tickets.append(store.issue_ticket(conversation, 60))

    for attempt in range(20):
        conversation = f"race-{uuid.uuid4().hex[:8]}"
        start = threading.Barrier(len(stores))
        tickets: List[int] = []
        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(lambda store: issue(store, conversation, start, tickets), stores))  # noqa: B023
        assert sorted(tickets) == list(range(len(stores) * 5)), attempt
        assert [t.number for t in stores[0].get_lock(conversation).tickets] == list(range(len(stores) * 5))
        for number in tickets:
            stores[number % len(stores)].cleanup(conversation, number)
        assert stores[0].get_lock(conversation) is None  # the lock goes with its last ticket
    assert not cluster.redis.client().keys("lock:race-*")


# --- the action server slow or stopped; the fact store broken --------------------------------------

def test_a_slow_action_server_gets_the_apology_in_bounded_time_then_the_conversation_recovers(
        embedded: Embedded) -> None:
    stack, snapshot, sender = embedded.stack, served_snapshot(embedded.root), new_sender()
    assert welcomed(snapshot, stack.say(sender, "do u numb it"))
    os.killpg(stack.actions.pid, signal.SIGSTOP)  # still accepts connections, never answers
    try:
        began = time.monotonic()
        reply = stack.say(sender, "how many sessions will I need", timeout=60)
        waited = time.monotonic() - began
    finally:
        os.killpg(stack.actions.pid, signal.SIGCONT)
    assert texts(reply) == [apology(snapshot)]
    assert SLOW_ACTION_TIMEOUT_S <= waited < SLOW_ACTION_TIMEOUT_S + 15, waited
    turns = stored_turns(embedded.url, sender)
    assert turns[-1].user == "how many sessions will I need"  # kept, with the apology as the bot's turn
    assert turns[-1].bot == [apology(snapshot)], turns[-1].bot

    after = stack.say(sender, "what are the side effects")
    assert not welcomed(snapshot, after)
    assert "ask_side_effects" in snapshot.facts[fact_of(snapshot, after[-1]["text"])].intents


def test_a_stopped_action_server_gets_the_apology_and_the_conversation_resumes_after_it(embedded: Embedded) -> None:
    stack, snapshot, sender = embedded.stack, served_snapshot(embedded.root), new_sender()
    stack.say(sender, NOT_UNDERSTOOD)
    stop(stack.actions)
    try:
        assert texts(stack.say(sender, "do u numb it")) == [apology(snapshot)]
    finally:
        stack.start_actions()
    after = stack.say(sender, NOT_UNDERSTOOD)
    assert not welcomed(snapshot, after)
    assert fact_of(snapshot, after[-1]["text"]) == "clarify_failed"  # the conversation's state came back


def poll(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {seconds} s")


def test_a_fact_file_broken_while_serving_keeps_the_last_good_facts_then_takes_the_fix(
        embedded: Embedded) -> None:
    stack, root = embedded.stack, embedded.root
    path = root / "facts" / "recovery.yml"
    original = path.read_text()
    good = served_snapshot(root)
    served_before = good.render(good.facts["sunscreen"])
    log = stack.workdir / "actions.log"
    log_start = log.stat().st_size
    question = "do I need sunscreen after the treatment"

    def edited(text: str, follow_ups: Optional[List[str]] = None) -> str:
        data = yaml.safe_load(original)
        fact = next(f for f in data["facts"] if f["id"] == "sunscreen")
        fact["text"] = text
        fact["follow_ups"] = follow_ups or fact["follow_ups"]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def logged_error() -> Optional[str]:
        new = log.read_bytes()[log_start:].decode("utf-8", "replace")
        return next((line for line in new.splitlines() if "still serving the last good version" in line), None)

    try:
        path.write_text(edited("BROKEN: this text must never reach a patient.", ["aftercare", "no_such_fact"]))

        def last_good_served_and_error_logged() -> bool:
            assert stack.say(new_sender(), question)[-1]["text"].startswith(served_before)
            return logged_error() is not None

        poll(last_good_served_and_error_logged, 15, "the broken file's error was not logged")
        error = logged_error()
        assert "recovery.yml" in error and "fact 'sunscreen'" in error and "field 'follow_ups'" in error, error
        assert "no_such_fact" in error

        path.write_text(edited("FIXED: wear SPF 50 every day for {aftercare.sun_avoid}."))
        poll(lambda: stack.say(new_sender(), question)[-1]["text"].startswith("FIXED: wear SPF 50"), 15,
             "the fixed answer was not served")
    finally:
        path.write_text(original)
