#!/usr/bin/env bash
# Every check, in the order a failure is cheapest to find:
# lint -> type check -> unit tests -> rasa data validate -> train -> rasa test (stories) -> tests against the trained model and real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS="ignore" SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false
BIN=.venv/bin
step() { printf '\n=== %s\n' "$*"; }

step "lint (ruff)"
"$BIN/ruff" check clinic actions channels rasa_extensions console ops devtools tests

step "type check (mypy)"
"$BIN/mypy" clinic actions channels rasa_extensions console

step "unit tests (no servers, no model)"
"$BIN/pytest" -q -m "not servers and not model" -p no:cacheprovider

step "fact store"
"$BIN/python" -m clinic.check_facts

step "rasa data validate"
"$BIN/rasa" data validate --fail-on-warnings

step "train (skipped when nothing changed)"
"$BIN/python" -m ops.models

step "rasa test: stories, with every intent prediction checked"
rm -rf results/stories
"$BIN/rasa" test core --stories tests/stories --fail-on-prediction-errors --out results/stories

step "tests against the trained model and the real servers"
"$BIN/pytest" -q -m "servers or model" -p no:cacheprovider
