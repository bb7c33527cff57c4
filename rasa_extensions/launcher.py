"""The `rasa` command with our extensions installed and a faster start.

    python -m rasa_extensions.launcher run --model models ...   (any `rasa` arguments)

It does three things before handing over to Rasa's own command line:
- installs the extensions (rasa_extensions.install(): version check, action
  timeout, validator built once, event table), explicitly, in this process only;
- keeps patients' words out of the logs (clinic/private_logs.py), turns Rasa's
  usage telemetry off unless a clinic turned it on, and bounds every request
  (Sanic reads SANIC_* variables: body size, time to send it, time to answer);
- imports skops before Rasa. Our NLU pipeline's LogisticRegressionClassifier
  stores its model with skops, which on import looks up the module of every numpy
  and scipy ufunc by scanning all of sys.modules. Imported by Rasa after
  TensorFlow (about 5,600 modules) the scan took 5-13 s of every start
  (docs/benchmarks.md); imported first, well under a second.
"""

from __future__ import annotations

import os
import sys

# Sanic's own limits for the Rasa server: no request may hold a worker for long or fill its memory.
SANIC_LIMITS = {
    "SANIC_REQUEST_MAX_SIZE": str(1024 * 1024),  # far above any valid request (channels/rest.py: body_limit)
    "SANIC_REQUEST_TIMEOUT": "15",  # seconds for a client to send its request
    "SANIC_RESPONSE_TIMEOUT": "60",  # seconds to answer, above ACTION_TIMEOUT_S
}


def prepare_process() -> None:
    """What the Rasa process must be like before Rasa starts: private, quiet, bounded."""
    # Health-related conversations: Rasa's usage telemetry stays off unless a clinic turns it on.
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.umask(0o077)  # every file this process creates (conversations, logs, keys) is owner-only
    for name, value in SANIC_LIMITS.items():
        os.environ.setdefault(name, value)


def main() -> None:
    prepare_process()
    import skops.io  # noqa: F401 - before Rasa pulls in TensorFlow: see above
    from rasa.__main__ import main as rasa_main

    from clinic import private_logs
    from clinic.settings import ConfigError
    from clinic.settings import current as current_settings
    from rasa_extensions import install
    from rasa_extensions.version import UnsupportedRasaVersion

    try:
        private_logs.install(current_settings().log_level)
        applied = install()
    except (ConfigError, UnsupportedRasaVersion) as exc:
        print(f"Cannot start Rasa: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Rasa configures logging itself once its command line runs; say what changed where the user looks.
    print(f"Rasa extensions installed: {'; '.join(applied)}", file=sys.stderr)
    rasa_main()


if __name__ == "__main__":
    main()
