"""NLU latency per message without HTTP, accuracy and macro-F1 on the held-out test set.

Measured with Rasa's own parser (Agent.parse_message) in a worker process (`python -m
devtools.bench.nlu`), so the bench's process never loads Rasa, TensorFlow or the models, which
would stay in its memory and threads while it drives the REST clients. Rounds alternate which model
goes first, so a neighbour's load hits both alike; latencies are pooled over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from devtools.bench.configs import SUBPROCESS_ENV
from devtools.harness.nlu_sets import TEST_SET, load_examples, top_real_intent
from devtools.harness.servers import PROJECT
from devtools.harness.stats import percentile


async def _nlu_rounds(models: Dict[str, str], rounds: int, limit: Optional[int]) -> Dict[str, Dict[str, Any]]:
    from rasa.core.agent import Agent
    from sklearn.metrics import accuracy_score, f1_score

    examples = load_examples(TEST_SET)[:limit] if limit else load_examples(TEST_SET)
    agents: Dict[str, Agent] = {}
    load_s: Dict[str, float] = {}
    for name, path in models.items():
        start = time.perf_counter()
        agents[name] = Agent.load(path)
        load_s[name] = time.perf_counter() - start
        for text, _ in examples[:5]:  # warm-up
            await agents[name].parse_message(text)
    out: Dict[str, Dict[str, Any]] = {name: {"latencies_ms": [], "predicted": [], "load_s": load_s[name]}
                                      for name in models}
    names = list(models)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else names[::-1]:  # alternate who goes first
            agent, result = agents[name], out[name]
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


def worker(argv: List[str]) -> int:
    """The worker process: parses every test message with each model, writes the raw figures as JSON."""
    parser = argparse.ArgumentParser(prog="devtools.bench.nlu")
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
                timeout: float = 900) -> Dict[str, Dict[str, Any]]:
    """Per-message NLU latency (pooled over alternating rounds), accuracy and macro-F1, in a worker process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nlu.json"
        args = [sys.executable, "-m", "devtools.bench.nlu", str(out), "--rounds", str(rounds),
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


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
