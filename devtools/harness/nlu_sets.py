"""NLU example files (data/nlu/*.yml, tests/nlu/test_set.yml) read without Rasa, and what a test set scores.

The benchmark's parent process, the data tests and the pipeline comparison all need the (text, intent)
pairs; importing Rasa's own loader for that costs seconds, so they are read here with PyYAML, the way
Rasa 3.6 reads them for training and testing. tests/test_harness_helpers.py checks both readings agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

PROJECT = Path(__file__).resolve().parents[2]
TEST_SET = PROJECT / "tests" / "nlu" / "test_set.yml"  # held out: training never sees it (tests/test_nlu_data.py)


def load_examples(path: Path, unique: bool = True) -> List[Tuple[str, str]]:
    """(text, intent) for each example of each intent in a Rasa NLU YAML file, in file order.

    As Rasa's RasaYAMLReader reads an `examples: |` block: a line counts only when it starts with "-",
    its text is the rest stripped of spaces and line breaks, every other line (blank ones too) is
    skipped; and, as TrainingData does, an example repeated under the same intent counts once, unless
    unique=False (the data tests, which forbid repeats, need to see them). Entity annotations and
    retrieval intents (`intent/key`) are not resolved: the project's NLU files have none.
    """
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    pairs: List[Tuple[str, str]] = []
    for block in document.get("nlu") or []:
        if not isinstance(block, dict) or not block.get("intent"):
            continue  # synonyms, regexes, lookups, an intent without a name: no examples of an intent
        intent, examples = str(block["intent"]).strip(), block.get("examples") or ""
        if not isinstance(examples, str):
            raise ValueError(f"{path}: intent {intent}: only `examples: |` blocks are read, not lists of `text:`")
        pairs.extend((line[1:].strip("\n\r "), intent) for line in examples.splitlines() if line.startswith("-"))
    return list(dict.fromkeys(pairs)) if unique else pairs


def top_real_intent(parsed: Dict[str, Any]) -> str:
    """The classifier's own best guess in a parse result, ignoring the fallback wrapper."""
    for entry in parsed.get("intent_ranking") or []:
        if entry.get("name") != "nlu_fallback":
            return entry["name"]
    return (parsed.get("intent") or {}).get("name") or "None"
