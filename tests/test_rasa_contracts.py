"""The Rasa internals our extensions rely on, pinned: a Rasa upgrade that moves one fails here, by name.

Each extension in rasa_extensions/ changes or subclasses a private part of Rasa.
These tests state what each one assumes, so an upgrade fails with the name of
the broken assumption instead of a patch that silently does nothing. The last
tests check that importing our code changes nothing in Rasa, and that install()
does, in a fresh process each.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from typing import List

import pytest
import rasa.core.actions.action as rasa_action
from rasa.core.actions.action import RemoteAction
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event

from devtools.harness.servers import PROJECT
from rasa_extensions.version import SUPPORTED_RASA, UnsupportedRasaVersion, check_rasa_version


def parameters(function: object) -> List[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


# --- the version gate ------------------------------------------------------------------------------

def test_the_installed_rasa_is_a_supported_version() -> None:
    assert check_rasa_version() in SUPPORTED_RASA


def test_an_unsupported_rasa_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnsupportedRasaVersion, match=r"Rasa 3\.7\.0 is installed.*requirements\.lock"):
        check_rasa_version("3.7.0")


# --- action_timeout.py: RemoteAction.run reads the module global at every call ---------------------

def test_remote_action_reads_the_module_timeout_at_call_time() -> None:
    assert isinstance(rasa_action.DEFAULT_REQUEST_TIMEOUT, (int, float))
    source = inspect.getsource(RemoteAction.run)
    assert "timeout=DEFAULT_REQUEST_TIMEOUT" in source, "RemoteAction.run no longer reads DEFAULT_REQUEST_TIMEOUT"


# --- action_validation.py: one method validates every action server reply --------------------------

def test_remote_action_validates_replies_through_one_method() -> None:
    assert parameters(RemoteAction._validate_action_result) == ["self", "result"]
    assert "self._validate_action_result(" in inspect.getsource(RemoteAction.run)
    assert isinstance(RemoteAction.action_response_format_spec(), dict)


# --- event_types.py: events are deserialised through Event.resolve_by_type ------------------------

def test_events_are_resolved_by_type_name() -> None:
    assert parameters(Event.resolve_by_type) == ["type_name", "default"]
    assert isinstance(inspect.getattr_static(Event, "resolve_by_type"), staticmethod)
    assert "Event.resolve_by_type(" in inspect.getsource(Event.from_parameters)


# --- tracker_store.py: the query, the session scope and the table of SQLTrackerStore ---------------

def test_sql_tracker_store_internals_are_where_the_cached_store_expects_them() -> None:
    assert parameters(SQLTrackerStore._event_query) == ["self", "session", "sender_id",
                                                        "fetch_events_from_all_sessions"]
    assert parameters(SQLTrackerStore.session_scope) == ["self"]
    assert parameters(SQLTrackerStore.stream_events) == ["self", "tracker"]
    columns = {c.name for c in SQLTrackerStore.SQLEvent.__table__.columns}
    assert columns == {"id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data"}
    assert SQLTrackerStore.SQLEvent.__tablename__ == "events"


# --- lock_store.py: the ticket logic of LockStore ---------------------------------------------------

def test_lock_store_waits_through_acquire_lock() -> None:
    from rasa.core.agent import Agent

    assert parameters(LockStore._acquire_lock) == ["self", "conversation_id", "ticket", "wait_time_in_seconds"]
    assert "lock_store.lock(" in inspect.getsource(Agent.handle_message)  # our lock() is what Rasa enters
    for name, expected in [("issue_ticket", ["self", "conversation_id", "lock_lifetime"]),
                           ("update_lock", ["self", "conversation_id"]),
                           ("finish_serving", ["self", "conversation_id", "ticket_number"]),
                           ("cleanup", ["self", "conversation_id", "ticket_number"]),
                           ("create_lock", ["conversation_id"])]:
        assert parameters(getattr(LockStore, name)) == expected, name
    lock = TicketLock("c")
    lock.issue_ticket(5)
    assert TicketLock.from_dict(json.loads(lock.dumps())).tickets[0].expires == lock.tickets[0].expires
    lock.tickets[0].expires = 1.0  # renew() moves a ticket's expiry by assignment
    assert lock.tickets[0].has_expired()
    assert hasattr(lock, "remove_expired_tickets") and hasattr(lock, "remove_ticket_for")


# --- turns.py: the message path, the memory fallback, message ids ----------------------------------------

def test_the_message_path_is_where_turns_expects_it() -> None:
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import BotUttered, UserUttered

    assert parameters(MessageProcessor.handle_message) == ["self", "message"]
    assert parameters(MessageProcessor._run_prediction_loop) == ["self", "output_channel", "tracker"]
    source = inspect.getsource(MessageProcessor.handle_message)
    loop, save = source.index("self._run_prediction_loop("), source.rindex("self.save_tracker(tracker)")
    assert loop < save, "the fallback reply must be added before Rasa saves the turn"
    assert isinstance(inspect.getattr_static(Agent, "_create_tracker_store"), staticmethod)
    assert isinstance(Agent._create_tracker_store(InMemoryTrackerStore(Domain.empty()), Domain.empty()),
                      FailSafeTrackerStore)  # what turns.py replaces
    assert UserMessage("hi", message_id="abc12345").message_id == "abc12345"
    assert UserUttered("hi", message_id="m1").as_dict()["message_id"] == "m1"
    assert BotUttered("hello", metadata={"clinic": {"kind": "answer"}}).message()["clinic"] == {"kind": "answer"}


# --- action_connection.py: every call to an endpoint enters `self.session()`; shutdown closes resources -------

def test_endpoint_calls_go_through_one_session_method() -> None:
    import rasa.core.run as rasa_run
    from rasa.utils.endpoints import EndpointConfig

    assert parameters(EndpointConfig.session) == ["self"]
    assert "async with self.session() as session:" in inspect.getsource(EndpointConfig.request)
    assert 'register_listener(close_resources, "after_server_stop")' in inspect.getsource(
        rasa_run.serve_application), "Rasa no longer closes its resources through close_resources"
    assert parameters(rasa_run.close_resources) == ["app", "_"]


# --- launcher.py: Rasa's own command line ------------------------------------------------------------

def test_rasa_has_a_main_to_hand_over_to() -> None:
    from rasa.__main__ import main

    assert parameters(main) == []


# --- no import changes Rasa; install() does ----------------------------------------------------------

CHECK = textwrap.dedent("""
    import rasa.core.actions.action as a
    from rasa.shared.core.events import Event
    from rasa.core.actions.action import RemoteAction
    from rasa.utils.endpoints import EndpointConfig
    before = (a.DEFAULT_REQUEST_TIMEOUT, RemoteAction._validate_action_result, Event.__dict__["resolve_by_type"],
              EndpointConfig.session)
    {imports}
    after = (a.DEFAULT_REQUEST_TIMEOUT, RemoteAction._validate_action_result, Event.__dict__["resolve_by_type"],
             EndpointConfig.session)
    print([x is y for x, y in zip(before, after)], a.DEFAULT_REQUEST_TIMEOUT)
""")


def in_a_fresh_process(imports: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", CHECK.format(imports=imports)], cwd=PROJECT, capture_output=True,
                          text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_importing_our_code_changes_nothing_in_rasa() -> None:
    imports = ("import channels.rest, channels.web, channels.telegram, actions.answer, clinic.replies, "
               "rasa_extensions, rasa_extensions.tracker_store, rasa_extensions.lock_store, rasa_extensions.turns, "
               "rasa_extensions.launcher, rasa_extensions.action_server, rasa_extensions.action_connection, "
               "ops.endpoints, ops.supervise")
    assert in_a_fresh_process(imports) == "[True, True, True, True] 300"


def test_install_applies_each_change_once() -> None:
    imports = "import rasa_extensions; rasa_extensions.install(); rasa_extensions.install()"
    assert in_a_fresh_process(imports, ACTION_TIMEOUT_S="2.5") == "[False, False, False, False] 2.5"


# --- action_server.py: the Rasa SDK's app ----------------------------------------------------------------------

def test_the_sdk_app_is_built_as_action_server_expects() -> None:
    from rasa_sdk.endpoint import create_app

    from rasa_extensions.version import SUPPORTED_RASA_SDK, check_rasa_sdk_version

    assert check_rasa_sdk_version() in SUPPORTED_RASA_SDK
    assert parameters(create_app)[:2] == ["action_package_name", "cors_origins"]
    assert '"request_body"' in inspect.getsource(create_app)  # the echo action_server.py replaces
