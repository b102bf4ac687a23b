"""Status LEDs and the button through the GPIO character device (/dev/gpiochipN).

`GpioChip.request()` returns `Lines`; Led and Button sit on that small interface, so
tests inject a fake and the real chip is only a thin layer of ioctls (gpio_uapi).
"""

import ctypes
import errno
import fcntl
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from hardware import gpio_uapi as uapi
from hardware.button import ButtonWatcher
from hardware.errors import DeviceAbsent

__all__ = [
    "Button",
    "ButtonWatcher",
    "CharDevChip",
    "GpioChip",
    "Led",
    "Lines",
    "find_chip",
    "request_struct",
]

Bias = Literal["pull-up", "pull-down", "disabled", "as-is"]
_BIAS = {
    "pull-up": uapi.FLAG_BIAS_PULL_UP,
    "pull-down": uapi.FLAG_BIAS_PULL_DOWN,
    "disabled": uapi.FLAG_BIAS_DISABLED,
    "as-is": 0,
}

Ioctl = Callable[[int, int, Any, bool], Any]


class Lines(Protocol):
    """Requested lines; values are logical (active = True, active-low applied)."""

    def get(self) -> tuple[bool, ...]: ...

    def set(self, values: dict[int, bool]) -> None: ...  # index in the request -> value

    def close(self) -> None: ...


class GpioChip(Protocol):
    def request(
        self,
        offsets: Sequence[int],
        *,
        output: bool,
        consumer: str,
        active_low: bool = False,
        bias: Bias = "as-is",
        debounce_us: int = 0,
        initial: Sequence[bool] = (),
    ) -> Lines: ...


def request_struct(
    offsets: Sequence[int],
    *,
    output: bool,
    consumer: str,
    active_low: bool = False,
    bias: Bias = "as-is",
    debounce_us: int = 0,
    initial: Sequence[bool] = (),
) -> uapi.LineRequest:
    """The struct gpio_v2_line_request for these lines (a pure function, tested)."""
    if not 0 < len(offsets) <= uapi.GPIO_V2_LINES_MAX:
        raise ValueError(f"request 1..{uapi.GPIO_V2_LINES_MAX} lines")
    request = uapi.LineRequest()
    for index, offset in enumerate(offsets):
        request.offsets[index] = offset
    request.num_lines = len(offsets)
    request.consumer = consumer.encode()[: uapi.GPIO_MAX_NAME_SIZE - 1]
    flags = uapi.FLAG_OUTPUT if output else uapi.FLAG_INPUT
    flags |= (uapi.FLAG_ACTIVE_LOW if active_low else 0) | _BIAS[bias]
    request.config.flags = flags
    every_line = (1 << len(offsets)) - 1
    attrs = 0
    if output and initial:  # without it the lines start inactive
        attribute = request.config.attrs[attrs]
        attribute.attr.id = uapi.ATTR_ID_OUTPUT_VALUES
        attribute.attr.values = sum(1 << i for i, on in enumerate(initial) if on)
        attribute.mask = every_line
        attrs += 1
    if debounce_us and not output:  # the kernel filters contact bounce for us
        attribute = request.config.attrs[attrs]
        attribute.attr.id = uapi.ATTR_ID_DEBOUNCE
        attribute.attr.debounce_period_us = debounce_us
        attribute.mask = every_line
        attrs += 1
    request.config.num_attrs = attrs
    return request


class _CharDevLines:
    def __init__(self, fd: int, count: int, ioctl: Ioctl, close: Callable[[int], None]):
        self._fd = fd
        self._count = count
        self._ioctl = ioctl
        self._close = close

    def get(self) -> tuple[bool, ...]:
        values = uapi.LineValues(bits=0, mask=(1 << self._count) - 1)
        buffer = bytearray(values)
        self._ioctl(self._fd, uapi.GPIO_V2_LINE_GET_VALUES_IOCTL, buffer, True)
        bits = uapi.LineValues.from_buffer(buffer).bits
        return tuple(bool(bits >> index & 1) for index in range(self._count))

    def set(self, values: dict[int, bool]) -> None:
        mask = bits = 0
        for index, on in values.items():
            if not 0 <= index < self._count:
                raise IndexError(f"line index {index} of {self._count}")
            mask |= 1 << index
            bits |= (1 << index) if on else 0
        buffer = bytearray(uapi.LineValues(bits=bits, mask=mask))
        self._ioctl(self._fd, uapi.GPIO_V2_LINE_SET_VALUES_IOCTL, buffer, True)

    def close(self) -> None:
        if self._fd >= 0:
            self._close(self._fd)
            self._fd = -1


class CharDevChip:
    """/dev/gpiochipN. open/ioctl/close are injectable for tests of the packing."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        opener: Callable[..., int] = os.open,
        ioctl: Ioctl = fcntl.ioctl,
        closer: Callable[[int], None] = os.close,
    ):
        self.path = os.fspath(path)
        self._open = opener
        self._ioctl = ioctl
        self._close = closer

    def _chip_fd(self) -> int:
        try:
            return self._open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
                raise DeviceAbsent(f"no GPIO chip at {self.path}") from error
            raise

    def label(self) -> str:
        fd = self._chip_fd()
        try:
            buffer = bytearray(ctypes.sizeof(uapi.ChipInfo))
            self._ioctl(fd, uapi.GPIO_GET_CHIPINFO_IOCTL, buffer, True)
            return uapi.ChipInfo.from_buffer(buffer).label.decode(errors="replace")
        finally:
            self._close(fd)

    def request(
        self,
        offsets: Sequence[int],
        *,
        output: bool,
        consumer: str,
        active_low: bool = False,
        bias: Bias = "as-is",
        debounce_us: int = 0,
        initial: Sequence[bool] = (),
    ) -> Lines:
        request = request_struct(
            offsets,
            output=output,
            consumer=consumer,
            active_low=active_low,
            bias=bias,
            debounce_us=debounce_us,
            initial=initial,
        )
        buffer = bytearray(request)
        fd = self._chip_fd()
        try:  # the kernel fills in request.fd, a file for just these lines
            self._ioctl(fd, uapi.GPIO_V2_GET_LINE_IOCTL, buffer, True)
        finally:
            self._close(fd)
        line_fd = uapi.LineRequest.from_buffer(buffer).fd
        if line_fd < 0:
            raise OSError(errno.EIO, f"{self.path}: the kernel returned no line file")
        return _CharDevLines(line_fd, len(offsets), self._ioctl, self._close)


def find_chip(
    label: str,
    dev: str | os.PathLike[str] = "/dev",
    chip: Callable[[Path], CharDevChip] = CharDevChip,
) -> CharDevChip:
    """The gpiochip with this label (the numbering differs between kernels)."""
    for path in sorted(Path(dev).glob("gpiochip*")):
        candidate = chip(path)
        try:
            if candidate.label() == label:
                return candidate
        except OSError:
            continue
    raise DeviceAbsent(f"no GPIO chip labelled {label!r} in {dev}")


class Led:
    """One LED on one requested line."""

    def __init__(self, lines: Lines, index: int = 0) -> None:
        self._lines = lines
        self._index = index

    @classmethod
    def request(
        cls, chip: GpioChip, offset: int, consumer: str = "commonsbox-led", initial: bool = False
    ) -> "Led":
        return cls(chip.request([offset], output=True, consumer=consumer, initial=[initial]))

    def set(self, on: bool) -> None:
        self._lines.set({self._index: on})

    def on(self) -> None:
        self.set(True)

    def off(self) -> None:
        self.set(False)


class Button:
    """A push button to ground: requested active-low with a pull-up, so pressed = True."""

    def __init__(self, lines: Lines, index: int = 0) -> None:
        self._lines = lines
        self._index = index

    @classmethod
    def request(
        cls,
        chip: GpioChip,
        offset: int,
        consumer: str = "commonsbox-button",
        debounce_us: int = 10_000,
    ) -> "Button":
        return cls(
            chip.request(
                [offset],
                output=False,
                consumer=consumer,
                active_low=True,
                bias="pull-up",
                debounce_us=debounce_us,
            )
        )

    def pressed(self) -> bool:
        return self._lines.get()[self._index]
