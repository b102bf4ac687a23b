"""The one root file system recipe every board shares: mmdebstrap of Debian 13 (trixie).

One root per architecture: every arm64 board (QEMU virt, Raspberry Pi 4 and 5) boots
the same root and differs only in its boot partition (cbimage.build). The result is a
tarball, cached by the hash of the suite, the architecture and this recipe: the
project's own code is added later, so editing the agent does not re-run mmdebstrap.
"""

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from appliance import capabilities

from .profile import Profile

# The Debian mirror apt uses on the build machines (/etc/apt/sources.list.d/debian.sources).
MIRROR = "http://deb.debian.org/debian"

# The base system: systemd as init, networking, the agent's tools.
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "initramfs-tools",
    "passwd",
    "iproute2",
    "procps",
    "e2fsprogs",
    "fdisk",  # fsck and resize2fs for ext4; sfdisk grows data on first boot
    "zstd",  # initramfs-tools compresses with it (gzip, its fallback, is slower)
    "systemd-resolved",  # the box's own DNS resolver (MX lookups, the DNS-record check)
    "ca-certificates",  # TLS to a smarthost and to other servers
)
# What the capabilities need (the VPN's tools, the firewall, LUKS, the mail and chat relay,
# OpenSSH), each declared in its folder (appliance/capabilities.py); the relay's daemons
# stay off until the agent configures them.
CAPABILITY_PACKAGES = capabilities.packages()
# The units of those that the agent starts itself, when the household turns them on.
RELAY_UNITS = capabilities.units_off()
KERNEL = {"amd64": "linux-image-amd64", "arm64": "linux-image-arm64"}
# The Raspberry Pi's boot firmware (start4.elf, fixup4.dat, ...) comes from Debian too,
# from its non-free-firmware component (the Pi's GPU boots the board: no free firmware
# exists); the image builder copies it to the boot partition of the Pi boards.
# GRUB (its EFI modules: cbimage.grub makes the QEMU boards' bootloader from them).
ARCH_PACKAGES = {
    "amd64": ("grub-efi-amd64-bin",),
    "arm64": ("raspi-firmware", "grub-efi-arm64-bin"),
}
COMPONENTS = {"amd64": "main", "arm64": "main,non-free-firmware"}
# The CPU qemu-user emulates for a foreign architecture's maintainer scripts. Its default,
# "max", has every optional feature, and glibc and the programs pick the costly ones:
# perl took 2x, Python 1.5x, gzip 1.3x the CPU time it takes as a Cortex-A72, the Raspberry Pi
# 4's own CPU (armv8.0, Debian's arm64 baseline). Measured with QEMU 10.0.
QEMU_CPU = {"arm64": "cortex-a72"}
# Debian's Python packages the agent and the web UI import (pyproject.toml's dependencies).
PYTHON_PACKAGES = (
    "python3",
    "python3-pyroute2",
    "python3-cryptography",
    "python3-segno",
    "python3-argon2",
    "python3-cffi-backend",
    "python3-pyotp",
    "python3-flask",
    "python3-flask-babel",
    "python3-babel",
    "python3-gunicorn",
    "python3-dnspython",
    "python3-pyudev",
    "python3-smbus2",
)
# Not in Debian, or too old there: wheels from PyPI installed beside the project.
# trixie's python3-argon2 (21.1.0) lacks argon2.exceptions.InvalidHashError.
PYPI_WHEELS = ("wgconfig==1.2.0", "argon2-cffi==25.1.0", "argon2-cffi-bindings==21.2.0")

WEBUI_USER = "commonsbox-web"

# The languages the web UI speaks (webui/translations): Babel's data for the others is
# 28 MB the box never reads.
LANGUAGES = ("en", "es", "fr", "pt", "ar", "hi", "sw")
BABEL_DATA = "/usr/share/python-babel-localedata/locale-data"
# Kernel drivers a headless, wired home box never loads: graphics, sound, cameras and TV,
# Wi-Fi and Bluetooth, InfiniBand, staging, industrial sensors (iio), ISDN, CAN, NFC,
# low-power radios, USB gadget mode, storage targets, cluster file systems, data-centre
# network and SAN adapters. Kept: every file system a household's USB disk may carry,
# USB network adapters and modems, Intel, Realtek and Broadcom NICs (a Pi's own is
# Broadcom's genet or Cadence's macb), WireGuard, nftables, dm-crypt.
KERNEL_EXCLUDES = (
    "drivers/gpu",
    "sound",
    "drivers/media",
    "drivers/net/wireless",
    "drivers/infiniband",
    "drivers/staging",
    "drivers/iio",
    "drivers/isdn",
    "drivers/bluetooth",
    "net/bluetooth",
    "net/mac80211",
    "net/wireless",
    "drivers/net/can",
    "net/can",
    "drivers/nfc",
    "net/nfc",
    "drivers/net/ieee802154",
    "net/ieee802154",
    "net/mac802154",
    "drivers/usb/gadget",
    "drivers/target",
    "drivers/firewire",
    "drivers/md/dm-vdo",
    *(f"fs/{d}" for d in ("ocfs2", "gfs2", "dlm", "bcachefs", "ceph", "orangefs", "coda", "afs")),
    *(f"net/{d}" for d in ("ceph", "rds", "tipc", "rxrpc", "ax25", "netrom", "rose")),
    *(
        f"drivers/net/ethernet/{d}"
        for d in (
            "mellanox",
            "qlogic",
            "chelsio",
            "sfc",
            "netronome",
            "cavium",
            "huawei",
            "hisilicon",
            "amazon",
            "emulex",
            "brocade",
            "pensando",
            "fungible",
            "microsoft",
            "google",
            "marvell",
            "freescale",
        )
    ),
    *(
        f"drivers/scsi/{d}"
        for d in (
            "qla2xxx",
            "qla4xxx",
            "lpfc",
            "bfa",
            "mpt3sas",
            "megaraid",
            "be2iscsi",
            "aacraid",
            "hisi_sas",
            "smartpqi",
            "csiostor",
            "cxgbi",
            "bnx2fc",
            "qedf",
            "qedi",
            "fnic",
            "snic",
            "pm8001",
            "mpi3mr",
        )
    ),
)
# Drivers of other vendors' arm64 SoCs, wherever they sit (clocks, pin control, PHYs...):
# the Raspberry Pis are Broadcom, QEMU's machines virtio.
KERNEL_VENDOR_EXCLUDES = ("mediatek", "qcom")
# udev's hardware database: the vendor and model name lists (about 20 MB on arm64, with
# the compiled hwdb.bin) only name devices in udevadm's output; the rules' own entries
# (keyboards, sensors, autosuspend, ...) stay.
HWDB_NAMES = (
    "20-pci-vendor-model",
    "20-usb-vendor-model",
    "20-OUI",
    "20-acpi-vendor",
    "20-bluetooth-vendor-product",
)
# glibc's iconv modules for IBM mainframe (EBCDIC) code pages: about 9 MB on arm64 (each
# module is padded to 64 KiB there). Kept: every code page mail is written in, the DOS
# ones (IBM437, 850, 852, 855, 857, 860-866, 869) among them.
GCONV = "/usr/lib/*-linux-gnu/gconv"
GCONV_KEPT = (
    "IBM437",
    "IBM850",
    "IBM852",
    "IBM855",
    "IBM857",
    "IBM860",
    "IBM861",
    "IBM862",
    "IBM863",
    "IBM864",
    "IBM865",
    "IBM866",
    "IBM869",
)

# Documentation and translations of the OS packages are not needed on a box.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
    f"path-exclude={BABEL_DATA}/*",
    f"path-include={BABEL_DATA}/root.dat",
    *(f"path-include={BABEL_DATA}/{lang}{tail}.dat" for lang in LANGUAGES for tail in ("", "_*")),
    *(f"path-exclude=/usr/lib/modules/*/kernel/{d}/*" for d in KERNEL_EXCLUDES),
    *(f"path-exclude=/usr/lib/modules/*/kernel/*/{v}/*" for v in KERNEL_VENDOR_EXCLUDES),
    *(f"path-exclude=/usr/lib/udev/hwdb.d/{name}.hwdb" for name in HWDB_NAMES),
    f"path-exclude={GCONV}/IBM*.so",
    f"path-exclude={GCONV}/EBCDIC*.so",
    *(f"path-include={GCONV}/{name}.so" for name in GCONV_KEPT),
)

# The modules the initramfs holds (MODULES=list): what each board needs to find and mount
# its root file system, nothing else (MODULES=most packed ~2,000 modules into a 33 MB
# initrd, minutes of emulated compression). Every name that is not a module of this
# architecture's kernel (built in, or another architecture's) is skipped.
INITRAMFS_MODULES = (
    "ext4",
    "crc32c_generic",
    "crc32c_intel",  # the root file system
    "virtio_blk",
    "virtio_mmio",
    "virtio_pci",
    "virtio_scsi",  # QEMU virt and q35
    "sd_mod",
    "ahci",
    "nvme",
    "usb_storage",
    "uas",  # SATA, NVMe, USB disks
    "xhci_pci",
    "xhci_plat_hcd",
    "dwc2",
    "phy_generic",
    "reset_raspberrypi",  # Pi USB
    "bcm2835",
    "sdhci_iproc",
    "sdhci_brcmstb",
    "fixed",
    "gpio_regulator",  # Pi SD card
    "nvmem_rmem",
)

# Runs after the essential packages are in. Four tools are run once, at the end, rather
# than by each package that calls them (under arm64 emulation each run costs seconds to
# minutes): update-initramfs (the kernel's hook, then each trigger), py3compile (each
# Python package's postinst starts an interpreter to byte-compile its files),
# update-ca-certificates (CA_CERTIFICATES) and deb-systemd-helper (SYSTEMD_HELPER). Two
# are not run at all: the keys they would make (SSH host keys, ssl-cert's "snakeoil")
# would be one private key in every box's image, and the build removes them anyway.
SYSTEMD_HELPER_BIN = "/usr/bin/deb-systemd-helper"
DEFERRED = (
    "/usr/sbin/update-initramfs",
    "/usr/bin/py3compile",
    "/usr/bin/ssh-keygen",
    "/usr/sbin/make-ssl-cert",
    "/usr/sbin/update-ca-certificates",
    SYSTEMD_HELPER_BIN,
)
SYSTEMD_HELPER_CALLS = "/var/lib/cbimage-deb-systemd-helper.calls"

# When the build machine is not of the image's architecture, the programs dpkg runs for
# every package it unpacks are the build machine's own while the packages go in: its
# archive back end dpkg-deb (the control files, then the data), dpkg-split (is this a
# split archive?), tar (the control files out) and rm (dpkg's temporary directories).
# ~2,400 processes of an arm64 build: 206 s of CPU emulated, 68 s natively. They only
# take the archives apart and hand dpkg what they hold, so what is installed is the
# same: the arm64 root built so is identical, file for file, to one built without
# (content, mode, owner, time). They and their libraries sit in a directory of their
# own, found through the paths patchelf writes into them.
NATIVE_DIR = "/cbimage-native"
NATIVE_TOOLS = ("/usr/bin/dpkg-deb", "/usr/bin/dpkg-split", "/usr/bin/tar", "/usr/bin/rm")
NATIVE = r"""
if [ "$(dpkg --print-architecture)" != "$(chroot "$R" dpkg --print-architecture)" ]; then
    mkdir "$R{dir}"
    loader=$(patchelf --print-interpreter /usr/bin/dpkg-deb)
    cp -L "$loader" $(ldd {tools} | awk '$2 == "=>" {print $3}' | sort -u) "$R{dir}/"
    for tool in {tools}; do
        cp "$tool" "$R{dir}/"
        # DT_RPATH (not RUNPATH): the libraries' own libraries are found there too
        patchelf --force-rpath --set-rpath {dir} --set-interpreter "{dir}/${loader##*/}" \
            "$R{dir}/${tool##*/}"
        divert "$tool"
        ln -s "{dir}/${tool##*/}" "$R$tool"
        chroot "$R" "$tool" --version >/dev/null  # it runs there, or the build stops here
    done
fi
""".replace("{dir}", NATIVE_DIR).replace("{tools}", " ".join(NATIVE_TOOLS))

ESSENTIAL = (
    r"""
set -eu
R="$1"
divert() { chroot "$R" dpkg-divert --quiet --local --rename --add "$1"; }
{native}
for tool in {deferred}; do
    divert "$tool"
    printf '#!/bin/sh\nexit 0\n' > "$R$tool"
    chmod 755 "$R$tool"
done
# deb-systemd-helper's calls are recorded, each with what the helper answers for a unit
# that was never installed before (SYSTEMD_HELPER runs them and checks the answers).
cat > "$R{helper}" <<'STUB'
#!/bin/sh
for a; do case $a in --*) ;; *) verb=$a; break;; esac; done
case ${verb:-} in was-enabled) rc=0 ;; debian-installed|is-enabled) rc=1 ;; *) rc=0 ;; esac
echo "$rc ${DPKG_MAINTSCRIPT_PACKAGE:--} $*" >> {calls}
exit $rc
STUB
""".replace("{deferred}", " ".join(DEFERRED))
    .replace("{helper}", SYSTEMD_HELPER_BIN)
    .replace("{calls}", SYSTEMD_HELPER_CALLS)
    .replace("{native}", NATIVE.strip())
)

# The CA certificates' links and bundle in /etc/ssl/certs, made by the image's own
# update-ca-certificates, run by the build machine's shell, sed and openssl instead of
# under emulation (there, a shell loop of ~2,500 processes: two minutes of an arm64
# build). Its links point to /usr/share/ca-certificates: in a mount namespace of its own,
# that path is the image's directory, so the links and the hashes openssl computes
# through them are what the package would have made (tests/vm/test_image_recipe.py
# compares the two). A hook another package adds would run natively too: refused.
CA_CERTIFICATES = r"""
if [ -n "$(ls -A "$R/etc/ca-certificates/update.d" 2>/dev/null)" ]; then
    echo "cbimage: packages added update-ca-certificates hooks; the recipe cannot run them" >&2
    exit 1
fi
unshare --mount sh -euc '
    for d in /usr/share/ca-certificates /usr/local/share/ca-certificates; do
        mkdir -p "$d"  # a build machine without ca-certificates lacks them
        mount --bind "$1$d" "$d"
    done
    sh "$1/usr/sbin/update-ca-certificates" --certsconf "$1/etc/ca-certificates.conf" \
        --etccertsdir "$1/etc/ssl/certs" --hooksdir "$1/etc/ca-certificates/update.d"
' sh "$R"
"""

# The packages' calls of deb-systemd-helper (enable, unmask, update-state: a Perl start
# each, a second apiece under emulation), in their order, by the image's own helper run
# by the build machine's perl with DPKG_ROOT (as in Debian's own chrootless bootstrap).
# The systemctl it runs for a new unit's preset is the image's, in the image. Every
# question a package asked must get the answer the recording gave it, or the build stops.
SYSTEMD_HELPER = r"""
bin=$(mktemp -d)
cat > "$bin/systemctl" <<'SHIM'
#!/bin/sh
for a; do shift; case $a in --root=*) set -- "$@" --root=/ ;; *) set -- "$@" "$a" ;; esac; done
exec chroot "$CBIMAGE_ROOT" systemctl "$@"
SHIM
chmod 755 "$bin/systemctl"
set -f
while read -r want package call; do
    got=0
    CBIMAGE_ROOT="$R" PATH="$bin:$PATH" DPKG_ROOT="$R" DPKG_MAINTSCRIPT_PACKAGE="$package" \
        perl "$R{helper}" $call </dev/null >/dev/null 2>&1 || got=$?
    if [ "$got" != "$want" ]; then
        echo "cbimage: $package: deb-systemd-helper $call: $got, not $want as recorded" >&2
        exit 1
    fi
done < "$R{calls}"
set +f
rm -r "$bin" "$R{calls}"
""".replace("{helper}", SYSTEMD_HELPER_BIN).replace("{calls}", SYSTEMD_HELPER_CALLS)

# Runs on the build machine after the packages are in; "$1" is the new root.
CUSTOMIZE = (
    r"""
set -eu
R="$1"
# The image's own dpkg helpers (in a foreign build) and deferred tools back (see ESSENTIAL),
# the helpers first so that even dpkg's diversions-old is what it was; then what packages
# asked deb-systemd-helper to do done, before this recipe enables and disables units itself.
native=""
[ -d "$R{native_dir}" ] && native="{native_tools}"
for tool in $native {deferred}; do
    rm "$R$tool"
    chroot "$R" dpkg-divert --quiet --local --rename --remove "$tool"
done
rm -rf "$R{native_dir}"
{systemd_helper}
echo commonsbox > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tcommonsbox\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# The web UI's own unprivileged user; no login shell, no password.
chroot "$R" useradd --system --user-group --home-dir /var/lib/{user} --no-create-home \
    --shell /usr/sbin/nologin {user}
# No default passwords: root is locked (the box is managed through the web UI).
chroot "$R" passwd --lock root >/dev/null
# Wired networking by DHCP with systemd-networkd (part of trixie's systemd).
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nType=ether\n\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/20-wired.network"
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Resolve for the box itself only: no LLMNR or mDNS answers to the neighbours.
mkdir -p "$R/etc/systemd/resolved.conf.d"
printf '[Resolve]\nLLMNR=no\nMulticastDNS=no\n' > "$R/etc/systemd/resolved.conf.d/commonsbox.conf"
# Logs kept short: in memory only (never on the card), two days at most, 32 MB.
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nMaxRetentionSec=2day\nRuntimeMaxUse=32M\n' > "$R/etc/systemd/journald.conf.d/commonsbox.conf"
# The relay's daemons start when the agent has configured them, not with their defaults.
chroot "$R" systemctl disable --quiet {relay_units} 2>/dev/null
# Debian's sshd stays off: OpenSSH runs only as the agent's own instances, each with
# its own host key: the file share's SFTP (commonsbox-files.service) and the installer's
# SSH, while an installer's key is set (commonsbox-ssh.service). The package's host keys
# (one set in every image, and made afresh by each build) go; so does systemd's
# generator that would offer sshd on local sockets.
rm -f "$R"/etc/ssh/ssh_host_*
mkdir -p "$R/etc/systemd/system-generators"
ln -sf /dev/null "$R/etc/systemd/system-generators/systemd-ssh-generator"
# mmdebstrap copied the build machine's resolv.conf: the box's is systemd-resolved's.
rm -f "$R/etc/resolv.conf"
ln -s ../run/systemd/resolve/stub-resolv.conf "$R/etc/resolv.conf"
# Each box makes its own machine-id on first boot.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
# What the packages' scripts made differently in each build: ssl-cert's self-signed key and
# certificate (one private key in every box's image; the agent makes each box its own,
# appliance/mail) and Postfix's Berkeley DB of /etc/aliases (the agent's main.cf has no
# alias maps).
rm -f "$R/etc/ssl/private/ssl-cert-snakeoil.key" "$R/etc/ssl/certs/ssl-cert-snakeoil.pem" \
    "$R/etc/aliases.db"
find "$R/etc/ssl/certs" -lname ssl-cert-snakeoil.pem -delete
{ca_certificates}
# Every Python package's modules byte-compiled at once (what each postinst would have
# done; hash-based .pyc, as SOURCE_DATE_EPOCH is set), beside the initramfs (below): two
# single-threaded emulated jobs, on two cores.
chroot "$R" py3compile /usr/lib/python3/dist-packages /usr/share/python3 &
py3compile=$!
# The one initramfs: the modules that find and mount the root on every board
# (INITRAMFS_MODULES), zstd at a level that is quick to make and to unpack.
printf 'MODULES=list\nCOMPRESS=zstd\nCOMPRESSLEVEL=3\n' > "$R/etc/initramfs-tools/conf.d/commonsbox.conf"
cat > "$R/etc/initramfs-tools/hooks/commonsbox" <<'HOOK'
#!/bin/sh
# Commonsbox: the modules every board needs to mount its root (cbimage.recipe).
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules {modules}
HOOK
chmod 755 "$R/etc/initramfs-tools/hooks/commonsbox"
chroot "$R" update-initramfs -c -k all
wait "$py3compile"
""".replace("{user}", WEBUI_USER)
    .replace("{relay_units}", " ".join(RELAY_UNITS))
    .replace("{deferred}", " ".join(DEFERRED))
    .replace("{modules}", " ".join(INITRAMFS_MODULES))
    .replace("{ca_certificates}", CA_CERTIFICATES.strip())
    .replace("{systemd_helper}", SYSTEMD_HELPER.strip())
    .replace("{native_dir}", NATIVE_DIR)
    .replace("{native_tools}", " ".join(NATIVE_TOOLS))
)


# -- The box's hardware: its service, PID 1's watchdog, the I2C bus, the clock -----------
# (hardware/README.md) The hardware service's unit and the watchdog drop-in come from
# files/ (their contents are part of the root's cache key: hardware_inputs); i2c-dev
# gives the display, clock and sensor their /dev/i2c-N. The network's time is chrony's
# (appliance/clock declares the package), without which the clock is never synchronised
# nor stored in the real-time clock; its unit's drop-in starts it with -s, the time it
# saved as a floor, and /usr/lib/clock-epoch (its time: the epoch) is PID 1's floor, so a
# box with neither a battery clock nor a saved time starts no earlier than its image.
# The service runs as its own user, HARDWARE_USER: udev gives its group the I2C buses and
# GPIO chips; it and the web UI's user are in API_GROUP, the group that may open the
# agent's socket (the agent lets it call only status and the factory reset).
HARDWARE_FILES = {  # where in the root -> which file of image/cbimage/files
    "/usr/lib/systemd/system/commonsbox-hardware.service": "commonsbox-hardware.service",
    "/usr/lib/systemd/system.conf.d/commonsbox-watchdog.conf": "commonsbox-watchdog.conf",
    "/usr/lib/udev/rules.d/60-commonsbox-hardware.rules": "60-commonsbox-hardware.rules",
    "/usr/lib/systemd/system/chrony.service.d/commonsbox.conf": "chrony-commonsbox.conf",
}
HARDWARE_USER = "commonsbox-hw"
API_GROUP = "commonsbox-api"
HARDWARE_MODULES = ("i2c-dev",)
HARDWARE_UNITS = ("commonsbox-hardware.service",)


def hardware_customize() -> str:
    """The hardware's customize hook: its files in place, its unit enabled."""
    files = Path(__file__).resolve().parent / "files"
    return "\n".join(
        [
            "set -eu",
            'R="$1"',
            *(
                f'install -D -m 0644 "{files / name}" "$R{where}"'
                for where, name in HARDWARE_FILES.items()
            ),
            f'chroot "$R" groupadd --system {API_GROUP}',
            f'chroot "$R" useradd --system --user-group --groups {API_GROUP} '
            f"--home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin {HARDWARE_USER}",
            f'chroot "$R" usermod --append --groups {API_GROUP} {WEBUI_USER}',
            'mkdir -p "$R/usr/lib/modules-load.d"',
            f"printf '%s\\n' {' '.join(HARDWARE_MODULES)} > \"$R/usr/lib/modules-load.d/commonsbox.conf\"",
            f'chroot "$R" systemctl enable --quiet {" ".join(HARDWARE_UNITS)}',
            ': > "$R/usr/lib/clock-epoch"',  # its time is the epoch (every time is at most that)
            "",
        ]
    )


def hardware_inputs() -> bytes:
    files = Path(__file__).resolve().parent / "files"
    return b"".join(
        name.encode() + b"\0" + (files / name).read_bytes() for name in HARDWARE_FILES.values()
    )


# -- end of the hardware's part ------------------------------------------------------------


def packages(architecture: str) -> list[str]:
    return sorted(
        {
            *BASE_PACKAGES,
            *PYTHON_PACKAGES,
            *CAPABILITY_PACKAGES,
            KERNEL[architecture],
            *ARCH_PACKAGES[architecture],
        }
    )


def epoch() -> int:
    """SOURCE_DATE_EPOCH, the time in every timestamp of the root file system and the image:
    $SOURCE_DATE_EPOCH if set, else the time of the last commit that changed this recipe.
    Not HEAD's: the epoch is baked into the cached root file system, which is rebuilt only
    when the recipe changes."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    here = Path(__file__).resolve()
    out = subprocess.run(
        ["git", "log", "-1", "--format=%ct", "--", here],
        cwd=here.parent,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if not out.strip():
        raise SystemExit("cbimage: the recipe has no git history; set SOURCE_DATE_EPOCH")
    return int(out)


def key(profile: Profile, epoch: int) -> str:
    """What the root file system depends on: the suite, the architecture, this recipe's
    source, its packages (some declared by the capabilities) and the epoch (not the board:
    boards of one architecture share the root)."""
    h = hashlib.sha256()
    h.update(f"epoch {epoch}\nsuite {profile.suite}\narch {profile.architecture}\n".encode())
    h.update(Path(__file__).read_bytes())
    h.update(" ".join(packages(profile.architecture)).encode())
    h.update(" ".join(RELAY_UNITS).encode())
    h.update(hardware_inputs())
    h.update(MIRROR.encode())
    return h.hexdigest()


# -- the lock: every Debian package of a build and its version ------------------------
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*")
_VERSION = re.compile(r"[A-Za-z0-9.+~:-]+")
LOCK_HEADER = "# Commonsbox package lock: one 'package version' a line (cbimage writes it)\n"


def lock_text(packages: dict[str, str]) -> str:
    return LOCK_HEADER + "".join(f"{n} {v}\n" for n, v in sorted(packages.items()))


def read_lock(path: Path) -> dict[str, str]:
    """A lock file, every line checked before it is compared with what dpkg installed."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SystemExit(f"cbimage: cannot read the lock {path}: {err}") from None
    lock = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not _NAME.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[1]):
            raise SystemExit(f"{path}:{number}: not 'package version': {line!r}")
        lock[parts[0]] = parts[1]
    if not lock:
        raise SystemExit(f"{path}: no packages in the lock")
    return lock


def dpkg_status(text: str) -> dict[str, str]:
    """Installed packages and versions, from dpkg's status file."""
    packages, fields = {}, {}
    for line in text.splitlines() + [""]:
        if not line:
            if fields.get("Status", "").endswith(" installed"):
                packages[fields["Package"]] = fields["Version"]
            fields = {}
        elif not line[0].isspace() and ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return dict(sorted(packages.items()))


def rootfs_packages(tarball: Path) -> dict[str, str]:
    status = subprocess.run(
        ["tar", "-xOf", tarball, "./var/lib/dpkg/status"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dpkg_status(status)


def check_lock(got: dict[str, str], lock: dict[str, str]) -> None:
    """A build held to a lock must have installed exactly the locked versions. The
    registry serves one version of each package (no snapshot archive here), so a lock
    cannot choose old versions: it can only refuse a build that differs."""
    if got != lock:
        wrong = sorted(
            f"{n}: locked {lock.get(n, '-')}, got {got.get(n, '-')}"
            for n in lock.keys() | got.keys()
            if lock.get(n) != got.get(n)
        )
        raise SystemExit(
            "cbimage: the root file system does not match the lock (the "
            "registry now serves other versions):\n  " + "\n  ".join(wrong)
        )


def build(profile: Profile, out: Path, epoch: int, log) -> float:
    """mmdebstrap the root file system into the tarball OUT; return the seconds it took."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # Per process: two builds of the same root at once must not share one part file.
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.part.tar")  # mmdebstrap: format by suffix
    tmp.unlink(missing_ok=True)
    cmd = [
        "mmdebstrap",
        "--variant=apt",
        f"--architectures={profile.architecture}",
        f"--components={COMPONENTS[profile.architecture]}",
        f"--include={','.join(packages(profile.architecture))}",
        *(f"--dpkgopt={o}" for o in DPKG_EXCLUDES),
        f"--essential-hook={ESSENTIAL}",
        f"--customize-hook={CUSTOMIZE}",
        f"--customize-hook={hardware_customize()}",
        profile.suite,
        str(tmp),
        MIRROR,
    ]
    log(
        f"rootfs: mmdebstrap {profile.suite} {profile.architecture}, "
        f"{len(packages(profile.architecture))} packages -> {out.name}"
    )
    t0 = time.monotonic()
    with open(out.with_suffix(".log"), "w") as f:
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))  # honoured by all it runs
        if profile.architecture in QEMU_CPU:
            env["QEMU_CPU"] = QEMU_CPU[profile.architecture]  # read by qemu-user's binfmt handler
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode:
        tmp.unlink(missing_ok=True)
        raise SystemExit(f"mmdebstrap failed ({r.returncode}); see {out.with_suffix('.log')}")
    tmp.rename(out)
    return time.monotonic() - t0
