"""The story tests test what they claim: wording the training data does not contain.

`rasa test core --stories tests/stories` checks that every user line of a story is predicted
as its intent; a line copied from data/nlu/ would only show that training remembers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, Tuple

import yaml

from devtools.harness.nlu_sets import load_examples
from devtools.harness.servers import PROJECT

STORIES = PROJECT / "tests" / "stories"


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def story_lines() -> Iterator[Tuple[str, str, str]]:
    """(file, story, user text) of every user step of every story test file."""
    for path in sorted(STORIES.glob("*.yml")):
        for story in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stories") or []:
            for step in story.get("steps") or []:
                if "user" in step:
                    yield path.name, story.get("story", "?"), str(step["user"]).strip()


def training() -> Dict[str, str]:
    return {norm(text): intent for path in sorted((PROJECT / "data" / "nlu").glob("*.yml"))
            for text, intent in load_examples(path)}


def test_the_stories_have_user_lines() -> None:
    assert sum(1 for _ in story_lines()) >= 20


def test_no_story_line_is_a_training_example() -> None:
    taught = training()
    copied = [(f, story, text, taught[norm(text)]) for f, story, text in story_lines()
              if not text.startswith("/") and norm(text) in taught]  # a button payload is not wording
    assert copied == []


def test_the_check_reads_the_training_data_as_rasa_does(tmp_path: Path) -> None:
    """A line copied from training is caught, case and spacing aside."""
    taught = training()
    first = next(iter(taught))
    assert norm("  " + first.upper() + " ") in taught
