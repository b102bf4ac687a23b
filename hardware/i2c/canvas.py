"""A 1-bit drawing surface for the status display, and its framebuffer of pages.

The canvas records what it drew (text rows, QR codes) next to the pixels, so tests can
assert the layout as data and, separately, what the pixels show.
"""

from dataclasses import dataclass

import segno

from hardware.i2c import font


@dataclass(frozen=True)
class Framebuffer:
    """Pixels packed as the SSD1306 wants them: one page per 8 rows, one byte per
    column, bit 0 the top row of the page."""

    width: int
    height: int
    pages: tuple[bytes, ...]


@dataclass(frozen=True)
class TextItem:
    row: int  # text line, 8 pixels high
    x: int  # left pixel
    text: str  # as drawn (clipped to the width; unknown characters are drawn as '?')


@dataclass(frozen=True)
class QrItem:
    data: str
    x: int  # top-left pixel of the quiet zone
    y: int
    scale: int  # pixels per module
    modules: int  # modules per side, without the quiet zone
    border: int  # quiet zone, in modules

    @property
    def size(self) -> int:
        return (self.modules + 2 * self.border) * self.scale


class Canvas:
    def __init__(self, width: int = 128, height: int = 64) -> None:
        if width <= 0 or height <= 0 or height % 8:
            raise ValueError("the display is a whole number of 8-row pages")
        self.width = width
        self.height = height
        self._pixels = bytearray(width * height)
        self._texts: list[TextItem] = []
        self._qrs: list[QrItem] = []

    @property
    def rows(self) -> int:
        return self.height // font.CELL_HEIGHT

    @property
    def texts(self) -> tuple[TextItem, ...]:
        return tuple(self._texts)

    @property
    def qr_codes(self) -> tuple[QrItem, ...]:
        return tuple(self._qrs)

    def columns(self, x: int = 0) -> int:
        """How many characters fit on a line starting at pixel x."""
        return max(0, (self.width - x + 1) // font.CELL_WIDTH)

    def set(self, x: int, y: int, on: bool = True) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self._pixels[y * self.width + x] = 1 if on else 0

    def get(self, x: int, y: int) -> bool:
        return bool(self._pixels[y * self.width + x])

    def fill(self, x: int, y: int, width: int, height: int, on: bool = True) -> None:
        for row in range(y, y + height):
            for column in range(x, x + width):
                self.set(column, row, on)

    def text(self, row: int, text: str, x: int = 0) -> TextItem:
        """Draw one line of text on text row `row`, clipped to the width."""
        if not 0 <= row < self.rows:
            raise ValueError(f"text row {row} is off a {self.height}-pixel display")
        shown = "".join(
            c if font.FIRST <= ord(c) <= font.LAST else font.REPLACEMENT
            for c in text[: self.columns(x)]
        )
        top = row * font.CELL_HEIGHT
        for index, char in enumerate(shown):
            left = x + index * font.CELL_WIDTH
            for dx, column in enumerate(font.glyph(char)):
                for dy in range(7):
                    if column >> dy & 1:
                        self.set(left + dx, top + dy)
        item = TextItem(row, x, shown)
        self._texts.append(item)
        return item

    def qr(self, data: str, x: int, y: int, size: int) -> QrItem:
        """A QR code of `data`, as large as fits a size x size square at (x, y).

        Light modules are lit pixels: an OLED shows light on black, and scanners expect
        dark modules on a light quiet zone, so the quiet zone is lit too.
        """
        matrix = _qr_matrix(data)
        item = fit_qr(data, size, x, y)
        self.fill(x, y, item.size, item.size, on=True)
        offset = item.border * item.scale
        for my, line in enumerate(matrix):
            for mx, dark in enumerate(line):
                if dark:
                    self.fill(
                        x + offset + mx * item.scale,
                        y + offset + my * item.scale,
                        item.scale,
                        item.scale,
                        on=False,
                    )
        self._qrs.append(item)
        return item

    def framebuffer(self) -> Framebuffer:
        pages = []
        for page in range(self.height // 8):
            data = bytearray(self.width)
            for bit in range(8):
                row = (page * 8 + bit) * self.width
                for x in range(self.width):
                    if self._pixels[row + x]:
                        data[x] |= 1 << bit
            pages.append(bytes(data))
        return Framebuffer(self.width, self.height, tuple(pages))


def _qr_matrix(data: str) -> list[list[bool]]:
    code = segno.make(data, micro=False)
    return [[bool(m) for m in row] for row in code.matrix_iter(scale=1, border=0)]


def fit_qr(data: str, size: int, x: int = 0, y: int = 0) -> QrItem:
    """Where and how large the QR code of `data` goes in a size x size square."""
    modules = len(_qr_matrix(data))
    # Bigger modules first (the panel is an inch wide), then the widest quiet zone at
    # that scale; the standard zone is 4 modules, scanners manage with 2.
    scale, border = max((size // (modules + 2 * b), b) for b in (4, 3, 2))
    if scale == 0:
        scale, border = size // (modules + 2), 1
    if scale == 0:
        raise ValueError(f"a {modules}-module QR code does not fit {size} pixels")
    return QrItem(data, x, y, scale, modules, border)
