"""A bounded wait for the action server, so a slow one gets the patient an apology, not silence.

Rasa 3.6 calls the action server with a fixed 5-minute timeout
(rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, not configurable in
endpoints.yml). A patient would wait five minutes, and the conversation's lock
(TICKET_LOCK_LIFETIME, 60 s by default) would expire first, letting the next
message in while this one still runs. ACTION_TIMEOUT_S (default 10 s) replaces
that wait for custom actions only: when it runs out, Rasa logs the failure,
keeps the user's message in the history, and sends nothing, and the channel
answers with the 'action_error' apology (channels/rest.py).

Relies on `RemoteAction.run` reading the module global
`rasa.core.actions.action.DEFAULT_REQUEST_TIMEOUT` at every call; the contract
test (tests/test_rasa_contracts.py) fails when Rasa stops doing so. Other Rasa
HTTP calls (model server, NLG) keep their own timeout.
"""

from __future__ import annotations


def apply(seconds: float) -> str:
    """Sets Rasa's custom-action timeout; returns what was applied, for the start-up log."""
    import rasa.core.actions.action as rasa_action

    rasa_action.DEFAULT_REQUEST_TIMEOUT = seconds
    return f"action server timeout {seconds:g} s (Rasa's default: 300 s)"
