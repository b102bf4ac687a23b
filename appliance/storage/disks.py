"""The disks the box can see, as a household would describe them: model, size, whether
it is a USB disk, and whether it already holds something (a file system, partitions, a
LUKS volume, or bytes nobody recognises) -- found with pyudev (sysfs) and blkid.

Raw udev devices become frozen Disk values here, at the edge; nothing else reads sysfs.
"""

import os
from dataclasses import asdict, dataclass

import pyudev

from ..system import System

VIRTUAL = ("loop", "ram", "zram", "dm-", "md", "nbd", "sr")
PROBE_BYTES = 1 << 20  # "empty" means the first MiB is all zeros


@dataclass(frozen=True)
class Disk:
    name: str  # sda
    path: str  # /dev/sda
    model: str  # "SanDisk Extreme"
    serial: str
    size: int  # bytes
    usb: bool
    system: bool  # the box boots from it: never offered for the household's data
    contents: str  # "empty", "luks", "filesystem", "partitions" or "unknown data"
    detail: str  # the file system or partition table type, the LUKS UUID
    partitions: tuple[str, ...]

    @property
    def confirm_name(self) -> str:
        """What the household types to let the box erase this disk."""
        return self.model or self.name

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "partitions": list(self.partitions),
            "confirm_name": self.confirm_name,
        }


def _attr(device: pyudev.Device, name: str) -> str:
    try:
        value = device.attributes.get(name)
    except (KeyError, OSError):
        return ""
    return value.decode("utf-8", "replace").strip() if value else ""


def _parent_attr(device: pyudev.Device, name: str) -> str:
    parent = device.find_parent("scsi") or device.parent
    return _attr(parent, name) if parent is not None else ""


def probe(system: System, path: str) -> tuple[str, str]:
    """(contents, detail) of the block device at PATH, as blkid finds it."""
    done = system.run(["blkid", "-p", "-o", "export", path], check=False)
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if found.get("TYPE") == "crypto_LUKS":
        return "luks", found.get("UUID", "")
    if "TYPE" in found:
        return "filesystem", found["TYPE"]
    if "PTTYPE" in found:
        return "partitions", found["PTTYPE"]
    try:
        with open(system.path(path), "rb") as f:
            head = f.read(PROBE_BYTES)
    except OSError:
        return "unknown data", "unreadable"
    return ("empty", "") if not head.strip(b"\0") else ("unknown data", "")


def boot_disks(system: System) -> set[str]:
    """The kernel names of the disks holding / and the data partition."""
    names = set()
    for line in (system.read("/proc/1/mountinfo") or b"").decode().splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in ("/", "/boot/firmware", "/var/lib/commonsbox"):
            major_minor = fields[2]
            try:
                real = os.path.realpath(f"/sys/dev/block/{major_minor}")
            except OSError:
                continue
            parent = os.path.basename(os.path.dirname(real))
            names.add(parent if os.path.exists(f"/sys/block/{parent}") else os.path.basename(real))
    return names


def list_disks(system: System, context: pyudev.Context | None = None) -> list[Disk]:
    context = context or pyudev.Context()
    booted = boot_disks(system)
    disks = []
    for dev in context.list_devices(subsystem="block", DEVTYPE="disk"):
        size = int(_attr(dev, "size") or 0) * 512
        if dev.sys_name.startswith(VIRTUAL) or size == 0 or dev.device_node is None:
            continue
        contents, detail = probe(system, dev.device_node)
        vendor, model = _parent_attr(dev, "vendor"), _parent_attr(dev, "model")
        disks.append(
            Disk(
                name=dev.sys_name,
                path=dev.device_node,
                model=" ".join(x for x in (vendor, model) if x)
                or dev.properties.get("ID_MODEL", ""),
                serial=_parent_attr(dev, "serial") or dev.properties.get("ID_SERIAL_SHORT", ""),
                size=size,
                usb="/usb" in dev.sys_path,
                system=dev.sys_name in booted,
                contents=contents,
                detail=detail,
                partitions=tuple(
                    sorted(
                        c.sys_name
                        for c in dev.children
                        if c.properties.get("DEVTYPE") == "partition"
                    )
                ),
            )
        )
    return sorted(disks, key=lambda d: d.name)
