"""The website chat widget in a real browser (Chromium via Playwright) against the real servers.

The servers run with a CORS allowlist (their own origins plus one pretend clinic
site), not "*", so the cross-origin embed is tested the way a clinic deploys it.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from clinic.fact_store import Snapshot
from clinic.replies import render_fact
from devtools.harness.binaries import chromium
from devtools.harness.servers import PROJECT, Stack, free_port, private_fact_store, served_snapshot, stop

pytestmark = pytest.mark.servers

ARTIFACTS = PROJECT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Two more loopback sites (a page on a public host may not call a loopback server at all:
# Chrome's Private Network Access rules), each its own origin by its port.
CLINIC_ORIGIN = f"http://localhost:{free_port()}"  # allowlisted: a clinic's own site embedding the widget
OTHER_ORIGIN = f"http://localhost:{free_port()}"  # not allowlisted
MAX_CHARS = 300  # MAX_MESSAGE_CHARS for these servers, so the widget must learn it from /config
DOWNTIME_QUESTION = "how long is the downtime?"
ANSWER_TIMEOUT_MS = 30_000


@dataclass
class AllowlistStack(Stack):
    """The test Stack, but with `--cors <origins>` as ops/run.sh passes it, instead of "*"."""

    origins: List[str] = field(default_factory=list)

    def _spawn(self, name, args):
        if "--cors" in args:
            at = args.index("--cors")
            args = [*args[:at + 1], *self.origins, *args[at + 2:]]
        return super()._spawn(name, args)


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AllowlistStack]:
    workdir = tmp_path_factory.mktemp("web_stack")
    running = AllowlistStack(workdir, env={
        **private_fact_store(workdir),
        "MAX_MESSAGE_CHARS": str(MAX_CHARS),
    })
    running.origins = [f"http://127.0.0.1:{running.rasa_port}", f"http://localhost:{running.rasa_port}",
                       CLINIC_ORIGIN]
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
    with sync_playwright() as playwright:
        executable = chromium()
        if executable is None:
            pytest.fail("No Chromium found: run devtools/system_deps.sh, or set CHROMIUM_PATH")
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: empty localStorage, as a new visitor."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(ANSWER_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    opened = context.new_page()
    errors: List[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.errors = errors  # checked by tests that must run without script errors
    return opened


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
        asset = requests.get(f"{web_stack.url}/webhooks/web/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["Content-Type"].startswith(kind), name
        assert asset.headers["X-Content-Type-Options"] == "nosniff" and "max-age" in asset.headers["Cache-Control"]
        again = requests.get(asset.url, headers={"If-None-Match": asset.headers["ETag"]}, timeout=10)
        assert again.status_code == 304 and not again.content
    config = requests.get(f"{web_stack.url}/webhooks/web/config", timeout=10).json()
    assert config["max_message_chars"] == MAX_CHARS
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
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", sender)

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


def test_new_conversation_starts_afresh(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    ask(page, DOWNTIME_QUESTION)
    old_sender = stored_state(page)["senderId"]
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".cw-bot")).to_have_count(1)
    expect(page.locator(".cw-user")).to_have_count(0)
    expect(page.locator(".cw-bot .cw-text")).to_have_text(shown(render_fact(snapshot, snapshot.facts["welcome"]).text))
    state = stored_state(page)
    assert state["senderId"] != old_sender
    assert DOWNTIME_QUESTION not in json.dumps(state)  # the old conversation is gone from the browser
    page.reload()
    expect(page.locator(".cw-bot")).to_have_count(1)


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


def test_the_message_limit_comes_from_the_server(web_stack: AllowlistStack, snapshot: Snapshot, page: Page) -> None:
    page.goto(demo_url(web_stack))
    open_widget(page, snapshot)
    box = page.get_by_label("Your question")
    expect(box).to_have_attribute("maxlength", str(MAX_CHARS))
    box.fill("a" * (MAX_CHARS + 50))
    assert len(box.input_value()) == MAX_CHARS  # the browser stops typing at the limit
    expect(page.locator(".cw-counter")).to_have_text(f"{MAX_CHARS} / {MAX_CHARS}")
    expect(page.locator(".cw-limit")).to_contain_text(str(MAX_CHARS))
    box.fill("short")
    expect(page.locator(".cw-limit")).to_be_empty()
    # Text put past the limit by a script is refused politely and kept, without a request.
    too_long = "b" * (MAX_CHARS + 1)
    box.evaluate("(el, text) => { el.removeAttribute('maxlength'); el.value = text; }", too_long)
    sent: List[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/webhook") else None)
    box.press("Enter")
    expect(page.locator(".cw-limit")).to_contain_text(str(MAX_CHARS))
    assert box.input_value() == too_long and not sent


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
