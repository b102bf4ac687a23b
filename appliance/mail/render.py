"""Mail's configuration files, rendered from the desired state: a pure function.

Every value that reaches a file was checked by the schema (domains, user names, numbers);
``daemonconfig.line`` refuses a line break or control character all the same. The result maps each path on the box to
its bytes, mode and owner; the capability writes only what differs.
"""

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..daemonconfig import File, lines
from ..storage.place import KEYS, PRIVATE
from ..tls import AEAD_CIPHERS
from .schema import APP_PASSWORDS_MAX, MailSettings

MAIL_USER = "vmail"  # owns the mailboxes; created by the capability
MAILDIR = f"{PRIVATE}/mail"  # on the encrypted storage (storage/place.py)
MAIL_KEYS = f"{KEYS}/mail"  # the TLS and DKIM keys, app passwords, smarthost password
TLS_KEY, TLS_CERT = f"{MAIL_KEYS}/tls.key", f"{MAIL_KEYS}/tls.crt"
SMARTHOST = f"{MAIL_KEYS}/smarthost"
DKIM_SOCKET_DIR = "/run/opendkim"
DKIM_MILTER = f"unix:{DKIM_SOCKET_DIR}/opendkim.sock"
FILTER_USER = "cbmilter"  # runs the mail filter (milter.py)
FILTER_DIR = "/run/commonsbox-mailfilter"
FILTER_CODE = "/etc/commonsbox/mail/filter"
FILTER_SCRIPT = f"{FILTER_CODE}/milter.py"
# The filter's sockets (milter.SOCKETS): the submission ports', in "encrypted only" mode,
# and port 25's.
FILTER_MILTER = f"unix:{FILTER_DIR}/milter.sock"
SEALED_MILTER = f"unix:{FILTER_DIR}/sealed.sock"
INBOUND_MILTER = f"unix:{FILTER_DIR}/inbound.sock"
FILTER_MODULES = ("milter", "sealed", "sender", "inbound", "authpolicy")
# Where Dovecot asks the filter whether a login may go on (authpolicy.py): loopback only.
POLICY_PORT = 10027
CB = "commonsbox"  # our own subdirectory in each daemon's config directory
SMTP_PORTS = {"smtp": 25, "submission": 587, "submissions": 465}
IMAP_PORTS = {"imap": 143, "imaps": 993}


@dataclass(frozen=True)
class Inputs:
    """What the files depend on besides the settings: secrets and the place."""

    users: tuple[str, ...]  # the household's user names (each gets a mailbox)
    password_hashes: dict[tuple[str, int], str]  # (owner, slot) -> Dovecot hash
    dkim_selector: str
    dkim_key_pem: str
    tls_key_pem: str
    tls_cert_pem: str
    log_dir: str | None  # None: the system's log (journald on the box)
    smarthost_password: str | None = None


def hash_app_password(password: str, salt: bytes) -> str:
    """Dovecot's {SSHA512}: app passwords are 120-bit random strings made by the box, so
    a salted hash suffices (no slow hash needed against guessing: nothing to guess)."""
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def postfix_main(s: MailSettings, i: Inputs) -> bytes:
    conf = {
        "compatibility_level": "3.10",
        "myhostname": s.domain,
        "mydomain": s.domain,
        "myorigin": "$mydomain",
        "mydestination": "",
        "local_transport": "error:local delivery is off",
        "alias_maps": "",
        "alias_database": "",
        "biff": "no",
        "append_dot_mydomain": "no",
        "readme_directory": "no",
        "inet_interfaces": "all",
        "inet_protocols": "all",
        "smtpd_banner": "$myhostname ESMTP",
        "virtual_mailbox_domains": s.domain,
        "virtual_mailbox_maps": f"texthash:/etc/postfix/{CB}/mailboxes",
        "virtual_transport": "lmtp:unix:private/dovecot-lmtp",
        # Fewer parallel LMTP deliveries than Dovecot allows one user (10): a burst to
        # one member must not be deferred for minutes with "too many deliveries".
        "lmtp_destination_concurrency_limit": "8",
        "message_size_limit": str(s.max_message_mib * 1024 * 1024),
        "mailbox_size_limit": "0",
        # TLS on every hop the box controls; other servers get it when they offer it.
        "smtpd_tls_chain_files": f"{TLS_KEY}, {TLS_CERT}",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_auth_only": "yes",
        "smtpd_tls_protocols": ">=TLSv1.2",
        # TLS 1.2 with AEAD ciphers only (no CBC), on port 25 and on submission.
        "smtpd_tls_ciphers": "high",
        "smtpd_tls_mandatory_ciphers": "high",
        "tls_high_cipherlist": AEAD_CIPHERS,
        "smtpd_tls_received_header": "yes",
        "smtp_tls_security_level": "may",
        "smtp_tls_protocols": ">=TLSv1.2",
        # Authentication is Dovecot's; only on submission (master.cf).
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": "private/auth",
        "smtpd_sasl_auth_enable": "no",
        "smtpd_sasl_authenticated_header": "no",
        "smtpd_sender_login_maps": f"texthash:/etc/postfix/{CB}/senders",
        # Never an open relay: only authenticated users send beyond the box's domain.
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
        "smtpd_recipient_restrictions": "reject_non_fqdn_recipient, reject_unlisted_recipient",
        "smtpd_helo_required": "yes",
        "disable_vrfy_command": "yes",
        # A client that keeps trying passwords is turned away for a while (anvil).
        "smtpd_client_auth_rate_limit": "10",
        "anvil_rate_time_unit": "60s",
        # DKIM: OpenDKIM signs what the household sends; if it is down, mail waits
        # rather than leaving unsigned.
        "smtpd_milters": DKIM_MILTER,
        "non_smtpd_milters": "$smtpd_milters",
        "milter_default_action": "tempfail",
    }
    if s.smarthost is not None:
        h = s.smarthost
        conf["relayhost"] = f"[{h.host}]:{h.port}"
        conf["smtp_tls_security_level"] = "encrypt"  # credentials never go in clear
        if h.username:
            conf.update(
                smtp_sasl_auth_enable="yes",
                smtp_sasl_security_options="noanonymous",
                smtp_sasl_password_maps=f"texthash:{SMARTHOST}",
            )
    if i.log_dir:  # no syslog in the box-in-a-namespace
        conf["maillog_file"] = f"{i.log_dir}/postfix.log"
    return lines(
        ["# Written by the Commonsbox agent from the desired state: edits are undone."]
        + [f"{k} = {v}".rstrip() for k, v in conf.items()]
    )


_SUBMISSION = [
    "-o smtpd_tls_security_level=encrypt",
    "-o smtpd_sasl_auth_enable=yes",
    "-o smtpd_client_restrictions=permit_sasl_authenticated,reject",
    "-o smtpd_sender_restrictions=reject_sender_login_mismatch",
    "-o smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
    "-o cleanup_service_name=subcleanup",
]
# service type private unpriv chroot wakeup maxproc command (chroot off: the daemons
# read the box's /etc and Dovecot's sockets directly)
_SERVICES = [
    ("smtp", "inet", "n", "-", "n", "-", "-", "smtpd", []),
    (
        "submission",
        "inet",
        "n",
        "-",
        "n",
        "-",
        "-",
        "smtpd",
        ["-o syslog_name=postfix/submission", *_SUBMISSION],
    ),
    (
        "submissions",
        "inet",
        "n",
        "-",
        "n",
        "-",
        "-",
        "smtpd",
        ["-o syslog_name=postfix/submissions", "-o smtpd_tls_wrappermode=yes", *_SUBMISSION],
    ),
    # Mail from the household's apps loses the headers that tell where they were.
    (
        "subcleanup",
        "unix",
        "n",
        "-",
        "n",
        "-",
        "0",
        "cleanup",
        [f"-o header_checks=regexp:/etc/postfix/{CB}/submission_header_cleanup"],
    ),
    ("pickup", "unix", "n", "-", "n", "60", "1", "pickup", []),
    ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup", []),
    ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr", []),
    ("tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr", []),
    ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite", []),
    ("bounce", "unix", "-", "-", "n", "-", "0", "bounce", []),
    ("defer", "unix", "-", "-", "n", "-", "0", "bounce", []),
    ("trace", "unix", "-", "-", "n", "-", "0", "bounce", []),
    ("verify", "unix", "-", "-", "n", "-", "1", "verify", []),
    ("flush", "unix", "n", "-", "n", "1000?", "0", "flush", []),
    ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap", []),
    ("proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap", []),
    ("smtp", "unix", "-", "-", "n", "-", "-", "smtp", []),
    ("relay", "unix", "-", "-", "n", "-", "-", "smtp", []),
    ("showq", "unix", "n", "-", "n", "-", "-", "showq", []),
    ("error", "unix", "-", "-", "n", "-", "-", "error", []),
    ("retry", "unix", "-", "-", "n", "-", "-", "error", []),
    ("discard", "unix", "-", "-", "n", "-", "-", "discard", []),
    ("lmtp", "unix", "-", "-", "n", "-", "-", "lmtp", []),
    ("anvil", "unix", "-", "-", "n", "-", "1", "anvil", []),
    ("scache", "unix", "-", "-", "n", "-", "1", "scache", []),
    ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd", []),
]


def postfix_master(s: MailSettings) -> bytes:
    out = ["# Written by the Commonsbox agent: edits are undone."]
    # Every port's mail passes the box's filter: on the submission ports a member sends
    # only as themselves (and, in "encrypted only" mode, only encrypted mail to members),
    # then OpenDKIM signs; port 25 gets the checks of mail from the Internet instead.
    submission = SEALED_MILTER if s.encrypted_only else FILTER_MILTER
    for *columns, options in _SERVICES:
        out.append("  ".join(columns))
        out += [f"  {o}" for o in options]
        if columns[:2] == ["smtp", "inet"]:
            out.append(f"  -o smtpd_milters={INBOUND_MILTER}")
        elif columns[0] in SMTP_PORTS and columns[1] == "inet":
            out.append(f"  -o smtpd_milters={submission},{DKIM_MILTER}")
    return lines(out)


def dovecot_conf(s: MailSettings, i: Inputs) -> bytes:
    out = [
        "# Written by the Commonsbox agent from the desired state: edits are undone.",
        "dovecot_config_version = 2.4.1",
        "dovecot_storage_version = 2.4.1",
        "protocols = imap lmtp",
        "listen = *, ::",
        f"log_path = {i.log_dir}/dovecot.log" if i.log_dir else "log_path = syslog",
        "ssl = required",
        f"ssl_server_cert_file = {TLS_CERT}",
        f"ssl_server_key_file = {TLS_KEY}",
        "ssl_min_protocol = TLSv1.2",
        f"ssl_cipher_list = {AEAD_CIPHERS}",
        "auth_mechanisms = plain login",
        "auth_allow_cleartext = no",
        # Mailboxes are addresses; keep the domain (Debian's default strips it).
        "auth_username_format = %{user | lower}",
        "auth_failure_delay = 2s",
        # Each login is first put to the box's filter, which turns away an address after
        # repeated failures (authpolicy.py); only the address and name are sent to it.
        f"auth_policy_server_url = http://127.0.0.1:{POLICY_PORT}/",
        "auth_policy_hash_nonce = unused-no-password-hash-is-sent",
        "auth_policy_request_attributes {",
        "  login = %{requested_username}",
        "  remote = %{remote_ip}",
        "  protocol = %{protocol}",
        "}",
        # Logins are logged without the app's or the box's address.
        "login_log_format_elements = user=<%{user}> method=%{mechanism} %{secured} "
        "session=<%{session}>",
        f"mail_uid = {MAIL_USER}",
        f"mail_gid = {MAIL_USER}",
        "mail_driver = maildir",
        f"mail_home = {MAILDIR}/%{{user | domain}}/%{{user | username}}",
        "mail_path = ~/Maildir",
        "mail_plugins {",
        "  quota = yes",
        "}",
        'quota "User quota" {',
        f"  quota_storage_size = {s.quota_mib}M",
        "}",
        "namespace inbox {",
        "  inbox = yes",
        "  separator = /",
        "}",
        "protocol imap {",
        "  mail_max_userip_connections = 20",
        "}",
    ]
    # One app password per file and slot: a user's apps each have their own password,
    # and Dovecot tries the slots in turn until one matches.
    for slot in range(1, APP_PASSWORDS_MAX + 1):
        out += [
            f"passdb slot{slot} {{",
            "  driver = passwd-file",
            f"  passwd_file_path = {MAIL_KEYS}/passwords/{slot}",
            "  result_failure = continue" if slot < APP_PASSWORDS_MAX else "",
            "}",
        ]
    out += [
        "userdb users {",
        "  driver = passwd-file",
        f"  passwd_file_path = /etc/dovecot/{CB}/users",
        "}",
        "service lmtp {",
        "  unix_listener /var/spool/postfix/private/dovecot-lmtp {",
        "    user = postfix",
        "    group = postfix",
        "    mode = 0600",
        "  }",
        "}",
        "service auth {",
        "  unix_listener /var/spool/postfix/private/auth {",
        "    user = postfix",
        "    group = postfix",
        "    mode = 0600",
        "  }",
        "}",
    ]
    return lines(x for x in out if x)


def opendkim_conf(s: MailSettings, i: Inputs) -> bytes:
    return lines(
        [
            "# Written by the Commonsbox agent: edits are undone.",
            "Syslog no",
            "Mode sv",
            "UserID opendkim",
            "UMask 0007",
            f"Socket local:{DKIM_SOCKET_DIR}/opendkim.sock",
            f"PidFile {DKIM_SOCKET_DIR}/opendkim.pid",
            f"Domain {s.domain}",
            f"Selector {i.dkim_selector}",
            f"KeyFile {MAIL_KEYS}/dkim/{s.domain}.private",
            "Canonicalization relaxed/simple",
            "SignatureAlgorithm rsa-sha256",
            "OversignHeaders From",
            "On-NoSignature accept",
        ]
    )


def render(s: MailSettings, i: Inputs) -> dict[str, File]:
    """Every file mail needs, by its path on the box."""
    addresses = [s.address(u) for u in i.users]
    files = {
        "/etc/postfix/main.cf": File(postfix_main(s, i)),
        "/etc/postfix/master.cf": File(postfix_master(s)),
        f"/etc/postfix/{CB}/mailboxes": File(lines(f"{a} OK" for a in addresses)),
        f"/etc/postfix/{CB}/senders": File(lines(f"{a} {a}" for a in addresses)),
        f"/etc/postfix/{CB}/submission_header_cleanup": File(
            lines(
                [
                    "/^Received:/ IGNORE",
                    "/^X-Originating-IP:/ IGNORE",
                    "/^X-Mailer:/ IGNORE",
                    "/^User-Agent:/ IGNORE",
                ]
            )
        ),
        "/etc/dovecot/dovecot.conf": File(dovecot_conf(s, i), 0o644),
        f"/etc/dovecot/{CB}/users": File(
            lines(f"{a}::::::" for a in addresses), 0o640, ("root", "dovecot")
        ),
        "/etc/opendkim.conf": File(opendkim_conf(s, i)),
        f"{MAIL_KEYS}/dkim/{s.domain}.private": File(
            i.dkim_key_pem.encode(), 0o600, ("opendkim", "opendkim")
        ),
        TLS_KEY: File(i.tls_key_pem.encode(), 0o600),
        TLS_CERT: File(i.tls_cert_pem.encode()),
        f"{FILTER_CODE}/filter.json": File(
            json.dumps({"domain": s.domain, "policy_port": POLICY_PORT}).encode() + b"\n"
        ),
        **{
            f"{FILTER_CODE}/{m}.py": File(Path(__file__).with_name(f"{m}.py").read_bytes())
            for m in FILTER_MODULES
        },
    }
    for slot in range(1, APP_PASSWORDS_MAX + 1):
        entries = [
            f"{s.address(owner)}:{h}"
            for (owner, n), h in sorted(i.password_hashes.items())
            if n == slot and owner in i.users
        ]
        files[f"{MAIL_KEYS}/passwords/{slot}"] = File(lines(entries), 0o640, ("root", "dovecot"))
    if s.smarthost is not None and s.smarthost.username:
        h = s.smarthost
        files[SMARTHOST] = File(
            lines([f"[{h.host}]:{h.port} {h.username}:{i.smarthost_password or ''}"]), 0o600
        )
    return files
