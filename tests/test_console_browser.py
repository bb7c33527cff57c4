"""The staff console in a real browser (Debian's Chromium via Playwright), over conversations held through REST.

A Rasa server and action server store their conversations in a private DATA_DIR (SQLite, as
`make run` does); the test talks to them over the real REST channel, adds patients' thumbs
up and down through the REST feedback endpoint the widget uses, starts the console on the same store,
and then, as a staff member would: signs in by keyboard, reads every page and checks its
figures against those conversations, proposes questions for training, marks an urgent
message handled, reveals a phone number, exports every list, signs out; and confirms an
anonymous visitor gets none of it. The guide's screenshots (docs/images/console-*.png) are
taken on the way (a conversation with its phone number hidden) and by the last test, on a
generated week of a busy clinic.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
import sqlalchemy as sa
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, expect

from clinic.settings import Settings
from console import auth
from console.app import EXPORTS
from devtools.bench.console import generate_rows
from devtools.harness import events
from devtools.harness.binaries import launched_chromium
from devtools.harness.console import ConsoleServer, edit_facts
from devtools.harness.servers import PROJECT, Stack, fact_of, new_sender, private_fact_store, served_snapshot
from ops import endpoints

pytestmark = pytest.mark.servers

PASSWORD = "console test passphrase"
IMAGES = PROJECT / "docs" / "images"
PAGES = {"/": "Overview", "/unanswered": "Unanswered questions", "/urgent": "Urgent messages and hand-offs",
         "/callbacks": "Callback requests", "/transcripts": "Transcripts", "/facts": "Facts"}
URGENT = "I have pus and a fever since my treatment"
PERSON = "i want to talk to a person"
OFF_TOPIC = "will it be sunny on saturday"
CONTACT = "please call me back on 0612 345 678 or write to anna.b@example.com"
# What each patient says, in order (each sender is one conversation over REST with the tests' API key).
SCRIPT = {
    "downtime": ["how long will my skin be red afterwards", "do I need sunscreen after the treatment"],
    "urgent": [URGENT],
    "person": [PERSON, OFF_TOPIC],
    "contact": [CONTACT],
}


# The thumbs the "downtime" patient gives, one per answer, as the widget sends them: up, then down.
THUMBS = {"downtime": ["up", "down"]}
# Facts the console must flag on its Facts page (no patient here is given them, so no answer changes).
DUE, AWAITING = "cost_consultation", "cost_with_price"
FACT_EDITS = {DUE: {"reviewed_on": "2020-01-02"}, AWAITING: {"status": "needs_clinician_review"}}


def thumb(stack: Stack, sender: str, value: str) -> None:
    """A thumbs up or down on the latest answer, posted to the endpoint the website widget uses."""
    reply = requests.post(f"{stack.url}/webhooks/rest/feedback", json={"sender": sender, "value": value},
                          headers=stack.auth, timeout=30)
    assert reply.status_code == 204, reply.text


class Clinic:
    """The servers, what was said, and what the store holds."""

    def __init__(self, root: Path, stack: Stack, console: ConsoleServer) -> None:
        self.root, self.stack, self.console = root, stack, console
        self.senders: Dict[str, str] = {}
        self.answers: Dict[str, List[str]] = {}  # sender key -> the fact given to each message
        self.audit = root / "data" / "audit.log"
        self.review = root / "review"

    @property
    def store_url(self) -> str:
        return Settings.from_env({"DATA_DIR": str(self.root / "data")}).conversations_url


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clinic]:
    root = tmp_path_factory.mktemp("console-clinic")
    store_env = {"DATA_DIR": str(root / "data")}
    settings = Settings.from_env(store_env)
    endpoints.prepare_data_dir(settings)
    extra = endpoints.render(endpoints.endpoints_sections(settings), only=["tracker_store", "lock_store"])
    facts_env = private_fact_store(root)
    edit_facts(Path(facts_env["FACTS_DIR"]), FACT_EDITS)  # facts no patient here is given: one old, one awaiting
    stack = Stack(root / "stack", env={**store_env, **facts_env}, endpoints_extra=extra)
    hashed = auth.hash_password(PASSWORD)
    console = ConsoleServer(root, env={**store_env, **private_fact_store(root), "REVIEW_DIR": str(root / "review"),
                                       "STAFF_ACCOUNTS": f"anna:{hashed}"})
    running = Clinic(root, stack, console)
    try:
        stack.start()
        snapshot = served_snapshot(root)
        for key, messages in SCRIPT.items():
            sender = new_sender(f"console-{key}")
            running.senders[key] = stack.conversation_id(sender)
            running.answers[key] = []
            for number, message in enumerate(messages):
                running.answers[key].append(fact_of(snapshot, stack.say(sender, message)[-1]["text"]))
                if key in THUMBS:  # the patient's thumb under this answer, through the REST feedback endpoint
                    thumb(stack, sender, THUMBS[key][number])
        console.start()
        yield running
    finally:
        console.stop()
        stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def staff(browser: Browser, clinic: Clinic) -> Iterator[Page]:
    """One signed-in staff member (anna), signed in by keyboard."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(clinic.console.url)
    expect(page).to_have_url(f"{clinic.console.url}/sign-in?next=%2F")
    page.keyboard.type("anna")  # the name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Overview")
    try:
        yield page
    finally:
        context.close()


def stored_intents(clinic: Clinic) -> Dict[str, int]:
    """The patients' messages by intent, as Rasa stored them."""
    engine = sa.create_engine(clinic.store_url)
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT intent_name, COUNT(*) FROM events WHERE type_name = 'user' "
                                          "GROUP BY intent_name")).fetchall())
    engine.dispose()
    return {str(k): int(v) for k, v in found.items()}


def stored_count(clinic: Clinic, query: str) -> int:
    engine = sa.create_engine(clinic.store_url)
    with engine.connect() as conn:
        found = conn.execute(sa.text(query)).scalar()
    engine.dispose()
    return int(found or 0)


def figure(page: Page, name: str) -> int:
    return int(page.locator(f'[data-figure="{name}"]').first.inner_text().replace(",", ""))


def row_cells(where: Any, selector: str) -> List[str]:
    return [cell.strip() for cell in where.locator(selector).locator("th, td").all_inner_texts()]


def test_the_overview_counts_the_conversations_held(staff: Page, clinic: Clinic) -> None:
    page = staff
    assert figure(page, "conversations") == len(SCRIPT)
    assert figure(page, "messages") == sum(len(m) for m in SCRIPT.values())
    assert row_cells(page, '#channels-table tr[data-channel="api"]') == ["REST integrations", "4", "6"]
    assert row_cells(page, '#outcomes-table tr[data-outcome="urgent"]')[:2] == ["Urgent", "1"]
    assert row_cells(page, '#outcomes-table tr[data-outcome="out_of_scope"]')[:2] == ["Out of scope", "1"]
    handoffs = row_cells(page, '#outcomes-table tr[data-outcome="handoff"]')
    assert handoffs[:1] == ["Handed to a person"] and int(handoffs[1]) >= 1  # the request for a person
    assert figure(page, "alerts") >= 2  # the urgent message and the request for a person
    chart = page.locator("section[aria-labelledby=topics-h] svg").inner_html()
    for intent, count in stored_intents(clinic).items():  # every topic asked, with its count, on the chart
        assert f": {count}</title>" in chart, intent
    today = page.locator("#daily-table tbody tr").last
    assert row_cells(today, "xpath=.")[:3] == [time.strftime("%a %d %b"), "4", "6"]


def test_unanswered_questions_and_proposals(staff: Page, clinic: Clinic) -> None:
    page = staff
    page.get_by_role("link", name="Unanswered", exact=True).click()
    expect(page.locator("h1")).to_have_text("Unanswered questions")
    groups = page.locator("section.group")
    texts = groups.all_inner_texts()
    assert any(OFF_TOPIC in t and "out of scope" in t for t in texts)
    sunscreen = SCRIPT["downtime"][1]
    assert any(sunscreen in t and "thumbs down" in t for t in texts)  # judged by the patient's thumbs-down
    assert all(URGENT not in t for t in texts)
    # "new topic needed" for the off-topic question, "examples of Sun protection" for the other
    off_topic = groups.filter(has_text=OFF_TOPIC)
    off_topic.get_by_role("button", name="New topic needed").click()
    expect(page.locator(".ok")).to_contain_text("saved for the reviewer")
    group = page.locator("section.group").filter(has_text=sunscreen)
    group.get_by_label("Topic").select_option(value="ask_sunscreen")
    group.get_by_role("button", name="Propose as examples of this topic").click()
    expect(page.locator(".ok")).to_contain_text("saved for the reviewer")
    proposals = yaml.safe_load((clinic.review / "proposals.yml").read_text())["proposals"]
    assert [(p["action"], p["intent"], p["proposed_by"], p["status"]) for p in proposals] == [
        ("new_topic", None, "anna", "proposed"), ("example", "ask_sunscreen", "anna", "proposed")]
    assert proposals[0]["examples"] == [OFF_TOPIC] and proposals[1]["examples"] == [sunscreen]
    assert not (clinic.review / "accepted.yml").exists()  # nothing is trained on before a reviewer accepts
    expect(page.locator("#waiting-h + ul li")).to_have_count(2)


def test_urgent_and_hand_offs_can_be_marked_handled(staff: Page, clinic: Clinic) -> None:
    page = staff
    page.get_by_role("link", name="Urgent & hand-offs", exact=True).click()
    rows = page.locator("#alerts-table tbody tr")
    urgent = rows.filter(has_text=URGENT)
    expect(urgent).to_have_count(1)
    expect(urgent.locator(".badge")).to_have_text("Urgent")
    expect(rows.filter(has_text=PERSON).locator(".badge")).to_have_text("Asked for a person")
    before = figure(page, "alerts-open")
    urgent.get_by_role("button", name="Mark handled").click()
    expect(page.locator("#alerts-table tbody tr").filter(has_text=URGENT)).to_contain_text("anna")
    assert figure(page, "alerts-open") == before - 1
    page.get_by_role("link", name="Show only those not handled").click()
    expect(page.locator("#alerts-table tbody tr").filter(has_text=URGENT)).to_have_count(0)


def test_transcripts_are_searched_masked_and_revealed_on_request(staff: Page, clinic: Clinic) -> None:
    page = staff
    page.get_by_role("link", name="Transcripts", exact=True).click()
    page.get_by_label("Words").fill("fever")
    page.get_by_label("Words").press("Enter")
    assert figure(page, "conversations-found") == 1
    page.get_by_label("Words").fill("")
    page.get_by_label("Topic").select_option(value="request_human")
    page.get_by_role("button", name="Search").click()
    asked = stored_count(clinic, "SELECT COUNT(DISTINCT sender_id) FROM events WHERE intent_name = 'request_human'")
    assert asked >= 1 and figure(page, "conversations-found") == asked
    page.get_by_label("Topic").select_option(value="")
    page.get_by_label("Words").fill("call me back")
    page.get_by_role("button", name="Search").click()
    link = page.locator("#transcripts-table tbody a")
    expect(link).to_contain_text("[phone hidden]")
    expect(link).to_contain_text("[e-mail hidden]")
    link.click()
    patient = page.locator(".transcript li.patient").first
    expect(patient).to_contain_text("[phone hidden]")
    page.screenshot(path=str(IMAGES / "console-conversation.png"))  # for docs/console.md
    assert "0612" not in page.content() and "anna.b@" not in page.content()
    page.get_by_role("button", name="Show phone numbers and e-mail addresses").click()
    expect(page.locator(".transcript li.patient").first).to_contain_text("0612 345 678")
    expect(page.locator(".transcript li.patient").first).to_contain_text("anna.b@example.com")
    audit = [json.loads(line) for line in clinic.audit.read_text().splitlines()]
    viewed = [e for e in audit if e["event"] == "console_transcript_viewed"]
    revealed = [e for e in audit if e["event"] == "console_contact_details_revealed"]
    assert viewed and revealed and revealed[-1]["staff"] == "anna" and revealed[-1]["channel"] == "api"
    assert "0612" not in clinic.audit.read_text()  # the log says who looked, never what was said


def test_facts_show_review_state_use_and_thumbs(staff: Page, clinic: Clinic) -> None:
    page = staff
    page.get_by_role("link", name="Facts", exact=True).click()
    first, second = clinic.answers["downtime"]
    row = page.locator(f'#facts-table tr[data-fact="{first}"]')
    assert [row.locator(f'[data-figure="{n}"]').inner_text() for n in ("given", "up", "down")] == ["1", "1", "0"]
    row = page.locator(f'#facts-table tr[data-fact="{second}"]')
    assert [row.locator(f'[data-figure="{n}"]').inner_text() for n in ("given", "up", "down")] == ["1", "0", "1"]
    # The fact last reviewed in 2020 is due, the one set to "needs_clinician_review" awaits a clinician.
    due = page.locator(f'#facts-table tr[data-fact="{DUE}"]')
    awaiting = page.locator(f'#facts-table tr[data-fact="{AWAITING}"]')
    expect(due).to_have_class("attention")
    expect(due.locator(".badge")).to_have_text("due")
    expect(awaiting).to_have_class("attention")
    expect(awaiting).to_contain_text("awaiting a clinician")
    expect(awaiting.locator(".badge")).to_have_count(0)  # reviewed recently: awaiting, not due
    expect(page.locator(f'#facts-table tr[data-fact="{first}"]')).not_to_have_class("attention")
    listed = page.locator("ul.attention li")
    expect(listed.filter(has_text=f"{DUE}")).to_contain_text("last reviewed 2020-01-02")
    expect(listed.filter(has_text=f"{AWAITING}")).to_contain_text("awaiting a clinician's review")
    assert figure(page, "attention") == listed.count() == page.locator("#facts-table tr.attention").count() >= 2


def test_every_list_exports_as_csv(staff: Page, clinic: Clinic) -> None:
    page = staff
    page.get_by_role("link", name="Overview", exact=True).click()
    with page.expect_download() as download:
        page.locator('a[href^="/export/overview.csv"]').click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["day", "channel", "conversations", "patient messages"]
    assert rows[1][1:] == ["REST integrations", "4", "6"]
    exported: Dict[str, str] = {}
    for name in EXPORTS:
        reply = page.request.get(f"{clinic.console.url}/export/{name}.csv")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/csv"), name
        exported[name] = reply.text()
    assert URGENT in exported["urgent"] and "anna" in exported["urgent"]
    assert OFF_TOPIC in exported["unanswered"]
    assert "[phone hidden]" in exported["transcripts"] and "0612" not in exported["transcripts"]
    assert len(list(csv.reader(io.StringIO(exported["transcripts"])))) == 1 + len(SCRIPT)
    assert "Out of scope,1" in exported["outcomes"]
    topics = {row[1]: int(row[2]) for row in list(csv.reader(io.StringIO(exported["topics"])))[1:]}
    assert topics == stored_intents(clinic)


def test_keyboard_and_phone(browser: Browser, clinic: Clinic, staff: Page) -> None:
    page = staff
    page.goto(clinic.console.url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past "Overview" to "Unanswered"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Unanswered questions")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                storage_state=page.context.storage_state())
    try:
        small = phone.new_page()
        for path, title in PAGES.items():
            small.goto(clinic.console.url + path)
            expect(small.locator("h1")).to_have_text(title)
            overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} scrolls sideways on a phone by {overflow}px"
    finally:
        phone.close()


def test_anonymous_visitors_and_signing_out(browser: Browser, clinic: Clinic, staff: Page) -> None:
    anonymous = browser.new_context()
    try:
        page = anonymous.new_page()
        for path in [*PAGES, "/conversation/1", *[f"/export/{n}.csv" for n in EXPORTS]]:
            reply = page.request.get(clinic.console.url + path, max_redirects=0)
            assert reply.status == 303 and reply.headers["location"].startswith("/sign-in"), path
            if not path.startswith("/export"):
                page.goto(clinic.console.url + path)
                expect(page.locator("h1")).to_have_text("Sign in")
        posted = page.request.post(f"{clinic.console.url}/urgent/1/handled", form={"csrf": "x"}, max_redirects=0)
        assert posted.status == 403
    finally:
        anonymous.close()
    signed_in = staff
    signed_in.get_by_role("button", name="Sign out").click()
    expect(signed_in.locator("h1")).to_have_text("Sign in")
    signed_in.goto(clinic.console.url + "/facts")
    expect(signed_in.locator("h1")).to_have_text("Sign in")


def test_screenshots_for_the_guide(browser: Browser, tmp_path: Path) -> None:
    """docs/console.md's pictures: a generated week of a busy clinic (no real patient), desktop and phone."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'conversations.db'}")
    events.create_table(engine)
    events.insert(engine, generate_rows(1500, days=7, seed=11))
    engine.dispose()
    console = ConsoleServer(tmp_path, env={"DATA_DIR": str(tmp_path), "STAFF_PASSWORD": PASSWORD,
                                           "REVIEW_DIR": str(tmp_path / "review")})
    IMAGES.mkdir(parents=True, exist_ok=True)
    try:
        console.start()
        context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(console.url + "/sign-in")
        page.screenshot(path=str(IMAGES / "console-sign-in.png"))
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1")).to_have_text("Overview")
        page.screenshot(path=str(IMAGES / "console-overview.png"), full_page=True)
        page.goto(console.url + "/unanswered")
        page.screenshot(path=str(IMAGES / "console-unanswered.png"))
        page.goto(console.url + "/urgent")
        page.screenshot(path=str(IMAGES / "console-urgent.png"))
        page.goto(console.url + "/callbacks")
        page.screenshot(path=str(IMAGES / "console-callbacks.png"))
        page.goto(console.url + "/facts")
        page.screenshot(path=str(IMAGES / "console-facts.png"))
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                    storage_state=context.storage_state())
        small = phone.new_page()
        small.goto(console.url + "/urgent")
        small.screenshot(path=str(IMAGES / "console-phone.png"))
        phone.close()
        context.close()
    finally:
        console.stop()
    for name in ("sign-in", "overview", "unanswered", "urgent", "callbacks", "facts", "phone"):
        assert (IMAGES / f"console-{name}.png").stat().st_size > 10_000
