"""Code the Rasa server loads: chat channels (hardened REST, used by the widget and tests) and stores.

Importing this package also tunes two things in Rasa's call to the action
server, both measured (docs/benchmarks.md, docs/deployment.md):
- a bounded wait (channels/action_timeout.py), so a slow action server gets the
  patient the apology instead of a five-minute wait;
- reply validation with a validator built once (channels/action_validation.py),
  instead of re-checking the schema on every message.
"""

from channels import action_timeout, action_validation

action_timeout.apply()
action_validation.apply()
