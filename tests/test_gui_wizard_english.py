"""The wizard in English under Xvfb: a connection token cut when pasted is refused in
English by the real token reader (``enrolment.join_with_token``, what the tray backend
calls), the wizard stays open, nothing is saved; the whole token is then taken."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gui_fake import FakeBackend, click, only, started_shell, text_of
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.model import Config
from synchro.enrolment import join_with_token
from synchro.gui.shell import GuiShell
from synchro.gui.windows import wizard_layout as w
from synchro.gui.windows.wizard import WizardController
from synchro.transport.token import make_token

pytestmark = pytest.mark.gui

TOKEN = make_token("siege.example.com", 2121, "3615", "s3cret", "ab" * 32)


class TokenBackend(FakeBackend):
    """The fake tray backend, but the token is read as ``AppBackend`` reads it."""

    def apply_connection_token(self, config: Config, token: str) -> Config:
        self.calls.append("apply_connection_token")
        return join_with_token(config, token)


@pytest.fixture
def backend(tmp_path: Path) -> TokenBackend:
    return TokenBackend(tmp_path, Config(language="en"), setup=True)


@pytest.fixture
def shell(xvfb: str, backend: TokenBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[GuiShell]:
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")  # the wizard opens in the system's language
    with started_shell(backend) as shell:
        yield shell


def wizard(shell: GuiShell) -> WizardController:
    return only(shell, WizardController)


def fill(shell: GuiShell, **values: Any) -> None:
    for key, value in values.items():
        wizard(shell).window[key].update(value)


def test_a_cut_token_is_refused_in_english_then_the_whole_one_is_taken(
    shell: GuiShell, backend: TokenBackend
) -> None:
    assert wizard(shell).lang == "en"
    click(shell, wizard(shell).window, w.NEXT)
    fill(shell, **{w.SITE_CODE: "3615"})
    click(shell, wizard(shell).window, w.NEXT)
    click(shell, wizard(shell).window, w.NEXT)
    cut = TOKEN.rsplit("-", 1)[0]  # the checksum left behind by the copy
    fill(shell, **{w.TOKEN: cut})
    click(shell, wizard(shell).window, w.NEXT)
    click(shell, wizard(shell).window, w.FINISH)
    shown = text_of(wizard(shell).window, w.MESSAGE)
    assert shown == (
        "Invalid settings: connection token: incomplete token: it was probably cut when "
        "copied and pasted"
    )
    assert backend.saved == [] and backend.calls == ["apply_connection_token"]
    fill(shell, **{w.TOKEN: TOKEN})
    click(shell, wizard(shell).window, w.FINISH)
    saved = backend.saved[-1]
    assert (saved.site, saved.site_settings.hq_address) == ("3615", "siege.example.com")
    assert (saved.site_settings.hq_port, saved.site_settings.secret) == (2121, "s3cret")
