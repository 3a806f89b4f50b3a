"""Words on screen, in French (default, the manual's words) and English.

Texts live in ``synchro/locales/<area>.json`` as ``{"key": {"fr": "...", "en": "..."}}``;
each area (gui, mail, cli, engine...) owns its file and every file is merged at first use.
``tr("key", "en", n=3)`` formats the text with ``str.format``; an unknown key or language
falls back to French, then to the key itself, so a missing translation never crashes.
"""

from __future__ import annotations

import json
import locale
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
_LOCALES = Path(__file__).with_name("locales")


@cache
def _texts() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(_LOCALES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, texts in data.items():
            merged[key] = dict(texts)
    return merged


def tr(key: str, lang: str = DEFAULT_LANGUAGE, /, **values: object) -> str:
    texts = _texts().get(key, {})
    text = texts.get(lang) or texts.get(DEFAULT_LANGUAGE) or key
    return text.format(**values) if values else text


def render(say: Sequence[Any], lang: str = DEFAULT_LANGUAGE, /) -> str:
    """A message given as ``(key, values)`` (how an error names its words, ``errors.Say``)
    in ``lang``; a value that is a list of such messages is each rendered and joined with
    « ; ». Also takes the ``[key, values]`` lists the Rapport keeps of them."""
    key, values = say[0], say[1]
    shown = {
        name: " ; ".join(render(item, lang) for item in value) if isinstance(value, list) else value
        for name, value in dict(values).items()
    }
    return tr(str(key), lang, **shown)


def system_language() -> str:
    """``en`` when the system locale is English, else the default French."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "en" if value.lower().startswith("en") else DEFAULT_LANGUAGE
    try:
        code = locale.getlocale()[0] or ""
    except ValueError:
        code = ""
    return "en" if code.lower().startswith("en") else DEFAULT_LANGUAGE
