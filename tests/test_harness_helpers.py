"""The small helpers tests and tools share (devtools/harness/stats.py, nlu_sets.py) do what their callers assume."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Tuple

import pytest

from devtools.harness.nlu_sets import TEST_SET, load_examples
from devtools.harness.stats import percentile

HUNDRED = [float(n) for n in range(1, 101)]


@pytest.mark.parametrize("values, q, expected", [
    (HUNDRED, 50, 50), (HUNDRED, 95, 95), (HUNDRED, 99, 99), (HUNDRED, 100, 100), (HUNDRED, 0, 1),
    (HUNDRED, 7, 7),  # q / 100 * n would round 0.07 * 100 up to rank 8
    ([7.0], 95, 7.0), ([3.0, 1.0, 2.0], 50, 2.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([1.0, 2.0, 3.0, 4.0], 51, 3.0),
])
def test_percentile_is_nearest_rank(values: List[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("examples, expected", [
    ("- hello\n- hi there\n", [("hello", "greet"), ("hi there", "greet")]),
    ("- hello\n\n- hi\n", [("hello", "greet"), ("hi", "greet")]),  # blank lines skipped
    ("-hello  \n-   hi\n", [("hello", "greet"), ("hi", "greet")]),  # "-" alone is the marker, spaces stripped
    ("- hello\nhi without a dash\n", [("hello", "greet")]),  # Rasa skips (and warns about) such lines
    ("- hello\n- hello\n", [("hello", "greet")]),  # a repeat counts once, as in Rasa's TrainingData
])
def test_load_examples_reads_an_examples_block_as_rasa_does(
        tmp_path: Path, examples: str, expected: List[Tuple[str, str]]) -> None:
    path = tmp_path / "nlu.yml"
    block = "".join(f"      {line}\n" for line in examples.splitlines())
    path.write_text(f'version: "3.1"\nnlu:\n  - synonym: hi\n    examples: |\n      - hey\n'
                    f"  - intent: greet\n    examples: |\n{block}", encoding="utf-8")
    assert load_examples(path) == expected


def test_load_examples_can_keep_repeats(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text("nlu:\n- intent: greet\n  examples: |\n    - hello\n    - hello\n", encoding="utf-8")
    assert load_examples(path, unique=False) == [("hello", "greet"), ("hello", "greet")]


@pytest.mark.parametrize("path", [TEST_SET, *sorted((TEST_SET.parents[2] / "data" / "nlu").glob("*.yml"))],
                         ids=lambda p: p.name)
def test_load_examples_agrees_with_rasas_own_loader(path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    expected = [(m.get("text"), m.get("intent")) for m in load_data(str(path)).intent_examples]
    assert load_examples(path) == expected
