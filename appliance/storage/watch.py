"""Disks coming and going: a USB disk pulled while it is the unlocked storage stops the
services that used it at once, rather than leaving them to fail at every write.

The events come from udevd where it runs (on the box; libudev there passes on no raw
kernel events), else straight from the kernel (machines without udevd)."""

import logging
import os
import threading

import pyudev

log = logging.getLogger(__name__)


def watch_disks(on_removed, on_added=None) -> threading.Thread:
    source = "udev" if os.path.exists("/run/udev/control") else "kernel"
    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source=source)
    monitor.filter_by("block")
    monitor.start()

    def loop():
        for device in iter(monitor.poll, None):
            # A stick's partitions come after the disk: a key may be on one of them.
            if device.device_type not in ("disk", "partition"):
                continue
            try:
                if device.action == "remove" and device.device_type == "disk":
                    log.info("disk unplugged: %s", device.sys_name)
                    on_removed()
                elif device.action == "add":
                    log.info("plugged in: %s", device.sys_name)
                    if on_added:
                        on_added()
            except Exception:  # the watcher must outlive one bad event
                log.exception("handling a disk event")

    thread = threading.Thread(target=loop, name="disks", daemon=True)
    thread.start()
    return thread
