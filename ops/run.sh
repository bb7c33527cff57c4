#!/usr/bin/env bash
# Starts the whole assistant on this machine: checks the settings and the facts, trains when the
# training data changed, writes the endpoints file, then hands over to the supervisor
# (ops/supervise.py), which starts every process, restarts one that stops (logged to the terminal
# and to $RUN_DIR/supervisor.log), rotates the logs, and says where to talk to the assistant once it
# answers. Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
# TensorFlow's start-up chatter and the dependencies' deprecation warnings are noise to a user.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}" \
  SQLALCHEMY_SILENCE_UBER_WARNING=1
# Health-related conversations: Rasa's usage telemetry is off unless the clinic turns it on.
export RASA_TELEMETRY_ENABLED="${RASA_TELEMETRY_ENABLED:-false}"
# Every variable is read and checked once, by clinic/settings.py: a typo stops here, named.
settings=$("$BIN/python" -m clinic.settings --shell) || exit 2
eval "$settings"
umask 077  # logs and conversations are health data: readable by this user only
mkdir -p "$RUN_DIR"

"$BIN/python" -m clinic.check_facts
"$BIN/python" -m ops.models  # trains only when the training data changed; keeps the newest few models

# Rasa's endpoints (action server, conversation store, lock store) come from the environment;
# with nothing set, conversations are kept in SQLite under DATA_DIR (var/data). See docs/deployment.md.
ENDPOINTS="$RUN_DIR/endpoints.yml"
"$BIN/python" -m ops.endpoints --out "$ENDPOINTS"

# CORS (ALLOWED_ORIGINS): the web pages whose browsers may call the assistant (the website chat
# widget). The default is this machine's own address, where the demo page is served; "*" would let
# any website use the assistant. See docs/widget.md.
exec "$BIN/python" -m ops.supervise --endpoints "$ENDPOINTS"
