"""Code the Rasa server loads: chat channels (hardened REST, used by the widget and tests) and stores.

Importing this package also tunes two things in Rasa's call to the action
server, both measured (docs/benchmarks.md, docs/deployment.md):
- a bounded wait (channels/action_timeout.py), so a slow action server gets the
  patient the apology instead of a five-minute wait;
- reply validation with a validator built once (channels/action_validation.py),
  instead of re-checking the schema on every message.
"""

import os

from channels import action_timeout, action_validation

action_timeout.apply()
# STOCK_RASA_VALIDATION=1 keeps Rasa's own validation: `make bench` sets it for the
# stock-Rasa baseline, so the comparison is with Rasa as shipped.
if os.environ.get("STOCK_RASA_VALIDATION") != "1":
    action_validation.apply()
