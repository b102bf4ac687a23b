"""Two builds from the same inputs are the same bytes.

The VM tier's image is the first build; this builds it again in an empty cache (so
mmdebstrap runs again), held to the first build's package lock, and compares. The second
build runs as another checkout would: another interpreter path (pip writes it into the
scripts it makes), another working directory, time zone and umask."""

import json
import os
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.imagesign import file_sha256

from .conftest import BOARD

pytestmark = pytest.mark.vm
REPO = Path(__file__).resolve().parents[2]


def test_a_second_build_held_to_the_first_ones_lock_is_byte_identical(
    image_dir, update_key, tmp_path
):
    python = os.path.realpath(sys.executable)  # the venv's base interpreter, not .venv/bin
    assert python != sys.executable
    env = dict(
        os.environ,
        TZ="Pacific/Chatham",
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "image"), *site.getsitepackages()]),
    )
    t0 = time.monotonic()
    subprocess.run(
        [
            "sh",
            "-c",
            'umask 027 && exec "$@"',
            "sh",
            python,
            "-m",
            "cbimage",
            "build",
            "--board",
            BOARD,
            "--test",
            "--out",
            tmp_path / "out",
            "--cache",
            tmp_path / "cache",
            "--lock",
            image_dir / "packages.lock",
            "--update-cert",  # as the first build: the same keyring in the image
            update_key[1],
        ],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    print(f"second build from an empty cache: {time.monotonic() - t0:.0f} s")
    assert json.loads((tmp_path / "out/image.json").read_text())["timings"].get("rootfs_s"), (
        "the second build must run mmdebstrap itself"
    )
    for name in ("disk.img", "vmlinuz", "initrd.img", "packages.lock"):
        assert file_sha256(tmp_path / "out" / name) == file_sha256(image_dir / name), name
