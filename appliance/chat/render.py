"""Prosody's configuration, rendered from the desired state: a pure function.

What modern clients need for end-to-end encryption (OMEMO) is on: PEP (keys are
published there), carbons and the message archive (every device of a member sees every
message), HTTP file upload (encrypted attachments), stream management and client state
indication (phones that sleep), push (mod_cloud_notify). No in-band registration:
members are made by the box.
"""

from dataclasses import dataclass
from pathlib import Path

from ..daemonconfig import File, line, lines
from ..errors import Invalid
from ..mail.schema import MailSettings
from ..storage.place import KEYS, PRIVATE
from ..tls import AEAD_CIPHERS
from .schema import ChatSettings

DATA_DIR = f"{PRIVATE}/chat"  # archives, uploads, rosters: on the encrypted storage
AUTH_DIR = f"{KEYS}/chat/auth"  # the users and their app passwords' hashes
CERTS = f"{KEYS}/chat/certs"
MODULES_DIR = "/etc/prosody/commonsbox-modules"
MODULE = Path(__file__).with_name("mod_auth_commonsbox.lua")
C2S_PORT, S2S_PORT, HTTPS_PORT = 5222, 5269, 5281
MODULES = (
    "roster",
    "saslauth",
    "tls",
    "dialback",
    "disco",
    "posix",
    "ping",
    "carbons",
    "pep",
    "private",
    "blocklist",
    "vcard4",
    "vcard_legacy",
    "bookmarks",
    "mam",
    "smacks",
    "csi_simple",
    "cloud_notify",
    "offline",
    "s2s_bidi",
    "server_contact_info",
)


@dataclass(frozen=True)
class Inputs:
    users: tuple[str, ...]
    password_hashes: dict[tuple[str, int], str]  # (owner, slot) -> {SSHA512} hash
    tls_key_pem: str
    tls_cert_pem: str
    log_dir: str | None


def _lua(text: str) -> str:
    """A Lua string literal of checked text (domains, paths, numbers)."""
    line(text)
    if '"' in text or "\\" in text:
        raise Invalid(f"refusing to quote {text!r} for Lua")
    return f'"{text}"'


def prosody_cfg(chat: ChatSettings, domain: str, i: Inputs) -> bytes:
    key, cert = f"{CERTS}/{domain}.key", f"{CERTS}/{domain}.crt"
    # Prosody writes its log as the prosody user: its own directory, not log_dir.
    log = '{ warn = "/var/log/prosody/prosody.log" }' if i.log_dir else '{ warn = "*console" }'
    upload = f"upload.{domain}"
    return lines(
        text
        for text in [
            "-- Written by the Commonsbox agent from the desired state: edits are undone.",
            'pidfile = "/run/prosody/prosody.pid"',
            f"data_path = {_lua(DATA_DIR)}",
            "prosodyctl_service_warnings = false",
            f"plugin_paths = {{ {_lua(MODULES_DIR)} }}",
            f"log = {log}",
            "admins = { }",
            "modules_enabled = { " + ", ".join(_lua(m) for m in MODULES) + " }",
            "allow_registration = false",
            "c2s_require_encryption = true",
            "s2s_require_encryption = true",
            # Boxes have self-signed certificates: dialback proves a server's domain.
            "s2s_secure_auth = false",
            'authentication = "commonsbox"',
            f"commonsbox_auth_dir = {_lua(AUTH_DIR)}",
            'storage = "internal"',
            f'archive_expires_after = "{chat.archive_days}d"',
            "default_archive_policy = true",
            # libunbound answers .test names itself (RFC 6761): a box with a .test domain is
            # in a test network, whose name server must be asked instead.
            'unbound = { options = { ["local-zone:"] = "test. transparent" } }'
            if domain.endswith(".test")
            else "",
            f"c2s_ports = {{ {C2S_PORT} }}",
            f"s2s_ports = {{ {S2S_PORT} }}",
            "http_ports = { }",
            f"https_ports = {{ {HTTPS_PORT} }}",
            f"ssl = {{ key = {_lua(key)}, certificate = {_lua(cert)}, "
            f"ciphers = {_lua(AEAD_CIPHERS)} }}",  # TLS 1.2: AEAD only
            f"https_ssl = {{ key = {_lua(key)}, certificate = {_lua(cert)}, "
            f"ciphers = {_lua(AEAD_CIPHERS)} }}",
            f"VirtualHost {_lua(domain)}",
            f"  disco_items = {{ {{ {_lua(upload)} }} }}",
            f'Component {_lua(upload)} "http_file_share"',
            f"  http_file_share_size_limit = {chat.upload_mib * 1024 * 1024}",
            f'  http_file_share_expires_after = "{chat.upload_days}d"',
            f"  http_host = {_lua(upload)}",
        ]
        if text
    )


def render(chat: ChatSettings, mail: MailSettings, i: Inputs) -> dict[str, File]:
    domain = mail.domain
    owner = ("root", "prosody")
    return {
        "/etc/prosody/prosody.cfg.lua": File(prosody_cfg(chat, domain, i), 0o640, owner),
        f"{MODULES_DIR}/mod_auth_commonsbox.lua": File(MODULE.read_bytes()),
        f"{AUTH_DIR}/users": File(lines(f"{u}:" for u in i.users), 0o640, owner),
        f"{AUTH_DIR}/passwords": File(
            lines(f"{o}:{h}" for (o, _), h in sorted(i.password_hashes.items()) if o in i.users),
            0o640,
            owner,
        ),
        f"{CERTS}/{domain}.key": File(i.tls_key_pem.encode(), 0o640, owner),
        f"{CERTS}/{domain}.crt": File(i.tls_cert_pem.encode()),
    }
