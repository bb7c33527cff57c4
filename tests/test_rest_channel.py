"""The REST channel's checks and the pieces it is built from (the running server: test_e2e_rest, test_security)."""

from __future__ import annotations

import json

import pytest

from channels.rest import body_limit, parse_request
from clinic.conversation_ids import ConversationIds, api_sender
from clinic.inbound import clean_metadata, readable_text, typed_commands
from clinic.rate_limit import RateLimiter
from clinic.settings import Settings

LIMIT = Settings.from_env({}).max_message_chars


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("raw, content_type, status", [
    (b"", "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"hello"', "application/json", 400),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # deep nesting within the size limit
    (body(sender="a", message=5), "application/json", 400),
    (body(sender="a"), "application/json", 400),
    (body(sender="a", message="hi", metadata=[1]), "application/json", 400),
    (body(sender="a", message="hi", metadata={"x" * 10: "y"}), "application/json", 400),
    (body(sender="a", message="hi", metadata={"page": "p" * 2000}), "application/json", 400),
    (body(sender="a", message="hi", metadata={"page": {"nested": 1}}), "application/json", 400),
    (body(sender="a", message="x" * (LIMIT + 1)), "application/json", 413),
    (body(sender="a", message="hi"), "text/plain", 415),
    (body(sender="a", message="hi"), "", 415),
    (b'{"sender": "a", "message": "lone \\ud800 surrogate"}', "application/json", 400),
])
def test_bad_requests_get_a_4xx_with_a_reason(raw: bytes, content_type: str, status: int) -> None:
    parsed, problem = parse_request(raw, LIMIT, content_type)
    assert parsed is None and problem is not None
    assert problem.status == status
    assert json.loads(problem.body)["error"]
    assert problem.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("message, expected", [
    ("how long is the downtime?", "how long is the downtime?"),
    ("", ""),
    ("x" * LIMIT, "x" * LIMIT),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    ("hi\u0000\u0007there\r\nline two", "hithere\nline two"),
    ("😬 emoji stay", "😬 emoji stay"),
])
def test_good_requests_pass_through_with_control_characters_removed(message: str, expected: str) -> None:
    parsed, problem = parse_request(body(sender="any", message=message), LIMIT, "application/json; charset=utf-8")
    assert problem is None and parsed is not None
    assert parsed["message"] == expected and parsed["sender"] == "any"


def test_the_limit_is_configurable() -> None:
    limit = Settings.from_env({"MAX_MESSAGE_CHARS": "10"}).max_message_chars
    _, problem = parse_request(body(sender="a", message="x" * 11), limit)
    assert problem is not None and problem.status == 413 and json.loads(problem.body)["max_chars"] == 10
    assert body_limit(100_000) > 6 * 100_000  # a clinic's larger limit still fits escaped text


# --- conversation ids --------------------------------------------------------------------------------

def test_issued_ids_verify_and_anything_else_does_not() -> None:
    ids = ConversationIds(b"k" * 32)
    token = ids.issue()
    stored = ids.verify(token)
    assert stored is not None and stored.startswith("web:") and token.split(".")[0] in stored
    assert ids.issue() != token
    key, signature = token.split(".")
    forged = [f"{key}.{'A' * len(signature)}", f"{'B' * len(key)}.{signature}", "telegram:123456",
              "api:site:alice", "", None, 42, {"id": token}, token + "x", token.upper()]
    assert [ids.verify(f) for f in forged] == [None] * len(forged)
    assert ConversationIds(b"other-secret-0123").verify(token) is None
    seeded = ids.issue(seed="first-message-id-1")
    assert seeded == ids.issue(seed="first-message-id-1") != ids.issue(seed="first-message-id-2")
    assert ids.verify(seeded) is not None and ConversationIds(b"x" * 32).issue(seed="first-message-id-1") != seeded


@pytest.mark.parametrize("sender, stored", [
    ("alice", "api:site:alice"), (42, "api:site:42"), ("patient.7@x", "api:site:patient.7@x"),
    ("telegram:1", None), ("", None), (" a", None), ("a" * 129, None), (None, None), (True, None),
    ("new\nline", None), ("\ud800", None),
])
def test_integrations_choose_senders_inside_their_own_namespace(sender: object, stored: str | None) -> None:
    assert api_sender("site", sender) == stored


# --- typed commands, metadata, text ---------------------------------------------------------------------

@pytest.mark.parametrize("text, offered, expected", [
    ("/restart", (), "restart"),
    ("  /session_start", (), "session_start"),
    ("/back", ("/ask_downtime",), "back"),
    ('/ask_cost{"fact":"cost"}', (), 'ask_cost{"fact":"cost"}'),
    ('/ask_cost{"fact":"cost"}', ('/ask_cost{"fact":"cost"}',), '/ask_cost{"fact":"cost"}'),
    ("//", (), ""),
    ("how long / how much?", (), "how long / how much?"),
])
def test_only_offered_buttons_are_read_as_commands(text: str, offered: tuple, expected: str) -> None:
    assert typed_commands(text, offered) == expected


def test_text_that_cannot_be_stored_is_refused() -> None:
    assert readable_text("a\ud800b") is None
    assert readable_text("tab\tand\nnewline\x00\x1b[31m") == "tab\tand\nnewline[31m"


def test_metadata_keeps_only_the_allowlist() -> None:
    assert clean_metadata(None) == (None, None)
    assert clean_metadata({"page": "/pricing", "source": "ad-7"}) == ({"page": "/pricing", "source": "ad-7"}, None)
    assert clean_metadata({"sender": "telegram:1"})[1]


# --- rate limits ------------------------------------------------------------------------------------------

def test_the_rate_limit_refuses_the_burst_and_forgives_after_a_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [None, None, None]
    assert limiter.retry_after("a") == 60
    assert limiter.retry_after("b") is None  # per key
    now[0] = 30.0
    assert limiter.retry_after("a") == 30
    now[0] = 60.0
    assert limiter.retry_after("a") is None
    assert RateLimiter(0).retry_after("a") is None  # 0: no limit


def test_the_rate_limiter_remembers_a_bounded_number_of_keys() -> None:
    limiter = RateLimiter(1, max_keys=100)
    for n in range(1000):
        limiter.retry_after(f"k{n}")
    assert len(limiter._seen) == 100
