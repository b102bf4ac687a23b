"""Disks coming and going, from the kernel's own events (they arrive with or without
udevd): a USB disk pulled while it is the unlocked storage stops the services that used
it at once, rather than leaving them to fail at every write."""

import logging
import threading

import pyudev

log = logging.getLogger(__name__)


def watch_disks(on_removed, on_added=None) -> threading.Thread:
    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
    monitor.filter_by("block")
    monitor.start()

    def loop():
        for device in iter(monitor.poll, None):
            if device.device_type != "disk":
                continue
            try:
                if device.action == "remove":
                    log.info("disk unplugged: %s", device.sys_name)
                    on_removed()
                elif device.action == "add":
                    log.info("disk plugged in: %s", device.sys_name)
                    if on_added:
                        on_added()
            except Exception:  # the watcher must outlive one bad event
                log.exception("handling a disk event")

    thread = threading.Thread(target=loop, name="disks", daemon=True)
    thread.start()
    return thread
