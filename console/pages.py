"""What each console page shows, and the HTML (Jinja2 templates in console/templates/, autoescaped).

Each `Views` method turns the stored conversations (summaries.py, queries.py) into the
figures and rows of one page, with patients' words masked unless revealed (privacy.py);
`rows(...)` gives the same lists for the CSV export. No page runs a script: forms, links
and inline SVG only, so everything works by keyboard and on a phone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from jinja2 import Environment, FileSystemLoader, select_autoescape

from clinic.fact_store import FactStore, domain_intents
from clinic.settings import Settings
from console import charts, queries, similarity
from console.database import CALLBACK_STATUSES, Database, Handled
from console.privacy import has_contact_details, mask
from console.proposals import Proposal, Review
from console.queries import (
    ALERT_LABELS,
    CHANNEL_LABELS,
    CHANNELS,
    OUTCOME_LABELS,
    OUTCOMES,
    REASON_LABELS,
    Message,
    Period,
    Search,
)
from console.summaries import Summaries, Summary
from ops.alerts import status_rows

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_DAYS = 7
MAX_DAYS = 366
PAGE_SIZE = 100
GROUPS_SHOWN = 100
EXAMPLES_SHOWN = 8
TOPICS_CHARTED = 15
ALERTS_READ = 1000  # the newest staff alerts read for the urgent page's outcomes
ALERT_KINDS = {"urgent": "Urgent", "person": "Asked for a person", "callback": "Callback request"}
ALERT_STATES = {"sent": "sent", "pending": "pending (retrying)", "failed": "FAILED", "off": "off"}
SPECIAL_TOPICS = {"nlu_fallback": "Not understood", "out_of_scope": "Out of scope",
                  "request_human": "Asked for a person", "report_complication": "Reported a complication"}

environment = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                          trim_blocks=True, lstrip_blocks=True)


def when(timestamp: float) -> str:
    return _minute(int(timestamp // 60))


@lru_cache(maxsize=65536)  # an export of a week's conversations formats some 40,000 times, a few thousand minutes
def _minute(minute: int) -> str:
    return time.strftime("%a %d %b %Y, %H:%M", time.localtime(minute * 60))


def number(value: int) -> str:
    return f"{value:,}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


environment.filters.update(when=when, number=number)


def render(template: str, **context: Any) -> str:
    return environment.get_template(template).render(**context)


def parse_period(start: Optional[str], end: Optional[str], today: Optional[dt.date] = None
                 ) -> Tuple[Period, Optional[str]]:
    """The dates asked for, or this week; (period, a sentence when the dates could not be used)."""
    today = today or dt.date.today()
    default = Period.last_days(DEFAULT_DAYS, today)
    if not start and not end:
        return default, None
    try:
        first = dt.date.fromisoformat(start) if start else default.start
        last = dt.date.fromisoformat(end) if end else today
    except ValueError:
        return default, "Those dates could not be read (use the date fields); showing the last 7 days."
    if last < first:
        first, last = last, first
    if (last - first).days >= MAX_DAYS:
        first = last - dt.timedelta(days=MAX_DAYS - 1)
        return Period.of(first, last), f"At most {MAX_DAYS} days at once; showing {first} to {last}."
    return Period.of(first, last), None


@dataclass(frozen=True)
class Example:
    id: int
    text: str  # masked
    when: str


@dataclass(frozen=True)
class GroupView:
    number: int
    label: str
    count: int
    reasons: str
    channels: str
    latest: str
    latest_id: int
    examples: Tuple[Example, ...]
    ids: Tuple[int, ...]


class Views:
    """The console's pages over one conversation store and one fact store."""

    def __init__(self, settings: Settings, db: Database, summaries: Summaries, facts: FactStore,
                 review: Review) -> None:
        self.settings = settings
        self.db = db
        self.summaries = summaries
        self.facts = facts
        self.review = review

    # --- shared ----------------------------------------------------------------------------------------

    def clinic_name(self) -> str:
        try:
            return str(self.facts.current().settings.get("clinic_name") or "Clinic")
        except Exception:  # noqa: BLE001 - a broken fact store must not take the console down
            return "Clinic"

    def topic_names(self) -> Dict[str, str]:
        """intent -> the title staff know it by (its fact's title)."""
        names: Dict[str, str] = {}
        defaults: set = set()  # intents named after their default variant (a fact without match words)
        for fact in self.facts.current().facts.values():
            for intent in fact.intents:
                if intent not in defaults and (intent not in names or not fact.match):
                    names[intent] = fact.title
                    if not fact.match:
                        defaults.add(intent)
        names.update(SPECIAL_TOPICS)
        return names

    def topic_name(self, intent: Optional[str], names: Optional[Dict[str, str]] = None) -> str:
        names = names if names is not None else self.topic_names()
        intent = intent or "nlu_fallback"
        return names.get(intent, intent.replace("_", " ").capitalize())

    def topics(self) -> List[Tuple[str, str]]:
        """(intent, title) of every intent, by title, for the topic choosers."""
        names = self.topic_names()
        return sorted(((i, self.topic_name(i, names)) for i in domain_intents()), key=lambda pair: pair[1].lower())

    # --- overview --------------------------------------------------------------------------------------

    def overview(self, period: Period) -> Dict[str, Any]:
        summary = self.summaries.period(period)
        names = self.topic_names()
        channels = [c for c in CHANNELS if summary.messages.get(c)]
        series = {c: [summary.daily.get(day, {}).get(c, (0, 0))[1] for day in period.days] for c in channels}
        daily_rows = []
        for day in period.days:
            per = summary.daily.get(day, {})
            daily_rows.append({"day": day, "conversations": sum(v[0] for v in per.values()),
                               "messages": sum(v[1] for v in per.values()),
                               "by_channel": [per.get(c, (0, 0))[1] for c in channels]})
        topics = [(self.topic_name(i, names), n) for i, n in summary.topics.most_common()]
        outcomes = [(OUTCOME_LABELS[o], summary.outcomes.get(o, 0), o) for o in OUTCOMES if summary.outcomes.get(o)]
        total = summary.total_messages
        return {
            "summary": summary, "channels": [(c, CHANNEL_LABELS[c], summary.conversations_in(c),
                                              summary.messages.get(c, 0)) for c in channels],
            "daily_chart": charts.stacked_columns("daily", "Patients' messages per day, by channel", period.days,
                                                  series, CHANNEL_LABELS),
            "daily_rows": daily_rows, "channel_labels": [CHANNEL_LABELS[c] for c in channels],
            "topics_chart": charts.horizontal_bars("topics", "Topics patients asked about",
                                                   topics[:TOPICS_CHARTED]),
            "topics": topics, "more_topics": max(0, len(topics) - TOPICS_CHARTED),
            "outcomes_chart": charts.horizontal_bars("outcomes", "How each message ended",
                                                     [(label, n) for label, n, _ in outcomes],
                                                     colours=[charts.OUTCOME_COLOURS[key] for _, _, key in outcomes]),
            "outcomes": [(label, n, percent(n, total), key) for label, n, key in outcomes],
            "unanswered": len(self.unanswered_reasons(period, summary)),
            "alerts": len(summary.alerts),
        }

    def overview_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        summary = self.summaries.period(period)
        rows = []
        for day in period.days:
            for channel, (conversations, messages) in sorted(summary.daily.get(day, {}).items()):
                rows.append([day.isoformat(), CHANNEL_LABELS[channel], conversations, messages])
        return ["day", "channel", "conversations", "patient messages"], rows

    def topics_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        summary = self.summaries.period(period)
        names = self.topic_names()
        return (["topic", "intent", "patient messages"],
                [[self.topic_name(i, names), i, n] for i, n in summary.topics.most_common()])

    def outcomes_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        summary = self.summaries.period(period)
        total = summary.total_messages
        return (["outcome", "patient messages", "share"],
                [[OUTCOME_LABELS[o], summary.outcomes[o], percent(summary.outcomes[o], total)]
                 for o in OUTCOMES if summary.outcomes.get(o)])

    # --- unanswered ------------------------------------------------------------------------------------

    def unanswered_reasons(self, period: Period, summary: Optional[Summary] = None) -> Dict[int, set]:
        """Message id -> why it counts as unanswered (the overview's figure and the page's list agree)."""
        summary = summary or self.summaries.period(period)
        reasons: Dict[int, set] = {}
        for message_id, kind in summary.failed.items():
            reasons.setdefault(message_id, set()).add(kind)
        for message_id in summary.low_confidence:
            reasons.setdefault(message_id, set()).add("low_confidence")
        downs = [vote for vote in queries.feedback(self.db, period) if vote.vote == "down"]
        for message_id in queries.judged_questions(self.db, downs).values():
            reasons.setdefault(message_id, set()).add("thumbs_down")
        return reasons

    def _unanswered(self, period: Period) -> Tuple[List[similarity.Group[Message]], Dict[int, set], int]:
        summary = self.summaries.period(period)
        reasons = self.unanswered_reasons(period, summary)
        messages = dict(summary.unanswered)  # read with the day's figures; only the thumbed-down ones by id here
        messages.update(queries.messages_by_id(self.db, (i for i in reasons if i not in messages)))
        messages = {i: m for i, m in messages.items() if i in reasons}
        ordered = sorted(messages.values(), key=lambda m: -m.id)
        groups, left_out = similarity.group(ordered, lambda m: m.text)
        return groups, reasons, left_out

    def _group_view(self, number_: int, group: similarity.Group[Message], reasons: Dict[int, set]) -> GroupView:
        texts = Counter(mask(m.text) for m in group.items)
        label = texts.most_common(1)[0][0] if texts else group.label
        why: Counter = Counter(r for m in group.items for r in reasons.get(m.id, ()))
        channels = Counter(CHANNEL_LABELS[m.channel] for m in group.items)
        seen: set = set()
        examples: List[Example] = []
        for message in group.items:  # newest first
            shown = mask(message.text)
            if shown not in seen and len(examples) < EXAMPLES_SHOWN:
                seen.add(shown)
                examples.append(Example(message.id, shown, when(message.timestamp)))
        latest = group.items[0]
        return GroupView(number_, label, group.count,
                         ", ".join(f"{REASON_LABELS[r]} {n}" for r, n in why.most_common()),
                         ", ".join(f"{c} {n}" for c, n in channels.most_common()),
                         when(latest.timestamp), latest.id, tuple(examples), tuple(m.id for m in group.items))

    def unanswered(self, period: Period) -> Dict[str, Any]:
        groups, reasons, left_out = self._unanswered(period)
        views = [self._group_view(n + 1, g, reasons) for n, g in enumerate(groups[:GROUPS_SHOWN])]
        waiting = [p for p in self.review.load() if p.status == "proposed"]
        return {"groups": views, "total": sum(g.count for g in groups) + left_out, "group_count": len(groups),
                "more_groups": max(0, len(groups) - GROUPS_SHOWN), "left_out": left_out, "topics": self.topics(),
                "waiting": waiting, "topic_names": self.topic_names()}

    def unanswered_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        groups, reasons, _ = self._unanswered(period)
        rows = []
        for n, group in enumerate(groups):
            view = self._group_view(n + 1, group, reasons)
            rows.append([view.number, view.label, view.count, view.reasons, view.channels, view.latest,
                         " | ".join(e.text for e in view.examples)])
        return ["group", "question", "messages", "why", "channels", "latest", "examples"], rows

    def propose(self, action: str, message_ids: Sequence[int], by: str, intent: Optional[str], note: str) -> Proposal:
        messages = queries.messages_by_id(self.db, message_ids)
        texts = [messages[i].text for i in message_ids if i in messages]
        return self.review.propose(action, texts, by, intent=intent, note=note, intents=domain_intents())

    # --- urgent and hand-offs --------------------------------------------------------------------------

    def _alerts(self, period: Period, only_open: bool) -> List[Tuple[Message, str, Optional[Handled]]]:
        summary = self.summaries.period(period)
        messages = queries.messages_by_id(self.db, summary.alerts)
        handled = self.db.handled(summary.alerts)
        rows = [(messages[i], kind, handled.get(i)) for i, kind in summary.alerts.items() if i in messages]
        if only_open:
            rows = [row for row in rows if row[2] is None]
        return sorted(rows, key=lambda row: -row[0].id)

    def urgent(self, period: Period, only_open: bool, page: int) -> Dict[str, Any]:
        rows = self._alerts(period, only_open)
        start = (page - 1) * PAGE_SIZE
        shown = [{"message": m, "kind": ALERT_LABELS[k], "urgent": k == "urgent", "text": mask(m.text),
                  "channel": CHANNEL_LABELS[m.channel], "handled": h} for m, k, h in rows[start:start + PAGE_SIZE]]
        summary = Counter(k for _, k, _ in rows)
        alerts = self.alert_outcomes(period)
        return {"rows": shown, "total": len(rows), "page": page, "pages": max(1, -(-len(rows) // PAGE_SIZE)),
                "open": sum(1 for _, _, h in rows if h is None), "only_open": only_open,
                "counts": [(ALERT_LABELS[k], summary[k]) for k in ALERT_LABELS if summary.get(k)],
                "alerts": alerts, "alerts_failed": sum(1 for a in alerts if a["failed"])}

    def alert_outcomes(self, period: Period) -> List[Dict[str, Any]]:
        """What became of each staff alert (ops/alerts.py) queued in the period: sent, pending, failed, off."""
        if not self.db.ready():
            return []
        start, end = period.bounds
        alerts = [a for a in status_rows(self.db.engine, limit=ALERTS_READ) if start <= a["created_at"] < end]
        links = queries.latest_messages(self.db, (a["conversation_id"] for a in alerts))
        return [{"id": a["id"], "at": a["created_at"], "what": ALERT_KINDS.get(a["kind"], a["kind"]),
                 "channel": CHANNEL_LABELS[queries.channel_of(a["conversation_id"])],
                 "telegram": ALERT_STATES.get(a["telegram"], a["telegram"]),
                 "email": ALERT_STATES.get(a["email"], a["email"]), "attempts": a["attempts"],
                 "error": a["last_error"] or "", "failed": "failed" in (a["telegram"], a["email"]),
                 "link": links.get(a["conversation_id"])} for a in alerts]

    def alerts_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        """The staff alerts' outcomes, as the urgent page lists them (no patient's words: they are not shown)."""
        return (["queued", "what", "channel", "telegram", "e-mail", "attempts", "last error"],
                [[when(a["at"]), a["what"], a["channel"], a["telegram"], a["email"], a["attempts"], a["error"]]
                 for a in self.alert_outcomes(period)])

    def urgent_rows(self, period: Period, only_open: bool) -> Tuple[List[str], List[List[Any]]]:
        rows = []
        for message, kind, handled in self._alerts(period, only_open):
            rows.append([when(message.timestamp), CHANNEL_LABELS[message.channel], ALERT_LABELS[kind],
                         mask(message.text), handled.by if handled else "", when(handled.at) if handled else ""])
        return ["time", "channel", "what", "patient's words", "handled by", "handled at"], rows

    # --- callback requests -----------------------------------------------------------------------------

    def _callbacks(self, only_open: bool, event_id: Optional[int] = None) -> List[Dict[str, Any]]:
        found = queries.callback_requests(self.db, event_id)
        changes = self.db.callback_statuses(r.id for r in found)
        rows = []
        for request in found:
            status, by, at = changes.get(request.id, (request.status, "", 0.0))
            if only_open and status == "closed":
                continue
            rows.append({"request": request, "status": status, "by": by, "at": at,
                         "channel": CHANNEL_LABELS[request.channel]})
        return rows

    def callback_request(self, event_id: int) -> Optional[queries.CallbackRequest]:
        found = queries.callback_requests(self.db, event_id)
        return found[0] if found else None

    def callbacks(self, only_open: bool, page: int, revealed: Optional[int] = None) -> Dict[str, Any]:
        """Callback requests, newest first: phone numbers hidden except the one a staff member asked to see."""
        rows = self._callbacks(only_open)
        counts = Counter(row["status"] for row in rows)
        start = (page - 1) * PAGE_SIZE
        shown = []
        for row in rows[start:start + PAGE_SIZE]:
            request = row["request"]
            shown.append({**row, "name": mask(request.name), "time": mask(request.time),
                          "phone": request.phone if request.id == revealed else mask(request.phone),
                          "revealed": request.id == revealed})
        return {"rows": shown, "total": len(rows), "page": page, "pages": max(1, -(-len(rows) // PAGE_SIZE)),
                "only_open": only_open, "statuses": CALLBACK_STATUSES,
                "counts": [(status, counts.get(status, 0)) for status in CALLBACK_STATUSES],
                "retention_days": f"{self.settings.retention_days:g}"}

    def callbacks_rows(self, only_open: bool) -> Tuple[List[str], List[List[Any]]]:
        rows = []
        for row in self._callbacks(only_open):
            request = row["request"]
            rows.append([when(request.timestamp), row["channel"], mask(request.name), mask(request.phone),
                         mask(request.time), request.consent_at, row["status"], row["by"],
                         when(row["at"]) if row["at"] else ""])
        return (["requested", "channel", "name", "phone", "preferred time", "consent given (UTC)", "status",
                 "status changed by", "status changed at"], rows)

    # --- transcripts -----------------------------------------------------------------------------------

    def transcripts(self, period: Period, criteria: Search, page: int) -> Dict[str, Any]:
        total, rows = queries.search(self.db, period, criteria, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        return {"rows": [{"row": r, "channel": CHANNEL_LABELS[r.channel], "text": mask(r.first_text)} for r in rows],
                "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)), "criteria": criteria,
                "channels": [(c, CHANNEL_LABELS[c]) for c in CHANNELS], "topics": self.topics()}

    def transcripts_rows(self, period: Period, criteria: Search) -> Tuple[List[str], List[List[Any]]]:
        _, rows = queries.search(self.db, period, criteria, limit=1_000_000, count=False)
        return (["started", "last message", "channel", "patient messages", "first matching message"],
                [[when(r.started), when(r.last), CHANNEL_LABELS[r.channel], r.messages, mask(r.first_text)]
                 for r in rows])

    def conversation(self, event_id: int, reveal: bool) -> Optional[Dict[str, Any]]:
        found = queries.transcript(self.db, event_id)
        if found is None:
            return None
        names = self.topic_names()
        lines = []
        for line in found.lines:
            # Every line is masked, the assistant's too: the callback form repeats the patient's name and number
            # ("Shall I call Maria on +1 555 ...?"), so masking only the patient's lines would show them anyway.
            text = line.text if reveal else mask(line.text)
            topic = self.topic_name(line.intent, names) if line.intent else ""
            lines.append({"line": line, "text": text, "topic": topic,
                          "outcome": OUTCOME_LABELS.get(line.outcome or "", ""), "highlight": line.id == event_id})
        hidden = any(has_contact_details(line.text) for line in found.lines)
        return {"transcript": found, "lines": lines, "channel": CHANNEL_LABELS[found.channel], "event_id": event_id,
                "revealed": reveal, "has_hidden": hidden and not reveal}

    # --- facts -----------------------------------------------------------------------------------------

    def _fact_rows(self, period: Period) -> List[Dict[str, Any]]:
        snapshot = self.facts.current()
        summary: Summary = self.summaries.period(period)
        votes = queries.feedback(self.db, period)
        up = Counter(v.fact for v in votes if v.vote == "up")
        down = Counter(v.fact for v in votes if v.vote == "down")
        today = dt.date.today()
        rows = []
        for fact in sorted(snapshot.facts.values(), key=lambda f: (f.path, f.id)):
            age = (today - fact.reviewed_on).days
            due = age > self.settings.fact_review_days
            rows.append({"fact": fact, "age": age, "due": due, "awaiting": fact.status == "needs_clinician_review",
                         "given": summary.facts.get(fact.id, 0), "up": up.get(fact.id, 0),
                         "down": down.get(fact.id, 0), "file": Path(fact.path).name if fact.path else ""})
        return rows

    def facts_page(self, period: Period) -> Dict[str, Any]:
        rows = self._fact_rows(period)
        attention = [r for r in rows if r["due"] or r["awaiting"]]
        return {"rows": rows, "attention": attention, "review_days": self.settings.fact_review_days,
                "given": sum(r["given"] for r in rows), "up": sum(r["up"] for r in rows),
                "down": sum(r["down"] for r in rows)}

    def facts_rows(self, period: Period) -> Tuple[List[str], List[List[Any]]]:
        return (["fact", "title", "file", "status", "reviewed on", "due for review", "given", "thumbs up",
                 "thumbs down"],
                [[r["fact"].id, r["fact"].title, r["file"], r["fact"].status, r["fact"].reviewed_on.isoformat(),
                  "yes" if r["due"] else "no", r["given"], r["up"], r["down"]] for r in self._fact_rows(period)])
