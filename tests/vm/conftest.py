"""The VM tier: the qemu-amd64 test image built (or taken from the build cache), booted
under QEMU (TCG) once per session, and asked things from outside.

Environment: CBIMAGE_CACHE (the build cache, default ~/.cache/cbimage), CBVM_IMAGE_DIR
(where the built image is linked, default /var/tmp/commonsbox/test-qemu-amd64).
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

BOARD = "qemu-amd64"
CARD_MIB = 4096  # the guest's disk is the image on a 4 GiB "card"
# Written when the guest kernel panicked and only VM tests failed: `make test` then runs
# the files of the failed tests once more, on a fresh guest (each file stands alone; the
# Makefile reads the note's last line). TCG with two emulated CPUs has, rarely, panicked
# a guest kernel that runs fine elsewhere (an int3 while patching its own code; a slab
# freelist torn in kmem_cache_alloc); a product defect fails the second run too.
PANIC_NOTE = Path(__file__).parents[1] / "artifacts" / "guest-panicked"
_booted = []  # the session's VM, once there is one
_panicked = []  # what the panicking kernel said, and the VM tests that failed
PANIC_LINES = r"BUG|Oops|general protection|RIP: 0010|Comm:|Kernel panic"


def _missing() -> str | None:
    for tool in (
        "qemu-system-x86_64",
        "qemu-img",
        "mmdebstrap",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap, chroot)"
    return None


@pytest.fixture(scope="session")
def update_key() -> tuple[Path, Path]:
    """The test images' update signing key and certificate (made once, kept in the build
    cache so that the images built with it stay cached)."""
    from cbimage.build import default_cache
    from cbimage.bundle import keygen

    where = default_cache() / "test-update-key"
    key, cert = where / "update.key", where / "update.crt"
    if not cert.is_file():
        where.mkdir(parents=True, exist_ok=True)
        key.unlink(missing_ok=True)
        keygen(key, cert, "Commonsbox TEST updates")
    return key, cert


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory, update_key):
    why = _missing()
    if why:
        pytest.skip(f"VM TIER NOT RUN: {why}")
    from cbimage.build import build, default_cache

    out = Path(os.environ.get("CBVM_IMAGE_DIR", f"/var/tmp/commonsbox/test-{BOARD}"))
    t0 = time.monotonic()
    info = build(
        BOARD,
        out,
        default_cache(),
        test=True,
        log=lambda m: print(m, flush=True),
        update_cert=update_key[1],
    )
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
    _booted.append(machine)
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


def pytest_runtest_logreport(report):
    if report.failed and _booted and _booted[0].panicked():
        if not _panicked:  # what the kernel said, before a restart empties the console
            console = _booted[0].console_log.read_text(errors="replace").splitlines()
            _panicked.extend(line for line in console if re.search(PANIC_LINES, line))
        _panicked.append(report.nodeid)


def pytest_sessionfinish(session):
    if not _panicked:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    failed = [r.nodeid for key in ("failed", "error") for r in tr.stats.get(key, ())]
    tr.ensure_newline()
    tr.section("the guest kernel panicked", sep="!", bold=True, red=True)
    for line in _panicked[:30]:
        tr.line(line, red=True)
    if all(nodeid.startswith("tests/vm/") for nodeid in failed):
        files = sorted({nodeid.split("::")[0] for nodeid in failed})
        PANIC_NOTE.parent.mkdir(exist_ok=True)
        PANIC_NOTE.write_text(
            "VM TIER: the guest kernel panicked under TCG (as printed above) and failed "
            f"{len(failed)} VM tests, nothing else; their files run once more, on a fresh "
            "guest, and must pass whole:\n" + " ".join(files) + "\n"
        )


# -- updates: the versions after the test image, as signed bundles (tests/vm/test_update*.py)


def bump(version: str, by: int) -> str:
    head, serial = version.rsplit(".", 1)
    return f"{head}.{int(serial) + by}"


# A version whose agent cannot start: its module replaced by one that exits.
NO_AGENT = (
    "/usr/lib/commonsbox/python/appliance/agent.py",
    'raise SystemExit("this version of the agent is broken on purpose")\n',
)


@pytest.fixture(scope="session")
def next_image(image_dir, update_key, tmp_path_factory) -> Path:
    return build_next(BOARD, image_dir, update_key, tmp_path_factory.mktemp("next"))


@pytest.fixture(scope="session")
def bundles(image_dir, next_image, update_key, tmp_path_factory):
    return sign_next(image_dir, next_image, update_key, tmp_path_factory.mktemp("served"))


def build_next(board: str, image_dir: Path, update_key, out: Path) -> Path:
    """N+1 into OUT: BOARD's test image recipe (IMAGE_DIR is N) built again as the next
    version, as a release is."""
    from cbimage.build import build, default_cache

    n = json.loads((image_dir / "image.json").read_text())
    t0 = time.monotonic()
    build(
        board,
        out,
        default_cache(),
        test=True,
        log=lambda m: print(m, flush=True),
        version=bump(n["version"], 1),
        update_cert=update_key[1],
    )
    print(f"N+1 image in {time.monotonic() - t0:.1f} s")
    return out


def sign_next(image_dir: Path, next_image: Path, update_key, folder: Path):
    """N+1 and N+2 (N+1 with its agent broken) as signed bundles in FOLDER (next.raucb,
    broken.raucb); returns (FOLDER, N+1's version, N+2's)."""
    from cbimage.bundle import bundle

    n = json.loads((image_dir / "image.json").read_text())
    t0 = time.monotonic()
    info = bundle(next_image, folder / "next.raucb", *update_key)
    print(f"bundle made in {time.monotonic() - t0:.1f} s")
    broken = altered(
        next_image, folder / "broken.raucb", bump(n["version"], 2), update_key, *NO_AGENT
    )
    return folder, info["version"], broken


@pytest.fixture(scope="session")
def panics(image_dir, next_image, bundles, update_key) -> str:
    """N+3, N+1 whose init exits, so its kernel panics, beside the other bundles. The
    kernel runs systemd as init (/sbin/init links to it): an init that exits makes it
    panic ("Attempted to kill init!"), and panic=10 restarts the box."""
    n = json.loads((image_dir / "image.json").read_text())
    return altered(
        next_image,
        bundles[0] / "panics.raucb",
        bump(n["version"], 3),
        update_key,
        "/usr/lib/systemd/systemd",
        "#!/bin/sh\nexit 1\n",
    )


@pytest.fixture(scope="session")
def hangs(image_dir, next_image, bundles, update_key) -> str:
    """N+4, N+1 whose agent makes PID 1 hang: it sends systemd a SIGSEGV, on which systemd
    freezes ("Freezing execution"), so the watchdog it armed is no longer fed and resets
    the box (15 s)."""
    n = json.loads((image_dir / "image.json").read_text())
    return altered(
        next_image,
        bundles[0] / "hangs.raucb",
        bump(n["version"], 4),
        update_key,
        NO_AGENT[0],
        "import os, signal\n\nos.kill(1, signal.SIGSEGV)  # hangs the box on purpose\n",
    )


def altered(image: Path, out: Path, version: str, keys, path: str, text: str) -> str:
    """IMAGE's root with the file PATH replaced by TEXT, signed as VERSION into OUT."""
    from cbimage.bundle import make, root_partition

    offset, size = root_partition(image / "disk.img")
    root = out.with_suffix(".ext4")
    subprocess.run(
        ["dd", f"if={image / 'disk.img'}", f"of={root}", "bs=1M", "status=none",
         f"skip={offset}", f"count={size}", "iflag=skip_bytes,count_bytes", "conv=sparse"],
        check=True,
    )  # fmt: skip
    release, replacement = out.with_suffix(".release.json"), out.with_suffix(".replacement")
    release.write_text(json.dumps({**json.loads(_debugfs_cat(root)), "version": version}))
    replacement.write_text(text)
    replacement.chmod(0o755)  # debugfs's write keeps the mode
    lib = "/usr/lib/commonsbox"
    _debugfs(
        root,
        f"rm {path}",
        f"write {replacement} {path}",
        f"rm {lib}/release.json",
        f"write {release} {lib}/release.json",
    )
    info = json.loads((image / "image.json").read_text())
    make(root, {**info, "version": version}, out, *keys)
    for made in (root, release, replacement):
        made.unlink()
    return version


def _debugfs(image: Path, *commands: str) -> None:
    done = subprocess.run(
        ["debugfs", "-w", "-f", "-", image],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    assert not done.stderr.splitlines()[1:], done.stderr


def _debugfs_cat(image: Path) -> str:
    return subprocess.run(
        ["debugfs", "-R", "cat /usr/lib/commonsbox/release.json", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture(scope="session")
def served(bundles):
    with serving(bundles[0]) as url:
        yield url


@contextmanager
def serving(folder: Path):
    """FOLDER over HTTP on this machine; yields its address as the guest reaches it
    (10.0.2.2, QEMU's user network)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://10.0.2.2:{server.server_address[1]}"
    finally:
        server.shutdown()
