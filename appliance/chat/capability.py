"""The chat capability: Prosody, configured from the desired state."""

from ..capability import Ports
from ..daemonconfig import DaemonConfig, File
from ..daemons import Daemon
from ..errors import SystemFailure
from ..mail.capability import TLS_CERT_SECRET, TLS_KEY_SECRET, app_password_hashes
from ..schema import Desired
from ..secrets import SecretStore
from ..system import System
from .render import AUTH_DIR, CERTS, DATA_DIR, Inputs, render
from .schema import ChatSettings

# XMPP: apps (c2s), other servers (s2s), file sharing over HTTPS.
PORTS = Ports(open=frozenset(("tcp", port) for port in (5222, 5269, 5281)))


class ChatCapability(DaemonConfig):
    name = "chat"
    settings = ("chat", ChatSettings)
    packages = ("prosody", "lua-unbound")  # lua-unbound: Prosody's DNS (SRV for federation)
    daemons = (
        Daemon(
            "prosody",
            "prosody.service",
            ("prosodyctl", "start"),
            ("prosodyctl", "reload"),
            "/run/prosody/prosody.pid",
            ("prosodyctl", "--config", "{}", "check", "config"),
        ),
    )
    units_off = ("prosody.service",)
    # Prosody's auth module reads the users and passwords at each login: no reload.
    read_by = ((f"{AUTH_DIR}/", ()), (f"{CERTS}/", ("prosody",)), ("/etc/prosody/", ("prosody",)))
    checked = {"prosody": "/etc/prosody/prosody.cfg.lua"}

    def __init__(self, system: System, secrets: SecretStore):
        super().__init__(system)
        self.secrets = secrets

    def depends_on(self, desired: Desired):
        return (
            desired.chat,
            desired.mail,
            desired.storage,
            tuple(u.name for u in desired.accounts.users),
        )

    @staticmethod
    def ports(desired: Desired) -> Ports:
        return PORTS if desired.chat.enabled else Ports()

    def enabled(self, desired: Desired) -> bool:
        return desired.chat.enabled

    def files(self, desired: Desired) -> dict[str, File]:
        key, cert = self.secrets.get(TLS_KEY_SECRET), self.secrets.get(TLS_CERT_SECRET)
        if not desired.mail.domain or key is None or cert is None:
            raise SystemFailure("chat needs the box's domain and certificate: set up mail first")
        return render(
            desired.chat,
            desired.mail,
            Inputs(
                users=tuple(u.name for u in desired.accounts.users),
                password_hashes=app_password_hashes(self.secrets, desired),
                tls_key_pem=key.reveal(),
                tls_cert_pem=cert.reveal(),
                log_dir=self.log_dir,
            ),
        )

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        return [("/run/prosody", "prosody", "prosody"), (DATA_DIR, "prosody", "prosody")]
