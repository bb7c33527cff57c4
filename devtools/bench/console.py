"""`make bench-console`: the staff console's pages over 100,000 generated conversations, in SQLite and PostgreSQL.

Not a timed test: a measurement, appended to docs/benchmarks.md (section "Staff console").
For each store it
1. generates the conversations into a fresh `events` table, as Rasa's SQL tracker store writes
   them (devtools/harness/events.py): 30 days of patients on the website, Telegram and REST,
   1-4 questions each, the outcome mix of a real week (answers, "did you mean…?", out of
   scope, urgent, requests for a person), thumbs up and down;
2. starts the console (`python -m console`, as `make run` does) on that store, which applies its
   migrations (indexes) at start-up, and signs in;
3. requests every page and export several times and records the median and the slowest.

    python -m devtools.bench.console                      # 100,000 conversations, both stores
    python -m devtools.bench.console --conversations 5000 --stores sqlite --no-doc
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import requests
import sqlalchemy as sa

from clinic.fact_store import FactStore
from clinic.settings import Settings
from devtools.harness import events
from devtools.harness.console import ConsoleServer
from devtools.harness.servers import PROJECT

DOC = PROJECT / "docs" / "benchmarks.md"
SECTION = "## Staff console: pages over 100,000 conversations"
PASSWORD = "bench-console-password"
DAYS = 30
REPEATS = 5
TARGET_S = 1.0

# What patients ask, a few phrasings per topic (the generator adds names, numbers and typos around them).
QUESTIONS: Dict[str, List[str]] = {
    "ask_downtime": ["how long will my face be red", "how long is the downtime", "can I go to work the next day"],
    "ask_aftercare": ["what should I do after the treatment", "when can I wear makeup again", "aftercare tips?"],
    "ask_numbing": ["does it hurt", "do you use numbing cream", "is it painful"],
    "ask_cost": ["how much does it cost", "what is the price of one session", "is it expensive"],
    "ask_sessions": ["how many sessions will I need", "how often should I come"],
    "ask_acne_scars": ["will it help my acne scars", "can it fix pitted scars"],
    "ask_wrinkles": ["does it work on wrinkles", "will it get rid of forehead lines"],
    "ask_side_effects": ["what are the side effects", "is it safe", "any risks?"],
    "ask_candidacy": ["can I do it while pregnant", "is it ok for dark skin", "I take isotretinoin, can I do it"],
    "ask_sunscreen": ["do I need sunscreen after", "can I go in the sun after"],
    "book_appointment": ["I want to book an appointment", "how do I book", "can I come on saturday"],
    "ask_stretch_marks": ["does it work on stretch marks", "stretch marks on my belly"],
    "ask_collagen": ["how does it make collagen", "what does microneedling do"],
    "ask_skin_tone": ["will it even out my skin tone", "does it help with pigmentation"],
}
# What the assistant does not know: groups of similar questions the console should find.
UNKNOWN: List[List[str]] = [
    ["do you do laser hair removal", "laser hair removal price", "can you remove hair with laser"],
    ["can I bring my child to the appointment", "can my kid come with me", "is it ok to bring my baby"],
    ["do you have parking", "where can I park", "is there parking near the clinic"],
    ["do you sell gift vouchers", "can I buy a gift card", "gift voucher for my mum"],
    ["is microneedling better than a chemical peel", "peel or microneedling", "chemical peel vs microneedling"],
    ["can you do my lips", "do you do lip fillers", "lip filler price"],
    ["do you accept insurance", "will my insurance pay", "is it covered by insurance"],
    ["what is the weather tomorrow", "tell me a joke", "who won the football"],
]
URGENT = ["my face is swollen and hot with pus", "I have a fever since the treatment", "blisters all over my cheek"]
HUMAN = ["can I talk to a person", "I want a human", "call me please"]
NAMES = ["Anna", "Ben", "Chloe", "Dev", "Ella", "Femi", "Grace", "Hugo", "Ines", "Jun"]


def _phrase(rng: random.Random, text: str) -> str:
    """Some realistic noise: a greeting, a name, a phone number or an e-mail now and then."""
    roll = rng.random()
    if roll < 0.05:
        return f"{text}, my number is 07{rng.randint(100000000, 999999999)}"
    if roll < 0.08:
        return f"{text} - {rng.choice(NAMES).lower()}{rng.randint(1, 99)}@example.com"
    if roll < 0.25:
        return f"hi, {text}?"
    if roll < 0.35:
        return f"{text} {rng.choice(['please', 'thanks', 'x', ''])}".strip()
    return text


def _turn(rng: random.Random, facts_by_intent: Dict[str, List[str]]) -> events.Turn:
    roll = rng.random()
    if roll < 0.02:
        return (_phrase(rng, rng.choice(URGENT)), "report_complication", 0.9,
                {"kind": "urgent", "facts": ["urgent"], "reason": "report"})
    if roll < 0.05:
        return (rng.choice(HUMAN), "request_human", 0.95, {"kind": "answer", "facts": ["human_handoff"]})
    if roll < 0.14:
        group = rng.choice(UNKNOWN)
        text = _phrase(rng, rng.choice(group))
        outcome = rng.random()
        if outcome < 0.55:
            return text, "nlu_fallback", 0.2, {"kind": "clarify", "facts": ["clarify"], "reason": "low confidence"}
        if outcome < 0.85:
            return text, "out_of_scope", 0.7, {"kind": "out_of_scope", "facts": ["out_of_scope"]}
        return text, "nlu_fallback", 0.25, {"kind": "handoff", "facts": ["clarify_failed"]}
    if roll < 0.15:
        return "🙂", "nlu_fallback", 0.1, {"kind": "empty", "facts": ["empty_message"]}
    intent = rng.choice(list(QUESTIONS))
    confidence = rng.uniform(0.35, 0.5) if rng.random() < 0.04 else rng.uniform(0.6, 0.99)
    fact = rng.choice(facts_by_intent.get(intent) or ["welcome"])
    return _phrase(rng, rng.choice(QUESTIONS[intent])), intent, confidence, {"kind": "answer", "facts": [fact]}


CALLBACK_EVERY = 20  # one conversation in this many ends with a callback request


def generate_rows(conversations: int, days: int = DAYS, seed: int = 7, now: Optional[float] = None
                  ) -> Iterator[events.Row]:
    """The rows of `conversations` conversations spread over the last `days` days, in time order."""
    rng = random.Random(seed)
    snapshot = FactStore.from_settings(Settings.from_env({})).current()
    facts_by_intent: Dict[str, List[str]] = {}
    for fact in snapshot.facts.values():
        for intent in fact.intents:
            facts_by_intent.setdefault(intent, []).append(fact.id)
    end = time.time() if now is None else now
    starts = sorted(end - rng.random() * days * 86400 for _ in range(conversations))
    for number, start in enumerate(starts):
        channel = rng.choices(["web", "telegram", "api"], weights=[6, 3, 1])[0]
        sender = {"web": f"web:{rng.getrandbits(64):016x}", "telegram": f"telegram:{rng.randint(10**8, 10**10)}",
                  "api": f"api:booking-site:patient-{number}"}[channel]
        turns = [_turn(rng, facts_by_intent) for _ in range(rng.choices([1, 2, 3, 4], weights=[4, 3, 2, 1])[0])]
        rows = events.conversation(sender, min(start, end - 120), turns)
        answered = [t for t in turns if t[3]["kind"] == "answer" and t[3]["facts"][0] != "human_handoff"]
        if answered and rng.random() < 0.08:
            vote = "up" if rng.random() < 0.7 else "down"
            rows.append(events.feedback(sender, vote, answered[-1][3]["facts"][0], rows[-1]["timestamp"] + 5))
        if number % CALLBACK_EVERY == 0:  # a callback request given with consent (clinic/callbacks.py)
            rows.append(events.slot(sender, "callback_request", {
                "name": f"Patient {number}", "phone": f"+1 555 010 {number % 10000:04d}", "time": "weekday mornings",
                "consent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rows[-1]["timestamp"])),
                "status": "new"}, rows[-1]["timestamp"] + 30))
        yield from rows


# --- the stores ----------------------------------------------------------------------------------------

def fill(url: str, conversations: int) -> Tuple[int, float]:
    engine = sa.create_engine(url)
    try:
        events.create_table(engine)
        started = time.monotonic()
        count = events.insert(engine, generate_rows(conversations), batch=20000)
        add_staff_alerts(engine)
        if engine.dialect.name == "postgresql":
            # A table in service has been vacuumed and analysed by autovacuum; a freshly loaded one not yet.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text("VACUUM ANALYZE events"))
        return count, time.monotonic() - started
    finally:
        engine.dispose()


ALERT_KINDS = {"report_complication": "urgent", "request_human": "person"}


def add_staff_alerts(engine: sa.engine.Engine) -> int:
    """The staff alerts (ops/alerts.py) those conversations queued: one per conversation and kind, most sent, a few
    failed (the urgent page and its export read them)."""
    from ops import alerts

    alerts.metadata.create_all(engine)
    query = sa.text("SELECT sender_id, intent_name, MIN(timestamp) FROM events WHERE type_name = 'user' "
                    "AND intent_name IN ('report_complication', 'request_human') GROUP BY sender_id, intent_name "
                    "ORDER BY MIN(timestamp)")
    with engine.begin() as conn:
        found = list(conn.execute(query))
        rows = [{"conversation_id": sender, "kind": ALERT_KINDS[intent], "channel": sender.split(":", 1)[0],
                 "words": "words", "created_at": float(at), "telegram": "failed" if n % 50 == 0 else "sent",
                 "email": "off", "attempts": 1, "next_at": float(at),
                 "last_error": "telegram: TelegramApiError: 403 Forbidden" if n % 50 == 0 else None}
                for n, (sender, intent, at) in enumerate(found)]
        for start in range(0, len(rows), 5000):
            conn.execute(alerts.table.insert(), rows[start:start + 5000])
    return len(rows)


def pages(today: dt.date) -> List[Tuple[str, str]]:
    month = f"from={today - dt.timedelta(days=DAYS - 1)}&to={today}"
    return [
        ("Overview (this week)", "/"),
        ("Overview (30 days)", f"/?{month}"),
        ("Unanswered (this week)", "/unanswered"),
        ("Unanswered (30 days)", f"/unanswered?{month}"),
        ("Urgent and hand-offs (this week)", "/urgent"),
        ("Transcripts: search by a word (this week)", "/transcripts?words=parking"),
        ("Transcripts: search by topic and channel (30 days)", f"/transcripts?intent=ask_cost&channel=web&{month}"),
        ("One conversation", "/conversation/{conversation}"),
        ("Callback requests", "/callbacks"),
        ("Facts (this week)", "/facts"),
        ("Export: unanswered CSV (this week)", "/export/unanswered.csv"),
        ("Export: urgent and hand-offs CSV (this week)", "/export/urgent.csv"),
        ("Export: staff alerts CSV (this week)", "/export/alerts.csv"),
        ("Export: callback requests CSV, every request", "/export/callbacks.csv"),
        ("Export: transcripts CSV, every conversation (this week)", "/export/transcripts.csv"),
    ]


def wait_for_warm_up(console: ConsoleServer, timeout: float = 600) -> float:
    """Seconds until the console has computed the last month's figures (it does so after start-up)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if "figures are ready" in console.log.read_text(errors="replace"):
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError("the console did not warm up")


def timed(session: requests.Session, url: str) -> List[float]:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        reply = session.get(url, timeout=120, allow_redirects=False)
        times.append(time.perf_counter() - started)
        if reply.status_code != 200:
            raise AssertionError(f"{url}: {reply.status_code}")
    return times


def measure(name: str, env: Dict[str, str], url: str, conversations: int, workdir: Path) -> Dict[str, Any]:
    rows, fill_s = fill(url, conversations)
    print(f"{name}: {conversations:,} conversations, {rows:,} events written in {fill_s:.0f} s", flush=True)
    console = ConsoleServer(workdir, env={**env, "STAFF_PASSWORD": PASSWORD, "REVIEW_DIR": str(workdir / "review")})
    try:
        console.start()
        session = console.signed_in(PASSWORD)
        warm_s = wait_for_warm_up(console)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            sample = conn.execute(sa.text("SELECT MAX(id) FROM events WHERE type_name = 'user'")).scalar()
        engine.dispose()
        results = []
        for label, path in pages(dt.date.today()):
            times = timed(session, console.url + path.replace("{conversation}", str(sample)))
            results.append({"page": label, "median_s": statistics.median(times), "max_s": max(times)})
            print(f"  {label:55s} median {statistics.median(times) * 1000:7.0f} ms  max {max(times) * 1000:7.0f} ms",
                  flush=True)
        return {"store": name, "conversations": conversations, "events": rows, "fill_s": fill_s,
                "startup_s": console.startup_s, "warm_s": warm_s, "pages": results}
    finally:
        console.stop()


def run_sqlite(conversations: int, root: Path) -> Dict[str, Any]:
    data = root / "sqlite"
    data.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env({"DATA_DIR": str(data)})
    return measure("SQLite", {"DATA_DIR": str(data)}, settings.conversations_url, conversations, root)


def run_postgres(conversations: int, root: Path) -> Dict[str, Any]:
    from devtools.harness.datastores import Postgres

    server = Postgres().start()
    try:
        env = {"TRACKER_STORE_URL": server.url, "DATA_DIR": str(root / "pg-data")}
        return measure("PostgreSQL", env, server.url, conversations, root)
    finally:
        server.stop()


# --- the report ----------------------------------------------------------------------------------------

def markdown(results: List[Dict[str, Any]], info: Dict[str, Any], conversations: int) -> str:
    date = dt.date.today().isoformat()
    lines = [
        SECTION, "",
        f"`make bench-console` on {date}: {conversations:,} generated conversations over {DAYS} days "
        f"(devtools/bench/console.py; one in {CALLBACK_EVERY} with a callback request, and a staff alert queued "
        f"for each urgent message or request for a person), each page requested {REPEATS} times over HTTP by a "
        f"signed-in client, "
        f"after the console's start-up migrations. Machine: {info['cores']} cores ({info['cpu']}), "
        f"{info['ram_gb']} GB, {info['os']}, Python {info['python']}; load average during the run "
        f"{info.get('load', 'n/a')}. Target: every page under {TARGET_S:g} s.", "",
    ]
    stores = [r["store"] for r in results]
    lines.append("| page | " + " | ".join(f"{s} median | {s} slowest" for s in stores) + " |")
    lines.append("|---|" + "---:|---:|" * len(stores))
    for index, page in enumerate(results[0]["pages"]):
        cells = []
        for result in results:
            timing = result["pages"][index]
            cells += [f"{timing['median_s'] * 1000:.0f} ms", f"{timing['max_s'] * 1000:.0f} ms"]
        lines.append(f"| {page['page']} | " + " | ".join(cells) + " |")
    lines.append("")
    for result in results:
        slowest = max(p["max_s"] for p in result["pages"])
        over = [f"{p['page']} ({p['median_s'] * 1000:.0f} ms median)" for p in result["pages"]
                if p["max_s"] >= TARGET_S]
        verdict = "every page under the target" if not over else "over the target: " + "; ".join(over)
        lines.append(f"- {result['store']}: {result['events']:,} events; generated in {result['fill_s']:.0f} s; "
                     f"console start-up with its migrations (indexes) {result['startup_s']:.1f} s, then "
                     f"{result['warm_s']:.1f} s computing the last 30 days' figures in the background; slowest request "
                     f"{slowest * 1000:.0f} ms: {verdict}.")
    lines += ["", "The console's default view is the last 7 days; the 30-day rows and the export of every "
              "conversation of the week are the heaviest requests a clinic of this size can make. Callback requests "
              "are not limited to the dates chosen: the page and its export list every request still held "
              f"({conversations // CALLBACK_EVERY:,} here). Figures are measured on a shared machine: compare the "
              "load average with its cores.", ""]
    return "\n".join(lines)


def write_doc(text: str, doc: Path = DOC) -> None:
    """Replaces this section if present, else appends it; the generated part above is left alone."""
    current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if SECTION in current:
        before, _, after = current.partition(SECTION)
        rest = re.search(r"^## ", after, flags=re.MULTILINE)
        current = before + (after[rest.start():] if rest else "")
    doc.write_text(current.rstrip("\n") + "\n\n" + text, encoding="utf-8")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--no-doc", action="store_true", help="print the results, leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    from devtools.bench.machine import LoadSampler, machine_info

    info = machine_info()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp, LoadSampler() as load:
        root = Path(tmp)
        if "sqlite" in args.stores:
            results.append(run_sqlite(args.conversations, root))
        if "postgres" in args.stores:
            results.append(run_postgres(args.conversations, root))
    if load.samples:
        info["load"] = f"{statistics.mean(load.samples):.1f}"
    text = markdown(results, info, args.conversations)
    print(text)
    if not args.no_doc:
        write_doc(text)
        print(f"Written to {DOC.relative_to(PROJECT)}")
    slowest = max(p["max_s"] for r in results for p in r["pages"])
    return 0 if slowest < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
