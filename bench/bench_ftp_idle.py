"""The Siège's CPU while establishments keep FTPS sessions open and idle (issue 15).

    .venv/bin/python bench/bench_ftp_idle.py [--sessions 200] [--hold 15]

A waiting establishment keeps its session between polls, so in a round of 200 the Siège
holds ~200 idle sessions for most of the round. Each has its own thread, which wakes every
``poll_timeout`` even with nothing to do. The server runs in a child process; N sessions log
in over FTPS, sit idle for ``--hold`` seconds, and the child's CPU time over that hold is
printed per session and second, for the session poll of the code (``SESSION_POLL_S``) and,
as the baseline in the same run, for the 0.2 s poll it replaced. Also printed: how long
``stop()`` takes with the sessions still open (it must not wait for their next poll).
"""

from __future__ import annotations

import argparse
import ftplib
import hashlib
import hmac
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OLD_POLL_S = 0.2  # before issue 15's third session


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def serve(folder: Path, sessions: int, poll_s: float) -> None:
    """The child: a server; prints its port, then its CPU at 'go' and 'end', then stop()."""
    from synchro.transport import ftp_server
    from synchro.transport.tls import ensure_certificate

    if poll_s > 0:
        ftp_server._Server.poll_timeout = poll_s  # the baseline: the old session poll
    ensure_certificate(folder / "c.pem", folder / "c.key", "siege.bench")
    hq = ftp_server.HQServer(
        folder / "ftp",
        {f"S{n:03d}": _hash(f"secret{n}") for n in range(sessions)},
        cert_file=folder / "c.pem",
        key_file=folder / "c.key",
        host="127.0.0.1",
        port=0,
        verify=lambda secret, stored: hmac.compare_digest(_hash(secret), stored),
        auth_failed_delay_s=0,
        max_connections=sessions + 16,
        max_connections_per_ip=sessions + 16,
    )
    hq.start()
    print(hq.port, flush=True)
    sys.stdin.readline()
    began = time.process_time()
    print("ok", flush=True)
    sys.stdin.readline()
    print(time.process_time() - began, flush=True)
    began = time.monotonic()
    hq.stop()
    print(time.monotonic() - began, flush=True)


def measure(sessions: int, hold_s: float, poll_s: float) -> tuple[float, float]:
    """(server CPU µs per idle session and second, seconds stop() took)."""
    with tempfile.TemporaryDirectory(prefix="synchro-idle-") as tmp:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", tmp, str(sessions), str(poll_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        port = int(child.stdout.readline())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        open_sessions = []
        for n in range(sessions):
            ftp = ftplib.FTP_TLS(context=context, timeout=60)
            ftp.connect("127.0.0.1", port)
            ftp.auth()
            ftp.login(f"S{n:03d}", f"secret{n}")
            ftp.prot_p()
            open_sessions.append(ftp)
        child.stdin.write("go\n")
        child.stdin.flush()
        child.stdout.readline()
        time.sleep(hold_s)
        child.stdin.write("end\n")
        child.stdin.flush()
        cpu = float(child.stdout.readline())
        stop_s = float(child.stdout.readline())
        child.wait()
        for ftp in open_sessions:
            ftp.close()
    return cpu / hold_s / sessions * 1e6, stop_s


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        serve(Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--hold", type=float, default=15.0, help="seconds idle")
    args = parser.parse_args()
    from synchro.transport.ftp_server import SESSION_POLL_S

    old, old_stop = measure(args.sessions, args.hold, OLD_POLL_S)
    new, new_stop = measure(args.sessions, args.hold, 0)
    held = f"{args.sessions} idle FTPS sessions held {args.hold:.0f} s"
    print(f"{held}; Siège CPU per session-second")
    print(f"  session poll {OLD_POLL_S} s (baseline): {old:6.1f} µs   stop() {old_stop:.2f} s")
    print(f"  session poll {SESSION_POLL_S} s (now):     {new:6.1f} µs   stop() {new_stop:.2f} s")
    print(f"ratio now / baseline: {new / old:.2f} (CPU time ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
