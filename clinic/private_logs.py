"""Patients' words never reach a log file at the default level.

An exception's message may quote what it was handling: when an action failed,
Rasa logged the action server's error reply, which echoed the whole request,
so a patient's conversation landed verbatim in var/run/rasa.log. Below DEBUG,
every log record that carries an exception keeps its traceback's frames (file,
line, function: enough to find the fault) and the exception types, but not
their messages, except for our own exceptions that say they are safe to log
(`safe_to_log = True`: a store's path, a setting's name). LOG_LEVEL=DEBUG keeps everything, for a developer's machine.

Rasa also logs through structlog, whose events carry their data as keys: the
`message.parsing.failed` warning holds the patient's whole `user_text`. Below
DEBUG, every structlog event keeps its name and its other keys, but the value
of any key that may hold a patient's words (text, message, parse data, tracker,
slots, entities, metadata...) is withheld, and an exception is summarised as
above. Rasa configures structlog itself when its command line runs, so the
filter rides on `structlog.configure`: whatever processors Rasa sets, ours runs
just before the renderer.

Both processes install it first thing (rasa_extensions/launcher.py,
rasa_extensions/action_server.py).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence

_installed = False
WITHHELD = "(withheld below LOG_LEVEL=DEBUG)"
# Rasa's own list of keys that may hold a conversation (rasa/utils/log_utils.py, _anonymizer), and ours.
PATIENT_KEYS = frozenset({
    "text", "response_text", "user_text", "slot_values", "parse_data_text", "parse_data_entities",
    "prediction_events", "tracker_latest_message", "prefilled_slots", "message", "response", "slot_candidates",
    "rasa_event", "rasa_events", "tracker_states", "current_states", "old_states", "successes", "current_entity",
    "next_entity", "states", "entity", "token_text", "user_message", "json_message",
    "parse_data", "tracker", "events", "slots", "entities", "metadata", "latest_message", "body", "request",
    "payload", "data", "value", "values", "messages", "utterance", "buttons",
})
# Any key naming one of these may hold words too, whatever a later Rasa calls it.
PATIENT_KEY_PARTS = ("text", "message", "parse_data", "tracker", "slot", "entit", "utter", "state", "metadata",
                     "payload", "body", "request", "response", "rasa_event", "user")
# Structlog's own keys, and Rasa's description of an event (a fixed sentence): kept as they are.
KEPT_KEYS = frozenset({"event", "event_info", "event_key", "level", "log_level", "timestamp", "logger", "stack",
                       "exception", "exc_info", "sender_id"})


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
    """Replaces exception messages in every log record and patients' words in structlog events, unless `level`
    is DEBUG. Idempotent."""
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
    _install_structlog()
    _installed = True


# Greedy up to the last "@" before the path: a raw "@" in a password is hidden too.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s\"']*@")


def redact_credentials(text: str) -> str:
    """`scheme://user:password@host/...` -> `scheme://***@host/...`: a store may be named, never its login."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


def is_patient_key(key: str) -> bool:
    """Whether a structlog key may carry a patient's words (then its value is withheld)."""
    name = key.lower()
    if name in KEPT_KEYS:
        return False
    return name in PATIENT_KEYS or any(part in name for part in PATIENT_KEY_PARTS)


def _exception_of(exc_info: Any) -> Optional[BaseException]:
    """The exception a structlog `exc_info` means: True (the one being handled), a sys.exc_info() tuple, or itself."""
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        return exc_info[1]
    if exc_info is True:
        return sys.exc_info()[1]
    return None


def scrub_event(_logger: Any, _method: str, event_dict: Dict[str, Any]) -> Dict[str, Any]:
    """A structlog processor: the event without patients' words, its exception without messages."""
    for key in list(event_dict):
        if is_patient_key(str(key)):
            event_dict[key] = WITHHELD
    if "exc_info" in event_dict:
        exc = _exception_of(event_dict.pop("exc_info"))
        if exc is not None:
            event_dict["exception"] = exception_summary(exc)
    return event_dict


def with_scrubber(processors: Sequence[Any]) -> List[Any]:
    """The processors with `scrub_event` just before the first that renders (exceptions or the line)."""
    import structlog

    chain = [p for p in processors if p is not scrub_event]
    renderers = (structlog.processors.ExceptionRenderer, structlog.processors.JSONRenderer,
                 structlog.processors.KeyValueRenderer, structlog.processors.LogfmtRenderer,
                 structlog.dev.ConsoleRenderer)
    at = next((n for n, p in enumerate(chain) if isinstance(p, renderers)), max(len(chain) - 1, 0))
    return [*chain[:at], scrub_event, *chain[at:]]


def _install_structlog() -> None:
    """Every structlog configuration from now on (Rasa's included) gets `scrub_event`; so does the current one."""
    try:
        import structlog
    except ImportError:  # the action server's environment may lack it: nothing logs through it then
        return
    original: Callable[..., None] = structlog.configure

    def configure(processors: Optional[Sequence[Any]] = None, *args: Any, **kwargs: Any) -> None:
        original(with_scrubber(processors) if processors is not None else None, *args, **kwargs)

    structlog.configure = configure  # type: ignore[assignment]
    original(processors=with_scrubber(structlog.get_config()["processors"]))
