"""`cbimage bundle`: a built image's root file system as a signed RAUC update bundle.

The bundle holds root A's file system exactly as the image has it (RAUC writes it into
whichever slot is not running) and a manifest naming the board (RAUC's `compatible`,
the box's /etc/rauc/system.conf) and the release's version. Its format is `verity`:
the box checks every block against a signed hash tree as it reads, so a bundle altered
on the way (or on a stick) fails to install; `plain` bundles are refused by the box.

The signature is CMS with an X.509 certificate (what RAUC checks against the keyring in
the image); RAUC cannot sign with ed25519 (OpenSSL's CMS lacks it), so the update key
is an ECDSA P-256 key and certificate made by `cbimage keygen`, kept apart like the
manifest key. The root file system inside is the image build's, byte for byte (the
image is reproducible); RAUC salts the verity tree and dates the signature, so two
signings of one image differ only there.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def keygen(key: Path, cert: Path, name: str = "Commonsbox updates") -> None:
    """A new update signing key (0600) and its self-signed certificate (the keyring)."""
    if key.exists() or cert.exists():
        raise SystemExit(f"cbimage: {key} or {cert} exists: refusing to replace a signing key")
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", cert, "-days", "3650",
            "-subj", f"/O=Commonsbox/CN={name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)


def root_partition(image: Path) -> tuple[int, int]:
    """(offset, size) in bytes of root A in a built disk image, from its partition table."""
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", image], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    sector = table.get("sectorsize", 512)
    for p in table["partitions"]:
        if p.get("name") == "rootA":
            return p["start"] * sector, p["size"] * sector
    raise SystemExit(f"cbimage: {image} has no rootA partition")


def compatible(board: str, test: bool) -> str:
    """RAUC's name for what a bundle fits: a test image's (with its root command channel)
    fits only test images, so RAUC itself refuses it on a household's box."""
    return f"commonsbox-{board}{'-test' if test else ''}"


# zstd, not mksquashfs's gzip: the test image's root made into a bundle in 7.5 s instead
# of 51 s on this machine, and 2 % smaller.
SQUASHFS = "-comp zstd -Xcompression-level 9"


def bundle(image_dir: Path, out: Path, key: Path, cert: Path) -> dict:
    """Sign IMAGE_DIR's root as the bundle OUT; returns what the feed needs to know."""
    info = json.loads((image_dir / "image.json").read_text())
    offset, size = root_partition(image_dir / info["image"])
    with tempfile.TemporaryDirectory(prefix="cbimage-bundle-", dir=out.parent) as tmp:
        root = Path(tmp, "root.ext4")
        with open(image_dir / info["image"], "rb") as src, open(root, "wb") as dst:
            src.seek(offset)
            _copy(src, dst, size)
        return make(root, info, out, key, cert)


def make(root: Path, info: dict, out: Path, key: Path, cert: Path) -> dict:
    """Sign the root file system ROOT (image.json's INFO says whose) as the bundle OUT."""
    with tempfile.TemporaryDirectory(prefix="cbimage-bundle-", dir=out.parent) as tmp:
        content = Path(tmp, "content")
        content.mkdir()
        os.link(root, content / "root.ext4")
        (content / "manifest.raucm").write_text(
            "[update]\n"
            f"compatible={compatible(info['board'], info['test_image'])}\n"
            f"version={info['version']}\n"
            "\n[bundle]\nformat=verity\n"
            "\n[image.rootfs]\nfilename=root.ext4\n"
        )
        made = Path(tmp, "bundle.raucb")
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(info["source_date_epoch"]))
        sign = ["--cert", cert, "--key", key]
        subprocess.run(
            ["rauc", "bundle", f"--mksquashfs-args={SQUASHFS}", *sign, content, made],
            check=True,
            capture_output=True,
            env=env,
        )
        shutil.move(made, out)
    return {
        "board": info["board"],
        "test_image": info["test_image"],
        "version": info["version"],
        "file": out.name,
        "size": out.stat().st_size,
        "root_bytes": root.stat().st_size,
    }


def _copy(src, dst, size: int) -> None:
    """SIZE bytes, leaving the zeros as holes (the root has ~80 MiB of free blocks)."""
    block = 1 << 20
    while size > 0:
        chunk = src.read(min(block, size))
        if not chunk:
            raise SystemExit("cbimage: the image ends inside root A")
        if chunk.count(0) == len(chunk):
            dst.seek(len(chunk), os.SEEK_CUR)
        else:
            dst.write(chunk)
        size -= len(chunk)
    dst.truncate()
