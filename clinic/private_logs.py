"""Patients' words never reach a log file at the default level.

An exception's message may quote what it was handling: when an action failed,
Rasa logged the action server's error reply, which echoed the whole request,
so a patient's conversation landed verbatim in var/run/rasa.log. Below DEBUG,
every log record that carries an exception keeps its traceback's frames (file,
line, function: enough to find the fault) and the exception types, but not
their messages, except for our own exceptions that say they are safe to log
(`safe_to_log = True`: a store's path, a setting's name). LOG_LEVEL=DEBUG keeps everything, for a developer's machine.

Both processes install it first thing (rasa_extensions/launcher.py,
rasa_extensions/action_server.py).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, List, Optional

_installed = False


def exception_summary(exc: Optional[BaseException]) -> str:
    """The frames of the traceback and the chain of exception types, without any message."""
    lines: List[str] = []
    seen = 0
    while exc is not None and seen < 5:
        lines.append("".join(traceback.format_tb(exc.__traceback__)).rstrip())
        name = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if getattr(exc, "safe_to_log", False):  # our own messages that name a path or a setting, never words
            lines.append(f"{name}: {exc}")
        else:
            lines.append(f"{name} (message withheld below LOG_LEVEL=DEBUG)")
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return "\n".join(line for line in lines if line)


def install(level: str) -> None:
    """Replaces exception messages in every log record, unless `level` is DEBUG. Idempotent."""
    global _installed
    if _installed or level.upper() == "DEBUG":
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = exception_summary(record.exc_info[1])
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
