#!/bin/bash
# Install what the demo and the tests need, on a fresh Debian 12 machine, as root:
# Debian packages (only those missing, so a second run is quick) and a venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    python3 python3-venv python3-dev          # the agent's Python and its venv
    wireguard-tools wireguard-go              # wg, wg-quick; userspace WireGuard
    nftables iproute2 iputils-ping procps     # firewall, namespaces, ping, pkill
    util-linux curl                           # setsid, setpriv; curl in tests
    zbar-tools wrk                            # zbarimg reads QR codes back; wrk loads the web UI
    cryptsetup-bin                            # LUKS2 headers on files (the storage tests)
    chromium                                  # the browser tier (Playwright drives it)
    fonts-noto-core                           # so Devanagari (Hindi) renders in it
    mmdebstrap fdisk dosfstools mtools        # the image: root fs, partitions, boot fs
    ca-certificates openssl                   # the image's CA links, made natively
    patchelf                                  # the build machine's dpkg-deb, run in a foreign root
    arch-test fakechroot fakeroot gpg uidmap  # what mmdebstrap recommends (and was tested with)
    libdistro-info-perl libdpkg-perl
    qemu-system-x86 qemu-utils                # the VM tier boots it (qemu-img for overlays)
    qemu-system-arm                           # the qemu-arm64 board (make test-slow)
    ovmf qemu-efi-aarch64                     # UEFI firmware: the QEMU boards boot GRUB
    rauc squashfs-tools                       # update bundles (cbimage bundle)
    borgbackup                                # backups (appliance/backup; the box has it too)
)

# arm64 root file systems are built under qemu-user, and its version sets the pace:
# Debian 12's QEMU 7.2 took ~30 min for one, the QEMU 10 of bookworm-backports ~9 min
# (Debian 13 has 10 itself). Only these three packages come from backports.
QEMU_USER=(qemu-user-static qemu-user qemu-user-binfmt)
QEMU_USER_MIN=1:10
BACKPORTS=bookworm-backports

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
qemu_user=()
for pkg in "${QEMU_USER[@]}"; do
    st=$(dpkg-query -W -f='${Status}|${Version}' "$pkg" 2>/dev/null || true)
    if [[ $st != "install ok installed|"* ]] || ! dpkg --compare-versions "${st#*|}" ge "$QEMU_USER_MIN"; then
        qemu_user=("${QEMU_USER[@]}")
    fi
done
if ((${#missing[@]} + ${#qemu_user[@]})); then
    if [[ $EUID -ne 0 ]]; then
        echo "setup: missing Debian packages (${missing[*]} ${qemu_user[*]}); run as root" >&2
        exit 1
    fi
    if ((${#qemu_user[@]})) && [[ $(. /etc/os-release && echo "${VERSION_CODENAME:-}") == bookworm ]]; then
        qemu_user=("${QEMU_USER[@]/%//$BACKPORTS}")
        if ! grep -qsE "^[^#]*\b$BACKPORTS\b" /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                /etc/apt/sources.list.d/*.sources; then
            echo "setup: adding Debian's $BACKPORTS to apt's sources (for QEMU 10)"
            printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$BACKPORTS" > "/etc/apt/sources.list.d/$BACKPORTS.sources"
        fi
    fi
    echo "setup: installing ${missing[*]} ${qemu_user[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" "${qemu_user[@]}"
fi

# Without an init system nothing registers qemu-user's binfmt handler: do it here, from
# the line qemu-user-binfmt gives systemd-binfmt. A handler registered before an upgrade
# holds the old binary open (flag F): replaced. Only the arm64 boards (make test-slow)
# need it, and they say so if it is missing.
BINFMT=/proc/sys/fs/binfmt_misc
if [[ $EUID -eq 0 ]] && { ((${#qemu_user[@]})) || [[ ! -e $BINFMT/qemu-aarch64 ]]; }; then
    if ! { { mountpoint -q $BINFMT || mount -t binfmt_misc binfmt_misc $BINFMT; } \
           && { [[ ! -e $BINFMT/qemu-aarch64 ]] || echo -1 > $BINFMT/qemu-aarch64; } \
           && grep -m1 '^:qemu-aarch64:' /usr/lib/binfmt.d/qemu-aarch64.conf > $BINFMT/register; } 2>/dev/null
    then
        echo "setup: could not register arm64 emulation (binfmt_misc); no arm64 images here" >&2
    fi
fi

# Debian's own Python, not whatever else is first on PATH.
if [[ ! -x .venv/bin/python ]]; then
    /usr/bin/python3 -m venv .venv
fi
if [[ ! -f .venv/.installed || pyproject.toml -nt .venv/.installed ]]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test,lint]'
    touch .venv/.installed
fi
tools/i18n.sh compile   # the web UI's translations (.mo files are not in git)
