"""Code the Rasa server loads: chat channels (hardened REST, used by the widget and tests) and stores.

Importing this package also tunes three things in Rasa, each measured
(docs/benchmarks.md, docs/deployment.md):
- a bounded wait for the action server (channels/action_timeout.py), so a slow
  action server gets the patient the apology instead of a five-minute wait;
- action replies checked with a validator built once (channels/action_validation.py),
  instead of re-checking the schema on every message;
- event classes found in a table (channels/event_types.py), instead of walking
  every subclass of Event for each event loaded.
The conversations in memory between messages (channels/tracker_store.py) are a
tracker store chosen in the endpoints file, not a patch.
"""

import os

from channels import action_timeout, action_validation, event_types

action_timeout.apply()
# STOCK_RASA=1 leaves Rasa's message path as shipped (the timeout stays: it is a
# safety limit, not a speed-up): `make bench` sets it for the stock-Rasa baseline.
if os.environ.get("STOCK_RASA") != "1":
    action_validation.apply()
    event_types.apply()
