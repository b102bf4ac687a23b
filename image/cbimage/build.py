"""Build a board's image: the cached root file system + the project + units -> disk image.

Two cache levels under the cache directory:
  rootfs/SUITE-ARCH-KEY.tar  mmdebstrap's output, keyed by suite, architecture, recipe
                             and epoch (cbimage.recipe); shared by the boards of an arch
  images/BOARD[-test]-KEY/   the finished image, keyed by that key + the profile + the
                             project's source + this builder's own code + the variant
An unchanged input set reuses both; the output directory gets hard links to the cache.
"""

import hashlib
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from appliance.imagesign import file_sha256  # the box verifies with the same code

from . import bundle, disk, grub, recipe
from .profile import Profile, load

PACKAGE = Path(__file__).resolve().parent
FILES = PACKAGE / "files"
REPO = PACKAGE.parent.parent
LIB = "usr/lib/commonsbox"  # inside the image
PYLIB = f"{LIB}/python"
UNITS = (
    "commonsbox-agent.service",
    "commonsbox-webui.service",
    "commonsbox-grow.service",
    "commonsbox-update-gate.service",
    "commonsbox-update-check.timer",
    "commonsbox-backup.timer",
)
TEST_UNITS = ("commonsbox-testchannel.service",)
# Installed, not enabled: the agent starts them when the household turns them on.
AGENT_STARTED_UNITS = (
    "commonsbox-update-check.service",  # started by its timer
    "commonsbox-backup.service",  # started by its timer
    "commonsbox-mailfilter.service",
    "commonsbox-files.service",
    "commonsbox-ssh.service",
)
DROP_INS = {"prosody.service": "prosody-notify.conf"}  # a Debian unit -> our drop-in for it
PLATFORMS = {"amd64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
GUEST_PYTHON = "3.13"  # trixie's
OUTPUTS = ("disk.img", "vmlinuz", "initrd.img", "image.json", "manifest.json", "packages.lock")


def default_cache() -> Path:
    return Path(
        os.environ.get("CBIMAGE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cbimage"
    )


def project_sources() -> list[Path]:
    """The project files that go into the image: the agent, the web UI (with its
    compiled translations), the hardware drivers and what building the wheel reads.
    Relative to REPO."""
    subprocess.run(
        ["bash", "tools/i18n.sh", "compile"], cwd=REPO, check=True, stdout=subprocess.DEVNULL
    )
    listed = (
        subprocess.run(
            [
                "git",
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                "appliance",
                "webui",
                "hardware",
                "pyproject.toml",
                "README.md",
                "LICENSE*",
                "COPYING*",
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    files = {Path(f) for f in listed if f and (REPO / f).is_file()}
    files |= {p.relative_to(REPO) for p in REPO.glob("webui/translations/*/LC_MESSAGES/*.mo")}
    return sorted(f for f in files if "__pycache__" not in f.parts)


def image_key(
    profile: Profile, rootfs_key: str, sources: list[Path], test: bool, version: str
) -> str:
    h = hashlib.sha256()
    h.update(f"rootfs {rootfs_key}\ntest {test}\nversion {version}\n".encode())
    h.update(profile.canonical().encode())
    for f in sorted(PACKAGE.rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f"builder {f.relative_to(PACKAGE)}\n".encode())
            h.update(f.read_bytes())
    for f in sources:
        h.update(f"source {f}\n".encode())
        h.update((REPO / f).read_bytes())
    return h.hexdigest()


def root_tarball(
    board: str, cache: Path, log=print, timings: dict | None = None
) -> tuple[Path, str]:
    """BOARD's root file system as mmdebstrap made it (built unless cached), and its key.
    The box-in-a-namespace runs this tree too (lab/cblab/boxroot.py)."""
    profile = load(board)
    rkey = recipe.key(profile, recipe.epoch())
    rootfs = cache / "rootfs" / f"{profile.suite}-{profile.architecture}-{rkey[:16]}.tar"
    if rootfs.is_file():
        log(f"rootfs: cached {rootfs}")
    else:
        seconds = round(recipe.build(profile, rootfs, recipe.epoch(), log), 1)
        if timings is not None:
            timings["rootfs_s"] = seconds
        log(f"rootfs: built in {seconds} s")
    return rootfs, rkey


def default_version(epoch: int) -> str:
    """A release's version is the day it was built and that day's count (the update
    feed's YYYY.MM.DD.N: appliance/update/feed.py); by default the epoch's day, first."""
    return time.strftime("%Y.%m.%d.1", time.gmtime(epoch))


def build(
    board: str,
    out: Path,
    cache: Path,
    test: bool = False,
    log=print,
    lock: Path | None = None,
    version: str | None = None,
    update_cert: Path | None = None,
    feed_key: Path | None = None,
) -> dict:
    """Build (or reuse) BOARD's image; hard-link it into OUT; return its image.json.
    LOCK: a packages.lock from an earlier build, to hold this one to its versions.
    VERSION: the release's (default_version). UPDATE_CERT: the certificate update
    bundles must be signed with (cbimage keygen); without it the box takes no updates.
    FEED_KEY: the public key update feeds are signed with (commonsbox image keygen)."""
    profile = load(board)
    timings = {}
    locked = recipe.read_lock(lock) if lock else None
    epoch = recipe.epoch()
    version = version or default_version(epoch)
    rootfs, rkey = root_tarball(board, cache, log, timings)
    if locked is not None:
        recipe.check_lock(recipe.rootfs_packages(rootfs), locked)
    sources = project_sources()
    keyring = update_cert.read_bytes() if update_cert else b""
    feed_pub = feed_key.read_text() if feed_key else ""
    ikey = image_key(profile, rkey, sources, test, version + keyring.decode() + feed_pub)
    done = cache / "images" / f"{board}{'-test' if test else ''}-{ikey[:16]}"
    if (done / "image.json").is_file():
        log(f"image: cached {done}")
    else:
        work = done.with_name(done.name + ".work")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        t0 = time.monotonic()
        umask = os.umask(0o022)  # the modes of the files this build writes, not the caller's
        try:
            info = _assemble(
                profile, rootfs, sources, work, test, epoch, version, keyring, feed_pub, log
            )
        finally:
            os.umask(umask)
        timings["image_s"] = round(time.monotonic() - t0, 1)
        info.update(key=ikey, rootfs_key=rkey, source_date_epoch=epoch, timings=timings)
        (work / "image.json").write_text(json.dumps(info, indent=2) + "\n")
        # What `commonsbox image sign` signs: the image's hash, everything in it and whether
        # it is a test image (imagesign refuses to sign a test image as a release).
        (work / "manifest.json").write_text(
            json.dumps(
                {
                    k: info[k]
                    for k in (
                        "board",
                        "version",
                        "test_image",
                        "image",
                        "sha256",
                        "kernel_version",
                        "packages",
                        "python_wheels",
                        "key",
                    )
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
        for junk in work.iterdir():
            if junk.name not in OUTPUTS:
                shutil.rmtree(junk) if junk.is_dir() else junk.unlink()
        shutil.rmtree(done, ignore_errors=True)
        work.rename(done)
        log(f"image: assembled in {timings['image_s']} s -> {done}")
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
        try:
            os.link(done / name, out / name)
        except OSError:  # another file system
            subprocess.run(["cp", "--sparse=always", done / name, out / name], check=True)
    info = json.loads((out / "image.json").read_text())
    info["this_run"] = timings
    return info


def _assemble(
    profile: Profile,
    rootfs: Path,
    sources: list[Path],
    work: Path,
    test: bool,
    epoch: int,
    version: str,
    keyring: bytes,
    feed_pub: str,
    log,
) -> dict:
    root = work / "root"
    root.mkdir()
    log("image: unpacking the root file system")
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", rootfs, "-C", root],
        check=True,
    )
    _install_project(profile, sources, work, root, log)
    packages = recipe.dpkg_status((root / "var/lib/dpkg/status").read_text())
    (work / "packages.lock").write_text(recipe.lock_text(packages))
    # Root B is not in the image: the box makes it on first boot (appliance/storage/grow.py).
    puuid = {
        name: disk.partition_uuid(profile.name, name) for name in ("boot", "rootA", "rootB", "data")
    }
    _configure(profile, root, puuid, test)
    if keyring:
        (root / "etc/rauc/keyring.pem").write_bytes(keyring)
    if feed_pub:
        (root / LIB / "update-feed.pub").write_text(feed_pub)
    release = {
        "board": profile.name,
        "boot": profile.boot["kind"],
        "version": version,
        "test_image": test,
    }
    (root / LIB / "release.json").write_text(json.dumps(release, indent=2, sort_keys=True) + "\n")

    kernel_version, boot_files, cmdline = _boot_files(profile, root, work, puuid, epoch)

    d = profile.disk
    used_mib = tree_mib(root)
    root_mib = 4 * math.ceil((used_mib * 1.1 + d["root_headroom_mib"]) / 4)
    log(f"image: root file system {used_mib} MiB -> partitions of {root_mib} MiB")
    boot_img, root_img, data_img = work / "boot.vfat", work / "rootA.ext4", work / "data.ext4"
    disk.make_vfat(boot_img, d["boot_mib"], "CBBOOT", boot_files, puuid["boot"][:8], epoch)
    disk.make_ext4(
        root_img, root_mib, "rootA", root, disk.stable_uuid(profile.name, "fs", "rootA"), epoch
    )
    disk.make_ext4(
        data_img, d["data_mib"], "data", None, disk.stable_uuid(profile.name, "fs", "data"), epoch
    )
    image = work / "disk.img"
    disk.assemble(
        image,
        profile.name,
        [
            disk.Part("boot", disk.ESP, d["boot_mib"], boot_img),
            disk.Part("rootA", disk.LINUX, root_mib, root_img),
            disk.Part("data", disk.LINUX, d["data_mib"], data_img),
        ],
    )
    st = image.stat()
    return {
        "board": profile.name,
        "version": version,
        "takes_updates": bool(keyring),
        "test_image": test,
        "image": "disk.img",
        "kernel": "vmlinuz",
        "initrd": "initrd.img",
        "cmdline": cmdline,
        "kernel_version": kernel_version,
        "boot_files": sorted(boot_files),
        "qemu": profile.qemu,
        "partitions": puuid,
        "root_mib": root_mib,
        "size_bytes": st.st_size,
        "allocated_bytes": st.st_blocks * 512,
        "sha256": file_sha256(image),
        "packages": packages,
        "python_wheels": sorted(w.name for w in (work / "wheels").glob("*.whl")),
    }


def _boot_files(profile: Profile, root: Path, work: Path, puuid: dict, epoch: int):
    """The boot partition's files and the kernel command line, by the board's boot kind:
    "grub" (UEFI loads GRUB from the EFI system partition, which boots a slot's kernel
    from that slot's root: image/cbimage/grub.py), "direct" (QEMU loads the kernel and
    initrd, which are also kept beside the image) or "raspi" (the Pi firmware reads
    config.txt and cmdline.txt, loads the kernel, the initrd and the device tree; their
    only copy on the box is the boot partition: they leave the root).
    Returns (kernel version, {path on the partition: file}, cmdline)."""
    version = max(root.glob("boot/vmlinuz-*")).name.removeprefix("vmlinuz-")
    files = {"vmlinuz": work / "vmlinuz", "initrd.img": work / "initrd.img"}
    boot = profile.boot
    if boot["kind"] != "grub":  # the kernel leaves the root for the boot partition
        shutil.move(root / f"boot/vmlinuz-{version}", files["vmlinuz"])
        shutil.move(root / f"boot/initrd.img-{version}", files["initrd.img"])
    cmdline = (
        f"root=PARTUUID={puuid['rootA']} rw console={boot['console']},115200 loglevel=4 "
        f"{boot.get('cmdline', '')}"
    ).strip()
    if boot["kind"] == "grub":
        # Each slot boots the kernel in its own root; grub.cfg names the slot's root.
        cmdline = cmdline.removeprefix(f"root=PARTUUID={puuid['rootA']} ")
        cmdline += " panic=10"  # an unattended box reboots after a panic: the trial ends
        for link, target in (
            ("vmlinuz", f"vmlinuz-{version}"),
            ("initrd.img", f"initrd.img-{version}"),
        ):
            shutil.copy2(root / "boot" / target, files[link])  # beside the image, as ever
            (root / "boot" / link).unlink(missing_ok=True)
            (root / "boot" / link).symlink_to(target)
        efi = work / "grub.efi"
        grub.make_efi(root, boot["grub_platform"], efi)
        env, cfg = work / "grubenv", work / "grub.cfg"
        env.write_bytes(grub.environment())
        cfg.write_text(grub.config({"A": puuid["rootA"], "B": puuid["rootB"]}, cmdline))
        files = {
            f"{grub.EFI_DIR}/{boot['efi']}": efi,
            f"{grub.EFI_DIR}/grub.cfg": cfg,
            f"{grub.EFI_DIR}/grubenv": env,
        }
        for f in files.values():
            os.utime(f, (epoch, epoch))
    elif boot["kind"] == "direct":
        cmdline += " panic=-1"  # QEMU runs with -no-reboot: a panic ends the VM
    elif boot["kind"] == "raspi":
        cmdline += " rootwait panic=10"  # an unattended box reboots after a panic
        for name in boot["firmware"]:
            files[name] = root / "usr/lib/raspi-firmware" / name
        for dtb in boot["device_trees"]:
            files[Path(dtb).name] = root / f"usr/lib/linux-image-{version}" / dtb
        for name, text in (("config.txt", boot["config_txt"]), ("cmdline.txt", cmdline + "\n")):
            files[name] = work / name
            files[name].write_text(text)
            os.utime(files[name], (epoch, epoch))
    else:
        raise SystemExit(f"{profile.name}: unknown boot kind {boot['kind']!r}")
    for name in list(files):  # copied now: the sources below leave the root
        if files[name].is_relative_to(root):
            files[name] = Path(shutil.copy2(files[name], work / f"boot-{name}"))
    for path in ("boot/firmware", "usr/lib/raspi-firmware", f"usr/lib/linux-image-{version}"):
        shutil.rmtree(root / path, ignore_errors=True)
    for link in ("vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"):
        (root / link).unlink(missing_ok=True)  # pointed into /boot
    return version, files, cmdline


def tree_mib(root: Path) -> int:
    """The tree's size in 4 KiB blocks, from its files' contents: what du counts depends on
    the file system this build unpacked it on, and the partitions' sizes must not. A block
    of zeros costs nothing: mkfs.ext4 -d leaves it a hole (arm64's programs and libraries
    are padded with zeros to 64 KiB pages: 37 MiB of zeros in the arm64 root)."""
    inodes = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(d, name)
            st = os.lstat(path)
            if st.st_ino in inodes:
                continue
            if stat.S_ISREG(st.st_mode):
                inodes[st.st_ino] = _data_blocks(path)
            else:
                inodes[st.st_ino] = 1 if stat.S_ISDIR(st.st_mode) else -(-st.st_size // 4096)
    return sum(inodes.values()) * 4096 // (1 << 20)


_ZERO = bytes(4096)


def _data_blocks(path: str) -> int:
    """The file's 4 KiB blocks that are not all zeros."""
    blocks = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            blocks += sum(
                1
                for i in range(0, len(chunk), 4096)
                if chunk[i : i + 4096] != _ZERO[: len(chunk) - i]
            )
    return blocks


def _install_project(profile: Profile, sources: list[Path], work: Path, root: Path, log):
    """The project as a wheel, and the PyPI wheels Debian lacks, into /usr/lib/commonsbox."""
    src, wheels = work / "src", work / "wheels"
    for f in sources:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    log("image: building the project's wheel")
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", wheels, src], check=True, stdout=subprocess.DEVNULL
    )
    compat = [
        "--only-binary=:all:",
        "--platform",
        PLATFORMS[profile.architecture],
        "--python-version",
        GUEST_PYTHON,
        "--implementation",
        "cp",
    ]
    log(f"image: fetching {', '.join(recipe.PYPI_WHEELS)}")
    subprocess.run(
        [*pip, "download", "--no-deps", *compat, "-d", wheels, *recipe.PYPI_WHEELS],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    dest = root / PYLIB
    # By name from --find-links, not by path: pip records a path in direct_url.json, and
    # this one is in the build's cache directory.
    names = sorted(w.name.split("-")[0] for w in wheels.glob("*.whl"))
    subprocess.run(
        [
            *pip,
            "install",
            "--no-deps",
            "--no-compile",
            "--no-index",
            *compat,
            "--find-links",
            wheels,
            "--target",
            dest,
            *names,
        ],
        check=True,
    )
    # pip's scripts start with this build's interpreter path: /usr/bin/commonsbox instead,
    # and RECORD forgets them (their hashes would carry that path into the image).
    shutil.rmtree(dest / "bin", ignore_errors=True)
    for record in dest.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(line for line in lines if not line.startswith("../../bin/")))
    # Byte-compile with the guest's own Python (hash-based .pyc: no timestamps).
    subprocess.run(
        [
            "chroot",
            root,
            "python3",
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "checked-hash",
            f"/{PYLIB}",
        ],
        check=True,
    )


def _configure(profile: Profile, root: Path, puuid: dict, test: bool):
    units = root / "usr/lib/systemd/system"
    for unit in UNITS + AGENT_STARTED_UNITS + (TEST_UNITS if test else ()):
        shutil.copyfile(FILES / unit, units / unit)  # not the checkout's time and mode
    for unit, name in DROP_INS.items():
        (units / f"{unit}.d").mkdir(exist_ok=True)
        shutil.copyfile(FILES / name, units / f"{unit}.d" / "commonsbox.conf")
    cli = root / "usr/bin/commonsbox"
    shutil.copyfile(FILES / "commonsbox", cli)
    cli.chmod(0o755)
    rauc_backend = root / LIB / "rauc-boot-backend"
    shutil.copyfile(FILES / "rauc-boot-backend", rauc_backend)
    rauc_backend.chmod(0o755)
    if test:
        shutil.copyfile(FILES / "testchannel.py", root / LIB / "testchannel.py")
        (root / "etc/commonsbox-test-image").write_text(
            "This is a TEST image: a root command channel listens on the virtio port org.commonsbox.test.\n"
        )
    (root / "var/lib/commonsbox").mkdir(parents=True, exist_ok=True)
    (root / LIB / "partitions.json").write_text(json.dumps(puuid, indent=2, sort_keys=True) + "\n")
    # No line for /: the root is the slot the bootloader named (root= on the kernel's
    # command line), and one root image serves as slot A or B. The EFI system partition
    # is mounted only to change the boot order (appliance/update/boot/grub.py).
    fstab = (
        "# <file system>  <mount point>  <type>  <options>  <dump>  <pass>\n"
        f"PARTUUID={puuid['data']}  /var/lib/commonsbox  ext4  defaults,nofail  0  2\n"
    )
    if profile.boot["kind"] == "grub":
        fstab += f"PARTUUID={puuid['boot']}  /boot/efi  vfat  noauto,umask=0077,flush  0  0\n"
        (root / "boot/efi").mkdir(exist_ok=True)
    (root / "etc/fstab").write_text(fstab)
    _rauc_config(profile, root, puuid, test)
    subprocess.run(
        ["chroot", root, "systemctl", "enable", "--quiet", *UNITS, *(TEST_UNITS if test else ())],
        check=True,
        stderr=subprocess.DEVNULL,
    )  # it warns that /proc is not mounted


def _rauc_config(profile: Profile, root: Path, puuid: dict, test: bool) -> None:
    """RAUC's view of the box: two root slots, by partition UUID, a bundle for this board
    only, signed by the update key; the slot switch is the box's own
    (appliance/update/boot), through RAUC's custom bootloader backend."""
    conf = root / "etc/rauc/system.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        "[system]\n"
        f"compatible={bundle.compatible(profile.name, test)}\n"
        "bootloader=custom\n"
        "bundle-formats=-plain\n"
        "data-directory=/var/lib/commonsbox/update/rauc\n"
        "\n[handlers]\n"
        "bootloader-custom-backend=/usr/lib/commonsbox/rauc-boot-backend\n"
        "\n[keyring]\n"
        "path=/etc/rauc/keyring.pem\n"
        + "".join(
            f"\n[slot.rootfs.{i}]\ndevice=/dev/disk/by-partuuid/{puuid['root' + slot]}\n"
            f"type=ext4\nbootname={slot}\n"
            for i, slot in enumerate("AB")
        )
    )
