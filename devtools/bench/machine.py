"""The machine the benchmark runs on: what it is, how busy it is, and how much memory a process tree holds.

The report states the hardware and the load average next to the figures, because on a shared or
busy machine absolute figures are noisy (the ratios between the two configurations less so).
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
from pathlib import Path
from typing import Any, Dict, List


def machine_info() -> Dict[str, Any]:
    import rasa.version

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or cpu
    ram_gb = float("nan")
    try:
        kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        ram_gb = kb / 1024 / 1024
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "ram_gb": round(ram_gb, 1), "machine": platform.machine(),
            "os": platform.platform(terse=True), "python": platform.python_version(), "rasa": rasa.version.__version__}


class LoadSampler:
    """Samples the 1-minute load average every few seconds while the bench runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.samples: List[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> Dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"mean": round(statistics.fmean(s), 2), "max": round(max(s), 2), "samples": len(s)}


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.NoSuchProcess:
            return 0
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total
