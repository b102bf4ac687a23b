"""What the image recipe does on the build machine instead of under emulation is what the
packages' own tools, run in the image, make."""

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import BOARD

pytestmark = pytest.mark.vm


def certificates(root: Path) -> dict[str, str]:
    """/etc/ssl/certs: each link and where it points, each file's bytes and mode."""
    certs = root / "etc/ssl/certs"
    return {
        f.name: (
            f"-> {os.readlink(f)}"
            if f.is_symlink()
            else f"{oct(f.stat().st_mode)} {f.read_bytes().hex()}"
        )
        for f in certs.iterdir()
    }


@pytest.fixture(scope="module")
def root(image_dir, tmp_path_factory) -> Path:
    """The image's root file system as the recipe made it (before the project is added)."""
    from cbimage.build import default_cache, root_tarball

    tarball, _ = root_tarball(BOARD, default_cache())
    root = tmp_path_factory.mktemp("rootfs")
    subprocess.run(["tar", "-xf", tarball, "-C", root, "--exclude=./dev/*"], check=True)
    return root


def test_what_the_packages_asked_deb_systemd_helper_to_enable_is_enabled(root):
    """The units whose links the packages' own helper makes on a fresh install (the list
    an amd64 root built with the helper run in place had), and only those."""
    from cbimage.recipe import SYSTEMD_HELPER_BIN, SYSTEMD_HELPER_CALLS

    assert (root / SYSTEMD_HELPER_BIN.lstrip("/")).read_text().startswith("#!/usr/bin/perl")
    assert not (root / SYSTEMD_HELPER_CALLS.lstrip("/")).exists()
    state = root / "var/lib/systemd/deb-systemd-helper-enabled"
    recorded = {
        f.name.removesuffix(".dsh-also"): f.read_text().split() for f in state.glob("*.dsh-also")
    }
    linked = {
        unit
        for unit, links in recorded.items()
        if all((root / link.lstrip("/")).is_symlink() for link in links)
    }
    assert linked == {
        "apt-daily-upgrade.timer",
        "apt-daily.timer",
        "dpkg-db-backup.timer",
        "e2scrub_all.timer",
        "e2scrub_reap.service",
        "fstrim.timer",
        "grub-common.service",  # GRUB's boot record for grub-pc; a no-op on the ESP's GRUB
        "sshd-keygen.service",
        "systemd-resolved.service",
    }
    # Disabled by their packages or by the recipe (the agent starts the relay), recorded.
    assert {
        "postfix.service",
        "dovecot.service",
        "prosody.service",
        "opendkim.service",
        "ssh.service",
        "nftables.service",
        "chrony.service",  # the agent starts it once it has written its configuration
    } <= recorded.keys() - linked


def test_the_ca_links_and_bundle_are_what_the_package_s_own_script_makes(root):
    shipped = certificates(root)
    assert len([n for n in shipped if n.endswith(".pem")]) > 100, "no CA certificates linked"
    assert "ca-certificates.crt" in shipped
    # The package's tool, in the image (amd64: native here), from nothing.
    for f in (root / "etc/ssl/certs").iterdir():
        f.unlink()
    subprocess.run(
        ["chroot", root, "update-ca-certificates"],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert certificates(root) == shipped


def test_the_clock_never_starts_earlier_than_the_image_was_built(root):
    """systemd (PID 1) moves a clock that is behind /usr/lib/clock-epoch's time forward to
    it: a box with no battery clock and no saved time starts no earlier than its image."""
    from cbimage.recipe import epoch

    assert int((root / "usr/lib/clock-epoch").stat().st_mtime) == epoch()
