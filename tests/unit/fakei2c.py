"""A fake I2C bus whose chips behave like the real ones, register by register.

FakeBus has smbus2.SMBus's data methods and routes each call to the chip at the address;
an address without a chip raises OSError(ENXIO) as a real adapter does. The chips:

- StubChip: exactly Linux i2c-stub (256 registers of 16 bits; byte access uses the low
  byte; I2C block access walks consecutive registers, auto-incrementing the pointer).
  The QEMU guest's chips are i2c-stub chips, so drivers are tested against this too.
- DS3231, DS1307: i2c-stub-like register files with the chips' own rules (read-only and
  clear-only bits, the pointer wrapping at the end of the register map).
- LM75, TMP102: a pointer selects a 16-bit register, read MSB first (unlike i2c-stub).
- SSD1306: decodes the command/data stream into GDDRAM and answers `visible()`: the
  pixels a person would see on the panel, or none when the panel is off.
- Garbage: answers every read with the same byte (a bus stuck high answers 0xFF).
- Failing: raises the given errno for everything (e.g. ETIMEDOUT: a stuck bus).
"""

import errno
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class Chip:
    def read_byte_data(self, register: int) -> int:
        raise NotImplementedError

    def write_byte_data(self, register: int, value: int) -> None:
        raise NotImplementedError

    def read_word_data(self, register: int) -> int:
        raise OSError(errno.EOPNOTSUPP, "word access not modelled")

    def write_word_data(self, register: int, value: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "word access not modelled")

    def read_block(self, register: int, length: int) -> list[int]:
        raise NotImplementedError

    def write_block(self, register: int, data: Sequence[int]) -> None:
        raise NotImplementedError


class StubChip(Chip):
    """drivers/i2c/i2c-stub.c: `u16 words[256]`, a pointer, byte/word/I2C-block access."""

    size = 256

    def __init__(self, registers: Mapping[int, int] | None = None) -> None:
        self.words = [0] * 256
        self.pointer = 0
        for register, value in (registers or {}).items():
            self.words[register] = value

    def _index(self, register: int) -> int:
        return register % self.size  # the real chips wrap; i2c-stub never goes past 255

    def read_byte_data(self, register: int) -> int:
        self.pointer = self._index(register) + 1
        return self.words[self._index(register)] & 0xFF

    def write_byte_data(self, register: int, value: int) -> None:
        index = self._index(register)
        self.words[index] = self.words[index] & 0xFF00 | value & 0xFF
        self.pointer = index + 1

    def read_word_data(self, register: int) -> int:
        return self.words[self._index(register)]

    def write_word_data(self, register: int, value: int) -> None:
        self.words[self._index(register)] = value & 0xFFFF

    def read_block(self, register: int, length: int) -> list[int]:
        data = []
        for offset in range(length):
            data.append(self.words[self._index(register + offset)] & 0xFF)
        self.pointer = self._index(register + length)
        return data

    def write_block(self, register: int, data: Sequence[int]) -> None:
        for offset, value in enumerate(data):
            self.write_byte_data(register + offset, value)

    def byte(self, register: int) -> int:
        return self.words[register] & 0xFF


def bcd(number: int) -> int:
    """23 -> 0x23: the test's own BCD, kept apart from the driver's."""
    return int(str(number), 16)


class DS3231(StubChip):
    """Registers 0x00..0x12; the pointer wraps to 0 after 0x12. Temperature (0x11, 0x12)
    is read-only; status bits OSF/A2F/A1F can only be cleared, bits 6..4 read 0."""

    size = 0x13

    def __init__(
        self,
        registers: Mapping[int, int] | None = None,
        *,
        oscillator_stopped: bool = False,
        celsius_quarters: int = 25 * 4,
    ) -> None:
        defaults = {0x03: 0x01, 0x04: 0x01, 0x05: 0x01, 0x0E: 0x1C, 0x0F: 0x08}
        super().__init__({**defaults, **(registers or {})})
        if oscillator_stopped:
            self.words[0x0F] |= 0x80
        self.words[0x11] = (celsius_quarters >> 2) & 0xFF
        self.words[0x12] = (celsius_quarters & 0x03) << 6

    def write_byte_data(self, register: int, value: int) -> None:
        index = self._index(register)
        if index in (0x11, 0x12):
            return
        if index == 0x0F:
            old = self.words[0x0F]
            clear_only = old & 0x83 & value  # OSF, A2F, A1F: writing 1 keeps them
            value = clear_only | value & 0x08 | old & 0x04  # EN32kHz writable, BSY read-only
        super().write_byte_data(register, value)


class DS1307(StubChip):
    """Registers 0x00..0x07 and 56 bytes of RAM to 0x3F; the pointer wraps after 0x3F.
    Fresh from the factory the clock-halt bit (seconds bit 7) is set."""

    size = 0x40

    def __init__(
        self, registers: Mapping[int, int] | None = None, *, ram: Iterable[int] = ()
    ) -> None:
        super().__init__({0x00: 0x80, 0x03: 0x01, 0x04: 0x01, 0x05: 0x01, **(registers or {})})
        for offset, value in enumerate(ram):
            self.words[0x08 + offset] = value


class PointerSensor(Chip):
    """LM75 / TMP102: a pointer register picks one of four registers; 16-bit ones are
    sent MSB first, and reading on just repeats the register."""

    sixteen_bit = (True, False, True, True)

    def __init__(
        self,
        temperature: tuple[int, int],
        config: Sequence[int],
        limits: tuple[tuple[int, int], tuple[int, int]],
    ) -> None:
        self.registers: list[list[int]] = [
            list(temperature),
            list(config),
            list(limits[0]),
            list(limits[1]),
        ]

    def _register(self, pointer: int) -> list[int]:
        if pointer > 3:
            raise OSError(errno.EREMOTEIO, "pointer beyond the register map: NACK")
        return self.registers[pointer]

    def read_byte_data(self, register: int) -> int:
        return self._register(register)[0]

    def write_byte_data(self, register: int, value: int) -> None:
        self._register(register)[0] = value

    def read_word_data(self, register: int) -> int:
        content = self._register(register)  # SMBus words are little-endian on the wire
        return content[0] | content[-1] << 8

    def read_block(self, register: int, length: int) -> list[int]:
        content = self._register(register)
        return [content[i % len(content)] for i in range(length)]

    def write_block(self, register: int, data: Sequence[int]) -> None:
        target = self._register(register)
        target[: len(data[: len(target)])] = list(data[: len(target)])

    @property
    def temperature(self) -> tuple[int, int]:
        msb, lsb = self.registers[0]
        return msb, lsb

    @temperature.setter
    def temperature(self, value: tuple[int, int]) -> None:
        self.registers[0] = list(value)


class LM75(PointerSensor):
    def __init__(self, temperature: tuple[int, int] = (0x19, 0x00), config: int = 0x00):
        # Power-up limits: T_hyst 75 °C, T_os 80 °C.
        super().__init__(temperature, [config], ((0x4B, 0x00), (0x50, 0x00)))


class TMP102(PointerSensor):
    def __init__(
        self, temperature: tuple[int, int] = (0x19, 0x00), config: tuple[int, int] = (0x60, 0xA0)
    ):
        # Config 0x60A0 at power-up: R1 R0 = 1 1 (read-only), 4 Hz conversions.
        super().__init__(temperature, list(config), ((0x4B, 0x00), (0x50, 0x00)))


@dataclass
class Ssd1306State:
    display_on: bool = False
    charge_pump: bool = False
    contrast: int = 0x7F
    inverse: bool = False
    entire_on: bool = False
    segment_remap: bool = False
    com_reversed: bool = False
    multiplex: int = 64
    start_line: int = 0
    offset: int = 0
    com_pins: int = 0x12
    addressing: int = 2  # page addressing after reset
    column_start: int = 0
    column_end: int = 127
    page_start: int = 0
    page_end: int = 7
    column: int = 0
    page: int = 0


# Commands with argument bytes; everything else is a single byte.
_ARGS = {
    0x81: 1,
    0x20: 1,
    0x21: 2,
    0x22: 2,
    0xA8: 1,
    0xD3: 1,
    0xDA: 1,
    0xD5: 1,
    0xD9: 1,
    0xDB: 1,
    0x8D: 1,
    0xA3: 2,
    0x26: 6,
    0x27: 6,
    0x29: 5,
    0x2A: 5,
}


class SSD1306(Chip):
    """The controller of a 128xN OLED module, fed through I2C control bytes."""

    def __init__(self, height: int = 64) -> None:
        self.height = height
        self.ram = [bytearray(128) for _ in range(8)]
        self.state = Ssd1306State()
        self.commands: list[tuple[int, ...]] = []  # every decoded command, for tests
        self.data_bytes = 0
        self._pending: list[int] = []

    # I2C: the "register" of an SMBus write is the control byte.
    def write_byte_data(self, register: int, value: int) -> None:
        self._stream([register, value])

    def write_block(self, register: int, data: Sequence[int]) -> None:
        self._stream([register, *data])

    def read_byte_data(self, register: int) -> int:
        return 0x40 if not self.state.display_on else 0x00  # status: D6 = display off

    def read_block(self, register: int, length: int) -> list[int]:
        return [self.read_byte_data(register)] * length

    def _stream(self, stream: list[int]) -> None:
        index = 0
        while index < len(stream):
            control = stream[index]
            if control & 0x3F:
                raise OSError(errno.EIO, f"invalid SSD1306 control byte 0x{control:02x}")
            last = control & 0x80 == 0  # Co = 0: the rest of the message is one kind
            payload = stream[index + 1 :] if last else stream[index + 1 : index + 2]
            for byte in payload:
                if control & 0x40:
                    self._data(byte)
                else:
                    self._command_byte(byte)
            index = len(stream) if last else index + 2

    def _command_byte(self, byte: int) -> None:
        self._pending.append(byte)
        if len(self._pending) - 1 < _ARGS.get(self._pending[0], 0):
            return
        command, self._pending = tuple(self._pending), []
        self.commands.append(command)
        s = self.state
        op, args = command[0], command[1:]
        if op in (0xAE, 0xAF):
            s.display_on = op == 0xAF
        elif op == 0x8D:
            s.charge_pump = bool(args[0] & 0x04)
        elif op == 0x81:
            s.contrast = args[0]
        elif op in (0xA6, 0xA7):
            s.inverse = op == 0xA7
        elif op in (0xA4, 0xA5):
            s.entire_on = op == 0xA5
        elif op in (0xA0, 0xA1):
            s.segment_remap = op == 0xA1
        elif op in (0xC0, 0xC8):
            s.com_reversed = op == 0xC8
        elif op == 0xA8:
            s.multiplex = (args[0] & 0x3F) + 1
        elif op == 0xD3:
            s.offset = args[0] & 0x3F
        elif 0x40 <= op <= 0x7F:
            s.start_line = op & 0x3F
        elif op == 0xDA:
            s.com_pins = args[0]
        elif op == 0x20:
            s.addressing = args[0] & 0x03
        elif op == 0x21:
            s.column_start, s.column_end = args[0] & 0x7F, args[1] & 0x7F
            s.column = s.column_start
        elif op == 0x22:
            s.page_start, s.page_end = args[0] & 0x07, args[1] & 0x07
            s.page = s.page_start
        elif 0xB0 <= op <= 0xB7:
            s.page = op & 0x07
        elif op <= 0x0F:
            s.column = s.column & 0xF0 | op
        elif op <= 0x1F:
            s.column = (op & 0x07) << 4 | s.column & 0x0F

    def _data(self, byte: int) -> None:
        s = self.state
        self.ram[s.page][s.column] = byte
        self.data_bytes += 1
        if s.addressing == 0:  # horizontal: along the page, then down to the next
            s.column += 1
            if s.column > s.column_end:
                s.column = s.column_start
                s.page = s.page + 1 if s.page < s.page_end else s.page_start
        elif s.addressing == 1:  # vertical: down the column, then right
            s.page += 1
            if s.page > s.page_end:
                s.page = s.page_start
                s.column = s.column + 1 if s.column < s.column_end else s.column_start
        else:  # page addressing: along the page, wrapping within it
            s.column = s.column + 1 if s.column < 127 else 0

    def ram_pixel(self, column: int, row: int) -> bool:
        return bool(self.ram[row // 8][column] >> (row % 8) & 1)

    def visible(self) -> list[list[bool]]:
        """The panel as seen: rows of pixels, top row first, left pixel first.

        Modelled on the common modules, whose glass is mounted so that column remap
        (0xA1) and reversed COM scan (0xC8) show RAM page 0, column 0 at the top left.
        A COM pin setting that does not match the panel garbles the picture on a real
        module; here it is an assertion, so a wrong init sequence fails the test.
        """
        s = self.state
        expected_pins = 0x12 if self.height == 64 else 0x02
        assert s.com_pins & 0x32 == expected_pins, (
            f"COM pins 0x{s.com_pins:02x} on a {self.height}-row panel"
        )
        lit = s.display_on and s.charge_pump
        image = []
        for y in range(self.height):
            row_index = y if s.com_reversed else self.height - 1 - y
            ram_row = (row_index + s.start_line + s.offset) % 64
            shown = lit and row_index < s.multiplex
            line = []
            for x in range(128):
                column = x if s.segment_remap else 127 - x
                on = s.entire_on or self.ram_pixel(column, ram_row)
                line.append(shown and on != s.inverse)
            image.append(line)
        return image


class Garbage(Chip):
    """A chip (or a stuck bus) that answers every read with the same byte."""

    def __init__(self, fill: int = 0xFF) -> None:
        self.fill = fill

    def read_byte_data(self, register: int) -> int:
        return self.fill

    def write_byte_data(self, register: int, value: int) -> None:
        pass

    def read_block(self, register: int, length: int) -> list[int]:
        return [self.fill] * length

    def write_block(self, register: int, data: Sequence[int]) -> None:
        pass


class Failing(Chip):
    def __init__(self, code: int = errno.ETIMEDOUT) -> None:
        self.code = code

    def _fail(self) -> None:
        raise OSError(self.code, os.strerror(self.code))

    def read_byte_data(self, register: int) -> int:
        self._fail()
        return 0

    def write_byte_data(self, register: int, value: int) -> None:
        self._fail()

    def read_block(self, register: int, length: int) -> list[int]:
        self._fail()
        return []

    def write_block(self, register: int, data: Sequence[int]) -> None:
        self._fail()


BLOCK_MAX = 32


class FakeBus:
    """smbus2.SMBus's data methods over modelled chips, with a log of every call."""

    def __init__(self, chips: Mapping[int, Chip] | None = None) -> None:
        self.chips: dict[int, Chip] = dict(chips or {})
        self.log: list[tuple[str, int, int, tuple[int, ...]]] = []
        self.closed = False

    def _chip(self, address: int) -> Chip:
        chip = self.chips.get(address)
        if chip is None:
            raise OSError(errno.ENXIO, os.strerror(errno.ENXIO))
        return chip

    def methods_used(self) -> set[str]:
        return {entry[0] for entry in self.log}

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        self.log.append(("read_byte_data", i2c_addr, register, ()))
        return self._chip(i2c_addr).read_byte_data(register)

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self.log.append(("write_byte_data", i2c_addr, register, (value,)))
        self._chip(i2c_addr).write_byte_data(register, value)

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        self.log.append(("read_word_data", i2c_addr, register, ()))
        return self._chip(i2c_addr).read_word_data(register)

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        self.log.append(("write_word_data", i2c_addr, register, (value,)))
        self._chip(i2c_addr).write_word_data(register, value)

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if length > BLOCK_MAX:  # as smbus2 does
            raise ValueError(f"Desired block length over {BLOCK_MAX} bytes")
        self.log.append(("read_i2c_block_data", i2c_addr, register, (length,)))
        return self._chip(i2c_addr).read_block(register, length)

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: bool | None = None
    ) -> None:
        if len(data) > BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {BLOCK_MAX} bytes")
        if any(not 0 <= value <= 0xFF for value in data):
            raise ValueError("bytes only")
        self.log.append(("write_i2c_block_data", i2c_addr, register, tuple(data)))
        self._chip(i2c_addr).write_block(register, data)

    def close(self) -> None:
        self.closed = True
