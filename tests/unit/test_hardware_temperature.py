"""LM75 / TMP102: register bytes from the datasheets' tables -> degrees Celsius."""

import pytest

from hardware.errors import DeviceAbsent, DeviceFault
from hardware.i2c.temperature import TemperatureSensor

from .fakei2c import LM75, TMP102, FakeBus, Garbage, StubChip

ALLOWED = {"read_byte_data", "write_byte_data", "read_i2c_block_data", "write_i2c_block_data"}


def read(chip, **kwargs):
    bus = FakeBus({0x48: chip})
    reading = TemperatureSensor(bus, **kwargs).read()
    assert bus.methods_used() <= ALLOWED
    return reading


# LM75 9-bit table (D15..D7) and LM75B 11-bit values (D15..D5), MSB first.
@pytest.mark.parametrize(
    "msb, lsb, celsius",
    [
        (0x7D, 0x00, 125.0),
        (0x19, 0x00, 25.0),
        (0x00, 0x80, 0.5),
        (0x00, 0x00, 0.0),
        (0xFF, 0x80, -0.5),
        (0xE7, 0x00, -25.0),
        (0xC9, 0x00, -55.0),
        (0x00, 0x20, 0.125),
        (0xFF, 0xE0, -0.125),
        (0xC9, 0x20, -54.875),
        (0x17, 0x60, 23.375),
    ],
)
def test_lm75(msb, lsb, celsius):
    reading = read(LM75((msb, lsb)))
    assert reading.kind == "lm75"
    assert reading.celsius == celsius


# TMP102 12-bit table (D15..D4) and 13-bit extended mode (D15..D3, EM flag in D0).
@pytest.mark.parametrize(
    "msb, lsb, celsius",
    [
        (0x7F, 0xF0, 127.9375),
        (0x64, 0x00, 100.0),
        (0x19, 0x00, 25.0),
        (0x00, 0x10, 0.0625),
        (0x00, 0x00, 0.0),
        (0xFF, 0xC0, -0.25),
        (0xE7, 0x00, -25.0),
        (0xC9, 0x00, -55.0),
        (0x4B, 0x01, 150.0),
        (0xE4, 0x81, -55.0),
        (0x00, 0x09, 0.0625),
    ],
)
def test_tmp102(msb, lsb, celsius):
    reading = read(TMP102((msb, lsb)))
    assert reading.kind == "tmp102"
    assert reading.celsius == celsius


def test_on_i2c_stub_registers_0_and_1_hold_msb_and_lsb():
    """In the QEMU guest: `i2cset -y N 0x48 0 0xe7; i2cset -y N 0x48 1 0x00`."""
    assert read(StubChip({0x00: 0xE7, 0x01: 0x00})).celsius == -25.0
    assert read(StubChip({0x00: 0xFF, 0x01: 0xC0}), kind="tmp102").celsius == -0.25


def test_follows_a_changing_temperature():
    chip = LM75((0x19, 0x00))
    bus = FakeBus({0x48: chip})
    sensor = TemperatureSensor(bus)
    assert sensor.read().celsius == 25.0
    chip.temperature = (0xF6, 0x00)  # -10 °C
    assert sensor.read().celsius == -10.0


@pytest.mark.parametrize(
    "chip",
    [
        Garbage(0xFF),  # bus stuck high
        LM75((0x7F, 0x80)),  # 127.5 °C: beyond an LM75's range
        TMP102((0x19, 0x05)),  # unused bits set
        TMP102((0x19, 0x07)),  # extended mode with unused bits set
        TMP102((0xC0, 0x00)),  # -64 °C
    ],
)
def test_answers_no_sensor_could_give_are_faults(chip):
    with pytest.raises(DeviceFault):
        read(chip)


def test_absent_sensor():
    with pytest.raises(DeviceAbsent):
        TemperatureSensor(FakeBus({0x49: LM75()})).read()
