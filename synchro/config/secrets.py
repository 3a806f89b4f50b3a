"""Secrets of a node, kept apart from the TOML settings file.

The site's FTP secret, the SMTP password and the group key are never written to the
settings file (which people copy, paste into emails and attach to tickets). They live in a
small JSON file beside it, ``secrets.json``, created with mode 0600 and replaced
atomically. Names are the dotted paths of the ``Config`` fields (``SECRET_FIELDS``).

Where the platform has a keyring (Windows: the Credential Manager, ``synchro.config.vault``)
the secrets live there instead, and a file left from before is moved into it and removed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from synchro.config.atomic import atomic_write
from synchro.config.vault import Vault
from synchro.errors import ConfigError, FieldProblem, PlatformError, Say

SECRETS_FILE = "secrets.json"
SECRET_FIELDS = ("site_settings.secret", "email.password", "group_key", "previous_group_key")


def default_secrets_path(config_file: Path) -> Path:
    """Where the secrets of ``config_file`` live: ``secrets.json`` beside ``synchro.toml``.

    A settings file with another name (``hq.toml``) gets ``hq.secrets.json``, so two nodes
    whose settings share a folder never share secrets.
    """
    if config_file.stem == "synchro":
        return config_file.with_name(SECRETS_FILE)
    return config_file.with_name(f"{config_file.stem}.{SECRETS_FILE}")


class SecretStore:
    """Named secrets in the OS vault when there is one, else in one JSON file (mode 0600).
    Every change rewrites them whole, atomically."""

    def __init__(self, path: Path, vault: Vault | None = None) -> None:
        self.path = path
        self.vault = vault

    def read_all(self) -> dict[str, str]:
        """Every stored secret; a missing file is an empty store."""
        text = self.vault.read() if self.vault is not None else None
        if text is None:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return {}
            except (OSError, UnicodeDecodeError) as exc:
                raise self._error(("config.expect.secrets_readable", {"detail": str(exc)})) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            said = {"line": exc.lineno, "detail": exc.msg}
            raise self._error(("config.expect.secrets_json", said)) from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise self._error(("config.expect.secrets_object", {}))
        return data

    def get(self, name: str, default: str = "") -> str:
        return self.read_all().get(name, default)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``; an empty value removes the name."""
        self.update({name: value})

    def delete(self, name: str) -> None:
        self.update({name: ""})

    def names(self) -> list[str]:
        return sorted(self.read_all())

    def update(self, values: Mapping[str, str]) -> None:
        """Set several secrets in one atomic write (empty values remove their names)."""
        current = self.read_all()
        merged = dict(current)
        for name, value in values.items():
            if value:
                merged[name] = value
            else:
                merged.pop(name, None)
        data = json.dumps(merged, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if self.vault is not None:
            self.vault.write(data)
            self.path.unlink(missing_ok=True)  # moved into the vault
            return
        if merged == current and (self.path.exists() or not merged):
            return
        try:
            atomic_write(self.path, data.encode("utf-8"), mode=0o600)
        except OSError as exc:
            said = {"path": str(self.path), "detail": str(exc)}
            raise PlatformError(say=("config.err.save_secrets", said)) from exc

    def _error(self, expected: Say) -> ConfigError:
        return ConfigError([FieldProblem(field="secrets", expected=expected)], str(self.path))
