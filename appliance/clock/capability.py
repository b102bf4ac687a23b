"""The box's clock: chronyd (Debian's chrony.service) with the configuration rendered in
chrony.py, written by the agent, checked by `chronyd -p`, and chronyd restarted only when
it changes (it reads its configuration only when it starts). Time on or off
(desired.box.time_sync) is the household's: off, chronyd runs with no server, keeping
the saved time, and asks no one.

chronyd runs wherever the agent runs, on the card's settings alone: the clock is needed
while the encrypted storage is locked too. A system without chronyd (the box-in-a-
namespace without the box's own root) has nothing for it to do. Without an init system
(the box-in-a-namespace) chronyd shares the clock of the machine it runs on, so there it
only tracks the time (-x) and never sets that machine's clock; on the box, systemd starts
it with -s (the saved time as a floor: image/cbimage/files/chrony-commonsbox.conf).
"""

from ..capability import Parts
from ..daemonconfig import DaemonConfig, File
from ..daemons import Daemon
from ..schema import Desired
from . import chrony

CONFIG_DIR = "/etc/commonsbox/clock"
CONFIG = f"{CONFIG_DIR}/chrony.conf"
CHRONYD = "/usr/sbin/chronyd"
# Without an init system: tracking only (-x), logging where the agent's daemons log there,
START_HERE = (CHRONYD, "-x", "-f", CONFIG, "-l", "/var/log/commonsbox/chrony.log")
# and a restart: the old one gone (it removes its pid file last) before the new starts.
RESTART_HERE = (
    "sh",
    "-c",
    f'kill "$(cat {chrony.PIDFILE})"; '
    f"while [ -e {chrony.PIDFILE} ]; do sleep 0.05; done; exec {' '.join(START_HERE)}",
)


class ClockCapability(DaemonConfig):
    name = "clock"
    packages = ("chrony",)  # in place of systemd-timesyncd, which has no NTS
    daemons = (
        Daemon(
            "chronyd",
            "chrony.service",
            START_HERE,
            RESTART_HERE,
            chrony.PIDFILE,
            (CHRONYD, "-p", "-f", "{}"),
        ),
    )
    units_off = ("chrony.service",)  # off until the agent has written its configuration
    read_by = ((f"{CONFIG_DIR}/", ("chronyd",)),)
    checked = {"chronyd": CONFIG}
    uses_storage = False

    @classmethod
    def made(cls, parts: Parts) -> "ClockCapability":
        return cls(parts.system)

    def depends_on(self, desired: Desired):
        return desired.box.time_sync

    @property
    def present(self) -> bool:
        return self.system.path(CHRONYD).exists()

    def enabled(self, desired: Desired) -> bool:
        """chronyd runs whether time is on or off; here only if the system has it."""
        return self.present

    def files(self, desired: Desired) -> dict[str, File]:
        return {CONFIG: File(chrony.config(desired.box.time_sync))}

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        # Where it saves the time (its unit makes it on the box: StateDirectory).
        return [(chrony.DRIFT.rsplit("/", 1)[0], "_chrony", "_chrony")]

    def tracking(self) -> dict:
        """Whether the clock is synchronised now, and from which server (None: there is
        no chronyd here, or it does not answer)."""
        if not self.present:
            return {"synchronised": None, "source": None}
        done = self.system.run(
            ["chronyc", "-h", chrony.SOCKET, "-c", "-N", "tracking"], check=False, timeout=10
        )
        fields = done.stdout.strip().split(",")
        if done.returncode != 0 or len(fields) < 14:
            return {"synchronised": None, "source": None}
        synchronised = fields[-1] == "Normal"
        return {"synchronised": synchronised, "source": fields[1] if synchronised else None}
