"""An append-only record of who deleted or read patients' conversations, for the clinic's data-protection officer.

One JSON line per event in DATA_DIR/audit.log, created owner-only. It never
holds a patient's words, only what happened, when, through which channel, and
a one-way hash of the conversation id (so a deleted conversation leaves no id
behind that could be linked to anything else).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict

from clinic.settings import Settings

AUDIT_FILE = "audit.log"
_lock = threading.Lock()


def conversation_ref(sender_id: str) -> str:
    return hashlib.sha256(sender_id.encode()).hexdigest()[:16]


def audit_path(settings: Settings) -> Path:
    return settings.data_dir / AUDIT_FILE


def record(settings: Settings, event: str, **details: Any) -> Dict[str, Any]:
    """Appends one event ({"time", "event", ...details}); returns it."""
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **details}
    path = audit_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _lock:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line)
    return entry
