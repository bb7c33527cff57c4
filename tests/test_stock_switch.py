"""The benchmark's stock-Rasa baseline really runs Rasa's own action-reply validation."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = ("import channels; from rasa.core.actions.action import RemoteAction; "
         "from channels.action_validation import _validate_action_result as ours; "
         "print(RemoteAction._validate_action_result is ours)")


def patched_in_a_fresh_process(**env: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_stock_switch_keeps_rasas_validation_and_the_default_uses_ours() -> None:
    assert patched_in_a_fresh_process(STOCK_RASA_VALIDATION="1") == "False"
    assert patched_in_a_fresh_process(STOCK_RASA_VALIDATION="0") == "True"
