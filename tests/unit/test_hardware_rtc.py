"""DS3231 / DS1307 against register-level fakes; register values worked out by hand
from the datasheets' register maps (BCD, 24 h, century bit, CH, OSF)."""

import errno
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hardware.errors import DeviceAbsent, DeviceFault
from hardware.i2c.rtc import RealTimeClock, from_system, to_system

from .fakei2c import DS1307, DS3231, Failing, FakeBus, Garbage, StubChip

ALLOWED = {"read_byte_data", "write_byte_data", "read_i2c_block_data", "write_i2c_block_data"}
# Friday 2025-03-14 15:09:26 UTC: seconds, minutes, hours, weekday, date, month, year.
PI_DAY = {0x00: 0x26, 0x01: 0x09, 0x02: 0x15, 0x03: 0x05, 0x04: 0x14, 0x05: 0x03, 0x06: 0x25}
PI_DAY_TIME = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
PI_DAY_EPOCH = 1741964966  # 20161 days * 86400 + 15 h 9 min 26 s


def clock(chip, **kwargs):
    bus = FakeBus({0x68: chip})
    return RealTimeClock(bus, **kwargs), bus


def test_reads_a_ds3231():
    rtc, bus = clock(DS3231(PI_DAY))
    reading = rtc.read()
    assert reading.kind == "ds3231"
    assert reading.time == PI_DAY_TIME
    assert reading.trusted and reading.reason == ""
    assert bus.methods_used() <= ALLOWED


def test_ds3231_century_bit_means_the_22nd_century():
    rtc, _ = clock(DS3231({**PI_DAY, 0x05: 0x83, 0x06: 0x01}))
    assert rtc.read().time == datetime(2101, 3, 14, 15, 9, 26, tzinfo=UTC)


@pytest.mark.parametrize("register, hour", [(0x63, 15), (0x52, 0), (0x72, 12), (0x41, 1)])
def test_12_hour_mode_set_by_someone_else_is_read_right(register, hour):
    rtc, _ = clock(DS3231({**PI_DAY, 0x02: register}))
    assert rtc.read().time.hour == hour


def test_oscillator_stopped_flag_means_untrusted():
    rtc, _ = clock(DS3231(PI_DAY, oscillator_stopped=True))
    reading = rtc.read()
    assert reading.time == PI_DAY_TIME
    assert not reading.trusted and "oscillator stopped" in reading.reason


def test_a_fresh_clock_in_2000_is_not_trusted():
    rtc, _ = clock(DS3231({0x04: 0x01, 0x05: 0x01, 0x06: 0x00}))
    reading = rtc.read()
    assert reading.time == datetime(2000, 1, 1, tzinfo=UTC)
    assert not reading.trusted and "2000-01-01" in reading.reason


def test_ds1307_told_apart_by_its_ram_and_halt_bit_read():
    chip = DS1307({**PI_DAY, 0x00: 0x80 | 0x26}, ram=[0x5A] * 56)
    rtc, _ = clock(chip)
    reading = rtc.read()
    assert reading.kind == "ds1307"
    assert reading.time == PI_DAY_TIME  # CH masked off the seconds
    assert not reading.trusted and "halted" in reading.reason


@pytest.mark.parametrize(
    "register, raw, what",
    [
        (0x05, 0x13, "month 13"),
        (0x05, 0x00, "month 0"),
        (0x00, 0x5A, "not BCD"),
        (0x02, 0x24, "hours 24"),
        (0x04, 0x32, "date 32"),
        (0x01, 0x80, "reserved bits"),
    ],
)
def test_invalid_registers_are_a_fault(register, raw, what):
    rtc, _ = clock(DS3231({**PI_DAY, register: raw}))
    with pytest.raises(DeviceFault):
        rtc.read()


def test_impossible_dates_are_a_fault():
    rtc, _ = clock(DS3231({**PI_DAY, 0x04: 0x29, 0x05: 0x02}))  # 29 Feb 2025
    with pytest.raises(DeviceFault, match="impossible date"):
        rtc.read()
    rtc, _ = clock(DS3231({**PI_DAY, 0x04: 0x29, 0x05: 0x02, 0x06: 0x24}))
    assert rtc.read().time.date().isoformat() == "2024-02-29"


def test_absent_garbage_and_stuck_bus():
    with pytest.raises(DeviceAbsent):
        RealTimeClock(FakeBus()).read()
    with pytest.raises(DeviceFault):
        clock(Garbage(0xFF))[0].read()
    with pytest.raises(DeviceFault, match="bus error"):
        clock(Failing(errno.ETIMEDOUT))[0].read()


def test_set_writes_bcd_24h_and_clears_osf():
    chip = DS3231({0x04: 0x01, 0x05: 0x01}, oscillator_stopped=True)
    rtc, bus = clock(chip)
    rtc.set(PI_DAY_TIME.astimezone(timezone(timedelta(hours=1))))  # 16:09 in +01:00
    assert [chip.byte(r) for r in range(7)] == [PI_DAY[r] for r in range(7)]
    assert chip.byte(0x0F) & 0x80 == 0
    assert rtc.read().trusted
    assert bus.methods_used() <= ALLOWED


def test_set_in_the_next_century_sets_the_century_bit():
    chip = DS3231()
    clock(chip)[0].set(datetime(2101, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert [chip.byte(r) for r in range(7)] == [0x05, 0x04, 0x03, 0x07, 0x02, 0x81, 0x01]


def test_set_refuses_what_the_chip_cannot_hold():
    rtc, _ = clock(DS3231())
    with pytest.raises(ValueError):
        rtc.set(datetime(2025, 1, 1))  # naive: which zone?
    with pytest.raises(ValueError):
        rtc.set(datetime(1999, 12, 31, tzinfo=UTC))
    rtc, _ = clock(DS1307(ram=[0x77] * 56))
    with pytest.raises(ValueError):
        rtc.set(datetime(2100, 1, 1, tzinfo=UTC))  # a DS1307 has no century bit


def test_set_starts_a_halted_ds1307_and_leaves_its_ram():
    chip = DS1307(ram=range(0x10, 0x48))
    rtc, _ = clock(chip)
    rtc.set(PI_DAY_TIME)
    assert chip.byte(0x00) == 0x26  # CH cleared
    assert [chip.byte(r) for r in range(1, 7)] == [PI_DAY[r] for r in range(1, 7)]
    assert chip.byte(0x0F) == 0x17  # RAM untouched
    assert rtc.read().trusted


def test_works_on_an_i2c_stub_chip():
    """The QEMU guest's clock: i2c-stub at 0x68 loaded with the same registers."""
    stub = StubChip(PI_DAY)
    rtc, _ = clock(stub)
    assert rtc.read().time == PI_DAY_TIME
    rtc.set(datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC))
    assert [stub.byte(r) for r in range(7)] == [0x58, 0x59, 0x23, 0x04, 0x31, 0x12, 0x26]


def test_to_system_sets_the_clock_only_from_a_trusted_rtc():
    calls = []
    result = to_system(clock(DS3231(PI_DAY))[0], set_clock=calls.append)
    assert result.applied and calls == [PI_DAY_EPOCH]

    calls.clear()
    result = to_system(clock(DS3231(PI_DAY, oscillator_stopped=True))[0], set_clock=calls.append)
    assert not result.applied and calls == [] and "oscillator" in result.reason

    result = to_system(RealTimeClock(FakeBus()), set_clock=calls.append)
    assert not result.applied and calls == [] and "no answer" in result.reason


def test_from_system_stores_a_set_system_clock_only():
    chip = DS3231(oscillator_stopped=True)
    rtc = clock(chip)[0]
    assert not from_system(rtc, now=lambda: datetime(1970, 1, 1, 0, 0, 12, tzinfo=UTC)).applied
    assert chip.byte(0x0F) & 0x80  # untouched
    result = from_system(rtc, now=lambda: PI_DAY_TIME)
    assert result.applied
    assert rtc.read().time == PI_DAY_TIME and rtc.read().trusted
