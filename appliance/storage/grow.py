"""First boot: give the card's space to the data partition, and make root B.

The image carries boot, root A and a small data partition, so it stays small to
download and flash. On a box's first boot (and harmlessly on every later one) this puts
root B, the size of root A, at the end of the card and grows data up to it:

    image:  | boot | root A | data |
    card:   | boot | root A | data ..................... | root B |

The planner is pure (the partition table as sfdisk prints it + the disk's size -> the
new table); applying writes the table with sfdisk, tells the kernel with partx (both
work while data is mounted: growing keeps each partition's start) and grows the file
system online with resize2fs.
"""

import fcntl
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ALIGN = 2048  # sectors: 1 MiB, as the image builder aligns
GPT_BACKUP = 33  # sectors the backup GPT takes at the end of the disk
ROOT_B = "rootB"
DATA = "data"
# The partition UUIDs the image was built with (written by the image builder).
PARTITIONS = Path("/usr/lib/commonsbox/partitions.json")


@dataclass(frozen=True)
class Part:
    node: str
    start: int  # sectors
    size: int
    type: str
    uuid: str
    name: str

    @property
    def end(self) -> int:  # first sector after it
        return self.start + self.size


@dataclass(frozen=True)
class Table:
    label_id: str
    parts: tuple[Part, ...]

    def find(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    def script(self) -> str:
        """The table as an sfdisk script; names and ids come from sfdisk's own dump or
        from root A's entry, never from outside, and are checked on the way in."""
        lines = ["label: gpt", f"label-id: {self.label_id}", "unit: sectors", ""]
        lines += [
            f"start={p.start}, size={p.size}, type={p.type}, uuid={p.uuid}, name={p.name}"
            for p in self.parts
        ]
        return "\n".join(lines) + "\n"


class CannotGrow(Exception):
    pass


def parse(dump: dict) -> Table:
    table = dump["partitiontable"]
    if table.get("label") != "gpt" or table.get("unit") != "sectors":
        raise CannotGrow("the disk has no GPT partition table")
    parts = []
    for p in table["partitions"]:
        part = Part(
            p["node"],
            int(p["start"]),
            int(p["size"]),
            str(p["type"]),
            str(p["uuid"]).lower(),
            str(p.get("name", "")),
        )
        for text in (part.type, part.uuid, part.name):
            if not text.replace("-", "").isalnum():
                raise CannotGrow(f"unexpected partition entry {p!r}")
        parts.append(part)
    return Table(str(table["id"]), tuple(parts))


def plan(table: Table, disk_sectors: int, root_b_uuid: str) -> Table | None:
    """The grown table, or None when the table is already as it should be."""
    data, root_a = table.find(DATA), table.find("rootA")
    if data is None or root_a is None:
        raise CannotGrow("no data or rootA partition: not a Commonsbox disk")
    root_b = table.find(ROOT_B)
    last_usable = disk_sectors - GPT_BACKUP - 1
    if root_b is None:
        start = (last_usable + 1 - root_a.size) // ALIGN * ALIGN
        if start < data.end:
            raise CannotGrow(
                f"the disk ({disk_sectors * 512 // 2**20} MiB) has no room for "
                f"root B ({root_a.size * 512 // 2**20} MiB) after data"
            )
        root_b = Part("", start, root_a.size, root_a.type, root_b_uuid, ROOT_B)
    if root_b.start < data.end:
        raise CannotGrow("root B lies before the data partition's end: unexpected layout")
    if root_b in table.parts and data.end >= root_b.start - ALIGN:
        return None  # grown already (less than 1 MiB to gain)
    parts = [
        replace(p, size=root_b.start - p.start) if p is data else p
        for p in table.parts
        if p.name != ROOT_B
    ]
    return Table(table.label_id, (*parts, root_b))


def data_device(mountpoint: str = "/var/lib/commonsbox") -> tuple[Path, Path]:
    """The data partition's device and the whole disk it is on, from the mount table."""
    source = subprocess.run(
        ["findmnt", "-nvo", "SOURCE", mountpoint], check=True, capture_output=True, text=True
    ).stdout.strip()
    part = Path(source)
    disk = Path("/dev") / Path(f"/sys/class/block/{part.name}").resolve().parent.name
    return part, disk


@contextmanager
def locked(disk: Path):
    """The whole disk BSD-locked, so udev leaves it alone until the new table is
    written and the kernel told (systemd.io/BLOCK_DEVICE_LOCKING). Unlocked, udev saw
    the data partition mid-change, its by-partuuid device went away for a moment, and
    systemd unmounted data and stopped this service half way through the first boot."""
    fd = os.open(disk, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def grow(mountpoint: str = "/var/lib/commonsbox", log=print) -> bool:
    part, disk = data_device(mountpoint)
    with locked(disk):
        dump = json.loads(
            subprocess.run(
                ["sfdisk", "--json", disk], check=True, capture_output=True, text=True
            ).stdout
        )
        sectors = int(Path(f"/sys/class/block/{disk.name}/size").read_text())
        new = plan(parse(dump), sectors, json.loads(PARTITIONS.read_text())[ROOT_B])
        if new is not None:
            subprocess.run(
                ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk],
                input=new.script(),
                text=True,
                check=True,
            )
            subprocess.run(["partx", "--update", disk], check=True)
    # Also when the table was grown already: a first boot cut short between the two
    # finishes here (resize2fs does nothing to a file system that fills its partition).
    subprocess.run(["resize2fs", part], check=True, capture_output=True)
    if new is None:
        log(f"{part}: already grown")
        return False
    data = new.find(DATA)
    log(f"{part}: grown to {data.size * 512 // 2**20} MiB; root B made on {disk}")
    return True


def main() -> int:
    try:
        grow()
    except CannotGrow as err:  # the box still works; only updates will lack a slot
        print(f"cannot grow the data partition: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
