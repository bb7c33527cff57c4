"""The targets of issue 13, guarded on the LOCKED evaluation sets, end to end over REST.

tests/eval/locked/ was written before the out-of-scope and urgent-path work and is never used
to choose training data, thresholds or patterns (docs/evaluation.md says how it is kept apart);
this test only reads its figures. One new conversation per message, as `make eval` sends them
(about 900 messages: well under a minute on the shared session servers).

Each bound is the issue's target where the locked figure meets it. Where it does not, the bound
is the honest locked figure at the time of writing (docs/evaluation.md), so the test still
catches a regression, and the target is named next to it.
"""

from __future__ import annotations

from typing import Dict, List

import pytest

from devtools.eval.run import Outcome, run_rest
from devtools.eval.score import SetScore, score
from devtools.eval.sets import load_split
from devtools.harness.servers import Stack

pytestmark = pytest.mark.servers

# (set, figure) -> (bound, "min" or "max", the target)
BOUNDS: Dict[tuple, tuple] = {
    ("out_of_scope", "topic_fact"): (0.02, "max", 0.02),
    ("complications", "urgent_recall"): (1.0, "min", 1.0),
    ("alarming_ordinary", "false_urgent"): (0.02, "max", 0.02),
    ("clinic_questions", "right"): (0.95, "min", 0.95),  # 98.0% (294 of 300) on 2026-11-30
    ("clinic_questions", "wrong"): (0.02, "max", 0.02),  # 1.7% (5 of 300) on 2026-11-30: met by one message
}


@pytest.fixture(scope="module")
def locked(stack: Stack) -> Dict[str, SetScore]:
    outcomes: List[Outcome] = run_rest(stack, load_split("locked"), workers=3)
    errors = [o.example.text[:60] for o in outcomes if o.kind == "error"]
    assert not errors, f"{len(errors)} messages got no answer from the fact store: {errors[:5]}"
    return {s.kind: s for s in score(outcomes)}


@pytest.mark.parametrize("kind, figure", list(BOUNDS))
def test_the_locked_set_meets_its_bound(locked: Dict[str, SetScore], kind: str, figure: str) -> None:
    bound, direction, target = BOUNDS[(kind, figure)]
    value = locked[kind].headline[figure]
    # Counts per category only: the locked messages are not printed, so that no one tunes on them
    # (`make eval` or `python -m devtools.eval --show-locked-failures` lists them for a report).
    misses = {name: len(t.failures) for name, t in locked[kind].categories.items() if t.failures}
    if direction == "min":
        assert value >= bound, f"{kind} {figure} {value:.3f} < {bound} (target {target}); misses: {misses}"
    else:
        assert value <= bound, f"{kind} {figure} {value:.3f} > {bound} (target {target}); misses: {misses}"
