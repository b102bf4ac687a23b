"""The keys mail needs, made by the agent: the DKIM signing key and the TLS certificate."""

import base64
import hashlib

from .. import tls


def dkim_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def dkim_public(key_pem: str) -> str:
    """The base64 SubjectPublicKeyInfo that the DKIM DNS record publishes (p=)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem.encode(), None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def dkim_selector(key_pem: str) -> str:
    """Named after the key, so a new key gets a new selector and both can be published
    while mail signed with the old one is still in flight."""
    return "cb" + hashlib.sha256(dkim_public(key_pem).encode()).hexdigest()[:10]


def certificate_for(domain: str) -> list[str]:
    """The names the box's mail and chat certificate holds: the domain, and the host
    chat shares files from."""
    return [domain, f"upload.{domain}"]


def mail_certificate(domain: str) -> tuple[str, str]:
    key, cert = tls.self_signed(certificate_for(domain), domain)
    return key.decode(), cert.decode()


def certificate_names(cert_pem: str) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)
