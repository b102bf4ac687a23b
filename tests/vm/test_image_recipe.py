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
    return {f.name: (f"-> {os.readlink(f)}" if f.is_symlink()
                     else f"{oct(f.stat().st_mode)} {f.read_bytes().hex()}")
            for f in certs.iterdir()}


def test_the_ca_links_and_bundle_are_what_the_package_s_own_script_makes(image_dir, tmp_path):
    from cbimage.build import default_cache, root_tarball
    tarball, _ = root_tarball(BOARD, default_cache())
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xf", tarball, "-C", root, "--exclude=./dev/*"], check=True)
    shipped = certificates(root)
    assert len([n for n in shipped if n.endswith(".pem")]) > 100, "no CA certificates linked"
    assert "ca-certificates.crt" in shipped
    # The package's tool, in the image (amd64: native here), from nothing.
    for f in (root / "etc/ssl/certs").iterdir():
        f.unlink()
    subprocess.run(["chroot", root, "update-ca-certificates"], check=True,
                   capture_output=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert certificates(root) == shipped
