#!/usr/bin/env bash
# Starts the whole assistant on this machine: checks the facts, trains when the
# training data changed, starts the action server and Rasa, waits until both
# answer, and prints where to talk to it. Ctrl+C stops everything.
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
"$BIN/rasa" train --quiet

# Rasa's endpoints (action server, conversation store, lock store) come from the environment;
# with nothing set, conversations are kept in SQLite under DATA_DIR (var/data). See docs/deployment.md.
ENDPOINTS="$RUN_DIR/endpoints.yml"
"$BIN/python" -m ops.endpoints --out "$ENDPOINTS"

# CORS: the web pages whose browsers may call the assistant (the website chat widget), as
# comma-separated origins such as https://www.your-clinic.com. The default is this machine's own
# address, where the demo page is served; "*" would let any website use the assistant. See docs/widget.md.
read -r -a CORS_ORIGINS <<< "$ALLOWED_ORIGINS"

pids=()
cleanup() { trap - EXIT INT TERM; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The Rasa SDK's server on loopback with no request echo (rasa_extensions/action_server.py) and the
# `rasa` command with our extensions and a faster start (rasa_extensions/launcher.py, docs/benchmarks.md).
"$BIN/python" -m rasa_extensions.action_server --port "$ACTIONS_PORT" > "$RUN_DIR/actions.log" 2>&1 &
pids+=($!)
"$BIN/python" -m rasa_extensions.launcher run --model models --credentials credentials.yml --endpoints "$ENDPOINTS" \
  --port "$RASA_PORT" --cors "${CORS_ORIGINS[@]}" > "$RUN_DIR/rasa.log" 2>&1 &
pids+=($!)
# Conversations older than RETENTION_DAYS (30) are deleted now and every RETENTION_EVERY_HOURS (24; 0: never).
if [ "$RETENTION_EVERY_HOURS" != 0 ]; then
  "$BIN/python" -m ops.retention --every-hours "$RETENTION_EVERY_HOURS" >> "$RUN_DIR/retention.log" 2>&1 &
  pids+=($!)
fi

echo "Starting the action server and Rasa (logs in $RUN_DIR/) ..."
for _ in $(seq 1 180); do
  if curl -fs "http://localhost:$ACTIONS_PORT/health" >/dev/null && curl -fs "http://localhost:$RASA_PORT/webhooks/rest/" >/dev/null; then
    cat <<MSG

  The assistant is running.
    See it on the demo clinic page:  http://localhost:$RASA_PORT/webhooks/web/
    Websites allowed to embed the chat widget (ALLOWED_ORIGINS): $ALLOWED_ORIGINS
    Talk to it over REST:
      curl -s -XPOST http://localhost:$RASA_PORT/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{"message": "how long is my face red after?"}'
    Or in a terminal:  make shell
  Ctrl+C stops it.
MSG
    wait -n "${pids[@]}"
    echo "A process stopped; see $RUN_DIR/*.log" >&2
    exit 1
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "A process failed to start; see $RUN_DIR/*.log" >&2; tail -n 20 "$RUN_DIR"/*.log >&2; exit 1; }
  done
  sleep 1
done
echo "The assistant did not start within 3 minutes; see $RUN_DIR/*.log" >&2
exit 1
