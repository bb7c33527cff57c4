"""Trains the model only when what it is trained from changed, and keeps only the newest few.

`rasa train` packages a new model file at every call, even when its cache
makes the training itself instant: `make run` started 22 times left 22 models
of ~20 MB each. Here the training inputs (config, domain, NLU data, rules, the
Rasa version, the reviewer's accepted examples) are hashed; the same hash as
the newest stamped model's means no training, and only the newest KEEP models
stay (pruned on every run, trained or not).

    python -m ops.models            # train if needed, then prune
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Mapping, Optional

from clinic.settings import PROJECT_DIR

MODELS = PROJECT_DIR / "models"
KEEP = 3
# What `rasa train` reads (its default --data is data/) that changes a model. The reviewer's accepted
# examples (console/proposals.py) are added by accepted_examples(): REVIEW_DIR may be set elsewhere.
INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules.yml", "data/stories")
DEFAULT_REVIEW_DIR = Path("data/review")


def accepted_examples(root: Path = PROJECT_DIR, env: Optional[Mapping[str, str]] = None) -> Path:
    """REVIEW_DIR/accepted.yml, where accepting a proposal writes its examples (relative to `root`).

    Why: accepting a proposal must change the fingerprint, or `make train` says the model is up
    to date and the accepted examples never reach a model.
    """
    from console.proposals import ACCEPTED

    raw = (os.environ if env is None else env).get("REVIEW_DIR", "").strip()
    review = Path(raw) if raw else DEFAULT_REVIEW_DIR
    return (review if review.is_absolute() else root / review) / ACCEPTED


def input_files(root: Path = PROJECT_DIR, env: Optional[Mapping[str, str]] = None) -> List[Path]:
    files: List[Path] = []
    for path in [root / name for name in INPUTS] + [accepted_examples(root, env)]:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.yml") if p.is_file())
        elif path.is_file():
            files.append(path)
    return files


def training_data(root: Path = PROJECT_DIR, env: Optional[Mapping[str, str]] = None) -> List[str]:
    """`rasa train --data` arguments: data/, plus the accepted examples when REVIEW_DIR is outside it."""
    accepted = accepted_examples(root, env)
    inside = accepted.resolve().is_relative_to((root / "data").resolve())
    return ["data"] + ([] if inside or not accepted.is_file() else [str(accepted)])


def fingerprint(files: Iterable[Path], root: Path = PROJECT_DIR) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256(f"rasa {version('rasa')}\n".encode())
    for path in files:
        name = path.relative_to(root) if path.is_relative_to(root) else path
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def by_age(models: Path) -> List[Path]:
    """Model files, oldest first (Rasa serves the newest)."""
    return sorted(models.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)


def newest_model(models: Path = MODELS) -> Optional[Path]:
    found = by_age(models)
    return found[-1] if found else None


def stamp_of(model: Path) -> Path:
    return model.with_name(model.name + ".inputs")


def newest_stamped(models: Path = MODELS) -> Optional[Path]:
    """The newest model this module trained (it has a .inputs stamp).

    Why: a model from plain `rasa train` has no stamp, so nothing says what it was trained
    from; taking it for the newest made every later run retrain, forever.
    """
    stamped = [model for model in by_age(models) if stamp_of(model).is_file()]
    return stamped[-1] if stamped else None


def prune(models: Path = MODELS, keep: int = KEEP) -> List[Path]:
    """Deletes all but the newest `keep` models (and their stamps); returns what was deleted."""
    found = by_age(models)
    doomed = found[:-keep] if keep > 0 else found
    for model in doomed:
        model.unlink()
        stamp_of(model).unlink(missing_ok=True)
    return doomed


def up_to_date(models: Path = MODELS, root: Path = PROJECT_DIR, env: Optional[Mapping[str, str]] = None) -> bool:
    """True when the newest stamped model was trained from the inputs as they are now."""
    model = newest_stamped(models)
    return model is not None and stamp_of(model).read_text().strip() == fingerprint(input_files(root, env), root)


def pruned_note(removed: List[Path], keep: int = KEEP) -> str:
    return f" (removed {len(removed)} older model(s), keeping the newest {keep})" if removed else ""


def train(models: Path = MODELS, quiet: bool = True) -> int:
    """Trains when the inputs changed; prunes to the newest KEEP models either way (a model from
    plain `rasa train`, devtools/eval's before, piled up while nothing needed training)."""
    if up_to_date(models):
        removed = prune(models)
        print(f"Model up to date ({newest_stamped(models).name}); no training needed"  # type: ignore[union-attr]
              f"{pruned_note(removed)}.")
        return 0
    print("Training the model (about a minute on 2 cores) ...", flush=True)
    expected = fingerprint(input_files())
    command = [str(Path(sys.executable).parent / "rasa"), "train", "--out", str(models),
               "--data", *training_data()]
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
    print(f"Model trained: {model.name if model else '?'}{pruned_note(removed)}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show Rasa's training output")
    args = parser.parse_args(argv)
    return train(quiet=not args.verbose)


if __name__ == "__main__":
    sys.exit(main())
