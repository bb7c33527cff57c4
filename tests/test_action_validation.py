"""Our action-reply validator, built once, accepts and rejects exactly what Rasa's own does.

That Rasa uses it once installed is tested in test_rasa_contracts.py.
"""

from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from rasa_extensions.action_validation import _validate_action_result

GOOD = {"events": [{"event": "slot", "name": "last_topic", "value": "downtime", "timestamp": None}],
        "responses": [{"text": "hello", "buttons": []}]}
BAD = [
    {"events": [{"event": "slot"}], "responses": []},  # a slot event without a name
    {"events": "not a list", "responses": []},
    {"events": [], "responses": "nope"},
]


def test_a_valid_reply_passes_as_with_jsonschema() -> None:
    jsonschema.validate(GOOD, RemoteAction.action_response_format_spec())
    assert _validate_action_result(RemoteAction("action_answer", None), GOOD) is True


@pytest.mark.parametrize("reply", BAD)
def test_an_invalid_reply_raises_the_same_error_as_jsonschema(reply: dict) -> None:
    with pytest.raises(jsonschema.ValidationError) as expected:
        jsonschema.validate(reply, RemoteAction.action_response_format_spec())
    with pytest.raises(jsonschema.ValidationError) as ours:
        _validate_action_result(RemoteAction("action_answer", None), reply)
    assert ours.value.message.startswith(expected.value.message)
    assert "Failed to validate Action server response" in ours.value.message
