"""What the status display shows for each state of the box (a pure function).

starting       name, "Starting...", the address once known
unclaimed      name and the setup code on the left, a QR code of the web UI's
               address on the right (scan it, or type the address shown)
ready          name, "Ready", the address of the web UI
degraded       name, "Needs attention", the address where the web UI says what
reset-confirm  after a 10 s hold of the button: press again within 30 s to erase
resetting      the factory reset runs: do not unplug
"""

from dataclasses import dataclass

from hardware.i2c import font
from hardware.i2c.canvas import Canvas, fit_qr

STATES = ("starting", "unclaimed", "ready", "degraded", "reset-confirm", "resetting")
CONFIRM_SECONDS = 30  # shown to the user; hardware.button holds the same number


@dataclass(frozen=True)
class BoxView:
    name: str
    address: str  # e.g. "192.168.1.23", "" while unknown
    state: str  # one of STATES
    setup_code: str = ""
    url: str = ""  # the web UI; "" means http://<address>/


def _wrap(text: str, columns: int) -> list[str]:
    """Split at most `columns` wide, preferring to break after . / : - or a space."""
    lines: list[str] = []
    while len(text) > columns:
        cut = max((text.rfind(mark, 0, columns) for mark in "./:- "), default=-1) + 1
        cut = cut if cut > 0 else columns
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return lines + [text] if text else lines


def _state_lines(view: BoxView) -> list[str]:
    address = view.address or "(no address yet)"
    if view.state == "starting":
        return [view.name, "", "Starting...", "", view.address]
    if view.state == "ready":
        return [view.name, "", "Ready", "", address]
    if view.state == "degraded":
        return [view.name, "", "Needs attention:", "see the web UI at", address]
    if view.state == "reset-confirm":
        return [
            "Factory reset?",
            "",
            "Press the button",
            f"again within {CONFIRM_SECONDS} s",
            "to erase this box.",
            "",
            "Otherwise nothing",
            "changes.",
        ]
    return ["Factory reset", "", "Erasing this box.", "Do not unplug it."]


def _fit(lines: list[str], rows: int) -> list[str]:
    """Drop the spacer lines when the panel is short."""
    if len(lines) > rows:
        lines = [line for line in lines if line]
    return lines[:rows]


def layout(view: BoxView, width: int = 128, height: int = 64) -> Canvas:
    if view.state not in STATES:
        raise ValueError(f"unknown box state {view.state!r}")
    canvas = Canvas(width, height)
    if view.state == "unclaimed":
        _unclaimed(canvas, view)
        return canvas
    for row, line in enumerate(_fit(_state_lines(view), canvas.rows)):
        if line:
            canvas.text(row, line)
    return canvas


def _unclaimed(canvas: Canvas, view: BoxView) -> None:
    url = view.url or (f"http://{view.address}/" if view.address else "")
    text_width = canvas.width
    if url:
        size = fit_qr(url, canvas.height).size
        x = canvas.width - size  # against the right edge, centred vertically
        canvas.qr(url, x, (canvas.height - size) // 2, canvas.height)
        text_width = x - 2
    columns = (text_width + 1) // font.CELL_WIDTH
    address = _wrap(view.address, columns) if view.address else []
    code = _wrap(view.setup_code, columns)  # XXXX-XXXX-XXXX is wider than the text
    lines = [view.name[:columns], "", "Setup code", *code, ""]
    if canvas.rows < 8:
        lines = [view.name[:columns], *code]
    elif address:
        lines.append("Scan, or:" if url else "Open:")
    lines = _fit(lines + address, canvas.rows)
    for row, line in enumerate(lines):
        if line:
            canvas.text(row, line[:columns])
