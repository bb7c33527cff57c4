"""The NLU component that says what a message is about: the clinic's treatment, or something else.

Placed after the intent classifier in config.yml. At `rasa train` it builds the domain
vocabulary (clinic/scope.py) from the training examples of the topic intents and from the
fact store's texts, lemmatised by the pipeline's own spaCy model, scored against spaCy's
English word frequencies (the pinned spacy-lookups-data package: nothing is downloaded), and
stores it with the model. For every message it adds `scope` to the parse data,
{"foreign": [...], "anchors": [...], "names_treatment": bool, "off_topic": bool},
which the action reads into the Turn (clinic/replies.py decides with it and the context).

It never changes the intent or its ranking: the dialogue decides, knowing the context.
Costs well under a millisecond a message (dictionary look-ups on the spaCy tokens).

Rasa's training cache knows the training data and this component's config, not the fact
store's texts nor the code of clinic/scope.py: after changing either, `rasa train --force`
rebuilds the vocabulary (a change to data/nlu/ does it anyway).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.utils.spacy_utils import SpacyModel, SpacyNLP
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic.fact_store import DEFAULT_FACTS_DIR
from clinic.scope import Vocabulary

logger = logging.getLogger(__name__)

SCOPE_KEY = "scope"
OUT_OF_SCOPE = "out_of_scope"
SPACY_DOC = "text_spacy_doc"  # where SpacyNLP leaves the message's spaCy Doc
VOCABULARY_FILE = "vocabulary.json"


def is_topic_intent(intent: str) -> bool:
    """Intents whose examples are about the treatment (clinic.replies' topics, and complication reports)."""
    return intent.startswith("ask_") or intent in ("book_appointment", "report_complication")


def content_words(doc: Any) -> List[Tuple[str, str]]:
    """(lower-case word, lemma) of the words that carry meaning: alphabetic, 3+ letters, not stop words."""
    return [(t.lower_, t.lemma_.lower()) for t in doc if t.is_alpha and len(t) > 2 and not t.is_stop]


def english_logprobs() -> Dict[str, float]:
    """spaCy's English word log-probabilities (spacy-lookups-data, installed with the pinned dependencies)."""
    spec = importlib.util.find_spec("spacy_lookups_data")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("spacy-lookups-data is not installed: run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "en_lexeme_prob.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table: Dict[str, float] = json.load(handle)
    return table


def fact_texts(facts_dir: Path) -> Iterator[str]:
    """Titles, texts and match words of the facts that answer a topic intent."""
    for path in sorted(facts_dir.glob("*.yml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for fact in raw.get("facts") or []:
            if isinstance(fact, dict) and any(is_topic_intent(str(i)) for i in fact.get("intents") or []):
                yield str(fact.get("title") or "")
                yield str(fact.get("text") or "")
                yield from (str(m) for m in fact.get("match") or [])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True, model_from="SpacyNLP")
class DomainScope(GraphComponent):
    """Adds `scope` (what the message is about) to every parse; see the module docstring."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [SpacyNLP]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {}

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 vocabulary: Optional[Vocabulary] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> DomainScope:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData, model: SpacyModel) -> Resource:
        words: List[str] = []
        shared: List[str] = []
        for example in training_data.intent_examples:
            doc = example.get(SPACY_DOC)
            intent = str(example.get("intent") or "")
            if doc is not None and is_topic_intent(intent):
                words.extend(_both_forms(content_words(doc)))
            elif doc is not None and intent == OUT_OF_SCOPE:
                shared.extend(_both_forms(content_words(doc)))
        for text in fact_texts(DEFAULT_FACTS_DIR):  # lemmatised by the pipeline's own spaCy model, as messages are
            words.extend(_both_forms(content_words(model.model(text.lower()))))
        self.vocabulary = Vocabulary.build(words, english_logprobs(), shared)
        logger.info("Domain vocabulary: %d words, %d naming the topic", len(self.vocabulary.scores),
                    len(self.vocabulary.anchors))
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(self.vocabulary.to_json(), encoding="utf-8")
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> DomainScope:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = Vocabulary.from_json((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            logger.warning("No domain vocabulary in the model: every message counts as in scope")
            vocabulary = None
        return cls(config, model_storage, resource, vocabulary)

    def process(self, messages: List[Message], model: Optional[SpacyModel] = None) -> List[Message]:
        for message in messages:
            doc = message.get(SPACY_DOC)
            if self.vocabulary is None or doc is None:
                continue
            judgement = self.vocabulary.judge(content_words(doc), message.get("text") or "")
            message.set(SCOPE_KEY, judgement.as_dict(), add_to_output=True)
        return messages


def _both_forms(words: Iterable[Tuple[str, str]]) -> Iterator[str]:
    for word, lemma in words:
        yield lemma
        if word != lemma:
            yield word

