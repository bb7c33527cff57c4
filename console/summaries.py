"""Per-day figures of the patients' messages, computed from the events table and kept while the day is unchanged.

Every overview, unanswered, urgent and facts figure comes from one pass over a day's
patient messages: for each message, its channel, topic (intent), the classifier's
confidence and how the reply ended (the first bot message after it in the same
conversation, `metadata.clinic`). With 100,000 conversations a month that pass costs about
a second per month of SQLite, so each day's result is kept in memory with the day's
fingerprint (how many patient messages, the highest and the sum of their ids). Every
request asks the database for the fingerprints of today and yesterday, and of older days
at most every RECHECK_S seconds (an index-only count), and recomputes only the days whose
messages changed: today as patients write, an old day when the retention purge or a
patient's "delete my conversation" removed some (seen within RECHECK_S). So the figures
are those of the stored conversations, never of a copy.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

from console.database import Database, execute
from console.queries import (
    CALLBACK_KIND,
    FAILED_KINDS,
    FALLBACK,
    HUMAN_FACT,
    LOW_CONFIDENCE,
    OUT_OF_SCOPE,
    REQUEST_HUMAN,
    Message,
    Period,
    Sql,
    channel_of,
    epoch_day,
    outcome_of,
    parse_clinic,
    unescape,
)

Fingerprint = Tuple[int, int, int]  # (patient messages, highest id, sum of ids)
EPOCH = dt.date(1970, 1, 1)
MAX_CACHED_DAYS = 800
RECHECK_S = 60.0  # how long an older day's fingerprint is trusted


@dataclass
class Summary:
    """The figures of one day, or of a period (the sum of its days)."""

    messages: Counter = field(default_factory=Counter)  # channel -> patient messages
    senders: Dict[str, Set[str]] = field(default_factory=dict)  # channel -> conversations
    topics: Counter = field(default_factory=Counter)  # intent -> messages
    outcomes: Counter = field(default_factory=Counter)  # outcome -> messages
    facts: Counter = field(default_factory=Counter)  # fact id -> replies that gave it
    failed: Dict[int, str] = field(default_factory=dict)  # message id -> clarify | out_of_scope | handoff
    low_confidence: Set[int] = field(default_factory=set)  # message ids
    alerts: Dict[int, str] = field(default_factory=dict)  # message id -> urgent | request | handoff
    # The failed and low-confidence messages themselves, read in the same pass (the Unanswered page groups their
    # words): a month of them is some 27,000 messages, which cost most of that page's second when fetched by id.
    # In memory only, and recomputed with the day: a deleted conversation's words go when its day's fingerprint does.
    unanswered: Dict[int, Message] = field(default_factory=dict)
    daily: Dict[dt.date, Dict[str, Tuple[int, int]]] = field(default_factory=dict)  # day -> channel -> (convs, msgs)

    @property
    def conversations(self) -> int:
        return sum(len(s) for s in self.senders.values())

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())

    def conversations_in(self, channel: str) -> int:
        return len(self.senders.get(channel, ()))

    def add(self, other: Summary) -> None:
        self.messages.update(other.messages)
        for channel, senders in other.senders.items():
            self.senders.setdefault(channel, set()).update(senders)
        self.topics.update(other.topics)
        self.outcomes.update(other.outcomes)
        self.facts.update(other.facts)
        self.failed.update(other.failed)
        self.low_confidence.update(other.low_confidence)
        self.alerts.update(other.alerts)
        self.unanswered.update(other.unanswered)
        self.daily.update(other.daily)


def _alert(kind: Optional[str], intent: Optional[str], facts: Tuple[str, ...]) -> Optional[str]:
    if kind == "urgent":
        return "urgent"
    if intent == REQUEST_HUMAN or (kind == "answer" and HUMAN_FACT in facts):
        return "request"
    if kind == "handoff":
        return "handoff"
    return None


def summarise_day(db: Database, day: dt.date, tz: int) -> Summary:
    sql = Sql(db.dialect)
    start = epoch_day(day) * 86400 - tz
    query = f"""
        SELECT u.id, u.sender_id, u.intent_name, {sql.json_path('u.data', 'parse_data', 'intent', 'confidence')},
               (SELECT {sql.json_object('b.data', 'metadata', 'clinic')} FROM events b
                WHERE b.sender_id = u.sender_id AND b.type_name = 'bot' AND b.id > u.id ORDER BY b.id LIMIT 1),
               u.timestamp, {sql.message_text('u.data')}
        FROM events u
        WHERE u.type_name = 'user' AND u.timestamp >= :start AND u.timestamp < :end"""
    summary = Summary()
    cache: Dict[str, Tuple[Optional[str], Tuple[str, ...]]] = {}
    rows = execute(db, query, {"start": start, "end": start + 86400})
    for event_id, sender_id, intent, confidence, clinic, timestamp, text in rows:
        channel = channel_of(sender_id)
        summary.messages[channel] += 1
        summary.senders.setdefault(channel, set()).add(sender_id)
        summary.topics[intent or FALLBACK] += 1
        kind, facts = parse_clinic(clinic, cache)
        summary.outcomes[outcome_of(kind, facts)] += 1
        summary.facts.update(set(facts))
        message = int(event_id)
        if kind in FAILED_KINDS:
            summary.failed[message] = str(kind)
        elif (confidence is not None and intent not in (FALLBACK, OUT_OF_SCOPE) and kind != CALLBACK_KIND
              and float(confidence) < LOW_CONFIDENCE):  # a name or a time typed into the callback form is no question
            summary.low_confidence.add(message)
        if message in summary.failed or message in summary.low_confidence:
            summary.unanswered[message] = Message(message, sender_id, float(timestamp or 0), unescape(text), intent,
                                                  None)
        alert = _alert(kind, intent, facts)
        if alert:
            summary.alerts[message] = alert
    summary.daily[day] = {channel: (len(summary.senders[channel]), count)
                          for channel, count in summary.messages.items()}
    return summary


def fingerprints(db: Database, period: Period) -> Dict[dt.date, Fingerprint]:
    sql = Sql(db.dialect)
    query = f"""
        SELECT day, COUNT(*), MAX(id), SUM(id)
        FROM (SELECT {sql.day('timestamp')} AS day, id FROM events
              WHERE type_name = 'user' AND timestamp >= :start AND timestamp < :end) t
        GROUP BY day"""
    return {EPOCH + dt.timedelta(days=int(day)): (int(count), int(highest), int(total))
            for day, count, highest, total in execute(db, query, period.params())}


class Summaries:
    """Day summaries kept while their fingerprint holds; one computation at a time."""

    def __init__(self, db: Database, recheck_s: float = RECHECK_S) -> None:
        self.db = db
        self.recheck_s = recheck_s
        self._days: Dict[Tuple[dt.date, int], Tuple[Fingerprint, Summary]] = {}
        self._checked: Dict[Tuple[dt.date, int], float] = {}  # when a day's fingerprint was last read
        self._lock = threading.Lock()

    def period(self, period: Period) -> Summary:
        total = Summary()
        if not self.db.ready():
            return total
        with self._lock:
            now = time.monotonic()
            recent = dt.date.today() - dt.timedelta(days=1)
            stale = [day for day in period.days
                     if day >= recent or now - self._checked.get((day, period.tz), -1e9) > self.recheck_s]
            current = fingerprints(self.db, Period(min(stale), max(stale), period.tz)) if stale else {}
            for day in period.days:
                key = (day, period.tz)
                cached = self._days.get(key)
                if day in stale:
                    self._checked[key] = now
                    fingerprint = current.get(day)
                    if fingerprint is None:  # no patient message that day (any more)
                        self._days.pop(key, None)
                        continue
                    if cached is None or cached[0] != fingerprint:
                        cached = (fingerprint, summarise_day(self.db, day, period.tz))
                        self._days[key] = cached
                if cached is not None:
                    total.add(cached[1])
            self._forget_oldest()
        return total

    def _forget_oldest(self) -> None:
        if len(self._days) > MAX_CACHED_DAYS:
            for key in sorted(self._days)[:len(self._days) - MAX_CACHED_DAYS]:
                del self._days[key]
                self._checked.pop(key, None)

    def days_cached(self) -> List[dt.date]:
        return sorted(day for day, _ in self._days)
