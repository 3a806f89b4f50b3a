"""Two machines sending as one establishment (a shop's server copied to a new one, database
and Synchro's state, both left running): the one whose package the Siège did not take
keeps it, holds, and is given a way out (rule 3: nothing lost).

Both machines number their packages from the same state, so both make a package n° N.
The Siège applies the first that comes and refuses the other (``marks.same_as_applied``,
said at every round). The other machine used to see its number acknowledged and drop its
package: its rows, which its snapshot said sent, never travelled.

Now the Siège's package to an establishment names the digests of the last packages of it
that it applied (``acked_digests``, ``ACKED_NAMED`` of them). An establishment that finds
one of its own packages under such a number with other bytes (``notice``) keeps its
outbox, applies nothing, sends nothing, and says so at every run (``SentByAnother``,
``ErrorKind.TWIN``) until a person has stopped the other machine and chosen MANUELLE's
Envoyer or *Reprendre les données du groupe* here. Both do the same (``send_again``): what
the kept packages changed goes again, as the rows are now, in one package numbered after
the Siège's last one of this code (``engine.resend``; the Siège applies it as any
establishment's changes, with its conflict rule, from the position the oldest kept one was
made at), then the group's data are taken back (``take_back``): what
the other machine sent under this code never came here (a Siège's package leaves out an
establishment's own changes), and comes now with everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from synchro.engine.resend import TWIN, renumber
from synchro.errors import ErrorKind, SynchroError
from synchro.package import Manifest, sealed_digest

if TYPE_CHECKING:
    from synchro.engine.node import Node

ACKED_NAMED = 32  # the Siège names the digests of this many of a site's last packages


class SentByAnother(SynchroError):
    """The Siège holds, under number ``number`` of this establishment, a package this
    machine did not make: another machine sends under its code."""

    default_kind = ErrorKind.TWIN

    def __init__(self, code: str, number: int) -> None:
        self.code, self.number = code, number
        super().__init__(say=("engine.err.twin", {"code": code, "number": number}))


def held(node: Node) -> bool:
    return node.state.get_meta(TWIN) is not None


def hold_export(node: Node) -> None:
    """Raise ``SentByAnother`` while this machine holds (its export sends nothing)."""
    number = node.state.get_meta(TWIN)
    if number is not None:
        raise SentByAnother(node.code, int(number))


def compared(node: Node, manifest: Manifest, acked: int) -> tuple[list[int], int | None]:
    """The outbox's packages numbered up to ``acked`` that the Siège's package names: those
    the Siège holds as they are (applied: acknowledged), and the first under whose number
    it holds another package (None: none)."""
    named = manifest.meta.get("acked_digests")
    theirs = named.get(node.code) if isinstance(named, dict) else None
    same: list[int] = []
    other = None
    if isinstance(theirs, dict):
        for entry in node.state.outbox():
            digest = theirs.get(str(entry.sequence))
            if entry.sequence > acked or not isinstance(digest, str):
                continue
            if _same(entry.path, digest):
                same.append(entry.sequence)
            elif other is None:
                other = entry.sequence
    return same, other


def hold(node: Node, applied: list[int], meta: dict[str, str]) -> None:
    """Keep the outbox but for the packages the Siège applied as they are (``applied``:
    sent again under new numbers, they would take their keys back to older versions
    there), and set ``meta``, in one state transaction; their files go after."""
    with node.state.transaction():
        gone = node.state.drop_outbox(applied)
        for name, value in meta.items():
            node.state.set_meta(name, value)
    for path in gone:
        path.unlink(missing_ok=True)


def catch_up(node: Node, manifest: Manifest, acked: int) -> None:
    """A machine held as one of two, before its way out, reads the Siège's newest package
    to its code: the other machine may have sent more since (its numbers are the Siège's
    newest now), and the packages going again must be numbered after them."""
    known = node.state.get_meta(TWIN)
    if known is not None and manifest.kind == "hq" and acked > int(known):
        same, _other = compared(node, manifest, acked)
        hold(node, same, {TWIN: str(acked)})


def notice(node: Node, manifest: Manifest, acked: int) -> None:
    """At an establishment, a Siège package that acknowledges its packages up to
    ``acked``: raise ``SentByAnother`` (and hold) when one of them, still in the outbox,
    is not the package the Siège applied under its number — or when this machine holds
    already. Nothing else is dropped from the outbox before this check."""
    same, other = compared(node, manifest, acked)
    known = node.state.get_meta(TWIN)
    if other is None and known is None:
        return
    number = max(acked, int(known or 0))
    hold(node, same, {TWIN: str(number)})
    raise SentByAnother(node.code, other if other is not None else number)


def _same(path: Path, digest: str) -> bool:
    try:
        return sealed_digest(path).startswith(digest)
    except SynchroError:  # (a kept package unreadable: nothing to compare, said elsewhere)
        return True


def send_again(node: Node, take_back: Callable[[], None]) -> None:
    """A machine held as one of two (``TWIN``): its kept packages numbered again after the
    Siège's last of this code, then the group's data asked for (``renumber``)."""
    number = node.state.get_meta(TWIN)
    if number is not None:
        renumber(node, int(number) + 1, take_back)  # (its TWIN mark dropped with it)
