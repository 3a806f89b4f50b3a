"""Install pip into a virtual environment created with ``--without-pip``.

Debian's python3 without the python3-venv package cannot run ensurepip. This fetches the
newest pip wheel from PyPI (the package registry, over HTTPS with certificate checks) and
runs pip from the wheel itself to install it.
"""

import json
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

INDEX = "https://pypi.org/pypi/pip/json"


def main() -> int:
    with urllib.request.urlopen(INDEX, timeout=60) as resp:
        info = json.load(resp)
    wheel = next(f for f in info["urls"] if f["packagetype"] == "bdist_wheel")
    url = urllib.parse.urljoin(INDEX, wheel["url"])  # mirrors may answer relative addresses
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        with urllib.request.urlopen(url, timeout=120) as resp:
            path.write_bytes(resp.read())
        import hashlib

        if hashlib.sha256(path.read_bytes()).hexdigest() != wheel["digests"]["sha256"]:
            print("bootstrap_pip: checksum mismatch for the pip wheel", file=sys.stderr)
            return 1
        cmd = [sys.executable, str(path / "pip"), "install", "--no-index", str(path)]
        return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
