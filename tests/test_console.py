"""The staff console's parts without servers: settings, sign-in rules, masking, grouping, charts, CSV, proposals."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import List

import pytest
import yaml

from clinic.settings import ConfigError, Settings, shell_exports
from console import auth, charts
from console.export import safe_cell, to_csv
from console.pages import parse_period
from console.privacy import mask
from console.proposals import ProposalError, Review, check_examples, training_examples
from console.similarity import group

# --- settings ------------------------------------------------------------------------------------------


def test_the_console_is_off_until_someone_can_sign_in() -> None:
    assert not Settings.from_env({}).console_enabled
    assert Settings.from_env({"STAFF_PASSWORD": "a long passphrase"}).console_enabled
    hashed = auth.hash_password("another long one")
    settings = Settings.from_env({"STAFF_ACCOUNTS": f"anna:{hashed}  ben:{hashed}"})
    assert [name for name, _ in settings.staff_accounts] == ["anna", "ben"] and settings.console_enabled
    assert "export CONSOLE_PORT=5010" in shell_exports(settings)


@pytest.mark.parametrize("env, problem", [
    ({"STAFF_PASSWORD": "short"}, "too short"),
    ({"STAFF_ACCOUNTS": "anna:plaintext-password"}, "hash-password"),
    ({"STAFF_ACCOUNTS": "an na:$argon2id$x"}, "name:hash"),
    ({"STAFF_ACCOUNTS": "anna:$argon2id$a anna:$argon2id$b"}, "once"),
    ({"STAFF_PASSWORD": "a long passphrase", "CONSOLE_HOST": "0.0.0.0"}, "CONSOLE_HTTPS=true"),
    ({"CONSOLE_HTTPS": "maybe"}, "true or false"),
    ({"CONSOLE_PORT": "70000"}, "at most 65535"),
    ({"FACT_REVIEW_DAYS": "0"}, "at least 1"),
    ({"CONSOLE_PASSWORD": "x"}, "Unknown variable"),
])
def test_console_settings_are_checked(env: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env(env)


def test_behind_https_the_console_may_listen_beyond_loopback() -> None:
    settings = Settings.from_env({"CONSOLE_HOST": "0.0.0.0", "CONSOLE_HTTPS": "true", "FACT_REVIEW_DAYS": "180"})
    assert settings.console_https and settings.fact_review_days == 180


# --- accounts, lock-out, sessions ----------------------------------------------------------------------

def test_passwords_are_salted_argon2id_and_checked() -> None:
    first, second = auth.hash_password("same password here"), auth.hash_password("same password here")
    assert first.startswith("$argon2id$") and first != second
    accounts = auth.Accounts({"anna": first})
    assert accounts.verify("anna", "same password here")
    assert not accounts.verify("anna", "wrong password here") and not accounts.verify("nobody", "same password here")


def test_the_shared_password_is_the_staff_account() -> None:
    accounts = auth.Accounts.from_settings(Settings.from_env({"STAFF_PASSWORD": "a long passphrase"}))
    assert accounts.only_shared and accounts.verify("staff", "a long passphrase")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_repeated_failures_lock_the_account_then_expire() -> None:
    clock = Clock()
    lockout = auth.LockOut(clock)
    for _ in range(auth.MAX_FAILURES - 1):
        lockout.failed("Anna", "10.0.0.1")
    assert lockout.locked_for("anna", "10.0.0.2") == 0
    lockout.failed("anna", "10.0.0.1")
    assert lockout.locked_for("ANNA", "10.0.0.2") > 0  # the account, from any address
    assert lockout.locked_for("ben", "10.0.0.2") == 0
    clock.now += auth.LOCKOUT_S + 1
    assert lockout.locked_for("anna", "10.0.0.1") == 0


def test_many_failures_from_one_address_lock_it() -> None:
    lockout = auth.LockOut(Clock())
    for n in range(auth.MAX_ADDRESS_FAILURES):
        lockout.failed(f"guess{n}", "10.0.0.9")
    assert lockout.locked_for("anna", "10.0.0.9") > 0 and lockout.locked_for("anna", "10.0.0.8") == 0


def test_sessions_end_when_idle_too_old_or_signed_out() -> None:
    clock = Clock()
    sessions = auth.Sessions(clock)
    token, session = sessions.start("anna")
    assert sessions.get(token) is session and session.csrf and session.csrf != token
    clock.now += auth.IDLE_S - 1
    assert sessions.get(token) is session  # a request keeps it alive
    clock.now += auth.IDLE_S + 1
    assert sessions.get(token) is None
    token, _ = sessions.start("anna")
    sessions.end(token)
    assert sessions.get(token) is None and sessions.get(None) is None and sessions.get("forged") is None
    assert auth.same("abc", "abc") and not auth.same("abc", "abd")
    assert not auth.same("", "") and not auth.same(None, "x")


# --- privacy, grouping, charts, CSV --------------------------------------------------------------------

@pytest.mark.parametrize("text, shown", [
    ("call me on 0612345678 please", "call me on [phone hidden] please"),
    ("my number: +44 (0)20 7946 0958.", "my number: [phone hidden]."),
    ("06 12 34 56 78", "[phone hidden]"),
    ("mail anna.b+skin@example.co.uk today", "mail [e-mail hidden] today"),
    ("3 sessions of 45 minutes in 2024", "3 sessions of 45 minutes in 2024"),  # numbers are not phones
    ("price 1,200-1,500", "price 1,200-1,500"),
])
def test_contact_details_are_masked(text: str, shown: str) -> None:
    assert mask(text) == shown


def test_alike_questions_form_one_group() -> None:
    questions = ["do you do laser hair removal", "laser hair removal price", "can you remove hair with laser?",
                 "where can I park", "do you have parking", "Parking??", "hi, is there parking, call 0612345678",
                 "tell me a joke"]
    groups, left_out = group(questions, lambda q: q)
    sizes = sorted((sorted(g.items) for g in groups), key=len, reverse=True)
    assert left_out == 0 and len(groups) == 3
    assert sizes[0] == sorted(questions[3:7]) and sizes[1] == sorted(questions[:3]) and sizes[2] == ["tell me a joke"]
    assert group([], lambda q: q) == ([], 0)


def test_charts_are_well_formed_accessible_svg() -> None:
    bars = charts.horizontal_bars("t", "Topics <&>", [("Cost & price", 5), ("<script>", 2)])
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=n) for n in range(7)]
    columns = charts.stacked_columns("d", "Per day", days, {"web": [1, 2, 3, 0, 0, 5, 9], "api": [0] * 7},
                                     {"web": "Website", "api": "REST"})
    for svg in (bars, columns, charts.horizontal_bars("e", "Empty", [])):
        root = ET.fromstring(str(svg))  # well-formed XML: labels are escaped
        assert root.get("role") == "img" and root.find("{http://www.w3.org/2000/svg}title") is not None
    assert "<script>" not in str(bars) and "&lt;script&gt;" in str(bars)
    assert "busiest day 07 Mar with 9" in str(columns)


def test_csv_cells_never_run_as_formulas() -> None:
    assert safe_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert safe_cell("-5") == "-5" and safe_cell("@sum") == "'@sum" and safe_cell(None) == ""
    text = to_csv(["a", "b"], [["+1 call", "ok, fine"]])
    assert text.startswith("\ufeffa,b\r\n") and "'+1 call" in text and '"ok, fine"' in text


@pytest.mark.parametrize("start, end, expected, note", [
    (None, None, (dt.date(2025, 3, 4), dt.date(2025, 3, 10)), False),
    ("2025-03-01", "2025-03-02", (dt.date(2025, 3, 1), dt.date(2025, 3, 2)), False),
    ("2025-03-02", "2025-03-01", (dt.date(2025, 3, 1), dt.date(2025, 3, 2)), False),
    ("yesterday", None, (dt.date(2025, 3, 4), dt.date(2025, 3, 10)), True),
    ("2020-01-01", "2025-03-10", (dt.date(2024, 3, 10), dt.date(2025, 3, 10)), True),
])
def test_dates_are_read_or_defaulted(start, end, expected, note) -> None:
    period, message = parse_period(start, end, today=dt.date(2025, 3, 10))
    assert (period.start, period.end) == expected and bool(message) == note


# --- proposals -----------------------------------------------------------------------------------------

def test_proposals_wait_for_the_reviewer(tmp_path: Path) -> None:
    review = Review(tmp_path)
    intents = ["ask_cost", "ask_downtime"]
    example = review.propose("example", ["how much is it, call 0612345678", "how much is it, call 0612345678",
                                         "price for a face?"], "anna", intent="ask_cost", intents=intents)
    topic = review.propose("new_topic", ["do you do laser hair removal"], "ben", note="we offer it")
    assert example.examples == ["how much is it, call [phone hidden]", "price for a face?"]  # masked, once each
    assert not review.accepted_path.exists()  # nothing is trained on before a reviewer accepts
    stored = yaml.safe_load(review.proposals_path.read_text())["proposals"]
    assert [p["status"] for p in stored] == ["proposed", "proposed"] and stored[1]["note"] == "we offer it"

    review.decide(topic.id, "accepted", "dr-lee")
    assert not review.accepted_path.exists()  # a new topic is written by people, not trained from here
    review.decide(example.id, "accepted", "dr-lee")
    accepted = yaml.safe_load(review.accepted_path.read_text())
    assert accepted["nlu"] == [{"intent": "ask_cost",
                                "examples": "- how much is it, call [phone hidden]\n- price for a face?\n"}]
    assert [p.reviewed_by for p in review.load()] == ["dr-lee", "dr-lee"]
    review.decide(example.id, "rejected", "dr-lee")
    assert not review.accepted_path.exists()


@pytest.mark.parametrize("action, examples, intent, problem", [
    ("example", ["x"], None, "choose the topic"),
    ("example", ["x"], "not_an_intent", "choose the topic"),
    ("example", ["  "], "ask_cost", "at least one"),
    ("guess", ["x"], None, "unknown"),
])
def test_a_proposal_needs_a_topic_and_questions(tmp_path: Path, action: str, examples: List[str], intent, problem
                                                ) -> None:
    with pytest.raises(ProposalError, match=problem):
        Review(tmp_path).propose(action, examples, "anna", intent=intent, intents=["ask_cost"])


def test_an_example_already_trained_for_another_topic_is_refused(tmp_path: Path) -> None:
    existing = training_examples()
    some_text, its_intent = next(iter(existing.items()))
    other = "ask_cost" if its_intent != "ask_cost" else "ask_downtime"
    review = Review(tmp_path)
    clash = review.propose("example", [some_text], "anna", intent=other, intents=[other])
    with pytest.raises(ProposalError, match="another topic"):
        check_examples(clash, existing)
    with pytest.raises(ProposalError, match="another topic"):
        review.decide(clash.id, "accepted", "dr-lee")
    assert not review.accepted_path.exists()


def test_rasa_trains_on_accepted_examples_only(tmp_path: Path) -> None:
    """`rasa train` reads every training file under data/: proposals.yml must not be one, accepted.yml must."""
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.data import is_nlu_file
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    review = Review(tmp_path)
    proposal = review.propose("example", ["is parking free at the clinic?"], "anna", intent="ask_cost",
                              intents=["ask_cost"])
    assert not is_nlu_file(str(review.proposals_path)) and not YAMLStoryReader.is_stories_file(review.proposals_path)
    review.decide(proposal.id, "accepted", "dr-lee")
    assert is_nlu_file(str(review.accepted_path))
    examples = RasaYAMLReader().read(str(review.accepted_path)).training_examples
    assert [(e.get("text"), e.get("intent")) for e in examples] == [("is parking free at the clinic?", "ask_cost")]


def test_make_run_starts_the_console_only_when_someone_can_sign_in() -> None:
    from ops.supervise import banner, programs

    off = Settings.from_env({})
    on = Settings.from_env({"STAFF_PASSWORD": "a long passphrase", "CONSOLE_PORT": "5123"})
    assert "console" not in [p.name for p in programs(off, Path("endpoints.yml"))]
    console = next(p for p in programs(on, Path("endpoints.yml")) if p.name == "console")
    assert console.command[-2:] == ["-m", "console"] and console.health_url == "http://127.0.0.1:5123/sign-in"
    assert "Staff console off: set STAFF_PASSWORD" in banner(off) and "http://127.0.0.1:5123/" in banner(on)


@pytest.mark.parametrize("value, expected", [
    ("/overview?from=2026-11-01", "/overview?from=2026-11-01"),
    ("/transcripts/\n", "/"),  # a trailing newline is not a path of ours ($ would have let it through)
    ("//evil.example/", "/"),
    ("https://evil.example/", "/"),
    (None, "/"),
])
def test_sign_in_only_returns_to_a_page_of_the_console(value, expected) -> None:
    from console.app import _safe_back

    assert _safe_back(value) == expected
