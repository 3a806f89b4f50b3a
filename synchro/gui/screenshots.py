"""Render every window in French and English to PNG: ``python -m synchro.gui.screenshots OUT``.

Windows are built with the same ``make_*`` functions the program uses, filled with the
manual's example values, and captured with ImageMagick's ``import -window`` on the current
display; without ``DISPLAY`` an Xvfb is started for the run and stopped by PID. Xvfb has no
window manager, so the window title is drawn above each capture.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from synchro.config.model import Config, EmailSettings, HQSettings, MailSecurity, Role, SiteSettings
from synchro.gui.icons import draw_icon
from synchro.gui.ports import (
    STATE_FAILED,
    STATE_OK,
    STATE_RUNNING,
    STATE_STOPPED,
    Progress,
    ReportDetail,
    ReportRow,
    TrayState,
)
from synchro.i18n import LANGUAGES, tr

T = dt.datetime
ROWS = [
    ReportRow("4", "3615", T(2005, 12, 6, 15, 15, 11), None, STATE_RUNNING, rows=1520),
    ReportRow("3", "3615", T(2005, 12, 6, 9, 25, 44), T(2005, 12, 6, 10, 18, 27), STATE_OK, 12345),
    ReportRow("2", "3615", T(2005, 12, 6, 9, 20, 7), T(2005, 12, 6, 9, 21, 28), STATE_STOPPED, 10),
    ReportRow("1", "3615", T(2005, 12, 5, 23, 0, 0), T(2005, 12, 6, 3, 2, 14), STATE_FAILED, 0, 1),
]
EMAIL = EmailSettings(
    recipients=("info@votreserveur.com",),
    sender="info@votreserveur.com",
    server="smtp.wanadoo.fr",
    port=587,
    security=MailSecurity.STARTTLS,
    login="info",
    password="secret",
)
HQ_CONFIG = Config(
    role=Role.HQ,
    site="0001",
    last_sync=T(2005, 12, 6, 23, 0, 0),
    send_email=True,
    hq=HQSettings(servers=1),
    email=EMAIL,
)
SITE_CONFIG = Config(
    role=Role.SITE,
    site="3615",
    last_sync=T(2005, 12, 6, 23, 0, 0),
    site_settings=SiteSettings(hq_address="192.168.0.24"),
    email=EMAIL,
)


def capture(window: object, title: str) -> Image.Image:
    """The window's pixels (ImageMagick ``import``) under a drawn title bar."""
    import FreeSimpleGUI as sg

    assert isinstance(window, sg.Window)
    for _ in range(3):
        window.refresh()
    root = window.TKroot
    png = subprocess.run(
        ["import", "-window", str(root.winfo_id()), "png:-"], check=True, capture_output=True
    ).stdout
    body = Image.open(io.BytesIO(png)).convert("RGB")
    return with_title(body, title)


def with_title(body: Image.Image, title: str) -> Image.Image:
    bar = 28
    image = Image.new("RGB", (body.width + 2, body.height + bar + 1), (60, 70, 90))
    image.paste(body, (1, bar))
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(
            "DejaVuSans-Bold.ttf", 14
        )
    except OSError:
        font = ImageFont.load_default()
    draw.bitmap((6, 6), draw_icon(TrayState.IDLE, 16).getchannel("A"), fill=(255, 255, 255))
    draw.text((28, 6), title, fill=(255, 255, 255), font=font)
    return image


# The sample check findings of a Serveur's Test: (table, column, code, values), the words
# of ``locales/check.json`` as the schema check says a limit that is here, not at the Siège.
FINDINGS: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("clients", "nom", "short_chars", {"have": "VARCHAR(20)", "m": 120}),
    (
        "ventes",
        "montant",
        "decimal",
        {"have": "DECIMAL(8,2)", "need": "DECIMAL(12,2)", "suggest": "DECIMAL(12,2)"},
    ),
)


def finding_line(table: str, column: str, code: str, values: dict[str, object], lang: str) -> str:
    """A sample finding's line: a limit here, the Siège's side holding more (the check's own
    ``check.line`` words; tests/test_gui_tray.py compares it with the check's text)."""
    sides = {"side": tr("check.side.here", lang), "other": tr("check.side.hq", lang)}
    why = tr(f"check.{code}", lang, **sides, **values)
    fix = tr(f"check.{code}.fix", lang, **sides, **values)
    return tr("check.line", lang, where=f"{table}.{column}", why=why, fix=fix)


def _test_result(lang: str) -> str:
    """What Test shows for a Serveur whose schema check found problems: the connection
    (the transport's own French text), then the check's lines."""
    findings = [finding_line(*f, lang) for f in FINDINGS]
    lines = [
        "Connexion au siège 192.168.0.24:21 réussie (établissement 3615, FTPS, certificat "
        "vérifié) ; 0 fichier(s) en attente.",
        tr("check.sent", lang),
        tr("check.compared", lang, source=tr("check.source.hq_file", lang, date="06/12/2005")),
        tr("check.problems", lang, n=len(findings)),
    ]
    return "\n".join(lines + ["  " + f for f in findings])


def scenes(lang: str) -> Iterator[tuple[str, Callable[[], object]]]:
    """(file name, function opening the window ready to capture) for every screen."""
    from synchro.gui.windows import (
        email,
        general,
        general_layout,
        login,
        password,
        rapport,
        wizard_layout,
    )

    def general_window(config: Config, running: bool) -> object:
        key = "gui.status.start_hq" if config.is_hq else "gui.status.start_site"
        status = [f"11/18 17:39:02 : {tr(key, lang)}"]
        window = general_layout.make_general_window(config, lang, False, status)
        if running:
            window[general_layout.STOP].update(disabled=False)
            window[general_layout.RAZ].update(disabled=False)
            window[general_layout.MANUAL].update(disabled=True)
            fake = general.GeneralController.__new__(general.GeneralController)
            fake.window = window
            fake.shell = _LangShell(lang)  # type: ignore[assignment]
            fake.show_progress(Progress(12345, 1_250_000, "3615 : envoi", 0.6))
        else:
            window[general_layout.STOP].update(disabled=True)
            window[general_layout.RAZ].update(disabled=True)
        if not config.is_hq:
            window[general_layout.TEST_RESULT].update(_test_result(lang), text_color="#b00020")
        return window

    def wizard_at(step: int, config: Config) -> object:
        window = wizard_layout.make_wizard_window(
            config, ["SQLite3", "PostgreSQL Unicode"], lang, today=dt.date(2005, 12, 6)
        )
        wizard_layout.show_step(window, step, lang)
        if step == 2:
            window[wizard_layout.TABLES].update(values=["articles", "clients", "ventes"])
        return window

    yield "login", lambda: login.make_login_window(lang)
    yield "general-siege", lambda: general_window(HQ_CONFIG, True)
    yield "general-serveur", lambda: general_window(SITE_CONFIG, False)
    yield "rapport", lambda: rapport.make_rapport_window(ROWS, lang)
    yield (
        "rapport-detail",
        lambda: rapport.make_detail_window(
            ReportDetail(
                ROWS[3],
                "Siège injoignable : connexion refusée (192.168.0.24:21).",
                ("ventes (7) : NOT NULL constraint failed: ventes.qte",),
                ("clients (12) : modifié au siège et en 3615, version du siège gardée",),
            ),
            lang,
        ),
    )
    yield "email", lambda: email.make_email_window(EMAIL, lang)
    yield "password", lambda: password.make_password_window(lang)
    base = Config(role=Role.SITE, site="3615", language=lang)
    for step in range(wizard_layout.STEPS):
        yield f"wizard-{step + 1}", lambda step=step: wizard_at(step, base)  # type: ignore[misc]
    hq = Config(role=Role.HQ, site="0001", language=lang)
    yield "wizard-4-siege", lambda: wizard_at(3, hq)


class _LangShell:
    def __init__(self, lang: str) -> None:
        self.lang = lang


def render_all(
    out: Path, languages: tuple[str, ...] = LANGUAGES, only: tuple[str, ...] = ()
) -> list[Path]:
    """Write ``<name>-<lang>.png`` for every scene and language, plus the tray icons."""
    from synchro.gui.base import setup_theme

    setup_theme()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for lang in languages:
        for name, opener in scenes(lang):
            if only and name not in only:
                continue
            window = opener()
            title = window.TKroot.title()  # type: ignore[attr-defined]
            path = out / f"{name}-{lang}.png"
            capture(window, title).save(path)
            window.close()  # type: ignore[attr-defined]
            written.append(path)
    sheet = Image.new("RGBA", (5 * 72, 64), (255, 255, 255, 255))
    for i, state in enumerate(TrayState):
        icon = draw_icon(state, 64)
        sheet.paste(icon, (i * 72, 0), icon)
    path = out / "tray-icons.png"
    sheet.save(path)
    written.append(path)
    return written


@contextmanager
def display() -> Iterator[None]:
    """Use ``DISPLAY``; without one start a private Xvfb, stopped by PID at the end."""
    if os.environ.get("DISPLAY"):
        yield
        return
    exe = shutil.which("Xvfb")
    if exe is None:
        raise SystemExit("no DISPLAY and no Xvfb: install xvfb or run under a desktop")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        number = pipe.readline().strip().decode()
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield
    finally:
        del os.environ["DISPLAY"]
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs/screenshots")
    if shutil.which("import") is None:
        raise SystemExit("ImageMagick's import is needed (apt-get install imagemagick)")
    with display():
        for path in render_all(out):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
