"""Checks the action server's replies against Rasa's schema without re-checking the schema itself.

Rasa 3.6 validates every action server reply with `jsonschema.validate`, which
first validates Rasa's large events schema against the JSON Schema meta-schema,
on every call. Profiling the server (docs/benchmarks.md) put that at about two
thirds of the CPU time of a message. Here the validator is built once; replies
are checked against the same schema and a bad one raises the same
ValidationError (with Rasa's hint appended), so behaviour is unchanged.

Installed by rasa_extensions.install(); the contract test checks that Rasa still
validates through `RemoteAction._validate_action_result` with the same schema.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, instead of at every reply
    return cls(schema)


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    from jsonschema.exceptions import ValidationError, best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(_validator().iter_errors(result))
    if error is None:
        return True
    if not isinstance(error, ValidationError):  # pragma: no cover - best_match returns ValidationErrors
        raise error
    error.message += (
        ". Failed to validate Action server response from API, make sure your response from the "
        f"Action endpoint is valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def apply() -> str:
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result
    return "action replies checked by a validator built once"
