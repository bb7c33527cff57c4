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
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from devtools.bench.chart import write_chart
from devtools.bench.configs import CONFIGS, OURS
from devtools.bench.machine import LoadSampler, machine_info
from devtools.bench.nlu import measure_nlu, worker
from devtools.bench.report import CHART, DOC, comparison, print_table, write_doc
from devtools.bench.serving import measure_servers
from devtools.bench.training import train
from devtools.harness.servers import PROJECT

RESULTS = PROJECT / "results" / "bench"


def main(argv: List[str]) -> int:
    """Trains both configurations, measures them, prints the comparison and (full runs) writes the report."""
    if argv[:1] == ["nlu-worker"]:
        return worker(argv[1:])  # the worker measure_nlu spawns as `python -m devtools.bench.nlu`
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
