"""The VM tier: the qemu-amd64 test image built (or taken from the build cache), booted
under QEMU (TCG) once per session, and asked things from outside.

Environment: CBIMAGE_CACHE (the build cache, default ~/.cache/cbimage), CBVM_IMAGE_DIR
(where the built image is linked, default /var/tmp/commonsbox/test-qemu-amd64).
"""

import os
import shutil
import time
from pathlib import Path

import pytest

BOARD = "qemu-amd64"
CARD_MIB = 4096  # the guest's disk is the image on a 4 GiB "card"


def _missing() -> str | None:
    for tool in ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "sfdisk", "mkfs.ext4",
                 "mkfs.vfat", "mcopy"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap, chroot)"
    return None


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(f"VM TIER NOT RUN: {why}")
    from cbimage.build import build, default_cache
    out = Path(os.environ.get("CBVM_IMAGE_DIR", f"/var/tmp/commonsbox/test-{BOARD}"))
    t0 = time.monotonic()
    info = build(BOARD, out, default_cache(), test=True, log=lambda m: print(m, flush=True))
    print(f"image ready in {time.monotonic() - t0:.1f} s: {info['this_run'] or 'cached'}")
    return out


@pytest.fixture(scope="session")
def vm(image_dir, tmp_path_factory):
    from cbvm import VM, VMError
    for attempt in (1, 2):
        machine = VM(image_dir, tmp_path_factory.mktemp("vm"), card_mib=CARD_MIB)
        machine.start()
        try:
            machine.status = machine.wait_ready()
            break
        except VMError:
            machine.stop()
            if attempt == 2 or not machine.panicked():
                raise
            # Seen once in many boots: the guest kernel panicked early under TCG (an int3
            # while patching its own code across two emulated CPUs). Said, then booted again.
            print("VM TIER: the guest kernel panicked while booting under TCG; booting again")
            machine.cleanup()
    try:
        print(f"agent ready {machine.ready_after:.1f} s after QEMU started")
        machine.wait_active("commonsbox-webui")  # the web UI says READY=1 once it listens
        yield machine
    finally:
        machine.stop()
        machine.cleanup()


def pytest_collection_modifyitems(config, items):
    """Only with --vm (as `make test` runs) or `-m vm`: it builds and boots an image."""
    if config.getoption("--vm") or "vm" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="VM TIER NOT RUN: run `make test`, or pytest --vm")
    for item in items:
        if item.get_closest_marker("vm"):
            item.add_marker(skip)
