"""Groups unanswered questions that are worded alike, so staff see "12 × laser hair removal", not 12 lines.

Simple and explainable on purpose: each distinct question (lower-cased, contact
details and numbers removed, English stop words, greetings and the words of every question here
("microneedling", "treatment") dropped, common endings
cut) becomes a TF-IDF vector of its 3- and 4-letter pieces (scikit-learn; pieces rather than
whole words, so "removal" and "remove", or a typo, still count as alike); questions are taken most frequent first, and
each joins the group whose founding question it resembles most (cosine similarity at
least THRESHOLD), else founds a new group. Comparisons are sparse matrix products in
batches, so a month of a busy clinic's unanswered questions groups in well under a second.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, Generic, List, Sequence, Tuple, TypeVar

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from console.privacy import mask

THRESHOLD = 0.4
BATCH = 512
MAX_DISTINCT = 20_000  # distinct questions grouped per request; the rest are counted, not grouped
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_ENDINGS = ("ing", "ed", "es", "s")
KEEP = frozenset({"not", "no", "cannot", "never"})  # stop words that change a question's sense
CHATTER = frozenset({"hi", "hello", "hey", "please", "pls", "thanks", "thank", "ok", "okay", "x", "xx", "phone",
                     "hidden", "mail",  # greetings, politeness and the masks' own words
                     "microneedling", "microneedle", "treatment", "clinic"})  # words in every question here

Item = TypeVar("Item")


@lru_cache(maxsize=65536)
def normalise(text: str) -> str:
    words = []
    for word in _WORD.findall(mask(text).lower()):
        if (word in ENGLISH_STOP_WORDS and word not in KEEP) or word in CHATTER:
            continue
        for ending in _ENDINGS:
            if len(word) > len(ending) + 3 and word.endswith(ending):
                word = word[: -len(ending)]
                break
        words.append(word)
    return " ".join(words)


@dataclass
class Group(Generic[Item]):
    label: str  # the founding question, normalised
    items: List[Item] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items)


def group(items: Sequence[Item], text_of: Callable[[Item], str], threshold: float = THRESHOLD
          ) -> Tuple[List[Group[Item]], int]:
    """(groups, largest first; how many items were left ungrouped because of MAX_DISTINCT)."""
    keys = [normalise(text_of(item)) for item in items]
    counts = Counter(keys)
    distinct = [key for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    left_out = sum(counts[key] for key in distinct[MAX_DISTINCT:])
    distinct = distinct[:MAX_DISTINCT]
    founder = _found_groups([key or "(no words)" for key in distinct], threshold)
    groups: Dict[int, Group[Item]] = {}
    index = {key: position for position, key in enumerate(distinct)}
    for item, key in zip(items, keys, strict=True):
        position = index.get(key)
        if position is None:
            continue
        leader = founder[position]
        groups.setdefault(leader, Group(distinct[leader] or "(no words)")).items.append(item)
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.label))
    return ordered, left_out


def _found_groups(texts: List[str], threshold: float) -> List[int]:
    """For each text, the position of the text that founded its group (itself for a founder)."""
    if not texts:
        return []
    try:
        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True).fit_transform(texts)
    except ValueError:  # no words at all
        return [0] * len(texts)
    founder = [-1] * len(texts)
    leaders: List[int] = []
    for start in range(0, len(texts), BATCH):
        stop = min(start + BATCH, len(texts))
        best_leader, best_score = [-1] * (stop - start), [0.0] * (stop - start)
        if leaders:
            scores = (vectors[start:stop] @ vectors[leaders].T).tocsr()
            best = scores.argmax(axis=1).A1
            top = scores.max(axis=1).toarray().ravel()
            best_leader = [leaders[b] for b in best]
            best_score = [float(s) for s in top]
        new_leaders: List[int] = []
        for offset in range(stop - start):
            position = start + offset
            if best_score[offset] >= threshold:
                founder[position] = best_leader[offset]
                continue
            if new_leaders:  # founders from this batch, not yet in `leaders`
                scores = (vectors[position] @ vectors[new_leaders].T).toarray().ravel()
                best = int(scores.argmax())
                if scores[best] >= threshold:
                    founder[position] = new_leaders[best]
                    continue
            founder[position] = position
            new_leaders.append(position)
        leaders.extend(new_leaders)
    return founder
