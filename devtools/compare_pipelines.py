"""Compares NLU pipelines on the held-out test set and writes docs/nlu-pipelines.md.

Each pipeline is trained (NLU only) on data/nlu and evaluated on
tests/nlu/test_set.yml, which training never sees: accuracy, macro-F1,
training time, and per-message inference latency without the HTTP layer.
The project's config.yml is measured as it is, next to the alternatives in
devtools/pipelines/, in one run on one machine.

Usage: python -m devtools.compare_pipelines [config.yml ...]
Each run saves its pipelines' results under results/nlu-compare/ and rewrites
the table from every result there, so pipelines can be measured one at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

from devtools.harness.nlu_sets import TEST_SET, load_examples, top_real_intent

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "results" / "nlu-compare"
DOC = PROJECT / "docs" / "nlu-pipelines.md"
DEFAULT_CONFIGS = [PROJECT / "config.yml", *sorted((PROJECT / "devtools" / "pipelines").glob("*.yml"))]


async def evaluate(model_path: str, examples: List[Tuple[str, str]]) -> Dict:
    from rasa.core.agent import Agent
    from sklearn.metrics import accuracy_score, f1_score

    agent = Agent.load(model_path)
    for text, _ in examples[:5]:  # warm-up
        await agent.parse_message(text)
    latencies, predictions, records = [], [], []
    fallbacks = 0
    for text, gold in examples:
        start = time.perf_counter()
        parsed = await agent.parse_message(text)
        latencies.append((time.perf_counter() - start) * 1000)
        predicted = top_real_intent(parsed)
        predictions.append(predicted)
        fallbacks += (parsed.get("intent") or {}).get("name") == "nlu_fallback"
        records.append({
            "text": text, "gold": gold, "predicted": predicted,
            "intent": (parsed.get("intent") or {}).get("name"),
            "ranking": [(r["name"], round(r["confidence"], 4)) for r in parsed.get("intent_ranking") or []][:5],
        })
    gold = [g for _, g in examples]
    latencies.sort()
    return {
        "accuracy": accuracy_score(gold, predictions),
        "macro_f1": f1_score(gold, predictions, average="macro", zero_division=0),
        "fallback_rate": fallbacks / len(examples),
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "records": records,
    }


def train_nlu_quietly(config: Path, out_dir: Path) -> str:
    from rasa.model_training import train_nlu

    return train_nlu(config=str(config), nlu_data=str(PROJECT / "data" / "nlu"), output=str(out_dir),
                     fixed_model_name=config.stem)


def measure(config: Path, examples: List[Tuple[str, str]], out_dir: Path) -> Dict:
    start = time.perf_counter()
    model = train_nlu_quietly(config, out_dir)
    train_seconds = time.perf_counter() - start
    result = asyncio.run(evaluate(model, examples))
    result["train_s"] = train_seconds
    return result


def display_name(config: Path) -> str:
    return "config.yml (ours)" if config.name == "config.yml" else config.stem


def write_doc(rows: List[Tuple[str, Dict]], n_examples: int) -> None:
    import rasa

    lines = [
        "# NLU pipelines compared",
        "",
        f"Measured {dt.date.today().isoformat()} on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, {platform.machine()}), Python {platform.python_version()}, "
        f"Rasa {rasa.__version__}, by `make nlu-compare` (devtools/compare_pipelines.py).",
        f"Test set: tests/nlu/test_set.yml, {n_examples} messages that training never sees. "
        "Accuracy and macro-F1 use the classifier's top intent; 'fallback' is the share of test "
        "messages the FallbackClassifier (where configured) sent to \"did you mean\". Training time "
        "is NLU only, cold (Rasa's training cache off) in one process that has already trained once; "
        "latency is per message through Rasa's parser, without HTTP.",
        "",
        "| pipeline | accuracy | macro-F1 | fallback | training (s) | latency p50 (ms) | p95 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['fallback_rate']:.1%} | "
                     f"{r['train_s']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    DOC.parent.mkdir(exist_ok=True)
    existing = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    marker = "\n## Choice\n"
    tail = existing[existing.index(marker):] if marker in existing else ""
    DOC.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")


def main(argv: List[str]) -> int:
    # Set here, not at import, so importing this module changes nothing. Both are read later: TensorFlow's
    # log level when Rasa first imports it, the cache size when a training starts.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["RASA_MAX_CACHE_SIZE"] = "0"  # Rasa's training cache would make every training after the first warm
    os.chdir(PROJECT)  # the spaCy model path in the configs is relative to the project
    configs = [Path(a) for a in argv] or DEFAULT_CONFIGS
    examples = load_examples(TEST_SET)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # An untimed first training pays the process's one-off import and set-up costs,
        # which would otherwise be charged to whichever pipeline comes first.
        train_nlu_quietly(configs[0], Path(tmp) / "warm-up")
        for config in configs:
            print(f"== {display_name(config)}", flush=True)
            result = measure(config, examples, Path(tmp))
            (RESULTS / f"{config.stem}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
            print(f"   accuracy {result['accuracy']:.3f}  macro-F1 {result['macro_f1']:.3f}  "
                  f"train {result['train_s']:.1f}s  p50 {result['p50_ms']:.1f}ms", flush=True)
    rows = [(display_name(c), json.loads((RESULTS / f"{c.stem}.json").read_text(encoding="utf-8")))
            for c in DEFAULT_CONFIGS if (RESULTS / f"{c.stem}.json").exists()]
    write_doc(rows, len(examples))
    print(f"Wrote {DOC.relative_to(PROJECT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
