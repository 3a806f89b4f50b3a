"""The group key, and encryption of package bodies with it (AES-256-GCM in chunks).

Every establishment of a group and the headquarters share one 32-byte *group key*, shown
to the administrator as base64 text (``encode_key``/``decode_key``). A keyed package has
its compressed body cut into chunks of ``CHUNK`` bytes, each sealed with AES-256-GCM:

- the AES key of a package is derived from the group key and a random 16-byte salt stored
  in the header (HKDF-SHA256), so nonces never repeat across packages, however many are
  made with one group key (a 4-byte random nonce prefix alone would collide after some
  tens of thousands of packages);
- the nonce is a 4-byte random prefix (header) + the 8-byte chunk index;
- the associated data binds the SHA-256 of the header bytes, the chunk index and a
  final-chunk flag, so a changed header, reordered, removed or truncated chunks, or a
  chunk moved from another package are all detected.

The header names the key by ``key_id`` (8 hex of its SHA-256) so that, while keys are
rotated, a reader holding several keys tries the right one first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import struct
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from synchro.errors import ConfigError, FieldProblem, Say

KEY_SIZE = 32
TAG_SIZE = 16
CHUNK = 64 * 1024
ALGORITHM = "AES-256-GCM"
KDF = "HKDF-SHA256"
_INFO = b"synchro package v1"
_HEX = re.compile(r"[0-9a-f]+")


class AuthenticationFailed(Exception):
    """A chunk did not authenticate: wrong key, or the package was changed."""


def new_group_key() -> bytes:
    """A fresh random group key."""
    return secrets.token_bytes(KEY_SIZE)


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError(f"une clé de groupe fait {KEY_SIZE} octets")
    return bytes(key)


def key_id(key: bytes) -> str:
    """A short public name of a key: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(check_key(key)).hexdigest()[:8]


def encode_key(key: bytes) -> str:
    """The key as text to copy between sites (base64, 44 characters)."""
    return base64.b64encode(check_key(key)).decode("ascii")


def decode_key(text: str, field: str = "group_key") -> bytes:
    """The key from its text form; ConfigError naming the setting ``field`` (its label,
    ``config.field.<field>``) when it is not one."""
    compact = "".join(text.split())
    try:
        key = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        expected = ("config.expect.key_base64", {"size": KEY_SIZE})
        name: Say = (f"config.field.{field}", {})
        raise ConfigError([FieldProblem(field, expected, name=name)])
    return key


def new_params(key: bytes, chunk: int = CHUNK) -> dict[str, Any]:
    """The header's ``encryption`` entry of a new package sealed with ``key``."""
    return {
        "alg": ALGORITHM,
        "kdf": KDF,
        "salt": secrets.token_hex(16),
        "nonce": secrets.token_hex(4),
        "chunk": chunk,
        "key_id": key_id(key),
    }


def _checked(params: dict[str, Any]) -> tuple[bytes, bytes, int]:
    """Salt, nonce prefix and chunk size of valid params; ValueError otherwise."""
    if set(params) != {"alg", "kdf", "salt", "nonce", "chunk", "key_id"}:
        raise ValueError("paramètres de chiffrement inconnus")
    if params["alg"] != ALGORITHM or params["kdf"] != KDF:
        raise ValueError(f"chiffrement {params['alg']!r} inconnu")
    salt, nonce, chunk, kid = params["salt"], params["nonce"], params["chunk"], params["key_id"]
    for value, size in ((salt, 32), (nonce, 8), (kid, 8)):
        if not isinstance(value, str) or len(value) != size or not _HEX.fullmatch(value):
            raise ValueError("paramètres de chiffrement illisibles")
    if type(chunk) is not int or not 1024 <= chunk <= 16 * 1024 * 1024:
        raise ValueError("taille de bloc chiffré illisible")
    return bytes.fromhex(salt), bytes.fromhex(nonce), chunk


def _package_cipher(key: bytes, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=_INFO).derive(key)
    return AESGCM(derived)


class _Chunks:
    def __init__(self, params: dict[str, Any], header_digest: bytes) -> None:
        self.salt, self.prefix, self.chunk = _checked(params)
        self.header_digest = header_digest
        self.index = 0

    def _nonce_aad(self, final: bool) -> tuple[bytes, bytes]:
        counter = struct.pack(">Q", self.index)
        return self.prefix + counter, self.header_digest + counter + (b"\x01" if final else b"\x00")


class ChunkSealer(_Chunks):
    """Seals the chunks of one package in order (writer side)."""

    def __init__(self, key: bytes, params: dict[str, Any], header_digest: bytes) -> None:
        super().__init__(params, header_digest)
        self._cipher = _package_cipher(check_key(key), self.salt)

    def seal(self, data: bytes, final: bool) -> bytes:
        nonce, aad = self._nonce_aad(final)
        self.index += 1
        return self._cipher.encrypt(nonce, data, aad)


class ChunkOpener(_Chunks):
    """Opens the chunks of one package in order (reader side).

    The first chunk picks the key among ``keys``: the one whose id the header names first,
    then the others. ``AuthenticationFailed`` when no key opens it, or on any later chunk
    that does not authenticate. ``ValueError`` when the params are not ours.
    """

    def __init__(self, keys: Sequence[bytes], params: dict[str, Any], header_digest: bytes) -> None:
        super().__init__(params, header_digest)
        self.key_id: str = params["key_id"]
        named = [k for k in keys if key_id(k) == self.key_id]
        self.candidates = named + [k for k in keys if key_id(k) != self.key_id]
        self._cipher: AESGCM | None = None
        self.key: bytes | None = None

    def open(self, data: bytes, final: bool) -> bytes:
        nonce, aad = self._nonce_aad(final)
        self.index += 1
        if self._cipher is not None:
            try:
                return self._cipher.decrypt(nonce, data, aad)
            except InvalidTag:
                raise AuthenticationFailed from None
        for key in self.candidates:
            cipher = _package_cipher(key, self.salt)
            try:
                plain = cipher.decrypt(nonce, data, aad)
            except InvalidTag:
                continue
            self._cipher, self.key = cipher, key
            return plain
        raise AuthenticationFailed
