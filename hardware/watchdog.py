"""The hardware watchdog (/dev/watchdog): reboots the box if the agent stops petting it.

Opening the device arms it, so only the agent's main loop opens it, never a status
check (hardware.status looks at the path and sysfs instead). A deliberate stop writes
the magic 'V' before closing, so a clean shutdown of the agent does not reboot the box.
"""

import errno
import fcntl
import os
from collections.abc import Callable
from typing import Any, Self

from hardware.errors import DeviceAbsent, DeviceFault

WDIOC_KEEPALIVE = 2 << 30 | 4 << 16 | ord("W") << 8 | 5  # _IOR('W', 5, int)
WDIOC_SETTIMEOUT = 3 << 30 | 4 << 16 | ord("W") << 8 | 6  # _IOWR('W', 6, int)
WDIOC_GETTIMEOUT = 2 << 30 | 4 << 16 | ord("W") << 8 | 7  # _IOR('W', 7, int)
MAGIC_CLOSE = b"V"

Ioctl = Callable[[int, int, Any, bool], Any]


class Watchdog:
    def __init__(
        self, fd: int, path: str, timeout: int | None, ioctl: Ioctl, uses_ioctl: bool
    ) -> None:
        self._fd = fd
        self.path = path
        self.timeout = timeout  # seconds, as the driver granted it; None if unknown
        self._ioctl = ioctl
        self._uses_ioctl = uses_ioctl

    @classmethod
    def open(
        cls,
        path: str = "/dev/watchdog",
        timeout: int | None = 60,
        *,
        opener: Callable[..., int] = os.open,
        ioctl: Ioctl = fcntl.ioctl,
    ) -> Self:
        """Arm the watchdog; DeviceAbsent without one, DeviceFault if it is in use
        (systemd's RuntimeWatchdogSec= holds it, for instance)."""
        try:
            fd = opener(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
                raise DeviceAbsent(f"no watchdog at {path}") from error
            if error.errno == errno.EBUSY:
                raise DeviceFault(f"watchdog {path} is in use by another program") from error
            raise DeviceFault(f"watchdog {path}: {os.strerror(error.errno or 0)}") from error
        granted: int | None = None
        uses_ioctl = True
        try:
            if timeout is not None:
                buffer = bytearray(int(timeout).to_bytes(4, "little", signed=True))
                ioctl(fd, WDIOC_SETTIMEOUT, buffer, True)  # the driver may round it
                granted = int.from_bytes(buffer, "little", signed=True)
            else:
                buffer = bytearray(4)
                ioctl(fd, WDIOC_GETTIMEOUT, buffer, True)
                granted = int.from_bytes(buffer, "little", signed=True)
        except OSError as error:
            # ENOTTY: no ioctls (a minimal driver); EINVAL/EOPNOTSUPP: fixed timeout.
            if error.errno == errno.ENOTTY:
                uses_ioctl = False
            elif error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                os.write(fd, MAGIC_CLOSE)
                os.close(fd)
                raise DeviceFault(f"watchdog {path}: {os.strerror(error.errno or 0)}") from error
        return cls(fd, path, granted, ioctl, uses_ioctl)

    def pet(self) -> None:
        """Keep the box alive for another timeout period."""
        if self._fd < 0:
            raise ValueError("the watchdog is closed")
        if self._uses_ioctl:
            try:
                self._ioctl(self._fd, WDIOC_KEEPALIVE, bytearray(4), True)
                return
            except OSError as error:
                if error.errno != errno.ENOTTY:
                    raise
                self._uses_ioctl = False
        os.write(self._fd, b"\0")  # any write is a keepalive

    def close(self) -> None:
        """Stop deliberately: the magic 'V' disarms drivers that honour it (most do;
        with nowayout set in the kernel the box still reboots: that is its job)."""
        if self._fd >= 0:
            try:
                os.write(self._fd, MAGIC_CLOSE)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
