"""A Raspberry Pi's card as the firmware's tryboot needs it (appliance/update/boot/tryboot.py):

    p1 common   FAT, autoboot.txt alone: which boot partition the firmware boots
    p2 bootA    FAT: slot A's firmware, device trees, config.txt, cmdline.txt, kernel, initrd
    p3 bootB    FAT, as large as boot A; empty in the image (RAUC writes slot B's whole)
    p4 rootA    ext4
    p5 data     ext4, grown at first boot
    p6 rootB    made at first boot at the card's end (appliance/storage/grow.py)

Boot B is in the image, empty and sparse, so that first boot only adds root B and the
partition numbers autoboot.txt names never move. rpi-image-gen's GPT A/B layout has the
same first three (image/gpt/ab_userdata: bootconfig, boot_a, boot_b).
"""

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from appliance.update.boot import Slot
from appliance.update.boot.tryboot import AUTOBOOT, render

from . import disk
from .profile import Profile

COMMON_MIB = 16
# The image's partitions, p1..p5: boot A and B are the numbers tryboot.BOOT_PARTITIONS names.
NAMES = ("common", "bootA", "bootB", "rootA", "data")


def partition_uuids(board: str) -> dict[str, str]:
    """Every partition's PARTUUID, root B's too (first boot reads it from partitions.json)."""
    return {name: disk.partition_uuid(board, name) for name in (*NAMES, "rootB")}


def cmdline(profile: Profile, root_partuuid: str) -> str:
    boot = profile.boot
    return (
        f"root=PARTUUID={root_partuuid} rw console={boot['console']},115200 loglevel=4 "
        f"{boot.get('cmdline', '')}".strip()
        + " rootwait panic=10"  # an unattended box reboots after a panic: a trial falls back
    )


def boot_files(
    profile: Profile,
    root: Path,
    work: Path,
    version: str,
    kernel: Path,
    initrd: Path,
    slot: Slot,
    puuid: Mapping[str, str],
    epoch: int,
) -> dict[str, Path]:
    """Slot SLOT's boot partition, {name on the partition: file}: the firmware and device
    trees (copied out of ROOT, which loses them), config.txt, cmdline.txt booting the
    slot's own root by PARTUUID, and KERNEL and INITRD."""
    boot = profile.boot
    out = work / f"boot{slot}"
    out.mkdir(exist_ok=True)
    files = {"vmlinuz": kernel, "initrd.img": initrd}
    sources = [root / "usr/lib/raspi-firmware" / name for name in boot["firmware"]]
    sources += [root / f"usr/lib/linux-image-{version}" / dtb for dtb in boot["device_trees"]]
    for source in sources:
        files[source.name] = Path(shutil.copy2(source, out / source.name))
    texts = {
        "config.txt": boot["config_txt"],
        "cmdline.txt": cmdline(profile, puuid[f"root{slot}"]) + "\n",
    }
    for name, text in texts.items():
        files[name] = out / name
        files[name].write_text(text)
        os.utime(files[name], (epoch, epoch))
    return files


def common_files(work: Path, epoch: int) -> dict[str, Path]:
    """The common partition: autoboot.txt committing slot A, no trial armed."""
    path = work / AUTOBOOT
    path.write_text(render(primary="A", trial="A"))
    os.utime(path, (epoch, epoch))
    return {AUTOBOOT: path}


def layout(sizes: Mapping[str, int], root_mib: int, images: Mapping[str, Path]) -> list[disk.Part]:
    """The image's partitions for disk.assemble. SIZES: the profile's [disk] (boot_mib,
    data_mib); IMAGES: the file made for each partition, by name (boot B has none)."""
    return [
        disk.Part("common", disk.ESP, COMMON_MIB, images.get("common")),
        disk.Part("bootA", disk.ESP, sizes["boot_mib"], images.get("bootA")),
        disk.Part("bootB", disk.ESP, sizes["boot_mib"], None),
        disk.Part("rootA", disk.LINUX, root_mib, images.get("rootA")),
        disk.Part("data", disk.LINUX, sizes["data_mib"], images.get("data")),
    ]
