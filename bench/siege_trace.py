"""Run ``synchro`` under tracemalloc and say where the Python memory went at its peak.

    python bench/siege_trace.py OUT.txt --config synchro.toml sync ...

``bench_round.py --tracemalloc`` starts the Siège this way. A watcher thread takes a
snapshot each time the traced memory grows past its previous high by 4 MB; when the program
ends, the top allocation sites of the snapshot taken nearest the peak (by line, and the
biggest by traceback) are written to ``OUT.txt``. tracemalloc sees Python allocations only
(not SQLite's page cache, OpenSSL or thread stacks): compare with the RSS the bench prints.
It slows the process down (~2x): figures of wall time come from runs without it.
"""

from __future__ import annotations

import runpy
import sys
import threading
import tracemalloc
from pathlib import Path

STEP = 4 * 1024 * 1024


def _watch(stop: threading.Event, best: list[object]) -> None:
    high = 0
    while not stop.wait(0.5):
        current, _peak = tracemalloc.get_traced_memory()
        if current > high + STEP:
            high = current
            best[:] = [current, tracemalloc.take_snapshot()]


def _report(out: Path, best: list[object]) -> None:
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"traced now {current / 2**20:.1f} MB, traced peak {peak / 2**20:.1f} MB"]
    if best:
        size, snapshot = best
        assert isinstance(snapshot, tracemalloc.Snapshot) and isinstance(size, int)
        snapshot = snapshot.filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        )
        lines.append(f"snapshot at {size / 2**20:.1f} MB traced; top lines:")
        for stat in snapshot.statistics("lineno")[:25]:
            lines.append(f"  {stat.size / 2**20:8.2f} MB {stat.count:>9} blocks  {stat.traceback}")
        lines.append("top tracebacks:")
        for stat in snapshot.statistics("traceback")[:6]:
            lines.append(f"  {stat.size / 2**20:8.2f} MB {stat.count:>9} blocks")
            lines.extend(f"      {line}" for line in stat.traceback.format()[-16:])
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["synchro", *sys.argv[2:]]
    tracemalloc.start(16)
    best: list[object] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(stop, best), daemon=True)
    watcher.start()
    try:
        runpy.run_module("synchro", run_name="__main__", alter_sys=True)
    finally:
        stop.set()
        watcher.join()
        _report(out, best)


if __name__ == "__main__":
    main()
