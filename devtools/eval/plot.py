"""The confusion matrix of the clinic questions, dev and locked side by side (docs/images/confusion.png)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from devtools.eval.run import Outcome
from devtools.eval.score import QUESTION_SETS, label

EXTRA_COLUMNS = ["clarify", "handoff", "error"]


def write_confusion(outcomes: Sequence[Outcome], intents: Sequence[str], path: Path) -> None:
    """Rows: the intent asked; columns: what the reply answered (or did instead); each row sums to 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    splits = [s for s in ("dev", "locked") if any(o.example.split == s for o in outcomes)]
    columns: List[str] = [*intents, *EXTRA_COLUMNS]
    fig, axes = plt.subplots(1, len(splits), figsize=(9 * len(splits), 9), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        chosen = [o for o in outcomes if o.example.split == split and o.example.set in QUESTION_SETS]
        counts = np.zeros((len(intents), len(columns)))
        for o in chosen:
            row = intents.index(o.example.intent) if o.example.intent in intents else None
            predicted = label(o)
            col = columns.index(predicted) if predicted in columns else columns.index("error")
            if row is not None:
                counts[row, col] += 1
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
        ax.set_yticks(range(len(intents)), intents, fontsize=7)
        for r, c in zip(*np.nonzero(counts), strict=True):
            ax.text(c, r, int(counts[r, c]), ha="center", va="center", fontsize=6,
                    color="white" if share[r, c] > 0.5 else "black")
        name = "dev (tuned on)" if split == "dev" else "locked (held out)"
        ax.set_title(f"Clinic questions, {name}: {len(chosen)} messages")
        ax.set_xlabel("what the reply answered")
        ax.set_ylabel("intent asked")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
