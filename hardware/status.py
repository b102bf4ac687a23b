"""`commonsbox hardware status`: which optional devices this box has, and what they say.

Every device ends up present, absent or faulty, with a reason; nothing here raises for
missing hardware. The survey only reads: it never opens the watchdog (that would arm
it) and never changes what the display shows.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from hardware.boards import Board, i2c_bus_number
from hardware.errors import DeviceAbsent, DeviceFault
from hardware.i2c import Bus
from hardware.i2c.rtc import RTC_ADDRESS, RealTimeClock
from hardware.i2c.ssd1306 import DISPLAY_ADDRESS, Ssd1306
from hardware.i2c.temperature import SENSOR_ADDRESS, TemperatureSensor

State = Literal["present", "absent", "faulty"]


@dataclass(frozen=True)
class DeviceReport:
    state: State
    model: str = ""  # e.g. "DS3231", "LM75", "SSD1306 128x64"
    reason: str = ""  # why absent or faulty; where it was looked for

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "model": self.model, "reason": self.reason}


@dataclass(frozen=True)
class HardwareStatus:
    board_id: str
    board_model: str
    i2c_bus: DeviceReport
    rtc: DeviceReport
    temperature: DeviceReport
    display: DeviceReport
    watchdog: DeviceReport
    gpio: DeviceReport
    temperature_c: float | None = None
    rtc_time: datetime | None = None
    rtc_trusted: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": {"id": self.board_id, "model": self.board_model},
            "devices": {
                name: getattr(self, name).to_dict()
                for name in ("i2c_bus", "rtc", "temperature", "display", "watchdog", "gpio")
            },
            "readings": {
                "temperature_c": self.temperature_c,
                "rtc_time": self.rtc_time.isoformat() if self.rtc_time else None,
                "rtc_trusted": self.rtc_trusted,
            },
        }


def open_smbus(number: int) -> Bus:
    from smbus2 import SMBus  # imported here: the survey runs with a fake bus in tests

    bus: Bus = SMBus(number)
    return bus


def _absent_all(reason: str) -> tuple[DeviceReport, DeviceReport, DeviceReport]:
    report = DeviceReport("absent", reason=reason)
    return report, report, report


def survey(
    board: Board,
    *,
    open_bus: Callable[[int], Bus] = open_smbus,
    root: str | os.PathLike[str] = "/",
    display_height: int = 64,
) -> HardwareStatus:
    temperature_c: float | None = None
    rtc_time: datetime | None = None
    rtc_trusted: bool | None = None
    number = i2c_bus_number(board, root)
    if number is None:
        bus_report = DeviceReport("absent", reason=f"{board.id} has no known I2C bus")
        rtc, temperature, display = _absent_all("no I2C bus")
    else:
        try:
            bus = open_bus(number)
        except OSError as error:
            bus_report = DeviceReport(
                "absent",
                reason=f"cannot open /dev/i2c-{number} "
                f"({os.strerror(error.errno or 0)}): is i2c-dev loaded "
                "and I2C enabled?",
            )
            rtc, temperature, display = _absent_all(f"no /dev/i2c-{number}")
        else:
            bus_report = DeviceReport("present", model=f"/dev/i2c-{number}")
            try:
                rtc, rtc_time, rtc_trusted = _rtc(bus)
                temperature, temperature_c = _temperature(bus)
                display = _display(bus, display_height)
            finally:
                close = getattr(bus, "close", None)
                if close is not None:
                    close()
    return HardwareStatus(
        board.id,
        board.model,
        bus_report,
        rtc,
        temperature,
        display,
        _watchdog(board, Path(root)),
        _gpio(board, Path(root)),
        temperature_c,
        rtc_time,
        rtc_trusted,
    )


def _rtc(bus: Bus) -> tuple[DeviceReport, datetime | None, bool | None]:
    where = f"at 0x{RTC_ADDRESS:02x}"
    try:
        reading = RealTimeClock(bus).read()
    except DeviceAbsent:
        return DeviceReport("absent", reason=f"no real-time clock {where}"), None, None
    except DeviceFault as error:
        return DeviceReport("faulty", reason=str(error)), None, None
    return (
        DeviceReport("present", reading.kind.upper(), reading.reason),
        reading.time,
        reading.trusted,
    )


def _temperature(bus: Bus) -> tuple[DeviceReport, float | None]:
    try:
        reading = TemperatureSensor(bus).read()
    except DeviceAbsent:
        return DeviceReport("absent", reason=f"no sensor at 0x{SENSOR_ADDRESS:02x}"), None
    except DeviceFault as error:
        return DeviceReport("faulty", reason=str(error)), None
    return DeviceReport("present", reading.kind.upper()), reading.celsius


def _display(bus: Bus, height: int) -> DeviceReport:
    try:
        Ssd1306(bus, height=height).probe()
    except DeviceAbsent:
        return DeviceReport("absent", reason=f"no display at 0x{DISPLAY_ADDRESS:02x}")
    except DeviceFault as error:
        return DeviceReport("faulty", reason=str(error))
    return DeviceReport("present", f"SSD1306 128x{height}")


def _in_root(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _watchdog(board: Board, root: Path) -> DeviceReport:
    if board.watchdog_path is None:
        return DeviceReport("absent", reason=f"{board.id} has no watchdog")
    if not _in_root(root, board.watchdog_path).exists():
        return DeviceReport("absent", reason=f"no {board.watchdog_path}")
    # sysfs names the driver without opening (and so arming) the device.
    identity = ""
    try:
        identity = (root / "sys/class/watchdog/watchdog0/identity").read_text().strip()
    except OSError:
        pass
    return DeviceReport("present", identity or "watchdog")


def _gpio(board: Board, root: Path) -> DeviceReport:
    if board.gpio_chip is None:
        return DeviceReport("absent", reason=f"{board.id} has no GPIO header")
    if not any(_in_root(root, "/dev").glob("gpiochip*")):
        return DeviceReport("absent", reason="no /dev/gpiochip*")
    return DeviceReport("present", board.gpio_chip)
