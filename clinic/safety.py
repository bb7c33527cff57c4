"""Deciding when a message must take the urgent path.

A missed complication is the worst mistake this assistant can make, and a false alarm
to someone asking an ordinary question ("will I be red for long?") the second worst.
So the urgent path reads what the message says about the symptom, not only its words:

  1. A warning sign (data/facts/warning_signs.yml: bleeding that will not stop, an allergic
     reaction, trouble breathing or swallowing, changes in vision, spreading redness or red
     streaks, fever or chills, pus, blisters, severe or worsening pain, a growing lump,
     dizziness or fainting, a cold-sore outbreak after treatment, symptoms beyond about a
     week...) that the message *reports*: not negated ("no fever", "not bleeding any more"),
     not hypothetical ("what happens if it gets infected?", "can it cause blisters?").
     Strong signs count in a question about the present ("blisters after microneedling,
     normal?"); the others need a report: personal, or the present ("my...", "I have",
     "since my session", "tonight").
  2. The classifier's top intent is report_complication, unless the message is a
     hypothetical, a general question or a question about what one may do ("can I use a
     sheet mask while I'm still red?") and reports no warning sign.
  3. report_complication close behind the top intent (a near miss), when the message
     reads as a report of a symptom now, not as a question about risks or plans.
Asking whether to go to hospital or a doctor is urgent whatever else the message says.

Negation and hypotheticals are read within the clause that holds the sign (split at
punctuation and "but"), so "no fever, but my cheek is hot and swollen and spreading"
still reports spreading swelling, and "I think it's infected, what happens if I leave it?"
still reports an infection.
"""

from __future__ import annotations

import re
from typing import List, Sequence, Tuple

from clinic.fact_store import WarningSign

URGENT_INTENT = "report_complication"
FALLBACK_INTENT = "nlu_fallback"
# Chosen on the dev sets (docs/evaluation.md): a near miss is report_complication at this
# confidence or more, or within NEAR_MISS_MARGIN of the top intent and above NEAR_MISS_FLOOR.
NEAR_MISS_CONFIDENCE = 0.3
NEAR_MISS_MARGIN = 0.2
NEAR_MISS_FLOOR = 0.1
# report_complication as the top intent is taken at its word from this confidence; below it, the
# message must also name a symptom ("hmm and then" is no report, "face feels weird" may be).
URGENT_INTENT_SURE = 0.5

_CLAUSE_BREAK = re.compile(r"[.;!?,\n]+|\s[-–—]\s|\bbut\b|\bhowever\b", re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(no|not|never|without|nothing|none|zero|isn'?t|aren'?t|wasn'?t|don'?t|doesn'?t|didn'?t|haven'?t|"
    r"hasn'?t|havent|hasnt|dont|doesnt|didnt|isnt|arent|no sign of|free of|nor|neither)\b",
    re.IGNORECASE,
)
NEGATION_WINDOW = 4  # words before the sign a negation reaches ("no pus or blisters")
_HYPOTHETICAL = re.compile(
    r"\b(what if|what happens if|in case|if (i|you|it|my|the|she|he|they|someone|there)\b|"
    r"(can|could|will|would|might|may|does|do|did) (it|microneedling|needling|this|that|the treatment|the needles|"
    r"you|people|patients|anyone|someone|i) (ever |sometimes |really |actually )?"
    r"(cause|give|lead|trigger|make|leave|get|develop|react|end up|set off|bring on|spread|transmit|pass on)|"
    r"is there (a|any) (risk|chance)|risks? of|chances? of|odds of|likel(y|ihood)|how (common|likely|often|rare)|"
    r"possible|possibility|so (it|that it|that i|i) (doesn'?t|does not|won'?t|don'?t|wont|dont)|"
    r"should i expect|do people|does everyone|is it common|is (that|it) true|i read|i heard|i've heard|"
    r"to (avoid|prevent|stop) (it|an?|getting|infection|any)|prevent\w*|avoid\w*|reduce the risk)\b",
    re.IGNORECASE,
)
# Something the speaker is prone to, not something happening now: "I get cold sores quite often, is
# microneedling ok for me?" asks whether they can be treated. Not when the message ties it to a treatment
# ("I keep getting dizzy spells since the session" is a report). Found on the dev set (docs/evaluation.md).
_HABITUAL = re.compile(
    r"\b(prone to|a history of|suffer(s|ed)? (from|with)|tend to get|used to get|"
    r"(get|gets|getting|have|has|had) (\w+ ){1,3}(quite |very |pretty |fairly )?(often|sometimes|regularly|"
    r"occasionally|a lot|frequently|now and (then|again)|from time to time|every (winter|summer|year|month)|"
    r"in the past|before))\b",
    re.IGNORECASE,
)
_TIED_TO_TREATMENT = re.compile(r"\b(since|after|following|post)\b", re.IGNORECASE)
# The future, for a sign only: "will I bleed a lot?" asks about later, "it won't stop bleeding" reports.
_FUTURE = re.compile(r"\b(will|would|is going to|am i going to|are you going to) (i|it|my|the|there|you|we)\b",
                     re.IGNORECASE)
# "can I use a sheet mask while I'm still red?": a question about what to do, not a report.
_PLANNING = re.compile(
    r"(^|[,.;!?]\s*|\b(and|so|but)\s+)(can|could|may|should|shall|do|does) (i|we|you)\b|"
    r"\bis it (ok|okay|alright|safe|fine)\b|"
    r"\b(am i allowed|when can i|how soon can i|how long (should|do|until|before)|should i (move|cancel|postpone|"
    r"wait|reschedule|still)|before (my|the) (treatment|session|appointment|next))\b",
    re.IGNORECASE,
)
_QUESTION = re.compile(
    r"^\s*((and|so|ok|okay|but|also|then|um+|hmm+|well|oh|right|sorry|hi|hello)\b[,.]?\s*)*"
    r"(can|could|does|do|did|will|would|is|are|was|were|what|how|any|should|when|why|which|who|whats|what's)\b|"
    r"\?\s*$",
    re.IGNORECASE,
)
# A report: the speaker, or someone they speak for, has something now.
_REPORT = re.compile(
    r"\b(my|mine|i'?m|im|i am|i'?ve|ive|i have|i got|i feel|i think|i can'?t|i cannot|i woke|i keep|i just|"
    r"i'?d|there'?s|there is|there are|it'?s|its been|it has|it keeps|she'?s|he'?s|she has|he has|her|his|"
    r"our|since|tonight|today|this morning|yesterday|now|still|keeps|keep|won'?t|started|came up|come up|"
    r"broke out|appeared|woke up|all over)\b",
    re.IGNORECASE,
)
_SEEK_CARE = re.compile(
    r"\b(should i|do i need to|do i have to|must i|shall i) (go|get|call|ring|see|phone)\b.{0,30}"
    r"\b(a ?&e|a and e|er|emergency|hospital|doctor|gp|ambulance|911|999|112)\b|"
    r"\b(call|called|calling) (an )?ambulance\b",
    re.IGNORECASE,
)
_SYMPTOM = re.compile(
    r"\b(red\w*|swell\w*|swollen|puff\w*|pain\w*|hurt\w*|sore\w*|tender|burn\w*|hot|itch\w*|rash\w*|bump\w*|"
    r"spots?|lumps?|bleed\w*|blood\w*|crust\w*|scab\w*|ooz\w*|weep\w*|raw|blister\w*|infect\w*|fever\w*|"
    r"temperature|dizz\w*|faint\w*|sick|unwell|weird|wrong|bad|worse|awful|terrible|agony)\b",
    re.IGNORECASE,
)


def _clauses(text: str) -> List[Tuple[int, int]]:
    """(start, end) of each clause of the text."""
    spans, start = [], 0
    for brk in _CLAUSE_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return spans


def _clause_of(text: str, position: int) -> Tuple[int, int]:
    return next(((s, e) for s, e in _clauses(text) if s <= position <= e), (0, len(text)))


def negated(text: str, start: int) -> bool:
    """A negation within NEGATION_WINDOW words before `start`, in the same clause: "no fever", "not bleeding"."""
    clause_start, _ = _clause_of(text, start)
    before = text[clause_start:start].split()[-NEGATION_WINDOW:]
    return bool(_NEGATION.search(" ".join(before)))


def hypothetical(text: str, start: int) -> bool:
    """The clause around `start` asks about a risk, a case or later, or tells what the speaker is prone to,
    not what they have now: "what if it gets infected", "will I bleed a lot?", "I get cold sores often"."""
    clause_start, clause_end = _clause_of(text, start)
    clause = text[clause_start:clause_end]
    habitual = bool(_HABITUAL.search(clause)) and not _TIED_TO_TREATMENT.search(text)
    return bool(_HYPOTHETICAL.search(clause) or _FUTURE.search(clause)) or habitual


def is_report(text: str) -> bool:
    """The message says someone has something now, rather than asking in general: a personal or present
    marker ("my", "I have", "since", "tonight"), or a clause that states a symptom ("face hot and swollen
    after microneedling, is that ok?")."""
    if _REPORT.search(text):
        return True
    clauses = [text[s:e].strip() for s, e in _clauses(text)]
    return any(c and not _QUESTION.match(c) and _SYMPTOM.search(c) for c in clauses) or not _QUESTION.search(text)


def reported_signs(text: str, signs: Sequence[WarningSign]) -> List[str]:
    """Labels of the warning signs the message reports (not negated, not hypothetical)."""
    report = is_report(text)
    found = []
    for sign in signs:
        for match in sign.pattern.finditer(text):
            if negated(text, match.start()) or hypothetical(text, match.start()):
                continue
            if sign.strong or report:
                found.append(sign.label)
                break
    return found


def _asks_in_general(text: str) -> bool:
    """A hypothetical, or a question about what one may or should do, rather than a report."""
    return bool(_HYPOTHETICAL.search(text) or _PLANNING.search(text)) or not is_report(text)


def urgent_reason(
    text: str,
    ranking: Sequence[Tuple[str, float]],
    signs: Sequence[WarningSign],
) -> str | None:
    """Why the message is urgent, or None. `ranking` is (intent, confidence), best first."""
    if _SEEK_CARE.search(text):
        return "asks whether to seek care"
    reported = reported_signs(text, signs)
    if reported:
        return f"warning sign: {reported[0]}"
    real = [(name, conf) for name, conf in ranking if name != FALLBACK_INTENT]
    if not real:
        return None
    if real[0][0] == URGENT_INTENT:
        sure = real[0][1] >= URGENT_INTENT_SURE or bool(_SYMPTOM.search(text))
        return "intent" if sure and not _asks_in_general(text) else None
    top = real[0][1]
    for name, conf in real[:3]:
        close = top - conf <= NEAR_MISS_MARGIN and conf >= NEAR_MISS_FLOOR
        if name == URGENT_INTENT and (conf >= NEAR_MISS_CONFIDENCE or close):
            if not _asks_in_general(text) and _SYMPTOM.search(text):
                return "near miss"
    return None
