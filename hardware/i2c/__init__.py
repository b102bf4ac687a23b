"""Drivers for the box's I2C devices, each taking an injected bus.

A bus is an smbus2.SMBus or anything with the same four methods the drivers use:
read_byte_data, write_byte_data, read_i2c_block_data, write_i2c_block_data (blocks of
at most 32 bytes). That subset works with smbus2 0.4 (Debian's) as well as 0.6, with
real chips and with the kernel's i2c-stub used in the QEMU guest.
"""

from collections.abc import Sequence
from typing import Protocol


class Bus(Protocol):
    def read_byte_data(self, i2c_addr: int, register: int) -> int: ...

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int]) -> None: ...


BLOCK_MAX = 32  # the SMBus/I2C block limit smbus2 enforces (I2C_SMBUS_BLOCK_MAX)
