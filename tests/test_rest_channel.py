"""The REST channel's checks and the pieces it is built from (the running server: test_e2e_rest, test_security)."""

from __future__ import annotations

import json

import pytest

from channels.rest import body_limit, client_address, parse_feedback, parse_request
from clinic.conversation_ids import ConversationIds, api_sender, strong_seed
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
    assert ids.verify(token + "\n") is None  # "$" would have matched before a final newline


FIRST = "3f1c9a2e-7b4d-4e8f-a6c5-0d9b2e71f4a8"  # a random UUIDv4, as the widget's crypto.randomUUID() gives


def test_a_random_first_message_id_gives_the_same_conversation_again() -> None:
    ids = ConversationIds(b"k" * 32)
    seeded = ids.issue(seed=FIRST)
    assert seeded == ids.issue(seed=FIRST) != ids.issue(seed=FIRST.replace("3f1c", "3f1d"))
    assert ids.verify(seeded) is not None and ConversationIds(b"x" * 32).issue(seed=FIRST) != seeded


@pytest.mark.parametrize("weak", ["00000001", "first-message-id-1", "00000000-0000-4000-8000-000000000001",
                                  "6ba7b810-9dad-11d1-80b4-00c04fd430c8",  # a v1 UUID: a clock, not chance
                                  "a" * 64, "abababababababababababababababab"])
def test_a_weak_first_message_id_never_shares_a_conversation(weak: str) -> None:
    """Two clients sending the same guessable id must not land in one conversation (they would read each other)."""
    ids = ConversationIds(b"k" * 32)
    assert not strong_seed(weak)
    assert ids.issue(seed=weak) != ids.issue(seed=weak)


def test_random_ids_of_every_usual_form_are_strong_seeds() -> None:
    import secrets
    import uuid

    for _ in range(200):
        assert strong_seed(str(uuid.uuid4())) and strong_seed(uuid.uuid4().hex)
        assert strong_seed(secrets.token_urlsafe(16)) and strong_seed(secrets.token_hex(16))


@pytest.mark.parametrize("sender, stored", [
    ("alice", "api:site:alice"), (42, "api:site:42"), ("patient.7@x", "api:site:patient.7@x"),
    ("telegram:1", None), ("", None), (" a", None), ("a" * 129, None), (None, None), (True, None),
    ("new\nline", None), ("\ud800", None), ("alice\n", None), ("alice\r", None),
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
    ("/\t/restart", (), "restart"),
    ("/\n/restart", (), "restart"),
    ("/\u00a0/session_start", (), "session_start"),
    ("/ \u2003/\u3000/back", ("/back",), "back"),
    ("/\u2028/ask_cost{\"fact\":\"cost\"}", ('/ask_cost{"fact":"cost"}',), 'ask_cost{"fact":"cost"}'),
])
def test_only_offered_buttons_are_read_as_commands(text: str, offered: tuple, expected: str) -> None:
    assert typed_commands(text, offered) == expected


@pytest.mark.parametrize("typed", ["/restart", "/\t/restart", "/\n/restart", "/\u00a0/session_start",
                                   "/\u2029 /\u205f/back", "\u3000/\x85/\u1680/ask_cost@1.0", "/{I think"])
def test_rasa_reads_no_typed_command_as_an_intent(typed: str) -> None:
    """The text goes through Rasa's own steps (UserMessage strips it, the regex handler unpacks "/..."): no intent."""
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.training_data.message import Message

    seen = UserMessage(typed_commands(typed, ()), None, "someone").text
    unpacked = YAMLStoryReader.unpack_regex_message(Message({"text": seen}))
    assert not unpacked.get("intent"), (typed, seen)


def test_a_message_id_ending_in_a_newline_is_refused() -> None:
    _, problem = parse_request(body(message="hi", message_id="abcdefgh\n"), LIMIT)
    assert problem is not None and problem.status == 400


@pytest.mark.parametrize("message_id", ["abcdefgh\n", "short", "x" * 65, "has space1", "<script>", 12345678,
                                        ["abcdefgh"], {"id": "abcdefgh"}, "", "\u00e9abcdefgh"])
def test_a_thumbs_with_a_malformed_message_id_is_refused(message_id: object) -> None:
    """A 400 that says why, never a 404 "no answer" nor a lookup: the widget sent something broken."""
    parsed, problem = parse_feedback(body(sender="a", value="up", message_id=message_id))
    assert parsed is None and problem is not None
    assert problem.status == 400
    assert "message_id" in json.loads(problem.body)["error"]


@pytest.mark.parametrize("extra, expected", [
    ({}, None),
    ({"message_id": None}, None),
    ({"message_id": "6f1c2a9e-0b1d-4c3e-9f2a-1b2c3d4e5f60"}, "6f1c2a9e-0b1d-4c3e-9f2a-1b2c3d4e5f60"),
    ({"message_id": "abc_DEF-12"}, "abc_DEF-12"),
])
def test_a_thumbs_names_the_message_it_rates_or_none_for_the_latest(extra: dict, expected: object) -> None:
    parsed, problem = parse_feedback(body(sender="a", value="down", **extra), "application/json; charset=utf-8")
    assert problem is None and parsed is not None
    assert parsed == {"sender": "a", "value": "down", "message_id": expected}


@pytest.mark.parametrize("raw, content_type, status", [
    (body(sender="a", value="up"), "text/plain", 415),
    (b"{not json", "application/json", 400),
    (body(sender="a", value="meh"), "application/json", 400),
    (body(sender="a"), "application/json", 400),
])
def test_a_bad_thumbs_gets_a_4xx_with_a_reason(raw: bytes, content_type: str, status: int) -> None:
    parsed, problem = parse_feedback(raw, content_type)
    assert parsed is None and problem is not None and problem.status == status
    assert json.loads(problem.body)["error"] and problem.headers["cache-control"] == "no-store"


def test_names_in_settings_end_where_they_seem_to() -> None:
    from clinic.settings import STAFF_NAME, ConfigError

    with pytest.raises(ConfigError, match="REST_API_KEYS"):
        Settings.from_env({"REST_API_KEYS": "site\n:" + "k" * 20})
    assert STAFF_NAME.match("alice\n") is None and STAFF_NAME.match("alice")


# --- the client's address behind a proxy ---------------------------------------------------------------

PROXY = Settings.from_env({"TRUSTED_PROXIES": "10.0.0.5, 192.168.7.0/24"}).trusted_proxies


@pytest.mark.parametrize("peer, forwarded, proxies, expected", [
    ("203.0.113.9", [], (), "203.0.113.9"),
    ("203.0.113.9", ["198.51.100.1"], (), "203.0.113.9"),  # no proxy trusted: the header is anyone's
    ("203.0.113.9", ["198.51.100.1"], PROXY, "203.0.113.9"),  # a peer that is not the proxy: ignored
    ("10.0.0.5", ["198.51.100.1"], PROXY, "198.51.100.1"),
    ("10.0.0.5", ["1.2.3.4, 198.51.100.1"], PROXY, "198.51.100.1"),  # what the client wrote itself is skipped
    ("10.0.0.5", ["1.2.3.4", "198.51.100.1, 192.168.7.20"], PROXY, "198.51.100.1"),  # two proxies in a row
    ("10.0.0.5", ["not-an-address"], PROXY, "10.0.0.5"),  # never a free bucket for garbage
    ("10.0.0.5", ["10.0.0.5"], PROXY, "10.0.0.5"),
    ("", [], (), "unknown"),
])
def test_the_client_address_is_taken_from_trusted_proxies_only(peer: str, forwarded: list, proxies: tuple,
                                                                 expected: str) -> None:
    assert client_address(peer, forwarded, proxies) == expected


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


# --- patients' words in Rasa's structured log events ---------------------------------------------------------------

def test_structured_events_keep_their_name_but_not_the_words() -> None:
    from clinic.private_logs import WITHHELD, scrub_event

    words = "I think I am pregnant"
    try:
        raise ValueError(words)
    except ValueError as exc:
        event = scrub_event(None, "warning", {
            "event": "message.parsing.failed", "event_info": "Rasa's fixed sentence", "user_text": "I think I am",
            "parse_data_text": "x", "tracker_latest_message": {"text": "x"}, "rasa_events": [{"text": "x"}],
            "some_new_message_key": "x", "sender_id": "web:abc", "exc_info": exc})
    assert event["event"] == "message.parsing.failed" and event["event_info"] == "Rasa's fixed sentence"
    assert event["sender_id"] == "web:abc"
    for key in ("user_text", "parse_data_text", "tracker_latest_message", "rasa_events", "some_new_message_key"):
        assert event[key] == WITHHELD, key
    assert "exc_info" not in event and "ValueError" in event["exception"] and "pregnant" not in event["exception"]


def test_the_filter_runs_just_before_whatever_renders() -> None:
    import structlog

    from clinic.private_logs import scrub_event, with_scrubber

    rasa_like = [structlog.stdlib.filter_by_level, structlog.processors.add_log_level, structlog.dev.set_exc_info,
                 structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    chain = with_scrubber(rasa_like)
    assert chain.index(scrub_event) == 3 and with_scrubber(chain) == chain  # once, before the tracebacks
