"""The system clock and the battery-backed clock (RTC), kept in step.

At start the system clock comes from the RTC when the RTC is trusted and the system
clock is not synchronised yet and is behind it: a box that was off for a week boots
with the time it last saved, and the RTC knows better. The clock only ever moves
forward from here, and never against NTP. Once NTP has synchronised the system clock,
its time goes to the RTC (then every 11 minutes, as the kernel's own RTC sync does),
so the next boot without network has the right time.
"""

import ctypes
import logging
import os
from datetime import datetime, timedelta

from hardware.i2c.rtc import RtcReading

log = logging.getLogger("commonsbox.hardware")

STORE_SECONDS = 11 * 60
SLACK = timedelta(seconds=2)  # closer than this is the same time: leave the clock alone
TIME_ERROR = 5  # adjtimex(2)'s answer while the clock is not synchronised
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


def ntp_synchronized() -> bool:
    """Whether the kernel counts the system clock as synchronised, as timedatectl's
    NTPSynchronized does: adjtimex() that changes nothing (modes = 0, no privilege
    needed) returns TIME_ERROR while it is not."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex (208 bytes on 64-bit)
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return os.path.exists(TIMESYNC_FLAG)  # systemd-timesyncd's flag file
    return state >= 0 and state != TIME_ERROR


def why_not_set(reading: RtcReading, system_now: datetime, synchronized: bool) -> str | None:
    """Why the system clock stays as it is at start, or None: set it from the RTC."""
    if not reading.trusted:
        return f"the real-time clock is not trusted: {reading.reason}"
    if synchronized:
        return "the system clock is already synchronised"
    if reading.time <= system_now + SLACK:
        return (
            f"the system clock ({system_now:%Y-%m-%d %H:%M:%S}) is not behind the "
            f"real-time clock ({reading.time:%Y-%m-%d %H:%M:%S})"
        )
    return None
