"""The OS keyring for secrets: the Windows Credential Manager, where it exists.

``SecretStore`` keeps a node's secrets in a vault when the platform has one (Windows:
one generic credential per settings file, target ``Synchro/<hash of the settings path>``,
holding the JSON of its secrets, protected by the user's logon), and otherwise in an
owner-only file. The vault is a tiny interface (``read``/``write``/``delete`` of one text)
so the Windows one, which cannot run here, is exercised through a fake with the same
contract; its ctypes calls follow ``CredReadW``/``CredWriteW``/``CredDeleteW``.
"""

from __future__ import annotations

import ctypes
import hashlib
import sys
from pathlib import Path
from typing import Any, Protocol

from synchro.errors import PlatformError

CRED_TYPE_GENERIC = 1
CRED_PERSIST_LOCAL_MACHINE = 2
ERROR_NOT_FOUND = 1168
MAX_BLOB = 2560  # bytes a generic credential may hold


class Vault(Protocol):
    def read(self) -> str | None: ...

    def write(self, text: str) -> None: ...

    def delete(self) -> None: ...


def target_for(config_file: Path) -> str:
    digest = hashlib.sha256(str(config_file.absolute()).lower().encode("utf-8")).hexdigest()
    return f"Synchro/{digest[:16]}"


class WindowsCredentials:
    """One generic credential of the Windows Credential Manager (advapi32)."""

    def __init__(self, target: str, api: Any = None) -> None:
        self.target = target
        self._api = api

    def _last_error(self) -> int:
        getter = getattr(self.api, "last_error", None) or ctypes.get_last_error  # type: ignore[attr-defined,unused-ignore]
        return int(getter())

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
        return self._api

    def read(self) -> str | None:
        pointer = ctypes.c_void_p()
        if not self.api.CredReadW(self.target, CRED_TYPE_GENERIC, 0, ctypes.byref(pointer)):
            error = self._last_error()
            if error == ERROR_NOT_FOUND:
                return None
            raise PlatformError(say=("config.err.vault_read", {"error": error}))
        try:
            cred = ctypes.cast(pointer, ctypes.POINTER(_Credential)).contents
            blob = ctypes.string_at(cred.CredentialBlob, cred.CredentialBlobSize)
            return blob.decode("utf-8")
        finally:
            self.api.CredFree(pointer)

    def write(self, text: str) -> None:
        blob = text.encode("utf-8")
        if len(blob) > MAX_BLOB:
            raise PlatformError(say=("config.err.vault_too_long", {}))
        buffer = ctypes.create_string_buffer(blob, len(blob))
        cred = _Credential()
        cred.Type = CRED_TYPE_GENERIC
        cred.TargetName = self.target
        cred.CredentialBlobSize = len(blob)
        cred.CredentialBlob = ctypes.cast(buffer, ctypes.c_void_p)
        cred.Persist = CRED_PERSIST_LOCAL_MACHINE
        cred.UserName = "Synchro"
        if not self.api.CredWriteW(ctypes.byref(cred), 0):
            error = self._last_error()
            raise PlatformError(say=("config.err.vault_write", {"error": error}))

    def delete(self) -> None:
        if not self.api.CredDeleteW(self.target, CRED_TYPE_GENERIC, 0):
            error = self._last_error()
            if error != ERROR_NOT_FOUND:
                raise PlatformError(say=("config.err.vault_delete", {"error": error}))


class _Credential(ctypes.Structure):
    _fields_ = [
        ("Flags", ctypes.c_uint32),
        ("Type", ctypes.c_uint32),
        ("TargetName", ctypes.c_wchar_p),
        ("Comment", ctypes.c_wchar_p),
        ("LastWritten", ctypes.c_uint64),
        ("CredentialBlobSize", ctypes.c_uint32),
        ("CredentialBlob", ctypes.c_void_p),
        ("Persist", ctypes.c_uint32),
        ("AttributeCount", ctypes.c_uint32),
        ("Attributes", ctypes.c_void_p),
        ("TargetAlias", ctypes.c_wchar_p),
        ("UserName", ctypes.c_wchar_p),
    ]


def vault_for(config_file: Path, platform: str | None = None) -> Vault | None:
    """The platform's vault for this settings file, or None (then: an owner-only file)."""
    if (platform or sys.platform) == "win32":
        return WindowsCredentials(target_for(config_file))
    return None
