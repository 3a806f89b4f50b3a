"""Build Synchro as one file with PyInstaller, from ``synchro.spec``.

    python build.py                 native build: dist/synchro (Linux), dist/synchro.exe +
                                    dist/synchro-cli.exe (Windows)
    python build.py --windows       on Linux: synchro.exe + synchro-cli.exe through Wine
                                    (tools/build-windows.sh; a few minutes the first time)
    python build.py --check         native build, then run ``synchro --version`` from it

Options: ``--dist DIR`` / ``--work DIR`` (defaults ``dist`` and ``build/pyinstaller``),
``--clean`` (drop PyInstaller's cache first). Prints the build time and size of every file.
The application icon comes from ``assets/synchro.ico``; when it is missing it is drawn with
``synchro.gui.icons`` if that is importable, else the build goes on without an icon and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SPEC = ROOT / "synchro.spec"
HASHED = ("synchro", "assets", "synchro.spec", "build.py", "requirements.txt")


def source_hash(root: Path = ROOT, parts: Iterable[str] = HASHED) -> str:
    """SHA-256 over everything that goes into the executable (for build caches)."""
    digest = hashlib.sha256()
    for part in parts:
        base = root / part
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        for path in files:
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_icon(root: Path = ROOT) -> Path | None:
    """``assets/synchro.ico``, drawn by synchro.gui.icons when missing; None if impossible."""
    ico = root / "assets" / "synchro.ico"
    if ico.is_file():
        return ico
    try:
        from synchro.gui.icons import write_assets
    except ImportError as exc:
        print(f"build: no {ico} and synchro.gui.icons unavailable ({exc}): no icon", flush=True)
        return None
    write_assets(ico.parent)
    if ico.is_file():
        print(f"build: drew the icons into {ico.parent}", flush=True)
        return ico
    print(f"build: synchro.gui.icons did not write {ico}: building without an icon", flush=True)
    return None


def executables(dist: Path, windows: bool) -> list[Path]:
    names = ["synchro.exe", "synchro-cli.exe"] if windows else ["synchro"]
    return [dist / name for name in names]


def build_native(dist: Path, work: Path, *, clean: bool = False) -> list[Path]:
    """Runs PyInstaller on synchro.spec with this interpreter; returns the files built."""
    env = dict(os.environ)
    if ensure_icon() is None:
        env["SYNCHRO_NO_ICON"] = "1"
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        *(["--clean"] if clean else []),
        str(SPEC),
    ]
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    built = executables(dist, windows=sys.platform == "win32")
    missing = [p for p in built if not p.is_file()]
    if missing:
        raise SystemExit(f"build: PyInstaller did not produce {missing}")
    return built


def build_windows_on_linux(dist: Path) -> list[Path]:
    """synchro.exe + synchro-cli.exe through Wine (tools/build-windows.sh, same spec)."""
    script = ROOT / "tools" / "build-windows.sh"
    if not script.is_file():
        raise SystemExit(f"build: {script} is missing")
    ensure_icon()
    env = dict(os.environ, SYNCHRO_DIST=str(dist.absolute()))
    subprocess.run(["bash", str(script)], check=True, cwd=ROOT, env=env)
    return executables(dist, windows=True)


def report(built: Sequence[Path], seconds: float) -> None:
    print(f"build: {seconds:.0f} s", flush=True)
    for path in built:
        print(f"build: {path} {path.stat().st_size / 1e6:.1f} MB", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", action="store_true", help="build synchro.exe through Wine")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--clean", action="store_true", help="drop PyInstaller's cache first")
    parser.add_argument("--check", action="store_true", help="run `synchro --version` after")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.windows and sys.platform != "win32":
        built = build_windows_on_linux(args.dist)
    else:
        built = build_native(args.dist, args.work, clean=args.clean)
    report(built, time.monotonic() - started)
    if args.check and not args.windows:
        cli = built[-1]
        subprocess.run([str(cli), "--version"], check=True, cwd=args.dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
