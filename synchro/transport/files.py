"""Small file helpers shared by the client and the server of the transport."""

from __future__ import annotations

import hashlib
from pathlib import Path

PART = ".part"  # suffix of a file still being transferred; never under its final name
CHUNK = 1024 * 1024


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's content, hex, read in 1 MiB chunks (flat memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
