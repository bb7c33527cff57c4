"""The benchmark's chart (docs/images/benchmarks.png): the headline figures as one bar pair each.

Drawn from the same rows as the table in docs/benchmarks.md, with each pair's ratio and whether it
meets its target in the panel's title, so the page shows at a glance what the table details.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

from devtools.bench.report import CHART, comparison, fmt


def write_chart(report: Dict[str, Any], chart: Path = CHART) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["key"]: r for r in comparison(report["results"])}
    panels = [k for k in ("train_s", "startup_s", "nlu_p50_ms", "e2e1_p50_ms", "e2e10_p99_ms", "e2e10_mps",
                          "rss_rasa_mb", "macro_f1") if k in rows]
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(panels) / cols), cols, figsize=(13, 6.2))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, panels, strict=False):
        row = rows[key]
        bars = ax.bar(["ours", "baseline"], [row["ours"], row["baseline"]], color=["#2a9d8f", "#b0b0b0"])
        for bar, value in zip(bars, (row["ours"], row["baseline"]), strict=True):
            ax.annotate(fmt(value, row["unit"]), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9)
        verdict = "" if row["met"] is None else (" ✓" if row["met"] else " ✗")
        ax.set_title(f"{row['label']}\n{row['ratio']:.2f}×{verdict}", fontsize=9)
        ax.margins(y=0.18)
        ax.tick_params(labelsize=8)
    info = report["machine"]
    fig.suptitle(f"Ours (config.yml) vs rasa init baseline — {report['date']}, {info['cores']} cores, "
                 f"load avg {report['load_average']['mean']}", fontsize=11)
    fig.tight_layout()
    chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(chart, dpi=100)
    plt.close(fig)


