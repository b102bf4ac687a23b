"""DS3231 / DS1307 real-time clock at 0x68: read it, set it, sync with system time.

Both chips keep the time as BCD in registers 0x00..0x06 (seconds, minutes, hours,
weekday, date, month, year); the box keeps UTC there, in 24-hour mode. The DS3231 adds a
century bit (month bit 7) and an "oscillator stopped" flag (status 0x0F bit 7) that
stays set after the battery ran out: then the time is not to be trusted. The DS1307
has a clock-halt bit (seconds bit 7) instead, set when its oscillator does not run.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from hardware.errors import DeviceAbsent, DeviceFault, talking_to
from hardware.i2c import Bus

RTC_ADDRESS = 0x68
RtcKind = Literal["ds3231", "ds1307"]

_TIME = 0x00  # 7 registers of BCD time
_DS3231_CONTROL = 0x0E
_DS3231_STATUS = 0x0F
_DS3231_TEMP_LSB = 0x12
_CLOCK_HALT = 0x80  # DS1307 seconds bit 7
_OSF = 0x80  # DS3231 status bit 7
_CENTURY = 0x80  # DS3231 month bit 7
_HOUR_12 = 0x40
_PM = 0x20

# A clock that says it is earlier than this was never set (fresh chips start in 2000).
NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RtcReading:
    kind: RtcKind
    time: datetime  # UTC, timezone-aware
    trusted: bool
    reason: str  # why it is not trusted; "" when it is


@dataclass(frozen=True)
class ClockSync:
    applied: bool
    time: datetime | None
    reason: str


def _bcd(raw: int, field: str, low: int, high: int) -> int:
    tens, ones = raw >> 4, raw & 0x0F
    if tens > 9 or ones > 9:
        raise DeviceFault(f"real-time clock: {field} register 0x{raw:02x} is not BCD")
    value = tens * 10 + ones
    if not low <= value <= high:
        raise DeviceFault(f"real-time clock: {field} {value} is out of range {low}..{high}")
    return value


def _to_bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def _zero_bits(raw: int, mask: int, field: str) -> None:
    """Bits the chips always read as 0: set ones mean this is not a clock's answer."""
    if raw & mask:
        raise DeviceFault(f"real-time clock: {field} register 0x{raw:02x} has reserved bits set")


def decode_time(registers: list[int], kind: RtcKind) -> tuple[datetime, bool]:
    """(UTC time, clock-halt bit) from the 7 time registers; DeviceFault if invalid."""
    if len(registers) != 7:
        raise DeviceFault(f"real-time clock: {len(registers)} time registers, wanted 7")
    sec, minute, hour, _weekday, date, month, year = registers
    halted = bool(sec & _CLOCK_HALT) if kind == "ds1307" else False
    if kind == "ds3231":
        _zero_bits(sec, 0x80, "seconds")
    _zero_bits(minute, 0x80, "minutes")
    _zero_bits(hour, 0x80, "hours")
    _zero_bits(date, 0xC0, "date")
    _zero_bits(month, 0x60 if kind == "ds3231" else 0xE0, "month")
    seconds = _bcd(sec & 0x7F, "seconds", 0, 59)
    minutes = _bcd(minute, "minutes", 0, 59)
    if hour & _HOUR_12:  # someone else set 12-hour mode; read it right anyway
        hours = _bcd(hour & 0x1F, "hours", 1, 12) % 12 + (12 if hour & _PM else 0)
    else:
        hours = _bcd(hour & 0x3F, "hours", 0, 23)
    day = _bcd(date, "date", 1, 31)
    month_number = _bcd(month & 0x1F, "month", 1, 12)
    years = 2000 + _bcd(year, "year", 0, 99) + (100 if month & _CENTURY else 0)
    try:
        when = datetime(years, month_number, day, hours, minutes, seconds, tzinfo=UTC)
    except ValueError as error:  # 31 April, 29 February of a common year
        raise DeviceFault(f"real-time clock: impossible date ({error})") from error
    return when, halted


def encode_time(when: datetime, kind: RtcKind) -> list[int]:
    """The 7 time registers for an aware datetime (stored as UTC, 24-hour)."""
    if when.tzinfo is None:
        raise ValueError("the clock keeps UTC: give a timezone-aware time")
    utc = when.astimezone(UTC)
    last_year = 2199 if kind == "ds3231" else 2099
    if not 2000 <= utc.year <= last_year:
        raise ValueError(f"a {kind} holds the years 2000..{last_year}, not {utc.year}")
    century = _CENTURY if utc.year >= 2100 else 0
    return [
        _to_bcd(utc.second),
        _to_bcd(utc.minute),
        _to_bcd(utc.hour),
        utc.isoweekday(),
        _to_bcd(utc.day),
        _to_bcd(utc.month) | century,
        _to_bcd(utc.year % 100),
    ]


class RealTimeClock:
    """A DS3231 or DS1307. `kind=None` tells them apart from DS3231-only registers."""

    def __init__(
        self,
        bus: Bus,
        address: int = RTC_ADDRESS,
        kind: RtcKind | None = None,
        not_before: datetime = NOT_BEFORE,
    ) -> None:
        self._bus = bus
        self._address = address
        self._kind = kind
        self._not_before = not_before

    def probe(self) -> RtcKind:
        """The chip's kind; DeviceAbsent when nothing answers at the address."""
        if self._kind is None:
            with talking_to(f"real-time clock at 0x{self._address:02x}"):
                regs = self._bus.read_i2c_block_data(self._address, _DS3231_CONTROL, 5)
            status, temp_lsb = regs[1], regs[4]
            # On a DS3231, status bits 6..4 and temperature bits 5..0 always read 0; on a
            # DS1307 these are battery-backed RAM bytes. A DS1307 whose RAM happens to
            # match is taken for a DS3231: name the kind explicitly to rule that out.
            self._kind = "ds3231" if not status & 0x70 and not temp_lsb & 0x3F else "ds1307"
        return self._kind

    def read(self) -> RtcReading:
        kind = self.probe()
        with talking_to(f"real-time clock ({kind})"):
            registers = self._bus.read_i2c_block_data(self._address, _TIME, 7)
            status = (
                self._bus.read_byte_data(self._address, _DS3231_STATUS) if kind == "ds3231" else 0
            )
        when, halted = decode_time(list(registers), kind)
        reason = ""
        if status & _OSF:
            reason = "its oscillator stopped (battery flat or never set)"
        elif halted:
            reason = "its clock is halted (never set, or the battery ran out)"
        elif when < self._not_before:
            reason = f"it says {when:%Y-%m-%d}, earlier than it can be"
        return RtcReading(kind, when, not reason, reason)

    def set(self, when: datetime) -> None:
        """Write the time (this also restarts a halted DS1307 and clears the OSF flag)."""
        kind = self.probe()
        registers = encode_time(when, kind)
        with talking_to(f"real-time clock ({kind})"):
            self._bus.write_i2c_block_data(self._address, _TIME, registers)
            if kind == "ds3231":
                status = self._bus.read_byte_data(self._address, _DS3231_STATUS)
                self._bus.write_byte_data(self._address, _DS3231_STATUS, status & ~_OSF & 0xFF)


def set_system_clock(seconds: float) -> None:
    """The real clock setter (needs CAP_SYS_TIME)."""
    time.clock_settime(time.CLOCK_REALTIME, seconds)


def to_system(
    rtc: RealTimeClock, set_clock: Callable[[float], None] = set_system_clock
) -> ClockSync:
    """At boot, before the network: system time from the RTC, if the RTC is trusted."""
    try:
        reading = rtc.read()
    except (DeviceAbsent, DeviceFault) as error:
        return ClockSync(False, None, str(error))
    if not reading.trusted:
        return ClockSync(False, reading.time, f"real-time clock not trusted: {reading.reason}")
    set_clock(reading.time.timestamp())
    return ClockSync(True, reading.time, "")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def from_system(
    rtc: RealTimeClock, now: Callable[[], datetime] = _utc_now, not_before: datetime = NOT_BEFORE
) -> ClockSync:
    """Once the system time is synchronised (NTP): store it in the RTC. A system clock
    that is obviously unset is not copied, so it cannot overwrite a good RTC."""
    when = now()
    if when < not_before:
        return ClockSync(False, when, f"system time {when:%Y-%m-%d} is not set yet")
    try:
        rtc.set(when)
    except (DeviceAbsent, DeviceFault) as error:
        return ClockSync(False, when, str(error))
    return ClockSync(True, when, "")
