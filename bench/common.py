"""What every benchmark shares: machine description, timing, a printed table, and the JSON result file."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def best_time(function: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls (the least disturbed by the machine), and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    text = [[f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in text:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def command_line() -> str:
    """How the benchmark was started, as a user types it: ``python -m bench.<name> ...``, no machine paths."""
    script = Path(sys.argv[0]).resolve()
    benchmark = f"-m bench.{script.stem}" if script.parent.name == "bench" else script.name
    return " ".join(["python", benchmark, *(shlex.quote(a) for a in sys.argv[1:])])


def write_result(name: str, figures: Any, notes: str = "") -> Path:
    """Write ``bench/results/<name>.json`` with the figures, the command that made them, machine and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "command": command_line(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "notes": notes,
        "figures": figures,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path
