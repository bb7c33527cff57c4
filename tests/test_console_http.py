"""The staff console over HTTP (`python -m console`, no Rasa needed): who gets in, and what every answer carries.

The console runs on a small generated store (devtools/bench/console.py's generator) in a
private DATA_DIR; the tests talk to it as a browser would, with and without a session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import requests
import sqlalchemy as sa

from console import auth
from console.app import EXPORTS
from devtools.bench.console import add_staff_alerts, generate_rows
from devtools.harness import events
from devtools.harness.console import ConsoleServer, csrf_of
from devtools.harness.servers import PROJECT, running

PASSWORD = "correct horse battery"
PAGES = ["/", "/unanswered", "/urgent", "/callbacks", "/transcripts", "/transcripts?words=parking&channel=web",
         "/facts", "/?from=2025-01-01&to=2025-01-31"]
POSTS = ["/sign-out", "/unanswered/propose", "/urgent/1/handled", "/conversation/1/reveal"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("console-data")
    engine = sa.create_engine(f"sqlite:///{data / 'conversations.db'}")
    events.create_table(engine)
    events.insert(engine, generate_rows(150, days=7))
    add_staff_alerts(engine)  # the alerts those urgent messages and requests for a person queued (ops/alerts.py)
    engine.dispose()
    return data


@pytest.fixture(scope="module")
def console(store: Path) -> Iterator[ConsoleServer]:
    hashed = auth.hash_password(PASSWORD)
    with running(ConsoleServer(store, env={"DATA_DIR": str(store), "REVIEW_DIR": str(store / "review"),
                                           "STAFF_ACCOUNTS": f"anna:{hashed} locktest:{hashed}"})) as server:
        yield server


def first_message_id(store: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{store / 'conversations.db'}")
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT MIN(id) FROM events WHERE type_name = 'user'")).scalar()
    engine.dispose()
    return int(found)


@pytest.mark.parametrize("path", PAGES + [f"/export/{name}.csv" for name in EXPORTS] + ["/conversation/1"])
def test_anonymous_visitors_get_the_sign_in_page_only(console: ConsoleServer, path: str) -> None:
    reply = requests.get(console.url + path, allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and reply.headers["Location"].startswith("/sign-in?next=")
    assert "patient" not in reply.text.lower() and "," not in reply.text
    followed = requests.get(console.url + path, timeout=30)
    assert followed.url.startswith(f"{console.url}/sign-in") and 'type="password"' in followed.text


@pytest.mark.parametrize("path", POSTS)
def test_anonymous_form_posts_are_refused(console: ConsoleServer, path: str) -> None:
    reply = requests.post(console.url + path, data={"csrf": "guess", "message": "1"}, allow_redirects=False,
                          timeout=30)
    assert reply.status_code == 403


def test_signing_in_sets_a_strict_http_only_cookie(console: ConsoleServer) -> None:
    session = requests.Session()
    page = session.get(f"{console.url}/sign-in", timeout=30)
    assert page.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in \
        page.headers["Content-Security-Policy"]
    bad_token = session.post(f"{console.url}/sign-in", data={"name": "anna", "password": PASSWORD, "csrf": "x"},
                             allow_redirects=False, timeout=30)
    assert bad_token.status_code == 403
    token = csrf_of(session.get(f"{console.url}/sign-in", timeout=30).text)
    wrong = session.post(f"{console.url}/sign-in", data={"name": "anna", "password": "nope", "csrf": token},
                         allow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "not right" in wrong.text
    right = session.post(f"{console.url}/sign-in", data={"name": "anna", "password": PASSWORD, "csrf": token,
                                                          "next": "/facts"}, allow_redirects=False, timeout=30)
    assert right.status_code == 303 and right.headers["Location"] == "/facts"
    cookie = next(c for c in right.raw.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    offsite = session.post(f"{console.url}/sign-in", allow_redirects=False, timeout=30,
                           data={"name": "anna", "password": PASSWORD, "next": "//evil.example/x",
                                 "csrf": csrf_of(requests.get(f"{console.url}/sign-in", timeout=30).text)})
    assert offsite.status_code == 403  # the sign-in token belongs to the browser that got it


def test_every_page_and_export_for_a_signed_in_member(console: ConsoleServer, store: Path) -> None:
    session = console.signed_in(PASSWORD, "anna")
    for path in PAGES + [f"/conversation/{first_message_id(store)}"]:
        reply = session.get(console.url + path, timeout=60)
        assert reply.status_code == 200 and "Signed in as" in reply.text, path
        assert "<script" not in reply.text  # no page runs a script
    for name in EXPORTS:
        reply = session.get(f"{console.url}/export/{name}.csv", timeout=60)
        assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/csv"), name
        assert reply.content.startswith(b"\xef\xbb\xbf") and len(reply.text.splitlines()) >= 2, name
    assert session.get(f"{console.url}/export/passwords.csv", timeout=30).status_code == 404
    assert session.get(f"{console.url}/conversation/999999999", timeout=30).status_code == 404
    audit = [json.loads(line) for line in (store / "audit.log").read_text().splitlines()]
    assert {"console_signed_in", "console_transcript_viewed", "console_export"} <= {e["event"] for e in audit}
    assert all("text" not in e for e in audit)


def test_forms_need_the_session_token_and_sign_out_ends_the_session(console: ConsoleServer, store: Path) -> None:
    session = console.signed_in(PASSWORD, "anna")
    message = first_message_id(store)
    assert session.post(f"{console.url}/urgent/{message}/handled", data={}, allow_redirects=False,
                        timeout=30).status_code == 403
    token = csrf_of(session.get(f"{console.url}/urgent", timeout=30).text)
    marked = session.post(f"{console.url}/urgent/{message}/handled", data={"csrf": token, "back": "/urgent"},
                          allow_redirects=False, timeout=30)
    assert marked.status_code == 303 and marked.headers["Location"] == f"/urgent#message-{message}"
    cookie = session.cookies.get(auth.COOKIE)
    out = session.post(f"{console.url}/sign-out", data={"csrf": token}, allow_redirects=False, timeout=30)
    assert out.status_code == 303
    stale = requests.get(f"{console.url}/", cookies={auth.COOKIE: cookie}, allow_redirects=False, timeout=30)
    assert stale.status_code == 303 and stale.headers["Location"].startswith("/sign-in")


def test_repeated_failures_lock_the_account(console: ConsoleServer) -> None:
    session = requests.Session()
    token = csrf_of(session.get(f"{console.url}/sign-in", timeout=30).text)

    def attempt(password: str, name: str = "locktest") -> int:
        return session.post(f"{console.url}/sign-in", data={"name": name, "password": password, "csrf": token},
                            allow_redirects=False, timeout=30).status_code

    assert [attempt("wrong") for _ in range(auth.MAX_FAILURES)] == [401] * auth.MAX_FAILURES
    assert attempt(PASSWORD) == 429  # the right password, but locked
    assert console.signed_in(PASSWORD, "anna")  # others are not locked out


def test_behind_https_the_cookie_is_secure(store: Path, tmp_path: Path) -> None:
    server = ConsoleServer(tmp_path, env={"DATA_DIR": str(store), "STAFF_PASSWORD": PASSWORD,
                                          "CONSOLE_HTTPS": "true", "REVIEW_DIR": str(tmp_path)})
    try:
        server.start()
        form = requests.get(f"{server.url}/sign-in", timeout=30)
        assert 'name="name"' not in form.text  # one shared password: no name asked
        assert "Secure" in form.headers["Set-Cookie"]  # so a browser keeps it for HTTPS only (this test sends it)
        token = csrf_of(form.text)
        reply = requests.post(f"{server.url}/sign-in", data={"password": PASSWORD, "csrf": token},
                              cookies={auth.SIGN_IN_COOKIE: token}, allow_redirects=False, timeout=30)
        cookie = next(c for c in reply.raw.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE))
        assert reply.status_code == 303 and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        server.stop()


def test_without_a_password_the_console_says_how_to_turn_it_on(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-m", "console"], cwd=PROJECT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and "STAFF_PASSWORD" in result.stderr and "docs/console.md" in result.stderr
