"""Where the system the agent manages lives: its files and how its commands run.

On the box that is this machine: files under /, commands run as they are. In the
box-in-a-namespace (lab/cblab/boxroot.py) the daemons run in the box's own root file
system: files through /proc/PID/root, commands through `nsenter`. The relay's
capabilities (mail, chat) only ever touch the system through this.
"""

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SystemFailure


@dataclass(frozen=True)
class System:
    root: Path = Path("/")
    enter: tuple[str, ...] = ()  # what runs a command inside; () on the box itself

    @classmethod
    def inside(cls, pid: int) -> "System":
        """The system that process PID sees: its root, namespaces and nothing of this
        machine's environment."""
        return cls(
            root=Path(f"/proc/{pid}/root"),
            enter=(
                "nsenter",
                "-t",
                str(pid),
                "-m",
                "-u",
                "-i",
                "-n",
                "-p",
                "-r",
                "-w",
                "--",
                "/usr/bin/env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
            ),
        )

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def run(
        self,
        cmd: list[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
        daemon: bool = False,
        pass_fds: tuple[int, ...] = (),
    ) -> subprocess.CompletedProcess:
        """DAEMON: the command leaves a process behind that keeps its output open, so
        the output goes to a file (a pipe would wait for that process to end).
        PASS_FDS: open files the command reads as /dev/fd/N (keys: never on a disk)."""
        if daemon:
            with tempfile.TemporaryFile("w+") as out:
                done = subprocess.run(
                    [*self.enter, *cmd],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    text=True,
                    timeout=timeout,
                )
                out.seek(0)
                done.stdout, done.stderr = out.read(), ""
        else:
            done = subprocess.run(
                [*self.enter, *cmd],
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                pass_fds=pass_fds,
            )
        if check and done.returncode != 0:
            raise SystemFailure(
                f"{cmd[0]} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        return done

    def read(self, absolute: str) -> bytes | None:
        try:
            return self.path(absolute).read_bytes()
        except FileNotFoundError:
            return None

    def write(
        self, absolute: str, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
    ) -> None:
        """Atomically: a temporary file beside it, fsync, rename; the mode and owner are
        set before the content is visible, so a secret is never readable by others."""
        target = self.path(absolute)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def ids(self, user: str, group: str | None = None) -> tuple[int, int]:
        """A user's and group's numbers as the box's own /etc/passwd and /etc/group say
        (not this machine's, in the namespace)."""

        def lookup(file: str, name: str, column: int) -> int:
            for line in (self.read(file) or b"").decode().splitlines():
                fields = line.split(":")
                if fields[0] == name:
                    return int(fields[column])
            raise SystemFailure(f"no {name!r} in the box's {file}")

        uid = lookup("/etc/passwd", user, 2)
        return uid, lookup("/etc/group", group, 2) if group else lookup("/etc/passwd", user, 3)
