"""Shared helpers for benchmarks: data paths, timing, and a ratio table."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def best_time(fn: Callable[[], object], *, repeat: int = 5, min_time_s: float = 0.2) -> float:
    """Best wall time of one call of ``fn`` in seconds (calls looped until ``min_time_s``)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        gc.disable()
        try:
            loops = 0
            t0 = time.perf_counter()
            while True:
                fn()
                loops += 1
                el = time.perf_counter() - t0
                if el >= min_time_s:
                    break
        finally:
            gc.enable()
        best = min(best, el / loops)
    return best


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for h in header:
            t.add_column(h, justify="right" if h != header[0] else "left")
        for r in rows:
            t.add_row(*[str(x) for x in r])
        Console(width=160).print(t)
    except ImportError:  # pragma: no cover
        print(title)
        print(" | ".join(header))
        for r in rows:
            print(" | ".join(str(x) for x in r))
