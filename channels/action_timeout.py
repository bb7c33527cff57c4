"""A bounded wait for the action server, so a slow one gets the patient an apology, not silence.

Rasa 3.6 calls the action server with a fixed 5-minute timeout
(rasa.core.constants.DEFAULT_REQUEST_TIMEOUT, not configurable in
endpoints.yml). A patient would wait five minutes, and the conversation's lock
(TICKET_LOCK_LIFETIME, 60 s by default) would expire first, letting the next
message in while this one still runs. ACTION_TIMEOUT_S (default 10 s) replaces
that wait for custom actions only: when it runs out, Rasa logs the failure,
keeps the user's message in the history, and sends nothing, and the channel
answers with the 'action_error' apology (channels/rest.py).

Applied when the `channels` package is imported, i.e. when Rasa loads any of
our channels; other Rasa HTTP calls (model server, NLG) keep their own timeout.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Optional

logger = logging.getLogger(__name__)

DEFAULT_ACTION_TIMEOUT_S = 10.0
DEFAULT_TICKET_LOCK_LIFETIME_S = 60.0


def action_timeout_s(env: Optional[Mapping[str, str]] = None) -> float:
    env = os.environ if env is None else env
    try:
        value = float(env.get("ACTION_TIMEOUT_S", DEFAULT_ACTION_TIMEOUT_S))
    except ValueError:
        logger.warning("ACTION_TIMEOUT_S=%r is not a number; using %s s", env.get("ACTION_TIMEOUT_S"),
                       DEFAULT_ACTION_TIMEOUT_S)
        return DEFAULT_ACTION_TIMEOUT_S
    return value if value > 0 else DEFAULT_ACTION_TIMEOUT_S


def apply(env: Optional[Mapping[str, str]] = None) -> float:
    """Sets Rasa's custom-action timeout (read by RemoteAction.run at every call); returns it."""
    env = os.environ if env is None else env
    import rasa.core.actions.action as rasa_action  # imported here: only the Rasa server needs it

    seconds = action_timeout_s(env)
    if not hasattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT"):
        logger.warning("This Rasa version has no action timeout to set; custom actions may wait 5 minutes")
        return seconds
    rasa_action.DEFAULT_REQUEST_TIMEOUT = seconds
    lifetime = float(env.get("TICKET_LOCK_LIFETIME") or DEFAULT_TICKET_LOCK_LIFETIME_S)
    if seconds >= lifetime:
        logger.warning("ACTION_TIMEOUT_S (%s) should be well under TICKET_LOCK_LIFETIME (%s): a conversation's "
                       "lock may expire while its message still waits for the action server", seconds, lifetime)
    return seconds
