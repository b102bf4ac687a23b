"""SSD1306 OLED display (128x64 or 128x32) at 0x3C.

Every I2C write starts with a control byte: 0x00 for a stream of commands, 0x40 for a
stream of display data. As SMBus block writes that control byte is the "register", so
the driver only needs write_i2c_block_data (at most 32 bytes a call; the chip keeps its
address pointer across transactions, so a page goes out in four blocks).
"""

from collections.abc import Sequence

from hardware.errors import talking_to
from hardware.i2c import BLOCK_MAX, Bus
from hardware.i2c.canvas import Canvas, Framebuffer

__all__ = ["DISPLAY_ADDRESS", "Canvas", "Framebuffer", "Ssd1306"]

DISPLAY_ADDRESS = 0x3C
CONTROL_COMMANDS = 0x00
CONTROL_DATA = 0x40

SET_CONTRAST = 0x81
DISPLAY_OFF = 0xAE
DISPLAY_ON = 0xAF
NOP = 0xE3
COLUMN_ADDRESS = 0x21
PAGE_ADDRESS = 0x22


def init_sequence(width: int, height: int) -> list[int]:
    """Power-up commands for the common modules (internal charge pump, horizontal
    addressing, mirrored both ways so the panel reads upright)."""
    return [
        DISPLAY_OFF,
        0xD5,
        0x80,  # clock divide / oscillator: the reset value
        0xA8,
        height - 1,  # multiplex ratio: one COM per row
        0xD3,
        0x00,  # no display offset
        0x40,  # start line 0
        0x8D,
        0x14,  # charge pump on: modules without an external VCC
        0x20,
        0x00,  # horizontal addressing: pointer wraps to next page
        0xA1,  # column 127 is SEG0 (module wiring)
        0xC8,  # scan COM from the bottom (module wiring)
        0xDA,
        0x12 if height == 64 else 0x02,  # COM pins: alternate for 64 rows
        SET_CONTRAST,
        0x7F,
        0xD9,
        0xF1,  # pre-charge for the internal charge pump
        0xDB,
        0x40,  # VCOMH deselect level
        0xA4,  # show RAM (not all pixels on)
        0xA6,  # normal, not inverted
        0x2E,  # no scrolling
        DISPLAY_ON,
    ]


class Ssd1306:
    def __init__(
        self, bus: Bus, address: int = DISPLAY_ADDRESS, width: int = 128, height: int = 64
    ) -> None:
        if width != 128 or height not in (32, 64):
            raise ValueError("SSD1306 modules are 128x64 or 128x32")
        self._bus = bus
        self._address = address
        self.width = width
        self.height = height
        # What the panel holds, page by page; None until written (RAM is random at power-up).
        self._shown: list[bytes | None] = [None] * (height // 8)

    def _what(self) -> str:
        return f"display at 0x{self._address:02x}"

    def _commands(self, commands: Sequence[int]) -> None:
        with talking_to(self._what()):
            for start in range(0, len(commands), BLOCK_MAX):
                self._bus.write_i2c_block_data(
                    self._address, CONTROL_COMMANDS, list(commands[start : start + BLOCK_MAX])
                )

    def probe(self) -> None:
        """A no-op command: DeviceAbsent if nothing acknowledges it. It changes nothing on
        the screen (the chip cannot be read back over I2C on most modules)."""
        with talking_to(self._what()):
            self._bus.write_byte_data(self._address, CONTROL_COMMANDS, NOP)

    def init(self) -> None:
        self._commands(init_sequence(self.width, self.height))
        self._shown = [None] * (self.height // 8)

    def show(self, framebuffer: Framebuffer | Canvas) -> int:
        """Send the pages that differ from what the panel shows; returns how many."""
        if isinstance(framebuffer, Canvas):
            framebuffer = framebuffer.framebuffer()
        if (framebuffer.width, framebuffer.height) != (self.width, self.height):
            raise ValueError(
                f"a {framebuffer.width}x{framebuffer.height} framebuffer "
                f"for a {self.width}x{self.height} display"
            )
        sent = 0
        for page, data in enumerate(framebuffer.pages):
            if self._shown[page] == data:
                continue
            self._commands([COLUMN_ADDRESS, 0, self.width - 1, PAGE_ADDRESS, page, page])
            with talking_to(self._what()):
                for start in range(0, len(data), BLOCK_MAX):
                    self._bus.write_i2c_block_data(
                        self._address, CONTROL_DATA, list(data[start : start + BLOCK_MAX])
                    )
            self._shown[page] = bytes(data)
            sent += 1
        return sent

    def contrast(self, level: int) -> None:
        if not 0 <= level <= 255:
            raise ValueError("contrast is 0..255")
        self._commands([SET_CONTRAST, level])

    def off(self) -> None:
        """Panel off (RAM kept): OLEDs burn in a static picture over months."""
        self._commands([DISPLAY_OFF])

    def on(self) -> None:
        self._commands([DISPLAY_ON])
