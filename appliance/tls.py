"""The web UI's TLS certificate, made by the agent on first start.

Self-signed (no outside authority can vouch for a box at someone's home); the
installer checks its SHA-256 fingerprint, shown by `commonsbox status`, against what
the browser shows the first time.
"""

import base64
import datetime
import hashlib
import os
from pathlib import Path

NAMES = ("commonsbox.local", "localhost")
# What every TLS server of the box offers in TLS 1.2 (OpenSSL's cipher list syntax):
# ephemeral ECDH with an AEAD cipher only, no CBC. TLS 1.3's suites are all AEAD.
AEAD_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def fingerprint(cert_pem: bytes) -> str:
    der = base64.b64decode(
        b"".join(line for line in cert_pem.splitlines() if line and not line.startswith(b"-----"))
    )
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def ensure_certificate(cert: Path, key: Path, group: int | None, box_name: str) -> str:
    """Make the key and certificate unless both exist; return the fingerprint."""
    if not (cert.exists() and key.exists()):
        key_pem, cert_pem = self_signed(NAMES, box_name)
        cert.parent.mkdir(parents=True, exist_ok=True)
        _write(key, key_pem, 0o640, group)
        _write(cert, cert_pem, 0o644, None)
    return fingerprint(cert.read_bytes())


def self_signed(names, organisation: str) -> tuple[bytes, bytes]:
    """A new EC key and a 10-year self-signed certificate for NAMES (PEM, PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


def _write(path: Path, data: bytes, mode: int, group: int | None) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if group is not None:
        os.chown(tmp, -1, group)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
