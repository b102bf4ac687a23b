"""What the box's two OpenSSH instances (the file share, the installer's SSH) share: an
installer's public key, checked field by field before any file holds it; the host keys
(kept as secrets: a device remembers a host key, so it must never change); and the lines
that lock a server down."""

import base64
import binascii
import hashlib
import re

from ..errors import Invalid
from ..secrets import Secret, SecretStore

# What each kind's blob holds after its name (RFC 4253, 5656, 8709; OpenSSH PROTOCOL.u2f):
# "s" a string, "m" an mpint; ed25519 keys are 32 bytes, RSA keys 2048 bits or more.
KINDS = {
    "ssh-ed25519": "s",
    "sk-ssh-ed25519@openssh.com": "ss",
    "ecdsa-sha2-nistp256": "ss",
    "ecdsa-sha2-nistp384": "ss",
    "ecdsa-sha2-nistp521": "ss",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sss",
    "ssh-rsa": "mm",
}
# Neither allows slow or many unauthenticated connections, forwarding of any kind, or a
# user's own rc file.
LOCKED_DOWN = (
    "MaxAuthTries 3",
    "LoginGraceTime 30",
    "MaxStartups 4:50:16",
    "ClientAliveInterval 60",
    "AllowTcpForwarding no",
    "AllowStreamLocalForwarding no",
    "AllowAgentForwarding no",
    "X11Forwarding no",
    "PermitTunnel no",
    "GatewayPorts no",
    "PermitUserRC no",
)
MAX_LINE = 8192  # an RSA key of 16384 bits is about 2,800 characters
MIN_RSA_BITS = 2048
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _fields(blob: bytes) -> list[bytes]:
    """The length-prefixed fields of a key blob; ValueError unless it is exactly that."""
    out, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("truncated")
        size = int.from_bytes(blob[at : at + 4], "big")
        at += 4
        if size > len(blob) - at:
            raise ValueError("truncated")
        out.append(blob[at : at + size])
        at += size
    return out


def public_key(line, fld: str = "key") -> str:
    """One line of a public key file (`ssh-ed25519 AAAA... alice@laptop`) -> the key in
    its canonical form, `KIND BASE64`. The comment is dropped; options (`command=...`),
    several keys, private keys and keys whose blob is not what its kind says are
    refused."""
    if not isinstance(line, str):
        raise Invalid(f"{fld} must be text", fld)
    if len(line) > MAX_LINE:
        raise Invalid(f"{fld} is too long for a public key", fld)
    line = line.strip()
    if "PRIVATE KEY" in line:
        raise Invalid(f"{fld} is a private key: paste the public one (the .pub file)", fld)
    if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in line):
        raise Invalid(f"{fld} must be one line: one public key", fld)
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in KINDS:
        raise Invalid(
            f"{fld} must start with a key type ({', '.join(KINDS)}), with no options before it", fld
        )
    kind, text = parts[0], parts[1]
    try:
        if not _BASE64.fullmatch(text):
            raise ValueError("not base64")
        blob = base64.b64decode(text, validate=True)
        fields = _fields(blob)
    except (ValueError, binascii.Error):
        raise Invalid(f"{fld}: the key's data is damaged (is all of it there?)", fld) from None
    shape = KINDS[kind]
    if len(fields) != 1 + len(shape) or fields[0] != kind.encode():
        raise Invalid(f"{fld}: the key's data is not a {kind} key", fld)
    if "ed25519" in kind:
        if len(fields[1]) != 32:
            raise Invalid(f"{fld}: the key's data is not a {kind} key", fld)
    elif "ecdsa" in kind:
        if fields[1] != re.search(r"nistp\d+", kind)[0].encode():
            raise Invalid(f"{fld}: the key's data is not a {kind} key", fld)
    elif int.from_bytes(fields[2], "big").bit_length() < MIN_RSA_BITS:
        raise Invalid(
            f"{fld}: an RSA key needs at least {MIN_RSA_BITS} bits; an ed25519 key is better", fld
        )
    return f"{kind} {base64.b64encode(blob).decode()}"


def fingerprint(key: str) -> str:
    """`SHA256:...` as ssh-keygen -l and an SSH client show it, of a canonical key."""
    digest = hashlib.sha256(base64.b64decode(key.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_pem(secrets: SecretStore, name: str) -> str:
    """The host key kept as secret NAME, made the first time. Stored as made: each
    serialisation differs (OpenSSH's format has random check bytes)."""
    pem = secrets.get(name)
    if pem is None:
        from cryptography.hazmat.primitives import serialization  # not on the agent's start
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Secret(
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            .decode()
        )
        secrets.put(name, pem)
    return pem.reveal()


def host_key_fingerprint(secrets: SecretStore, name: str) -> str:
    """What a client is shown the first time it connects, to compare."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_ssh_private_key(host_key_pem(secrets, name).encode(), None)
    return fingerprint(
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
