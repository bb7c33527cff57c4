"""The fact store's schema, checked field by field.

Clinic staff edit these YAML files by hand, so an error must say exactly where
it is: file, fact id and field. A generic JSON-schema message ("'x' is not of
type 'string'") does not, hence this small hand-written validator.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STATUSES = ("approved", "needs_clinician_review")
FACT_FIELDS = {
    "id", "intents", "title", "match", "text", "follow_ups",
    "sources", "reviewed_on", "status", "requires",
}
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
MAX_TEXT_CHARS = 700


class FactStoreError(ValueError):
    """A fact file that cannot be served; the message names file, fact and field."""

    def __init__(self, path: Path | str, fact: str | None, fld: str | None, problem: str):
        where = str(path)
        if fact:
            where += f": fact '{fact}'"
        if fld:
            where += f": field '{fld}'"
        super().__init__(f"{where}: {problem}")
        self.path, self.fact, self.field, self.problem = str(path), fact, fld, problem


@dataclass(frozen=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True)
class Fact:
    """One reviewed answer. `match` picks a variant among facts sharing an intent."""

    id: str
    intents: Tuple[str, ...]
    title: str
    text: str
    reviewed_on: dt.date
    status: str
    match: Tuple[str, ...] = ()
    follow_ups: Tuple[str, ...] = ()
    sources: Tuple[Source, ...] = ()
    requires: Tuple[str, ...] = ()
    path: str = field(default="", compare=False)

    @property
    def placeholders(self) -> List[str]:
        return PLACEHOLDER_RE.findall(self.text)


def _str_list(raw: Any, path: Path, fact: str, name: str) -> Tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise FactStoreError(path, fact, name, "must be a list of non-empty strings")
    return tuple(x.strip() for x in raw)


def _required_str(raw: Mapping[str, Any], name: str, path: Path, fact: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise FactStoreError(path, fact, name, "is required and must be non-empty text")
    return value.strip()


def parse_fact(raw: Any, path: Path, index: int) -> Fact:
    """Turns one YAML mapping into a Fact, or raises a FactStoreError saying where."""
    if not isinstance(raw, dict):
        raise FactStoreError(path, f"#{index + 1}", None, "each fact must be a mapping of fields")
    fact_id = raw.get("id")
    if not isinstance(fact_id, str) or not ID_RE.match(fact_id):
        raise FactStoreError(path, f"#{index + 1}", "id", "must be snake_case text such as 'downtime'")
    unknown = sorted(set(raw) - FACT_FIELDS)
    if unknown:
        raise FactStoreError(path, fact_id, unknown[0], f"unknown field (allowed: {', '.join(sorted(FACT_FIELDS))})")

    text = _required_str(raw, "text", path, fact_id)
    if len(text) > MAX_TEXT_CHARS:
        raise FactStoreError(path, fact_id, "text", f"is {len(text)} characters; keep it under {MAX_TEXT_CHARS}")
    if "\n\n" in text:
        raise FactStoreError(path, fact_id, "text", "must be one paragraph: chat channels split a blank line "
                                                    "into two messages")
    if "<" in text and re.search(r"<[a-zA-Z/]", text):
        raise FactStoreError(path, fact_id, "text", "must be plain text, not HTML")

    status = raw.get("status")
    if status not in STATUSES:
        raise FactStoreError(path, fact_id, "status", f"must be one of {', '.join(STATUSES)}")
    reviewed = raw.get("reviewed_on")
    if isinstance(reviewed, str):
        try:
            reviewed = dt.date.fromisoformat(reviewed)
        except ValueError:
            pass
    if not isinstance(reviewed, dt.date):
        raise FactStoreError(path, fact_id, "reviewed_on", "must be a date such as 2026-11-26")

    sources_raw = raw.get("sources") or []
    if not isinstance(sources_raw, list):
        raise FactStoreError(path, fact_id, "sources", "must be a list of {title, url}")
    sources = []
    for i, src in enumerate(sources_raw):
        where = f"sources[{i}]"
        if not isinstance(src, dict):
            raise FactStoreError(path, fact_id, where, "must have a title and a url")
        title, url = src.get("title"), src.get("url")
        if not isinstance(title, str) or not title.strip():
            raise FactStoreError(path, fact_id, f"{where}.title", "is required")
        if not isinstance(url, str) or not re.match(r"^https?://\S+$", url):
            raise FactStoreError(path, fact_id, f"{where}.url", "must be a web address starting with https://")
        sources.append(Source(title.strip(), url))

    return Fact(
        id=fact_id,
        intents=_str_list(raw.get("intents"), path, fact_id, "intents"),
        title=_required_str(raw, "title", path, fact_id),
        text=text,
        reviewed_on=reviewed,
        status=status,
        match=tuple(m.lower() for m in _str_list(raw.get("match"), path, fact_id, "match")),
        follow_ups=_str_list(raw.get("follow_ups"), path, fact_id, "follow_ups"),
        sources=tuple(sources),
        requires=_str_list(raw.get("requires"), path, fact_id, "requires"),
        path=str(path),
    )


def flatten_settings(raw: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{'aftercare': {'makeup_after': '24 hours'}} -> {'aftercare.makeup_after': '24 hours'}."""
    flat: Dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def check_settings(settings: Mapping[str, Any], path: Path) -> None:
    for key, value in settings.items():
        if value is not None and not isinstance(value, (str, int, float)):
            raise FactStoreError(path, None, key, "must be text (or empty)")
    for key in ("clinic_name", "phone", "emergency_number"):
        if not settings.get(key):
            raise FactStoreError(path, None, key, "is required: safety answers need it")
    for key, value in settings.items():  # opening hours the assistant computes with (clinic/callbacks.py)
        if key.startswith("hours.") and key.endswith((".open", ".close")) and \
                not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(value)):
            raise FactStoreError(path, None, key, 'must be a 24-hour time in quotes, such as "09:00"')
    if settings.get("hours.timezone") is not None:
        try:
            ZoneInfo(str(settings["hours.timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise FactStoreError(path, None, "hours.timezone", "must be a time zone name such as "
                                                               "America/Chicago or Europe/London") from None


def check_references(facts: Sequence[Fact], settings: Mapping[str, Any], known_intents: Sequence[str],
                     settings_path: Path) -> None:
    """Cross-fact rules: unique ids, follow-ups that exist, placeholders the clinic has set."""
    seen: Dict[str, Fact] = {}
    for fact in facts:
        if fact.id in seen:
            raise FactStoreError(fact.path, fact.id, "id", f"is also used in {seen[fact.id].path}")
        seen[fact.id] = fact
    for fact in facts:
        for intent in fact.intents:
            if known_intents and intent not in known_intents:
                raise FactStoreError(fact.path, fact.id, "intents", f"'{intent}' is not an intent of the assistant")
        for target in fact.follow_ups:
            if target not in seen:
                raise FactStoreError(fact.path, fact.id, "follow_ups", f"'{target}' is not a fact id")
            if not seen[target].intents:
                raise FactStoreError(fact.path, fact.id, "follow_ups",
                                     f"'{target}' answers no intent, so it cannot be a button")
        for key in fact.requires:
            if key not in settings:
                raise FactStoreError(fact.path, fact.id, "requires", f"'{key}' is not a setting in {settings_path}")
        for key in fact.placeholders:
            if key not in settings:
                raise FactStoreError(fact.path, fact.id, "text",
                                     f"placeholder {{{key}}} is not a setting in {settings_path}")
            if settings[key] in (None, "") and key not in fact.requires:
                raise FactStoreError(
                    fact.path, fact.id, "text",
                    f"placeholder {{{key}}} is empty in {settings_path}; set it, or list it under 'requires' "
                    "so the fact is skipped while it is empty",
                )
    defaults: Dict[str, List[str]] = {}
    for fact in facts:
        if not fact.match and not fact.requires:
            for intent in fact.intents:
                defaults.setdefault(intent, []).append(fact.id)
    for intent, ids in defaults.items():
        if len(ids) > 1:
            first = seen[ids[1]]
            raise FactStoreError(first.path, first.id, "match",
                                 f"intent '{intent}' already has a default fact '{ids[0]}'; add match words")
    answerable = {i for f in facts for i in f.intents}
    for intent in known_intents:
        if intent not in answerable:
            raise FactStoreError(settings_path.parent / "facts", None, None, f"no fact answers intent '{intent}'")
        if intent not in defaults:
            raise FactStoreError(settings_path.parent / "facts", None, None,
                                 f"intent '{intent}' has no default fact (one without 'match' and 'requires')")
