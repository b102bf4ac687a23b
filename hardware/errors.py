"""Typed outcomes for optional hardware.

DeviceAbsent: nothing answers there (a report, not a failure of the box).
DeviceFault: something answers, but not as the chip would (garbage, a stuck bus).
"""

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

# What Linux I2C adapters return when no chip acknowledges its address: bcm2835 and
# most adapters EREMOTEIO (NACK), some ENXIO or EIO; i2c-stub ENODEV; ENOENT when the
# /dev node itself is missing.
ABSENT_ERRNOS = frozenset({errno.ENXIO, errno.EREMOTEIO, errno.EIO, errno.ENODEV, errno.ENOENT})


class HardwareError(Exception):
    """Base of the typed hardware outcomes."""


class DeviceAbsent(HardwareError):
    """No device answers at this place."""


class DeviceFault(HardwareError):
    """A device answers, but its answer cannot be what the chip would say."""


@contextmanager
def talking_to(what: str) -> Iterator[None]:
    """Turn the bus's OSErrors into DeviceAbsent / DeviceFault naming the device."""
    try:
        yield
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        if error.errno in ABSENT_ERRNOS:
            raise DeviceAbsent(f"{what}: no answer ({reason})") from error
        raise DeviceFault(f"{what}: bus error ({reason})") from error
