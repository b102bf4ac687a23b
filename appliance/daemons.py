"""Starting, reloading and stopping the daemons the capabilities run, and checking their
configs. Each capability declares its own (mail/capability.py, chat/capability.py...).

Two managers, for a real difference only: on the box systemd runs the daemons (their
Debian units, logging to the journal); the box-in-a-namespace has no init system, so
there the daemons' own commands start them. Either way a config is checked by the
daemon's own checker before the daemon sees it.
"""

import time
from dataclasses import dataclass

from .errors import SystemFailure
from .system import System


@dataclass(frozen=True)
class Daemon:
    name: str
    unit: str
    start: tuple[str, ...]
    reload: tuple[str, ...]
    pidfile: str
    # The checker: {} is the staged config file, {dir} the directory it is in.
    check: tuple[str, ...] = ()


def check(system: System, daemon: Daemon, staged: str) -> None:
    """Run DAEMON's own config checker on the staged file or directory (a path inside
    the box); raises SystemFailure with the checker's words if it refuses."""
    folder = staged.rsplit("/", 1)[0]
    system.run([part.replace("{}", staged).replace("{dir}", folder) for part in daemon.check])


class Systemd:
    def __init__(self, system: System):
        self.system = system

    def running(self, daemon: Daemon) -> bool:
        return (
            self.system.run(
                ["systemctl", "is-active", "--quiet", daemon.unit], check=False
            ).returncode
            == 0
        )

    def start(self, daemon: Daemon) -> None:
        self.system.run(["systemctl", "enable", "--now", "--quiet", daemon.unit])

    def reload(self, daemon: Daemon) -> None:
        self.system.run(["systemctl", "reload-or-restart", daemon.unit])

    def stop(self, daemon: Daemon) -> None:
        self.system.run(["systemctl", "disable", "--now", "--quiet", daemon.unit])


class Direct:
    """No init system: the daemons' own commands, and their pid files to tell."""

    def __init__(self, system: System):
        self.system = system

    def running(self, daemon: Daemon) -> bool:
        pid = (self.system.read(daemon.pidfile) or b"").strip()
        return (
            pid.isdigit()
            and self.system.run(["kill", "-0", pid.decode()], check=False).returncode == 0
        )

    def start(self, daemon: Daemon) -> None:
        self.system.run(list(daemon.start), daemon=True)

    def reload(self, daemon: Daemon) -> None:
        self.system.run(list(daemon.reload), daemon=True)

    def stop(self, daemon: Daemon, timeout: float = 10) -> None:
        """Until it is gone: a daemon still exiting removes its socket as the next one
        made it (OpenDKIM did, and Postfix then deferred all mail)."""
        pid = (self.system.read(daemon.pidfile) or b"").strip().decode()
        if not pid.isdigit():
            return
        self.system.run(["kill", pid], check=False)
        deadline = time.monotonic() + timeout
        while self.system.run(["kill", "-0", pid], check=False).returncode == 0:
            if time.monotonic() > deadline:
                raise SystemFailure(f"{daemon.name} did not stop within {timeout:.0f} s")
            time.sleep(0.05)


def manager(system: System) -> Systemd | Direct:
    return Systemd(system) if system.path("/run/systemd/system").is_dir() else Direct(system)
