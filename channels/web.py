"""The website channel: serves the chat widget, its stylesheet and the demo clinic page.

Patients type into the widget, which talks to the hardened REST channel
(/webhooks/rest/webhook), so every message gets the same validation and the
same apology when the dialogue fails. This channel only serves files, so a
clinic pastes one <script> tag and everything comes from our own server (no CDN):

    GET /webhooks/web/            the demo clinic page (web/demo/index.html)
    GET /webhooks/web/widget.js   the widget
    GET /webhooks/web/widget.css  its stylesheet (loaded by widget.js)
    GET /webhooks/web/demo.css    the demo page's stylesheet
    GET /webhooks/web/config      what the widget must agree on with the server (message limit)

Files are read per request from web/, so an edit is served at once; an ETag
lets browsers revalidate cheaply.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, Dict, Mapping, Tuple

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels.rest import max_message_chars
from clinic.fact_store import default_store

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


def asset_response(request: Request, name: str) -> HTTPResponse:
    path, content_type = ASSETS[name]
    try:
        body = path.read_bytes()
    except OSError:
        logger.exception("Widget asset %s cannot be read", path)
        return response.text("Not available", status=503, headers=COMMON_HEADERS)
    tag = etag_for(body)
    headers = {**COMMON_HEADERS, "Cache-Control": ASSET_CACHE, "ETag": tag}
    if request.headers.get("if-none-match") == tag:
        return response.empty(status=304, headers=headers)
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
            return response.json(
                {"max_message_chars": max_message_chars(), "webhook": "/webhooks/rest/webhook"},
                headers={**COMMON_HEADERS, "Cache-Control": "no-store"},
            )

        for asset_name in ASSETS:
            web.add_route(self._asset_handler(asset_name), f"/{asset_name}", methods=["GET"],
                          name=asset_name.replace(".", "_"))

        return web

    @staticmethod
    def _asset_handler(name: str) -> Callable[[Request], Coroutine[Any, Any, HTTPResponse]]:
        async def asset(request: Request) -> HTTPResponse:
            return asset_response(request, name)

        return asset
