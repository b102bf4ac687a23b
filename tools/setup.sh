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
    chromium                                  # the browser tier (Playwright drives it)
    fonts-noto-core                           # so Devanagari (Hindi) renders in it
    mmdebstrap fdisk dosfstools mtools        # the image: root fs, partitions, boot fs
    arch-test fakechroot fakeroot gpg uidmap  # what mmdebstrap recommends (and was tested with)
    libdistro-info-perl libdpkg-perl
    qemu-system-x86 qemu-utils                # the VM tier boots it (qemu-img for overlays)
    qemu-user-static binfmt-support           # arm64 root file systems built under emulation
    qemu-system-arm                           # the qemu-arm64 board (make test-slow)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $EUID -ne 0 ]]; then
        echo "setup: missing Debian packages (${missing[*]}); run as root" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Without an init system nothing registers qemu-user's binfmt handlers: do it here.
# Only the arm64 boards (make test-slow) need it; they say so if it is missing.
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 && $EUID -eq 0 ]]; then
    { mountpoint -q /proc/sys/fs/binfmt_misc \
          || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; } \
        && update-binfmts --enable qemu-aarch64 \
        || echo "setup: could not register arm64 emulation (binfmt_misc); no arm64 images here" >&2
fi

# Debian's own Python, not whatever else is first on PATH.
if [[ ! -x .venv/bin/python ]]; then
    /usr/bin/python3 -m venv .venv
fi
if [[ ! -f .venv/.installed || pyproject.toml -nt .venv/.installed ]]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch .venv/.installed
fi
tools/i18n.sh compile   # the web UI's translations (.mo files are not in git)
