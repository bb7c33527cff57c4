#!/usr/bin/env bash
# Starts the whole assistant on this machine: checks the facts, trains when the
# training data changed, starts the action server and Rasa, waits until both
# answer, and prints where to talk to it. Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

RASA_PORT="${RASA_PORT:-5005}"
ACTIONS_PORT="${ACTIONS_PORT:-5055}"
BIN=.venv/bin
RUN_DIR="${RUN_DIR:-var/run}"
mkdir -p "$RUN_DIR"

"$BIN/python" -m actions.check_facts
"$BIN/rasa" train --quiet

# endpoints.yml points at the action server on port 5055; other ports get their own copy.
ENDPOINTS=endpoints.yml
if [ "$ACTIONS_PORT" != 5055 ]; then
  ENDPOINTS="$RUN_DIR/endpoints.yml"
  sed "s#localhost:5055#localhost:$ACTIONS_PORT#" endpoints.yml > "$ENDPOINTS"
fi

pids=()
cleanup() { trap - EXIT INT TERM; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN/rasa" run actions --actions actions --port "$ACTIONS_PORT" > "$RUN_DIR/actions.log" 2>&1 &
pids+=($!)
"$BIN/rasa" run --model models --credentials credentials.yml --endpoints "$ENDPOINTS" \
  --port "$RASA_PORT" --cors "${ALLOWED_ORIGINS:-*}" > "$RUN_DIR/rasa.log" 2>&1 &
pids+=($!)

echo "Starting the action server and Rasa (logs in $RUN_DIR/) ..."
for _ in $(seq 1 180); do
  if curl -fs "http://localhost:$ACTIONS_PORT/health" >/dev/null && curl -fs "http://localhost:$RASA_PORT/webhooks/rest/" >/dev/null; then
    cat <<MSG

  The assistant is running.
    Talk to it over REST:
      curl -s -XPOST http://localhost:$RASA_PORT/webhooks/rest/webhook \\
        -H 'Content-Type: application/json' -d '{"sender": "me", "message": "how long is my face red after?"}'
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
