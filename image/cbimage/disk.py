"""Assemble a raw GPT disk image without root-only tricks (no loop mounts).

Each partition is made as a file (`mkfs.vfat` + mtools for boot, `mkfs.ext4 -d` for
root A from the unpacked tree), the table is written with `sfdisk` on the image file,
and each partition file is copied into place with `dd conv=notrunc`.
"""

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
SECTOR = 512
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
NAMESPACE = uuid.UUID("9f0c2b53-51a4-4b1e-9c0e-6f3f0d6c1b0a")  # Commonsbox's own


def stable_uuid(*parts: str) -> str:
    """A UUID derived from names, so two builds of one board agree (reproducibility)."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Part:
    name: str
    type: str
    size_mib: int
    file: Path | None  # None: left empty (zeros, sparse)

    def uuid(self, board: str) -> str:
        return stable_uuid(board, "partition", self.name)


def run(*cmd, **kw):
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def make_vfat(path: Path, size_mib: int, label: str, files: dict[str, Path], volid: str):
    path.unlink(missing_ok=True)
    run("mkfs.vfat", "-C", "-n", label.upper(), "-i", volid, path, size_mib * 1024,
        stdout=subprocess.DEVNULL)
    for name, src in files.items():
        run("mcopy", "-o", "-i", path, src, f"::{name}")


def make_ext4(path: Path, size_mib: int, label: str, tree: Path | None, fs_uuid: str):
    path.unlink(missing_ok=True)
    cmd = ["mkfs.ext4", "-q", "-F", "-L", label, "-U", fs_uuid,
           "-E", f"hash_seed={fs_uuid},root_owner=0:0", "-O", "^metadata_csum_seed"]
    if tree is not None:
        cmd += ["-d", tree]
    run(*cmd, path, f"{size_mib}M", stdout=subprocess.DEVNULL)


def assemble(image: Path, board: str, parts: list[Part]) -> None:
    """Write the GPT and copy each partition file into its place."""
    start = 1  # MiB; the first MiB holds the protective MBR and the GPT
    lines = ["label: gpt", f"label-id: {stable_uuid(board, 'disk')}", "unit: sectors",
             "first-lba: 2048", ""]
    layout = []
    for p in parts:
        lines.append(f"start={start * MIB // SECTOR}, size={p.size_mib * MIB // SECTOR}, "
                     f"type={p.type}, uuid={p.uuid(board)}, name={p.name}")
        layout.append((p, start))
        start += p.size_mib
    total = start + 1  # room for the backup GPT
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(total * MIB)
    run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", image,
        input="\n".join(lines) + "\n", text=True, stdout=subprocess.DEVNULL)
    for p, at in layout:
        if p.file is not None:
            run("dd", f"if={p.file}", f"of={image}", "bs=1M", f"seek={at}", "conv=notrunc,sparse",
                "status=none")
