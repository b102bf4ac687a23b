"""The watchdog against a plain file (no ioctls: the write-only protocol) and against
a fake driver's ioctls."""

import errno
import fcntl

import pytest

from hardware.errors import DeviceAbsent, DeviceFault
from hardware.watchdog import WDIOC_KEEPALIVE, WDIOC_SETTIMEOUT, Watchdog


def test_ioctl_numbers_match_linux_watchdog_h():
    assert WDIOC_KEEPALIVE == 0x80045705  # _IOR('W', 5, int)
    assert WDIOC_SETTIMEOUT == 0xC0045706  # _IOWR('W', 6, int)


def test_absent_device(tmp_path):
    with pytest.raises(DeviceAbsent):
        Watchdog.open(str(tmp_path / "watchdog"))


def test_busy_device_is_a_fault():
    def busy(path, flags):
        raise OSError(errno.EBUSY, "Device or resource busy")

    with pytest.raises(DeviceFault, match="in use"):
        Watchdog.open("/dev/watchdog", opener=busy)


def test_without_ioctls_pets_by_writing_and_closes_with_the_magic_v(tmp_path):
    device = tmp_path / "watchdog"
    device.touch()
    dog = Watchdog.open(str(device), timeout=30, ioctl=fcntl.ioctl)  # ENOTTY on a file
    assert dog.timeout is None
    dog.pet()
    dog.pet()
    dog.close()
    dog.close()  # twice is harmless
    assert device.read_bytes() == b"\0\0V"
    with pytest.raises(ValueError):
        dog.pet()


def test_sets_the_timeout_and_pets_by_ioctl(tmp_path):
    calls = []

    def driver(fd, request, buffer, mutate):
        calls.append((request, bytes(buffer)))
        if request == WDIOC_SETTIMEOUT:
            buffer[:] = (15).to_bytes(4, "little")  # the hardware's nearest timeout
        return 0

    device = tmp_path / "watchdog"
    device.touch()
    with Watchdog.open(str(device), timeout=16, ioctl=driver) as dog:
        assert dog.timeout == 15
        dog.pet()
    assert calls == [(WDIOC_SETTIMEOUT, (16).to_bytes(4, "little")), (WDIOC_KEEPALIVE, bytes(4))]
    assert device.read_bytes() == b"V"
