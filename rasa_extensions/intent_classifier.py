"""The intent classifier: TF-IDF word and character n-grams, and a logistic regression.

Chosen by measurement on the dev sets (docs/nlu-pipelines.md, docs/evaluation.md): on new
wording it is right more often than Rasa's CountVectorsFeaturizer + LogisticRegressionClassifier
on the same data, and its confidences are better calibrated, so the FallbackClassifier's
threshold separates right from wrong answers better. What differs from the stock pair:
  * TF-IDF with sublinear counts and each block L2-normalised: a long message does not
    drown out a short one, and words every intent uses weigh less;
  * word uni- and bigrams over spaCy's lemmas ("go in the sun" is not "go" + "sun"), and
    character 2-5-grams within words of the lower-cased text (typos, word forms);
  * the regularisation (C) is a setting; Rasa's classifier fixes it at scikit-learn's 1.0;
  * no class re-weighting: out_of_scope is the largest class on purpose (broad negatives),
    and "balanced" weights would undo that.
It needs only SpacyNLP and SpacyTokenizer before it (no featurizers), and stores its model
as JSON and NumPy arrays (no pickles).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix, hstack  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

logger = logging.getLogger(__name__)

TOKENS = "text_tokens"  # where the tokenizer leaves the message's tokens (rasa.shared.nlu.constants.TEXT_TOKENS)
MODEL_FILE = "tfidf_intents.json"
WEIGHTS_FILE = "tfidf_intents.npz"


def lemma_text(message: Message) -> str:
    """The message as its lemmas, space-separated (the tokenizer's, from the pipeline's spaCy model)."""
    tokens = message.get(TOKENS) or []
    return " ".join(str(getattr(t, "lemma", None) or t.text).lower() for t in tokens)


def plain_text(message: Message) -> str:
    return str(message.get("text") or "").lower()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfIntentClassifier(IntentClassifier, GraphComponent):
    """Sets `intent` and `intent_ranking`; see the module docstring."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [SpacyTokenizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"word_ngrams": [1, 2], "char_ngrams": [2, 5], "C": 20.0, "max_iter": 5000,
                "ranking_length": 10, "random_state": 42}

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.words: Optional[TfidfVectorizer] = None
        self.chars: Optional[TfidfVectorizer] = None
        self.classifier: Optional[LogisticRegression] = None

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> TfidfIntentClassifier:
        return cls(config, model_storage, resource)

    def _vectorizers(self, vocabularies: Tuple[Optional[dict], Optional[dict]] = (None, None)
                     ) -> Tuple[TfidfVectorizer, TfidfVectorizer]:
        words = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", ngram_range=tuple(self.config["word_ngrams"]),
                                sublinear_tf=True, vocabulary=vocabularies[0])
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(self.config["char_ngrams"]),
                                sublinear_tf=True, vocabulary=vocabularies[1])
        return words, chars

    def _features(self, messages: List[Message]) -> csr_matrix:
        assert self.words is not None and self.chars is not None
        return hstack([self.words.transform([lemma_text(m) for m in messages]),
                       self.chars.transform([plain_text(m) for m in messages])]).tocsr()

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get("intent") and e.get("text")]
        if len({e.get("intent") for e in examples}) < 2:
            logger.warning("TfidfIntentClassifier needs examples of two intents or more: not trained")
            return self._resource
        self.words, self.chars = self._vectorizers()
        self.words.fit([lemma_text(e) for e in examples])
        self.chars.fit([plain_text(e) for e in examples])
        self.classifier = LogisticRegression(C=float(self.config["C"]), max_iter=int(self.config["max_iter"]),
                                             random_state=int(self.config["random_state"]), solver="lbfgs")
        self.classifier.fit(self._features(examples), [e.get("intent") for e in examples])
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self.classifier is None or not messages:
            return messages
        probabilities = self.classifier.predict_proba(self._features(messages))
        names = [str(c) for c in self.classifier.classes_]
        for message, row in zip(messages, probabilities, strict=True):
            ranking = sorted(({"name": n, "confidence": float(p)} for n, p in zip(names, row, strict=True)),
                             key=lambda r: -float(r["confidence"]))  # type: ignore[arg-type]
            message.set("intent", ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking[: int(self.config["ranking_length"])], add_to_output=True)
        return messages

    def persist(self) -> None:
        assert self.words is not None and self.chars is not None and self.classifier is not None
        model = {
            "classes": [str(c) for c in self.classifier.classes_],
            "words": {k: int(v) for k, v in self.words.vocabulary_.items()},
            "chars": {k: int(v) for k, v in self.chars.vocabulary_.items()},
        }
        with self._model_storage.write_to(self._resource) as directory:
            (directory / MODEL_FILE).write_text(json.dumps(model), encoding="utf-8")
            np.savez(directory / WEIGHTS_FILE, words_idf=self.words.idf_, chars_idf=self.chars.idf_,
                     coef=self.classifier.coef_, intercept=self.classifier.intercept_)

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> TfidfIntentClassifier:
        component = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as directory:
                model = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
                with np.load(directory / WEIGHTS_FILE) as weights:
                    arrays = {name: weights[name] for name in weights.files}
        except (ValueError, OSError):
            logger.warning("TfidfIntentClassifier: no trained model stored; every message gets no intent")
            return component
        component.words, component.chars = component._vectorizers((model["words"], model["chars"]))
        component.words.idf_ = arrays["words_idf"]
        component.chars.idf_ = arrays["chars_idf"]
        classifier = LogisticRegression(solver="lbfgs")
        classifier.classes_ = np.array(model["classes"])
        classifier.coef_ = arrays["coef"]
        classifier.intercept_ = arrays["intercept"]
        component.classifier = classifier
        return component
