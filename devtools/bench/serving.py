"""The servers as patients meet them: start-up, REST end-to-end latency and throughput, memory.

Each configuration runs as a whole stack (devtools/harness/servers.py's Stack: action server + Rasa
server) with conversations in SQLite, as `make run` does, so the latency includes everything a
patient waits for: NLU, dialogue policies, the conversation store and the action server. Load
rounds alternate between the two stacks so a neighbour's load hits both alike, and every loop is
bounded in count and time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from devtools.bench.configs import BASE
from devtools.bench.machine import tree_rss_bytes
from devtools.harness.nlu_sets import TEST_SET, load_examples
from devtools.harness.servers import Stack, new_sender
from devtools.harness.stats import percentile

CONVERSATION_TURNS = 10  # a client starts a new conversation (sender) after this many messages
LEVEL_TIME_CAP_S = 120  # per configuration, level and round
REQUEST_TIMEOUT_S = 60
WARMUP_MESSAGES = 10


def load_messages() -> List[str]:
    """What the clients send: the held-out test set's messages (read without importing Rasa)."""
    return [text for text, _ in load_examples(TEST_SET)]


def bench_stack(workdir: Path, model: Path, stock: bool = False) -> Stack:
    """A Stack as `make run` starts it: conversations in SQLite (ops/endpoints.py), in-memory lock store.

    stock=True is the baseline: Rasa's message path as shipped (its own per-reply validation and
    event lookup, the whole domain sent with every call, Rasa's SQLTrackerStore), started with
    `rasa run actions` and `rasa run`, so the comparison is with stock Rasa, not with our runtime.
    """
    from clinic.settings import Settings
    from ops.endpoints import TRACKER_STORE_CLASS, endpoints_sections, render

    store = "SQL" if stock else TRACKER_STORE_CLASS
    sections = endpoints_sections(Settings.from_env({"DATA_DIR": str(workdir)}), tracker_store_type=store)
    stack = Stack(workdir, endpoints_extra=render(sections, only=["tracker_store", "lock_store"]),
                  selective_domain=not stock, stock_commands=stock)
    stack.model = model
    return stack


def first_answer(stack: Stack, timeout: float = 120) -> float:
    """Seconds until the running stack answers one REST message (retries until then)."""
    import requests

    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stack.say(new_sender("bench-first"), "hello", timeout=timeout):
                return time.perf_counter() - start
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def start_timed(stack: Stack) -> Dict[str, float]:
    """Starts the stack; seconds for the action server, and for Rasa from spawn to its first REST answer."""
    start = time.perf_counter()
    stack.start_actions()
    actions_up = time.perf_counter()
    stack.start_rasa()
    first_answer(stack)
    answered = time.perf_counter()
    return {"actions_s": actions_up - start, "rasa_to_first_answer_s": answered - actions_up,
            "stack_to_first_answer_s": answered - start}


async def run_load(stack: Stack, texts: Sequence[str], clients: int, messages: int, time_cap_s: float,
                   sender_prefix: str) -> Dict[str, Any]:
    """`clients` concurrent REST clients sending `messages` in all (or until `time_cap_s`).

    Each client has its own senders and starts a new conversation every CONVERSATION_TURNS
    messages, the clients' first conversations staggered in length (as patients do not all
    start at once); it sends its next message as soon as the previous answer arrives.
    """
    import aiohttp

    latencies: List[float] = []
    errors: List[str] = []
    issued = 0
    deadline = time.monotonic() + time_cap_s
    webhook = f"{stack.url}/webhooks/rest/webhook"

    async def client(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal issued
        sent = 0
        while issued < messages and time.monotonic() < deadline:
            index = issued
            issued += 1
            sender = f"{sender_prefix}-c{number}-s{(sent + number) // CONVERSATION_TURNS}"
            text = texts[(index * 7 + number) % len(texts)]
            start = time.perf_counter()
            try:
                async with session.post(webhook, json={"sender": sender, "message": text}, headers=stack.auth) as reply:
                    body = await reply.json()
                    if reply.status != 200 or not body:
                        errors.append(f"{reply.status}: {str(body)[:100]}")
                        continue
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                errors.append(repr(exc)[:100])
                continue
            finally:
                sent += 1
            latencies.append((time.perf_counter() - start) * 1000)

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(n, session) for n in range(clients)))
        elapsed = time.perf_counter() - start
    return {"clients": clients, "latencies_ms": latencies, "errors": errors, "elapsed_s": elapsed,
            "capped": time.monotonic() >= deadline}


def latency_figures(latencies: Sequence[float], elapsed: float) -> Dict[str, float]:
    return {"p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "throughput_mps": len(latencies) / elapsed if elapsed else 0.0}


def load_summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Pools the rounds of one configuration and level; each round's own figures show the spread."""
    latencies = [x for r in runs for x in r["latencies_ms"]]
    elapsed = sum(r["elapsed_s"] for r in runs)
    return {"messages": len(latencies), "errors": sum(len(r["errors"]) for r in runs),
            "error_samples": [e for r in runs for e in r["errors"]][:5], "capped": any(r["capped"] for r in runs),
            **latency_figures(latencies, elapsed),
            "rounds": [latency_figures(r["latencies_ms"], r["elapsed_s"]) for r in runs]}


def memory_mb(stack: Stack) -> Dict[str, float]:
    rasa = tree_rss_bytes(stack.rasa.pid) / 2**20 if stack.rasa else float("nan")
    actions = tree_rss_bytes(stack.actions.pid) / 2**20 if stack.actions else float("nan")
    return {"rasa_mb": rasa, "actions_mb": actions, "total_mb": rasa + actions}


def measure_servers(models: Dict[str, Path], workdir: Path, messages: int, rounds: int,
                    levels: Sequence[int] = (1, 10)) -> Dict[str, Dict[str, Any]]:
    """Start-up, warm memory and REST load for each model, alternating between them."""
    texts = load_messages()
    names = list(models)
    stacks = {name: bench_stack(workdir / name, model, stock=name == BASE) for name, model in models.items()}
    out: Dict[str, Dict[str, Any]] = {name: {"load": {}} for name in names}
    runs: Dict[Tuple[str, int], List[Dict[str, Any]]] = {}
    try:
        for name in names:
            print(f"   start-up: {name}", flush=True)
            out[name]["startup"] = start_timed(stacks[name])
        for name in names:
            asyncio.run(run_load(stacks[name], texts, 1, WARMUP_MESSAGES, 60, f"warm-{name}"))
            out[name]["memory_warm"] = memory_mb(stacks[name])
        per_round = max(1, messages // rounds)
        for round_no in range(rounds):
            for level in levels:
                for name in names if (round_no + level) % 2 == 0 else names[::-1]:
                    result = asyncio.run(run_load(stacks[name], texts, level, per_round, LEVEL_TIME_CAP_S,
                                                  new_sender(f"{name}-r{round_no}-l{level}")))
                    runs.setdefault((name, level), []).append(result)
                    print(f"   round {round_no + 1}/{rounds}, {level:>2} client(s), {name:<8}: "
                          f"{len(result['latencies_ms'])} answers in {result['elapsed_s']:.1f}s, "
                          f"p50 {percentile(result['latencies_ms'], 50):.0f} ms", flush=True)
        for name in names:
            out[name]["memory_after_load"] = memory_mb(stacks[name])
            for level in levels:
                out[name]["load"][str(level)] = load_summary(runs[(name, level)])
    finally:
        for stack in stacks.values():
            stack.stop()
    return out
