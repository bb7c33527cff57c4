"""ops/models.py: what decides a retraining, and how many model files stay (on a temporary folder, no training)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest

from ops import models


def project(root: Path) -> Path:
    """A minimal project: the files `rasa train` reads, and a reviewer's accepted examples."""
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "data" / "review").mkdir()
    (root / "config.yml").write_text("language: en\n")
    (root / "domain.yml").write_text("version: '3.1'\n")
    (root / "data" / "nlu" / "faq.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    (root / "data" / "rules.yml").write_text("rules: []\n")
    (root / "data" / "review" / "accepted.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hey\n")
    return root


def make_models(folder: Path, count: int, stamp: str = "") -> List[Path]:
    """`count` model files, oldest first (a minute apart), each stamped with `stamp` when given."""
    folder.mkdir(exist_ok=True)
    made = []
    for n in range(count):
        model = folder / f"2026113{n}-000000-model-{n}.tar.gz"
        model.write_bytes(b"model")
        os.utime(model, (1_800_000_000 + 60 * n,) * 2)
        if stamp:
            models.stamp_of(model).write_text(stamp + "\n")
        made.append(model)
    return made


def test_accepting_a_proposal_changes_the_fingerprint(tmp_path: Path) -> None:
    root = project(tmp_path)
    accepted = root / "data" / "review" / "accepted.yml"
    assert accepted in models.input_files(root, env={})
    before = models.fingerprint(models.input_files(root, env={}), root)
    accepted.write_text(accepted.read_text() + "    - hello there\n")
    assert models.fingerprint(models.input_files(root, env={}), root) != before


def test_a_review_dir_elsewhere_is_fingerprinted_and_trained_on(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    elsewhere = tmp_path / "review"
    elsewhere.mkdir()
    (elsewhere / "accepted.yml").write_text("nlu: []\n")
    env = {"REVIEW_DIR": str(elsewhere)}
    assert elsewhere / "accepted.yml" in models.input_files(root, env)
    assert models.training_data(root, env) == ["data", str(elsewhere / "accepted.yml")]
    assert models.training_data(root, {}) == ["data"]  # data/review is inside data/: rasa reads it anyway


def test_prune_keeps_the_newest_three_and_their_stamps(tmp_path: Path) -> None:
    made = make_models(tmp_path / "models", 5, stamp="abc")
    removed = models.prune(tmp_path / "models")
    assert removed == made[:2]
    assert sorted((tmp_path / "models").iterdir()) == sorted(made[2:] + [models.stamp_of(m) for m in made[2:]])


def test_an_unstamped_newer_model_does_not_force_retraining(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    folder = tmp_path / "models"
    current = models.fingerprint(models.input_files(root, env={}), root)
    stamped = make_models(folder, 1, stamp=current)[0]
    unstamped = folder / "20261201-000000-plain-rasa-train.tar.gz"  # `rasa train` writes no stamp
    unstamped.write_bytes(b"model")
    os.utime(unstamped, (1_900_000_000,) * 2)
    assert models.newest_model(folder) == unstamped
    assert models.newest_stamped(folder) == stamped
    assert models.up_to_date(folder, root, env={})
    (root / "data" / "nlu" / "faq.yml").write_text("nlu: []\n")  # the data changed: now it must train
    assert not models.up_to_date(folder, root, env={})


def test_an_up_to_date_run_prunes_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make run` with nothing to train must still drop old models (22 piled up in an afternoon)."""
    folder = tmp_path / "models"
    current = models.fingerprint(models.input_files())  # the project's own inputs: train() reads those
    made = make_models(folder, 5, stamp=current)
    assert models.train(folder) == 0
    assert "no training needed" in capsys.readouterr().out
    assert models.by_age(folder) == made[2:]
