"""Checking a site's secret at each FTP login without the cost of scrypt each time.

A site's secret is stored as a salted scrypt hash (``config.passwords``): one check costs
~40 ms of CPU and **16 MB** of memory (N=2**14, r=8). The Siège's server gives every session
its own thread, and a site logs in several times per run (upload, each poll for its
package, download, ack). Measured at 50 sites (bench_round, issue 15): 243 logins, ~10 s of
the Siège's CPU, and its peak RSS 320-350 MB — not Python objects (tracemalloc saw 23 MB at
the peak) but the scrypt buffers: glibc gives each thread its own malloc arena (up to
8 per core) and keeps a freed 16 MB block in it, so sixteen sessions checking at once left
~270 MB resident for the life of the process (16 threads × 16 MB, reproduced alone).

``SecretCheck`` therefore:

- runs every scrypt check in **one** worker thread (one arena, one 16 MB buffer reused),
  whatever the number of sessions; the session's thread waits for the answer;
- remembers a secret once it matched: an HMAC of it under a random key of this process
  (never the secret itself) with the stored hash it matched. The site's next logins compare
  that HMAC in constant time; a changed stored hash (new secret) or another secret goes
  through scrypt again. A wrong secret is never remembered, so guessing costs a full check
  every time (and the ``Guard``'s ban still counts each failure).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

Verify = Callable[[str, str], bool]


class SecretCheck:
    """``check(site, secret, stored_hash)``; ``close()`` stops the worker thread."""

    def __init__(self, verify: Verify) -> None:
        self._verify = verify
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, bytes]] = {}  # site -> (stored hash, HMAC)
        self._worker: ThreadPoolExecutor | None = None

    def check(self, site: str, secret: str, stored: str) -> bool:
        """True when ``secret`` matches ``stored`` (the site's hash)."""
        tag = hmac.new(self._key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
        digest = tag.digest()
        with self._lock:
            known = self._known.get(site)
        if known is not None and known[0] == stored and hmac.compare_digest(known[1], digest):
            return True
        ok = self.slow(secret, stored)
        if ok:
            with self._lock:
                self._known[site] = (stored, digest)
        return ok

    def slow(self, secret: str, stored: str) -> bool:
        """The full check (scrypt), in the one worker thread."""
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="synchro-secrets")
            worker = self._worker
        return bool(worker.submit(self._verify, secret, stored).result())

    def close(self) -> None:
        """Stop the worker (a later check starts a new one); forget what matched."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._known.clear()
        if worker is not None:
            worker.shutdown(wait=True)
