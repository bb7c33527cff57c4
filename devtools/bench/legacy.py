"""Benchmarks our configuration against stock Rasa (`rasa init`'s config) and writes docs/benchmarks.md.

In one run, on the same training data (data/, domain.yml), for config.yml and
devtools/pipelines/rasa_init_default.yml:

- cold training time (`rasa train` as a subprocess, fresh output folder and training cache);
- start-up until the first answer (devtools/harness/servers.py's Stack: action server + Rasa server);
- NLU latency per message without HTTP (Agent.parse_message, in a worker process) and
  accuracy / macro-F1 on tests/nlu/test_set.yml;
- end-to-end latency over REST, action server included, at 1 and at 10 concurrent clients
  (p50/p95/p99) and throughput; messages come from the test set, each client has its own
  senders and starts a new conversation every CONVERSATION_TURNS messages;
- resident memory (RSS, children included) of Rasa and of the action server after warm-up.

Measurements alternate between the two configurations (NLU rounds, load rounds) so a
neighbour's load hits both alike; latencies are pooled over rounds. Every loop is
bounded in count and time. Both stacks keep conversations in SQLite, as `make run` does.

Writes docs/benchmarks.md (keeping its hand-written part after "## Where the time goes"),
docs/images/benchmarks.png, and the raw JSON under results/bench/.

Usage: python -m devtools.bench [--messages 450] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from devtools.compare_pipelines import TEST_SET  # noqa: E402
from devtools.harness.servers import BIN, Stack  # noqa: E402

OURS, BASE = "ours", "baseline"
CONFIGS = {OURS: PROJECT / "config.yml", BASE: PROJECT / "devtools" / "pipelines" / "rasa_init_default.yml"}
RESULTS = PROJECT / "results" / "bench"
DOC = PROJECT / "docs" / "benchmarks.md"
CHART = PROJECT / "docs" / "images" / "benchmarks.png"
KEEP_MARKER = "\n## Where the time goes\n"

CONVERSATION_TURNS = 10  # a client starts a new conversation (sender) after this many messages
TRAIN_TIMEOUT_S = 1800  # the baseline needed ~15 min at load average 6 on 2 cores
LEVEL_TIME_CAP_S = 120  # per configuration, level and round
REQUEST_TIMEOUT_S = 60
WARMUP_MESSAGES = 10
SUBPROCESS_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}


# ---------------------------------------------------------------- helpers

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def test_texts() -> List[str]:
    """The test set's messages (read as YAML: the bench process never imports Rasa)."""
    import yaml

    texts = []
    for block in yaml.safe_load(TEST_SET.read_text(encoding="utf-8"))["nlu"]:
        for line in str(block.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- "):
                texts.append(line[2:].strip())
    return texts


def machine_info() -> Dict[str, Any]:
    import rasa.version

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    ram_gb = float("nan")
    try:
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        ram_gb = kb / 1024 / 1024
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "ram_gb": round(ram_gb, 1), "machine": platform.machine(),
            "os": platform.platform(terse=True), "python": platform.python_version(), "rasa": rasa.version.__version__}


class LoadSampler:
    """Samples the 1-minute load average every few seconds while the bench runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s, self.samples = every_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> Dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(statistics.fmean(s), 2), "max": round(max(s), 2), "samples": len(s)}


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.NoSuchProcess:
            return 0
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total


# ---------------------------------------------------------------- training

def train(name: str, config: Path, out_dir: Path) -> Tuple[Path, float]:
    """Cold `rasa train`: fresh output folder and fresh training cache; wall time of the subprocess."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix=f"bench-cache-{name}-"))
    env = {**os.environ, **SUBPROCESS_ENV, "RASA_CACHE_DIRECTORY": str(cache)}
    log = out_dir / f"train-{name}.log"
    args = [str(BIN / "rasa"), "train", "--config", str(config), "--out", str(out_dir), "--fixed-model-name", name]
    start = time.perf_counter()
    try:
        with log.open("wb") as out:
            done = subprocess.run(args, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=TRAIN_TIMEOUT_S, check=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    seconds = time.perf_counter() - start
    model = out_dir / f"{name}.tar.gz"
    if done.returncode != 0 or not model.exists():
        raise RuntimeError(f"rasa train --config {config} failed:\n{log.read_text(errors='replace')[-3000:]}")
    return model, seconds


# ---------------------------------------------------------------- NLU without HTTP (worker process)

async def _nlu_rounds(models: Dict[str, str], rounds: int, limit: Optional[int]) -> Dict[str, Dict]:
    from rasa.core.agent import Agent
    from sklearn.metrics import accuracy_score, f1_score

    from devtools.compare_pipelines import load_test_set, top_real_intent

    examples = load_test_set()[:limit] if limit else load_test_set()
    agents = {}
    for name, path in models.items():
        start = time.perf_counter()
        agents[name] = Agent.load(path)
        load_s = time.perf_counter() - start
        for text, _ in examples[:5]:  # warm-up
            await agents[name].parse_message(text)
        agents[name] = (agents[name], load_s)
    out = {name: {"latencies_ms": [], "predicted": [], "load_s": agents[name][1]} for name in models}
    names = list(models)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else names[::-1]:  # alternate who goes first
            agent, result = agents[name][0], out[name]
            for text, _ in examples:
                start = time.perf_counter()
                parsed = await agent.parse_message(text)
                result["latencies_ms"].append((time.perf_counter() - start) * 1000)
                if round_no == 0:
                    result["predicted"].append(top_real_intent(parsed))
    gold = [g for _, g in examples]
    for result in out.values():
        predicted = result.pop("predicted")
        result["accuracy"] = accuracy_score(gold, predicted)
        result["macro_f1"] = f1_score(gold, predicted, average="macro", zero_division=0)
        result["messages"] = len(examples)
    return out


def nlu_worker(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="devtools.bench nlu-worker")
    parser.add_argument("out", type=Path)
    parser.add_argument("models", nargs="+", help="name=path/to/model.tar.gz")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    os.chdir(PROJECT)  # spaCy model paths in the configs are relative to the project
    models = dict(item.split("=", 1) for item in args.models)
    result = asyncio.run(_nlu_rounds(models, args.rounds, args.limit))
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


def measure_nlu(models: Dict[str, Path], rounds: int = 3, limit: Optional[int] = None,
                timeout: float = 900) -> Dict[str, Dict]:
    """Per-message NLU latency (pooled over alternating rounds), accuracy and macro-F1, in a worker process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nlu.json"
        args = [sys.executable, "-m", "devtools.bench", "nlu-worker", str(out), "--rounds", str(rounds),
                *[f"{name}={path}" for name, path in models.items()]]
        if limit:
            args += ["--limit", str(limit)]
        done = subprocess.run(args, cwd=PROJECT, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True,
                              timeout=timeout, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"NLU worker failed:\n{done.stderr.decode(errors='replace')[-3000:]}")
        raw = json.loads(out.read_text(encoding="utf-8"))
    for result in raw.values():
        latencies = result.pop("latencies_ms")
        result.update(p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95), samples=len(latencies))
    return raw


# ---------------------------------------------------------------- servers

def bench_stack(workdir: Path, model: Path, stock: bool = False) -> Stack:
    """A Stack as `make run` starts it: conversations in SQLite (ops/endpoints.py), in-memory lock store.

    stock=True is the baseline: Rasa's message path as shipped (its own per-reply validation and
    event lookup, the whole domain sent with every call, Rasa's SQLTrackerStore), started with
    `rasa run actions` and `rasa run`, so the comparison is with stock Rasa, not with our runtime.
    """
    from ops.endpoints import TRACKER_STORE_CLASS, endpoints_sections, render

    store = "SQL" if stock else TRACKER_STORE_CLASS
    sections = endpoints_sections({"DATA_DIR": str(workdir)}, tracker_store_type=store)
    stack = Stack(workdir, endpoints_extra=render(sections, only=["tracker_store", "lock_store"]),
                  env={"STOCK_RASA": "1"} if stock else {}, selective_domain=not stock, stock_commands=stock)
    stack.model = model
    return stack


def first_answer(stack: Stack, timeout: float = 120) -> float:
    """Seconds until the running stack answers one REST message (retries until then)."""
    import requests

    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stack.say(f"bench-first-{uuid.uuid4().hex[:6]}", "hello", timeout=timeout):
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


async def run_load(url: str, texts: Sequence[str], clients: int, messages: int, time_cap_s: float,
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
    webhook = f"{url}/webhooks/rest/webhook"

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
                async with session.post(webhook, json={"sender": sender, "message": text}) as reply:
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
                    levels: Sequence[int] = (1, 10)) -> Dict[str, Dict]:
    """Start-up, warm memory and REST load for each model, alternating between them."""
    texts = test_texts()
    names = list(models)
    stacks = {name: bench_stack(workdir / name, model, stock=name == BASE) for name, model in models.items()}
    out: Dict[str, Dict] = {name: {"load": {}} for name in names}
    runs: Dict[Tuple[str, int], List[Dict]] = {}
    try:
        for name in names:
            print(f"   start-up: {name}", flush=True)
            out[name]["startup"] = start_timed(stacks[name])
        for name in names:
            asyncio.run(run_load(stacks[name].url, texts, 1, WARMUP_MESSAGES, 60, f"warm-{name}"))
            out[name]["memory_warm"] = memory_mb(stacks[name])
        per_round = max(1, messages // rounds)
        for round_no in range(rounds):
            for level in levels:
                for name in names if (round_no + level) % 2 == 0 else names[::-1]:
                    result = asyncio.run(run_load(stacks[name].url, texts, level, per_round, LEVEL_TIME_CAP_S,
                                                  f"{name}-r{round_no}-l{level}-{uuid.uuid4().hex[:4]}"))
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


# ---------------------------------------------------------------- report

# (key, label, unit, lower_is_better, target test on the ratio ours/baseline, target text)
FIGURES = [
    ("train_s", "training, cold (s)", "s", True, lambda r: r <= 0.5, "≤ 0.5×"),
    ("startup_s", "start-up to first answer, whole stack (s)", "s", True, lambda r: r <= 0.8, "clearly lower (≤ 0.8×)"),
    ("rasa_startup_s", "start-up to first answer, Rasa only (s)", "s", True, None, ""),
    ("nlu_p50_ms", "NLU latency p50, no HTTP (ms)", "ms", True, None, ""),
    ("nlu_p95_ms", "NLU latency p95, no HTTP (ms)", "ms", True, None, ""),
    ("e2e1_p50_ms", "REST e2e, 1 client, p50 (ms)", "ms", True, lambda r: r <= 1 / 3, "≤ 1/3×"),
    ("e2e1_p95_ms", "REST e2e, 1 client, p95 (ms)", "ms", True, None, ""),
    ("e2e1_p99_ms", "REST e2e, 1 client, p99 (ms)", "ms", True, None, ""),
    ("e2e1_mps", "throughput, 1 client (msg/s)", "msg/s", False, None, ""),
    ("e2e10_p50_ms", "REST e2e, 10 clients, p50 (ms)", "ms", True, None, ""),
    ("e2e10_p95_ms", "REST e2e, 10 clients, p95 (ms)", "ms", True, None, ""),
    ("e2e10_p99_ms", "REST e2e, 10 clients, p99 (ms)", "ms", True, lambda r: r <= 1 / 3, "≤ 1/3×"),
    ("e2e10_mps", "throughput, 10 clients (msg/s)", "msg/s", False, lambda r: r >= 3, "≥ 3×"),
    ("rss_rasa_mb", "memory (RSS) Rasa, warm (MiB)", "MiB", True, lambda r: r <= 0.8, "clearly lower (≤ 0.8×)"),
    ("rss_actions_mb", "memory (RSS) action server, warm (MiB)", "MiB", True, None, ""),
    ("rss_total_mb", "memory (RSS) both, warm (MiB)", "MiB", True, None, ""),
    ("accuracy", "NLU accuracy", "", False, None, ""),
    ("macro_f1", "NLU macro-F1", "", False, "f1", "no worse (≥ baseline − 0.005)"),
]
F1_TOLERANCE = 0.005


def flatten(result: Dict[str, Any]) -> Dict[str, float]:
    """The figures of one configuration, by FIGURES key."""
    nlu, srv = result["nlu"], result["servers"]
    load = srv["load"]
    flat = {
        "train_s": result["train_s"],
        "startup_s": srv["startup"]["stack_to_first_answer_s"],
        "rasa_startup_s": srv["startup"]["rasa_to_first_answer_s"],
        "nlu_p50_ms": nlu["p50_ms"], "nlu_p95_ms": nlu["p95_ms"],
        "rss_rasa_mb": srv["memory_warm"]["rasa_mb"], "rss_actions_mb": srv["memory_warm"]["actions_mb"],
        "rss_total_mb": srv["memory_warm"]["total_mb"],
        "accuracy": nlu["accuracy"], "macro_f1": nlu["macro_f1"],
    }
    for level in ("1", "10"):
        if level in load:
            for q in ("p50", "p95", "p99"):
                flat[f"e2e{level}_{q}_ms"] = load[level][f"{q}_ms"]
            flat[f"e2e{level}_mps"] = load[level]["throughput_mps"]
    return flat


def fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "":
        return f"{value:.3f}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def round_ratios(results: Dict[str, Dict], key: str) -> List[float]:
    """Ours/baseline for each REST round (rounds alternate, so round i of both ran side by side)."""
    if not key.startswith("e2e"):
        return []
    level, figure = key[3:].split("_", 1)
    figure = "throughput_mps" if figure == "mps" else figure
    rounds = [results[name]["servers"]["load"].get(level, {}).get("rounds", []) for name in (OURS, BASE)]
    return [a[figure] / b[figure] for a, b in zip(*rounds, strict=False) if b[figure]]


def comparison(results: Dict[str, Dict]) -> List[Dict[str, Any]]:
    ours, base = flatten(results[OURS]), flatten(results[BASE])
    rows = []
    for key, label, unit, _lower, test, target in FIGURES:
        if key not in ours or key not in base:
            continue
        a, b = ours[key], base[key]
        ratio = a / b if b else float("nan")
        met = None
        if test == "f1":
            met = a >= b - F1_TOLERANCE
        elif test is not None:
            met = bool(test(ratio))
        rows.append({"key": key, "label": label, "unit": unit, "ours": a, "baseline": b, "ratio": ratio,
                     "rounds": round_ratios(results, key), "target": target, "met": met})
    return rows


def table_lines(rows: List[Dict[str, Any]]) -> List[str]:
    lines = ["| figure | ours (config.yml) | baseline (rasa init) | ratio ours/baseline | ratio by round "
             "(min–max) | target | met |",
             "|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        spread = f"{min(r['rounds']):.2f}–{max(r['rounds']):.2f}×" if len(r["rounds"]) > 1 else ""
        lines.append(f"| {r['label']} | {fmt(r['ours'], r['unit'])} | {fmt(r['baseline'], r['unit'])} | "
                     f"{r['ratio']:.2f}× | {spread} | {r['target']} | {met} |")
    return lines


def pipeline_summary(config_text: str) -> str:
    """'SpacyNLP (models/spacy/en_lookups) → ... ; policies: RulePolicy' from config.yml's text."""
    import yaml

    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError:
        return "unreadable"

    def names(items: Any) -> List[str]:
        return [f"{c.get('name')} ({c['model']})" if c.get("model") else str(c.get("name")) for c in items or []]

    pipeline, policies = " → ".join(names(config.get("pipeline"))), ", ".join(names(config.get("policies")))
    return f"pipeline: {pipeline}; policies: {policies}"


def write_doc(report: Dict[str, Any], doc: Path = DOC, chart: Path = CHART) -> None:
    info, load, settings = report["machine"], report["load_average"], report["settings"]
    rows = comparison(report["results"])
    ours_srv, base_srv = report["results"][OURS]["servers"], report["results"][BASE]["servers"]
    errors = {n: sum(v["errors"] for v in report["results"][n]["servers"]["load"].values()) for n in (OURS, BASE)}
    lines = [
        "# Benchmarks: our configuration against stock Rasa",
        "",
        f"Measured {report['date']} by `make bench` (devtools/bench/) in {report['duration_s'] / 60:.1f} minutes, "
        f"on {info['cores']} cores ({info['cpu']}, {info['machine']}), {info['ram_gb']} GB RAM, {info['os']}, "
        f"Python {info['python']}, Rasa {info['rasa']}. "
        f"Load average (1 min) during the run: mean {load['mean']}, max {load['max']} "
        f"({'a busy machine: absolute figures are noisy, the ratios less so' if load['mean'] > 1.5 else 'quiet'}).",
        "",
        f"*Ours* is `config.yml` as it was at run time ({pipeline_summary(settings.get('config_yml', ''))}); "
        "the *baseline* is the configuration `rasa init` writes "
        "for Rasa 3.6 (`devtools/pipelines/rasa_init_default.yml`: DIET, ResponseSelector, TED, UnexpecTED, "
        "Memoization, Rule). Both are trained on the same data (data/, domain.yml) and served the same way: "
        "the same action server code, the REST channel, conversations in SQLite, an in-memory lock store, one "
        "Sanic worker each (Rasa's default). The baseline runs Rasa as shipped: started with `rasa run "
        "actions` and `rasa run`, and `STOCK_RASA=1` (its own per-reply JSON Schema validation and "
        "event-class lookup, the whole domain sent with every action call, Rasa's `SQLTrackerStore`). Ours "
        "runs what `make run` runs: the servers started with `python -m rasa_sdk` and `python -m "
        "rasa_extensions.launcher`, the validator built once (rasa_extensions/action_validation.py), the "
        "event-class table (rasa_extensions/event_types.py), `enable_selective_domain`, and the conversations "
        "in use kept in memory in front of SQLite in write-ahead-log mode (rasa_extensions/tracker_store.py).",
        "",
        f"![benchmark chart]({os.path.relpath(chart, doc.parent)})",
        "",
        *table_lines(rows),
        "",
        "How each figure is measured:",
        "",
        "- **training**: `rasa train --config X --out <new folder> --fixed-model-name X` as a subprocess with a "
        "fresh training cache (`RASA_CACHE_DIRECTORY`), wall time, one run each (core and NLU).",
        "- **start-up**: the action server is started, then Rasa with the model (devtools/harness/servers.py `Stack`); "
        "*whole stack* is from spawning the action server to the first REST answer, *Rasa only* from spawning "
        "Rasa. The action server is the same for both.",
        f"- **NLU latency**: `Agent.load` + `parse_message` in one worker process over tests/nlu/test_set.yml "
        f"({report['results'][OURS]['nlu']['messages']} messages), {settings['nlu_rounds']} rounds alternating "
        "between the two models, pooled; no HTTP, no dialogue.",
        f"- **REST end to end**: {settings['messages']} messages per configuration and level, in "
        f"{settings['rounds']} rounds alternating between the two stacks, each capped at {LEVEL_TIME_CAP_S} s "
        "(the pooled figures judge the targets; the per-round ratios show how much one round can differ); "
        "every client sends its next message when the answer to the previous one arrives (closed loop), uses "
        f"its own senders and starts a new conversation every {CONVERSATION_TURNS} messages (the clients' "
        "first conversations staggered in length, so they do not all start at once); messages are "
        "drawn from the test set. Latency is the client's (POST to reply), which includes NLU, dialogue "
        "policies, the SQLite conversation store and the round trip to the action server. Throughput = "
        f"answers / wall time at that level. Failed requests: ours {errors[OURS]}, baseline {errors[BASE]}.",
        f"- **memory**: RSS of each process tree (children included) after {WARMUP_MESSAGES} warm-up messages; "
        f"after the load test: Rasa {ours_srv['memory_after_load']['rasa_mb']:.0f} MiB (ours) vs "
        f"{base_srv['memory_after_load']['rasa_mb']:.0f} MiB (baseline).",
        "- **accuracy / macro-F1**: the classifier's top intent (ignoring the fallback wrapper) on the test set, "
        "which training never sees.",
        "",
        "Raw figures: `results/bench/latest.json` (not in git). Rerun: `make bench` (most of its time is "
        "training the baseline).",
    ]
    doc.parent.mkdir(parents=True, exist_ok=True)
    existing = doc.read_text(encoding="utf-8") if doc.exists() else ""
    tail = existing[existing.index(KEEP_MARKER):] if KEEP_MARKER in existing else ""
    doc.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")


def write_chart(report: Dict[str, Any], chart: Path = CHART) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["key"]: r for r in comparison(report["results"])}
    panels = [k for k in ("train_s", "startup_s", "nlu_p50_ms", "e2e1_p50_ms", "e2e10_p99_ms", "e2e10_mps",
                          "rss_rasa_mb", "macro_f1") if k in rows]
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(panels) / cols), cols, figsize=(13, 6.2))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, panels, strict=False):
        row = rows[key]
        bars = ax.bar(["ours", "baseline"], [row["ours"], row["baseline"]], color=["#2a9d8f", "#b0b0b0"])
        for bar, value in zip(bars, (row["ours"], row["baseline"]), strict=True):
            ax.annotate(fmt(value, row["unit"]), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9)
        verdict = "" if row["met"] is None else (" ✓" if row["met"] else " ✗")
        ax.set_title(f"{row['label']}\n{row['ratio']:.2f}×{verdict}", fontsize=9)
        ax.margins(y=0.18)
        ax.tick_params(labelsize=8)
    info = report["machine"]
    fig.suptitle(f"Ours (config.yml) vs rasa init baseline — {report['date']}, {info['cores']} cores, "
                 f"load avg {report['load_average']['mean']}", fontsize=11)
    fig.tight_layout()
    chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(chart, dpi=100)
    plt.close(fig)


def print_table(rows: List[Dict[str, Any]]) -> None:
    print(f"\n{'figure':<44} {'ours':>10} {'baseline':>10} {'ratio':>7}  target")
    for r in rows:
        met = "" if r["met"] is None else ("  met" if r["met"] else "  NOT met")
        print(f"{r['label']:<44} {fmt(r['ours'], r['unit']):>10} {fmt(r['baseline'], r['unit']):>10} "
              f"{r['ratio']:>6.2f}x  {r['target']}{met}")


# ---------------------------------------------------------------- main

def main(argv: List[str]) -> int:
    if argv[:1] == ["nlu-worker"]:
        return nlu_worker(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=450, help="REST messages per configuration and level")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds they are split into")
    parser.add_argument("--nlu-rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny counts, to check the bench itself")
    parser.add_argument("--models", nargs=2, metavar="NAME=MODEL", default=None,
                        help="skip training and serve these models (ours=... baseline=...): reruns, development")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.rounds, args.nlu_rounds = 20, 1, 1
    os.chdir(PROJECT)
    began = time.perf_counter()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = RESULTS / f"run-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report: Dict[str, Any] = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine_info(),
                              "settings": {"messages": args.messages, "rounds": args.rounds,
                                           "nlu_rounds": args.nlu_rounds,
                                           "configs": {k: str(v.relative_to(PROJECT)) for k, v in CONFIGS.items()},
                                           "config_yml": CONFIGS[OURS].read_text(encoding="utf-8")},
                              "results": {name: {} for name in CONFIGS}}
    with LoadSampler() as sampler:
        models = {name: Path(path) for name, path in (m.split("=", 1) for m in args.models or [])}
        for name, config in CONFIGS.items():
            if name in models:
                report["results"][name]["train_s"] = float("nan")
                continue
            print(f"== training {name} ({config.relative_to(PROJECT)}), cold", flush=True)
            models[name], seconds = train(name, config, run_dir / "models")
            report["results"][name]["train_s"] = seconds
            print(f"   {seconds:.1f} s", flush=True)
        print("== NLU in-process (latency, accuracy, macro-F1)", flush=True)
        nlu = measure_nlu(models, rounds=args.nlu_rounds, limit=30 if args.quick else None)
        for name in CONFIGS:
            report["results"][name]["nlu"] = nlu[name]
        print("== servers: start-up, memory, REST load", flush=True)
        servers = measure_servers(models, run_dir / "servers", args.messages, args.rounds)
        for name in CONFIGS:
            report["results"][name]["servers"] = servers[name]
    report["load_average"] = sampler.summary()
    report["duration_s"] = time.perf_counter() - began
    (run_dir / "bench.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    if not (args.quick or args.models):
        shutil.copy(run_dir / "bench.json", RESULTS / "latest.json")
    shutil.rmtree(run_dir / "models", ignore_errors=True)  # tens of MB each; the logs stay
    rows = comparison(report["results"])
    print_table(rows)
    if args.quick or args.models:
        print(f"\n(--quick or --models: docs not written) raw: {(run_dir / 'bench.json').relative_to(PROJECT)}")
        return 0
    write_chart(report)
    write_doc(report)
    print(f"\nWrote {DOC.relative_to(PROJECT)}, {CHART.relative_to(PROJECT)}, "
          f"{(RESULTS / 'latest.json').relative_to(PROJECT)} in {report['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
