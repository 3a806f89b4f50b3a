"""The one-file Linux build: built with build.py from synchro.spec, run with no Python around.

The binary is cached outside the repository (``$XDG_CACHE_HOME/synchro-build`` or
``~/.cache/synchro-build``), keyed by a hash of synchro/, assets/, the spec, build.py and
requirements.txt: an unchanged tree reuses it, a changed one rebuilds (about a minute).
Build time and size are printed (``pytest -s``) and kept in ``<cache>/<hash>/build.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import require, require_module

from synchro import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
KEEP_BUILDS = 3
WINE = "/usr/lib/wine/wine64"  # what tools/build-windows.sh runs


def _load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synchro_build_script", REPO / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synchro-build"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # two test runs never build at once
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _prune(root: Path, keep: Path) -> None:
    builds = sorted(
        (p for p in root.iterdir() if p.is_dir() and (p / "build.json").is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in builds[KEEP_BUILDS:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def cached_linux_binary() -> tuple[Path, dict[str, object]]:
    build = _load_build_module()
    root = cache_root()
    key = build.source_hash(REPO)
    target = root / key
    with _locked(root / "build.lock"):
        if not (target / "build.json").is_file():
            staging = root / f"{key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            started = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    str(REPO / "build.py"),
                    "--dist",
                    str(staging),
                    "--work",
                    str(root / "work"),
                ],
                check=True,
                cwd=REPO,
                timeout=900,
            )
            info = {
                "seconds": round(time.monotonic() - started, 1),
                "bytes": (staging / "synchro").stat().st_size,
                "hash": key,
            }
            (staging / "build.json").write_text(json.dumps(info))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        os.utime(target)
        _prune(root, target)
    info = json.loads((target / "build.json").read_text())
    print(f"\nlinux one-file build: {info['seconds']} s, {info['bytes'] / 1e6:.1f} MB ({target})")
    return target / "synchro", info


@pytest.fixture(scope="module")
def binary() -> Path:
    if sys.platform != "linux":
        pytest.skip("the Linux one-file build")
    # The one-file program carries the ODBC driver manager (libodbc.so.2, which pyodbc links)
    # and Tk: a build without them would not be the program users get.
    require_module("pyodbc")
    require_module("tkinter")
    path, _info = cached_linux_binary()
    return path


def _run_clean(
    binary: Path, tmp: Path, *args: str, timeout: float = 60, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Runs the binary from an empty folder with no Python, venv or display in its environment
    (``extra``: more environment variables)."""
    work = tmp / "empty"
    work.mkdir(exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(tmp),
        **extra,
    }
    return subprocess.run(
        [str(binary), *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version_from_an_empty_folder(binary: Path, tmp_path: Path) -> None:
    done = _run_clean(binary, tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"synchro {__version__}"
    assert list((tmp_path / "empty").iterdir()) == []  # wrote nothing where it was started


def test_bundle_has_data_metadata_and_tray_backend(binary: Path) -> None:
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(binary))
    names = set(archive.toc)
    locales = {p.name for p in (REPO / "synchro" / "locales").glob("*.json")}
    assert {f"synchro/locales/{n}" for n in locales} <= names
    assets = {p.name for p in (REPO / "assets").glob("*") if p.is_file()}
    assert {f"assets/{n}" for n in assets} <= names
    for dist in ("pyftpdlib", "pystray", "pillow", "cryptography", "platformdirs"):
        assert any(n.lower().startswith(f"{dist}-") and n.endswith("METADATA") for n in names), dist
    # The data plane's libraries are in, pyarrow's unused Flight and S3 ones are not.
    assert "adbc_driver_sqlite/libadbc_driver_sqlite.so" in names
    assert not [n for n in names if "arrow_flight" in n or "arrow_s3" in n]
    modules = set(archive.open_embedded_archive("PYZ.pyz").toc)
    assert {"pystray._xorg", "synchro.cli", "synchro.platform.single_instance"} <= modules
    assert not {m for m in modules if m.split(".")[0] in ("pytest", "_pytest", "hypothesis")}


def test_demo_from_an_empty_folder(binary: Path, tmp_path: Path) -> None:
    """The one-file program runs the whole demo (a round over FTPS on loopback) from a
    folder with no Python environment around it; with the columnar threshold at one row,
    every checksum is read through ADBC and pyarrow inside the frozen program."""
    done = _run_clean(binary, tmp_path, "demo", timeout=600, SYNCHRO_COLUMNAR_FROM="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Rapport du siège" in done.stdout


def test_postgresql_read_in_columns_inside_the_frozen_program(
    binary: Path, tmp_path: Path, make_backend: Any
) -> None:
    """With the columnar threshold at one row, the one-file program's second export of a
    PostgreSQL database reads its table through arrow-odbc, whose library cffi loads from
    inside the program: the log says so, and the package holds the one row changed."""
    backend = make_backend("postgresql")
    backend.execute("CREATE TABLE ventes (num INTEGER PRIMARY KEY, note VARCHAR(50))")
    for i in range(1, 21):
        backend.execute("INSERT INTO ventes VALUES (?, ?)", (i, f"vente {i}"))
    config = str(tmp_path / "poste.toml")
    run = functools.partial(_run_clean, binary, tmp_path, "--config", config)
    done = run("init", "--role", "serveur", "--site", "3615", "--db", backend.connection)
    assert done.returncode == 0, done.stderr
    assert "20 changement(s)" in run("export", SYNCHRO_COLUMNAR_FROM="1").stdout
    backend.execute("UPDATE ventes SET note = ? WHERE num = 7", ("vente 7 — Ø",))
    done = run("export", SYNCHRO_COLUMNAR_FROM="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 changement(s)" in done.stdout and "ventes : +0 ~1 -0" in done.stdout
    (log,) = tmp_path.rglob("synchro.log")
    text = log.read_text(encoding="utf-8")
    assert "Table ventes : lue en colonnes" in text, text
    assert "inexact" not in text


@pytest.mark.skipif(
    os.environ.get("SYNCHRO_WINDOWS_BUILD") != "1",
    reason="the Wine build takes minutes: run with SYNCHRO_WINDOWS_BUILD=1",
)
def test_windows_build_through_wine(tmp_path: Path) -> None:
    """``build.py --windows``: synchro.exe + synchro-cli.exe, smoke-tested under Wine by the
    script itself (--version, the windowed program's window + single-instance handover, Run key
    read back with ``wine reg query``, named mutex, demo)."""
    if sys.platform != "linux":
        pytest.skip("the Wine build runs on Linux")
    if not os.access(WINE, os.X_OK) and os.geteuid() != 0:  # as root the script installs it
        require(f"Wine is missing ({WINE}; apt-get install wine64)")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "build.py"), "--windows", "--dist", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=1800,
        check=False,
    )
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "ALL OK" in done.stdout
    assert (tmp_path / "synchro-exe-wine.png").stat().st_size > 0  # the tray program's window
    for name, subsystem in (("synchro.exe", 2), ("synchro-cli.exe", 3)):  # 2 GUI, 3 console
        data = (tmp_path / name).read_bytes()
        assert data[:2] == b"MZ"
        assert pe_subsystem(data) == subsystem, name
        for text in ("ProductVersion", __version__, "Synchro - synchronisation des bases"):
            assert text.encode("utf-16-le") in data, f"{name}: no {text!r} in VERSIONINFO"
        # the ANSI code page asked for (MariaDB's narrow statement text: odbc_connect)
        assert b'WindowsSettings">UTF-8</activeCodePage>' in data, f"{name}: no UTF-8 code page"
        for image in ico_images((REPO / "assets" / "synchro.ico").read_bytes()):
            assert image in data, f"{name}: application icon not embedded"
        print(f"{name}: {len(data) / 1e6:.1f} MB")
    print(f"windows build + smoke: {time.monotonic() - started:.0f} s")


def pe_subsystem(data: bytes) -> int:
    """The Subsystem field of a PE file's optional header (2 = windowed, 3 = console)."""
    header = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[header : header + 4] == b"PE\0\0"
    subsystem: int = struct.unpack_from("<H", data, header + 24 + 68)[0]
    return subsystem


def ico_images(ico: bytes) -> list[bytes]:
    """The image data of every size in a .ico file (PyInstaller copies them as RT_ICON)."""
    count = struct.unpack_from("<H", ico, 4)[0]
    images = []
    for i in range(count):
        size, offset = struct.unpack_from("<II", ico, 6 + 16 * i + 8)
        images.append(ico[offset : offset + size])
    return images
