"""The benchmark's stock-Rasa baseline really runs Rasa's message path as shipped, and the default runs ours."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = ("import channels; from rasa.core.actions.action import RemoteAction; "
         "from rasa.shared.core.events import Event; "
         "from channels.action_validation import _validate_action_result; "
         "from channels.event_types import resolve_by_type; "
         "print(RemoteAction._validate_action_result is _validate_action_result, "
         "Event.resolve_by_type is resolve_by_type)")


def patched_in_a_fresh_process(**env: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_stock_switch_keeps_rasas_message_path_and_the_default_uses_ours() -> None:
    assert patched_in_a_fresh_process(STOCK_RASA="1") == "False False"
    assert patched_in_a_fresh_process(STOCK_RASA="0") == "True True"
