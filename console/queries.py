"""Read-only questions to Rasa's `events` table, for SQLite and PostgreSQL alike.

What a row is (Rasa's SQLTrackerStore): sender_id, type_name, timestamp, intent_name
(user messages), action_name (actions; for a slot event the slot's name), data (the
event as JSON). Conversations are sender ids, whose prefix names the channel:
`web:` (website widget, anonymous REST), `api:<integration>:` (REST with an API key),
`telegram:`.

How a message ended is stored with the assistant's reply: the first bot message after a
patient's message carries `metadata.clinic = {"kind", "facts", "reason"}` (actions/answer.py).
Patients' feedback is a slot event named `feedback` with {"value": "up"|"down", "fact"}.
The per-day figures built from these are in summaries.py; this module holds the shared
vocabulary and the queries that are not per day (messages by id, search, one conversation).
JSON is parsed in the database only where no column answers, and substring tests narrow
rows before any parsing.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import sqlalchemy as sa

from console.database import Database, execute

LOW_CONFIDENCE = 0.5  # an answered message the classifier was less sure of than this counts as unanswered
FAILED_KINDS = ("clarify", "out_of_scope", "handoff")  # handoff: the second misunderstanding in a row
REQUEST_HUMAN = "request_human"
HUMAN_FACT = "human_handoff"
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
FEEDBACK_SLOT = "feedback"
CALLBACK_SLOT = "callback_request"  # a stored callback request (clinic/callbacks.py)
CALLBACK_KIND = "callback"  # a turn of the callback form
MAX_FEEDBACK_LOOKUPS = 5000  # thumbs-down per period traced back to the question they judged
MAX_CONVERSATION_EVENTS = 2000
BATCH = 2000  # ids in one IN (...) list

CHANNELS = ("web", "telegram", "api", "other")
CHANNEL_LABELS = {"web": "Website", "telegram": "Telegram", "api": "REST integrations", "other": "Other"}
OUTCOMES = ("answer", "clarify", "out_of_scope", "handoff", "urgent", "empty", "callback", "other")
OUTCOME_LABELS = {
    "answer": "Answered", "clarify": "Did you mean…?", "out_of_scope": "Out of scope",
    "handoff": "Handed to a person", "urgent": "Urgent", "empty": "Nothing readable",
    "callback": "Callback request",
    "forget": "Deleted on request", "other": "No answer from the fact store",
}
REASON_LABELS = {"clarify": "did you mean…?", "out_of_scope": "out of scope", "handoff": "not understood twice",
                 "low_confidence": "low confidence", "thumbs_down": "thumbs down"}
ALERT_LABELS = {"urgent": "Urgent", "request": "Asked for a person", "handoff": "Not understood twice"}


def outcome_of(kind: Optional[str], facts: Sequence[str]) -> str:
    """How a turn ended, from its reply's `metadata.clinic` (None: the reply had none)."""
    if kind == "answer" and HUMAN_FACT in facts:
        return "handoff"  # a request for a person, answered with the hand-off
    return kind if kind in OUTCOME_LABELS else "other"


def parse_clinic(raw: Optional[str], cache: Dict[str, Tuple[Optional[str], Tuple[str, ...]]]
                 ) -> Tuple[Optional[str], Tuple[str, ...]]:
    """(kind, facts) from the JSON text of `metadata.clinic`; a few hundred distinct values, parsed once each."""
    if raw is None:
        return None, ()
    if raw not in cache:
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict):
            cache[raw] = (value.get("kind"), tuple(str(f) for f in value.get("facts") or ()))
        else:
            cache[raw] = (None, ())
    return cache[raw]


# --- periods and dialects ----------------------------------------------------------------------------

def local_offset() -> int:
    """This machine's UTC offset now, in seconds; days are cut at its midnight."""
    return time.localtime().tm_gmtoff


@dataclass(frozen=True)
class Period:
    """Whole days, both ends included, cut at local midnight (one UTC offset for the whole period)."""

    start: dt.date
    end: dt.date
    tz: int = 0  # UTC offset in seconds

    @classmethod
    def of(cls, start: dt.date, end: dt.date) -> Period:
        return cls(start, end, local_offset())

    @classmethod
    def last_days(cls, days: int, today: Optional[dt.date] = None) -> Period:
        today = today or dt.date.today()
        return cls.of(today - dt.timedelta(days=days - 1), today)

    @property
    def bounds(self) -> Tuple[float, float]:
        return float(epoch_day(self.start) * 86400 - self.tz), float((epoch_day(self.end) + 1) * 86400 - self.tz)

    @property
    def days(self) -> List[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def params(self) -> Dict[str, Any]:
        start, end = self.bounds
        return {"start": start, "end": end, "tz": self.tz}


class Sql:
    """The few expressions SQLite and PostgreSQL write differently."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def json_path(self, column: str, *path: str) -> str:
        """A JSON scalar as text (SQLite: its own type)."""
        if self.pg:
            return f"(CAST({column} AS json) #>> '{{{','.join(path)}}}')"
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def json_object(self, column: str, *path: str) -> str:
        """A JSON value as JSON text (parsed in Python)."""
        if self.pg:
            return f"CAST(CAST({column} AS json) #> '{{{','.join(path)}}}' AS text)"
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def message_text(self, column: str) -> str:
        """A patient message's text, cut out of the stored JSON as it is (still escaped: `unescape` it), without
        parsing the JSON: Rasa writes a user event's keys in a fixed order, `"event", "timestamp", "text",
        "parse_data", ...` (UserUttered.as_dict; tests/test_console_sql.py checks it), and a quote inside
        the text is escaped, so the text is what lies between `"text": "` and `", "parse_data"`."""
        if self.pg:
            return f"split_part(split_part({column}, '{TEXT_OPEN}', 2), '{TEXT_CLOSE}', 1)"
        opening, closing = f"instr({column}, '{TEXT_OPEN}')", f"instr({column}, '{TEXT_CLOSE}')"
        start = f"{opening} + {len(TEXT_OPEN)}"
        return (f"CASE WHEN {opening} > 0 AND {closing} >= {start} "
                f"THEN substr({column}, {start}, {closing} - ({start})) END")

    def reply_facts(self, column: str) -> str:
        """A reply's fact ids as text in which each appears in double quotes (not parsed: only searched)."""
        if self.pg:
            return f"substring({column} from '\"facts\": \\[([^\\]]*)\\]')"
        return self.json_object(column, "metadata", "clinic", "facts")

    def like(self, expression: str, param: str) -> str:
        """Case-insensitive match of a LIKE pattern (backslash escapes)."""
        operator = "ILIKE" if self.pg else "LIKE"
        return f"{expression} {operator} :{param} ESCAPE '\\'"

    def day(self, column: str) -> str:
        """Days since 1970-01-01 at the period's offset (:tz seconds)."""
        if self.pg:
            return f"CAST(floor(({column} + :tz) / 86400) AS INTEGER)"
        return f"CAST(({column} + :tz) / 86400 AS INTEGER)"

    @staticmethod
    def channel(column: str = "sender_id") -> str:
        return (f"CASE WHEN {column} LIKE 'web:%' THEN 'web' WHEN {column} LIKE 'telegram:%' THEN 'telegram' "
                f"WHEN {column} LIKE 'api:%' THEN 'api' ELSE 'other' END")


TEXT_OPEN, TEXT_CLOSE = '"text": "', '", "parse_data"'


def unescape(stored: Optional[str]) -> str:
    """A JSON string's content as stored (escaped) -> the text."""
    if not stored:
        return ""
    if "\\" not in stored:  # nothing escaped (most messages): the text as it is
        return stored
    try:
        return str(json.loads(f'"{stored}"'))
    except ValueError:
        return stored


def channel_of(sender_id: str) -> str:
    prefix = sender_id.split(":", 1)[0] if ":" in sender_id else ""
    return prefix if prefix in ("web", "telegram", "api") else "other"


def like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def stored_form(word: str) -> str:
    """How a word appears inside Rasa's JSON (non-ASCII as \\u escapes), for a first pass over `data`."""
    return json.dumps(word)[1:-1]


def epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


# --- messages by id ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    id: int
    sender_id: str
    timestamp: float
    text: str
    intent: Optional[str]
    confidence: Optional[float]

    @property
    def channel(self) -> str:
        return channel_of(self.sender_id)


def _message(row: Any) -> Message:
    event_id, sender_id, timestamp, intent, text = row
    return Message(int(event_id), sender_id, float(timestamp or 0), unescape(text), intent, None)


def _message_columns(sql: Sql) -> str:
    return f"id, sender_id, timestamp, intent_name, {sql.message_text('data')}"


def messages_by_id(db: Database, ids: Iterable[int]) -> Dict[int, Message]:
    """Patients' messages by event id (the text and confidence read from the JSON in the database)."""
    wanted = sorted(set(ids))
    found: Dict[int, Message] = {}
    if not wanted or not db.ready():
        return found
    sql = Sql(db.dialect)
    query = sa.text(f"SELECT {_message_columns(sql)} FROM events "
                    "WHERE id IN :ids AND type_name = 'user'").bindparams(sa.bindparam("ids", expanding=True))
    with db.engine.connect() as conn:
        for start in range(0, len(wanted), BATCH):
            for row in conn.execute(query, {"ids": wanted[start:start + BATCH]}):
                message = _message(row)
                found[message.id] = message
    return found


# --- feedback ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Feedback:
    id: int
    sender_id: str
    timestamp: float
    vote: str  # up | down
    fact: str


def feedback(db: Database, period: Period) -> List[Feedback]:
    if not db.ready():
        return []
    query = """
        SELECT id, sender_id, timestamp, data FROM events
        WHERE type_name = 'slot' AND timestamp >= :start AND timestamp < :end AND action_name = :slot
        ORDER BY id"""
    found = []
    for event_id, sender_id, timestamp, data in execute(db, query, {**period.params(), "slot": FEEDBACK_SLOT}):
        try:
            value = json.loads(data or "{}").get("value")
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("value") in ("up", "down"):
            found.append(Feedback(int(event_id), sender_id, float(timestamp), value["value"], str(value.get("fact"))))
    return found


def judged_questions(db: Database, votes: Sequence[Feedback]) -> Dict[int, int]:
    """For each feedback event: the id of the patient's message whose answer it judged (latest votes first, bounded).

    That is the patient message before the latest reply, before the vote, that gave the voted fact.
    """
    found: Dict[int, int] = {}
    chosen = sorted(votes, key=lambda v: -v.id)[:MAX_FEEDBACK_LOOKUPS]
    if not chosen:
        return found
    sql = Sql(db.dialect)
    senders = sorted({vote.sender_id for vote in chosen})
    history: Dict[str, List[Tuple[int, str, Optional[str]]]] = {}
    query = sa.text(f"""
        SELECT id, sender_id, type_name, CASE WHEN type_name = 'bot' THEN {sql.reply_facts('data')} END
        FROM events WHERE sender_id IN :senders AND type_name IN ('user', 'bot')""").bindparams(
        sa.bindparam("senders", expanding=True))
    with db.engine.connect() as conn:
        for start in range(0, len(senders), 500):
            for event_id, sender_id, type_name, facts in conn.execute(query, {"senders": senders[start:start + 500]}):
                history.setdefault(sender_id, []).append((int(event_id), type_name, facts))
    for vote in chosen:
        answered = False
        quoted = json.dumps(vote.fact)
        for event_id, type_name, facts in sorted(history.get(vote.sender_id, ()), reverse=True):
            if event_id > vote.id:
                continue
            if type_name == "bot" and not answered:
                answered = quoted in (facts or "")
            elif type_name == "user" and answered:
                found[vote.id] = event_id
                break
    return found


# --- transcripts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Search:
    channel: str = ""
    intent: str = ""
    words: str = ""

    @property
    def terms(self) -> List[str]:
        return [w for w in self.words.split() if w][:5]


@dataclass(frozen=True)
class ConversationRow:
    first_id: int  # the conversation's first matching message: its address in the console
    sender_id: str
    started: float
    last: float
    messages: int
    first_text: str = ""

    @property
    def channel(self) -> str:
        return channel_of(self.sender_id)


def search(db: Database, period: Period, criteria: Search, limit: int = 50, offset: int = 0, count: bool = True
           ) -> Tuple[int, List[ConversationRow]]:
    """Conversations with a patient's message in the period matching every criterion: (how many, one page).

    Without `count` (an export of every match) the total is the number of rows returned.
    """
    if not db.ready():
        return 0, []
    sql = Sql(db.dialect)
    params: Dict[str, Any] = period.params()
    where = ["type_name = 'user'", "timestamp >= :start", "timestamp < :end"]
    if criteria.channel in ("web", "telegram", "api"):
        params["prefix"] = f"{criteria.channel}:%"
        where.append("sender_id LIKE :prefix")
    elif criteria.channel == "other":
        where.append(f"{sql.channel()} = 'other'")
    if criteria.intent:
        params["intent"] = criteria.intent
        where.append("intent_name = :intent")
    for n, word in enumerate(criteria.terms):
        # The message's own words (as stored, escaped), not the rest of the JSON's. SQLite first scans the
        # whole row, which it does faster than cutting the text out of every row.
        params[f"word{n}"] = like_pattern(stored_form(word))
        if not sql.pg:
            where.append(sql.like("data", f"word{n}"))
        where.append(sql.like(sql.message_text("data"), f"word{n}"))
    condition = " AND ".join(where)
    total = execute(db, f"SELECT COUNT(DISTINCT sender_id) FROM events WHERE {condition}", params)[0][0] \
        if count else None
    # One query, the first matching message's text read by its id for each conversation listed: an export of every
    # conversation of a week (20,000 and more) used to fetch those texts in a second round of batches, most of its
    # time (docs/benchmarks.md). A subquery, not a join: PostgreSQL's planner merge-joins the whole table otherwise.
    page = f"""
        SELECT found.sender_id, found.first_id, found.started, found.last, found.messages,
               (SELECT {sql.message_text('e.data')} FROM events AS e WHERE e.id = found.first_id)
        FROM (SELECT sender_id, MIN(id) AS first_id, MIN(timestamp) AS started, MAX(timestamp) AS last,
                     COUNT(*) AS messages
              FROM events WHERE {condition}
              GROUP BY sender_id ORDER BY MAX(timestamp) DESC, sender_id LIMIT :limit OFFSET :offset) AS found
        ORDER BY found.last DESC, found.sender_id"""
    rows = execute(db, page, {**params, "limit": limit, "offset": offset})
    listed = [ConversationRow(int(first), sender, float(started), float(last), int(messages), unescape(text))
              for sender, first, started, last, messages, text in rows]
    return (int(total or 0) if count else len(listed)), listed


# --- one conversation ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    id: int
    timestamp: float
    who: str  # patient | assistant | feedback
    text: str
    intent: Optional[str] = None
    confidence: Optional[float] = None
    outcome: Optional[str] = None


@dataclass(frozen=True)
class Transcript:
    sender_id: str
    lines: Tuple[Line, ...]

    @property
    def channel(self) -> str:
        return channel_of(self.sender_id)


def transcript(db: Database, event_id: int) -> Optional[Transcript]:
    """The whole stored conversation that the event belongs to."""
    if not db.ready():
        return None
    owner = execute(db, "SELECT sender_id FROM events WHERE id = :id", {"id": event_id})
    if not owner:
        return None
    sender_id = owner[0][0]
    query = """
        SELECT id, type_name, timestamp, intent_name, action_name, data FROM events
        WHERE sender_id = :sender AND (type_name IN ('user', 'bot') OR (type_name = 'slot' AND action_name = :slot))
        ORDER BY id LIMIT :limit"""
    lines: List[Line] = []
    cache: Dict[str, Tuple[Optional[str], Tuple[str, ...]]] = {}
    for row_id, type_name, timestamp, intent, _action, data in execute(
            db, query, {"sender": sender_id, "slot": FEEDBACK_SLOT, "limit": MAX_CONVERSATION_EVENTS}):
        try:
            parsed = json.loads(data or "{}")
        except ValueError:
            parsed = {}
        if type_name == "user":
            confidence = ((parsed.get("parse_data") or {}).get("intent") or {}).get("confidence")
            lines.append(Line(int(row_id), float(timestamp or 0), "patient", str(parsed.get("text") or ""), intent,
                              float(confidence) if isinstance(confidence, (int, float)) else None))
        elif type_name == "bot":
            clinic = (parsed.get("metadata") or {}).get("clinic")
            kind, facts = parse_clinic(json.dumps(clinic) if clinic is not None else None, cache)
            outcome = outcome_of(kind, facts) if clinic is not None else None
            lines.append(Line(int(row_id), float(timestamp or 0), "assistant", str(parsed.get("text") or ""),
                              outcome=outcome))
        else:
            value = parsed.get("value") if isinstance(parsed.get("value"), dict) else {}
            vote = {"up": "thumbs up", "down": "thumbs down"}.get(str(value.get("value")), "feedback")
            lines.append(Line(int(row_id), float(timestamp or 0), "feedback", f"{vote} on “{value.get('fact')}”"))
    return Transcript(sender_id, tuple(lines))


# --- callback requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CallbackRequest:
    """The latest request a conversation stored (its `callback_request` slot event), with the patient's consent."""

    id: int  # the slot event: the request's address in the console
    sender_id: str
    timestamp: float
    name: str
    phone: str
    time: str
    consent_at: str
    status: str  # as stored by the assistant ("new"); the console's changes are in console_callbacks

    @property
    def channel(self) -> str:
        return channel_of(self.sender_id)


def callback_requests(db: Database, event_id: Optional[int] = None) -> List[CallbackRequest]:
    """Every conversation's latest callback request, newest first (or only the one stored by `event_id`).

    A second request of one patient replaces the first, so only the latest of a conversation counts; a
    conversation deleted on request or by retention takes its requests with it.
    """
    if not db.ready():
        return []
    query = "SELECT id, sender_id, timestamp, data FROM events WHERE type_name = 'slot' AND action_name = :slot"
    params: Dict[str, Any] = {"slot": CALLBACK_SLOT}
    if event_id is not None:
        query += " AND sender_id = (SELECT sender_id FROM events WHERE id = :id)"
        params["id"] = event_id
    latest: Dict[str, Optional[CallbackRequest]] = {}
    # Sorted here, not by the database: with ORDER BY id SQLite walks the whole table backwards instead of
    # using the index on action_name (seconds at 100,000 conversations).
    rows = sorted(execute(db, query, params), key=lambda row: -int(row[0]))
    for row_id, sender_id, timestamp, data in rows:
        if sender_id in latest:
            continue
        try:
            value = json.loads(data or "{}").get("value")
        except ValueError:
            value = None
        if not isinstance(value, dict):
            latest[sender_id] = None  # emptied: nothing to call about
            continue
        latest[sender_id] = CallbackRequest(
            int(row_id), sender_id, float(timestamp or 0), str(value.get("name") or ""), str(value.get("phone") or ""),
            str(value.get("time") or ""), str(value.get("consent_at") or ""), str(value.get("status") or "new"))
    found = [r for r in latest.values() if r is not None]
    if event_id is not None:
        found = [r for r in found if r.id == event_id]
    return sorted(found, key=lambda r: -r.id)


def latest_messages(db: Database, sender_ids: Iterable[str]) -> Dict[str, int]:
    """Each conversation's latest patient message id (for links to its transcript)."""
    senders = sorted(set(sender_ids))
    found: Dict[str, int] = {}
    if not senders or not db.ready():
        return found
    query = sa.text("SELECT sender_id, MAX(id) FROM events WHERE sender_id IN :senders AND type_name = 'user' "
                    "GROUP BY sender_id").bindparams(sa.bindparam("senders", expanding=True))
    with db.engine.connect() as conn:
        for start in range(0, len(senders), 500):
            for sender_id, event_id in conn.execute(query, {"senders": senders[start:start + 500]}):
                found[sender_id] = int(event_id)
    return found
