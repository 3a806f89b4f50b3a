"""Translate ftplib, socket and ssl errors into Synchro's, at the client's boundary.

    ConnectionTestError(code, message)   reaching or logging in to the Siège failed (its
                                        kind: network, tls, auth or config)
        dns          the Siège's name does not resolve
        refused      nothing listens there (or the network is unreachable)
        timeout      no answer in time (firewall dropping packets, wrong address)
        tls          the TLS negotiation failed, or FTPS is required/missing
        certificate  the certificate is not the pinned one
        auth         wrong site code or secret; or this address is banned for a while
        quota        the file is larger than the Siège accepts
        hq-disk      the Siège's disk has no room for the file (retried: room may be made)
        protocol     any other unexpected answer
    TransportError(message)             a transfer was cut or failed after login

``action`` (e.g. ``"connexion"``, ``"envoi de X"``) says what was being done; during the
``"connexion"`` step every failure is a ``ConnectionTestError``.
"""

from __future__ import annotations

import contextlib
import errno
import ftplib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from synchro.errors import ConnectionTestError, SynchroError, TransportError

CONNECT = "connexion"


@dataclass(frozen=True)
class Where:
    host: str
    port: int
    site: str
    timeout: float

    @property
    def hp(self) -> str:
        return f"{self.host}:{self.port}"


class PinMismatch(Exception):
    """The server's certificate is not the pinned one (``got`` = its fingerprint)."""

    def __init__(self, got: str) -> None:
        super().__init__(got)
        self.got = got


@contextlib.contextmanager
def translate(w: Where, action: str) -> Iterator[None]:
    """Re-raise library errors from the block as ConnectionTestError / TransportError."""
    try:
        yield
    except SynchroError:
        raise
    except PinMismatch as exc:
        raise ConnectionTestError("certificate", _pin_message(w, exc.got)) from exc
    except ftplib.Error as exc:
        raise _ftp_reply(w, action, str(exc).strip()) from exc
    except EOFError as exc:
        raise _cut(w, action, "le siège a fermé la connexion") from exc
    except OSError as exc:
        raise _os_error(w, action, exc) from exc


def reply_after_cut(ftp: ftplib.FTP, wait_s: float = 2.0) -> str | None:
    """The reply the Siège sent when it ended a transfer itself (``452``: its disk full),
    read after the data connection broke; None when none comes within ``wait_s`` (the
    network was cut)."""
    sock = ftp.sock
    if sock is None:
        return None
    before = sock.gettimeout()
    try:
        sock.settimeout(wait_s)
        return ftp.getresp()
    except ftplib.Error as exc:
        return str(exc).strip()
    except (OSError, EOFError):
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(before)


def _pin_message(w: Where, got: str) -> str:
    return (
        f"Le certificat présenté par le siège {w.hp} (empreinte {got[:16]}…) n'est pas celui "
        "enregistré sur ce poste. Si le siège a renouvelé son certificat, vérifiez la nouvelle "
        "empreinte auprès du siège puis lancez « synchro trust » ; sinon, la connexion est "
        "peut-être interceptée : ne continuez pas."
    )


def _ftp_reply(w: Where, action: str, reply: str) -> TransportError:
    code = reply[:3]
    if code == "530":
        return ConnectionTestError(
            "auth",
            f"Le siège {w.hp} refuse la connexion de l'établissement {w.site} : code ou secret "
            f"incorrect ({reply}). Recollez le jeton fourni par le siège "
            f"(« synchro site add {w.site} » au siège).",
        )
    if code == "421" and "bloqu" in reply.lower():
        return ConnectionTestError(
            "auth",
            f"Le siège {w.hp} bloque temporairement cette adresse après plusieurs échecs de "
            "connexion. Corrigez le secret (jeton du siège) puis réessayez dans 15 minutes.",
        )
    if "SSL/TLS required" in reply:
        return ConnectionTestError(
            "tls",
            f"Le siège {w.hp} exige une connexion chiffrée (FTPS). Collez le jeton de connexion "
            "du siège, qui contient l'empreinte de son certificat.",
        )
    if code == "552":
        return ConnectionTestError(
            "quota",
            f"Le siège {w.hp} refuse ce fichier, trop gros ({reply}). Augmentez la taille "
            "maximale d'envoi dans les réglages du siège.",
        )
    if code == "452":
        return ConnectionTestError(
            "hq-disk",
            f"Le disque du siège {w.hp} est plein : il ne peut pas recevoir ce fichier "
            f"({reply}). Prévenez le siège ; l'envoi reprendra à la prochaine tentative.",
        )
    if action == CONNECT and code in ("500", "502", "504", "534") and "AUTH" in reply.upper():
        return ConnectionTestError(
            "tls",
            f"Le serveur {w.hp} ne propose pas FTPS ({reply}). Vérifiez que c'est bien le "
            "serveur Synchro du siège, ou autorisez le FTP non chiffré des deux côtés.",
        )
    if code.startswith("4") and action != CONNECT:
        return _cut(w, action, reply)
    return ConnectionTestError(
        "protocol",
        f"Réponse inattendue du siège {w.hp} pendant « {action} » : {reply}. Vérifiez que "
        "les deux postes utilisent la même version de Synchro.",
    )


def _os_error(w: Where, action: str, exc: OSError) -> TransportError:
    if isinstance(exc, socket.gaierror):
        return ConnectionTestError(
            "dns",
            f"Adresse du siège introuvable : « {w.host} » ne correspond à aucune machine (DNS). "
            "Vérifiez l'adresse du siège et l'accès Internet de ce poste.",
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionTestError(
            "refused",
            f"Le siège {w.hp} refuse la connexion : rien n'écoute sur ce port. Vérifiez que "
            "Synchro tourne au siège, le numéro de port, et la redirection de port du routeur.",
        )
    if isinstance(exc, TimeoutError):
        return ConnectionTestError(
            "timeout",
            f"Le siège {w.hp} ne répond pas (pas de réponse en {w.timeout:g} s pendant "
            f"« {action} »). Vérifiez l'adresse, le pare-feu du siège (port de contrôle et "
            "ports passifs) ou réessayez plus tard.",
        )
    if isinstance(exc, ssl.SSLError) and action == CONNECT:
        return ConnectionTestError(
            "tls",
            f"Échec de la négociation TLS avec {w.hp} ({exc.reason or exc}). Vérifiez que "
            "l'adresse est celle du serveur Synchro du siège.",
        )
    if action == CONNECT:
        unreachable = exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET)
        return ConnectionTestError(
            "refused" if unreachable else "protocol",
            f"Connexion au siège {w.hp} impossible : {exc.strerror or exc}. Vérifiez le réseau "
            "de ce poste et l'adresse du siège.",
        )
    return _cut(w, action, exc.strerror or str(exc))


def _cut(w: Where, action: str, detail: str) -> TransportError:
    if action == CONNECT:
        return ConnectionTestError(
            "protocol", f"Connexion au siège {w.hp} interrompue : {detail}. Réessayez."
        )
    return TransportError(
        f"Transfert interrompu avec le siège {w.hp} pendant « {action} » : {detail}. "
        "Il reprendra où il s'est arrêté à la prochaine tentative."
    )
