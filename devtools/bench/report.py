"""The benchmark's report: the figures of both configurations side by side, judged against the targets.

Turns the raw results into rows (flatten, comparison), prints them, and writes docs/benchmarks.md,
keeping the hand-written analysis after "## Where the time goes" so a rerun refreshes only the
measured part. The targets are ratios ours/baseline, which a busy machine disturbs less than
absolute figures; the per-round ratios show how much one round can differ.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from devtools.bench.configs import BASE, OURS
from devtools.bench.serving import CONVERSATION_TURNS, LEVEL_TIME_CAP_S, WARMUP_MESSAGES
from devtools.harness.servers import PROJECT

DOC = PROJECT / "docs" / "benchmarks.md"
CHART = PROJECT / "docs" / "images" / "benchmarks.png"  # drawn by chart.py, linked from DOC
KEEP_MARKER = "\n## Where the time goes\n"

Target = Union[Callable[[float], bool], str, None]  # a test of the ratio, "f1" (see F1_TOLERANCE), or none

# (key, label, unit, lower_is_better, target test on the ratio ours/baseline, target text)
FIGURES: List[Tuple[str, str, str, bool, Target, str]] = [
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


def fmt(value: Optional[float], unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "":
        return f"{value:.3f}"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def round_ratios(results: Dict[str, Dict[str, Any]], key: str) -> List[float]:
    """Ours/baseline for each REST round (rounds alternate, so round i of both ran side by side)."""
    if not key.startswith("e2e"):
        return []
    level, figure = key[3:].split("_", 1)
    figure = "throughput_mps" if figure == "mps" else figure
    rounds = [results[name]["servers"]["load"].get(level, {}).get("rounds", []) for name in (OURS, BASE)]
    return [a[figure] / b[figure] for a, b in zip(*rounds, strict=False) if b[figure]]


def comparison(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row a figure both configurations have: the two values, their ratio, and whether it meets the target."""
    ours, base = flatten(results[OURS]), flatten(results[BASE])
    rows: List[Dict[str, Any]] = []
    for key, label, unit, _lower, test, target in FIGURES:
        if key not in ours or key not in base:
            continue
        a, b = ours[key], base[key]
        ratio = a / b if b else float("nan")
        met: Optional[bool] = None
        if test == "f1":
            met = a >= b - F1_TOLERANCE
        elif callable(test):
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
        "actions` and `rasa run`, with none of rasa_extensions installed (its own per-reply JSON Schema "
        "validation and event-class lookup, the whole domain sent with every action call, Rasa's "
        "`SQLTrackerStore`). Ours "
        "runs what `make run` runs: the servers started with `python -m rasa_sdk` and `python -m "
        "rasa_extensions.launcher`, the validator built once (rasa_extensions/action_validation.py), the "
        "event-class table (rasa_extensions/event_types.py), `enable_selective_domain`, kept-alive connections "
        "to the action server (rasa_extensions/action_connection.py), and the conversations in use kept in "
        "memory in front of SQLite in write-ahead-log mode over one open connection "
        "(rasa_extensions/tracker_store.py).",
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


def print_table(rows: List[Dict[str, Any]]) -> None:
    print(f"\n{'figure':<44} {'ours':>10} {'baseline':>10} {'ratio':>7}  target")
    for r in rows:
        met = "" if r["met"] is None else ("  met" if r["met"] else "  NOT met")
        print(f"{r['label']:<44} {fmt(r['ours'], r['unit']):>10} {fmt(r['baseline'], r['unit']):>10} "
              f"{r['ratio']:>6.2f}x  {r['target']}{met}")


