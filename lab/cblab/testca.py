"""A throwaway certificate authority for the lab: a CA, and server certificates it signs
for names or addresses (the update feed's HTTPS server, the stand-in NTS servers)."""

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _builder(subject: x509.Name, issuer: x509.Name, key) -> x509.CertificateBuilder:
    start = datetime.now(UTC) - timedelta(hours=1)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=2))
    )


def ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(name), _name(name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_cert(authority, names: list[str | IPv4Address]) -> tuple[bytes, bytes]:
    """A certificate for NAMES (host names or addresses) signed by AUTHORITY (from ca()),
    with the CA after it, and its private key: both PEM."""
    ca_key, ca_cert = authority
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.IPAddress(n) if isinstance(n, IPv4Address) else x509.DNSName(n) for n in names]
    cert = (
        _builder(_name(str(names[0])), ca_cert.subject, key)
        .add_extension(x509.SubjectAlternativeName(alt), False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        cert.public_bytes(PEM) + ca_cert.public_bytes(PEM),
        key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
