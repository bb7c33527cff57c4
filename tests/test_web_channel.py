"""The website channel's pieces that need no server (the browser tests cover the rest)."""

from __future__ import annotations

import re

from sanic import Sanic

from channels.web import ASSETS, DEMO_CSP, DEMO_PAGE, WebChatChannel, fill_placeholders
from devtools.harness.servers import PROJECT


def test_placeholders_are_filled_and_escaped() -> None:
    page = fill_placeholders("<p>{{clinic_name}} {{ phone }}</p>", {"clinic_name": "<b>A&B</b>", "phone": "555"})
    assert page == "<p>&lt;b&gt;A&amp;B&lt;/b&gt; 555</p>"


def test_an_unset_placeholder_becomes_empty_not_a_brace() -> None:
    assert fill_placeholders("call {{phone}}.", {"phone": None}) == "call ."


def test_the_demo_page_uses_only_settings_that_exist(snapshot) -> None:
    used = set(re.findall(r"\{\{\s*([a-z_.]+)\s*\}\}", DEMO_PAGE.read_text(encoding="utf-8")))
    assert used, "the demo page should show the clinic's details from data/clinic.yml"
    missing = used - set(snapshot.settings) - {"widget_url"}
    assert not missing, f"the demo page uses settings data/clinic.yml lacks: {missing}"


def test_the_demo_page_has_no_inline_script_or_style() -> None:
    """The page's CSP forbids them, so they would silently not run."""
    html = DEMO_PAGE.read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)
    assert "unsafe-inline" not in DEMO_CSP and "script-src 'self'" in DEMO_CSP


def test_the_widget_never_writes_html() -> None:
    """Bot and user text must go through textContent / text nodes."""
    source = (PROJECT / "web" / "widget.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink


def test_every_served_asset_exists() -> None:
    for name, (path, content_type) in ASSETS.items():
        assert path.is_file(), name
        assert content_type.endswith("charset=utf-8")


def test_the_channel_routes_sit_under_webhooks_web() -> None:
    app = Sanic("web_channel_routes_test")
    channel = WebChatChannel()

    async def ignore(message) -> None:
        return None

    app.blueprint(channel.blueprint(ignore), url_prefix="/webhooks/" + channel.url_prefix())
    paths = {route.path for route in app.router.routes}
    expected = {"webhooks/web", "webhooks/web/config", "webhooks/web/widget.js", "webhooks/web/widget.css",
                "webhooks/web/demo.css"}
    assert expected <= paths, paths
