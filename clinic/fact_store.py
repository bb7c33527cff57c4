"""The curated fact store: loaded once, validated, and reloaded when staff edit it.

Answers live in data/facts/*.yml and clinic values in data/clinic.yml. Editing
either takes effect within about a second, without retraining: every lookup
checks the files' modification times (at most once per `check_every` seconds)
and reloads. A broken edit is logged with file, fact and field, and the last
good version keeps being served, so a typo never takes the assistant down.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

import yaml

from clinic.facts_schema import (
    PLACEHOLDER_RE,
    Fact,
    FactStoreError,
    check_references,
    check_settings,
    flatten_settings,
    parse_fact,
)
from clinic.settings import PROJECT_DIR, Settings
from clinic.settings import current as current_settings

logger = logging.getLogger(__name__)

DEFAULT_FACTS_DIR = PROJECT_DIR / "data" / "facts"
DEFAULT_SETTINGS = PROJECT_DIR / "data" / "clinic.yml"
DEFAULT_DOMAIN = PROJECT_DIR / "domain.yml"

# Messages the dialogue itself needs; a store without them cannot be served.
SYSTEM_FACTS = (
    "welcome", "urgent", "clarify", "clarify_failed", "out_of_scope",
    "human_handoff", "empty_message", "not_text", "action_error",
    "help",  # /help in the Telegram channel
    "forget_confirm", "conversation_deleted", "conversation_kept",  # deleting a conversation on request
    "too_many_messages",  # the rate limit's polite refusal
    "message_too_long", "urgent_sent_privately", "urgent_in_group",  # Telegram
    "feedback_up", "feedback_down", "feedback_thanks",  # Telegram's thumbs under an answer
    # the callback form (clinic/callbacks.py FACTS)
    "callback_request", "callback_ask_phone", "callback_share_phone", "callback_ask_time", "callback_ask_consent",
    "callback_name_invalid", "callback_phone_invalid", "callback_time_invalid", "callback_consent_invalid",
    "callback_confirmed", "callback_confirmed_closed", "callback_replaced", "callback_declined", "callback_cancelled",
)


@dataclass(frozen=True)
class WarningSign:
    """A regular expression for a symptom that must take the urgent path."""

    pattern: re.Pattern
    strong: bool  # strong: urgent even inside a general question ("blisters?")
    label: str


@dataclass(frozen=True)
class Snapshot:
    """One consistent, validated version of all the files."""

    facts: Dict[str, Fact]
    settings: Dict[str, Any]
    warning_signs: Tuple[WarningSign, ...]
    signature: Tuple[Tuple[str, int, int], ...]

    def facts_for(self, intent: str) -> List[Fact]:
        return [f for f in self.facts.values() if intent in f.intents]

    def usable(self, fact: Fact) -> bool:
        """A fact that needs a clinic value (a price, say) is unusable until it is set."""
        return all(self.settings.get(key) not in (None, "") for key in fact.requires)

    def select(self, intent: str, text: str) -> Fact | None:
        """The variant whose match words appear in the text, else the intent's default."""
        lowered = f" {normalise(text)} "
        candidates = [f for f in self.facts_for(intent) if self.usable(f)]
        matched = [f for f in candidates if any(_contains(lowered, m) for m in f.match)]
        if matched:
            return max(matched, key=lambda f: max(len(m) for m in f.match if _contains(lowered, m)))
        conditional = [f for f in candidates if not f.match and f.requires]
        if conditional:
            return conditional[0]
        defaults = [f for f in candidates if not f.match]
        return defaults[0] if defaults else None

    def render(self, fact: Fact) -> str:
        return PLACEHOLDER_RE.sub(lambda m: str(self.settings[m.group(1)]), fact.text)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s'-]", " ", text.lower())).strip()


def _contains(padded_text: str, phrase: str) -> bool:
    """Whole-word containment; a phrase ending in a stem (exfoliat) matches any ending."""
    return re.search(rf"(?<![\w]){re.escape(phrase)}", padded_text) is not None


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise FactStoreError(path, None, None, f"is not valid YAML ({where}): {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise FactStoreError(path, None, None, f"cannot be read: {exc.strerror}") from None


def domain_intents(domain_path: Path = DEFAULT_DOMAIN) -> List[str]:
    raw = _read_yaml(domain_path) or {}
    return [i if isinstance(i, str) else next(iter(i)) for i in raw.get("intents", [])]


def _parse_warning_signs(raw: Any, path: Path) -> List[WarningSign]:
    if not isinstance(raw, list):
        raise FactStoreError(path, None, "warning_signs", "must be a list of {pattern, label}")
    signs = []
    for i, item in enumerate(raw):
        where = f"warning_signs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
            raise FactStoreError(path, None, where, "needs a 'pattern' (a regular expression)")
        try:
            compiled = re.compile(item["pattern"], re.IGNORECASE)
        except re.error as exc:
            raise FactStoreError(path, None, f"{where}.pattern", f"is not a valid regular expression: {exc}") from None
        signs.append(WarningSign(compiled, bool(item.get("strong", False)), str(item.get("label", item["pattern"]))))
    return signs


def load_snapshot(facts_dir: Path, settings_path: Path, known_intents: Sequence[str]) -> Snapshot:
    """Reads and validates everything; raises FactStoreError naming file, fact and field."""
    files = sorted(facts_dir.glob("*.yml"))
    if not files:
        raise FactStoreError(facts_dir, None, None, "holds no .yml fact files")
    signature = _signature([settings_path, *files])

    raw_settings = _read_yaml(settings_path)
    if not isinstance(raw_settings, dict):
        raise FactStoreError(settings_path, None, None, "must be a mapping of setting: value")
    settings = flatten_settings(raw_settings)
    check_settings(settings, settings_path)

    facts: List[Fact] = []
    signs: List[WarningSign] = []
    for path in files:
        raw = _read_yaml(path)
        if not isinstance(raw, dict) or not ({"facts", "warning_signs"} & set(raw)):
            raise FactStoreError(path, None, None, "must have a top-level 'facts:' (or 'warning_signs:') list")
        if "facts" in raw:
            if not isinstance(raw["facts"], list):
                raise FactStoreError(path, None, "facts", "must be a list")
            facts.extend(parse_fact(item, path, i) for i, item in enumerate(raw["facts"]))
        if "warning_signs" in raw:
            signs.extend(_parse_warning_signs(raw["warning_signs"], path))

    check_references(facts, settings, known_intents, settings_path)
    by_id = {f.id: f for f in facts}
    missing = [name for name in SYSTEM_FACTS if name not in by_id]
    if missing:
        raise FactStoreError(facts_dir, missing[0], None, "is needed by the dialogue but no file defines it")
    if not signs:
        raise FactStoreError(facts_dir, None, "warning_signs", "none are defined; the urgent path needs them")
    return Snapshot(by_id, settings, tuple(signs), signature)


def _signature(paths: Iterable[Path]) -> Tuple[Tuple[str, int, int], ...]:
    sig = []
    for path in paths:
        try:
            st = path.stat()
            sig.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append((str(path), -1, -1))
    return tuple(sig)


class FactStore:
    """Serves the newest valid snapshot; thread-safe, cheap to call per message."""

    def __init__(self, facts_dir: Path, settings_path: Path, known_intents: Sequence[str],
                 check_every: float = 1.0) -> None:
        self.facts_dir, self.settings_path = Path(facts_dir), Path(settings_path)
        self.known_intents = list(known_intents)
        self.check_every = check_every
        self._lock = threading.Lock()
        self._snapshot = load_snapshot(self.facts_dir, self.settings_path, self.known_intents)
        self._checked_at = time.monotonic()
        self.last_error: FactStoreError | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FactStore:
        """FACTS_DIR and CLINIC_SETTINGS let a clinic keep its own copies outside the repo."""
        return cls(settings.facts_dir, settings.clinic_settings, domain_intents())

    def current(self) -> Snapshot:
        now = time.monotonic()
        if now - self._checked_at >= self.check_every:
            with self._lock:
                if now - self._checked_at >= self.check_every:
                    self._checked_at = now
                    self._reload_if_changed()
        return self._snapshot

    def _reload_if_changed(self) -> None:
        files = [self.settings_path, *sorted(self.facts_dir.glob("*.yml"))]
        if _signature(files) == self._snapshot.signature:
            return
        try:
            self._snapshot = load_snapshot(self.facts_dir, self.settings_path, self.known_intents)
        except FactStoreError as exc:
            if str(exc) != str(self.last_error):
                logger.error("Fact store not reloaded, still serving the last good version: %s", exc)
            self.last_error = exc
        else:
            self.last_error = None
            logger.info("Fact store reloaded: %d facts", len(self._snapshot.facts))


_default_store: FactStore | None = None
_default_lock = threading.Lock()


def default_store() -> FactStore:
    """The process-wide store, created on first use (never at import time)."""
    global _default_store
    if _default_store is None:
        with _default_lock:
            if _default_store is None:
                _default_store = FactStore.from_settings(current_settings())
    return _default_store
