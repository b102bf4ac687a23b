"""`hardware status`: present, absent and faulty devices are all reports."""

import errno
import json
from datetime import UTC, datetime

from hardware.boards import detect
from hardware.status import survey

from .fakei2c import DS3231, LM75, SSD1306, TMP102, Failing, FakeBus, Garbage, StubChip
from .test_hardware_boards import tree
from .test_hardware_rtc import PI_DAY


def pi4(tmp_path, extra=None):
    files = {
        "proc/device-tree/compatible": b"raspberrypi,4-model-b\0brcm,bcm2711\0",
        "proc/device-tree/model": b"Raspberry Pi 4 Model B Rev 1.5\0",
    }
    root = tree(tmp_path, {**files, **(extra or {})})
    return detect(root), root


def test_a_fully_fitted_box(tmp_path):
    board, root = pi4(
        tmp_path,
        {
            "dev/watchdog": "",
            "dev/gpiochip0": "",
            "sys/class/watchdog/watchdog0/identity": "Broadcom BCM2835 Watchdog timer\n",
        },
    )
    display = SSD1306()
    bus = FakeBus({0x68: DS3231(PI_DAY), 0x48: LM75((0xE7, 0x00)), 0x3C: display})
    opened = []
    status = survey(board, open_bus=lambda n: opened.append(n) or bus, root=root)
    assert opened == [1] and bus.closed
    assert status.board_id == "rpi4"
    assert [
        getattr(status, d).state
        for d in ("i2c_bus", "rtc", "temperature", "display", "watchdog", "gpio")
    ] == ["present"] * 6
    assert status.temperature_c == -25.0 and status.temperature.model == "LM75"
    assert status.rtc_time == datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
    assert status.rtc_trusted is True and status.rtc.model == "DS3231"
    assert status.watchdog.model == "Broadcom BCM2835 Watchdog timer"
    # Looking did not change the screen.
    assert display.data_bytes == 0 and display.commands == [(0xE3,)]
    as_dict = json.loads(json.dumps(status.to_dict()))
    assert as_dict["readings"] == {
        "temperature_c": -25.0,
        "rtc_time": "2025-03-14T15:09:26+00:00",
        "rtc_trusted": True,
    }
    assert as_dict["devices"]["display"] == {
        "state": "present",
        "model": "SSD1306 128x64",
        "reason": "",
    }


def test_a_bare_board_is_a_report_not_an_error(tmp_path):
    board, root = pi4(tmp_path)
    status = survey(board, open_bus=lambda n: FakeBus(), root=root)
    assert status.i2c_bus.state == "present"
    for device, where in (("rtc", "0x68"), ("temperature", "0x48"), ("display", "0x3c")):
        report = getattr(status, device)
        assert report.state == "absent" and where in report.reason
    assert status.watchdog.state == "absent" and "/dev/watchdog" in status.watchdog.reason
    assert status.gpio.state == "absent"
    assert status.temperature_c is None and status.rtc_time is None and status.rtc_trusted is None


def test_no_i2c_device_node(tmp_path):
    board, root = pi4(tmp_path)

    def no_bus(number):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory")

    status = survey(board, open_bus=no_bus, root=root)
    assert status.i2c_bus.state == "absent" and "/dev/i2c-1" in status.i2c_bus.reason
    assert {status.rtc.state, status.temperature.state, status.display.state} == {"absent"}


def test_faulty_devices_and_an_untrusted_clock(tmp_path):
    board, root = pi4(tmp_path)
    bus = FakeBus({0x68: Garbage(0xFF), 0x48: Failing(errno.ETIMEDOUT), 0x3C: SSD1306()})
    status = survey(board, open_bus=lambda n: bus, root=root)
    assert status.rtc.state == "faulty" and "real-time clock" in status.rtc.reason
    assert status.temperature.state == "faulty" and "timed out" in status.temperature.reason
    assert status.display.state == "present"

    bus = FakeBus({0x68: DS3231(PI_DAY, oscillator_stopped=True), 0x48: TMP102((0x19, 0x40))})
    status = survey(board, open_bus=lambda n: bus, root=root)
    assert status.rtc.state == "present" and status.rtc_trusted is False
    assert "oscillator stopped" in status.rtc.reason
    assert status.temperature_c == 25.25 and status.temperature.model == "TMP102"


def test_qemu_without_i2c_stub(tmp_path):
    root = tree(
        tmp_path,
        {
            "sys/class/dmi/id/sys_vendor": "QEMU\n",
            "sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
        },
    )
    board = detect(root, machine="x86_64")

    def never(number):
        raise AssertionError("no bus to open")

    status = survey(board, open_bus=never, root=root)
    assert status.board_id == "qemu-amd64"
    assert status.i2c_bus.state == "absent" and status.gpio.state == "absent"
    assert status.to_dict()["board"] == {
        "id": "qemu-amd64",
        "model": "QEMU Standard PC (Q35 + ICH9, 2009)",
    }


def test_qemu_with_i2c_stub_chips(tmp_path):
    root = tree(
        tmp_path,
        {
            "proc/device-tree/compatible": b"linux,dummy-virt\0",
            "sys/bus/i2c/devices/i2c-0/name": "SMBus stub driver\n",
        },
    )
    bus = FakeBus({0x68: StubChip(PI_DAY), 0x48: StubChip({0: 0x1A, 1: 0x80})})
    status = survey(detect(root), open_bus=lambda n: bus if n == 0 else None, root=root)
    assert status.rtc.model == "DS3231" and status.rtc_trusted
    assert status.temperature_c == 26.5
