"""The folder tree is the architecture: these tests keep each part to what its folder says.

- clinic/ is the product core, imported by both processes: no Rasa, no Rasa SDK, no web server;
- actions/ (the action server) and channels/ (the Rasa server) never import each other;
- production code never imports developer tools or tests.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Set, Tuple

import pytest

from devtools.harness.servers import PROJECT

PRODUCTION = ("clinic", "actions", "channels", "rasa_extensions", "console", "ops")


def imports(folder: str) -> Iterator[Tuple[Path, str]]:
    for path in sorted((PROJECT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module.split(".")[0]


def offenders(folder: str, forbidden: Set[str]) -> list:
    return [f"{path.relative_to(PROJECT)} imports {top}" for path, top in imports(folder) if top in forbidden]


def test_the_core_has_no_rasa_imports() -> None:
    assert offenders("clinic", {"rasa", "rasa_sdk", "sanic", "actions", "channels", "rasa_extensions"}) == []


@pytest.mark.parametrize("folder, forbidden", [
    ("actions", {"channels", "rasa_extensions", "rasa"}),
    ("channels", {"actions"}),
    ("console", {"rasa", "rasa_sdk", "actions", "channels", "rasa_extensions"}),  # reads the store, not Rasa
])
def test_the_two_processes_share_only_the_core(folder: str, forbidden: Set[str]) -> None:
    assert offenders(folder, forbidden) == []


@pytest.mark.parametrize("folder", PRODUCTION)
def test_production_code_never_imports_tools_or_tests(folder: str) -> None:
    assert offenders(folder, {"devtools", "tests"}) == []


def test_every_package_says_what_it_holds() -> None:
    for folder in (*PRODUCTION, "devtools", "devtools/harness", "devtools/bench", "channels/telegram"):
        init = PROJECT / folder / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), f"{folder}/__init__.py docstring"
