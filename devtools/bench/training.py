"""Cold training time: `rasa train` as a subprocess with a fresh output folder and training cache.

A subprocess, so the figure includes what a developer waits for (Rasa's imports and start-up), and
cold, so neither configuration profits from the other's or an earlier run's cached components.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Tuple

from devtools.bench.configs import SUBPROCESS_ENV
from devtools.harness.servers import BIN, PROJECT

TRAIN_TIMEOUT_S = 1800  # the baseline needed ~15 min at load average 6 on 2 cores


def train(name: str, config: Path, out_dir: Path) -> Tuple[Path, float]:
    """Cold `rasa train`: fresh output folder and fresh training cache; wall time of the subprocess."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix=f"bench-cache-{name}-"))
    env = {**os.environ, **SUBPROCESS_ENV, "RASA_CACHE_DIRECTORY": str(cache)}
    log = out_dir / f"train-{name}.log"
    args = [str(BIN / "rasa"), "train", "--config", str(config), "--out", str(out_dir), "--fixed-model-name", name]
    start = time.perf_counter()
    try:
        with log.open("wb") as out:
            done = subprocess.run(args, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=TRAIN_TIMEOUT_S, check=False)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    seconds = time.perf_counter() - start
    model = out_dir / f"{name}.tar.gz"
    if done.returncode != 0 or not model.exists():
        raise RuntimeError(f"rasa train --config {config} failed:\n{log.read_text(errors='replace')[-3000:]}")
    return model, seconds
