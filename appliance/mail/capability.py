"""The mail capability: Postfix, Dovecot and OpenDKIM, configured from the desired state
(the shape is daemonconfig.DaemonConfig's: render, check, write, reload)."""

from ..capability import Ports
from ..daemonconfig import DaemonConfig, File
from ..daemons import Daemon
from ..errors import SystemFailure
from ..schema import Desired
from ..secrets import SecretStore
from ..system import System
from . import keys
from .render import (
    DKIM_SOCKET_DIR,
    FILTER_DIR,
    FILTER_USER,
    MAIL_KEYS,
    MAIL_USER,
    MAILDIR,
    SMARTHOST,
    Inputs,
    render,
)
from .schema import MailSettings, password_secret

DKIM_SECRET, TLS_KEY_SECRET, TLS_CERT_SECRET = "mail/dkim", "mail/tls-key", "mail/tls-cert"
SMARTHOST_SECRET = "mail/smarthost"
EXPUNGE_EVERY = 3600  # seconds


def expunge_fetched(system: System, before: float) -> None:
    """Delete every message an app has fetched (\\Seen) that the box received before BEFORE
    (a time.time()), from every mailbox of every member."""
    system.run(
        ["doveadm", "expunge", "-A", "mailbox", "*", "SEEN", "savedbefore", str(int(before))]
    )


def app_password_hashes(secrets: SecretStore, desired: Desired) -> dict[tuple[str, int], str]:
    """(owner, slot) -> the hash of each app password the desired state lists."""
    hashes = {}
    for p in desired.mail.app_passwords:
        h = secrets.get(password_secret(p.owner, p.slot))
        if h is not None:
            hashes[(p.owner, p.slot)] = h.reveal()
    return hashes


# SMTP from other servers; submission (STARTTLS and TLS) and IMAP (STARTTLS and TLS)
# from the household's apps, which are often away from home.
PORTS = Ports(open=frozenset(("tcp", port) for port in (25, 465, 587, 143, 993)))


OPENDKIM = Daemon(
    "opendkim",
    "opendkim.service",
    ("opendkim", "-x", "/etc/opendkim.conf"),
    ("sh", "-c", 'kill -USR1 "$(cat /run/opendkim/opendkim.pid)"'),
    "/run/opendkim/opendkim.pid",
    ("opendkim", "-n", "-x", "{}"),
)
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
# The mail filter (milter.py); its unit is the image's.
MAILFILTER = Daemon(
    "mailfilter",
    "commonsbox-mailfilter.service",
    _MILTER,
    ("sh", "-c", f'kill "$(cat {_MILTER_PID})"; sleep 0.2; exec "$@"', "-", *_MILTER),
    _MILTER_PID,
)
DOVECOT = Daemon(
    "dovecot",
    "dovecot.service",
    ("dovecot",),
    ("doveadm", "reload"),
    "/run/dovecot/master.pid",
    ("doveconf", "-n", "-c", "{}"),
)
POSTFIX = Daemon(
    "postfix",
    "postfix.service",
    ("postfix", "start"),
    ("postfix", "reload"),
    "/var/spool/postfix/pid/master.pid",
    ("postfix", "-c", "{dir}", "check"),
)


class MailCapability(DaemonConfig):
    name = "mail"
    settings = ("mail", MailSettings)
    # libsasl2-modules: PLAIN and LOGIN, with which Postfix logs in to a smarthost. The
    # mail filter's checks of inbound mail (inbound.py): python3-dkim, python3-spf, and
    # the public suffix list (data only) for DMARC's organizational domains.
    packages = (
        "postfix",
        "dovecot-core",
        "dovecot-imapd",
        "dovecot-lmtpd",
        "opendkim",
        "libsasl2-modules",
        "python3-dkim",
        "python3-spf",
        "publicsuffix",
    )
    daemons = (OPENDKIM, MAILFILTER, DOVECOT, POSTFIX)
    units_off = ("opendkim.service", "dovecot.service", "postfix.service")
    # Dovecot reads its password and user files at each login: no reload for those. It
    # sees them change by their modification time, looking at most once a second.
    seen_by_mtime = ("/etc/dovecot/commonsbox/", f"{MAIL_KEYS}/passwords/")
    read_by = (
        *((prefix, ()) for prefix in seen_by_mtime),
        ("/etc/commonsbox/mail/filter/", ("mailfilter",)),
        ("/etc/postfix/", ("postfix",)),
        ("/etc/dovecot/", ("dovecot",)),
        ("/etc/opendkim", ("opendkim",)),
        (f"{MAIL_KEYS}/dkim/", ("opendkim",)),
        (SMARTHOST, ("postfix",)),
        (f"{MAIL_KEYS}/", ("postfix", "dovecot")),
    )
    checked = {
        "postfix": "/etc/postfix/main.cf",
        "dovecot": "/etc/dovecot/dovecot.conf",
        "opendkim": "/etc/opendkim.conf",
    }
    prepare_text = f"create the {MAIL_USER} and {FILTER_USER} users; let Postfix reach OpenDKIM"

    def __init__(self, system: System, secrets: SecretStore):
        super().__init__(system)
        self.secrets = secrets
        self._expunged_at = float("-inf")

    @staticmethod
    def ports(desired: Desired) -> Ports:
        return PORTS if desired.mail.enabled else Ports()

    def housekeeping(self, desired: Desired, now: float) -> None:
        """Hourly: forget fetched mail older than the household keeps it."""
        days = desired.mail.delete_fetched_after_days
        if desired.mail.enabled and days and now - self._expunged_at >= EXPUNGE_EVERY:
            expunge_fetched(self.system, now - days * 86400)
            self._expunged_at = now

    def depends_on(self, desired: Desired):
        return desired.mail, desired.storage, tuple(u.name for u in desired.accounts.users)

    def enabled(self, desired: Desired) -> bool:
        return desired.mail.enabled

    def files(self, desired: Desired) -> dict[str, File]:
        secret = self.secrets.get
        if secret(DKIM_SECRET) is None or secret(TLS_KEY_SECRET) is None:
            raise SystemFailure("mail is on but its keys are missing (turn mail on again)")
        dkim = secret(DKIM_SECRET).reveal()
        host_password = secret(SMARTHOST_SECRET)
        return render(
            desired.mail,
            Inputs(
                users=tuple(u.name for u in desired.accounts.users),
                password_hashes=app_password_hashes(self.secrets, desired),
                dkim_selector=keys.dkim_selector(dkim),
                dkim_key_pem=dkim,
                tls_key_pem=secret(TLS_KEY_SECRET).reveal(),
                tls_cert_pem=secret(TLS_CERT_SECRET).reveal(),
                log_dir=self.log_dir,
                smarthost_password=host_password.reveal() if host_password else None,
            ),
        )

    def is_ready(self) -> bool:
        passwd = "\n" + (self.system.read("/etc/passwd") or b"").decode()
        group = (self.system.read("/etc/group") or b"").decode()
        dkim_members = next(
            (
                line.split(":")[3].split(",")
                for line in group.splitlines()
                if line.startswith("opendkim:")
            ),
            [],
        )
        return (
            all(f"\n{u}:" in passwd for u in (MAIL_USER, FILTER_USER)) and "postfix" in dkim_members
        )

    def make_ready(self) -> None:
        passwd = "\n" + (self.system.read("/etc/passwd") or b"").decode()
        for user, home in ((MAIL_USER, MAILDIR), (FILTER_USER, "/nonexistent")):
            if f"\n{user}:" not in passwd:
                self.system.run(
                    [
                        "useradd",
                        "--system",
                        "--user-group",
                        "--home-dir",
                        home,
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        user,
                    ]
                )
        self.system.run(["usermod", "--append", "--groups", "opendkim", "postfix"])

    def runtime_dirs(self) -> list[tuple[str, str, str]]:
        # The filter's socket is reachable by Postfix only: through its directory.
        return [
            (DKIM_SOCKET_DIR, "opendkim", "opendkim"),
            (MAILDIR, MAIL_USER, MAIL_USER),
            (FILTER_DIR, FILTER_USER, "postfix"),
        ]
