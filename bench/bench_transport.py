"""Loopback throughput of the transport: SiteClient ↔ HQServer, FTPS and plain FTP.

    .venv/bin/python bench/bench_transport.py [size_mb]

Prints MB/s for upload and download (each includes the size + SHA-256 checks and the
rename) and the ratio to a baseline measured in the same run: copying the same file on
disk and hashing it (what any verified transfer has to do at least). Not a test: numbers
depend on the machine. DESIGN.md §5 measured ~200 MB/s for a bare FTPS upload here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from synchro.transport.files import file_sha256
from synchro.transport.ftp_client import SiteClient
from synchro.transport.ftp_server import HQServer
from synchro.transport.tls import ensure_certificate

SECRET = "bench-secret"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _verify(secret: str, stored: str) -> bool:
    return hmac.compare_digest(_hash(secret), stored)


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def run(folder: Path, size_mb: int) -> None:
    source = folder / "source.pkg"
    with open(source, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1024 * 1024))
    copy = folder / "copy.pkg"
    baseline = timed(lambda: (shutil.copyfile(source, copy), file_sha256(copy)))
    print(f"baseline copy + SHA-256: {size_mb / baseline:8.0f} MB/s")

    cert, key = folder / "hq.pem", folder / "hq.key"
    fingerprint = ensure_certificate(cert, key, "bench")
    for label, tls in (("FTPS", True), ("FTP ", False)):
        root = folder / f"ftp-{label.strip()}"
        server = HQServer(
            root,
            {"S": _hash(SECRET)},
            cert_file=cert if tls else None,
            key_file=key if tls else None,
            require_tls=tls,
            host="127.0.0.1",
            port=0,
            verify=_verify,
        )
        with server:
            pin = fingerprint if tls else ""
            with SiteClient("127.0.0.1", server.port, "S", SECRET, pin, allow_plain=not tls) as c:
                up = timed(lambda c=c: c.upload(source, "p.pkg"))  # type: ignore[misc]
                shutil.copyfile(source, root / "S" / "out" / "q.pkg")
                target = folder / f"down-{label.strip()}.pkg"
                down = timed(lambda c=c, t=target: c.download("q.pkg", t))  # type: ignore[misc]
        for what, seconds in (("upload", up), ("download", down)):
            rate = size_mb / seconds
            print(f"{label} {what:8}: {rate:8.0f} MB/s  ({baseline / seconds:5.2f} × baseline)")


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    with tempfile.TemporaryDirectory(prefix="synchro-bench-") as tmp:
        run(Path(tmp), size_mb)


if __name__ == "__main__":
    main()
