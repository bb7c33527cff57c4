"""Trains the model only when what it is trained from changed, and keeps only the newest few.

`rasa train` packages a new model file at every call, even when its cache
makes the training itself instant: `make run` started 22 times left 22 models
of ~20 MB each. Here the training inputs (config, domain, NLU data, rules, the
Rasa version) are hashed; the same hash as the newest model's means no
training, and after a training only the newest KEEP models stay.

    python -m ops.models            # train if needed, then prune
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

from clinic.settings import PROJECT_DIR

MODELS = PROJECT_DIR / "models"
KEEP = 3
INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules.yml", "data/stories", "data/review/accepted")


def input_files(root: Path = PROJECT_DIR) -> List[Path]:
    files: List[Path] = []
    for name in INPUTS:
        path = root / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.yml") if p.is_file())
        elif path.is_file():
            files.append(path)
    return files


def fingerprint(files: Iterable[Path], root: Path = PROJECT_DIR) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256(f"rasa {version('rasa')}\n".encode())
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def newest_model(models: Path = MODELS) -> Optional[Path]:
    found = sorted(models.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def stamp_of(model: Path) -> Path:
    return model.with_name(model.name + ".inputs")


def prune(models: Path = MODELS, keep: int = KEEP) -> List[Path]:
    """Deletes all but the newest `keep` models (and their stamps); returns what was deleted."""
    found = sorted(models.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    doomed = found[:-keep] if keep > 0 else found
    for model in doomed:
        model.unlink()
        stamp_of(model).unlink(missing_ok=True)
    return doomed


def up_to_date(models: Path = MODELS) -> bool:
    model = newest_model(models)
    return model is not None and stamp_of(model).exists() and \
        stamp_of(model).read_text().strip() == fingerprint(input_files())


def train(models: Path = MODELS, quiet: bool = True) -> int:
    if up_to_date(models):
        print(f"Model up to date ({newest_model(models).name}); no training needed.")  # type: ignore[union-attr]
        return 0
    print("Training the model (about a minute on 2 cores) ...", flush=True)
    expected = fingerprint(input_files())
    command = [str(Path(sys.executable).parent / "rasa"), "train", "--out", str(models)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    if not quiet:
        done = subprocess.run(command, cwd=PROJECT_DIR, env=env)
    else:  # Rasa's and its dependencies' warnings go to a log, not to the person waiting
        models.mkdir(parents=True, exist_ok=True)
        log = models / "train.log"
        with log.open("wb") as handle:
            done = subprocess.run([*command, "--quiet"], cwd=PROJECT_DIR, env=env, stdout=handle,
                                  stderr=subprocess.STDOUT)
        if done.returncode != 0:
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            print(f"Training failed (exit code {done.returncode}); the whole output is in {log}", file=sys.stderr)
    if done.returncode != 0:
        return done.returncode
    model = newest_model(models)
    if model is not None:
        stamp_of(model).write_text(expected + "\n")
    removed = prune(models)
    print(f"Model trained: {model.name if model else '?'}" +
          (f" (removed {len(removed)} older model(s), keeping the newest {KEEP})" if removed else ""))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show Rasa's training output")
    args = parser.parse_args(argv)
    return train(quiet=not args.verbose)


if __name__ == "__main__":
    sys.exit(main())
