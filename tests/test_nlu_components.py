"""The two NLU components in rasa_extensions/, trained, stored, loaded and run as Rasa runs them.

A small training set goes through the pipeline's own spaCy model and tokenizer, each component
is trained into a model storage, loaded back from it (as `rasa run` does) and asked about new
messages. No trained model or server needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyModel, SpacyNLP
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from devtools.harness.servers import PROJECT
from rasa_extensions.intent_classifier import TfidfIntentClassifier
from rasa_extensions.scope import DomainScope

EXAMPLES = {
    "ask_downtime": ["how long will my face be red", "how long is the recovery", "will i be red for days",
                     "when does the swelling go down", "how many days of redness"],
    "ask_cost": ["how much does it cost", "what is the price", "how much is a session", "is it expensive",
                 "what do you charge for microneedling"],
    "out_of_scope": ["what is the weather tomorrow", "tell me a joke", "who won the football",
                     "how do i cook rice", "what time is it"],
}


class Pipeline:
    def __init__(self, root: Path) -> None:
        self.storage = LocalModelStorage(root)
        self.context = ExecutionContext(GraphSchema({}), "test")
        config = {**SpacyNLP.get_default_config(), "model": str(PROJECT / "models" / "spacy" / "en_lookups")}
        self.spacy = SpacyNLP.create(config, self.storage, Resource("spacy"), self.context)
        self.model: SpacyModel = self.spacy.provide()
        self.tokenizer = SpacyTokenizer.create(SpacyTokenizer.get_default_config(), self.storage,
                                               Resource("tokenizer"), self.context)

    def prepare(self, messages: List[Message]) -> List[Message]:
        self.spacy.process(messages, self.model)
        return self.tokenizer.process(messages)

    def training_data(self) -> TrainingData:
        messages = [Message.build(text=t, intent=i) for i, texts in EXAMPLES.items() for t in texts]
        data = TrainingData(messages)
        self.spacy.process_training_data(data, self.model)
        return self.tokenizer.process_training_data(data)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    if not (PROJECT / "models" / "spacy" / "en_lookups").exists():
        pytest.skip("models/spacy/en_lookups is built by ops/spacy_models.py (make install)")
    yield Pipeline(tmp_path_factory.mktemp("model"))


def parse(pipeline: Pipeline, component, text: str) -> Message:  # type: ignore[no-untyped-def]
    message = Message.build(text=text)
    pipeline.prepare([message])
    component.process([message], **({"model": pipeline.model} if isinstance(component, DomainScope) else {}))
    return message


def test_the_intent_classifier_is_stored_loaded_and_ranks_every_intent(pipeline: Pipeline) -> None:
    resource = Resource("intents")
    trained = TfidfIntentClassifier.create({"C": 20}, pipeline.storage, resource, pipeline.context)
    trained.train(pipeline.training_data())
    loaded = TfidfIntentClassifier.load({"C": 20}, pipeline.storage, resource, pipeline.context)
    for text, expected in [("how long is my skin red for", "ask_downtime"), ("what's the price", "ask_cost"),
                           ("tell me about the weather", "out_of_scope")]:
        first, again = parse(pipeline, trained, text), parse(pipeline, loaded, text)
        assert first.get("intent")["name"] == expected == again.get("intent")["name"]
        ranking: List[dict] = again.get("intent_ranking")
        assert [r["name"] for r in ranking] == [r["name"] for r in first.get("intent_ranking")]
        assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6 and len(ranking) == 3


def test_an_untrained_classifier_leaves_messages_alone(pipeline: Pipeline) -> None:
    empty = TfidfIntentClassifier.load({}, pipeline.storage, Resource("never-trained"), pipeline.context)
    assert parse(pipeline, empty, "hello").get("intent") is None


@pytest.mark.parametrize("text, off_topic, foreign", [
    ("how long does it take to boil an egg", True, ("boil", "egg")),
    ("how long will my face be red after microneedling", False, ()),
    ("how long does it last", False, ()),
])
def test_the_scope_component_says_what_a_message_is_about(pipeline: Pipeline, text: str, off_topic: bool,
                                                           foreign: Tuple[str, ...]) -> None:
    resource = Resource("scope")
    DomainScope.create({}, pipeline.storage, resource, pipeline.context).train(pipeline.training_data(),
                                                                               pipeline.model)
    loaded = DomainScope.load({}, pipeline.storage, resource, pipeline.context)
    scope = parse(pipeline, loaded, text).get("scope")
    assert scope["off_topic"] is off_topic and tuple(scope["foreign"]) == foreign
    assert "scope" in parse(pipeline, loaded, text).as_dict(only_output_properties=True)  # reaches the tracker
