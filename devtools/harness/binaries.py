"""Finds the programs the tests start for real (PostgreSQL, Chromium), wherever the system put them.

Debian and Ubuntu install PostgreSQL under /usr/lib/postgresql/<version>/bin,
Red Hat under /usr/pgsql-<version>/bin, Homebrew under its prefix; Chromium is
`chromium` on Debian, `chromium-browser` on older Ubuntu, or Google Chrome.
PG_BIN and CHROMIUM_PATH override the search (developer settings, not the product's).
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional

POSTGRES_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin",
                  "/opt/homebrew/opt/postgresql*/bin", "/usr/local/opt/postgresql*/bin")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
CHROMIUM_PATHS = ("/usr/bin/chromium", "/snap/bin/chromium",
                  "/Applications/Chromium.app/Contents/MacOS/Chromium",
                  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")


def _version_key(path: Path) -> List[int]:
    return [int(n) for n in re.findall(r"\d+", str(path))] or [0]


def postgres_bin_candidates() -> Iterable[Path]:
    override = os.environ.get("PG_BIN")
    if override:
        yield Path(override)
        return
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(initdb).parent
    for pattern in POSTGRES_GLOBS:
        root = Path("/")
        yield from sorted(root.glob(pattern.lstrip("/")), key=_version_key, reverse=True)  # newest first


def postgres_bin() -> Path:
    """The folder holding initdb and pg_ctl; raises with what to install when there is none."""
    for folder in postgres_bin_candidates():
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError("PostgreSQL's initdb/pg_ctl not found (looked in PATH and "
                       f"{', '.join(POSTGRES_GLOBS)}): run devtools/system_deps.sh, or set PG_BIN")


def chromium() -> Optional[str]:
    """A Chromium or Chrome executable for Playwright, or None."""
    override = os.environ.get("CHROMIUM_PATH")
    if override:
        return override if Path(override).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in CHROMIUM_PATHS if Path(p).exists()), None)


# Headless, and quiet: without the background-networking flags Chromium keeps calling out (refused here).
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, closed afterwards; fails (not skips) when there is none."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise RuntimeError("No Chromium found: run devtools/system_deps.sh, or set CHROMIUM_PATH")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
