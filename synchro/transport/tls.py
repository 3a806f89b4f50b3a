"""The Siège's TLS certificate: generated once, then pinned by every site.

There is no certificate authority between a Siège and its establishments: the Siège makes a
self-signed certificate on its first start (EC P-256, valid 10 years) and the connection
token carries its SHA-256 fingerprint. A site accepts exactly that certificate (pinning), so
neither a public CA nor the host name matters. When the certificate is renewed, each site
runs ``synchro trust`` to pin the new one.

Fingerprints are written as 64 lowercase hex digits without colons; ``normalize_fingerprint``
also accepts the ``AB:CD:...`` form that other tools print.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from synchro.errors import BadValue, ErrorKind, TransportError

VALIDITY = dt.timedelta(days=3650)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def fingerprint_of(der_bytes: bytes) -> str:
    """SHA-256 of a DER certificate, as 64 lowercase hex digits."""
    return hashlib.sha256(der_bytes).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """``'AB:CD:...'`` or ``'abcd...'`` → ``'abcd...'``; raises ``BadValue`` (a ValueError
    with its words) when it is not one."""
    value = re.sub(r"[\s:]", "", text).lower()
    if not _HEX64.fullmatch(value):
        raise BadValue(say=("config.fingerprint.bad", {"text": repr(text)}))
    return value


def certificate_fingerprint(cert_path: Path) -> str:
    """Fingerprint of the PEM certificate stored at ``cert_path``."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except (OSError, ValueError) as exc:
        said = {"cert": str(cert_path), "detail": str(exc)}
        raise TransportError(say=("engine.tls.unreadable", said), kind=ErrorKind.TLS) from exc
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def ensure_certificate(cert_path: Path, key_path: Path, common_name: str) -> str:
    """Create the certificate and key when missing; return the certificate's fingerprint.

    An existing pair is kept as it is (the sites have pinned it). The key file is written
    with mode 0600, both files atomically (temporary name, then rename).
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    if cert_path.exists() and key_path.exists():
        return certificate_fingerprint(cert_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or "synchro")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write_atomic(key_path, key_pem, mode=0o600)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    except OSError as exc:
        said = {"cert": str(cert_path), "key": str(key_path), "detail": str(exc)}
        raise TransportError(say=("engine.tls.unwritable", said), kind=ErrorKind.DISK) from exc
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, mode)  # the umask may have removed bits; never added any
    os.replace(tmp, path)


def server_context(cert_file: Path, key_file: Path | None) -> Any:
    """The Siège's TLS context (pyOpenSSL, as pyftpdlib takes it): TLS 1.2 at least, no
    compression, buffers given back by idle sessions."""
    from OpenSSL import SSL

    try:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_options(SSL.OP_NO_COMPRESSION)
        # an idle session gives its read and write buffers back (~34 kB each): the Siège
        # holds a session per waiting establishment (issue 15: 200 at once)
        context.set_mode(SSL.MODE_RELEASE_BUFFERS)
        context.use_certificate_chain_file(str(cert_file))
        context.use_privatekey_file(str(key_file or cert_file))
        context.check_privatekey()
    except (SSL.Error, OSError) as exc:
        said = {"cert": str(cert_file), "detail": str(exc)}
        raise TransportError(say=("engine.tls.unusable", said), kind=ErrorKind.TLS) from exc
    return context
