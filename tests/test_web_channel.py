"""The website channel's pieces that need no server (the browser tests cover the rest)."""

from __future__ import annotations

import gzip
import re
from types import SimpleNamespace
from typing import Dict

import pytest
from sanic import Sanic

from channels.web import (
    ASSETS,
    DEMO_CSP,
    DEMO_PAGE,
    WebChatChannel,
    accepts_gzip,
    asset_response,
    fill_placeholders,
    widget_config,
)
from clinic.urgent import phones as urgent_phones
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


def get(name: str, headers: Dict[str, str]):
    """asset_response for a request with these headers (Sanic's are case-insensitive; the channel asks lower-case)."""
    return asset_response(SimpleNamespace(headers={k.lower(): v for k, v in headers.items()}), name)


@pytest.mark.parametrize("header, gzip_ok", [
    ("gzip, deflate, br", True),
    ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
    ("GZIP", True),
    ("x-gzip", True),
    ("*", True),
    ("gzip;q=0", False),
    ("gzip;q=0.000", False),
    ("*;q=0", False),
    ("*, gzip;q=0", False),
    ("identity", False),
    ("br, deflate", False),
    ("", False),
    ("gzip;q=bogus", False),
])
def test_accept_encoding_is_read_with_its_q_values(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


@pytest.mark.parametrize("name", ["widget.js", "widget.css"])
def test_widget_files_are_served_gzipped_to_clients_that_accept_it(name: str) -> None:
    original = ASSETS[name][0].read_bytes()
    zipped = get(name, {"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"  # caches keep the two versions apart
    assert gzip.decompress(zipped.body) == original
    assert len(zipped.body) < len(original) / 2
    plain = get(name, {})
    assert plain.status == 200 and "content-encoding" not in plain.headers and plain.body == original
    assert plain.headers["vary"] == "Accept-Encoding"
    assert zipped.headers["etag"] != plain.headers["etag"]  # one tag per representation
    assert get(name, {"Accept-Encoding": "gzip"}).body == zipped.body  # the same bytes every time (no mtime)
    for response in (zipped, plain):
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["widget.js", "widget.css"])
def test_an_unchanged_file_is_revalidated_with_its_etag(name: str) -> None:
    zipped, plain = get(name, {"Accept-Encoding": "gzip"}), get(name, {})
    for tag, encoding in [(zipped.headers["etag"], "gzip"), (plain.headers["etag"], ""),
                          (f'W/{zipped.headers["etag"]}', "gzip"), (f'"other", {plain.headers["etag"]}', "gzip")]:
        again = get(name, {"If-None-Match": tag, "Accept-Encoding": encoding})
        assert again.status == 304 and not again.body, tag
        assert again.headers["vary"] == "Accept-Encoding" and again.headers["etag"]
    assert get(name, {"If-None-Match": '"stale"', "Accept-Encoding": "gzip"}).status == 200


def test_the_config_gives_the_widget_the_clinics_numbers(snapshot) -> None:
    config = widget_config()
    assert config["max_message_chars"] > 0
    assert config["phones"] == urgent_phones(snapshot)  # labelled as the urgent answer's call buttons
    assert [p["number"] for p in config["phones"]] == [
        snapshot.settings["phone"], snapshot.settings["after_hours_phone"], snapshot.settings["emergency_number"]]
    assert config["retention_days"] > 0 and config["feedback"] == "/webhooks/rest/feedback"


def test_the_widget_never_cuts_a_message_silently() -> None:
    """A maxlength on the box would truncate a paste without a word; the widget counts and explains instead."""
    source = (PROJECT / "web" / "widget.js").read_text(encoding="utf-8")
    assert not re.search(r"""["']?maxlength["']?\s*[:,]""", source, re.IGNORECASE)
