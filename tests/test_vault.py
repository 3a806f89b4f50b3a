"""Secrets in the OS vault (Windows Credential Manager) — with a fake advapi32 that keeps
the real calls' contract, since Windows cannot run here."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import pytest

from synchro.config.model import Config, Role
from synchro.config.secrets import SecretStore
from synchro.config.store import load_config, save_config
from synchro.config.vault import (
    ERROR_NOT_FOUND,
    WindowsCredentials,
    _Credential,
    target_for,
    vault_for,
)
from synchro.errors import PlatformError


class FakeAdvapi:
    """CredReadW/CredWriteW/CredDeleteW/CredFree over a dict, marshalling real structures."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}
        self.kept: list[Any] = []
        self.error = 0

    def last_error(self) -> int:  # what ctypes.get_last_error() gives after a real call
        return self.error

    def CredWriteW(self, cred_ref: Any, flags: int) -> int:
        cred = ctypes.cast(cred_ref, ctypes.POINTER(_Credential)).contents
        assert cred.Type == 1 and flags == 0
        self.store[cred.TargetName] = ctypes.string_at(cred.CredentialBlob, cred.CredentialBlobSize)
        return 1

    def CredReadW(self, target: str, kind: int, flags: int, out: Any) -> int:
        if target not in self.store:
            self.error = ERROR_NOT_FOUND
            return 0
        blob = ctypes.create_string_buffer(self.store[target], len(self.store[target]))
        cred = _Credential(
            CredentialBlobSize=len(self.store[target]),
            CredentialBlob=ctypes.cast(blob, ctypes.c_void_p),
        )
        self.kept += [blob, cred]
        ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p)).contents.value = ctypes.addressof(cred)
        return 1

    def CredDeleteW(self, target: str, kind: int, flags: int) -> int:
        if self.store.pop(target, None) is None:
            self.error = ERROR_NOT_FOUND
            return 0
        return 1

    def CredFree(self, pointer: Any) -> None:
        return None


def test_windows_credentials_round_trip_through_ctypes() -> None:
    api = FakeAdvapi()
    vault = WindowsCredentials("Synchro/test", api)
    assert vault.read() is None
    vault.write('{"group_key": "clé"}')
    assert vault.read() == '{"group_key": "clé"}'
    vault.delete()
    assert vault.read() is None
    vault.delete()  # deleting twice is fine
    with pytest.raises(PlatformError):
        vault.write("x" * 3000)


def test_settings_secrets_go_to_the_vault_and_an_old_file_moves_in(tmp_path: Path) -> None:
    api = FakeAdvapi()
    path = tmp_path / "synchro.toml"
    secrets_file = tmp_path / "secrets.json"
    config = Config(role=Role.SITE, site="3615")
    save_config(config, path)
    SecretStore(secrets_file).set("email.password", "mot-de-passe-1")  # from before
    store = SecretStore(secrets_file, WindowsCredentials(target_for(path), api))
    assert store.read_all() == {"email.password": "mot-de-passe-1"}  # read from the old file
    store.set("site_settings.secret", "secret-du-site-1")
    assert not secrets_file.exists()  # moved into the vault
    assert store.read_all() == {
        "email.password": "mot-de-passe-1",
        "site_settings.secret": "secret-du-site-1",
    }
    assert list(api.store) == [target_for(path)]


def test_vault_only_on_windows(tmp_path: Path) -> None:
    assert vault_for(tmp_path / "synchro.toml", "linux") is None
    vault = vault_for(tmp_path / "synchro.toml", "win32")
    assert isinstance(vault, WindowsCredentials)
    assert vault.target == target_for(tmp_path / "synchro.toml")
    assert target_for(tmp_path / "a.toml") != target_for(tmp_path / "b.toml")
    # and on this machine the secrets stay in the owner-only file
    save_config(Config(role=Role.SITE, site="3615", group_key=""), tmp_path / "synchro.toml")
    assert load_config(tmp_path / "synchro.toml").site == "3615"
