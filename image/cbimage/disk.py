"""Assemble a raw GPT disk image without root-only tricks (no loop mounts).

Each partition is made as a file (`mkfs.vfat` + mtools for boot, `mkfs.ext4 -d` for
root A from the unpacked tree), the table is written with `sfdisk` on the image file,
and each partition file is copied into place with `dd conv=notrunc`.
Every time stamp comes from the files or from the epoch (SOURCE_DATE_EPOCH), never the clock.
"""

import os
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


def partition_uuid(board: str, name: str) -> str:
    return stable_uuid(board, "partition", name)


@dataclass(frozen=True)
class Part:
    name: str
    type: str
    size_mib: int
    file: Path | None  # None: left empty (zeros, sparse)

    def uuid(self, board: str) -> str:
        return partition_uuid(board, self.name)


def run(*cmd, **kw):
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def make_vfat(
    path: Path, size_mib: int, label: str, files: dict[str, Path], volid: str, epoch: int
):
    path.unlink(missing_ok=True)
    # --invariant: a fixed time for the volume label (before -i, which it would override).
    run(
        "mkfs.vfat",
        "--invariant",
        "-C",
        "-n",
        label.upper(),
        "-i",
        volid,
        path,
        size_mib * 1024,
        stdout=subprocess.DEVNULL,
    )
    # mcopy -m: the file's own time; mmd: the epoch's. FAT keeps local time: UTC.
    env = dict(os.environ, TZ="UTC", SOURCE_DATE_EPOCH=str(epoch))
    folders = sorted({str(p) for name in files for p in Path(name).parents if p != Path(".")})
    for folder in folders:
        run("mmd", "-i", path, f"::{folder}", env=env)
    for name, src in files.items():
        run("mcopy", "-m", "-o", "-i", path, src, f"::{name}", env=env)


def make_ext4(path: Path, size_mib: int, label: str, tree: Path | None, fs_uuid: str, epoch: int):
    path.unlink(missing_ok=True)
    cmd = [
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        label,
        "-U",
        fs_uuid,
        "-E",
        f"hash_seed={fs_uuid},root_owner=0:0",
        "-O",
        "^metadata_csum_seed",
    ]
    if tree is not None:
        cmd += ["-d", tree]
    # E2FSPROGS_FAKE_TIME: libext2fs's own times (superblock, root, lost+found, journal, crtime).
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(epoch))
    run(*cmd, path, f"{size_mib}M", stdout=subprocess.DEVNULL, env=env)
    if tree is not None:
        pin_times(path, tree, epoch, env)


def pin_times(image: Path, tree: Path, epoch: int, env: dict):
    """`mkfs.ext4 -d` (1.47) copies each file's atime, ctime and mtime from TREE: the first
    two are when this build unpacked it, which no one can set. Set both to EPOCH and clamp
    mtime to it, in the image, with debugfs."""
    cmds = []
    for p in [tree] + [Path(d, n) for d, dirs, files in os.walk(tree) for n in dirs + files]:
        name = "/" if p == tree else f"/{p.relative_to(tree)}"
        if '"' in name or "\n" in name:
            raise SystemExit(f"cbimage: debugfs cannot name {name!r}")
        cmds += [f'sif "{name}" atime @{epoch}', f'sif "{name}" ctime @{epoch}']
        if p.lstat().st_mtime > epoch:
            cmds.append(f'sif "{name}" mtime @{epoch}')
    r = subprocess.run(
        ["debugfs", "-w", "-f", "-", image],
        input="\n".join(cmds) + "\n",
        text=True,
        errors="surrogateescape",
        capture_output=True,
        check=False,
        env=env,
    )
    errors = r.stderr.splitlines()[1:]  # the first line is debugfs's version
    if r.returncode or errors:
        raise SystemExit(f"cbimage: debugfs on {image}: {' / '.join(errors[:5])}")


def assemble(image: Path, board: str, parts: list[Part]) -> None:
    """Write the GPT and copy each partition file into its place."""
    start = 1  # MiB; the first MiB holds the protective MBR and the GPT
    lines = [
        "label: gpt",
        f"label-id: {stable_uuid(board, 'disk')}",
        "unit: sectors",
        "first-lba: 2048",
        "",
    ]
    layout = []
    for p in parts:
        lines.append(
            f"start={start * MIB // SECTOR}, size={p.size_mib * MIB // SECTOR}, "
            f"type={p.type}, uuid={p.uuid(board)}, name={p.name}"
        )
        layout.append((p, start))
        start += p.size_mib
    total = start + 1  # room for the backup GPT
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(total * MIB)
    run(
        "sfdisk",
        "--quiet",
        "--no-reread",
        "--no-tell-kernel",
        image,
        input="\n".join(lines) + "\n",
        text=True,
        stdout=subprocess.DEVNULL,
    )
    for p, at in layout:
        if p.file is not None:
            run(
                "dd",
                f"if={p.file}",
                f"of={image}",
                "bs=1M",
                f"seek={at}",
                "conv=notrunc,sparse",
                "status=none",
            )
