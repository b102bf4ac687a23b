"""The mail capability: rendered files -> checked by the daemons' own checkers -> written
atomically -> the daemons that read them reloaded (or started). Only what changed."""

import hashlib
import os
import stat
from dataclasses import dataclass

from ..daemons import check, manager
from ..errors import SystemFailure
from ..reconcile import Check
from ..schema import Desired
from ..secrets import SecretStore
from ..system import System
from . import keys
from .render import CB, DKIM_SOCKET_DIR, MAIL_USER, MAILDIR, File, Inputs, render

DAEMONS = ("opendkim", "dovecot", "postfix")  # in the order they start
# Which daemon reads a file, by where it lies; the TLS files are read by two.
_READERS = (("/etc/postfix/", ("postfix",)), ("/etc/dovecot/", ("dovecot",)),
            ("/etc/opendkim", ("opendkim",)), ("/etc/commonsbox/mail/", ("postfix", "dovecot")))
# The file each daemon's checker is given, staged before it is put in place.
_CHECKED = {"postfix": "/etc/postfix/main.cf", "dovecot": "/etc/dovecot/dovecot.conf",
            "opendkim": "/etc/opendkim.conf"}
_CONFIG_DIRS = {m.rsplit("/", 1)[0] for m in _CHECKED.values()}
STAGE = "/run/commonsbox/mail-stage"

DKIM_SECRET, TLS_KEY_SECRET, TLS_CERT_SECRET = "mail/dkim", "mail/tls-key", "mail/tls-cert"
SMARTHOST_SECRET = "mail/smarthost"


def password_secret(owner: str, slot: int) -> str:
    return f"mail/app/{owner}/{slot}"


def readers(path: str) -> tuple[str, ...]:
    return next((names for prefix, names in _READERS if path.startswith(prefix)), ())


@dataclass(frozen=True)
class Facts:
    files: dict[str, tuple[str, int, int, int] | None]  # path -> (sha256, mode, uid, gid)
    running: dict[str, bool]
    accounts: bool  # the mail user exists and Postfix may use OpenDKIM's socket


@dataclass(frozen=True)
class MakeAccounts:
    def __str__(self):
        return f"create the {MAIL_USER} user; let Postfix reach OpenDKIM"


@dataclass(frozen=True)
class Write:
    paths: tuple[str, ...]

    def __str__(self):
        return f"write {len(self.paths)} file(s): {', '.join(self.paths[:3])}" + \
            (" ..." if len(self.paths) > 3 else "")


@dataclass(frozen=True)
class Start:
    daemon: str

    def __str__(self):
        return f"start {self.daemon}"


@dataclass(frozen=True)
class Reload:
    daemon: str

    def __str__(self):
        return f"reload {self.daemon}"


@dataclass(frozen=True)
class Stop:
    daemon: str

    def __str__(self):
        return f"stop {self.daemon}"


def fingerprint(f: File, ids: tuple[int, int]) -> tuple[str, int, int, int]:
    return hashlib.sha256(f.data).hexdigest(), f.mode, *ids


def plan(facts: Facts, enabled: bool, wanted: dict[str, tuple]) -> list:
    """Pure: FACTS and what the files should be (path -> fingerprint) -> actions."""
    if not enabled:
        return [Stop(d) for d in reversed(DAEMONS) if facts.running.get(d)]
    actions = [] if facts.accounts else [MakeAccounts()]
    changed = tuple(sorted(p for p, fp in wanted.items() if facts.files.get(p) != fp))
    if changed:
        actions.append(Write(changed))
    touched = {d for p in changed for d in readers(p)}
    for d in DAEMONS:
        if not facts.running.get(d):
            actions.append(Start(d))
        elif d in touched:
            actions.append(Reload(d))
    return actions


class MailCapability:
    name = "mail"

    def __init__(self, system: System, secrets: SecretStore, log_dir: str | None = None):
        self.system = system
        self.secrets = secrets
        self.daemons = manager(system)
        # Without journald (the box-in-a-namespace) the daemons log to files here.
        self.log_dir = log_dir if log_dir or self.daemons.__class__.__name__ == "Systemd" \
            else "/var/log/commonsbox"
        self._wanted: dict[str, File] = {}

    def depends_on(self, desired: Desired):
        return desired.mail, tuple(u.name for u in desired.accounts.users)

    def files(self, desired: Desired) -> dict[str, File]:
        s = desired.mail
        secret = self.secrets.get
        if secret(DKIM_SECRET) is None or secret(TLS_KEY_SECRET) is None:
            raise SystemFailure("mail is on but its keys are missing (turn mail on again)")
        dkim = secret(DKIM_SECRET).reveal()
        users = tuple(u.name for u in desired.accounts.users)
        hashes = {}
        for p in s.app_passwords:
            h = secret(password_secret(p.owner, p.slot))
            if h is not None:
                hashes[(p.owner, p.slot)] = h.reveal()
        host_password = secret(SMARTHOST_SECRET)
        return render(s, Inputs(
            users=users, password_hashes=hashes, dkim_selector=keys.dkim_selector(dkim),
            dkim_key_pem=dkim, tls_key_pem=secret(TLS_KEY_SECRET).reveal(),
            tls_cert_pem=secret(TLS_CERT_SECRET).reveal(), log_dir=self.log_dir,
            smarthost_password=host_password.reveal() if host_password else None))

    def _ids(self, owner: tuple[str, str]) -> tuple[int, int]:
        return self.system.ids(owner[0], owner[1])

    def read_facts(self) -> Facts:
        files = {}
        for path in self._wanted:
            p = self.system.path(path)
            try:
                st = p.stat()
                files[path] = (hashlib.sha256(p.read_bytes()).hexdigest(),
                               stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            except FileNotFoundError:
                files[path] = None
        group = (self.system.read("/etc/group") or b"").decode()
        dkim_members = next((line.split(":")[3].split(",") for line in group.splitlines()
                             if line.startswith("opendkim:")), [])
        accounts = f"\n{MAIL_USER}:" in "\n" + (self.system.read("/etc/passwd") or b"").decode() \
            and "postfix" in dkim_members
        return Facts(files=files, running={d: self.daemons.running(d) for d in DAEMONS},
                     accounts=accounts)

    def plan(self, facts: Facts, desired: Desired) -> list:
        if not desired.mail.enabled:
            return plan(facts, False, {})
        self._wanted = self.files(desired)
        if any(p not in facts.files for p in self._wanted):  # new files: read their facts
            facts = self.read_facts()
        ids = {f.owner: self._ids(f.owner) for f in self._wanted.values()} \
            if facts.accounts else {}
        wanted = {p: fingerprint(f, ids.get(f.owner, (-1, -1))) for p, f in self._wanted.items()}
        return plan(facts, True, wanted)

    def apply(self, actions: list) -> None:
        if any(isinstance(a, (Write, Start)) for a in actions):
            self._prepare_runtime()
        for action in actions:
            if isinstance(action, MakeAccounts):
                self._make_accounts()
            elif isinstance(action, Write):
                self._write(action.paths)
            elif isinstance(action, Start):
                self.daemons.start(action.daemon)
            elif isinstance(action, Reload):
                self.daemons.reload(action.daemon)
            elif isinstance(action, Stop):
                self.daemons.stop(action.daemon)

    def _make_accounts(self) -> None:
        if f"\n{MAIL_USER}:" not in "\n" + (self.system.read("/etc/passwd") or b"").decode():
            self.system.run(["useradd", "--system", "--user-group", "--home-dir", MAILDIR,
                             "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER])
        self.system.run(["usermod", "--append", "--groups", "opendkim", "postfix"])

    def _prepare_runtime(self) -> None:
        """What the daemons' systemd units would make: their run and log directories."""
        dirs = [(DKIM_SOCKET_DIR, "opendkim", "opendkim")]
        if f"\n{MAIL_USER}:" in "\n" + (self.system.read("/etc/passwd") or b"").decode():
            dirs.append((MAILDIR, MAIL_USER, MAIL_USER))
        if self.log_dir:
            dirs.append((self.log_dir, "root", "root"))
        for path, user, group in dirs:
            where = self.system.path(path)
            where.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.chown(where, *self.system.ids(user, group))

    def _write(self, paths: tuple[str, ...]) -> None:
        """The data files (keys, maps, password files) go in place first; then each
        daemon's own config is staged beside, checked by its checker, and put in place.
        A refused config leaves the running one untouched: nothing was reloaded yet."""
        configs = {p for p in paths if p.rsplit("/", 1)[0] in _CONFIG_DIRS}
        for p in sorted(set(paths) - configs):
            self._put(p, p)
        for daemon, main in _CHECKED.items():
            folder = main.rsplit("/", 1)[0]
            if not any(p.rsplit("/", 1)[0] == folder and daemon in readers(p) for p in configs):
                continue
            for p in self._wanted:  # the whole config, as it will be
                if p.rsplit("/", 1)[0] == folder and daemon in readers(p):
                    self._put(p, f"{STAGE}/{daemon}/{p.rsplit('/', 1)[1]}")
            staged = f"{STAGE}/{daemon}"
            check(self.system, daemon, staged if daemon == "postfix" else
                  f"{staged}/{main.rsplit('/', 1)[1]}")
        for p in sorted(configs):
            self._put(p, p)

    def _put(self, path: str, where: str) -> None:
        f = self._wanted[path]
        self.system.write(where, f.data, f.mode, self._ids(f.owner))

    def health(self, facts: Facts, desired: Desired) -> list[Check]:
        if not desired.mail.enabled:
            return []
        return [Check(self.name, d, bool(facts.running.get(d)),
                      "running" if facts.running.get(d) else "not running") for d in DAEMONS]
