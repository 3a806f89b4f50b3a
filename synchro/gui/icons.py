"""Tray and window icons, drawn with Pillow (no binary asset to maintain by hand).

Each tray state has its own look: two arrows turning (synchronisation) on a disc whose
colour and badge tell the state — grey idle, blue running, green OK (check mark),
red failed (cross), orange stopped (square). ``python -m synchro.gui.icons [DIR]`` writes
``synchro-<state>.png`` and ``synchro.ico`` into ``assets/`` for the packager.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from synchro.gui.ports import TrayState

_COLOURS: dict[TrayState, tuple[int, int, int]] = {
    TrayState.IDLE: (110, 120, 135),
    TrayState.RUNNING: (30, 110, 220),
    TrayState.OK: (30, 150, 70),
    TrayState.FAILED: (200, 40, 40),
    TrayState.STOPPED: (230, 140, 20),
}


def draw_icon(state: TrayState, size: int = 64) -> Image.Image:
    """The icon of ``state`` as an RGBA image of ``size`` × ``size`` pixels."""
    scale = 4  # draw large, then shrink: smooth edges without antialiasing support
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    colour = _COLOURS[state]
    draw.ellipse((0, 0, big - 1, big - 1), fill=(*colour, 255))
    _arrows(draw, big)
    _badge(draw, state, big)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _arrows(draw: ImageDraw.ImageDraw, big: int) -> None:
    """Two white half-circle arrows turning clockwise."""
    pad = big * 0.2
    box = (pad, pad, big - pad, big - pad)
    width = max(2, int(big * 0.08))
    white = (255, 255, 255, 255)
    draw.arc(box, 200, 330, fill=white, width=width)
    draw.arc(box, 20, 150, fill=white, width=width)
    head = big * 0.1
    # arrow heads at the ends of both arcs (330° and 150°)
    right = (big - pad, big / 2 - head * 0.6)
    draw.polygon(
        [
            (right[0] - head, right[1] - head * 0.2),
            (right[0] + head, right[1] - head * 0.2),
            (right[0], right[1] + head),
        ],
        fill=white,
    )
    left = (pad, big / 2 + head * 0.6)
    draw.polygon(
        [
            (left[0] - head, left[1] + head * 0.2),
            (left[0] + head, left[1] + head * 0.2),
            (left[0], left[1] - head),
        ],
        fill=white,
    )


def _badge(draw: ImageDraw.ImageDraw, state: TrayState, big: int) -> None:
    """A small mark in the centre telling the state."""
    white = (255, 255, 255, 255)
    c = big / 2
    r = big * 0.13
    w = max(2, int(big * 0.06))
    if state is TrayState.OK:
        draw.line(
            [(c - r, c), (c - r * 0.2, c + r * 0.8), (c + r, c - r * 0.8)],
            fill=white,
            width=w,
            joint="curve",
        )
    elif state is TrayState.FAILED:
        draw.line([(c - r, c - r), (c + r, c + r)], fill=white, width=w)
        draw.line([(c - r, c + r), (c + r, c - r)], fill=white, width=w)
    elif state is TrayState.STOPPED:
        draw.rectangle((c - r * 0.8, c - r * 0.8, c + r * 0.8, c + r * 0.8), fill=white)
    elif state is TrayState.RUNNING:
        for dx in (-r, 0.0, r):
            draw.ellipse((c + dx - w / 2, c - w / 2, c + dx + w / 2, c + w / 2), fill=white)


def icon_png_bytes(state: TrayState, size: int = 32) -> bytes:
    """PNG bytes of the icon, for FreeSimpleGUI's ``icon=`` of windows."""
    import io

    buffer = io.BytesIO()
    draw_icon(state, size).save(buffer, format="PNG")
    return buffer.getvalue()


def write_assets(folder: Path) -> list[Path]:
    """Write one PNG per state and a multi-size ``synchro.ico``; return the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for state in TrayState:
        path = folder / f"synchro-{state.value}.png"
        draw_icon(state, 64).save(path)
        written.append(path)
    ico = folder / "synchro.ico"
    draw_icon(TrayState.IDLE, 256).save(
        ico, sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
    )
    written.append(ico)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path("assets")
    for path in write_assets(folder):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
