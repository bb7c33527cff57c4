"""The website channel: serves the chat widget, its stylesheet and the demo clinic page.

Patients type into the widget, which talks to the hardened REST channel
(/webhooks/rest/webhook), so every message gets the same validation and the
same apology when the dialogue fails. This channel only serves files, so a
clinic pastes one <script> tag and everything comes from our own server (no CDN):

    GET /webhooks/web/            the demo clinic page (web/demo/index.html)
    GET /webhooks/web/widget.js   the widget
    GET /webhooks/web/widget.css  its stylesheet (loaded by widget.js)
    GET /webhooks/web/demo.css    the demo page's stylesheet
    GET /webhooks/web/config      what the widget must agree on with the server (message limit) and the
                                  clinic's phone numbers, which it keeps to show when the server is down

Files are read per request from web/, so an edit is served at once; an ETag
lets browsers revalidate cheaply, and clients that accept gzip get it
(compressed once per version of a file).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Dict, Mapping, Tuple

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.rest import max_message_chars
from clinic.fact_store import default_store
from clinic.settings import current as current_settings
from clinic.urgent import phones as urgent_phones

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DEMO_PAGE = WEB_DIR / "demo" / "index.html"

# The only files served: a fixed map, so no request path can reach another file.
ASSETS: Mapping[str, Tuple[Path, str]] = {
    "widget.js": (WEB_DIR / "widget.js", "text/javascript; charset=utf-8"),
    "widget.css": (WEB_DIR / "widget.css", "text/css; charset=utf-8"),
    "demo.css": (WEB_DIR / "demo" / "demo.css", "text/css; charset=utf-8"),
}

# Embedding pages load the widget from another origin; a short max-age plus an
# ETag means a clinic's visitors get a fixed widget within minutes.
ASSET_CACHE = "public, max-age=300"

# The demo page runs no inline script or style: everything comes from this server.
DEMO_CSP = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    **COMMON_HEADERS,
    "Content-Security-Policy": DEMO_CSP,
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-cache",
}

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}")
MIN_GZIP_BYTES = 1024  # below this gzip saves too little to be worth it


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def fill_placeholders(template: str, values: Mapping[str, Any]) -> str:
    """{{phone}} -> the clinic's phone from data/clinic.yml, HTML-escaped, so the page follows the settings."""

    def value(match: re.Match) -> str:
        key = match.group(1)
        if values.get(key) in (None, ""):
            logger.warning("The demo page uses {{%s}}, which data/clinic.yml does not set", key)
            return ""
        return html.escape(str(values[key]))

    return PLACEHOLDER_RE.sub(value, template)


def page_values(request: Request) -> Dict[str, Any]:
    """Clinic settings plus the widget's own address as this request reached it (for the embed snippet)."""
    try:
        values: Dict[str, Any] = dict(default_store().current().settings)
    except Exception:  # the store is unreadable: still show the page
        logger.exception("Fact store unavailable for the demo page")
        values = {}
    values["widget_url"] = f"{request.scheme}://{request.host}/webhooks/web/widget.js"
    return values


def widget_config() -> Dict[str, Any]:
    """GET /webhooks/web/config: the message limit, how long the server keeps a conversation, and the clinic's
    numbers (the same ones, labelled the same, as the urgent answer's call buttons: clinic/urgent.py), which the
    widget keeps so it can offer them when it cannot reach the assistant."""
    config: Dict[str, Any] = {
        "max_message_chars": max_message_chars(),
        "webhook": "/webhooks/rest/webhook",
        "feedback": "/webhooks/rest/feedback",
        "phones": [],
    }
    try:
        snapshot = default_store().current()
        config["phones"] = urgent_phones(snapshot)
        if snapshot.settings.get("clinic_name"):
            config["clinic_name"] = str(snapshot.settings["clinic_name"])
    except Exception:  # the store is unreadable: the widget still gets its limit (and keeps the numbers it had)
        logger.exception("Fact store unavailable for the widget's config")
    try:
        config["retention_days"] = current_settings().retention_days
    except Exception:  # a wrong setting stops `make run` long before this; never fail the widget over it
        logger.exception("Settings unavailable for the widget's config")
    return config


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding allows gzip (a q=0 refuses it; `*` allows it unless gzip is refused)."""
    allowed: Dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding.strip():
            allowed[coding.strip()] = quality > 0
    if "gzip" in allowed or "x-gzip" in allowed:
        return allowed.get("gzip", False) or allowed.get("x-gzip", False)
    return allowed.get("*", False)


@lru_cache(maxsize=16)
def gzipped(tag: str, body: bytes) -> bytes:
    """The compressed file, once per version (the tag); mtime 0 so the same file always compresses the same."""
    return gzip.compress(body, compresslevel=9, mtime=0)


def etag_matches(header: str, tags: Tuple[str, ...]) -> bool:
    """If-None-Match holds one of the tags (weak comparison: W/ is ignored, as RFC 9110 says for this header)."""
    if header.strip() == "*":
        return True
    sent = {t.strip().removeprefix("W/") for t in header.split(",")}
    return any(tag in sent for tag in tags)


def asset_response(request: Request, name: str) -> HTTPResponse:
    path, content_type = ASSETS[name]
    try:
        body = path.read_bytes()
    except OSError:
        logger.exception("Widget asset %s cannot be read", path)
        return response.text("Not available", status=503, headers=COMMON_HEADERS)
    tag = etag_for(body)
    gzip_tag = tag[:-1] + '-gz"'  # each encoding is its own representation, with its own tag
    compress = len(body) >= MIN_GZIP_BYTES and accepts_gzip(request.headers.get("accept-encoding") or "")
    headers = {**COMMON_HEADERS, "Cache-Control": ASSET_CACHE, "ETag": gzip_tag if compress else tag,
               "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match") or "", (tag, gzip_tag)):
        return response.empty(status=304, headers=headers)
    if compress:
        return response.raw(gzipped(tag, body), content_type=content_type,
                            headers={**headers, "Content-Encoding": "gzip"})
    return response.raw(body, content_type=content_type, headers=headers)


class WebChatChannel(InputChannel):
    """The website chat widget's files; its messages travel over the REST channel."""

    @classmethod
    def name(cls) -> str:
        return "web"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        web = Blueprint("clinic_web_widget", __name__)

        @web.route("/", methods=["GET"])
        async def demo_page(request: Request) -> HTTPResponse:
            try:
                template = DEMO_PAGE.read_text(encoding="utf-8")
            except OSError:
                logger.exception("Demo page %s cannot be read", DEMO_PAGE)
                return response.text("Not available", status=503, headers=COMMON_HEADERS)
            return response.html(fill_placeholders(template, page_values(request)), headers=PAGE_HEADERS)

        @web.route("/config", methods=["GET"])
        async def config(request: Request) -> HTTPResponse:
            return response.json(widget_config(), headers={**COMMON_HEADERS, "Cache-Control": "no-store"})

        for asset_name in ASSETS:
            web.add_route(self._asset_handler(asset_name), f"/{asset_name}", methods=["GET"],
                          name=asset_name.replace(".", "_"))

        return web

    @staticmethod
    def _asset_handler(name: str) -> Callable[[Request], Coroutine[Any, Any, HTTPResponse]]:
        async def asset(request: Request) -> HTTPResponse:
            return asset_response(request, name)

        return asset
