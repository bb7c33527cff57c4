"""The action server (Rasa SDK), started safe for a network.

    python -m rasa_extensions.action_server [--port 5055]

As shipped, `rasa run actions` listens on every interface, answers anyone,
allows every CORS origin, and when an action fails it answers 500 with the
whole request echoed back (the patient's conversation), which Rasa then logs.
Here, the same Rasa SDK app:
- listens on ACTIONS_HOST, 127.0.0.1 by default (the Rasa server is its only client);
- requires `Authorization: Bearer <ACTION_SERVER_TOKEN>` on every call when a
  token is set (required by clinic/settings.py when ACTIONS_HOST is not loopback;
  ops/endpoints.py makes Rasa send it);
- answers a failure with a short error and no request body, and logs without
  patients' words (clinic/private_logs.py);
- serves no CORS headers (no browser should call it).
The SDK version is checked like Rasa's (rasa_extensions/version.py), and
tests/test_rasa_contracts.py pins the SDK internals relied on.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from typing import Any, List, Optional

from clinic import private_logs
from clinic.settings import ConfigError, Settings
from clinic.settings import current as current_settings
from rasa_extensions.version import check_rasa_sdk_version

logger = logging.getLogger(__name__)
ACTIONS_PACKAGE = "actions"
OPEN_PATHS = ("/health",)


def create_app(settings: Settings) -> Any:
    """The Rasa SDK's Sanic app for our actions, with the protections above."""
    check_rasa_sdk_version()
    from rasa_sdk.endpoint import create_app as sdk_app
    from sanic import response
    from sanic.exceptions import SanicException

    app = sdk_app(ACTIONS_PACKAGE, cors_origins="")
    expected = f"Bearer {settings.action_server_token}".encode()

    @app.middleware("request")
    async def require_token(request: Any) -> Any:
        if not settings.action_server_token or request.path in OPEN_PATHS:
            return None
        if hmac.compare_digest((request.headers.get("authorization") or "").encode(), expected):
            return None
        return response.json({"error": "A valid Authorization header is required."}, status=401)

    async def short_error(request: Any, exception: Exception) -> Any:
        if isinstance(exception, SanicException):
            return response.json({"error": str(exception)}, status=getattr(exception, "status_code", 500))
        logger.error("Action call failed", exc_info=exception)
        return response.json({"error": "The action failed; see the action server's log."}, status=500)

    app.error_handler.add(Exception, short_error)  # replaces the SDK's handler, which echoes the request
    return app


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="default: ACTIONS_PORT (5055)")
    args = parser.parse_args(argv)
    os.umask(0o077)  # every file this process creates (conversations, logs, keys) is owner-only
    try:
        settings = current_settings()
    except ConfigError as exc:
        print(f"Cannot start the action server: {exc}", file=sys.stderr)
        return 2
    private_logs.install(settings.log_level)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)-8s %(name)s  - %(message)s")
    logging.getLogger("sanic.access").setLevel(logging.WARNING)
    port = args.port or settings.actions_port
    app = create_app(settings)
    logger.info("Action server on http://%s:%d%s", settings.actions_host, port,
                " (token required)" if settings.action_server_token else "")
    app.run(host=settings.actions_host, port=port, workers=1, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
