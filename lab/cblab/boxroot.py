"""The box's own Debian 13 root file system, running in namespaces on this machine.

The relay's daemons must be the versions the box ships (Postfix 3.10, Dovecot 2.4,
Prosody 13), not the build machine's. So the demo and the tests run them from the image
recipe's own amd64 root (cbimage.build.root_tarball): unpacked once, each box an overlay
over it, in the box's network namespace plus its own mount, PID, UTS and IPC namespaces.
Killing the box's PID 1 ends everything in it, and its mounts vanish with it.

The agent stays outside (it takes a root directory, as in every test): it reaches the
box's files through /proc/PID/root and runs the box's commands with `nsenter`, which is
exactly what ``System`` abstracts (appliance/system.py).
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from appliance.system import System

from .netns import Netns

REPO = Path(__file__).resolve().parents[2]
TREES = Path(os.environ.get("CB_BOXROOT_DIR", "/var/tmp/commonsbox/boxroot"))

# Inside the new namespaces, before the box's own PID 1 starts: the overlay, /proc, /sys,
# a minimal /dev, and tmpfs on /run and /tmp. Arguments: lower upper work merged hostname.
_SETUP = r"""
set -eu
mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
cd "$4"
mount -t proc proc proc
mount -t sysfs -o ro sysfs sys
mount -t tmpfs -o mode=755,size=16m tmpfs dev
for n in null zero full random urandom tty; do touch "dev/$n"; mount --bind "/dev/$n" "dev/$n"; done
mkdir dev/pts dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts dev/pts
ln -s pts/ptmx dev/ptmx
mount -t tmpfs tmpfs dev/shm
mount -t tmpfs -o mode=755 tmpfs run
mount -t tmpfs -o mode=1777 tmpfs tmp
hostname "$5"
exec chroot . /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /usr/bin/python3 -c "$6"
"""

# The box's PID 1: says it is up, then reaps orphans (daemons that double-fork) until
# told to stop. Its death ends every process in the box.
_INIT = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("up", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
"""


_IN_USE: list[int] = []  # this process's shared locks on the trees it runs boxes from


def tree(log=print) -> Path:
    """The recipe's amd64 root, unpacked once per recipe (the key names the directory).
    Earlier recipes' trees go, but not one another process still runs boxes from (a
    shared lock on TREE.lock, held while this process lives): runs of two recipes at
    once (two checkouts) no longer pull each other's root away."""
    sys.path.insert(0, str(REPO / "image"))
    from cbimage.build import default_cache, root_tarball

    tarball, key = root_tarball("qemu-amd64", default_cache(), log)
    where = TREES / key[:16]
    TREES.mkdir(parents=True, exist_ok=True)
    with open(TREES / ".unpacking", "w") as one_at_a_time:
        fcntl.flock(one_at_a_time, fcntl.LOCK_EX)
        if not (where / ".complete").exists():
            for old in TREES.iterdir():  # earlier recipes' trees
                if old.is_dir() and old != where and _unused(old):
                    shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(where, ignore_errors=True)  # a half-unpacked one
            where.mkdir()
            subprocess.run(
                [
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "-xpf",
                    tarball,
                    "-C",
                    where,
                ],
                check=True,
            )
            (where / ".complete").touch()
        lock = os.open(f"{where}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock, fcntl.LOCK_SH)
        _IN_USE.append(lock)
    return where


def _unused(old: Path) -> bool:
    """No process holds OLD (a tree) in use; if so, its lock goes with it."""
    lock = os.open(f"{old}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(lock)
    Path(f"{old}.lock").unlink(missing_ok=True)
    return True


class BoxRoot:
    """One box: an overlay over ``lower`` in ``netns``, its changes kept in ``work``."""

    def __init__(
        self, netns: Netns, lower: Path, work: Path, hostname: str, nameserver: str = "127.0.0.53"
    ):
        self.netns, self.lower, self.work, self.hostname = netns, lower, work, hostname
        self.nameserver = nameserver  # what systemd-resolved would be on the box
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None  # the box's PID 1, as this machine numbers it

    def start(self) -> System:
        dirs = [self.work / d for d in ("upper", "overlay-work", "merged")]
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.netns.cmd(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--uts",
                    "--ipc",
                    "sh",
                    "-c",
                    _SETUP,
                    "sh",
                    str(self.lower),
                    *map(str, dirs),
                    self.hostname,
                    _INIT,
                ]
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.process.stdout.readline()
        if line.strip() != "up":
            self.process.kill()
            raise RuntimeError(f"box {self.hostname} did not start: {self.process.stderr.read()}")
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        self.pid = int(children.split()[0])
        system = self.system()
        # The box's /etc/resolv.conf points at systemd-resolved's file in /run (a fresh
        # tmpfs here): without it, Prosody's resolver does not even start.
        system.write(
            "/run/systemd/resolve/stub-resolv.conf", f"nameserver {self.nameserver}\n".encode()
        )
        return system

    def system(self) -> System:
        return System.inside(self.pid)

    def processes(self) -> list[int]:
        """The box's processes (its daemons) as this machine numbers them, without PID 1."""
        mine = os.readlink(f"/proc/{self.pid}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.pid:
                try:
                    if os.readlink(entry / "ns/pid") == mine:
                        found.append(int(entry.name))
                except OSError:
                    continue  # gone, or a kernel thread
        return found

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # The box's PID 1 first: its end ends everything in the box, then unshare
            # (which blocks SIGTERM while it waits for its child) returns at once.
            if self.pid:
                os.kill(self.pid, signal.SIGTERM)
            self.process.send_signal(signal.SIGTERM)  # --kill-child: the box's PID 1 goes too
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid = None

    def __enter__(self) -> System:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # a quick look: python -m cblab.boxroot (PYTHONPATH=lab)
    ns = Netns("cb-boxroot-try")
    try:
        with BoxRoot(
            ns, tree(), Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cb-boxroot"), "box.test"
        ) as system:
            print(
                system.run(
                    [
                        "sh",
                        "-c",
                        "hostname; postconf mail_version; "
                        "dovecot --version; prosodyctl about | head -3",
                    ]
                ).stdout
            )
    finally:
        ns.delete()
