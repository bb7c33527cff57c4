"""Shared fixtures: the real fact store, editable copies of it, and the running servers."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from clinic.fact_store import DEFAULT_FACTS_DIR, DEFAULT_SETTINGS, FactStore, Snapshot, domain_intents
from devtools.harness.servers import Stack, private_fact_store


@pytest.fixture(scope="session")
def intents() -> list:
    return domain_intents()


@pytest.fixture(scope="session")
def snapshot(intents: list) -> Snapshot:
    return FactStore(DEFAULT_FACTS_DIR, DEFAULT_SETTINGS, intents).current()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A private copy of data/facts and data/clinic.yml that a test may edit or break."""
    private_fact_store(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The real action server and Rasa server with the latest trained model.

    They serve a private copy of the fact store (FACTS_DIR, CLINIC_SETTINGS), so
    tests can edit answers while the servers run, as clinic staff would.
    """
    workdir = tmp_path_factory.mktemp("stack")
    running = Stack(workdir, env=private_fact_store(workdir))
    try:
        yield running.start()
    finally:
        running.stop()
