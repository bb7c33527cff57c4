"""`make eval`: every evaluation set end to end through the real servers; figures per set and category.

Trains first when the data changed (ops.models, as `make train`: skipped otherwise), starts the real action
server and Rasa server with the latest model (devtools/harness/servers.py), sends every
message of tests/eval/{dev,locked}/ and tests/nlu/test_set.yml over REST, each as the first
message of a new conversation, and prints right / wrong / did-you-mean, off-topic given a
topic fact, urgent recall and the false-urgent rate, for the dev and the locked split apart.
Writes the generated part of docs/evaluation.md, docs/images/confusion.png and
results/eval/latest.json.

Failing messages are printed for the dev split only (tune on those); `--show-locked-failures`
prints the locked ones too, for the report: never tune on them.

Usage: python -m devtools.eval [--split dev|locked|all] [--no-train] [--no-write] [--in-process] [--model PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import List, Optional

from clinic.fact_store import domain_intents
from devtools.eval.plot import write_confusion
from devtools.eval.report import markdown, print_scores, print_unseen, summary, write_doc
from devtools.eval.run import Outcome, run_in_process, run_rest
from devtools.eval.score import score
from devtools.eval.sets import SPLITS, load_split, norm, training_texts
from devtools.harness.servers import PROJECT, Stack, latest_model, private_fact_store, served_snapshot

DOC = PROJECT / "docs" / "evaluation.md"
IMAGE = PROJECT / "docs" / "images" / "confusion.png"
RESULTS = PROJECT / "results" / "eval"


def progress(done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        print(f"  {done}/{total} messages", flush=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="all")
    parser.add_argument("--workers", type=int, default=3, help="messages in flight at once")
    parser.add_argument("--no-train", action="store_true", help="use the latest model as it is")
    parser.add_argument("--no-write", action="store_true", help="print only: leave docs/ and results/ alone")
    parser.add_argument("--in-process", action="store_true",
                        help="development only: parse and decide in this process, no servers (not end to end)")
    parser.add_argument("--show-locked-failures", action="store_true")
    parser.add_argument("--model", type=Path, default=None, help="a model other than the latest (comparisons)")
    args = parser.parse_args(argv)

    if not args.no_train:  # through ops.models: a stamped model, trained only when the data changed, pruned
        from ops import models

        if models.train() != 0:
            return 1
    splits = list(SPLITS) if args.split == "all" else [args.split]
    examples = [e for split in splits for e in load_split(split)]
    model = args.model or latest_model()
    print(f"Evaluating {len(examples)} messages ({', '.join(splits)}) with {model.name}", flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clinic-eval-") as tmp:
        workdir = Path(tmp)
        if args.in_process:
            outcomes: List[Outcome] = run_in_process(str(model), served_snapshot_of(workdir), examples)
        else:
            stack = Stack(workdir, env=private_fact_store(workdir), model=model)
            try:
                stack.start()
                outcomes = run_rest(stack, examples, workers=args.workers, progress=progress)
            finally:
                stack.stop()
    elapsed = time.monotonic() - started

    scores = score(outcomes)
    failures = ["dev", "locked"] if args.show_locked_failures else ["dev"]
    print_scores(scores, failures=failures)
    taught = training_texts()
    seen = Counter(f"{o.example.split}/{o.example.set}" for o in outcomes if norm(o.example.text) in taught)
    unseen = score(o for o in outcomes if norm(o.example.text) not in taught)
    print_unseen(unseen, seen)
    mode = "in process, not end to end" if args.in_process else "over REST"
    print(f"\n{len(outcomes)} messages {mode} in {elapsed:.0f} s", flush=True)
    if args.no_write or args.in_process or args.split != "all" or args.model:
        return 0
    measured = f"{dt.date.today().isoformat()}, model {model.name}"
    write_doc(DOC, markdown(scores, measured, unseen, seen))
    write_confusion(outcomes, domain_intents(), IMAGE)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"model": model.name, "figures": summary(scores),
                                                     "without_training_examples": summary(unseen)}, indent=2))
    print(f"Wrote {DOC.relative_to(PROJECT)}, {IMAGE.relative_to(PROJECT)}", flush=True)
    return 0


def served_snapshot_of(workdir: Path):  # type: ignore[no-untyped-def]
    private_fact_store(workdir)
    return served_snapshot(workdir)


if __name__ == "__main__":
    sys.exit(main())
