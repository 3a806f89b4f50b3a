"""No error a person may read is raised with French text alone: every Synchro error made in
``synchro/`` gives its words as a key of the locales (``say=``), so that it is said in the
UI's language (``errors.text_in``), or passes on text it did not write (a driver's, a
message built from words). A literal or an f-string given as the message is the old way,
French only, and fails here with the place that does it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import synchro.errors as errors

SOURCE = Path(errors.__file__).resolve().parent


def family(root: Path) -> set[str]:
    """The Synchro errors: those of ``synchro.errors`` and every class of ``root`` made from
    one of them (``EnrolRefused``, ``NotYet``...), by name."""
    names = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.SynchroError)
    }
    classes = [
        (node.name, {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases})
        for path in root.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    grown = True
    while grown:
        more = {name for name, bases in classes if bases & names} - names
        names |= more
        grown = bool(more)
    return names


FAMILY = family(SOURCE)
# Not a message: the first argument of these is their stable code (dns, tls, not-hq...);
# a mail error's text is made in the UI's language already (``mail.smtp``).
CODES = {"ConnectionTestError", "EnrolRefused", "MailSendError"}
# Programming errors no user meets (a function called before the one it needs).
INTERNAL = {("log.py", "register_secret() appelé avant setup_logging()")}


def literal_messages(root: Path = SOURCE) -> list[str]:
    """``file:line Error(text)`` of every call of a Synchro error with text as its message."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in FAMILY:
                continue
            args = node.args[1:] if name in CODES else node.args
            for arg in args:
                text = arg.value if isinstance(arg, ast.Constant) else None
                written = isinstance(arg, ast.JoinedStr) or isinstance(text, str)
                if written and (path.name, text) not in INTERNAL:
                    where = path.relative_to(root.parent)
                    found.append(f"{where}:{node.lineno} {name}({ast.unparse(arg)[:60]})")
    return found


def test_every_error_gives_its_words() -> None:
    assert {"ConfigError", "PackageError", "EnrolRefused", "NotYet"} <= FAMILY
    assert literal_messages() == []


def test_the_check_finds_a_message_written_in_french(tmp_path: Path) -> None:
    """The check itself: the old ways are found, the words and a code are not (a test that
    cannot fail proves nothing)."""
    package = tmp_path / "synchro"
    package.mkdir()
    (package / "sample.py").write_text(
        "raise PackageError(name, 'illisible')\n"
        "raise PlatformError(f'Action {a} inconnue')\n"
        "raise PackageError(name, say=('engine.pkg.illegible', {}))\n"
        "raise ConnectionTestError('dns', say=WORDS)\n"
        "raise ConnectionTestError('dns', 'hôte inconnu')\n"
        "raise ValueError('pas une erreur de Synchro')\n",
        encoding="utf-8",
    )
    assert literal_messages(package) == [
        "synchro/sample.py:1 PackageError('illisible')",
        "synchro/sample.py:2 PlatformError(f'Action {a} inconnue')",
        "synchro/sample.py:5 ConnectionTestError('hôte inconnu')",
    ]
