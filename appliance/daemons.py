"""Starting, reloading and stopping the relay's daemons, and checking their configs.

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


_MILTER_PID = "/run/commonsbox-mailfilter/milter.pid"
_MILTER = (
    "setpriv",
    "--reuid=cbmilter",
    "--regid=cbmilter",
    "--clear-groups",
    "python3",
    "-I",
    "/etc/commonsbox/mail/filter/milter.py",
    "/run/commonsbox-mailfilter/milter.sock",
    "--pidfile",
    _MILTER_PID,
)

DAEMONS = {
    d.name: d
    for d in (
        Daemon(
            "opendkim",
            "opendkim.service",
            ("opendkim", "-x", "/etc/opendkim.conf"),
            ("sh", "-c", 'kill -USR1 "$(cat /run/opendkim/opendkim.pid)"'),
            "/run/opendkim/opendkim.pid",
            ("opendkim", "-n", "-x", "{}"),
        ),
        # The encrypted-only filter (mail/milter.py); its unit is the image's.
        Daemon(
            "mailfilter",
            "commonsbox-mailfilter.service",
            _MILTER,
            ("sh", "-c", f'kill "$(cat {_MILTER_PID})"; sleep 0.2; exec "$@"', "-", *_MILTER),
            _MILTER_PID,
        ),
        Daemon(
            "dovecot",
            "dovecot.service",
            ("dovecot",),
            ("doveadm", "reload"),
            "/run/dovecot/master.pid",
            ("doveconf", "-n", "-c", "{}"),
        ),
        Daemon(
            "postfix",
            "postfix.service",
            ("postfix", "start"),
            ("postfix", "reload"),
            "/var/spool/postfix/pid/master.pid",
            ("postfix", "-c", "{dir}", "check"),
        ),
        # The household's file share (files/capability.py): OpenSSH's SFTP, its own instance.
        Daemon(
            "files",
            "commonsbox-files.service",
            ("/usr/sbin/sshd", "-f", "/etc/commonsbox/files/sshd_config"),
            ("sh", "-c", 'kill -HUP "$(cat /run/commonsbox-files/sshd.pid)"'),
            "/run/commonsbox-files/sshd.pid",
            ("/usr/sbin/sshd", "-t", "-f", "{}"),
        ),
        # The installer's SSH (ssh/capability.py): OpenSSH again, another instance.
        Daemon(
            "ssh",
            "commonsbox-ssh.service",
            ("/usr/sbin/sshd", "-f", "/etc/commonsbox/ssh/sshd_config"),
            ("sh", "-c", 'kill -HUP "$(cat /run/commonsbox-ssh/sshd.pid)"'),
            "/run/commonsbox-ssh/sshd.pid",
            ("/usr/sbin/sshd", "-t", "-f", "{}"),
        ),
        Daemon(
            "prosody",
            "prosody.service",
            ("prosodyctl", "start"),
            ("prosodyctl", "reload"),
            "/run/prosody/prosody.pid",
            ("prosodyctl", "--config", "{}", "check", "config"),
        ),
    )
}


def check(system: System, daemon: str, staged: str) -> None:
    """Run DAEMON's own config checker on the staged file or directory (a path inside
    the box); raises SystemFailure with the checker's words if it refuses."""
    folder = staged.rsplit("/", 1)[0]
    system.run(
        [part.replace("{}", staged).replace("{dir}", folder) for part in DAEMONS[daemon].check]
    )


class Systemd:
    def __init__(self, system: System):
        self.system = system

    def running(self, name: str) -> bool:
        return (
            self.system.run(
                ["systemctl", "is-active", "--quiet", DAEMONS[name].unit], check=False
            ).returncode
            == 0
        )

    def start(self, name: str) -> None:
        self.system.run(["systemctl", "enable", "--now", "--quiet", DAEMONS[name].unit])

    def reload(self, name: str) -> None:
        self.system.run(["systemctl", "reload-or-restart", DAEMONS[name].unit])

    def stop(self, name: str) -> None:
        self.system.run(["systemctl", "disable", "--now", "--quiet", DAEMONS[name].unit])


class Direct:
    """No init system: the daemons' own commands, and their pid files to tell."""

    def __init__(self, system: System):
        self.system = system

    def running(self, name: str) -> bool:
        pid = (self.system.read(DAEMONS[name].pidfile) or b"").strip()
        return (
            pid.isdigit()
            and self.system.run(["kill", "-0", pid.decode()], check=False).returncode == 0
        )

    def start(self, name: str) -> None:
        self.system.run(list(DAEMONS[name].start), daemon=True)

    def reload(self, name: str) -> None:
        self.system.run(list(DAEMONS[name].reload), daemon=True)

    def stop(self, name: str, timeout: float = 10) -> None:
        """Until it is gone: a daemon still exiting removes its socket as the next one
        made it (OpenDKIM did, and Postfix then deferred all mail)."""
        pid = (self.system.read(DAEMONS[name].pidfile) or b"").strip().decode()
        if not pid.isdigit():
            return
        self.system.run(["kill", pid], check=False)
        deadline = time.monotonic() + timeout
        while self.system.run(["kill", "-0", pid], check=False).returncode == 0:
            if time.monotonic() > deadline:
                raise SystemFailure(f"{name} did not stop within {timeout:.0f} s")
            time.sleep(0.05)


def manager(system: System) -> Systemd | Direct:
    return Systemd(system) if system.path("/run/systemd/system").is_dir() else Direct(system)
