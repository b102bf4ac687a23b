"""The installer's SSH: OpenSSH, an instance of its own (commonsbox-ssh.service), running
only while a key is set. Root logs in with one of those keys and nothing else: no
passwords, no other user, no forwarding. It listens on its own port, as the file
share's SFTP holds port 22 on the VPN's addresses, and the firewall lets it answer only
the VPN and the networks a home uses (firewall/ruleset.py), never the Internet.

Its settings and host key are on the card, not on the encrypted storage: an installer
can still log in to a box whose storage is locked.
"""

from ..capability import Ports
from ..daemonconfig import DaemonConfig, File, lines
from ..daemons import Daemon
from ..schema import Desired
from ..secrets import SecretStore
from ..system import System
from .openssh import LOCKED_DOWN, fingerprint, host_key_fingerprint, host_key_pem
from .schema import PORT, SshSettings

CONFIG_DIR = "/etc/commonsbox/ssh"
CONFIG = f"{CONFIG_DIR}/sshd_config"
STATE = "/var/lib/commonsbox/ssh"  # not beside the config: in place before its check
HOST_KEY = f"{STATE}/host_ed25519"
AUTHORIZED_KEYS = f"{STATE}/authorized_keys"
PIDFILE = "/run/commonsbox-ssh/sshd.pid"
HOST_KEY_SECRET = "ssh/host_key"


def sshd_config() -> bytes:
    return lines(
        [
            "# Written by the Commonsbox agent: the installer's SSH, root by key only.",
            f"ListenAddress 0.0.0.0:{PORT}",
            f"ListenAddress [::]:{PORT}",
            f"HostKey {HOST_KEY}",
            f"PidFile {PIDFILE}",
            f"AuthorizedKeysFile {AUTHORIZED_KEYS}",
            "AuthorizedPrincipalsFile none",
            "AllowUsers root",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            # PAM: root's password is locked ('!'), which without PAM refuses keys too.
            "UsePAM yes",
            *LOCKED_DOWN,
            "Subsystem sftp internal-sftp",
        ]
    )


def authorized_keys(desired: Desired) -> bytes:
    # `restrict` turns off every forwarding and the user's rc; `pty` gives back a terminal.
    return lines(f"restrict,pty {k.key}" for k in desired.ssh.keys)


class SshCapability(DaemonConfig):
    name = "ssh"
    settings = ("ssh", SshSettings)
    packages = ("openssh-server",)
    # OpenSSH again, another instance (Debian's sshd stays off).
    daemons = (
        Daemon(
            "ssh",
            "commonsbox-ssh.service",
            ("/usr/sbin/sshd", "-f", CONFIG),
            ("sh", "-c", 'kill -HUP "$(cat /run/commonsbox-ssh/sshd.pid)"'),
            "/run/commonsbox-ssh/sshd.pid",
            ("/usr/sbin/sshd", "-t", "-f", "{}"),
        ),
    )
    units_off = ("ssh.service",)
    read_by = ((f"{CONFIG_DIR}/", ("ssh",)),)  # the keys are read at each login
    checked = {"ssh": CONFIG}
    uses_storage = False
    card_secrets = ("ssh/",)  # its host key: an installer can log in while storage is locked

    @staticmethod
    def ports(desired: Desired) -> Ports:
        return Ports(home=frozenset({("tcp", PORT)}) if desired.ssh.enabled else frozenset())

    def __init__(self, system: System, secrets: SecretStore):
        super().__init__(system)
        self.secrets = secrets

    def depends_on(self, desired: Desired):
        return desired.ssh

    def enabled(self, desired: Desired) -> bool:
        return desired.ssh.enabled

    def files(self, desired: Desired) -> dict[str, File]:
        return {
            HOST_KEY: File(host_key_pem(self.secrets, HOST_KEY_SECRET).encode(), 0o600),
            AUTHORIZED_KEYS: File(authorized_keys(desired), 0o600),
            CONFIG: File(sshd_config()),
        }

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        return [("/run/commonsbox-ssh", "root", "root"), ("/run/sshd", "root", "root")]

    def access(self, desired: Desired) -> dict:
        """What an installer is shown: the keys, and (while SSH is on) the box's host key
        to compare; asking while it is off makes no key."""
        on = desired.ssh.enabled
        return {
            "enabled": on,
            "port": PORT,
            "user": "root",
            "host_key": host_key_fingerprint(self.secrets, HOST_KEY_SECRET) if on else None,
            "keys": [
                {
                    "name": k.name,
                    "owner": k.owner,
                    "fingerprint": fingerprint(k.key),
                    "kind": k.key.split()[0],
                }
                for k in desired.ssh.keys
            ],
        }
