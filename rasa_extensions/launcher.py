"""The `rasa` command with our extensions installed and a faster start.

    python -m rasa_extensions.launcher run --model models ...   (any `rasa` arguments)

It does two things before handing over to Rasa's own command line:
- installs the extensions (rasa_extensions.install(): version check, action
  timeout, validator built once, event table), explicitly, in this process only;
- imports skops before Rasa. Our NLU pipeline's LogisticRegressionClassifier
  stores its model with skops, which on import looks up the module of every numpy
  and scipy ufunc by scanning all of sys.modules. Imported by Rasa after
  TensorFlow (about 5,600 modules) the scan took 5-13 s of every start
  (docs/benchmarks.md); imported first, well under a second.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    # Health-related conversations: Rasa's usage telemetry stays off unless a clinic turns it on.
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    import skops.io  # noqa: F401 - before Rasa pulls in TensorFlow: see above
    from rasa.__main__ import main as rasa_main

    from clinic.settings import ConfigError
    from rasa_extensions import install
    from rasa_extensions.version import UnsupportedRasaVersion

    try:
        applied = install()
    except (ConfigError, UnsupportedRasaVersion) as exc:
        print(f"Cannot start Rasa: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Rasa configures logging itself once its command line runs; say what changed where the user looks.
    logging.getLogger(__name__).debug("applied: %s", applied)
    print(f"Rasa extensions installed: {'; '.join(applied)}", file=sys.stderr)
    rasa_main()


if __name__ == "__main__":
    main()
