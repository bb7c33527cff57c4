"""Everything that changes or extends Rasa's own behaviour, in one place.

- `install()` applies the changes to Rasa's code (each measured or needed for
  safety, see the modules' docstrings); only the launcher
  (`python -m rasa_extensions.launcher`, which `make run` and the tests use)
  calls it. Importing any module here or in `channels/` changes nothing in Rasa.
- tracker_store.py and lock_store.py are stores Rasa loads by name from the
  endpoints file (ops/endpoints.py writes it); they are classes, not patches.

Every extension refuses a Rasa version it was not checked against
(version.py), and tests/test_rasa_contracts.py fails when a Rasa internal it
relies on moves.
"""

from __future__ import annotations

import logging
from typing import List, Optional

from clinic.settings import Settings
from clinic.settings import current as current_settings
from rasa_extensions.version import check_rasa_version

logger = logging.getLogger(__name__)

_installed: List[str] = []


def install(settings: Optional[Settings] = None) -> List[str]:
    """Applies the changes to Rasa once per process; returns what was applied (also logged)."""
    if _installed:
        return list(_installed)
    from rasa_extensions import action_connection, action_timeout, action_validation, event_types, turns

    version = check_rasa_version()
    settings = settings or current_settings()
    _installed.extend([
        action_timeout.apply(settings.action_timeout_s),
        action_validation.apply(),
        event_types.apply(),
        turns.apply(),
        action_connection.apply(),
    ])
    logger.info("Rasa %s extended: %s", version, "; ".join(_installed))
    return list(_installed)
