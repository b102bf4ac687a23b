"""Two builds from the same inputs are the same bytes.

The VM tier's image is the first build; this builds it again in an empty cache (so
mmdebstrap runs again), held to the first build's package lock, and compares."""

import hashlib
import time

import pytest

from .conftest import BOARD

pytestmark = pytest.mark.vm


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def test_a_second_build_held_to_the_first_ones_lock_is_byte_identical(image_dir, tmp_path):
    from cbimage.build import build
    t0 = time.monotonic()
    again = build(BOARD, tmp_path / "out", tmp_path / "cache", test=True,
                  lock=image_dir / "packages.lock", log=lambda m: print(m, flush=True))
    print(f"second build from an empty cache: {time.monotonic() - t0:.0f} s")
    assert again["this_run"].get("rootfs_s"), "the second build must run mmdebstrap itself"
    for name in ("disk.img", "vmlinuz", "initrd.img", "packages.lock"):
        assert sha256(tmp_path / "out" / name) == sha256(image_dir / name), name
