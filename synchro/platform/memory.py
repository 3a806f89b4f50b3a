"""How the C allocator may use memory, set once when the program starts.

glibc gives each thread that allocates at the same time as others a malloc arena of its own
(up to 8 per core) and keeps what those arenas once held. The Siège runs one thread per FTP
session (pyftpdlib's threaded server): with 200 establishments connected at once its peak
RSS grew from 77 MB (50 sites) to 110 MB, memory the arenas kept and Python no longer used
(issue 15). Two arenas are enough for a program whose threads mostly wait on the network:
measured, 95 MB at 200 sites. Windows' heap has no such arenas, and other C libraries are
left as they are.
"""

from __future__ import annotations

import ctypes
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Ask glibc for at most ``arenas`` malloc arenas; False where there is no glibc (or
    it refuses). Call it before starting threads: arenas already made stay."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: its C library
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: other C libraries differ
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
