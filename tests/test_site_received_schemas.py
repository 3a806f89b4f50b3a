"""An establishment keeps the Siège's schemas from the last Siège package it applied
(``schema_exchange.remember_received``, called by the run), so ``synchro check`` still
compares when the Siège is down and its package has left the inbox."""

from __future__ import annotations

from pathlib import Path

from pair_helpers import cli_pair, popen, synchro

from synchro.engine.schema_exchange import RECEIVED_FILE, received
from synchro.platform.paths import paths_beside


def test_check_at_a_site_with_the_siege_down_uses_the_last_siege_package_applied(
    tmp_path: Path,
) -> None:
    hq, site = cli_pair(tmp_path)[:2]
    site_paths = paths_beside(site / "synchro.toml")
    siege = popen("--config", "synchro.toml", "sync", "--linger", "600", cwd=hq)
    try:
        magasin = synchro("--config", "synchro.toml", "sync", cwd=site, timeout=90)
        out, err = siege.communicate(timeout=90)
    finally:
        if siege.poll() is None:
            siege.kill()
            siege.wait()
    assert magasin.returncode == 0, magasin.stderr + magasin.stdout
    assert siege.returncode == 0, err + out
    kept = received(site_paths.packages_dir)
    assert kept is not None and kept.origin == "SIEGE"
    assert [t.name for t in kept.tables] == ["articles"]
    assert not list((site_paths.packages_dir / "inbox").glob("*.pkg"))  # applied, removed
    # The Siège is not running now: its schemas.json cannot be read.
    done = synchro("--config", "synchro.toml", "check", cwd=site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Schémas publiés par le siège non lus" in done.stdout
    assert f"Comparé avec les schémas du paquet du siège {kept.package}." in done.stdout
    assert kept.package.startswith("SIEGE#")
    assert "Schémas du siège introuvables" not in done.stdout
    (site_paths.packages_dir / RECEIVED_FILE).unlink()  # without it: no source at all
    done = synchro("--config", "synchro.toml", "check", cwd=site)
    assert done.returncode == 1 and "Schémas du siège introuvables" in done.stdout
