"""The two configurations the benchmark compares, and the environment their Rasa subprocesses run in.

Both are trained on the same data (data/, domain.yml) and served the same way; the baseline is the
configuration `rasa init` writes, so the comparison is with Rasa as a new project gets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from devtools.harness.servers import PROJECT

OURS, BASE = "ours", "baseline"
CONFIGS: Dict[str, Path] = {OURS: PROJECT / "config.yml",
                            BASE: PROJECT / "devtools" / "pipelines" / "rasa_init_default.yml"}

SUBPROCESS_ENV: Dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    # Rasa's training cache off, so `rasa train` is cold. Every earlier run had it: the bench used to import
    # devtools/compare_pipelines.py, which set it in the bench's own environment; kept so figures compare.
    "RASA_MAX_CACHE_SIZE": "0",
}
