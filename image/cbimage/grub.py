"""GRUB on UEFI for the QEMU boards (OVMF on amd64, AAVMF on arm64): the A/B slot choice.

The EFI system partition holds GRUB (made from the box root's own GRUB, so the image's
bootloader is the Debian 13 one the root was built with), grub.cfg and the environment
block. Each slot's kernel and initramfs stay in its own root (/boot), so a slot is one
partition, written whole by an update.

The environment holds two names: PRIMARY, the slot that boots, and TRIAL, a slot to try
once. GRUB clears TRIAL before it boots it, so the trial is a single attempt, as the Pi
firmware's tryboot is: a trial that panics, hangs until the watchdog fires or is
refused by the health gate boots PRIMARY again. Only marking the trial good makes it
PRIMARY (appliance/update/boot/grub.py). A power cut while a committed slot boots
boots it again: no boot counting can drop a good slot for a bad night.
"""

import subprocess
from pathlib import Path

from appliance.update.boot import grubenv

# What grub.cfg uses: GPT, FAT (the ESP and its environment), ext4 (the roots), the
# script's commands, and Linux loading. Nothing else is built in.
MODULES = (
    "part_gpt fat ext2 normal configfile linux echo test loadenv regexp search "
    "search_fs_uuid serial terminal"
).split()
PARTITION = {"A": 2, "B": 4}  # the GPT numbers of root A and of root B (made at first boot)
EFI_DIR = "EFI/BOOT"

CONFIG = """\
# Commonsbox: boot the PRIMARY slot, or the TRIAL slot once (image/cbimage/grub.py).
set timeout=0
set PRIMARY=A
set TRIAL=
load_env PRIMARY TRIAL
regexp --set=1:disk '^(.*),gpt[0-9]+$' "$root"
export disk
set slot="$PRIMARY"
if [ "$TRIAL" = A -o "$TRIAL" = B ]; then
    set slot="$TRIAL"
    set TRIAL=
    save_env TRIAL
fi
if [ "$slot" = B ]; then
    set default=1
    set fallback=0
else
    set default=0
    set fallback=1
fi
"""

ENTRY = """\
menuentry "Commonsbox {slot}" {{
    linux ($disk,gpt{number})/boot/vmlinuz root=PARTUUID={uuid} rauc.slot={slot} {cmdline}
    initrd ($disk,gpt{number})/boot/initrd.img
}}
"""


def config(root_uuids: dict[str, str], cmdline: str) -> str:
    """grub.cfg: CMDLINE is the board's, without root= (each entry names its own)."""
    return CONFIG + "".join(
        ENTRY.format(slot=slot, number=number, uuid=root_uuids[slot], cmdline=cmdline)
        for slot, number in PARTITION.items()
    )


def environment() -> bytes:
    """A new box boots root A; nothing to try."""
    return grubenv.render({"PRIMARY": "A", "TRIAL": ""})


def make_efi(root: Path, platform: str, out: Path) -> None:
    """GRUB as one EFI program, made by the root's own grub-mkimage from its modules."""
    subprocess.run(
        [
            "chroot",
            root,
            "grub-mkimage",
            "--format",
            platform,
            "--prefix",
            f"/{EFI_DIR}",
            "--output",
            "/tmp/grub.efi",
            *MODULES,
        ],
        check=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SOURCE_DATE_EPOCH": "0"},
    )
    (root / "tmp/grub.efi").rename(out)
