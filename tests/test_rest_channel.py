"""The hardened REST channel's input validation (the running server is tested in test_e2e_rest)."""

from __future__ import annotations

import json

import pytest

from channels.rest import parse_request
from clinic.settings import Settings

DEFAULT_MAX_MESSAGE_CHARS = Settings.from_env({}).max_message_chars


@pytest.mark.parametrize("body, status", [
    (b"", 400),
    (b"{not json", 400),
    (b"\xff\xfe", 400),
    (b"[1, 2]", 400),
    (b'"hello"', 400),
    (json.dumps({"message": "hi"}).encode(), 400),
    (json.dumps({"sender": "", "message": "hi"}).encode(), 400),
    (json.dumps({"sender": "x" * 129, "message": "hi"}).encode(), 400),
    (json.dumps({"sender": "a", "message": 5}).encode(), 400),
    (json.dumps({"sender": "a"}).encode(), 400),
    (json.dumps({"sender": "a", "message": "hi", "metadata": [1]}).encode(), 400),
    (json.dumps({"sender": "a", "message": "x" * (DEFAULT_MAX_MESSAGE_CHARS + 1)}).encode(), 413),
])
def test_bad_requests_get_a_4xx_with_a_reason(body: bytes, status: int) -> None:
    parsed, problem = parse_request(body, DEFAULT_MAX_MESSAGE_CHARS)
    assert parsed is None
    assert problem.status == status
    assert json.loads(problem.body)["error"]


@pytest.mark.parametrize("sender, message", [
    ("patient-7", "how long is the downtime?"),
    (42, "hi"),
    ("a", ""),
    ("a", "x" * DEFAULT_MAX_MESSAGE_CHARS),
    ("a", "<script>alert(1)</script>"),
])
def test_good_requests_pass_through_unchanged(sender, message: str) -> None:
    parsed, problem = parse_request(json.dumps({"sender": sender, "message": message}).encode(),
                                    DEFAULT_MAX_MESSAGE_CHARS)
    assert problem is None
    assert parsed["sender"] == str(sender) and parsed["message"] == message


def test_the_limit_is_configurable() -> None:
    limit = Settings.from_env({"MAX_MESSAGE_CHARS": "10"}).max_message_chars
    _, problem = parse_request(json.dumps({"sender": "a", "message": "x" * 11}).encode(), limit)
    assert problem.status == 413 and json.loads(problem.body)["max_chars"] == 10
