"""Two builds from the same inputs are the same bytes.

The VM tier's image is the first build; this builds it again in an empty cache (so
mmdebstrap runs again), held to the first build's package lock, and compares."""

import time

import pytest

from appliance.imagesign import file_sha256

from .conftest import BOARD

pytestmark = pytest.mark.vm


def test_a_second_build_held_to_the_first_ones_lock_is_byte_identical(image_dir, tmp_path):
    from cbimage.build import build
    t0 = time.monotonic()
    again = build(BOARD, tmp_path / "out", tmp_path / "cache", test=True,
                  lock=image_dir / "packages.lock", log=lambda m: print(m, flush=True))
    print(f"second build from an empty cache: {time.monotonic() - t0:.0f} s")
    assert again["this_run"].get("rootfs_s"), "the second build must run mmdebstrap itself"
    for name in ("disk.img", "vmlinuz", "initrd.img", "packages.lock"):
        assert file_sha256(tmp_path / "out" / name) == file_sha256(image_dir / name), name
