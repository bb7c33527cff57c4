"""`python -m console`: start the staff console; `python -m console hash-password`: make a STAFF_ACCOUNTS entry.

Off unless STAFF_PASSWORD or STAFF_ACCOUNTS is set: without them it says how to turn it
on and exits. Listens on CONSOLE_HOST:CONSOLE_PORT (127.0.0.1:5010 by default).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import List, Optional

from clinic.settings import ConfigError, Settings

OFF = """The staff console is off: no one could sign in to it.
Turn it on with a password for the clinic's staff (at least 12 characters), then start it again:
    STAFF_PASSWORD='a long passphrase' make run
or named accounts, one per staff member (each line printed by `python -m console hash-password`):
    STAFF_ACCOUNTS='anna:$argon2id$... ben:$argon2id$...' make run
See docs/console.md."""


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hash-password"]:
        from console.auth import hash_password_command

        return hash_password_command()
    if args:
        print("usage: python -m console [hash-password]", file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s  %(message)s"))
    ours = logging.getLogger("console")  # Sanic configures its own loggers; ours go beside them, once
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    ours.propagate = False
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    if not settings.console_enabled:
        print(OFF, file=sys.stderr)
        return 1
    from console.app import create_app

    app = create_app(settings)
    started = time.monotonic()
    ready = app.ctx.console.db.ready()  # migrations (indexes) before the first page, not during it
    logging.getLogger("console").info(
        "Conversation store %s (%.1f s)", "ready" if ready else "empty so far: Rasa creates it with the first "
        "conversation", time.monotonic() - started)
    print(f"Staff console: http://{settings.console_host}:{settings.console_port}/ (sign in with "
          f"{'a STAFF_ACCOUNTS name' if settings.staff_accounts else 'STAFF_PASSWORD'})", flush=True)
    app.run(host=settings.console_host, port=settings.console_port, access_log=False, debug=False, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
