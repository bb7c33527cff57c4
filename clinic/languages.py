"""A message in another language: say plainly, in that language, that the assistant answers in English.

The classifier was trained on English: Chinese got the goodbye answer and
Spanish "I only answer microneedling questions". Worse, a warning sign written
in Spanish never reached the urgent answer. So before the dialogue rules, a
message is checked against data/languages.yml: a language recognised by its
writing system or its common words gets the notice in that language with the
clinic's phone, or, when it names a warning sign in that language, the urgent
answer in that language as well as in English.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from clinic.facts_schema import PLACEHOLDER_RE
from clinic.settings import PROJECT_DIR

LANGUAGES_FILE = PROJECT_DIR / "data" / "languages.yml"
MIN_MARKERS = 2
SCRIPTS = {
    "cjk": r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]",
    "arabic": r"[\u0600-\u06ff]",
    "cyrillic": r"[\u0400-\u04ff]",
    "greek": r"[\u0370-\u03ff]",
    "hebrew": r"[\u0590-\u05ff]",
    "devanagari": r"[\u0900-\u097f]",
    "thai": r"[\u0e00-\u0e7f]",
}
ENGLISH = frozenset(
    "the a an is are was be been it its this that i i'm im my me you your we our how what when where why which "
    "who do does did can could will would should have has had to of and or in on at for with after before about "
    "long much many skin face get got feel hurt need there here not no yes if so but".split())
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)


class LanguagesError(ValueError):
    """data/languages.yml cannot be used; the message names the language and the field."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    notice: str
    urgent: str
    markers: frozenset
    script: Optional[re.Pattern]
    warning_signs: Tuple[re.Pattern, ...]


def parse(data: Any, path: Path = LANGUAGES_FILE) -> Dict[str, Language]:
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        raise LanguagesError(f"{path}: expected a `languages:` mapping")
    found: Dict[str, Language] = {}
    for code, entry in data["languages"].items():
        where = f"{path}: language '{code}'"
        if not isinstance(entry, dict):
            raise LanguagesError(f"{where}: expected a mapping")
        for field in ("name", "notice", "urgent"):
            if not isinstance(entry.get(field), str) or not entry[field].strip():
                raise LanguagesError(f"{where}: field '{field}' is required text")
        script = entry.get("script")
        if script is not None and script not in SCRIPTS:
            raise LanguagesError(f"{where}: field 'script' must be one of {', '.join(SCRIPTS)}")
        markers = entry.get("markers") or []
        if script is None and len(markers) < MIN_MARKERS:
            raise LanguagesError(f"{where}: needs `markers` (common words) or a `script`")
        try:
            signs = tuple(re.compile(str(p), re.IGNORECASE) for p in entry.get("warning_signs") or [])
        except re.error as exc:
            raise LanguagesError(f"{where}: field 'warning_signs': {exc}") from None
        found[str(code)] = Language(str(code), entry["name"], entry["notice"].strip(), entry["urgent"].strip(),
                                    frozenset(str(m).lower() for m in markers),
                                    re.compile(SCRIPTS[script]) if script else None, signs)
    return found


def detect(text: str, languages: Dict[str, Language]) -> Optional[Language]:
    """The language a message is written in, when it is clearly not English; else None."""
    letters = [ch for ch in text if ch.isalpha()]
    for language in languages.values():
        if language.script is not None and letters:
            share = sum(1 for ch in letters if language.script.match(ch)) / len(letters)
            if share >= 0.3:
                return language
    words = [w.lower().strip("'’") for w in _WORD.findall(text)]
    english = sum(1 for w in words if w in ENGLISH)
    best: Optional[Language] = None
    best_count = 0
    for language in languages.values():
        count = sum(1 for w in words if w in language.markers)
        if count >= MIN_MARKERS and count > english and count > best_count:
            best, best_count = language, count
    return best


def names_warning_sign(text: str, language: Language) -> bool:
    return any(sign.search(text) for sign in language.warning_signs)


def reads_as_english(text: str, language: Language) -> bool:
    """More English words than words of `language`, and at least two: "no pus, is that normal?" is English
    (its "pus" is no Spanish warning sign), "tengo fiebre" and "me cuesta respirar" are not."""
    words = [w.lower().strip("'’") for w in _WORD.findall(text)]
    english = sum(1 for w in words if w in ENGLISH)
    return english >= MIN_MARKERS and english > sum(1 for w in words if w in language.markers)


def warning_sign_language(text: str, table: Dict[str, Language]) -> Optional[Language]:
    """The language in which the message names a warning sign, or None.

    A warning sign is too short a message to be recognised by detect() ("tengo fiebre" has one Spanish
    marker, detect() needs two), and a missed one is the worst mistake: so the signs of every language
    count unless the message reads as English (where the English checks, with their negations, decide).
    The detected language comes first.
    """
    detected = detect(text, table)
    others = [language for language in table.values() if language is not detected]
    for language in ([detected] if detected else []) + others:
        if names_warning_sign(text, language) and (language is detected or not reads_as_english(text, language)):
            return language
    return None


def render(template: str, settings: Dict[str, Any]) -> str:
    return PLACEHOLDER_RE.sub(lambda m: str(settings.get(m.group(1), "")), template)


_cache: Dict[str, Tuple[float, Dict[str, Language]]] = {}
_lock = threading.Lock()


def languages(path: Path = LANGUAGES_FILE) -> Dict[str, Language]:
    """The table, read again when the file changes (as the fact store is); empty when there is no file."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    with _lock:
        cached = _cache.get(str(path))
        if cached is None or cached[0] != mtime:
            cached = (mtime, parse(yaml.safe_load(path.read_text(encoding="utf-8")), path))
            _cache[str(path)] = cached
        return cached[1]


def check(path: Path = LANGUAGES_FILE) -> List[str]:
    """`make check-facts`: the names of the languages, or LanguagesError."""
    return sorted(language.name for language in languages(path).values())
