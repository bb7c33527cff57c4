"""Callback requests: what the callback form accepts, what it says, and what it stores. No Rasa here.

The form itself is Rasa's (domain.yml `callback_form`, rules in data/rules.yml); the action
server (actions/callback.py) only carries these decisions to and from the tracker:

- each answer is checked first for a warning sign (the urgent answer, and the form stops; read
  as on the answer path: the words, as clinic/urgent.py's is_urgent_text, and the classifier's
  report_complication), then for "cancel" (the form stops, nothing is kept), then for what the
  step needs: a name, a phone number (digits, spaces, +, -, brackets; 7 to 15 digits), a
  preferred time, a clear yes or no;
- before anything is stored the patient is told exactly what will be kept (name, number, time,
  with the conversation) and for how long (RETENTION_DAYS), and asked to agree;
- only with that consent is the request stored, as the slot `callback_request` of the
  conversation, so retention and "delete my conversation" apply to it as to the messages;
  a second request replaces the first, and the patient is told so;
- the confirmation says what happens next; outside opening hours (data/clinic.yml `hours:`)
  it says when the clinic reopens and repeats the after-hours and emergency numbers.

Every text is a fact in data/facts/callback.yml. Besides the clinic's {placeholders}, those
facts use [name], [phone], [time], [days] and [reopens], filled in here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinic.fact_store import Snapshot
from clinic.replies import Button, Message, render_fact
from clinic.safety import urgent_reason
from clinic.urgent import URGENT_FACT

FORM = "callback_form"
NAME, PHONE, TIME, CONSENT = "callback_name", "callback_phone", "callback_time", "callback_consent"
SLOTS = (NAME, PHONE, TIME, CONSENT)
REQUEST_SLOT = "callback_request"  # the stored request: {"name", "phone", "time", "consent_at", "status"}
KIND = "callback"  # how a callback turn ended, in the reply's metadata (the console's outcome)
NEW = "new"
YES, NO, CANCEL = "yes", "no", "cancel"  # button payloads: the words a patient could type
BUTTON_PAYLOADS = (YES, NO, CANCEL)
# A message's custom data asking Telegram for a reply keyboard {"contact": title, "cancel": title}
# (channels/telegram/format.py): "share my phone number" and "cancel".
TELEGRAM_KEYBOARD = "telegram_reply_keyboard"

# The facts (data/facts/callback.yml)
START = "callback_request"
ASK = {NAME: START, PHONE: "callback_ask_phone", TIME: "callback_ask_time", CONSENT: "callback_ask_consent"}
INVALID = {NAME: "callback_name_invalid", PHONE: "callback_phone_invalid", TIME: "callback_time_invalid",
           CONSENT: "callback_consent_invalid"}
SHARE_PHONE = "callback_share_phone"
CONFIRMED, CONFIRMED_CLOSED = "callback_confirmed", "callback_confirmed_closed"
REPLACED, DECLINED, CANCELLED = "callback_replaced", "callback_declined", "callback_cancelled"
FACTS = (*ASK.values(), *INVALID.values(), SHARE_PHONE, CONFIRMED, CONFIRMED_CLOSED, REPLACED, DECLINED, CANCELLED)
FIELDS = ("name", "phone", "time", "days", "reopens")  # [field] in those facts' texts
_FIELD = re.compile(r"\[(" + "|".join(FIELDS) + r")\]")

MIN_DIGITS, MAX_DIGITS = 7, 15
MAX_NAME_CHARS, MAX_NAME_WORDS = 60, 6
MAX_TIME_CHARS = 120
_PHONE_CHARS = re.compile(r"^\+?[\d\s()\-]+$")
_PHONE_LEAD = re.compile(r"^[A-Za-z'’ ]*[\s:]*")  # "my number is ", "tel: "
_NAME_LEAD = re.compile(r"^(my name is|my name's|name is|name|i am|i'm|im|it's|its|this is|call me)\b[\s:,-]*",
                        re.IGNORECASE)
_WORD = re.compile(r"[a-z']+")
_CANCEL = re.compile(r"\b(cancel|stop|never ?mind|nvm|forget it|quit|abort)\b")
_FILLER = {"please", "pls", "it", "this", "that", "the", "callback", "call", "back", "request", "thanks", "thank",
           "you", "ok", "okay", "oh", "i", "want", "to", "actually", "just", "no", "sorry", "a", "my", "form"}
_YES_WORDS = {"yes", "y", "yeah", "yep", "yup", "ok", "okay", "sure", "agree", "agreed", "fine", "consent"}
_NO_WORDS = {"no", "n", "nope", "nah"}
_NEGATION = re.compile(r"\b(no|not|don'?t|do not|disagree|rather not)\b")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- reading the patient's answers ------------------------------------------------------------------------

def _words(text: str) -> list:
    return _WORD.findall(text.lower().replace("’", "'"))


def is_cancel(text: str) -> bool:
    """"cancel", "stop please", "never mind", "forget it": a short message that only asks to stop."""
    lowered = " ".join(_words(text))
    if not _CANCEL.search(lowered):
        return False
    rest = [w for w in _CANCEL.sub(" ", lowered).split() if w not in _FILLER]
    return not rest


def clean_name(text: str) -> Optional[str]:
    """The name to ask for, or None when the answer is no name (a number, a question, a paragraph)."""
    name = " ".join(text.split())
    name = _NAME_LEAD.sub("", name).strip(" .,!;:-\"'")
    if not name or not re.search(r"[^\W\d_]", name) or re.search(r"[\d?@/\\<>{}\[\]]", name):
        return None
    if len(name) > MAX_NAME_CHARS or len(name.split()) > MAX_NAME_WORDS:
        return None
    return name


def clean_phone(text: str) -> Optional[str]:
    """The number as typed (spaces tidied), or None: digits, spaces, +, -, brackets only, 7 to 15 digits."""
    number = " ".join(text.split())
    if number and not number[0].isdigit() and number[0] not in "+(":
        number = _PHONE_LEAD.sub("", number)  # "my number is 555 0100", "tel: 555 0100"
    number = number.strip().rstrip(".")
    if not number or not _PHONE_CHARS.match(number):
        return None
    digits = sum(ch.isdigit() for ch in number)
    if not MIN_DIGITS <= digits <= MAX_DIGITS or number.count("(") != number.count(")"):
        return None
    return number


def clean_time(text: str) -> Optional[str]:
    """A preferred time in the patient's words ("weekday mornings"), or None when nothing was said."""
    said = " ".join(text.split()).strip()
    if not re.search(r"[^\W_]", said) or len(said) > MAX_TIME_CHARS:
        return None
    return said


def consent_of(text: str) -> Optional[str]:
    """YES, NO, or None when the answer is neither."""
    words = _words(text)
    if not words:
        return None
    joined = " ".join(words)
    if words[0] in _NO_WORDS or _NEGATION.search(joined):
        return NO
    if words[0] in _YES_WORDS or joined.startswith(("i agree", "i consent", "go ahead", "that's fine")):
        return YES
    return None


CLEANERS = {NAME: clean_name, PHONE: clean_phone, TIME: clean_time, CONSENT: consent_of}


@dataclass(frozen=True)
class Step:
    """What one answer to the form leads to."""

    value: Optional[str]  # the slot's value; None: not accepted (asked again), or the form stops
    messages: Tuple[Message, ...] = ()
    facts: Tuple[str, ...] = ()
    stop: Optional[str] = None  # why the form ends now: "urgent" | "cancelled"

    @property
    def kind(self) -> str:
        return "urgent" if self.stop == "urgent" else KIND


def check_answer(slot: str, text: str, snapshot: Snapshot, ranking: Sequence[Tuple[str, float]] = ()) -> Step:
    """Safety first (the warning signs, and the classifier as on the answer path), then "cancel", then what
    the step needs."""
    text = text or ""
    if urgent_reason(text, tuple(ranking), snapshot.warning_signs):
        urgent = snapshot.facts[URGENT_FACT]
        return Step(None, (render_fact(snapshot, urgent),), (urgent.id,), stop="urgent")
    if is_cancel(text):
        return Step(None, (message(snapshot, CANCELLED),), (CANCELLED,), stop="cancelled")
    value = CLEANERS[slot](text)
    if value is None:
        return Step(None, (message(snapshot, INVALID[slot]),), (INVALID[slot],))
    return Step(value)


# --- what the assistant says --------------------------------------------------------------------------------

def fill(snapshot: Snapshot, fact_id: str, values: Optional[Mapping[str, Any]] = None) -> str:
    """A callback fact's text: the clinic's {placeholders}, then this request's [fields]."""
    values = values or {}
    return _FIELD.sub(lambda m: str(values.get(m.group(1), "")), snapshot.render(snapshot.facts[fact_id]))


def message(snapshot: Snapshot, fact_id: str, values: Optional[Mapping[str, Any]] = None,
            buttons: Tuple[Button, ...] = ()) -> Message:
    return Message(fill(snapshot, fact_id, values), buttons)


def cancel_button(snapshot: Snapshot) -> Button:
    return Button(snapshot.facts[CANCELLED].title, CANCEL)


def ask(slot: str, snapshot: Snapshot, slots: Mapping[str, Any], retention_days: float) -> Message:
    """The question for a slot; the consent question names what will be stored and for how long."""
    values = {"name": slots.get(NAME) or "", "phone": slots.get(PHONE) or "", "time": slots.get(TIME) or "",
              "days": f"{retention_days:g}"}
    buttons: Tuple[Button, ...]
    if slot == CONSENT:
        buttons = (Button(snapshot.facts[CONFIRMED].title, YES), Button(snapshot.facts[DECLINED].title, NO))
    else:
        buttons = (cancel_button(snapshot),)
    return message(snapshot, ASK[slot], values, buttons)


def share_phone_keyboard(snapshot: Snapshot) -> Dict[str, str]:
    """Telegram's reply keyboard for the phone question: share this account's number, or cancel."""
    return {"contact": snapshot.facts[SHARE_PHONE].title, "cancel": snapshot.facts[CANCELLED].title}


# --- opening hours ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hours:
    zone: dt.tzinfo
    days: Dict[int, Tuple[dt.time, dt.time]]  # weekday (Monday 0) -> (open, close); a missing day is closed


def _time(value: Any) -> Optional[dt.time]:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", str(value or ""))
    return dt.time(int(match.group(1)), int(match.group(2))) if match else None


def hours_from(settings: Mapping[str, Any]) -> Optional[Hours]:
    """data/clinic.yml's `hours:` (flattened: hours.timezone, hours.monday.open, ...); None when not set."""
    zone_name = settings.get("hours.timezone")
    if not zone_name:
        return None
    try:
        zone = ZoneInfo(str(zone_name))
    except (ZoneInfoNotFoundError, ValueError):
        return None
    days = {}
    for number, day in enumerate(DAYS):
        opens, closes = _time(settings.get(f"hours.{day}.open")), _time(settings.get(f"hours.{day}.close"))
        if opens and closes and opens < closes:
            days[number] = (opens, closes)
    return Hours(zone, days)


def is_open(hours: Hours, now: dt.datetime) -> bool:
    local = now.astimezone(hours.zone)
    span = hours.days.get(local.weekday())
    return span is not None and span[0] <= local.time() < span[1]


def next_opening(hours: Hours, now: dt.datetime) -> Optional[dt.datetime]:
    """When the clinic next opens after `now` (in its time zone), within a week; None when it never does."""
    local = now.astimezone(hours.zone)
    for ahead in range(8):
        day = local.date() + dt.timedelta(days=ahead)
        span = hours.days.get(day.weekday())
        if span is None:
            continue
        opens = dt.datetime.combine(day, span[0], tzinfo=hours.zone)
        if opens > local:
            return opens
    return None


def when_text(moment: dt.datetime) -> str:
    """'Monday 1 December, 09:00'."""
    return f"{DAYS[moment.weekday()].capitalize()} {moment.day} {moment.strftime('%B')}, {moment.strftime('%H:%M')}"


# --- storing ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    messages: Tuple[Message, ...]
    facts: Tuple[str, ...]
    request: Optional[Dict[str, Any]]  # what to store in REQUEST_SLOT; None: nothing

    @property
    def reason(self) -> str:
        return "stored" if self.request else ("declined" if DECLINED in self.facts else "not stored")


def submit(slots: Mapping[str, Any], previous: Any, snapshot: Snapshot, now: dt.datetime) -> Outcome:
    """The end of the form: the request stored with consent, or nothing (declined, or stopped on the way)."""
    values = {key: slots.get(slot) for key, slot in (("name", NAME), ("phone", PHONE), ("time", TIME))}
    consent = slots.get(CONSENT)
    if consent == NO:
        return Outcome((message(snapshot, DECLINED),), (DECLINED,), None)
    if consent != YES or not all(values.values()):
        return Outcome((), (), None)  # cancelled or stopped: the form said so already
    request = {**values, "consent_at": now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "status": NEW}
    messages, facts = [], []
    if isinstance(previous, dict) and previous:
        messages.append(message(snapshot, REPLACED, values))
        facts.append(REPLACED)
    hours = hours_from(snapshot.settings)
    opening = next_opening(hours, now) if hours and not is_open(hours, now) else None
    if opening is not None:
        messages.append(message(snapshot, CONFIRMED_CLOSED, {**values, "reopens": when_text(opening)}))
        facts.append(CONFIRMED_CLOSED)
    else:
        messages.append(message(snapshot, CONFIRMED, values))
        facts.append(CONFIRMED)
    return Outcome(tuple(messages), tuple(facts), request)


def cleared() -> Dict[str, None]:
    """Every form slot emptied, so a next request starts afresh."""
    return {slot: None for slot in SLOTS}


def missing_fields(snapshot: Snapshot) -> Dict[str, str]:
    """Callback facts that are missing or use a [field] this module does not fill (for `make check-facts`)."""
    problems = {}
    for fact_id in FACTS:
        fact = snapshot.facts.get(fact_id)
        if fact is None:
            problems[fact_id] = "missing"
            continue
        unknown = set(re.findall(r"\[([a-z_]+)\]", fact.text)) - set(FIELDS)
        if unknown:
            problems[fact_id] = f"unknown field(s): {', '.join(sorted(unknown))}"
    return problems
