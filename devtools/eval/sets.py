"""The evaluation sets, read into one list of labelled messages.

Two splits live under tests/eval/: `dev` (tune on it freely) and `locked` (written before the
out-of-scope and urgent-path work; reported on, never used to choose data, thresholds or
patterns). tests/nlu/test_set.yml, which earlier work tuned on, is read as a dev set too.

Four kinds of set, each with its own file format:
  clinic_questions   Rasa NLU YAML: each message labelled with the intent it asks
  out_of_scope       `categories: {name: [texts]}`: must not get a microneedling fact
  complications      `categories: {name: [texts]}`: must get the urgent answer
  alarming_ordinary  `messages: [{text, intent}]`: must not get the urgent answer, should get the intent's fact
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import yaml

from devtools.harness.nlu_sets import TEST_SET, load_examples

PROJECT = Path(__file__).resolve().parents[2]
EVAL_DIR = PROJECT / "tests" / "eval"
SPLITS = ("dev", "locked")
KINDS = ("clinic_questions", "out_of_scope", "complications", "alarming_ordinary")


@dataclass(frozen=True)
class Example:
    split: str  # dev | locked
    set: str  # one of KINDS
    category: str  # the intent (clinic questions) or the file's category
    text: str
    intent: Optional[str] = None  # the intent the message asks, where the set says


def _categories(path: Path) -> List[Tuple[str, str]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    categories: Dict[str, List[str]] = document.get("categories") or {}
    return [(name, str(text)) for name, texts in categories.items() for text in texts or []]


def load_set(split: str, kind: str, path: Optional[Path] = None) -> List[Example]:
    """One file of one split as Examples (path overrides tests/eval/<split>/<kind>.yml)."""
    path = path or EVAL_DIR / split / f"{kind}.yml"
    if kind == "clinic_questions":
        return [Example(split, kind, intent, text, intent) for text, intent in load_examples(path)]
    if kind == "alarming_ordinary":
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [Example(split, kind, str(m["intent"]), str(m["text"]), str(m["intent"]))
                for m in document.get("messages") or []]
    if kind in ("out_of_scope", "complications"):
        intent = "out_of_scope" if kind == "out_of_scope" else "report_complication"
        return [Example(split, kind, category, text, intent) for category, text in _categories(path)]
    raise ValueError(f"unknown evaluation set {kind!r}")


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def training_texts() -> Set[str]:
    """Every training example (data/nlu/*.yml), normalised: an evaluation message among them is not new wording."""
    return {norm(text) for path in sorted((PROJECT / "data" / "nlu").glob("*.yml")) for text, _ in load_examples(path)}


def load_split(split: str) -> List[Example]:
    """Every set of a split; the dev split also holds tests/nlu/test_set.yml as clinic questions."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    examples = [e for kind in KINDS for e in load_set(split, kind)]
    if split == "dev":
        examples += [Example("dev", "nlu_test_set", intent, text, intent) for text, intent in load_examples(TEST_SET)]
    return examples
