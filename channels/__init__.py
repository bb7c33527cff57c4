"""Code the Rasa server loads: chat channels (hardened REST, used by the widget and tests) and stores.

Importing this package bounds Rasa's wait for the action server (see
channels/action_timeout.py), so every channel answers a slow action server
with the apology instead of making the patient wait five minutes.
"""

from channels import action_timeout

action_timeout.apply()
