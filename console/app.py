"""The console's web app (Sanic): routes, who may see what, and the headers every answer carries.

Every page and export needs a signed-in staff member; an anonymous visitor is sent to
the sign-in page (a form post without a session gets 403). Every form post must carry
the session's CSRF token. Every view of a transcript, every reveal of masked contact
details, every export, hand-off mark and proposal is written to the audit log
(clinic/audit.py) with the staff member's name, never with a patient's words.
Database work runs in worker threads, so one slow page never blocks the others.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar
from urllib.parse import urlencode

from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, html, redirect, text

from clinic.audit import conversation_ref, record
from clinic.fact_store import FactStore
from clinic.settings import Settings
from console import auth, queries
from console.database import CALLBACK_STATUSES, Database
from console.export import to_csv
from console.pages import Views, parse_period, render
from console.proposals import ProposalError, Review
from console.queries import CHANNELS, Period, Search
from console.summaries import Summaries

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = ("/sign-in", "/static/console.css")
WARM_DAYS = 30
EXPORTS = ("overview", "topics", "outcomes", "unanswered", "urgent", "alerts", "callbacks", "transcripts", "facts")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # patients' words never stay in a browser's cache
}
NAV = (("/", "Overview"), ("/unanswered", "Unanswered"), ("/urgent", "Urgent & hand-offs"),
       ("/callbacks", "Callbacks"), ("/transcripts", "Transcripts"), ("/facts", "Facts"))
_SAFE_NEXT = re.compile(r"/[A-Za-z0-9/_.?=&%-]*")

T = TypeVar("T")


class Console:
    """Everything one console process holds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.conversations_url)
        self.summaries = Summaries(self.db)
        self.accounts = auth.Accounts.from_settings(settings)
        self.lockout = auth.LockOut()
        self.sessions = auth.Sessions()
        self.views = Views(settings, self.db, self.summaries, FactStore.from_settings(settings),
                           Review.from_settings(settings))

    def audit(self, event: str, **details: Any) -> None:
        try:
            record(self.settings, event, **details)
        except OSError:
            logger.exception("Could not write the audit log")


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args, **kwargs))


def _cookie(response: HTTPResponse, name: str, value: str, settings: Settings, max_age: int) -> None:
    response.cookies[name] = value
    cookie = response.cookies[name]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = "/"
    cookie["max-age"] = max_age
    if settings.console_https:
        cookie["secure"] = True


def _period(request: Request) -> Tuple[Period, Optional[str]]:
    return parse_period(request.args.get("from"), request.args.get("to"))


def _page_number(request: Request) -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), 10_000)) if raw.isdigit() else 1


def _search(request: Request) -> Search:
    channel = request.args.get("channel", "")
    return Search(channel=channel if channel in CHANNELS else "", intent=request.args.get("intent", "")[:64],
                  words=request.args.get("words", "")[:200])


def _query(period: Period, **extra: Any) -> str:
    values = {"from": period.start.isoformat(), "to": period.end.isoformat(), **extra}
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _safe_back(value: Optional[str], default: str = "/") -> str:
    return value if value and _SAFE_NEXT.fullmatch(value) and not value.startswith("//") else default


def create_app(settings: Settings, name: str = "clinic_console") -> Sanic:
    console = Console(settings)
    app = Sanic(name)
    app.config.MOTD = False
    app.config.ACCESS_LOG = False
    app.ctx.console = console

    def page(request: Request, template: str, title: str, period: Optional[Period] = None,
             note: Optional[str] = None, status: int = 200, **context: Any) -> HTTPResponse:
        session = request.ctx.session
        nav = [{"href": href + (f"?{_query(period)}" if period else ""), "label": label,
                "current": request.path == href} for href, label in NAV]
        body = render(template, title=title, staff=session.name if session else None,
                      csrf=session.csrf if session else "", nav=nav, period=period, note=note,
                      clinic_name=console.views.clinic_name(), path=request.path,
                      query=_query(period) if period else "", **context)
        return html(body, status=status)

    @app.middleware("request")
    async def authenticate(request: Request) -> Optional[HTTPResponse]:
        request.ctx.session = console.sessions.get(request.cookies.get(auth.COOKIE))
        if request.path in PUBLIC:
            return None
        if request.path == "/favicon.ico":
            return text("", status=404)
        if request.ctx.session is None:
            if request.method in ("GET", "HEAD"):
                target = request.path + (f"?{request.query_string}" if request.query_string else "")
                return redirect("/sign-in?" + urlencode({"next": _safe_back(target)}), status=303)
            return text("Sign in first.", status=403)
        if request.method == "POST" and not auth.same(request.form.get("csrf"), request.ctx.session.csrf):
            return text("This form has expired: go back, reload the page and try again.", status=403)
        return None

    @app.middleware("response")
    async def headers(request: Request, response: HTTPResponse) -> None:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)

    # --- signing in and out ----------------------------------------------------------------------------

    def sign_in_page(request: Request, error: Optional[str] = None, status: int = 200) -> HTTPResponse:
        # One token per browser while it signs in: a second tab (or the browser's own favicon request) keeps it.
        existing = request.cookies.get(auth.SIGN_IN_COOKIE) or ""
        token = existing if re.fullmatch(r"[A-Za-z0-9_-]{43}", existing) else secrets.token_urlsafe(32)
        wanted = request.form.get("next") if request.method == "POST" else request.args.get("next")
        response = page(request, "sign_in.html", "Sign in", status=status, error=error, token=token,
                        ask_name=not console.accounts.only_shared, next=_safe_back(wanted))
        _cookie(response, auth.SIGN_IN_COOKIE, token, settings, max_age=3600)
        return response

    @app.get("/sign-in")
    async def sign_in_form(request: Request) -> HTTPResponse:
        if request.ctx.session is not None:
            return redirect("/", status=303)
        return sign_in_page(request)

    @app.post("/sign-in")
    async def sign_in(request: Request) -> HTTPResponse:
        form = request.form
        if not auth.same(form.get("csrf"), request.cookies.get(auth.SIGN_IN_COOKIE)):
            return sign_in_page(request, "The sign-in form had expired. Please try again.", status=403)
        name = (form.get("name") or "").strip() if not console.accounts.only_shared else "staff"
        name = name or "staff"
        password = form.get("password") or ""
        address = request.ip or "unknown"
        wait = console.lockout.locked_for(name, address)
        if wait > 0:
            console.audit("console_sign_in_refused_locked", staff=name, address=address)
            minutes = int(wait // 60) + 1
            return sign_in_page(request, f"Too many failed attempts. Sign-in is locked for {minutes} more "
                                         f"minute{'s' if minutes != 1 else ''}.", status=429)
        if not await blocking(console.accounts.verify, name, password):
            console.lockout.failed(name, address)
            console.audit("console_sign_in_failed", staff=name, address=address)
            return sign_in_page(request, "That name or password is not right.", status=401)
        console.lockout.succeeded(name)
        token, _ = console.sessions.start(name)
        console.audit("console_signed_in", staff=name, address=address)
        response = redirect(_safe_back(form.get("next")), status=303)
        _cookie(response, auth.COOKIE, token, settings, max_age=auth.MAX_AGE_S)
        del response.cookies[auth.SIGN_IN_COOKIE]
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> HTTPResponse:
        console.sessions.end(request.cookies.get(auth.COOKIE))
        console.audit("console_signed_out", staff=request.ctx.session.name)
        response = redirect("/sign-in", status=303)
        del response.cookies[auth.COOKIE]
        return response

    @app.get("/static/console.css")
    async def stylesheet(request: Request) -> HTTPResponse:
        css = (STATIC / "console.css").read_text(encoding="utf-8")
        return HTTPResponse(css, content_type="text/css; charset=utf-8", headers={"Cache-Control": "max-age=3600"})

    # --- pages -----------------------------------------------------------------------------------------

    @app.get("/")
    async def overview(request: Request) -> HTTPResponse:
        period, note = _period(request)
        context = await blocking(console.views.overview, period)
        return page(request, "overview.html", "Overview", period, note, **context)

    @app.get("/unanswered")
    async def unanswered(request: Request) -> HTTPResponse:
        period, note = _period(request)
        context = await blocking(console.views.unanswered, period)
        return page(request, "unanswered.html", "Unanswered questions", period, note,
                    proposed=request.args.get("proposed"), problem=request.args.get("problem"), **context)

    @app.post("/unanswered/propose")
    async def propose(request: Request) -> HTTPResponse:
        form = request.form
        back = _safe_back(form.get("back"), "/unanswered")
        ids = [int(v) for v in form.getlist("message") or [] if v.isdigit()]
        action = "new_topic" if form.get("action") == "new_topic" else "example"
        staff = request.ctx.session.name
        try:
            proposal = await blocking(console.views.propose, action, ids, staff, form.get("intent") or None,
                                      form.get("note") or "")
        except ProposalError as exc:
            return redirect(f"{back}{'&' if '?' in back else '?'}{urlencode({'problem': str(exc)})}", status=303)
        console.audit("console_proposal", staff=staff, proposal=proposal.id, action=proposal.action,
                      intent=proposal.intent, examples=len(proposal.examples))
        return redirect(f"{back}{'&' if '?' in back else '?'}{urlencode({'proposed': proposal.id})}", status=303)

    @app.get("/urgent")
    async def urgent(request: Request) -> HTTPResponse:
        period, note = _period(request)
        only_open = request.args.get("show") == "open"
        context = await blocking(console.views.urgent, period, only_open, _page_number(request))
        return page(request, "urgent.html", "Urgent messages and hand-offs", period, note, **context)

    @app.post("/urgent/<event_id:int>/handled")
    async def mark_handled(request: Request, event_id: int) -> HTTPResponse:
        back = _safe_back(request.form.get("back"), "/urgent")
        if not await blocking(console.db.event_exists, event_id):
            return text("No such message.", status=404)
        mark = await blocking(console.db.mark_handled, event_id, request.ctx.session.name)
        console.audit("console_marked_handled", staff=request.ctx.session.name, message=event_id,
                      first_marked_by=mark.by)
        return redirect(f"{back}#message-{event_id}", status=303)

    # --- callback requests -----------------------------------------------------------------------------

    async def callbacks_page(request: Request, revealed: Optional[int] = None) -> HTTPResponse:
        period, note = _period(request)
        only_open = (request.form.get("show") if request.method == "POST" else request.args.get("show")) == "open"
        context = await blocking(console.views.callbacks, only_open, _page_number(request), revealed)
        return page(request, "callbacks.html", "Callback requests", period, note, **context)

    @app.get("/callbacks")
    async def callbacks(request: Request) -> HTTPResponse:
        return await callbacks_page(request)

    @app.post("/callbacks/<event_id:int>/reveal")
    async def reveal_callback(request: Request, event_id: int) -> HTTPResponse:
        found = await blocking(console.views.callback_request, event_id)
        if found is None:
            return text("No such callback request.", status=404)
        console.audit("console_contact_details_revealed", staff=request.ctx.session.name,
                      conversation=conversation_ref(found.sender_id), channel=found.channel, what="callback request")
        return await callbacks_page(request, revealed=event_id)

    @app.post("/callbacks/<event_id:int>/status")
    async def callback_status(request: Request, event_id: int) -> HTTPResponse:
        back = _safe_back(request.form.get("back"), "/callbacks")
        status = request.form.get("status") or ""
        if status not in CALLBACK_STATUSES:
            return text("Choose new, called or closed.", status=400)
        found = await blocking(console.views.callback_request, event_id)
        if found is None:
            return text("No such callback request.", status=404)
        staff = request.ctx.session.name
        await blocking(console.db.set_callback_status, event_id, status, staff)
        console.audit("console_callback_status", staff=staff, request=event_id, status=status,
                      conversation=conversation_ref(found.sender_id))
        return redirect(f"{back}#callback-{event_id}", status=303)

    @app.get("/transcripts")
    async def transcripts(request: Request) -> HTTPResponse:
        period, note = _period(request)
        criteria = _search(request)
        context = await blocking(console.views.transcripts, period, criteria, _page_number(request))
        extra = {"channel": criteria.channel, "intent": criteria.intent, "words": criteria.words}
        return page(request, "transcripts.html", "Transcripts", period, note, search_query=_query(period, **extra),
                    **context)

    async def show_conversation(request: Request, event_id: int, reveal: bool) -> HTTPResponse:
        context = await blocking(console.views.conversation, event_id, reveal)
        if context is None:
            return page(request, "missing.html", "Conversation not found", status=404)
        staff = request.ctx.session.name
        sender = context["transcript"].sender_id
        console.audit("console_contact_details_revealed" if reveal else "console_transcript_viewed", staff=staff,
                      conversation=conversation_ref(sender), channel=queries.channel_of(sender))
        return page(request, "conversation.html", "Conversation", **context)

    @app.get("/conversation/<event_id:int>")
    async def conversation(request: Request, event_id: int) -> HTTPResponse:
        return await show_conversation(request, event_id, reveal=False)

    @app.post("/conversation/<event_id:int>/reveal")
    async def reveal(request: Request, event_id: int) -> HTTPResponse:
        return await show_conversation(request, event_id, reveal=True)

    @app.get("/facts")
    async def facts(request: Request) -> HTTPResponse:
        period, note = _period(request)
        context = await blocking(console.views.facts_page, period)
        return page(request, "facts.html", "Facts", period, note, **context)

    # --- exports ---------------------------------------------------------------------------------------

    @app.get("/export/<name:str>")
    async def export(request: Request, name: str) -> HTTPResponse:
        list_name = name[:-4] if name.endswith(".csv") else name
        if list_name not in EXPORTS:
            return text("No such list.", status=404)
        period, _ = _period(request)
        views = console.views
        makers: Dict[str, Callable[[], Tuple[Any, Any]]] = {
            "overview": lambda: views.overview_rows(period),
            "topics": lambda: views.topics_rows(period),
            "outcomes": lambda: views.outcomes_rows(period),
            "unanswered": lambda: views.unanswered_rows(period),
            "urgent": lambda: views.urgent_rows(period, request.args.get("show") == "open"),
            "alerts": lambda: views.alerts_rows(period),
            "callbacks": lambda: views.callbacks_rows(request.args.get("show") == "open"),
            "transcripts": lambda: views.transcripts_rows(period, _search(request)),
            "facts": lambda: views.facts_rows(period),
        }
        header, rows = await blocking(makers[list_name])
        console.audit("console_export", staff=request.ctx.session.name, list=list_name, rows=len(rows),
                      start=period.start.isoformat(), end=period.end.isoformat())
        filename = f"{list_name}-{period.start}-to-{period.end}.csv"
        return HTTPResponse(to_csv(header, rows), content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    # --- start-up --------------------------------------------------------------------------------------

    @app.after_server_start
    async def warm_up(app_: Sanic, _loop: Any) -> None:
        """Computes the last month's figures once, so the first staff member does not wait for them."""
        async def warm() -> None:
            try:
                await blocking(console.summaries.period, Period.last_days(WARM_DAYS))
                logger.info("Console: the last %d days' figures are ready", WARM_DAYS)
            except Exception:  # noqa: BLE001 - the pages compute what they need anyway
                logger.exception("Console: warming up the figures failed")

        app_.add_task(warm())

    return app
