#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the pinned dependencies from
# requirements.lock (Linux x86_64, CPython 3.10), checking every package against the lock's hashes.
# Safe to run again: it only re-syncs when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
VENV=.venv
STAMP="$VENV/.synced-lock"

is_py310() { [ -n "${1:-}" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

find_python310() {
  local candidates=("${PYTHON:-}" python3.10)
  # pyenv's shim only answers with PYENV_VERSION set, so look in its versions folder directly.
  local pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
  candidates+=("$pyenv_root"/versions/3.10*/bin/python3.10)
  candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 /opt/homebrew/bin/python3.10
               /usr/local/opt/python@3.10/bin/python3.10 "$HOME"/.local/share/uv/python/cpython-3.10*/bin/python3.10)
  for candidate in "${candidates[@]}"; do
    [ -n "$candidate" ] || continue
    local path; path=$(command -v "$candidate" 2>/dev/null || true)
    if is_py310 "$path"; then echo "$path"; return 0; fi
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ] || ! is_py310 "$VENV/bin/python"; then
  if ! PY=$(find_python310); then
    cat >&2 <<'MSG'
Python 3.10 is needed (Rasa Open Source 3.6 supports Python 3.8 to 3.10) and none was found.
Install one of these, then run the command again:
  - pyenv:          pyenv install 3.10
  - Debian/Ubuntu:  sudo apt install python3.10 python3.10-venv   (Ubuntu 22.04; deadsnakes PPA elsewhere)
  - macOS:          brew install python@3.10
Or point to it: PYTHON=/path/to/python3.10 make run
MSG
    exit 1
  fi
  echo "Creating $VENV with $PY"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi

lock_hash=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$lock_hash" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  echo "Installing pinned dependencies (requirements.lock)"
  UV_PYTHON_DOWNLOADS=never "$VENV/bin/uv" pip sync --quiet --require-hashes --python "$VENV/bin/python" requirements.lock
  echo "$lock_hash" > "$STAMP"
fi

# spaCy pipelines that the NLU configs load by path from models/spacy/ (prints a line only when it builds).
# Building imports spaCy, which imports TensorFlow: keep its log and warning wall off the screen.
TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore "$VENV/bin/python" ops/spacy_models.py
