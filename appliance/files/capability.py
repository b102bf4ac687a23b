"""The file share: OpenSSH's SFTP server, an instance of its own (never the installer's
SSH), on the box's VPN addresses only; the firewall drops port 22 from anywhere but the
VPN as well. Each member logs in as themselves with a files password and lands in their
own folder; `shared` is everybody's. Nothing but SFTP: no shell, no forwarding.

    /var/lib/commonsbox/private/files   root 755    the chroot every login is locked in
        alice/                          alice 700   only Alice's
        shared/                         root:cbfiles 2770, files readable by all

Each member is a system user of group cbfiles (no shell, no home, locked until a files
password is set), so the kernel, not a config line, keeps Alice out of Bob's folder.
A member who leaves loses the account; their folder goes to ARCHIVE (root-only, outside
the share) or is deleted, as the household chose (appliance/files/folders.py).
"""

import logging
import os
import secrets as random
from dataclasses import replace

from ..daemonconfig import DaemonConfig, File, lines
from ..daemons import Daemon
from ..errors import Conflict
from ..reconcile import Check
from ..schema import Desired
from ..secrets import SecretStore
from ..ssh.openssh import LOCKED_DOWN, host_key_fingerprint, host_key_pem
from ..storage.place import KEYS, PRIVATE
from ..system import System
from . import folders
from .schema import FilesSettings

log = logging.getLogger(__name__)

FILES = f"{PRIVATE}/files"
SHARED = "shared"
ARCHIVE = f"{PRIVATE}/files-archive"  # departed members' folders: root's, not the share's
UID_MARK = "/var/lib/commonsbox/files-last-uid"  # beside /etc/passwd: the highest ever given
GROUP = "cbfiles"
CONFIG_DIR = "/etc/commonsbox/files"
CONFIG = f"{CONFIG_DIR}/sshd_config"
HOST_KEY = f"{KEYS}/files/host_ed25519"  # not beside the config: in place before its check
PIDFILE = "/run/commonsbox-files/sshd.pid"
HOST_KEY_SECRET = "files.host_key"
PORT = 22


def sshd_config(desired: Desired) -> bytes:
    vpn = desired.vpn
    return lines(
        [
            "# Written by the Commonsbox agent: the household's files, SFTP only, VPN only.",
            f"ListenAddress {vpn.box_ipv4.ip}:{PORT}",
            f"ListenAddress [{vpn.box_ipv6.ip}]:{PORT}",
            f"HostKey {HOST_KEY}",
            f"PidFile {PIDFILE}",
            "UsePAM no",  # the password in /etc/shadow; no PAM sessions, no motd
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication no",
            "PermitRootLogin no",
            f"AllowGroups {GROUP}",
            *LOCKED_DOWN,
            "MaxSessions 4",
            "PermitTTY no",
            f"ChrootDirectory {FILES}",
            # What is put in shared/ every member can read (and add to, or replace); a
            # member starts in their own folder.
            "ForceCommand internal-sftp -u 0007 -d /%u",
            "Subsystem sftp internal-sftp",
        ]
    )


def members(desired: Desired) -> frozenset[str]:
    return frozenset(u.name for u in desired.accounts.users)


class FilesCapability(DaemonConfig):
    name = "files"
    settings = ("files", FilesSettings)
    packages = ("openssh-server",)  # its SFTP server, as an instance of the box's own
    # OpenSSH's SFTP, an instance of its own; Debian's sshd stays off.
    daemons = (
        Daemon(
            "files",
            "commonsbox-files.service",
            ("/usr/sbin/sshd", "-f", f"{CONFIG_DIR}/sshd_config"),
            ("sh", "-c", 'kill -HUP "$(cat /run/commonsbox-files/sshd.pid)"'),
            "/run/commonsbox-files/sshd.pid",
            ("/usr/sbin/sshd", "-t", "-f", "{}"),
        ),
    )
    units_off = ("ssh.service",)
    read_by = ((f"{CONFIG_DIR}/", ("files",)),)
    checked = {"files": CONFIG}
    prepare_text = "give each member an account and a folder for their files"

    def __init__(self, system: System, secrets: SecretStore):
        super().__init__(system)
        self.secrets = secrets
        self._members: frozenset[str] = frozenset()
        self._departed = "archive"

    def depends_on(self, desired: Desired):
        return (
            desired.files,
            desired.vpn.ipv4_subnet,
            desired.vpn.ipv6_subnet,
            desired.storage,
            members(desired),
        )

    def enabled(self, desired: Desired) -> bool:
        return desired.files.enabled

    def files(self, desired: Desired) -> dict[str, File]:
        return {
            HOST_KEY: File(host_key_pem(self.secrets, HOST_KEY_SECRET).encode(), 0o600),
            CONFIG: File(sshd_config(desired)),
        }

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        return [("/run/commonsbox-files", "root", "root"), ("/run/sshd", "root", "root")]

    # -- the members' accounts and folders ---------------------------------------------

    def plan(self, facts, desired: Desired) -> list:
        # Who has an account is the desired state's: read before the facts are judged.
        self._members = members(desired)
        self._departed = desired.files.departed
        if facts.ready and self.enabled(desired) and not self.is_ready():
            facts = replace(facts, ready=False)
        return super().plan(facts, desired)

    def _users(self) -> tuple[dict[str, int], int | None]:
        """(our accounts: name -> uid, the group's number) from the box's own files."""
        gid = next((int(f[2]) for f in _table(self.system, "/etc/group") if f[0] == GROUP), None)
        ours = {
            f[0]: int(f[2])
            for f in _table(self.system, "/etc/passwd")
            if gid is not None and f[3] == str(gid)
        }
        return ours, gid

    def taken(self) -> frozenset[str]:
        """Members whose name a system account already has (root, postfix...)."""
        ours, _ = self._users()
        system_names = {f[0] for f in _table(self.system, "/etc/passwd")} - set(ours)
        return frozenset(self._members & system_names)

    def is_ready(self) -> bool:
        ours, gid = self._users()
        wanted = self._members - self.taken()
        return (
            gid is not None
            and set(ours) == wanted
            and self.system.path(f"{FILES}/{SHARED}").is_dir()
            and not self._folder_steps()
        )

    def _folder_steps(self) -> list[folders.Step]:
        ours, _ = self._users()
        wanted = self._members - self.taken()
        accounts = {name: uid for name, uid in ours.items() if name in wanted}
        found = folders.survey(str(self.system.path(FILES)), SHARED)
        return folders.plan(accounts, found, self._departed)

    def _new_uid(self) -> int:
        """Never a uid a member had before (kept as a mark, written before it is used)."""
        mark = (self.system.read(UID_MARK) or b"0").decode().strip()
        used = {int(f[2]) for f in _table(self.system, "/etc/passwd") if f[2].isdigit()}
        uid = folders.next_uid(used, int(mark) if mark.isdigit() else 0)
        self.system.write(UID_MARK, f"{uid}\n".encode(), mode=0o600)
        return uid

    def make_ready(self) -> None:
        run = self.system.run
        if self._users()[1] is None:
            run(["groupadd", "--system", GROUP])
        self.remove_accounts(keep=self._members)
        for name in sorted(self._members - set(self._users()[0]) - self.taken()):
            run(
                [
                    "useradd",
                    "--system",
                    "--uid",
                    str(self._new_uid()),
                    "--gid",
                    GROUP,
                    "--home-dir",
                    f"/{name}",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ]
            )
        self._folder(FILES, 0o755, "root", "root")
        self._folder(f"{FILES}/{SHARED}", 0o2770, "root", GROUP)
        root = str(self.system.path(FILES))
        for step in self._folder_steps():  # the departed's and strangers' first
            if step.action == "make":
                self._folder(f"{FILES}/{step.name}", 0o700, step.name, GROUP)
            elif step.action == "archive":
                kept = folders.archive(root, step.name, str(self.system.path(ARCHIVE)))
                log.warning(
                    "files: the folder %s (%s) is archived at %s", step.name, step.why, kept
                )
            else:
                folders.delete(root, step.name)
                log.warning("files: the folder %s (%s) is deleted", step.name, step.why)

    def remove_accounts(self, keep: frozenset[str] = frozenset()) -> None:
        """The accounts of those no longer in the household (of everyone, at a factory
        reset: a new Alice must not inherit the old one's files password)."""
        ours, _ = self._users()
        for name in sorted(set(ours) - keep):
            self.system.run(["pkill", "-KILL", "-U", str(ours[name])], check=False)
            self.system.run(["userdel", name])

    def forget(self) -> None:
        """At a factory reset (appliance/reset.py): nobody keeps an account."""
        self.remove_accounts()

    def _folder(self, path: str, mode: int, user: str, group: str) -> None:
        where = self.system.path(path)
        if not where.is_dir():  # a folder that exists keeps what its owner made of it
            where.mkdir(parents=True)
            os.chown(where, *self.system.ids(user, group))
            os.chmod(where, mode)

    # -- what a member is told, and their password --------------------------------------

    def connection(self, desired: Desired, name: str) -> dict:
        """How a member's app reaches the share, and the key it will be shown."""
        host = str(desired.vpn.box_ipv4.ip)
        return {
            "enabled": desired.files.enabled,
            "host": host,
            "port": PORT,
            "user": name,
            "url": f"sftp://{name}@{host}/",
            "host_key": host_key_fingerprint(self.secrets, HOST_KEY_SECRET),
            "has_password": self._has_password(name),
            "departed": desired.files.departed,
        }

    def new_password(self, desired: Desired, name: str) -> str:
        """A new files password for NAME (the old one stops working), shown this once."""
        if not desired.files.enabled:
            raise Conflict("the file share is off: a manager turns it on first")
        if name not in self._users()[0]:
            raise Conflict(f"{name} has no files account yet (is the storage unlocked?)")
        password = random.token_urlsafe(18)  # 24 characters, 144 bits
        # chpasswd hashes it as the box's PAM says (yescrypt); it reads it from stdin.
        self.system.run(["chpasswd"], input=f"{name}:{password}\n")
        return password

    def _has_password(self, name: str) -> bool:
        """Whether NAME's account has a password (shadow: '!' or '*' = none)."""
        for fields in _table(self.system, "/etc/shadow", 2):
            if fields[0] == name:
                return not fields[1].startswith(("!", "*")) and fields[1] != ""
        return False

    def health(self, facts, desired: Desired) -> list[Check]:
        checks = super().health(facts, desired)
        if self.enabled(desired) and (taken := self.taken()):
            checks.append(
                Check(
                    self.name,
                    "accounts",
                    False,
                    f"no files for {', '.join(sorted(taken))}: the box's system "
                    f"already has an account of that name",
                )
            )
        return checks


def _table(system: System, path: str, columns: int = 4) -> list[list[str]]:
    return [
        line.split(":")
        for line in (system.read(path) or b"").decode().splitlines()
        if line.count(":") >= columns - 1
    ]
