"""The website chat widget in a real browser (Chromium via Playwright) against the real servers.

The servers run with a CORS allowlist (their own origins plus one pretend clinic
site), not "*", so the cross-origin embed is tested the way a clinic deploys it.
Screenshots go to tests/artifacts/, and the urgent answer's to docs/images/.

What the real servers cannot be made to do on cue (a 503 while the conversation
store is down, a 429, a hung answer) is played with page.route in the documented
format (docs/widget.md, "How it talks to the assistant"). Timings (the 15 s
deadline, the reconnect back-off) run on Playwright's fake clock: exact, and no
sleeping.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Route, expect

from clinic import languages
from clinic.fact_store import Snapshot
from clinic.replies import render_fact
from clinic.settings import Settings
from clinic.urgent import phones as urgent_phones
from clinic.urgent import urgent_custom
from devtools.harness.binaries import launched_chromium
from devtools.harness.records import stored_events
from devtools.harness.servers import PROJECT, Stack, free_port, private_fact_store, served_snapshot, stop
from ops import endpoints

pytestmark = pytest.mark.servers

ARTIFACTS = PROJECT / "tests" / "artifacts"
DOCS_IMAGES = PROJECT / "docs" / "images"
# Two more loopback sites (a page on a public host may not call a loopback server at all:
# Chrome's Private Network Access rules), each its own origin by its port.
CLINIC_ORIGIN = f"http://localhost:{free_port()}"  # allowlisted: a clinic's own site embedding the widget
OTHER_ORIGIN = f"http://localhost:{free_port()}"  # not allowlisted
MAX_CHARS = 300  # MAX_MESSAGE_CHARS for these servers, so the widget must learn it from /config
DOWNTIME_QUESTION = "how long is the downtime?"
NUMBING_QUESTION = "do you numb the skin first?"
URGENT_QUESTION = "I have a fever and pus on my face after microneedling"
ANSWER_TIMEOUT_MS = 30_000
PHONE_VIEWPORT = {"width": 390, "height": 844}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Conversation ids are issued by the server (clinic/conversation_ids.py).
CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}")


@dataclass
class AllowlistStack(Stack):
    """The test Stack, but with `--cors <origins>` as ops/run.sh passes it, instead of "*"."""

    origins: List[str] = field(default_factory=list)

    def _spawn(self, name, args):
        if "--cors" in args:
            at = args.index("--cors")
            args = [*args[:at + 1], *self.origins, *args[at + 2:]]
        return super()._spawn(name, args)


def allowlist_stack(workdir: Path, endpoints_extra: str = "") -> AllowlistStack:
    running = AllowlistStack(workdir, env={
        **private_fact_store(workdir),
        "MAX_MESSAGE_CHARS": str(MAX_CHARS),
    }, endpoints_extra=endpoints_extra)
    running.origins = [f"http://127.0.0.1:{running.rasa_port}", f"http://localhost:{running.rasa_port}",
                       CLINIC_ORIGIN]
    return running


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AllowlistStack]:
    running = allowlist_stack(tmp_path_factory.mktemp("web_stack"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def recorded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AllowlistStack]:
    """The same servers, keeping conversations in SQLite as `make run` does, so a test can read the record."""
    workdir = tmp_path_factory.mktemp("recorded_web_stack")
    settings = Settings.from_env({"DATA_DIR": str(workdir / "data")})  # the harness's DATA_DIR for this workdir
    endpoints.prepare_data_dir(settings)
    running = allowlist_stack(workdir, endpoints.render(endpoints.endpoints_sections(settings),
                                                        only=["tracker_store", "lock_store"]))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def clinic_sites(web_stack: AllowlistStack) -> Iterator[None]:
    """Serve a clinic page that embeds the widget, on CLINIC_ORIGIN and on OTHER_ORIGIN."""
    page = embedding_page(web_stack).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args) -> None:
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", int(origin.rsplit(":", 1)[1])), Handler)
               for origin in (CLINIC_ORIGIN, OTHER_ORIGIN)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def snapshot(web_stack: AllowlistStack) -> Snapshot:
    """The store exactly as the servers see it (their private copy)."""
    return served_snapshot(web_stack.workdir)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with launched_chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: empty localStorage, as a new visitor."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(ANSWER_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def watched(opened: Page) -> Page:
    errors: List[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.errors = errors  # checked by tests that must run without script errors
    return opened


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return watched(context.new_page())


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A 390x844 phone (touch, mobile layout): the widget's panel takes the whole screen."""
    ctx = browser.new_context(viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True)
    ctx.set_default_timeout(ANSWER_TIMEOUT_MS)
    try:
        yield watched(ctx.new_page())
    finally:
        ctx.close()


def demo_url(stack: Stack) -> str:
    return f"{stack.url}/webhooks/web/"


def shown(server_text: str) -> str:
    """A bot message as the widget shows it: lines joined, a source line's URL behind its title."""
    lines = [re.sub(r" \((https?://[^\s()]+)\)$", "", line) if line.startswith("Source: ") else line
             for line in server_text.split("\n")]
    return "".join(lines)


def fact_by_title(snapshot: Snapshot, title: str):
    return next(f for f in snapshot.facts.values() if f.title == title)


def bot_texts(page: Page) -> List[str]:
    return page.locator(".cw-bot .cw-text").all_text_contents()


def user_texts(page: Page) -> List[str]:
    return page.locator(".cw-user .cw-text").all_text_contents()


def open_widget(page: Page, snapshot: Snapshot) -> None:
    """Open the panel and wait for the server's welcome (from the fact store)."""
    page.get_by_role("button", name=re.compile("Chat with us")).click()
    welcome = shown(render_fact(snapshot, snapshot.facts["welcome"]).text)
    expect(page.locator(".cw-bot .cw-text").first).to_have_text(welcome)


def ask(page: Page, text: str) -> None:
    """Type into the widget and press Enter; wait until the answer for it arrives."""
    bots = page.locator(".cw-bot")
    before = bots.count()
    page.get_by_label("Your question").fill(text)
    page.get_by_label("Your question").press("Enter")
    expect(bots).not_to_have_count(before)
    expect(page.locator(".cw-typing")).to_be_hidden()


def assert_shows_fact(page: Page, snapshot: Snapshot, fact_id: str) -> None:
    fact = snapshot.facts[fact_id]
    last = page.locator(".cw-bot").last
    expect(last.locator(".cw-text")).to_have_text(shown(render_fact(snapshot, fact).text))
    if fact.sources:
        link = last.get_by_role("link", name=fact.sources[0].title)
        expect(link).to_have_attribute("href", fact.sources[0].url)
        expect(link).to_have_attribute("rel", "noopener noreferrer")


def stored_state(page: Page) -> dict:
    raw = page.evaluate("() => { const k = Object.keys(localStorage).find(k => k.startsWith('clinicChat:v1:'));"
                        " return k ? localStorage.getItem(k) : null; }")
    return json.loads(raw) if raw else {}


def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def question_box(page: Page) -> Locator:
    return page.get_by_label("Your question")


def send_keys(page: Page, text: str) -> None:
    """Type into the widget and press Enter, without waiting for anything."""
    question_box(page).fill(text)
    question_box(page).press("Enter")


def held_requests(page: Page, pattern: str = "**/webhooks/rest/webhook", hold: int = 1) -> List[Route]:
    """Hold the first `hold` matching requests (a hung server); let the later ones through."""
    held: List[Route] = []

    def handler(route: Route) -> None:
        if len(held) < hold:
            held.append(route)
        else:
            route.continue_()

    page.route(pattern, handler)
    return held


def wait_until(page: Page, condition: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
    """Poll a condition that Playwright's expect cannot express (layout arithmetic, route handlers)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        page.wait_for_timeout(50)


def clinic_phones(snapshot: Snapshot) -> List[dict]:
    """The day phone, after-hours line and emergency number, labelled as the urgent answer labels them."""
    phones = urgent_phones(snapshot)
    assert [p["number"] for p in phones] == [snapshot.settings[k] for k in
                                            ("phone", "after_hours_phone", "emergency_number")]
    return phones


def tel(number: str) -> str:
    return "tel:" + re.sub(r"[^\d+]", "", number)


def expect_call_buttons(scope: Locator, snapshot: Snapshot) -> None:
    """A thumb-sized tel: link for each of the clinic's numbers, named "<label>: <number>"."""
    for phone in clinic_phones(snapshot):
        call = scope.get_by_role("link", name=f"{phone['label']}: {phone['number']}", exact=True)
        expect(call).to_have_attribute("href", tel(phone["number"]))
        box = call.bounding_box()
        assert box is not None and box["height"] >= 44, phone
        assert call.locator(".cw-call-number").evaluate("n => n.getClientRects().length") == 1  # one line


def in_widget(page: Page, script: str, arg: object = None) -> object:
    """Evaluate `script` (a function body) with `root` bound to the widget's shadow root."""
    return page.evaluate("([body, arg]) => new Function('root', 'arg', body)("
                         "document.getElementById('clinic-chat-widget').shadowRoot, arg)", [script, arg])


def focus_is_in_panel(page: Page) -> bool:
    return bool(page.evaluate("""() => {
        const host = document.getElementById('clinic-chat-widget');
        const active = host.shadowRoot.activeElement;
        return document.activeElement === host && !!active && !!active.closest('.cw-panel');
    }"""))


def top_in_log(bubble: Locator) -> Tuple[float, float]:
    """(where the bubble's top is, below the top of the visible conversation; the conversation's visible height)."""
    return tuple(bubble.evaluate("""b => {
        const log = b.closest('.cw-log').getBoundingClientRect();
        return [b.getBoundingClientRect().top - log.top, log.height];
    }"""))


def in_view_of_log(item: Locator) -> bool:
    """The whole of `item` shows in the conversation's visible part (not scrolled away, not under the input)."""
    return bool(item.evaluate("""e => { const r = e.getBoundingClientRect();
        const log = e.closest('.cw-log').getBoundingClientRect();
        return r.top >= log.top && r.bottom <= log.bottom; }"""))


def luminance(css_colour: str) -> float:
    channels = [float(c) / 255 for c in re.findall(r"[\d.]+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted([luminance(a), luminance(b)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


# ------------------------------------------------------------------ served files and headers

def test_the_channel_serves_the_page_widget_and_config_with_safe_headers(web_stack: AllowlistStack,
                                                                         snapshot: Snapshot) -> None:
    page = requests.get(demo_url(web_stack), timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert snapshot.settings["phone"] in page.text and "{{" not in page.text  # filled from data/clinic.yml
    for name, kind in [("widget.js", "text/javascript"), ("widget.css", "text/css"), ("demo.css", "text/css")]:
        asset = requests.get(f"{web_stack.url}/webhooks/web/{name}", timeout=10, headers={"Accept-Encoding": "gzip"})
        assert asset.status_code == 200 and asset.headers["Content-Type"].startswith(kind), name
        assert asset.headers["X-Content-Type-Options"] == "nosniff" and "max-age" in asset.headers["Cache-Control"]
        assert asset.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in asset.headers["Vary"], name
        plain = requests.get(asset.url, headers={"Accept-Encoding": "identity"}, timeout=10)
        assert "Content-Encoding" not in plain.headers and plain.content == asset.content  # same file, decoded
        assert int(plain.headers["Content-Length"]) > int(asset.raw.headers["Content-Length"])  # smaller on the wire
        again = requests.get(asset.url, headers={"If-None-Match": asset.headers["ETag"], "Accept-Encoding": "gzip"},
                             timeout=10)
        assert again.status_code == 304 and not again.content
    config = requests.get(f"{web_stack.url}/webhooks/web/config", timeout=10).json()
    assert config["max_message_chars"] == MAX_CHARS
    assert [{"label": p["label"], "number": p["number"]} for p in config["phones"]] == clinic_phones(snapshot)
    assert requests.get(f"{web_stack.url}/webhooks/web/credentials.yml", timeout=10).status_code == 404


def test_cors_allows_the_listed_clinic_origin_only(web_stack: AllowlistStack) -> None:
    def preflight(origin: str) -> requests.Response:
        return requests.options(f"{web_stack.url}/webhooks/rest/webhook", timeout=10, headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})

    assert preflight(CLINIC_ORIGIN).headers.get("Access-Control-Allow-Origin") == CLINIC_ORIGIN
    assert "Access-Control-Allow-Origin" not in preflight(OTHER_ORIGIN).headers


# ------------------------------------------------------------------ conversation

def test_ask_about_downtime_then_follow_a_chip(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    welcome_chips = page.locator(".cw-bot").first.locator(".cw-chip").all_text_contents()
    assert welcome_chips == [snapshot.facts[i].title for i in snapshot.facts["welcome"].follow_ups]

    ask(page, DOWNTIME_QUESTION)
    assert user_texts(page)[-1] == DOWNTIME_QUESTION
    assert_shows_fact(page, snapshot, "downtime")
    chips = page.locator(".cw-bot").last.locator(".cw-chip")
    titles = chips.all_text_contents()
    usable = [snapshot.facts[i] for i in snapshot.facts["downtime"].follow_ups if snapshot.usable(snapshot.facts[i])]
    assert titles == [f.title for f in usable]
    shot(page, "desktop-answer")

    bots = page.locator(".cw-bot")
    before = bots.count()
    chips.first.click()
    expect(bots).not_to_have_count(before)
    assert user_texts(page)[-1] == titles[0]  # the chip's title shows as the patient's message
    assert_shows_fact(page, snapshot, fact_by_title(snapshot, titles[0]).id)
    assert page.errors == []

    # Transport latency, for the REST-versus-socket.io choice (reported in docs/widget.md).
    durations = page.evaluate("() => performance.getEntriesByType('resource')"
                              ".filter(e => e.name.endsWith('/webhooks/rest/webhook')).map(e => e.duration)")
    (ARTIFACTS / "rest-latency.json").write_text(json.dumps(
        {"requests": len(durations), "median_ms": statistics.median(durations), "max_ms": max(durations)}))


def test_typing_indicator_shows_while_waiting(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    held: List[Route] = []
    page.route("**/webhooks/rest/webhook", lambda route: held.append(route))
    page.get_by_label("Your question").fill(DOWNTIME_QUESTION)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator(".cw-typing")).to_be_visible()
    expect(page.locator(".cw-typing")).to_have_attribute("role", "status")
    for _ in range(100):  # bounded: the held request reaches the route handler within moments
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the message was not sent"
    held[0].continue_()
    page.unroute("**/webhooks/rest/webhook")
    expect(page.locator(".cw-typing")).to_be_hidden()
    assert_shows_fact(page, snapshot, "downtime")


def test_history_survives_a_reload_and_a_second_page(web_stack: AllowlistStack, snapshot: Snapshot,
                                                     page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    before_bots, before_users = bot_texts(page), user_texts(page)
    sender = stored_state(page)["senderId"]
    assert CONVERSATION_ID.fullmatch(sender)  # the id the server issued, not one the browser made up

    page.reload()
    expect(page.locator(".cw-panel")).to_be_visible()  # it was open, so it reopens
    assert bot_texts(page) == before_bots and user_texts(page) == before_users
    shot(page, "desktop-after-reload")

    page.goto(f"{demo_url(web_stack)}?page=two#contact")
    expect(page.locator(".cw-bot")).to_have_count(len(before_bots))
    with page.expect_request("**/webhooks/rest/webhook") as sent:
        ask(page, "do you numb the skin first?")
    assert json.loads(sent.value.post_data)["sender"] == sender  # same conversation on the server
    assert stored_state(page)["senderId"] == sender


def test_new_conversation_asks_first_then_starts_afresh(web_stack: AllowlistStack, snapshot: Snapshot,
                                                         page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    old_sender = stored_state(page)["senderId"]
    new = page.get_by_role("button", name="New conversation")
    close = page.get_by_role("button", name="Close chat")
    new_box, close_box = new.bounding_box(), close.bounding_box()
    assert abs(new_box["y"] - close_box["y"]) > 200  # not next to the close button (it sits at the bottom)

    new.click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("cleared from this browser")
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice is the default
    expect(page.locator(".cw-user")).to_have_count(1)  # nothing cleared yet
    page.keyboard.press("Escape")  # cancels the question, not the panel
    expect(confirm).to_be_hidden()
    expect(page.get_by_role("dialog", name=re.compile("Ask"))).to_be_visible()
    expect(new).to_be_focused()
    expect(page.locator(".cw-user")).to_have_count(1)

    new.click()
    page.get_by_role("button", name="Clear and start again").click()
    expect(page.locator(".cw-bot")).to_have_count(1)
    expect(page.locator(".cw-user")).to_have_count(0)
    expect(page.locator(".cw-bot .cw-text")).to_have_text(shown(render_fact(snapshot, snapshot.facts["welcome"]).text))
    state = stored_state(page)
    assert state["senderId"] != old_sender
    assert DOWNTIME_QUESTION not in json.dumps(state)  # the old conversation is gone from the browser
    page.reload()
    expect(page.locator(".cw-bot")).to_have_count(1)


def test_a_new_conversation_in_one_tab_is_not_undone_by_an_answer_pending_in_another(
        web_stack: AllowlistStack, snapshot: Snapshot, context: BrowserContext, page: Page) -> None:
    """Two tabs of one browser share the conversation. "New conversation" in one clears it "in every tab":
    an answer that arrives afterwards in the other tab, for the old conversation, must not save it back."""
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    old_sender = stored_state(page)["senderId"]
    other = watched(context.new_page())
    other.goto(demo_url(web_stack))
    other.get_by_role("button", name=re.compile("Chat with us")).click()
    expect(other.locator(".cw-user .cw-text")).to_have_text([DOWNTIME_QUESTION])  # the same conversation
    held = held_requests(other)
    send_keys(other, NUMBING_QUESTION)
    wait_until(other, lambda: bool(held), "the other tab's question reached the server")

    page.get_by_role("button", name="New conversation").click()
    page.get_by_role("button", name="Clear and start again").click()
    welcome = shown(render_fact(snapshot, snapshot.facts["welcome"]).text)
    expect(page.locator(".cw-bot .cw-text")).to_have_text([welcome])
    new_sender = stored_state(page)["senderId"]
    assert new_sender and new_sender != old_sender

    with other.expect_response("**/webhooks/rest/webhook"):
        held[0].continue_()  # the old conversation's answer arrives in the other tab
    expect(other.locator(".cw-typing")).to_be_hidden()
    for tab in (page, other):
        state = stored_state(tab)
        assert state["senderId"] == new_sender, "the cleared conversation was saved back"
        assert DOWNTIME_QUESTION not in json.dumps(state) and NUMBING_QUESTION not in json.dumps(state)
    expect(other.locator(".cw-user")).to_have_count(0)  # the other tab shows the new conversation too
    expect(other.locator(".cw-bot .cw-text")).to_have_text([welcome])
    expect(question_box(other)).to_have_value(NUMBING_QUESTION)  # what it had not seen answered is not lost
    page.reload()
    expect(page.locator(".cw-user")).to_have_count(0)
    expect(page.locator(".cw-bot")).to_have_count(1)
    assert page.errors == [] and other.errors == []


def test_html_in_messages_is_shown_as_text_and_never_runs(web_stack: AllowlistStack, snapshot: Snapshot,
                                                          page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    attack = '<img src=x onerror="window.__pwned=1">'
    ask(page, attack)
    assert user_texts(page)[-1] == attack
    expect(page.locator(".cw-log img")).to_have_count(0)

    # A bot reply carrying markup, a javascript: "source" and a markup chip (as if the store were tampered with).
    evil_reply = [{"recipient_id": "x", "text": '<b>bold</b><img src=x onerror="window.__pwned=2">\n'
                   "Source: Trick (javascript:window.__pwned=3)\nSee https://example.com/ok.",
                   "buttons": [{"title": '<img src=x onerror="window.__pwned=4">', "payload": "/greet"}]}]
    page.route("**/webhooks/rest/webhook", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(evil_reply)))
    ask(page, "anything")
    last = page.locator(".cw-bot").last
    expect(last.locator(".cw-text")).to_contain_text('<b>bold</b><img src=x onerror="window.__pwned=2">')
    expect(last.locator("img, b")).to_have_count(0)
    links = last.locator("a")
    expect(links).to_have_count(1)  # the https URL only; javascript: stays text
    expect(links).to_have_attribute("href", "https://example.com/ok")
    expect(last.locator(".cw-chip")).to_have_text('<img src=x onerror="window.__pwned=4">')
    last.locator(".cw-chip").click()
    expect(page.locator(".cw-user .cw-text").last).to_have_text('<img src=x onerror="window.__pwned=4">')
    assert page.evaluate("() => window.__pwned") is None
    assert page.errors == []


def test_the_message_limit_comes_from_the_server_and_a_long_paste_is_kept_whole(
        web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    box = question_box(page)
    limit = page.locator(".cw-limit")
    expect(page.locator(".cw-counter")).to_have_text(f"0 / {MAX_CHARS}")  # the server's limit, from /config
    box.fill("a" * MAX_CHARS)
    expect(page.locator(".cw-counter")).to_have_text(f"{MAX_CHARS} / {MAX_CHARS}")
    expect(limit).to_be_empty()  # exactly the limit is fine

    # A paste over the limit is not cut (a maxlength would cut it silently): kept whole, and explained.
    pasted = "b" * (MAX_CHARS + 50)
    box.fill("")
    box.focus()
    page.keyboard.insert_text(pasted)  # what a paste does to the box
    expect(box).to_have_value(pasted)
    expect(limit).to_contain_text(f"{MAX_CHARS + 50} characters")
    expect(limit).to_contain_text(f"{MAX_CHARS} or fewer")
    expect(box).to_have_attribute("aria-invalid", "true")
    sent: List[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/webhook") else None)
    box.press("Enter")
    expect(limit).to_contain_text("Nothing was sent")
    assert box.input_value() == pasted and not sent
    box.fill("short")
    expect(limit).to_be_empty()
    expect(box).not_to_have_attribute("aria-invalid", "true")


# ------------------------------------------------------------------ connection trouble

def test_a_dead_server_shows_a_notice_keeps_the_message_and_recovers(web_stack: AllowlistStack,
                                                                     snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    page.route("**/webhooks/**", lambda route: route.abort("connectionrefused"))
    ask_box = page.get_by_label("Your question")
    ask_box.fill(DOWNTIME_QUESTION)
    ask_box.press("Enter")
    notice = page.get_by_role("alert")
    expect(notice).to_be_visible()
    expect(ask_box).to_have_value(DOWNTIME_QUESTION)  # kept, ready to send again
    assert DOWNTIME_QUESTION not in user_texts(page)
    shot(page, "desktop-offline")

    page.unroute("**/webhooks/**")
    expect(notice).to_be_hidden(timeout=40_000)  # the widget's own back-off probe found the server
    ask_box.press("Enter")
    expect(page.locator(".cw-typing")).to_be_hidden()
    assert_shows_fact(page, snapshot, "downtime")
    assert user_texts(page)[-1] == DOWNTIME_QUESTION


def test_a_failed_chip_is_kept_and_resent_as_its_payload(web_stack: AllowlistStack, snapshot: Snapshot,
                                                         page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    chip = page.locator(".cw-bot").first.locator(".cw-chip").last
    title = chip.text_content()
    page.route("**/webhooks/**", lambda route: route.abort("connectionrefused"))
    chip.click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Your question")).to_have_value(title)
    page.unroute("**/webhooks/**")
    page.get_by_role("button", name="Try now").click()
    expect(page.get_by_role("alert")).to_be_hidden()
    with page.expect_request("**/webhooks/rest/webhook") as sent:
        page.get_by_label("Your question").press("Enter")
    assert json.loads(sent.value.post_data)["message"].startswith("/")  # the chip's payload, not its title
    expect(page.locator(".cw-typing")).to_be_hidden()
    assert_shows_fact(page, snapshot, fact_by_title(snapshot, title).id)


# ------------------------------------------------------------------ the urgent answer

def check_urgent_answer(page: Page, snapshot: Snapshot) -> Locator:
    urgent = page.locator(".cw-bot").last
    expect(urgent).to_have_class(re.compile(r"\bcw-urgent\b"))
    expect(urgent.locator(".cw-urgent-label")).to_have_text("Urgent")  # a word and an icon, not only a colour
    text = urgent.locator(".cw-text")
    expect(text).to_have_text(shown(render_fact(snapshot, snapshot.facts["urgent"]).text))
    assert text.evaluate("e => parseFloat(getComputedStyle(e).borderLeftWidth)") >= 4  # a thick frame too
    settings = snapshot.settings
    for number in (settings["phone"], settings["after_hours_phone"], settings["emergency_number"]):
        link = text.get_by_role("link", name=number, exact=True)
        expect(link).to_have_attribute("href", tel(number))
        expect(link).to_have_css("white-space", "nowrap")
        assert link.evaluate("a => a.getClientRects().length") == 1, f"{number} breaks across lines"
    expect_call_buttons(urgent, snapshot)
    expect(urgent.locator(".cw-feedback")).to_have_count(0)  # no thumbs on an urgent answer
    top, height = top_in_log(urgent)
    assert 0 <= top < height - 100, "the urgent answer's start is not in view"
    return urgent


def test_the_urgent_answer_stands_out_with_tel_links_and_call_buttons(web_stack: AllowlistStack, snapshot: Snapshot,
                                                                      page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    ask(page, URGENT_QUESTION)
    urgent = check_urgent_answer(page, snapshot)
    expect(page.locator(".cw-bot").first).not_to_have_class(re.compile(r"\bcw-urgent\b"))
    # On a laptop screen the whole answer shows at once: its label, and its three call buttons, none
    # under the input (and so in the picture in the docs).
    assert in_view_of_log(urgent.locator(".cw-urgent-label"))
    for call in urgent.locator(".cw-call").all():
        assert in_view_of_log(call), call.get_attribute("aria-label")
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_IMAGES / "widget-urgent-desktop.png"))
    assert page.errors == []


def test_the_urgent_answer_on_a_phone(web_stack: AllowlistStack, snapshot: Snapshot, phone: Page) -> None:
    phone.goto(demo_url(web_stack))
    open_widget(phone, snapshot)
    ask(phone, URGENT_QUESTION)
    check_urgent_answer(phone, snapshot)
    phone.screenshot(path=str(DOCS_IMAGES / "widget-urgent-mobile.png"))
    assert phone.errors == []


def test_the_clinics_numbers_are_offered_when_the_assistant_cannot_be_reached(
        web_stack: AllowlistStack, snapshot: Snapshot, context: BrowserContext, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)  # /config has been read, and kept in the browser
    context.set_offline(True)
    send_keys(page, URGENT_QUESTION)
    notice = page.get_by_role("alert")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("If it's urgent, call:")
    expect_call_buttons(notice, snapshot)
    expect(question_box(page)).to_have_value(URGENT_QUESTION)
    shot(page, "desktop-offline-numbers")
    context.set_offline(False)
    expect(notice).to_be_hidden(timeout=10_000)  # back online: checked at once, not at the next back-off step

    # A later page with the assistant down (the widget itself from a cache or the clinic's own copy):
    # the numbers still come from the copy of /config kept in the browser.
    page.route("**/webhooks/web/config", lambda route: route.abort("connectionrefused"))
    page.route("**/webhooks/rest/**", lambda route: route.abort("connectionrefused"))
    page.reload()
    expect(page.locator(".cw-panel")).to_be_visible()
    send_keys(page, URGENT_QUESTION)
    expect(notice).to_be_visible()
    expect_call_buttons(notice, snapshot)


# ------------------------------------------------------------------ a hung server, outages, 503 and 429

def test_a_hung_server_gives_up_after_about_15_s_and_keeps_the_message(web_stack: AllowlistStack,
                                                                        snapshot: Snapshot, page: Page) -> None:
    page.clock.install()
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    held = held_requests(page)
    send_keys(page, DOWNTIME_QUESTION)
    typing, notice = page.locator(".cw-typing"), page.get_by_role("alert")
    expect(typing).to_be_visible()
    wait_until(page, lambda: bool(held), "the message reached the (hung) server")
    first_id = json.loads(held[0].request.post_data)["message_id"]
    assert UUID.fullmatch(first_id)

    page.clock.run_for(14_000)
    expect(typing).to_be_visible()
    expect(notice).to_be_hidden()
    page.clock.run_for(1_500)  # 15.5 s: not 30 s of dots
    expect(notice).to_contain_text("taking too long")
    expect(typing).to_be_hidden()
    expect(question_box(page)).to_have_value(DOWNTIME_QUESTION)  # the text is kept
    assert DOWNTIME_QUESTION not in user_texts(page)
    expect_call_buttons(notice, snapshot)

    page.unroute("**/webhooks/rest/webhook")
    with page.expect_request("**/webhooks/rest/webhook") as again:
        page.get_by_role("button", name="Try again").click()
    # The same message again, so the same message_id: a server that did answer it late answers it only once.
    assert json.loads(again.value.post_data)["message_id"] == first_id
    expect(typing).to_be_hidden()
    assert_shows_fact(page, snapshot, "downtime")
    expect(notice).to_be_hidden()


def test_reconnecting_backs_off_from_2_s_to_at_most_10_s(web_stack: AllowlistStack, snapshot: Snapshot,
                                                         page: Page) -> None:
    page.clock.install()
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    page.route("**/webhooks/**", lambda route: route.abort("connectionrefused"))
    send_keys(page, DOWNTIME_QUESTION)
    notice, when = page.get_by_role("alert"), page.locator(".cw-notice-when")
    expect(notice).to_be_visible()
    expect(page.get_by_role("button", name="Try now")).to_be_visible()
    expect(when).to_have_text(re.compile(r"Next try in 2 s"))
    # Each failed probe doubles the wait (2, 4, 8 s, ±10 %), which then stays at 10 s: never 16 or 30 s.
    for run_ms, seconds in [(2_300, "4"), (4_500, "[789]"), (8_900, "(9|10|11)"), (11_100, "(9|10|11)")]:
        page.clock.run_for(run_ms)
        expect(when).to_have_text(re.compile(rf"Next try in {seconds} s\."))
    page.unroute("**/webhooks/**")
    page.clock.run_for(11_100)
    expect(notice).to_be_hidden()
    expect(page.locator(".cw-info")).to_have_text("Connected again. You can send your message.")
    expect(question_box(page)).to_have_value(DOWNTIME_QUESTION)


def test_503_and_429_are_sent_again_with_the_same_message_id(web_stack: AllowlistStack, snapshot: Snapshot,
                                                              page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    busy_text = ("Sorry, I can't take your message right now. I'll try again in a moment; "
                 "if it's urgent, call (555) 010-0100.")
    slow_down = "You're sending messages faster than I can answer. If it's urgent, call us at (555) 010-0100."
    seen: List[dict] = []

    def flaky(route: Route) -> None:
        seen.append(json.loads(route.request.post_data))
        if len(seen) == 1:  # the conversation store is down
            route.fulfill(status=503, headers={"Retry-After": "3"},
                          json={"error": busy_text, "urgent": False, "recipient_id": seen[0]["sender"],
                                "text": render_fact(snapshot, snapshot.facts["action_error"]).text})
        elif len(seen) == 2:
            route.fulfill(status=429, headers={"Retry-After": "1"}, json={"error": slow_down, "retry_after": 1})
        else:
            route.continue_()

    page.route("**/webhooks/rest/webhook", flaky)
    send_keys(page, DOWNTIME_QUESTION)
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("can't take your message right now")
    expect(notice.get_by_role("link", name="(555) 010-0100").first).to_have_attribute("href", "tel:5550100100")
    mine = page.locator(".cw-user").last
    expect(mine.locator(".cw-text")).to_have_text(DOWNTIME_QUESTION)  # kept in the conversation, marked
    expect(mine).to_contain_text("Waiting to send")
    expect(question_box(page)).to_have_value("")
    # Retry-After 3 s, then max(Retry-After 1 s, the back-off's 4 s): about 7 s.
    expect(page.locator(".cw-info")).to_have_text("Your message got through.", timeout=20_000)
    expect(notice).to_be_hidden()
    expect(mine).not_to_contain_text("Waiting to send")
    assert_shows_fact(page, snapshot, "downtime")
    assert len(seen) == 3 and len({body["message_id"] for body in seen}) == 1, seen
    assert UUID.fullmatch(seen[0]["message_id"])

    with page.expect_request("**/webhooks/rest/webhook") as next_one:
        ask(page, NUMBING_QUESTION)
    assert json.loads(next_one.value.post_data)["message_id"] != seen[0]["message_id"]  # a new message, a new id
    assert_shows_fact(page, snapshot, "numbing")


def test_an_urgent_message_that_cannot_be_stored_still_gets_the_urgent_answer(
        web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    urgent_text = render_fact(snapshot, snapshot.facts["urgent"]).text
    calls: List[dict] = []

    def store_down_once(route: Route) -> None:
        calls.append(json.loads(route.request.post_data))
        if len(calls) == 1:
            route.fulfill(status=503, headers={"Retry-After": "2"},
                          json={"error": "We can't save this conversation right now; it will be sent again.",
                                "urgent": True, "text": urgent_text, "recipient_id": calls[0]["sender"],
                                "custom": urgent_custom(snapshot)})
        else:
            route.continue_()

    page.route("**/webhooks/rest/webhook", store_down_once)
    send_keys(page, URGENT_QUESTION)
    expect(page.locator(".cw-urgent")).to_have_count(1)  # at once, not after the database is back
    check_urgent_answer(page, snapshot)
    expect(page.get_by_role("alert")).to_contain_text("can't save this conversation")
    expect(page.locator(".cw-info")).to_have_text("Your message got through.", timeout=20_000)
    expect(page.locator(".cw-urgent")).to_have_count(1)  # the stored answer is not shown twice
    assert len(calls) == 2 and calls[0]["message_id"] == calls[1]["message_id"]
    assert user_texts(page)[-1] == URGENT_QUESTION and len(user_texts(page)) == 1


def test_enter_while_an_answer_is_pending_queues_the_message(web_stack: AllowlistStack, snapshot: Snapshot,
                                                             page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    welcome = page.locator(".cw-msg").count()
    held = held_requests(page)
    send_keys(page, DOWNTIME_QUESTION)
    wait_until(page, lambda: bool(held), "the first message reached the server")
    send_keys(page, NUMBING_QUESTION)
    expect(question_box(page)).to_have_value("")  # taken, not ignored
    queued = page.locator(".cw-user").last
    expect(queued.locator(".cw-text")).to_have_text(NUMBING_QUESTION)
    expect(queued).to_contain_text("Will be sent after the current answer.")
    expect(page.locator(".cw-info")).to_have_text("Your message will be sent after the current answer.")

    held[0].continue_()
    expect(page.locator(".cw-msg")).to_have_count(welcome + 4)
    expect(page.locator(".cw-typing")).to_be_hidden()
    expect(queued).not_to_contain_text("Will be sent")
    order = page.locator(".cw-msg").evaluate_all(
        "nodes => nodes.map(n => n.classList.contains('cw-user') ? 'user' : 'bot')")
    assert order[welcome:] == ["user", "bot", "user", "bot"], order  # each answer under its question
    assert user_texts(page) == [DOWNTIME_QUESTION, NUMBING_QUESTION]
    assert shown(render_fact(snapshot, snapshot.facts["downtime"]).text) == bot_texts(page)[-2]
    assert_shows_fact(page, snapshot, "numbing")


# ------------------------------------------------------------------ what a patient sees and does

def test_timestamps_unread_mark_and_only_the_latest_chips(web_stack: AllowlistStack, snapshot: Snapshot,
                                                          page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    for chip in page.locator(".cw-chip").all():
        assert chip.bounding_box()["height"] >= 44  # a touch target
    for question in (DOWNTIME_QUESTION, NUMBING_QUESTION, "how many sessions will I need?"):
        ask(page, question)
        expect(page.locator(".cw-chips")).to_have_count(1)  # old suggestions are removed, not piled up
        expect(page.locator(".cw-bot").last.locator(".cw-chips")).to_have_count(1)
    messages = page.locator(".cw-msg")
    times = page.locator(".cw-msg time")
    expect(times).to_have_count(messages.count())
    for stamp in times.all():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp.get_attribute("datetime"))
        assert re.search(r"\d{1,2}[:.]\d{2}", stamp.text_content())
    page.reload()
    expect(page.locator(".cw-msg time")).to_have_count(messages.count())  # kept with the history

    # A reply that arrives while the panel is closed marks the launcher.
    held = held_requests(page)
    send_keys(page, "do I need sunscreen afterwards?")
    wait_until(page, lambda: bool(held), "the message reached the server")
    page.keyboard.press("Escape")
    launcher = page.get_by_role("button", name=re.compile("Chat with us"))
    expect(launcher).to_be_focused()
    expect(page.locator(".cw-badge")).to_be_hidden()
    held[0].continue_()
    expect(page.locator(".cw-badge")).to_have_text(re.compile(r"^\d+ new$"))
    expect(launcher).to_have_attribute("aria-label", re.compile(r"\(\d+ new\)$"))
    shot(page, "desktop-unread")
    page.keyboard.press("Enter")
    expect(page.locator(".cw-panel")).to_be_visible()
    expect(page.locator(".cw-badge")).to_be_hidden()
    expect(page.locator(".cw-launcher")).to_have_attribute("aria-label", re.compile(r"Chat with us: Ask .*[^)]$"))


def fact_shown(snapshot: Snapshot, bubble: Locator) -> str:
    """The fact an answer bubble shows (its text is exactly that fact's, as the widget renders it)."""
    text = bubble.locator(".cw-text").text_content()
    matches = [f.id for f in snapshot.facts.values() if shown(render_fact(snapshot, f).text) == text]
    assert len(matches) == 1, (text, matches)
    return matches[0]


def with_thumbs(page: Page) -> List[Locator]:
    """The answers that show thumbs now, each located by its place in the log (it keeps it once rated)."""
    bots = page.locator(".cw-bot")
    return [bots.nth(i) for i in range(bots.count()) if bots.nth(i).locator(".cw-feedback").count()]


def stored_thumbs(stack: Stack, page: Page) -> List[dict]:
    """The thumbs stored in the widget's conversation, read from the conversation store (not the widget)."""
    url = Settings.from_env({**stack.base_env, **stack.env}).conversations_url
    conversation = "web:" + stored_state(page)["senderId"].split(".")[0]  # clinic/conversation_ids.py
    return [e["value"] for e in stored_events(url, conversation) if e.get("event") == "slot"
            and e.get("name") == "feedback"]


def test_feedback_under_every_answer_until_rated(recorded_stack: AllowlistStack, page: Page) -> None:
    """Thumbs stay under each answer until it is rated, and rate the answer they are under, after a reload too."""
    snapshot = served_snapshot(recorded_stack.workdir)
    sent: List[dict] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/webhooks/rest/webhook") else None)
    posted: List[Tuple[dict, str, int]] = []

    def record(route: Route) -> None:  # watched on its way to the real endpoint
        answer = route.fetch()
        posted.append((json.loads(route.request.post_data), route.request.headers.get("content-type", ""),
                       answer.status))
        route.fulfill(response=answer)

    page.route("**/webhooks/rest/feedback", record)
    page.goto(demo_url(recorded_stack))
    open_widget(page, snapshot)
    expect(page.locator(".cw-feedback")).to_have_count(0)  # not on the welcome
    ask(page, DOWNTIME_QUESTION)
    ask(page, NUMBING_QUESTION)
    asked = {body["message"]: body["message_id"] for body in sent}
    expect(page.locator(".cw-feedback")).to_have_count(2)  # under both answers...
    expect(page.locator(".cw-chips")).to_have_count(1)  # ...while suggestions stay on the latest only
    older, newer = with_thumbs(page)
    first, second = fact_shown(snapshot, older), fact_shown(snapshot, newer)
    assert first != second
    for group in page.get_by_role("group", name="Was this helpful?").all():
        for name in ("Yes, this answer helped", "No, this answer did not help"):
            box = group.get_by_role("button", name=name).bounding_box()
            assert box["width"] >= 44 and box["height"] >= 44

    older.get_by_role("button", name="Yes, this answer helped").focus()
    page.keyboard.press("Enter")
    expect(older.get_by_text("Thanks for your feedback")).to_be_visible()
    expect(older.locator(".cw-feedback")).to_have_count(0)  # once per answer
    expect(page.locator(".cw-feedback")).to_have_count(1)  # the newer answer can still be rated
    sender = stored_state(page)["senderId"]
    assert posted == [({"sender": sender, "value": "up", "message_id": asked[DOWNTIME_QUESTION]},
                       "application/json", 204)]
    assert stored_thumbs(recorded_stack, page) == [
        {"value": "up", "fact": first, "message_id": asked[DOWNTIME_QUESTION]}]

    answers = page.locator(".cw-bot").count()
    page.reload()  # the rated state and which question each answer answered are kept with the history
    expect(page.locator(".cw-bot")).to_have_count(answers)
    expect(page.get_by_text("Thanks for your feedback")).to_have_count(1)
    expect(page.locator(".cw-feedback")).to_have_count(1)
    [newer] = with_thumbs(page)
    assert fact_shown(snapshot, newer) == second
    newer.get_by_role("button", name="No, this answer did not help").click()
    expect(newer.get_by_text("Thanks for your feedback")).to_be_visible()
    assert posted[-1] == ({"sender": sender, "value": "down", "message_id": asked[NUMBING_QUESTION]},
                          "application/json", 204)
    assert stored_thumbs(recorded_stack, page)[-1] == {"value": "down", "fact": second,
                                                        "message_id": asked[NUMBING_QUESTION]}
    page.reload()
    expect(page.get_by_text("Thanks for your feedback")).to_have_count(2)
    expect(page.locator(".cw-feedback")).to_have_count(0)

    ask(page, URGENT_QUESTION)
    expect(page.locator(".cw-bot").last).to_have_class(re.compile(r"\bcw-urgent\b"))
    expect(page.locator(".cw-feedback")).to_have_count(0)  # not on the urgent answer


def test_thumbs_on_an_answer_no_longer_on_record_go_away(web_stack: AllowlistStack, snapshot: Snapshot,
                                                        page: Page) -> None:
    """A 404 (the conversation was deleted or is past retention) will never change: no buttons left to retry."""
    page.route("**/webhooks/rest/feedback", lambda route: route.fulfill(
        status=404, content_type="application/json", body=json.dumps({"error": "No such conversation."})))
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    expect(page.locator(".cw-feedback")).to_have_count(1)
    page.locator(".cw-feedback").get_by_role("button", name="No, this answer did not help").click()
    expect(page.locator(".cw-feedback")).to_have_count(0)
    expect(page.get_by_text("This answer can no longer be rated.")).to_be_attached()
    page.reload()
    expect(page.locator(".cw-panel")).to_be_visible()  # it was open, so it reopens
    expect(page.get_by_text(DOWNTIME_QUESTION)).to_be_visible()
    expect(page.locator(".cw-feedback")).to_have_count(0)  # and not after a reload either


def test_thumbs_kept_from_an_older_widget_go_once_a_newer_answer_comes(web_stack: AllowlistStack,
                                                                        snapshot: Snapshot, page: Page) -> None:
    """An older widget stored no question id with its answers: their thumbs can rate only the latest answer."""
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    page.evaluate("() => { const k = Object.keys(localStorage).find(k => k.startsWith('clinicChat:v1:'));"
                  " const s = JSON.parse(localStorage.getItem(k)); s.messages.forEach(m => delete m.answerOf);"
                  " localStorage.setItem(k, JSON.stringify(s)); }")
    page.reload()
    expect(page.locator(".cw-bot").last.locator(".cw-feedback")).to_have_count(1)  # still the latest: it may stay
    posted: List[dict] = []
    page.route("**/webhooks/rest/feedback", lambda route: (posted.append(json.loads(route.request.post_data)),
                                                           route.continue_()))
    ask(page, NUMBING_QUESTION)
    expect(page.locator(".cw-feedback")).to_have_count(1)  # the old thumbs went: they would rate this answer
    latest = page.locator(".cw-bot").last
    latest.get_by_role("button", name="Yes, this answer helped").click()
    expect(latest.get_by_text("Thanks for your feedback")).to_be_visible()
    answer_of = [m.get("answerOf") for m in stored_state(page)["messages"] if m.get("rated")]
    assert len(answer_of) == 1 and UUID.fullmatch(answer_of[0] or "")
    assert [body.get("message_id") for body in posted] == answer_of


def test_the_privacy_note_is_shown_once(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    note = page.locator(".cw-note")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("kept in this browser for a day")
    expect(note).to_contain_text("on the clinic's server for")
    expect(note).to_contain_text("delete my conversation")
    ask(page, DOWNTIME_QUESTION)
    answers = page.locator(".cw-bot").count()
    page.reload()
    expect(page.locator(".cw-bot")).to_have_count(answers)
    expect(note).to_have_count(1)  # not repeated on every page
    ask(page, NUMBING_QUESTION)
    expect(note).to_have_count(1)


def spanish_page(page: Page, stack: Stack) -> None:
    """A clinic page in Spanish (lang="es") that embeds the widget."""
    spanish = ('<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Clínica</title></head>'
               '<body><h1>Microagujas</h1><script src="/webhooks/web/widget.js" defer></script></body></html>')
    url = f"{stack.url}/webhooks/web/es-demo"
    page.route(url, lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8", body=spanish))
    page.goto(url)


def lang_of(text: Locator) -> str:
    return text.evaluate("e => e.closest('[lang]').getAttribute('lang')")


def test_each_answer_is_marked_with_its_language_on_a_page_in_another_language(web_stack: AllowlistStack,
                                                                              snapshot: Snapshot, page: Page) -> None:
    spanish_page(page, web_stack)
    open_widget(page, snapshot)
    ask(page, "¿la aguja duele?")
    notice = page.locator(".cw-bot .cw-text").last
    notice_text = languages.render(languages.languages()["es"].notice, snapshot.settings)
    expect(notice).to_have_text(notice_text)  # "I answer in English, call us", in Spanish...
    assert lang_of(notice) == "es"  # ...so marked Spanish, and a screen reader reads it as Spanish
    assert lang_of(page.locator(".cw-bot .cw-text").first) == "en"  # the welcome is English
    mine = page.locator(".cw-user .cw-text").last
    expect(mine).to_have_attribute("lang", "")  # the patient's own words: language not known, not "en" or "es"
    expect(mine).to_have_attribute("dir", "auto")
    assert page.locator(".cw-panel").evaluate("e => e.closest('[lang]').getAttribute('lang')") == "en"

    ask(page, "tengo fiebre y pus en la cara desde ayer")  # the dialogue's urgent answer: Spanish first
    own, english = page.locator(".cw-bot").nth(-2), page.locator(".cw-bot").last
    expect(own.locator(".cw-text")).to_have_text(languages.render(languages.languages()["es"].urgent,
                                                                  snapshot.settings))
    assert lang_of(own.locator(".cw-text")) == "es" and lang_of(english.locator(".cw-text")) == "en"
    for bubble in (own, english):
        expect(bubble).to_have_class(re.compile(r"\bcw-urgent\b"))
    expect(page.locator(".cw-log .cw-calls")).to_have_count(1)  # the call buttons once, under the last
    expect_call_buttons(english, snapshot)


def test_with_the_action_server_down_a_spanish_warning_sign_gets_the_urgent_answer_in_spanish_first(
        web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    """The channel's own urgent answer (clinic/urgent.py): Spanish first, marked lang="es", then English."""
    spanish_page(page, web_stack)
    open_widget(page, snapshot)
    stop(web_stack.actions)
    try:
        ask(page, "tengo fiebre desde ayer y me cuesta respirar")
    finally:
        web_stack.start_actions()
    own, english = page.locator(".cw-bot").nth(-2), page.locator(".cw-bot").last
    for bubble in (own, english):
        expect(bubble).to_have_class(re.compile(r"\bcw-urgent\b"))
    own_text = languages.render(languages.languages()["es"].urgent, snapshot.settings)
    expect(own.locator(".cw-text")).to_have_text(own_text)
    assert lang_of(own.locator(".cw-text")) == "es"
    for number in (snapshot.settings[k] for k in ("phone", "after_hours_phone", "emergency_number")):
        expect(own.locator(".cw-text").get_by_role("link", name=number, exact=True)).to_have_attribute(
            "href", tel(number))
    expect(english.locator(".cw-text")).to_have_text(shown(render_fact(snapshot, snapshot.facts["urgent"]).text))
    assert lang_of(english.locator(".cw-text")) == "en"
    expect(page.locator(".cw-log .cw-calls")).to_have_count(1)  # the call buttons once, under the last
    expect_call_buttons(english, snapshot)
    assert page.errors == []


# ------------------------------------------------------------------ phone layout, keyboard, forced colours

# An on-screen keyboard shrinks only the visual viewport (iOS Safari; Chrome on Android since 108): the
# layout viewport, and so set_viewport_size, stays as it is. Chromium cannot open a keyboard under test, so
# window.visualViewport is replaced, before the widget loads, by one whose height the test sets.
FAKE_KEYBOARD = """(() => {
    const real = window.visualViewport;
    const fake = new EventTarget();
    let height = null;
    for (const key of ["width", "offsetLeft", "offsetTop", "pageLeft", "pageTop", "scale"]) {
        Object.defineProperty(fake, key, { get: () => real[key] });
    }
    Object.defineProperty(fake, "height", { get: () => (height === null ? real.height : height) });
    Object.defineProperty(window, "visualViewport", { get: () => fake, configurable: true });
    window.__keyboard = (visibleHeight) => { height = visibleHeight; fake.dispatchEvent(new Event("resize")); };
})();"""
KEYBOARD_OPEN_HEIGHT = 440  # the keyboard takes about half of the 844 px screen


def keyboard(page: Page, visible_height: int | None) -> None:
    """Open the on-screen keyboard (the visual viewport is `visible_height` tall), or close it (None)."""
    page.evaluate("h => window.__keyboard(h)", visible_height)


def test_on_a_phone_the_newest_answer_stays_in_view_and_long_answers_show_their_start(
        web_stack: AllowlistStack, snapshot: Snapshot, phone: Page) -> None:
    phone.add_init_script(FAKE_KEYBOARD)
    phone.goto(demo_url(web_stack))
    open_widget(phone, snapshot)
    box = question_box(phone).bounding_box()
    assert box["height"] >= 40 and box["width"] >= 200, box  # not squashed before the patient types
    assert question_box(phone).evaluate("e => e.getAttribute('placeholder')") == "Type your question…"
    ask(phone, DOWNTIME_QUESTION)

    keyboard(phone, KEYBOARD_OPEN_HEIGHT)
    newest = phone.locator(".cw-bot").last

    def fits_above_the_keyboard() -> bool:
        panel = phone.locator(".cw-panel").bounding_box()
        return panel["y"] >= 0 and panel["y"] + panel["height"] <= KEYBOARD_OPEN_HEIGHT + 1

    def newest_in_view() -> bool:
        top, height = top_in_log(newest)
        return 0 <= top < height - 40

    wait_until(phone, fits_above_the_keyboard, "the panel fits the space above the keyboard")
    wait_until(phone, newest_in_view, "the newest answer is in view above the keyboard")
    expect(phone.locator(".cw-header")).to_be_in_viewport()
    box = question_box(phone).bounding_box()
    assert box["height"] >= 40 and box["y"] + box["height"] <= KEYBOARD_OPEN_HEIGHT, box  # not under the keyboard

    long_text = "\n".join(f"Line {n} of a long answer." for n in range(1, 61))
    sender = stored_state(phone)["senderId"]
    phone.route("**/webhooks/rest/webhook", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps([{"recipient_id": sender, "text": long_text}])))
    ask(phone, "tell me everything")
    long_answer = phone.locator(".cw-bot").last
    top, height = top_in_log(long_answer)
    # Its start, right under the header, not its end.
    assert 0 <= top <= 40, f"the long answer starts {top:.0f} px from the top of the conversation"
    shot(phone, "mobile-keyboard-long-answer")
    keyboard(phone, None)  # keyboard closed: the panel takes the whole screen again
    wait_until(phone, lambda: phone.locator(".cw-panel").bounding_box()["height"] >= PHONE_VIEWPORT["height"] - 1,
               "the panel takes the whole screen again")
    wait_until(phone, lambda: 0 <= top_in_log(long_answer)[0] <= 40, "the long answer's start stays in view")


def test_the_header_focus_ring_is_visible_on_the_brand_colour(web_stack: AllowlistStack, snapshot: Snapshot,
                                                              page: Page) -> None:
    page.goto(demo_url(web_stack))
    launcher = page.get_by_role("button", name=re.compile("Chat with us"))
    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".cw-bot").first).to_be_visible()
    expect(page.locator(".cw-typing")).to_be_hidden()
    close = page.get_by_role("button", name="Close chat")
    for _ in range(30):  # keyboard only: Shift+Tab back to the header
        if in_widget(page, "return root.activeElement && root.activeElement.classList.contains('cw-close');"):
            break
        page.keyboard.press("Shift+Tab")
    expect(close).to_be_focused()
    ring = close.evaluate("b => { const s = getComputedStyle(b); "
                          "return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor]; }")
    header = page.locator(".cw-header").evaluate("h => getComputedStyle(h).backgroundColor")
    assert ring[0] == "solid" and ring[1] >= 2, ring
    assert contrast(ring[2], header) >= 3, (ring[2], header, contrast(ring[2], header))


def test_the_full_screen_phone_panel_keeps_tab_inside_and_escape_closes(web_stack: AllowlistStack,
                                                                        snapshot: Snapshot, phone: Page) -> None:
    phone.goto(demo_url(web_stack))
    launcher = phone.get_by_role("button", name=re.compile("Chat with us"))
    launcher.focus()
    phone.keyboard.press("Enter")
    dialog = phone.get_by_role("dialog", name=re.compile("Ask"))
    expect(dialog).to_be_visible()
    expect(phone.locator(".cw-bot").first).to_be_visible()
    expect(phone.locator(".cw-typing")).to_be_hidden()
    expect(dialog).to_have_attribute("aria-modal", "true")
    for key in ["Tab"] * 20 + ["Shift+Tab"] * 20:
        phone.keyboard.press(key)
        assert focus_is_in_panel(phone), f"{key} moved focus out of the full-screen dialog"
    phone.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_be_focused()


def test_bubbles_keep_their_outlines_in_forced_colours(web_stack: AllowlistStack, snapshot: Snapshot,
                                                       page: Page) -> None:
    page.emulate_media(forced_colors="active")
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, URGENT_QUESTION)
    outline = ("e => { const s = getComputedStyle(e); "
               "return [s.borderTopStyle, parseFloat(s.borderTopWidth), s.borderTopColor, s.backgroundColor]; }")
    for name, bubble in [("answer", page.locator(".cw-bot .cw-text").first),
                         ("question", page.locator(".cw-user .cw-text").last),
                         ("urgent answer", page.locator(".cw-urgent .cw-text"))]:
        style, width, colour, background = bubble.evaluate(outline)
        assert style == "solid" and width >= 1, (name, style, width)
        assert contrast(colour, background) >= 3, (name, colour, background)
    assert page.locator(".cw-urgent .cw-text").evaluate("e => parseFloat(getComputedStyle(e).borderTopWidth)") >= 2
    shot(page, "desktop-forced-colours")


# ------------------------------------------------------------------ layout, keyboard, embedding

def test_phone_layout_fits_the_screen(web_stack: AllowlistStack, snapshot: Snapshot, browser: Browser) -> None:
    ctx = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    ctx.set_default_timeout(ANSWER_TIMEOUT_MS)
    try:
        page = ctx.new_page()
        page.goto(demo_url(web_stack))
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        launcher = page.get_by_role("button", name=re.compile("Chat with us")).bounding_box()
        assert launcher["x"] + launcher["width"] <= 375 and launcher["y"] + launcher["height"] <= 667
        shot(page, "mobile-page")
        open_widget(page, snapshot)
        ask(page, DOWNTIME_QUESTION)
        assert_shows_fact(page, snapshot, "downtime")
        box = page.locator(".cw-panel").bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 375 and box["y"] + box["height"] <= 667
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        overflow = page.locator(".cw-log").evaluate("el => el.scrollWidth - el.clientWidth")
        assert overflow <= 0, "the conversation scrolls sideways"
        send = page.get_by_role("button", name="Send").bounding_box()
        assert send["x"] + send["width"] <= 375 and send["width"] >= 44  # a thumb-sized target
        shot(page, "mobile-answer")
    finally:
        ctx.close()


def test_keyboard_only_use(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    launcher = page.get_by_role("button", name=re.compile("Chat with us"))
    launcher.focus()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile("Ask"))
    expect(dialog).to_be_visible()
    box = page.get_by_label("Your question")
    expect(box).to_be_focused()  # focus moves into the panel
    size = box.bounding_box()
    assert size["height"] >= 40 and size["width"] >= 200, size  # not squashed to 20 px before the patient types
    expect(page.locator(".cw-bot")).to_have_count(1)
    expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")

    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    page.keyboard.press("Control+A")
    page.keyboard.type(DOWNTIME_QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator(".cw-bot")).to_have_count(2)
    assert_shows_fact(page, snapshot, "downtime")
    expect(box).to_be_focused()

    chip = page.locator(".cw-bot").last.locator(".cw-chip").first
    chip.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".cw-bot")).to_have_count(3)
    expect(page.locator(".cw-typing")).to_be_hidden()

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(launcher).to_be_focused()  # focus returns to where the patient was
    expect(launcher).to_have_attribute("aria-expanded", "false")


def embedding_page(stack: Stack) -> str:
    return f"""<!doctype html><html lang="en"><head><title>Example Clinic</title></head>
<body><h1>Example Clinic</h1><p>Our treatments.</p>
<script>window.ClinicChatConfig = {{ texts: {{ launcher: "Questions?" }} }};</script>
<script src="{stack.url}/webhooks/web/widget.js" data-title="Ask Example Clinic" data-color="#7a1f5c"
        data-position="left" defer></script></body></html>"""


def test_a_clinic_site_embeds_the_widget_from_another_origin(web_stack: AllowlistStack, snapshot: Snapshot,
                                                             clinic_sites: None, page: Page) -> None:
    page.goto(f"{CLINIC_ORIGIN}/treatments")
    launcher = page.get_by_role("button", name=re.compile("Questions\\?: Ask Example Clinic"))
    expect(launcher).to_be_visible()
    assert launcher.bounding_box()["x"] < 640  # data-position="left"
    expect(launcher).to_have_css("background-color", "rgb(122, 31, 92)")  # data-color
    launcher.click()
    expect(page.get_by_role("dialog", name="Ask Example Clinic")).to_be_visible()
    expect(page.locator(".cw-bot")).to_have_count(1)
    ask(page, DOWNTIME_QUESTION)
    assert_shows_fact(page, snapshot, "downtime")
    assert page.errors == []


def test_a_site_not_on_the_allowlist_cannot_use_the_assistant(web_stack: AllowlistStack, clinic_sites: None,
                                                              page: Page) -> None:
    page.goto(f"{OTHER_ORIGIN}/")
    page.get_by_role("button", name=re.compile("Questions")).click()
    expect(page.get_by_role("alert")).to_be_visible()  # the browser refused the cross-origin call
    expect(page.locator(".cw-bot")).to_have_count(0)


def test_the_real_server_stopped_and_started_again(web_stack: AllowlistStack, snapshot: Snapshot,
                                                   page: Page) -> None:
    """Last, since it restarts Rasa (on the same port, as a deploy or crash would)."""
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    stop(web_stack.rasa)
    try:
        box = page.get_by_label("Your question")
        box.fill(DOWNTIME_QUESTION)
        box.press("Enter")
        expect(page.get_by_role("alert")).to_be_visible()
        expect(box).to_have_value(DOWNTIME_QUESTION)
    finally:
        web_stack.start_rasa()
    expect(page.get_by_role("alert")).to_be_hidden(timeout=60_000)
    page.get_by_label("Your question").press("Enter")
    expect(page.locator(".cw-typing")).to_be_hidden()
    assert_shows_fact(page, snapshot, "downtime")
