"""The C allocator's arenas are limited when the program starts (issue 15: the Siège's one
thread per FTP session left memory in up to 8 arenas per core).

Counted from glibc itself: ``malloc_stats()`` prints one ``Arena N:`` block per arena, in a
real process whose threads allocate at the same time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from synchro.platform.memory import ARENAS

PROBE = textwrap.dedent(
    """
    import ctypes, sys, threading
    if sys.argv[1] == "cli":
        from synchro.cli import main
        try:
            main(["--version"])
        except SystemExit as done:
            assert done.code == 0
    go = threading.Barrier(8)
    def work():
        go.wait()
        blobs = [bytearray(100_000) for _ in range(50)]
        del blobs
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    sys.stdout.flush()
    ctypes.CDLL(None).malloc_stats()
    """
)


def arenas_after(how: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return sum(1 for line in done.stderr.splitlines() if line.startswith("Arena "))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_program_starts_with_few_malloc_arenas() -> None:
    assert arenas_after("plain") > ARENAS  # threads allocating at once each get one
    assert arenas_after("cli") <= ARENAS  # synchro's main limits them first
