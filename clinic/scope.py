"""Is a message about this clinic's treatment at all? The words it is about, weighed against the domain.

The intent classifier must pick one of its intents, and a question shaped like a clinic
question ("how long does it take...", "how much is...", "does it hurt...") about something
else (an egg, a kitchen, a broken leg) gets the intent its shape suggests. So before a topic
fact is given, the dialogue (clinic/replies.py) asks what the message is *about*:

* the domain vocabulary is every word of the clinic's own material (the training examples of
  its topic intents and the fact store's texts), each scored by how much likelier it is there
  than in general English (a log-likelihood ratio against spaCy's English word frequencies,
  spacy-lookups-data): "microneedling", "collagen", "redness", "sunscreen" score high,
  "long", "take", "cost" near zero;
* a content word of the message that the domain never uses, is not a misspelling or another
  form of a domain word ("treatmnt", "wrinkly", "sunspots"), is not an adverb and is not among
  the most common English words is *foreign* ("egg", "mortgage", "tonsillitis");
* a domain word scoring at least ANCHOR_SCORE, not among the most common English words and not
  used as often by the off-topic training examples ("session", "appointment" are) is an
  *anchor*: it names the clinic's topic ("scar", "needling", "spf").

A message with a foreign word and no anchor, and not naming the treatment, is about something
else. Generic question words are neither, so "how long does it last?" stays in scope.

The vocabulary is built when the model is trained (rasa_extensions/scope.py, which also does
the tokenising and lemmatising with spaCy) and stored with it; judging a message is a few
dictionary look-ups. No Rasa and no spaCy here: plain words in, a Judgement out.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

# Chosen on the dev sets (docs/evaluation.md): see the table of values tried there.
GENERIC_LOGPROB = -9.0  # words more frequent than this in general English never make a message foreign
ANCHOR_SCORE = 4.0  # domain words at least this much (log) likelier in the clinic's material name its topic...
SHARED_MAX = 5  # ...unless the off-topic training examples use them this often too
TYPO_LOGPROB = -14.5  # only words rarer than this in general English may be misspellings of domain words
SMOOTHING = 2000.0  # Dirichlet prior mass of general English in the domain's word distribution
UNKNOWN_LOGPROB = -20.0  # a word general English has never seen
MIN_TYPO_LENGTH = 5  # shorter words are matched exactly: one letter changes too much of them
STEM_SHARE = 0.7  # a word sharing this much of its beginning (5+ letters) with a domain word is a form of it,
RARE_LOGPROB = -13.0  # if that domain word names the topic, or the word is this rare ("charger" is no "charge")

# The treatment itself, however it is spelled: a message naming it is in scope whatever else it says.
TREATMENT = re.compile(
    r"micro[\s-]?n[ea]+dl\w*|\bn[ea]+dl(ing|in)\b|derma[\s-]?(pen|roller|stamp)\w*|collagen induction|skin ?pen\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Judgement:
    """What a message is about, as far as the vocabulary can tell."""

    foreign: Tuple[str, ...] = ()  # content words from outside the domain
    anchors: Tuple[str, ...] = ()  # words that name the clinic's topic
    names_treatment: bool = False  # the message names the treatment itself

    @property
    def off_topic(self) -> bool:
        return bool(self.foreign) and not self.anchors and not self.names_treatment

    def as_dict(self) -> Dict[str, Any]:
        return {"foreign": list(self.foreign), "anchors": list(self.anchors),
                "names_treatment": self.names_treatment, "off_topic": self.off_topic}

    @classmethod
    def from_dict(cls, raw: Optional[Mapping[str, Any]]) -> Optional[Judgement]:
        """The judgement the NLU stored in the parse data, or None (no scope component, old model)."""
        if not isinstance(raw, Mapping):
            return None
        words = lambda key: tuple(str(w) for w in raw.get(key) or () if isinstance(w, str))  # noqa: E731
        return cls(words("foreign"), words("anchors"), bool(raw.get("names_treatment")))


def _deletions(word: str) -> List[str]:
    return [word[:i] + word[i + 1:] for i in range(len(word))]


@dataclass(frozen=True)
class Vocabulary:
    """The domain's words with their scores, the most common English words, and a typo index."""

    scores: Mapping[str, float]  # every domain word -> log-likelihood ratio against general English
    anchors: FrozenSet[str]  # the domain words that name its topic
    english: Mapping[str, float]  # general English words common enough to be no misspelling -> log-probability
    typos: Mapping[str, str] = field(default_factory=dict)  # a domain word with one letter deleted -> that word
    generic_logprob: float = GENERIC_LOGPROB

    @classmethod
    def build(cls, domain_words: Iterable[str], logprob: Mapping[str, float], shared_words: Iterable[str] = (),
              generic_logprob: float = GENERIC_LOGPROB, anchor_score: float = ANCHOR_SCORE) -> Vocabulary:
        """From the domain's words (lemmas and surface forms, lower case: the topic intents' training examples
        and the facts), general English log-probabilities, and the words of the off-topic training examples:
        a word those use too ("session", "pain", "appointment") does not name the clinic's topic."""
        shared = Counter(w for w in shared_words if w)
        counts = Counter(w for w in domain_words if w)
        total = sum(counts.values())
        scores = {}
        for word, count in counts.items():
            p_general = math.exp(logprob.get(word, UNKNOWN_LOGPROB))
            scores[word] = math.log((count + SMOOTHING * p_general) / ((total + SMOOTHING) * p_general))
        anchors = frozenset(w for w, score in scores.items() if score >= anchor_score and shared[w] < SHARED_MAX
                            and logprob.get(w, UNKNOWN_LOGPROB) <= generic_logprob)
        english = {w: round(lp, 2) for w, lp in logprob.items() if lp > TYPO_LOGPROB and w.isalpha() and w.islower()}
        typos: Dict[str, str] = {}
        for word in sorted(scores, key=lambda w: (-counts[w], w)):
            if len(word) >= MIN_TYPO_LENGTH:
                for variant in _deletions(word):
                    typos.setdefault(variant, word)
        return cls(scores, anchors, english, typos, generic_logprob)

    def generic(self, word: str) -> bool:
        return self.english.get(word, UNKNOWN_LOGPROB) > self.generic_logprob

    def domain_word(self, word: str, lemma: str) -> Optional[str]:
        """The domain word this is (itself, its lemma, or the word it misspells by one letter), or None."""
        for candidate in (lemma, word):
            if candidate in self.scores:
                return candidate
        if len(word) < MIN_TYPO_LENGTH:
            return None
        return self._form_of(word) or (None if word in self.english else self._misspelling_of(word))

    def _form_of(self, word: str) -> Optional[str]:
        """Another form of a domain word ("wrinkly": wrinkle, "consult": consultation), or two joined ("sunspots")."""
        for known in self._by_prefix.get(word[:MIN_TYPO_LENGTH], ()):
            shared = next((i for i, (a, b) in enumerate(zip(word, known, strict=False)) if a != b),
                          min(len(word), len(known)))
            if shared >= STEM_SHARE * min(len(word), len(known)) and (
                    known in self.anchors or self.english.get(word, UNKNOWN_LOGPROB) < RARE_LOGPROB):
                return known
        for i in range(3, len(word) - 2):
            head, tail = word[:i], word[i:]
            tail = tail[:-1] if tail.endswith("s") and tail[:-1] in self.scores else tail
            if head in self.scores and tail in self.scores:
                return tail
        return None

    def _misspelling_of(self, word: str) -> Optional[str]:
        if word in self.typos:  # one letter too few ("treatmnt")
            return self.typos[word]
        for variant in _deletions(word):  # one letter too many ("micronneedling") or one wrong ("treatmant")
            if variant in self.scores:
                return variant
            if variant in self.typos:
                return self.typos[variant]
        return None

    @property
    def _by_prefix(self) -> Dict[str, List[str]]:
        index = self.__dict__.get("_prefix_index")
        if index is None:
            index = {}
            for known in self.scores:
                if len(known) >= MIN_TYPO_LENGTH:
                    index.setdefault(known[:MIN_TYPO_LENGTH], []).append(known)
            object.__setattr__(self, "_prefix_index", index)
        return index

    def judge(self, words: Sequence[Tuple[str, str]], text: str = "") -> Judgement:
        """`words`: the message's content words as (lower-case word, lemma), stop words left out."""
        foreign: List[str] = []
        anchors: List[str] = []
        for word, lemma in words:
            exact = lemma if lemma in self.scores else word if word in self.scores else None
            if exact is None and (self.generic(word) or self.generic(lemma) or word.endswith("ly")):
                continue  # too common, or an adverb ("fully"): says how, not what the message is about
            known = exact or self.domain_word(word, lemma)
            if known is None:
                foreign.append(word)
            elif known in self.anchors:
                anchors.append(known)
        return Judgement(tuple(foreign), tuple(dict.fromkeys(anchors)), bool(TREATMENT.search(text)))

    def to_json(self) -> str:
        return json.dumps({"scores": self.scores, "anchors": sorted(self.anchors), "english": self.english,
                           "typos": self.typos, "generic_logprob": self.generic_logprob})

    @classmethod
    def from_json(cls, raw: str) -> Vocabulary:
        data = json.loads(raw)
        return cls(data["scores"], frozenset(data["anchors"]), data["english"], data["typos"],
                   float(data["generic_logprob"]))
