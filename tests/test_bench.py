"""Smoke test of `make bench` (devtools/bench/): its measuring functions, with tiny counts.

Runs against the session's running stack, so a broken bench shows up in `make test`
without the 15 minutes of the real benchmark. The in-process NLU measurement is left
out (loading a second model costs more than this whole test); tests/test_nlu_quality.py
covers the same parse path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devtools.bench import chart, machine, report, serving
from devtools.bench.configs import BASE, OURS
from devtools.harness.servers import Stack, new_sender


@pytest.mark.servers
def test_bench_measures_the_running_stack_and_writes_its_report(stack: Stack, tmp_path: Path) -> None:
    texts = serving.load_messages()
    assert len(texts) > 100
    assert serving.first_answer(stack, timeout=30) < 30
    prefix = new_sender("bench-smoke")
    one = asyncio.run(serving.run_load(stack, texts, clients=1, messages=3, time_cap_s=30, sender_prefix=prefix))
    many = asyncio.run(serving.run_load(stack, texts, clients=3, messages=6, time_cap_s=30, sender_prefix=prefix))
    assert (len(one["latencies_ms"]), one["errors"]) == (3, [])
    assert (len(many["latencies_ms"]), many["errors"]) == (6, [])
    memory = serving.memory_mb(stack)
    assert memory["rasa_mb"] > 100 and memory["actions_mb"] > 20  # a whole process tree, not a stub

    servers = {"startup": {"actions_s": 1.0, "rasa_to_first_answer_s": 2.0, "stack_to_first_answer_s": 3.0},
               "memory_warm": memory, "memory_after_load": memory,
               "load": {"1": serving.load_summary([one, one]), "10": serving.load_summary([many])}}
    nlu = {"p50_ms": 5.0, "p95_ms": 9.0, "accuracy": 0.9, "macro_f1": 0.9, "messages": 3}
    result = {"train_s": 10.0, "nlu": nlu, "servers": servers}
    bench_report = {"date": "today", "duration_s": 60.0, "machine": machine.machine_info(),
                    "load_average": {"mean": 1.0, "max": 2.0, "samples": 1},
                    "settings": {"messages": 9, "rounds": 1, "nlu_rounds": 1},
                    "results": {OURS: result, BASE: result}}
    rows = report.comparison(bench_report["results"])
    assert {r["key"] for r in rows} >= {"train_s", "e2e1_p50_ms", "e2e10_p99_ms", "e2e10_mps", "macro_f1"}
    assert all(r["ratio"] == pytest.approx(1.0) for r in rows)
    doc, chart_path = tmp_path / "benchmarks.md", tmp_path / "images" / "benchmarks.png"
    doc.write_text("old table\n## Where the time goes\nhand-written analysis\n")
    chart.write_chart(bench_report, chart_path)
    report.write_doc(bench_report, doc, chart_path)
    text = doc.read_text()
    assert "| REST e2e, 10 clients, p99 (ms) |" in text and "hand-written analysis" in text
    assert "| 1.00–1.00× |" in text  # the spread over two rounds of level 1
    assert "old table" not in text
    assert chart_path.stat().st_size > 10_000

